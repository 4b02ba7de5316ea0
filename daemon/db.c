/* db.c: the database thread: libpq async connection state machines on its own event_base. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "callrouted/config.h"
#include "db.h"
#include "callrouted/log.h"
#include "callrouted/pq_notice.h"
#include "metrics.h"

#define DB_CONNECT_TIMEOUT_MS 5000
#define DB_QUERY_TIMEOUT_MS 60000
#define DB_MAX_CONNS 8 /* the db thread's own: routes, its doorbell, ledger, instances, ... */
#define DB_NICE 10

enum db_state { DB_DOWN, DB_CONNECTING, DB_UP };

struct db_conn {
	const struct db_conn_ops *ops;
	struct event_base *base; /* the loop of the thread that owns this connection */
	PGconn *conn;
	enum db_state state;
	bool busy;         /* a query is in flight */
	bool query_failed; /* an error result came for the query in flight */
	bool want_write;   /* output not yet flushed */
	bool copying;      /* a COPY TO STDOUT of the query in flight is sending its rows */
	bool ever_up;
	unsigned long failures; /* connection attempts failed in a row */
	unsigned rotate;        /* a multi-host string: start this many hosts further on */
	int64_t connect_ms;     /* this attempt's timeout (connect_timeout, else 5 s) */
	struct event *sock_ev;  /* on sock_fd */
	int sock_fd;            /* our dup of libpq's socket (-1: none): see db_watch */
	struct event *timer_ev; /* reconnect, connect timeout or query timeout */
	struct event *wake_ev;
	char sqlstate[6]; /* of the last error result */
	char errmsg[512]; /* its primary message */
	char *conninfo;   /* NULL: database_url */
	atomic_bool up;
};

static struct {
	struct event_base *base;
	pthread_t thread;
	bool started;
	char *conninfo;
	int64_t reconnect_ms;
	db_fatal_fn fatal;
	struct db_conn *conns[DB_MAX_CONNS];
	int nconns;
	struct event *stop_ev;
	struct event *beat_ev; /* the watchdog's proof that this loop turns */
	struct metrics_thread *metrics;
	atomic_ulong reconnects;
	atomic_ulong read_only_drops;
	atomic_ulong dup_failures; /* db_watch could not duplicate a socket */
	atomic_bool schema_ok;
} db;

static void db_sock_cb(evutil_socket_t fd, short what, void *arg);
static void db_connect_start(struct db_conn *c);

struct event_base *
db_base(void)
{
	return db.base;
}

bool
db_conn_up(const struct db_conn *c)
{
	return atomic_load(&c->up);
}

unsigned long
db_reconnects(void)
{
	return atomic_load(&db.reconnects);
}

unsigned long
db_read_only_drops(void)
{
	return atomic_load(&db.read_only_drops);
}

bool
db_conn_set_conninfo(struct db_conn *c, const char *conninfo)
{
	free(c->conninfo);
	c->conninfo = conninfo ? strdup(conninfo) : NULL;
	return !conninfo || c->conninfo;
}

bool
db_conn_on_standby(const struct db_conn *c)
{
	const char *v = c->conn ? PQparameterStatus(c->conn, "in_hot_standby") : NULL;

	return v && strcmp(v, "on") == 0;
}

void
db_set_schema_ok(bool ok)
{
	atomic_store(&db.schema_ok, ok);
}

bool
db_schema_ok(void)
{
	return atomic_load(&db.schema_ok);
}

const char *
db_sqlstate(const struct db_conn *c)
{
	return c->sqlstate;
}

const char *
db_error_message(const struct db_conn *c)
{
	return c->errmsg;
}

bool
db_idle(const struct db_conn *c)
{
	return c->state == DB_UP && !c->busy;
}

void
db_wake(struct db_conn *c)
{
	event_active(c->wake_ev, EV_TIMEOUT, 0);
}

static void
db_timer(struct db_conn *c, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(c->timer_ev, &tv);
}

/* Drop the socket event and the descriptor it watches. */
static void
db_unwatch(struct db_conn *c)
{
	if (c->sock_ev) {
		event_free(c->sock_ev);
		c->sock_ev = NULL;
	}
	if (c->sock_fd >= 0)
		close(c->sock_fd);
	c->sock_fd = -1;
}

