/* admin.c: the admin listener, its thread, its route table and its one error shape. */
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "admin.h"
#include "api.h"
#include "httpc.h"
#include "callrouted/admin_api.h"
#include "loader.h"
#include "callrouted/config.h"
#include "workers.h"
#include "callrouted/log.h"
#include "metrics.h"
#include "openapi.h"
#include "routes.h"
#include "scrape.h"
#include "wire.h"

#define ADMIN_NICE 10      /* as the database thread's (db.c) */
#define ADMIN_SETTLE_MS 20 /* the loop turns on this long after the stop, for libevent's frees */

static struct wire_server *admin_wire;
static bool admin_test_hooks;
static struct routes_reader *admin_reader; /* the admin thread's */
static struct routes_reader *ready_reader; /* the main thread's (admin_ready) */
static struct event_base *admin_base;
static struct event *admin_beat_ev;
static struct event *admin_stop_ev; /* activated from main: survives a loop not yet running */
static struct metrics_thread *admin_metrics;
static pthread_t admin_thread;
static bool admin_running;
static atomic_bool admin_stopping; /* set by main at SIGTERM, read by /readyz */

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

void
admin_set_stopping(void)
{
	atomic_store(&admin_stopping, true);
}

/* JSON answers carry Cache-Control: no-store (health and API state is never cached). */
static void
admin_reply(struct wire_req *r, int code, struct evbuffer *b, const char *extra)
{
	char hdr[128];

	snprintf(hdr, sizeof(hdr), "Cache-Control: no-store\r\n%s", extra ? extra : "");
	wire_reply(r, code, "application/json", evbuffer_pullup(b, -1), evbuffer_get_length(b),
		hdr);
}

static void
admin_readyz(struct wire_req *r, struct evbuffer *b)
{
	int status =
		scrape_readyz(b, routes_read_begin(admin_reader), atomic_load(&admin_stopping));

	routes_read_end(admin_reader);
	admin_reply(r, status, b, NULL);
}

/* The one error shape of the admin listener, as api.c's: {"error":{"code":..,"message":..}}
 * (code and message are ours: no escaping needed). */
static void
admin_error(struct wire_req *r, struct evbuffer *b, int status, const char *code,
	const char *message, const char *extra)
{
	evbuffer_add_printf(b, ADMIN_API_ERROR_FMT, code, message);
	admin_reply(r, status, b, extra);
}

static void
admin_stall(struct wire_req *r, struct evbuffer *b)
{
	/* test hook (CALLROUTED_TEST_HOOKS=1): block a worker to prove the watchdog */
	struct wire_query q;
	const char *wk, *ms;
	bool ok = false;

	if (wire_query_parse(r->query, &q) && (wk = wire_query_get(&q, "worker")) &&
		(ms = wire_query_get(&q, "ms")))
		ok = workers_debug_stall(atoi(wk), atoi(ms));
	wire_query_clear(&q);
	if (!ok) {
		admin_error(r, b, 400, "invalid", "bad worker or ms", NULL);
		return;
	}
	evbuffer_add_printf(b, "{\"stalling\":true}");
	admin_reply(r, 200, b, NULL);
}

static void
admin_metrics_page(struct wire_req *r, struct evbuffer *b)
{
	scrape_metrics(b, routes_read_begin(admin_reader));
	routes_read_end(admin_reader);
	wire_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", evbuffer_pullup(b, -1),
		evbuffer_get_length(b), NULL);
}

static void
admin_healthz(struct wire_req *r, struct evbuffer *b)
{
	evbuffer_add_printf(b, "{\"status\":\"ok\"}");
	admin_reply(r, 200, b, NULL);
}

/* The admin API's OpenAPI document, without a token: it describes the API, holds no data. */
static void
admin_openapi(struct wire_req *r, struct evbuffer *b)
{
	wire_reply(r, 200, "application/json", openapi_json, openapi_json_len,
		"Cache-Control: no-cache\r\n");
}

/* Under /v1/: answered later (the database, a provider); a client gone meanwhile is kept
 * by wire.c until then. */
static void
admin_api(struct wire_req *r, struct evbuffer *b)
{
	r->deferred = true;
	api_handle(r);
}

enum { ADMIN_ANY = -1 }; /* a row for every method (the handler routes them) */

/* Every answer of the admin listener: {method, path, handler, needs_body, read_only}.  GET
 * answers HEAD too; a path ending in '/' is a prefix (the /v1 API routes its own: api.c). */
static const struct admin_route {
	int method; /* enum wire_method, or ADMIN_ANY */
	const char *path;
	void (*handler)(struct wire_req *r, struct evbuffer *b);
	bool needs_body; /* reads the request body */
	bool read_only;  /* changes nothing */
	bool test_hook;  /* only with CALLROUTED_TEST_HOOKS=1 */
} admin_routes[] = {
	{ WIRE_GET, "/healthz", admin_healthz, false, true, false },
	{ WIRE_GET, "/readyz", admin_readyz, false, true, false },
	{ WIRE_GET, "/metrics", admin_metrics_page, false, true, false },
	{ WIRE_POST, "/debug/stall", admin_stall, false, false, true },
	{ WIRE_GET, "/v1/openapi.json", admin_openapi, false, true, false },
	{ ADMIN_ANY, "/v1/", admin_api, false, false, false },
};

