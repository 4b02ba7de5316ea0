/* instances.c: this daemon's row in callrouted_instances, upserted on the db thread. */
/* Who, version, start, heartbeat, route generation, journal backlog: every few seconds. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "callrouted/config.h"
#include "db.h"
#include "instances.h"
#include "journal.h"
#include "callrouted/log.h"
#include "metrics.h"
#include "routes.h"

#define INSTANCES_TICK_MS 500

/* The database's clock stamps the heartbeat (one clock for every daemon: callroutectl compares
 * it with now()); the start time is this process's.  A row is ours to overwrite when it was
 * written from our host and state directory (this daemon, or the one before it there: the state
 * lock allows one at a time) or is stale; a live row of another daemon under the same
 * instance_name is left alone (0 rows: instances_done says so). */
static const char sql_upsert[] =
	"INSERT INTO callrouted_instances (instance_name, version, hostname, pid, listen, "
	"admin_listen, started_at, heartbeat_at, route_generation, change_generation, route_source, "
	"numbers, journal_backlog, journal_bytes, journal_writable, state_dir) "
	"VALUES ($1, $2, $3, $4::integer, $5, $6, to_timestamp($7::double precision), now(), "
	"$8::bigint, $9::bigint, $10, $11::bigint, $12::bigint, $13::bigint, $14::boolean, $15) "
	"ON CONFLICT (instance_name) DO UPDATE SET version = EXCLUDED.version, "
	"hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, listen = EXCLUDED.listen, "
	"admin_listen = EXCLUDED.admin_listen, started_at = EXCLUDED.started_at, "
	"heartbeat_at = EXCLUDED.heartbeat_at, route_generation = EXCLUDED.route_generation, "
	"change_generation = EXCLUDED.change_generation, route_source = EXCLUDED.route_source, "
	"numbers = EXCLUDED.numbers, journal_backlog = EXCLUDED.journal_backlog, "
	"journal_bytes = EXCLUDED.journal_bytes, journal_writable = EXCLUDED.journal_writable, "
	"state_dir = EXCLUDED.state_dir "
	"WHERE (callrouted_instances.hostname = EXCLUDED.hostname AND "
	"callrouted_instances.state_dir = EXCLUDED.state_dir) OR "
	"callrouted_instances.heartbeat_at < now() - make_interval(secs => " INSTANCES_STALE_TEXT
	")";

static struct {
	struct db_conn *conn;
	struct event *timer_ev;
	struct event *retry_ev; /* the schema is not checked yet: look again soon */
	char *name, *listen, *admin_listen, *state_dir;
	char host[256];
	char pid[16];
	bool due;  /* a heartbeat is to be written when the connection is idle */
	int ticks; /* of INSTANCES_TICK_MS since the last write was asked */
	const struct routes_snapshot *written; /* the table the last row described */
	long rows;    /* rows the last upsert wrote (0: the name is another live daemon's) */
	bool taken;   /* that was logged (once until the row is ours again) */
	bool failing; /* the last write failed (logged once until one succeeds) */
	atomic_ullong change_gen; /* 0: the loader has reported none */
	atomic_ulong beats, failures;
} in;

void
instances_set_change_generation(uint64_t generation)
{
	atomic_store(&in.change_gen, generation);
}

/* Send this daemon's row (db thread; the connection is idle and the schema checked). */
static void
instances_send(void)
{
	const struct routes_snapshot *s = routes_current(); /* the db thread publishes */
	uint64_t cg = atomic_load(&in.change_gen);
	struct journal_stats js;
	char started[32], gen[24], cgen[24], numbers[24], backlog[24], bytes[24];
	const char *params[15];

	journal_get_stats(&js);
	snprintf(started, sizeof(started), "%.3f", metrics_started_at());
	snprintf(gen, sizeof(gen), "%llu", s ? (unsigned long long)s->generation : 0ULL);
	snprintf(cgen, sizeof(cgen), "%llu", (unsigned long long)cg);
	snprintf(numbers, sizeof(numbers), "%u", s ? s->numbers.count : 0U);
	snprintf(backlog, sizeof(backlog), "%llu", (unsigned long long)js.pending);
	snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)js.bytes_on_disk);
	params[0] = in.name;
	params[1] = CALLROUTED_VERSION;
	params[2] = in.host;
	params[3] = in.pid;
	params[4] = in.listen;
	params[5] = in.admin_listen;
	params[6] = started;
	params[7] = gen;
	params[8] = cg ? cgen : NULL;
	params[9] = !s ? "none" : s->source == ROUTES_FROM_FILE ? "snapshot" : "database";
	params[10] = numbers;
	params[11] = backlog;
	params[12] = bytes;
	params[13] = js.writable ? "t" : "f";
	params[14] = in.state_dir;
	in.rows = -1;
	if (db_send(in.conn, sql_upsert, 15, params)) {
		in.due = false;
		in.ticks = 0;
		in.written = s; /* compared by address only, never read through */
	}
}