/*
 * (Re)arm the socket event for what libpq waits on.  The event watches a duplicate of libpq's
 * socket, never libpq's own descriptor: libpq closes that one itself (a multi-host connect
 * moving on to the next host, a read that meets the server's end), and its number can then
 * be handed at once to a socket of another thread (the admin thread's connections beside the
 * db thread's).  Removing or re-arming an event on the old number would then act on that
 * other socket (ThreadSanitizer caught it at a failover: epoll_ctl on a descriptor another
 * thread had just created).  The duplicate stays ours until db_unwatch closes it.
 */
static void
db_watch(struct db_conn *c, short what)
{
	db_unwatch(c);
	if (!c->conn || PQsocket(c->conn) < 0)
		return;
	/* dup(), not fcntl's F_DUPFD_CLOEXEC: ThreadSanitizer follows descriptors through dup
	 * only (nothing here execs: close-on-exec is hygiene) */
	c->sock_fd = dup(PQsocket(c->conn));
	if (c->sock_fd >= 0)
		(void)fcntl(c->sock_fd, F_SETFD, FD_CLOEXEC);
	else if (atomic_fetch_add(&db.dup_failures, 1) % 100 == 0)
		/* no descriptor left: watch libpq's own (the old way) rather than lose it */
		log_warning("db: %s: could not duplicate the connection's socket (%s): watching "
			    "libpq's own descriptor",
			c->ops->name, strerror(errno));
	c->sock_ev = event_new(c->base, c->sock_fd >= 0 ? c->sock_fd : PQsocket(c->conn),
		what | EV_PERSIST, db_sock_cb, c);
	if (c->sock_ev)
		event_add(c->sock_ev, NULL);
}

void
db_disconnect(struct db_conn *c, const char *why)
{
	bool was_up = c->state == DB_UP;
	char msg[512];
	size_t n;

	if (c->state == DB_DOWN)
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
		log_warning("db: %s connection lost: %s", c->ops->name, log_esc(msg));
		c->failures = 0;
	} else if (c->failures++ % 60 == 0) {
		/* first failure, then once a minute at the default interval */
		log_warning("db: %s: could not connect (attempt %lu): %s", c->ops->name,
			c->failures, log_esc(msg));
	} else {
		log_debug("db: %s: could not connect (attempt %lu): %s", c->ops->name, c->failures,
			log_esc(msg));
	}
	db_unwatch(c);
	PQfinish(c->conn);
	c->conn = NULL;
	c->state = DB_DOWN;
	c->busy = false;
	c->want_write = false;
	c->copying = false;
	atomic_store(&c->up, false);
	if (was_up)
		c->ops->disconnected(c);
	db_timer(c, db.reconnect_ms);
}

static void
db_flush(struct db_conn *c)
{
	int r = PQflush(c->conn);

	if (r < 0) {
		db_disconnect(c, PQerrorMessage(c->conn));
		return;
	}
	if ((r == 1) != c->want_write) {
		c->want_write = r == 1;
		db_watch(c, c->want_write ? EV_READ | EV_WRITE : EV_READ);
	}
}

void
db_param_v(char **p, int *n, const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	p[(*n)++] = s;
}

void
db_param(char **p, int *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	db_param_v(p, n, fmt, ap);
	va_end(ap);
}

void
db_param_str(char **p, int *n, const char *s)
{
	p[(*n)++] = s ? strdup(s) : NULL;
}

void
db_params_free(char **p, int *n)
{
	for (int i = 0; i < *n; i++)
		free(p[i]);
	*n = 0;
}

static void db_read(struct db_conn *c);

/* After PQsend*: the query is on its way (its timer armed), or the connection is dropped. */
static bool
db_sent(struct db_conn *c, int ok)
{
	if (!ok) {
		db_disconnect(c, PQerrorMessage(c->conn));
		return false;
	}
	c->busy = true;
	c->query_failed = false;
	c->sqlstate[0] = 0;
	c->errmsg[0] = 0;
	db_timer(c, DB_QUERY_TIMEOUT_MS);
	db_flush(c);
	return c->state == DB_UP;
}

