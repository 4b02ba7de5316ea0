/* workers.c: webhook worker threads: an event_base and a wire.c server each (SO_REUSEPORT). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "callrouted/config.h"
#include "workers.h"
#include "journal.h"
#include "callrouted/log.h"
#include "metrics.h"
#include "routes.h"
#include "webhook.h"
#include "wire.h"

struct http_worker {
	int id;
	char name[24];
	struct event *beat_ev;
	struct event *stop_ev; /* activated from main: survives a loop not yet dispatching */
	pthread_t thread;
	bool running;
	struct event_base *base;
	struct wire_server *wire;
	struct routes_reader *reader;
	struct metrics_thread *metrics;
	struct journal_waiter *waiter;
	const struct config *cfg;
};

#define HTTP_BEAT_MS 100
#define HTTP_OWN_FDS 64 /* descriptors the daemon holds besides connections and loops */

static void http_stop_cb(evutil_socket_t fd, short what, void *arg);

static struct http_worker *http_w;
static int http_n;

int
workers_count(void)
{
	return http_n;
}

struct evhttp_bound_socket *
workers_bind(struct event_base *base, struct evhttp *http, const char *addr, unsigned flags)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct evconnlistener *l;

	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
		log_error("http: \"%s\" is not an address:port", addr);
		return NULL;
	}
	l = evconnlistener_new_bind(base, NULL, NULL,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | flags, 1024,
		(struct sockaddr *)&ss, sslen);
	if (!l) {
		log_error("http: could not listen on %s: %s", addr, strerror(errno));
		return NULL;
	}
	bs = evhttp_bind_listener(http, l);
	if (!bs) {
		evconnlistener_free(l);
		log_error("http: could not bind evhttp to %s", addr);
		return NULL;
	}
	return bs;
}

static void
http_request_cb(struct wire_req *req, void *arg)
{
	struct http_worker *w = arg;
	const struct routes_snapshot *snap = routes_read_begin(w->reader);

	webhook_handle(req, config_current(), snap, w->waiter);
	routes_read_end(w->reader);
}

static void
http_limits(const struct config *cfg, struct wire_limits *lim)
{
	lim->max_body_bytes = cfg->max_body_bytes;
	lim->max_header_bytes = cfg->max_header_bytes;
	lim->request_timeout_ms = (int)cfg->request_timeout_ms;
	lim->idle_timeout_ms = (int)cfg->keepalive_timeout_ms;
	lim->max_connections = cfg->max_connections;
}

/* Proof of progress for the watchdog: a timer that only fires if the loop turns. */
static void
http_beat_cb(evutil_socket_t fd, short what, void *arg)
{
	metrics_beat();
}

static void *
http_thread(void *arg)
{
	struct http_worker *w = arg;
	struct timeval beat = { 0, HTTP_BEAT_MS * 1000 };
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	metrics_self = w->metrics;
	w->beat_ev = event_new(w->base, -1, EV_PERSIST, http_beat_cb, w);
	if (w->beat_ev)
		event_add(w->beat_ev, &beat);
	event_base_dispatch(w->base);
	if (w->beat_ev)
		event_free(w->beat_ev);
	return NULL;
}