static void
instances_pump(struct db_conn *c)
{
	struct timeval soon = { 0, 200000 };

	if (!in.due)
		return;
	/* before the schema check (the route loader's) the table may not exist yet */
	if (db_schema_ok())
		instances_send();
	else
		evtimer_add(in.retry_ev, &soon);
}

static void
instances_connected(struct db_conn *c)
{
	in.due = true; /* at once: a (re)started daemon shows up without waiting a period */
}

static void
instances_disconnected(struct db_conn *c)
{
}

static void
instances_result(struct db_conn *c, PGresult *r)
{
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		in.rows = strtol(PQcmdTuples(r), NULL, 10);
}

static void
instances_done(struct db_conn *c, bool ok)
{
	if (ok && in.rows == 0) {
		atomic_fetch_add(&in.failures, 1);
		if (!in.taken)
			log_warning(
				"instances: instance_name \"%s\" belongs to another live daemon (other "
				"host or state_dir): this one's row is not written; give each "
				"daemon its own instance_name",
				log_esc(in.name));
		in.taken = true;
		return;
	}
	in.taken = false;
	if (ok) {
		atomic_fetch_add(&in.beats, 1);
		if (in.failing)
			log_info("instances: heartbeat of \"%s\" written again", log_esc(in.name));
		in.failing = false;
		return;
	}
	atomic_fetch_add(&in.failures, 1);
	if (!in.failing)
		log_warning("instances: could not write the heartbeat of \"%s\" (SQLSTATE %s); "
			    "retrying every %d s",
			log_esc(in.name), log_esc(db_sqlstate(c)), INSTANCES_INTERVAL_MS / 1000);
	in.failing = true;
	/* a server that turned read-only (a demoted primary, a standby: SQLSTATE 25006): connect
	 * again, which finds the primary through a multi-host database_url with
	 * target_session_attrs=read-write */
	if (strcmp(db_sqlstate(c), "25006") == 0)
		db_disconnect(c, "the server is read-only");
}

static const struct db_conn_ops instances_ops = {
	.needs_primary = true, /* it writes */
	.name = "instances",
	.connected = instances_connected,
	.disconnected = instances_disconnected,
	.result = instances_result,
	.done = instances_done,
	.pump = instances_pump,
};

/* Every INSTANCES_TICK_MS: a row every INSTANCES_INTERVAL_MS, and at once when the route table
 * changed (a reload, the first load after a start from the snapshot file). */
static void
instances_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	if (++in.ticks >= INSTANCES_INTERVAL_MS / INSTANCES_TICK_MS ||
		routes_current() != in.written)
		in.due = true;
	if (in.due && db_idle(in.conn))
		instances_pump(in.conn);
}

static void
instances_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	if (in.due && db_idle(in.conn))
		instances_pump(in.conn);
}

bool
instances_setup(const struct config *cfg)
{
	struct timeval tv = { INSTANCES_TICK_MS / 1000, (INSTANCES_TICK_MS % 1000) * 1000 };

	if (gethostname(in.host, sizeof(in.host) - 1) != 0)
		snprintf(in.host, sizeof(in.host), "unknown");
	snprintf(in.pid, sizeof(in.pid), "%ld", (long)getpid());
	in.name = strdup(cfg->instance_name);
	in.listen = strdup(cfg->listen);
	in.admin_listen = strdup(cfg->admin_listen);
	in.state_dir = strdup(cfg->state_dir);
	in.conn = db_conn_new(&instances_ops);
	in.timer_ev = event_new(db_base(), -1, EV_PERSIST, instances_timer_cb, NULL);
	in.retry_ev = evtimer_new(db_base(), instances_retry_cb, NULL);
	if (!in.name || !in.listen || !in.admin_listen || !in.state_dir || !in.conn ||
		!in.timer_ev || !in.retry_ev) {
		log_error("instances: could not set up the heartbeat");
		return false;
	}
	event_add(in.timer_ev, &tv);
	return true;
}

void
instances_cleanup(void)
{
	if (in.timer_ev)
		event_free(in.timer_ev);
	if (in.retry_ev)
		event_free(in.retry_ev);
	in.timer_ev = in.retry_ev = NULL;
	free(in.name);
	free(in.listen);
	free(in.admin_listen);
	free(in.state_dir);
	in.name = in.listen = in.admin_listen = in.state_dir = NULL;
	in.conn = NULL; /* db_free frees it */
}

void
instances_stats(stat_fn add, void *ctx)
{
	STAT_COUNTER(add, ctx, "callrouted_instance_heartbeats_total",
		"Rows of this instance written to callrouted_instances.", atomic_load(&in.beats));
	STAT_COUNTER(add, ctx, "callrouted_instance_heartbeat_failures_total",
		"Writes of this instance's callrouted_instances row that failed.",
		atomic_load(&in.failures));
	/* 0 until the loader reports one: the rules ignore an instance at 0 */
	STAT_GAUGE(add, ctx, "callrouted_routes_change_generation",
		"Shared change counter the route table reflects (the same on every up-to-date "
		"instance; 0: not reported).",
		(double)atomic_load(&in.change_gen));
}