bool
db_send(struct db_conn *c, const char *sql, int nparams, const char *const *params)
{
	int ok;

	if (!db_idle(c))
		return false;
	if (nparams > 0)
		ok = PQsendQueryParams(c->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	else
		ok = PQsendQuery(c->conn, sql);
	return db_sent(c, ok);
}

bool
db_send_prepared(struct db_conn *c, const char *stmt, int nparams, const char *const *params)
{
	if (!db_idle(c))
		return false;
	return db_sent(c, PQsendQueryPrepared(c->conn, stmt, nparams, params, NULL, NULL, 0));
}

void
db_conn_poll(struct db_conn *c)
{
	if (c && c->state == DB_UP)
		db_read(c);
}

/* The rows of a COPY TO STDOUT read so far, to the owner: false while more are to come (or
 * the connection was lost), true once the COPY has sent them all. */
static bool
db_copy_rows(struct db_conn *c)
{
	for (;;) {
		char *buf = NULL;
		int n = PQgetCopyData(c->conn, &buf, 1);

		if (n > 0) {
			if (c->ops->copy_data && !c->query_failed)
				c->ops->copy_data(c, buf, n);
			PQfreemem(buf);
			if (c->state != DB_UP)
				return false;
			continue;
		}
		if (n == 0)
			return false; /* the rest has not arrived: the next read goes on */
		c->copying = false;
		if (n == -2) {
			db_disconnect(c, PQerrorMessage(c->conn));
			return false;
		}
		return true; /* -1: done; PQgetResult has the COPY's result */
	}
}

/* Read what arrived: notifications, results of the query in flight. */
static void
db_read(struct db_conn *c)
{
	PGnotify *n;

	if (!PQconsumeInput(c->conn)) {
		db_disconnect(c, PQerrorMessage(c->conn));
		return;
	}
	while (c->busy && !PQisBusy(c->conn)) {
		PGresult *r;

		if (c->copying && !db_copy_rows(c)) {
			if (c->state != DB_UP)
				return;
			break;
		}
		r = PQgetResult(c->conn);

		if (!r) {
			bool ok = !c->query_failed;

			c->busy = false;
			evtimer_del(c->timer_ev);
			c->ops->done(c, ok);
			if (c->state != DB_UP)
				return;
			/* read_only_sql_transaction: this server is (now) a standby; the owner
			 * was told (done); a new connection finds the primary */
			if (c->ops->needs_primary && strcmp(c->sqlstate, "25006") == 0) {
				atomic_fetch_add(&db.read_only_drops, 1);
				db_disconnect(c, "the server is read-only (SQLSTATE 25006): "
						 "looking for the primary");
				return;
			}
			break;
		}
		switch (PQresultStatus(r)) {
		case PGRES_FATAL_ERROR:
		case PGRES_BAD_RESPONSE:
		case PGRES_NONFATAL_ERROR: {
			const char *m = PQresultErrorMessage(r);
			const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			const char *pm = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

			snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st ? st : "");
			snprintf(c->errmsg, sizeof(c->errmsg), "%s", pm ? pm : m);
			c->query_failed = true;
			/* the server's message quotes the data it refused: outside text */
			log_error("db: %s query failed: %s", c->ops->name, log_esc(c->errmsg));
			break;
		}
		default:
			if (!c->query_failed)
				c->ops->result(c, r);
			c->copying = PQresultStatus(r) == PGRES_COPY_OUT;
			break;
		}
		PQclear(r);
		if (c->state != DB_UP)
			return;
	}
	while (c->conn && (n = PQnotifies(c->conn)) != NULL) {
		if (c->ops->notify)
			c->ops->notify(c, n->relname, n->extra);
		PQfreemem(n);
	}
	if (c->conn && PQstatus(c->conn) == CONNECTION_BAD) {
		db_disconnect(c, "connection closed");
		return;
	}
	if (c->state == DB_UP && !c->busy)
		c->ops->pump(c);
}

static void
db_connect_poll(struct db_conn *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		db_watch(c, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		db_watch(c, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		db_disconnect(c, PQerrorMessage(c->conn));
		return;
	}
	if (PQsetnonblocking(c->conn, 1) != 0) {
		db_disconnect(c, PQerrorMessage(c->conn));
		return;
	}
	evtimer_del(c->timer_ev);
	if (c->ops->needs_primary && db_conn_on_standby(c)) {
		/* a multi-host string without target_session_attrs=read-write, or a
		 * single standby address: try again (the primary may be promoted meanwhile) */
		atomic_fetch_add(&db.read_only_drops, 1);
		db_disconnect(c, "the server is a hot standby (in_hot_standby on): this "
				 "connection needs the primary");
		return;
	}
	if (c->failures || c->ever_up)
		atomic_fetch_add(&db.reconnects, 1);
	c->failures = 0;
	c->ever_up = true;
	c->state = DB_UP;
	c->busy = false;
	atomic_store(&c->up, true);
	log_info("db: %s connected to %s:%s database \"%s\"", c->ops->name,
		log_esc(PQhost(c->conn)), log_esc(PQport(c->conn)), log_esc(PQdb(c->conn)));
	db_watch(c, EV_READ);
	c->ops->connected(c);
	if (c->state == DB_UP && !c->busy)
		c->ops->pump(c);
}

static void
db_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;

	if (c->state == DB_CONNECTING) {
		db_connect_poll(c);
		return;
	}
	if (c->state != DB_UP)
		return;
	if (what & EV_WRITE) {
		db_flush(c);
		if (c->state != DB_UP)
			return;
	}
	if (what & EV_READ)
		db_read(c);
}

