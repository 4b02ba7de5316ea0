/* admin.c: the admin listener and its thread: /healthz, /readyz, /metrics, /v1 (api.c). */
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin.h"
#include "api.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"

static struct evhttp *admin_http;
static bool admin_test_hooks;
static struct routes_reader *admin_reader; /* the admin thread's */
static struct routes_reader *ready_reader; /* the main thread's (admin_ready) */
static struct event_base *admin_base;
static struct event *admin_beat_ev;
static struct event *admin_stop_ev; /* activated from main: survives a loop not yet running */
static struct metrics_thread *admin_metrics;
static pthread_t admin_thread;
static bool admin_running;

bool
admin_ready(bool *from_file)
{
	const struct routes_snapshot *s = routes_read_begin(ready_reader);
	bool ready = s != NULL;

	if (from_file)
		*from_file = s && s->source == ROUTES_FROM_FILE;
	routes_read_end(ready_reader);
	return ready;
}

static void
admin_reply(struct evhttp_request *req, int code, struct evbuffer *b)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
		"application/json");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	evhttp_send_reply(req, code, NULL, b);
}

static void
admin_readyz(struct evhttp_request *req, struct evbuffer *b)
{
	const struct routes_snapshot *s = routes_read_begin(admin_reader);
	const char *db = db_is_up() ? "up" : "down";
	struct journal_stats js;

	journal_get_stats(&js);
	if (!s) {
		routes_read_end(admin_reader);
		evbuffer_add_printf(b, "{\"ready\":false,\"database\":\"%s\"}", db);
		admin_reply(req, 503, b);
		return;
	}
	/* ready: routes loaded and the journal writable (DESIGN.md); a database outage is not
	 * a reason to take this instance out of rotation: it routes and journals */
	evbuffer_add_printf(b,
		"{\"ready\":%s,\"source\":\"%s\",\"generation\":%llu,\"numbers\":%u,"
		"\"loaded_at_ms\":%lld,\"database\":\"%s\",\"journal\":{\"writable\":%s,"
		"\"pending\":%llu,\"bytes\":%llu,\"durable_seq\":%llu,\"checkpoint_seq\":%llu}}",
		js.writable ? "true" : "false",
		s->source == ROUTES_FROM_DATABASE ? "database" : "snapshot",
		(unsigned long long)s->generation, s->numbers.count, (long long)s->loaded_at_ms, db,
		js.writable ? "true" : "false", (unsigned long long)js.pending,
		(unsigned long long)js.bytes_on_disk, (unsigned long long)js.durable_seq,
		(unsigned long long)js.checkpoint_seq);
	routes_read_end(admin_reader);
	admin_reply(req, js.writable ? 200 : 503, b);
}

static void
admin_cb(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *b = evbuffer_new();

	if (!b) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	if (!path)
		path = "";
	if (strcmp(path, "/debug/stall") == 0 && cmd == EVHTTP_REQ_POST && admin_test_hooks) {
		/* test hook (CALLROUTED_TEST_HOOKS=1): block a worker to prove the watchdog */
		struct evkeyvalq q;
		const char *wk, *ms;
		bool ok = false;

		TAILQ_INIT(&q);
		if (evhttp_parse_query_str(evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)) ?
				evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)) : "", &q) == 0 &&
		    (wk = evhttp_find_header(&q, "worker")) && (ms = evhttp_find_header(&q, "ms")))
			ok = http_debug_stall(atoi(wk), atoi(ms));
		evhttp_clear_headers(&q);
		evbuffer_add_printf(b, ok ? "{\"stalling\":true}" : "{\"error\":\"bad worker or ms\"}");
		admin_reply(req, ok ? 200 : 400, b);
	} else if (strncmp(path, "/v1/", 4) == 0) {
		evbuffer_free(b);
		api_handle(req);
		return;
	} else if (strcmp(path, "/metrics") == 0 && (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)) {
		routes_read_begin(admin_reader);
		metrics_render(b);
		routes_read_end(admin_reader);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			"text/plain; version=0.0.4; charset=utf-8");
		evhttp_send_reply(req, 200, NULL, b);
	} else if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
			evbuffer_add_printf(b, "{\"error\":\"method not allowed\"}");
			admin_reply(req, 405, b);
		} else if (path[1] == 'h') {
			evbuffer_add_printf(b, "{\"status\":\"ok\"}");
			admin_reply(req, 200, b);
		} else {
			admin_readyz(req, b);
		}
	} else {
		evbuffer_add_printf(b, "{\"error\":\"not found\"}");
		admin_reply(req, 404, b);
	}
	evbuffer_free(b);
}

static void
admin_beat_cb(evutil_socket_t fd, short what, void *arg)
{
	metrics_beat();
}

static void
admin_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(admin_base);
}

static void *
admin_main(void *arg)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	metrics_self = admin_metrics;
	api_start();
	event_base_dispatch(admin_base);
	return NULL;
}

bool
admin_setup(const struct config *cfg)
{
	struct timeval beat = { 0, 100000 };

	admin_reader = routes_reader_register();
	ready_reader = routes_reader_register();
	admin_test_hooks = getenv("CALLROUTED_TEST_HOOKS") &&
			   strcmp(getenv("CALLROUTED_TEST_HOOKS"), "1") == 0;
	if (admin_test_hooks)
		log_warning("admin: test hooks are enabled (CALLROUTED_TEST_HOOKS=1)");
	admin_base = event_base_new();
	admin_http = admin_base ? evhttp_new(admin_base) : NULL;
	admin_metrics = metrics_thread_new("admin", true);
	admin_beat_ev = admin_base ? event_new(admin_base, -1, EV_PERSIST, admin_beat_cb, NULL) :
				     NULL;
	admin_stop_ev = admin_base ? event_new(admin_base, -1, 0, admin_stop_cb, NULL) : NULL;
	if (!admin_http || !admin_reader || !ready_reader || !admin_metrics || !admin_beat_ev ||
	    !admin_stop_ev)
		return false;
	event_add(admin_beat_ev, &beat);
	evhttp_set_timeout(admin_http, 30);
	evhttp_set_max_body_size(admin_http, 64 << 10);
	evhttp_set_allowed_methods(admin_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
		EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(admin_http, admin_cb, NULL);
	if (!http_bind(admin_base, admin_http, cfg->admin_listen, 0))
		return false;
	if (!api_setup(admin_base, cfg))
		return false;
	log_info("admin: listening on %s", cfg->admin_listen);
	return true;
}

bool
admin_start(void)
{
	if (pthread_create(&admin_thread, NULL, admin_main, NULL) != 0) {
		log_error("admin: could not start the admin thread");
		return false;
	}
	admin_running = true;
	return true;
}

void
admin_cleanup(void)
{
	if (admin_running) {
		event_active(admin_stop_ev, EV_TIMEOUT, 0);
		pthread_join(admin_thread, NULL);
		admin_running = false;
	}
	api_cleanup();
	if (admin_beat_ev)
		event_free(admin_beat_ev);
	if (admin_stop_ev)
		event_free(admin_stop_ev);
	admin_stop_ev = NULL;
	if (admin_http)
		evhttp_free(admin_http);
	if (admin_base)
		event_base_free(admin_base);
	admin_beat_ev = NULL;
	admin_http = NULL;
	admin_base = NULL;
}
