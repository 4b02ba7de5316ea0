/* db.c: the database thread: libpq async connection state machine on its own event_base. */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "changes.h"
#include "config.h"
#include "db.h"
#include "log.h"

#define DB_CONNECT_TIMEOUT_MS 5000
#define DB_QUERY_TIMEOUT_MS 60000

enum db_state { DB_DOWN, DB_CONNECTING, DB_UP };

static struct {
	struct event_base *base;
	pthread_t thread;
	bool started;
	char *conninfo;
	int64_t reconnect_ms;
	db_fatal_fn fatal;

	PGconn *conn;
	enum db_state state;
	bool busy;          /* a query is in flight */
	bool query_failed;  /* an error result came for the query in flight */
	bool want_write;    /* output not yet flushed */
	bool ever_up;
	struct event *sock_ev;
	struct event *timer_ev;   /* reconnect, connect timeout or query timeout */
	struct event *reload_ev;  /* SIGHUP from another thread */
	struct event *stop_ev;
	unsigned long failures; /* connection attempts failed in a row */
	atomic_bool up;
	atomic_ulong reconnects;
} db;

static void db_sock_cb(evutil_socket_t fd, short what, void *arg);
static void db_connect_start(void);

struct event_base *
db_base(void)
{
	return db.base;
}

bool
db_is_up(void)
{
	return atomic_load(&db.up);
}

unsigned long
db_reconnects(void)
{
	return atomic_load(&db.reconnects);
}

bool
db_idle(void)
{
	return db.state == DB_UP && !db.busy;
}

static void
db_timer(int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(db.timer_ev, &tv);
}

/* (Re)arm the socket event for what libpq waits on. */
static void
db_watch(short what)
{
	if (db.sock_ev) {
		event_free(db.sock_ev);
		db.sock_ev = NULL;
	}
	if (!db.conn || PQsocket(db.conn) < 0)
		return;
	db.sock_ev = event_new(db.base, PQsocket(db.conn), what | EV_PERSIST, db_sock_cb, NULL);
	if (db.sock_ev)
		event_add(db.sock_ev, NULL);
}

void
db_disconnect(const char *why)
{
	bool was_up = db.state == DB_UP;
	char msg[512];
	size_t n;

	if (db.state == DB_DOWN)
		return;
	/* libpq messages span lines: keep one log line */
	snprintf(msg, sizeof(msg), "%s", why ? why : "");
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == ' ')
		msg[--n] = 0;
	if (was_up) {
		log_warning("db: connection lost: %s", msg);
		db.failures = 0;
	} else if (db.failures++ % 60 == 0) {
		/* first failure, then once a minute at the default interval */
		log_warning("db: could not connect (attempt %lu): %s", db.failures, msg);
	} else {
		log_debug("db: could not connect (attempt %lu): %s", db.failures, msg);
	}
	if (db.sock_ev) {
		event_free(db.sock_ev);
		db.sock_ev = NULL;
	}
	PQfinish(db.conn);
	db.conn = NULL;
	db.state = DB_DOWN;
	db.busy = false;
	db.want_write = false;
	atomic_store(&db.up, false);
	if (was_up)
		changes_disconnected();
	db_timer(db.reconnect_ms);
}

static void
db_flush(void)
{
	int r = PQflush(db.conn);

	if (r < 0) {
		db_disconnect(PQerrorMessage(db.conn));
		return;
	}
	if ((r == 1) != db.want_write) {
		db.want_write = r == 1;
		db_watch(db.want_write ? EV_READ | EV_WRITE : EV_READ);
	}
}

bool
db_send(const char *sql, int nparams, const char *const *params)
{
	int ok;

	if (!db_idle())
		return false;
	if (nparams > 0)
		ok = PQsendQueryParams(db.conn, sql, nparams, NULL, params, NULL, NULL, 0);
	else
		ok = PQsendQuery(db.conn, sql);
	if (!ok) {
		db_disconnect(PQerrorMessage(db.conn));
		return false;
	}
	db.busy = true;
	db.query_failed = false;
	db_timer(DB_QUERY_TIMEOUT_MS);
	db_flush();
	return db.state == DB_UP;
}

/* Read what arrived: notifications, results of the query in flight. */
static void
db_read(void)
{
	PGnotify *n;

	if (!PQconsumeInput(db.conn)) {
		db_disconnect(PQerrorMessage(db.conn));
		return;
	}
	while (db.busy && !PQisBusy(db.conn)) {
		PGresult *r = PQgetResult(db.conn);

		if (!r) {
			bool ok = !db.query_failed;

			db.busy = false;
			evtimer_del(db.timer_ev);
			changes_done(ok);
			if (db.state != DB_UP)
				return;
			break;
		}
		switch (PQresultStatus(r)) {
		case PGRES_FATAL_ERROR:
		case PGRES_BAD_RESPONSE:
		case PGRES_NONFATAL_ERROR:
			db.query_failed = true;
			log_error("db: query failed: %s", PQresultErrorMessage(r));
			break;
		default:
			if (!db.query_failed)
				changes_result(r);
			break;
		}
		PQclear(r);
		if (db.state != DB_UP)
			return;
	}
	while (db.conn && (n = PQnotifies(db.conn)) != NULL) {
		changes_notify(n->relname, n->extra);
		PQfreemem(n);
	}
	if (db.conn && PQstatus(db.conn) == CONNECTION_BAD) {
		db_disconnect("connection closed");
		return;
	}
	if (db.state == DB_UP && !db.busy)
		changes_pump();
}