static void
db_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;

	switch (c->state) {
	case DB_DOWN:
		db_connect_start(c);
		break;
	case DB_CONNECTING:
		/* the next attempt starts at the next host of a multi-host string */
		c->rotate++;
		db_disconnect(c, "connection timed out");
		break;
	case DB_UP:
		if (c->busy)
			db_disconnect(c, "query timed out");
		break;
	}
}

static void
db_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;

	if (db_idle(c))
		c->ops->pump(c);
}

/* The comma-separated list v with its items rotated left by r (n items); NULL: as it is. */
static char *
db_rotate_list(const char *v, unsigned r, size_t n)
{
	size_t len = strlen(v), k = 0;
	const char *items[64];
	char *out, *p;

	if (n < 2 || n > 64 || r % n == 0)
		return NULL;
	items[k++] = v;
	for (const char *q = v; *q; q++)
		if (*q == ',' && k < 64)
			items[k++] = q + 1;
	if (k != n || !(out = malloc(len + 2)))
		return NULL;
	p = out;
	for (size_t i = 0; i < n; i++) {
		const char *it = items[(i + r) % n];
		size_t il = strcspn(it, ",");

		if (i)
			*p++ = ',';
		memcpy(p, it, il);
		p += il;
	}
	*p = 0;
	return out;
}

/*
 * Start connecting through the parsed string: libpq's asynchronous connect applies no
 * connect_timeout, so our timer does (connect_timeout if the string sets one, else 5 s); after
 * an attempt timed out the hosts of a multi-host string are tried from the next one (each
 * attempt would otherwise start at a host that drops packets, and never reach the standby
 * promoted behind it).  An owner that needs the primary gets target_session_attrs=read-write
 * whatever the string says (with "any", libpq would land on the first host every time).
 */
static PGconn *
db_connect_params(struct db_conn *c, const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL), *o;
	const char *kw[64], *val[64];
	char *owned[3] = { NULL, NULL, NULL };
	size_t n = 0, nhosts = 0;
	PGconn *conn;

	c->connect_ms = DB_CONNECT_TIMEOUT_MS;
	if (!opts)
		return PQconnectStart(conninfo); /* it reports what is wrong */
	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) {
			size_t h = 1;

			for (const char *q = o->val ? o->val : ""; *q; q++)
				h += *q == ',';
			if (o->val && *o->val && h > nhosts)
				nhosts = h;
		}
	for (o = opts; o->keyword && n < 62; o++) {
		const char *v = o->val;

		if (!v || !*v || strcmp(o->keyword, "target_session_attrs") == 0)
			continue;
		if (strcmp(o->keyword, "connect_timeout") == 0 && atoi(v) > 0)
			c->connect_ms = (int64_t)atoi(v) * 1000;
		if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
			strcmp(o->keyword, "port") == 0) {
			int slot = o->keyword[0] == 'p' ? 2 : o->keyword[4] ? 1 : 0;
			char *r = db_rotate_list(v, c->rotate, nhosts);

			if (r) {
				owned[slot] = r;
				v = r;
			}
		}
		kw[n] = o->keyword;
		val[n++] = v;
	}
	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "target_session_attrs") == 0 && !c->ops->needs_primary &&
			o->val && *o->val) {
			kw[n] = o->keyword;
			val[n++] = o->val;
		}
	if (c->ops->needs_primary) {
		kw[n] = "target_session_attrs";
		val[n++] = "read-write";
	}
	kw[n] = NULL;
	val[n] = NULL;
	conn = PQconnectStartParams(kw, val, 0);
	for (int i = 0; i < 3; i++)
		free(owned[i]);
	PQconninfoFree(opts);
	return conn;
}

static void
db_connect_start(struct db_conn *c)
{
	c->conn = db_connect_params(c, c->conninfo ? c->conninfo : db.conninfo);
	if (!c->conn) {
		log_error("db: out of memory starting a connection");
		db_timer(c, db.reconnect_ms);
		return;
	}
	c->state = DB_CONNECTING;
	pq_notice_install(c->conn, c->ops->name);
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		db_disconnect(c, PQerrorMessage(c->conn));
		return;
	}
	db_timer(c, c->connect_ms);
	db_watch(c, EV_WRITE); /* PQconnectStart: behave as if PGRES_POLLING_WRITING */
}