static bool
admin_path_matches(const struct admin_route *rt, const char *path)
{
	size_t n = strlen(rt->path);

	if (rt->path[n - 1] == '/')
		return strncmp(path, rt->path, n) == 0;
	return strcmp(path, rt->path) == 0;
}

static bool
admin_method_matches(const struct admin_route *rt, enum wire_method m)
{
	return rt->method == ADMIN_ANY || rt->method == (int)m ||
	       (rt->method == WIRE_GET && m == WIRE_HEAD);
}

static void
admin_cb(struct wire_req *r, void *arg)
{
	const struct admin_route *path_only = NULL;
	struct evbuffer *b = evbuffer_new();

	if (!b) {
		static const char oom[] = "{\"error\":{\"code\":\"unavailable\",\"message\":"
					  "\"out of memory\"}}";

		wire_reply(r, 503, "application/json", oom, sizeof(oom) - 1,
			"Cache-Control: no-store\r\n");
		return;
	}
	for (size_t i = 0; i < sizeof(admin_routes) / sizeof(admin_routes[0]); i++) {
		const struct admin_route *rt = &admin_routes[i];

		if ((rt->test_hook && !admin_test_hooks) || !admin_path_matches(rt, r->path))
			continue;
		if (path_only && rt->method == ADMIN_ANY)
			continue; /* /v1/openapi.json is ours (405), not api.c's */
		if (!admin_method_matches(rt, r->method)) {
			path_only = rt;
			continue;
		}
		rt->handler(r, b);
		evbuffer_free(b);
		return;
	}
	if (path_only)
		admin_error(r, b, 405, "method_not_allowed", "method not allowed here",
			path_only->method == WIRE_GET ? "Allow: GET, HEAD\r\n" : "Allow: POST\r\n");
	else
		admin_error(r, b, 404, "not_found", "no such endpoint", NULL);
	evbuffer_free(b);
}

static void
admin_beat_cb(evutil_socket_t fd, short what, void *arg)
{
	metrics_beat();
}

static void
admin_break_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(admin_base);
}

static void
admin_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	/* provider calls in flight (a sync) are dropped first, and the loop turns a little longer
	 * so libevent can finish freeing their connections: otherwise they leak at exit */
	struct timeval settle = { 0, ADMIN_SETTLE_MS * 1000 };

	httpc_abort_all();
	if (event_base_once(admin_base, -1, EV_TIMEOUT, admin_break_cb, NULL, &settle) != 0)
		event_base_loopbreak(admin_base);
}

static void *
admin_main(void *arg)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	metrics_self = admin_metrics;
	/* a burst of admin reads (JSON pages, explains) must not take the two CPUs of a small
	 * machine from the webhook workers: the admin thread yields to them (nice is per thread) */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), ADMIN_NICE) != 0) {
		METRICS_INC(thread_priority_failures, 0);
		log_warning("admin: could not set the admin thread's nice value to %d: %s",
			ADMIN_NICE, strerror(errno));
	}
	api_start();
	event_base_dispatch(admin_base);
	return NULL;
}

bool
admin_setup(const struct config *cfg)
{
	struct timeval beat = { 0, 100000 };
	struct wire_limits lim;
	int fd;

	admin_reader = routes_reader_register();
	ready_reader = routes_reader_register();
	admin_test_hooks = getenv("CALLROUTED_TEST_HOOKS") &&
			   strcmp(getenv("CALLROUTED_TEST_HOOKS"), "1") == 0;
	if (admin_test_hooks)
		log_warning("admin: test hooks are enabled (CALLROUTED_TEST_HOOKS=1)");
	admin_base = event_base_new();
	admin_metrics = metrics_thread_new("admin", true);
	admin_beat_ev =
		admin_base ? event_new(admin_base, -1, EV_PERSIST, admin_beat_cb, NULL) : NULL;
	admin_stop_ev = admin_base ? event_new(admin_base, -1, 0, admin_stop_cb, NULL) : NULL;
	if (!admin_base || !admin_reader || !ready_reader || !admin_metrics || !admin_beat_ev ||
		!admin_stop_ev)
		return false;
	event_add(admin_beat_ev, &beat);
	/* wire.c, as the webhook listener, with the admin group's own limits and counters */
	lim.max_body_bytes = cfg->admin_max_body_bytes;
	lim.max_header_bytes = cfg->admin_max_header_bytes;
	lim.request_timeout_ms = (int)cfg->admin_request_timeout_ms;
	lim.idle_timeout_ms = (int)cfg->admin_keepalive_timeout_ms;
	lim.max_connections = cfg->admin_max_connections;
	fd = wire_listen(cfg->admin_listen, false);
	if (fd < 0)
		return false;
	admin_wire = wire_server_new(admin_base, fd, WIRE_ADMIN, &lim, admin_cb, NULL);
	if (!admin_wire) {
		close(fd);
		log_error("admin: could not create the admin listener");
		return false;
	}
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
	/* after api_cleanup: the API's requests (deferred answers) are gone first */
	wire_server_free(admin_wire);
	if (admin_base)
		event_base_free(admin_base);
	admin_beat_ev = NULL;
	admin_wire = NULL;
	admin_base = NULL;
}