static void
db_connect_poll(void)
{
	switch (PQconnectPoll(db.conn)) {
	case PGRES_POLLING_READING:
		db_watch(EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		db_watch(EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		db_disconnect(PQerrorMessage(db.conn));
		return;
	}
	if (PQsetnonblocking(db.conn, 1) != 0) {
		db_disconnect(PQerrorMessage(db.conn));
		return;
	}
	evtimer_del(db.timer_ev);
	if (db.failures || db.ever_up)
		atomic_fetch_add(&db.reconnects, 1);
	db.failures = 0;
	db.ever_up = true;
	db.state = DB_UP;
	db.busy = false;
	atomic_store(&db.up, true);
	log_info("db: connected to %s:%s database \"%s\"", PQhost(db.conn), PQport(db.conn),
		PQdb(db.conn));
	db_watch(EV_READ);
	changes_connected();
	if (db.state == DB_UP && !db.busy)
		changes_pump();
}

static void
db_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	if (db.state == DB_CONNECTING) {
		db_connect_poll();
		return;
	}
	if (db.state != DB_UP)
		return;
	if (what & EV_WRITE) {
		db_flush();
		if (db.state != DB_UP)
			return;
	}
	if (what & EV_READ)
		db_read();
}

static void
db_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	switch (db.state) {
	case DB_DOWN:
		db_connect_start();
		break;
	case DB_CONNECTING:
		db_disconnect("connection timed out");
		break;
	case DB_UP:
		if (db.busy)
			db_disconnect("query timed out");
		break;
	}
}

static void
db_connect_start(void)
{
	db.conn = PQconnectStart(db.conninfo);
	if (!db.conn) {
		log_error("db: out of memory starting a connection");
		db_timer(db.reconnect_ms);
		return;
	}
	db.state = DB_CONNECTING;
	if (PQstatus(db.conn) == CONNECTION_BAD) {
		db_disconnect(PQerrorMessage(db.conn));
		return;
	}
	db_timer(DB_CONNECT_TIMEOUT_MS);
	db_watch(EV_WRITE); /* PQconnectStart: behave as if PGRES_POLLING_WRITING */
}

static void
db_reload_cb(evutil_socket_t fd, short what, void *arg)
{
	changes_request_full();
	if (db_idle())
		changes_pump();
}

static void
db_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(db.base);
}

void
db_request_reload(void)
{
	if (db.reload_ev)
		event_active(db.reload_ev, EV_TIMEOUT, 0);
}

bool
db_setup(const struct config *cfg, db_fatal_fn fatal)
{
	db.base = event_base_new();
	if (!db.base)
		return false;
	db.conninfo = strdup(cfg->database_url);
	db.reconnect_ms = cfg->reconnect_interval_ms;
	db.fatal = fatal;
	db.timer_ev = evtimer_new(db.base, db_timer_cb, NULL);
	db.reload_ev = event_new(db.base, -1, 0, db_reload_cb, NULL);
	db.stop_ev = event_new(db.base, -1, 0, db_stop_cb, NULL);
	if (!db.conninfo || !db.timer_ev || !db.reload_ev || !db.stop_ev)
		return false;
	return changes_setup(cfg);
}

void
db_fatal(int code)
{
	if (db.fatal)
		db.fatal(code);
}

static void *
db_thread(void *arg)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	db_connect_start();
	event_base_dispatch(db.base);
	return NULL;
}

bool
db_start(void)
{
	if (pthread_create(&db.thread, NULL, db_thread, NULL) != 0) {
		log_error("db: could not start the database thread");
		return false;
	}
	db.started = true;
	return true;
}

void
db_stop(void)
{
	if (db.started) {
		event_active(db.stop_ev, EV_TIMEOUT, 0);
		pthread_join(db.thread, NULL);
		db.started = false;
	}
	changes_cleanup();
	if (db.sock_ev)
		event_free(db.sock_ev);
	if (db.timer_ev)
		event_free(db.timer_ev);
	if (db.reload_ev)
		event_free(db.reload_ev);
	if (db.stop_ev)
		event_free(db.stop_ev);
	if (db.conn)
		PQfinish(db.conn);
	if (db.base)
		event_base_free(db.base);
	free(db.conninfo);
	memset(&db, 0, sizeof(db));
}