bool
workers_setup(const struct config *cfg)
{
	int n = cfg->workers;

	if (n <= 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		n = cpus > 0 ? (int)cpus : 1;
		if (n > 64)
			n = 64;
	}
	{
		/* the connections of both listeners, each worker's loop (epoll, its notify
		 * pair, the listener), the admin loop, and the daemon's own: database
		 * connections, journal, snapshot, logs */
		size_t need = (size_t)cfg->max_connections + (size_t)cfg->admin_max_connections +
			      4 * ((size_t)n + 1) + HTTP_OWN_FDS;
		char msg[256];

		if (!wire_raise_nofile(need, msg, sizeof(msg)))
			log_warning("http: %s", msg);
		else
			log_debug("http: %s", msg);
	}
	http_w = calloc((size_t)n, sizeof(*http_w));
	if (!http_w)
		return false;
	http_n = n;
	for (int i = 0; i < n; i++) {
		struct http_worker *w = &http_w[i];

		struct wire_limits lim;
		int fd;

		w->id = i;
		w->cfg = cfg;
		w->base = event_base_new();
		w->reader = routes_reader_register();
		snprintf(w->name, sizeof(w->name), "worker %d", i);
		/* registered here (main thread, before scrapes), adopted by the worker thread */
		w->metrics = metrics_thread_new(w->name, true);
		w->waiter = w->base ? journal_waiter_new(w->base, webhook_journal_done) : NULL;
		w->stop_ev = w->base ? event_new(w->base, -1, 0, http_stop_cb, w) : NULL;
		if (!w->base || !w->reader || !w->waiter || !w->metrics || !w->stop_ev) {
			log_error("http: could not create worker %d", i);
			return false;
		}
		/* one listening socket per worker (SO_REUSEPORT): the kernel spreads connections */
		fd = wire_listen(cfg->listen, true);
		if (fd < 0)
			return false;
		http_limits(cfg, &lim);
		w->wire = wire_server_new(w->base, fd, WIRE_WEBHOOK, &lim, http_request_cb, w);
		if (!w->wire) {
			close(fd);
			log_error("http: could not create worker %d", i);
			return false;
		}
	}
	log_info("http: listening on %s with %d worker%s", cfg->listen, n, n == 1 ? "" : "s");
	return true;
}

/* ---- work posted to a worker's own loop ---- */

static void
http_apply_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;
	struct wire_limits lim;

	http_limits(config_current(), &lim);
	wire_server_set_limits(w->wire, &lim);
}

static void
http_stop_accepting_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;

	wire_server_stop_accepting(w->wire);
}

static int http_stall_ms;

static void
http_stall_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timespec ts = { http_stall_ms / 1000, (long)(http_stall_ms % 1000) * 1000000 };

	log_warning("http: test hook: stalling this worker for %d ms", http_stall_ms);
	nanosleep(&ts, NULL);
}

void
workers_apply_config(void)
{
	for (int i = 0; i < http_n; i++)
		event_base_once(http_w[i].base, -1, EV_TIMEOUT, http_apply_cb, &http_w[i], NULL);
}

void
workers_stop_accepting(void)
{
	for (int i = 0; i < http_n; i++)
		event_base_once(http_w[i].base, -1, EV_TIMEOUT, http_stop_accepting_cb, &http_w[i],
			NULL);
}

bool
workers_debug_stall(int worker, int ms)
{
	if (worker < 0 || worker >= http_n || ms <= 0 || ms > 60000)
		return false;
	http_stall_ms = ms;
	return event_base_once(http_w[worker].base, -1, EV_TIMEOUT, http_stall_cb, NULL, NULL) == 0;
}

bool
workers_start(void)
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

static int http_flush_ms;

/* On the worker's loop: callbacks already active (answers of durable events) run first, and
 * the loop goes on for flush_ms so those answers reach their clients. */
static void
http_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;
	struct timeval tv = { http_flush_ms / 1000, (http_flush_ms % 1000) * 1000 };

	event_base_loopexit(w->base, http_flush_ms > 0 ? &tv : NULL);
}

void
workers_stop(int flush_ms)
{
	/* an event, not event_base_loopexit() from here: a loop that has not started dispatching
	 * yet would forget a loopexit, and the join below would wait forever */
	http_flush_ms = flush_ms;
	for (int i = 0; i < http_n; i++)
		if (http_w[i].running)
			event_active(http_w[i].stop_ev, EV_TIMEOUT, 0);
	for (int i = 0; i < http_n; i++) {
		struct http_worker *w = &http_w[i];

		if (w->running)
			pthread_join(w->thread, NULL);
		w->running = false;
	}
}

void
workers_cleanup(void)
{
	for (int i = 0; i < http_n; i++) {
		struct http_worker *w = &http_w[i];

		/* the journal writer has stopped (journal_stop): nothing completes into this waiter
		 * any more; what it holds is answered now, on this thread (wire_reply writes to the
		 * socket at once; what the socket does not take goes with the connection below: the
		 * client retries, the ledger keeps one row) */
		journal_waiter_free(w->waiter);
		w->waiter = NULL;
		if (w->stop_ev)
			event_free(w->stop_ev);
		wire_server_free(w->wire);
		if (w->base)
			event_base_free(w->base);
	}
	free(http_w);
	http_w = NULL;
	http_n = 0;
}
