/* http.c: webhook worker threads: an event_base and evhttp each on SO_REUSEPORT listeners. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "config.h"
#include "http.h"
#include "journal.h"
#include "ledger.h"
#include "log.h"
#include "routes.h"
#include "webhook.h"

struct http_worker {
	int id;
	pthread_t thread;
	bool running;
	struct event_base *base;
	struct evhttp *http;
	struct routes_reader *reader;
	struct journal_waiter *waiter;
	const struct config *cfg;
};

static struct http_worker *http_w;
static int http_n;

int
http_workers(void)
{
	return http_n;
}

bool
http_bind(struct event_base *base, struct evhttp *http, const char *addr, unsigned flags)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct evconnlistener *l;

	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
		log_error("http: \"%s\" is not an address:port", addr);
		return false;
	}
	l = evconnlistener_new_bind(base, NULL, NULL,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | flags, 1024,
		(struct sockaddr *)&ss, sslen);
	if (!l) {
		log_error("http: could not listen on %s: %s", addr, strerror(errno));
		return false;
	}
	if (!evhttp_bind_listener(http, l)) {
		evconnlistener_free(l);
		log_error("http: could not bind evhttp to %s", addr);
		return false;
	}
	return true;
}

static void
http_request_cb(struct evhttp_request *req, void *arg)
{
	struct http_worker *w = arg;
	const struct routes_snapshot *snap = routes_read_begin(w->reader);

	webhook_handle(req, w->cfg, snap, w->waiter);
	routes_read_end(w->reader);
}

static void *
http_thread(void *arg)
{
	struct http_worker *w = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	event_base_dispatch(w->base);
	return NULL;
}

bool
http_setup(const struct config *cfg)
{
	int n = cfg->workers;

	if (n <= 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		n = cpus > 0 ? (int)cpus : 1;
		if (n > 64)
			n = 64;
	}
	http_w = calloc((size_t)n, sizeof(*http_w));
	if (!http_w)
		return false;
	http_n = n;
	for (int i = 0; i < n; i++) {
		struct http_worker *w = &http_w[i];

		w->id = i;
		w->cfg = cfg;
		w->base = event_base_new();
		w->http = w->base ? evhttp_new(w->base) : NULL;
		w->reader = routes_reader_register();
		w->waiter = w->base ? journal_waiter_new(w->base, ledger_journal_done) : NULL;
		if (!w->http || !w->reader || !w->waiter) {
			log_error("http: could not create worker %d", i);
			return false;
		}
		evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body_bytes);
		evhttp_set_max_headers_size(w->http, 65536);
		evhttp_set_timeout(w->http, 10);
		evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
			EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
			EVHTTP_REQ_PATCH | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
		evhttp_set_default_content_type(w->http, "application/json");
		evhttp_set_gencb(w->http, http_request_cb, w);
		if (!http_bind(w->base, w->http, cfg->listen, LEV_OPT_REUSEABLE_PORT))
			return false;
	}
	log_info("http: listening on %s with %d worker%s", cfg->listen, n, n == 1 ? "" : "s");
	return true;
}

bool
http_start(void)
{
	for (int i = 0; i < http_n; i++) {
		if (pthread_create(&http_w[i].thread, NULL, http_thread, &http_w[i]) != 0) {
			log_error("http: could not start worker %d", i);
			return false;
		}
		http_w[i].running = true;
	}
	return true;
}

void
http_stop(void)
{
	for (int i = 0; i < http_n; i++)
		if (http_w[i].running)
			event_base_loopbreak(http_w[i].base);
	for (int i = 0; i < http_n; i++) {
		struct http_worker *w = &http_w[i];

		if (w->running)
			pthread_join(w->thread, NULL);
		/* answers of appends completed after the loop stopped: the client retries */
		journal_waiter_free(w->waiter);
		if (w->http)
			evhttp_free(w->http);
		if (w->base)
			event_base_free(w->base);
	}
	free(http_w);
	http_w = NULL;
	http_n = 0;
}