struct db_conn *
db_conn_new(const struct db_conn_ops *ops)
{
	return db_conn_new_on(db.base, ops);
}

struct db_conn *
db_conn_new_on(struct event_base *base, const struct db_conn_ops *ops)
{
	struct db_conn *c;

	/* the db thread's own connections are listed (it starts and frees them); another
	 * thread's connection belongs to that thread alone (no shared list to race on) */
	if (base == db.base && db.nconns == DB_MAX_CONNS)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ops = ops;
	c->base = base;
	c->sock_fd = -1;
	c->timer_ev = evtimer_new(base, db_timer_cb, c);
	c->wake_ev = event_new(base, -1, 0, db_wake_cb, c);
	if (!c->timer_ev || !c->wake_ev) {
		if (c->timer_ev)
			event_free(c->timer_ev);
		free(c);
		return NULL;
	}
	if (base == db.base)
		db.conns[db.nconns++] = c;
	return c;
}

static void
db_conn_free(struct db_conn *c)
{
	db_unwatch(c);
	event_free(c->timer_ev);
	event_free(c->wake_ev);
	if (c->conn)
		PQfinish(c->conn);
	free(c->conninfo);
	free(c);
}

void
db_conn_start(struct db_conn *c)
{
	db_connect_start(c);
}

void
db_conn_release(struct db_conn *c)
{
	if (c)
		db_conn_free(c);
}

static void
db_beat_cb(evutil_socket_t fd, short what, void *arg)
{
	metrics_beat();
}

static void
db_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(db.base);
}

void
db_fatal(int code)
{
	if (db.fatal)
		db.fatal(code);
}

bool
db_setup(const struct config *cfg, db_fatal_fn fatal)
{
	struct timeval beat = { 0, 100000 };

	db.base = event_base_new();
	if (!db.base)
		return false;
	db.conninfo = strdup(cfg->database_url);
	db.reconnect_ms = cfg->reconnect_interval_ms;
	db.fatal = fatal;
	db.stop_ev = event_new(db.base, -1, 0, db_stop_cb, NULL);
	db.beat_ev = event_new(db.base, -1, EV_PERSIST, db_beat_cb, NULL);
	db.metrics = metrics_thread_new("db", true);
	if (!db.conninfo || !db.stop_ev || !db.beat_ev || !db.metrics)
		return false;
	event_add(db.beat_ev, &beat);
	return true;
}

static void *
db_thread(void *arg)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	metrics_self = db.metrics;
	/* a full reload of a million numbers is a second of CPU: on a small machine it must
	 * not take it from the webhook workers (Linux: nice applies per thread) */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), DB_NICE) != 0) {
		/* it still works, only at the workers' priority (a seccomp filter without
		 * setpriority answers EPERM: see systemd/callrouted.service) */
		METRICS_INC(thread_priority_failures, 0);
		log_warning("db: could not set the database thread's nice value to %d: %s", DB_NICE,
			strerror(errno));
	}
	for (int i = 0; i < db.nconns; i++)
		if (db.conns[i]->base == db.base)
			db_connect_start(db.conns[i]);
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
}

void
db_free(void)
{
	db_stop();
	for (int i = 0; i < db.nconns; i++)
		db_conn_free(db.conns[i]);
	if (db.stop_ev)
		event_free(db.stop_ev);
	if (db.beat_ev)
		event_free(db.beat_ev);
	if (db.base)
		event_base_free(db.base);
	free(db.conninfo);
	memset(&db, 0, sizeof(db));
}

void
db_stats(stat_fn add, void *ctx)
{
	STAT_COUNTER(add, ctx, "callrouted_db_reconnects_total",
		"Connections to PostgreSQL made again after a failure or a loss.", db_reconnects());
	STAT_COUNTER(add, ctx, "callrouted_db_read_only_drops_total",
		"Connections dropped because they found a read-only server (a standby) where they "
		"need the primary.",
		db_read_only_drops());
	STAT_COUNTER(add, ctx, "callrouted_db_server_notices_total",
		"Notices, warnings and idle-connection errors (a FATAL before the server closes a "
		"connection) PostgreSQL sent outside a query's result; each is logged.",
		pq_notices());
	STAT_COUNTER(add, ctx, "callrouted_db_socket_dup_failures_total",
		"Database sockets watched through libpq's own descriptor because no duplicate could "
		"be made (descriptors exhausted).",
		atomic_load(&db.dup_failures));
}
