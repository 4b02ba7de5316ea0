/* replwait.c: replication-aware checkpoints: drained batches wait for the standbys (db thread). */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "callrouted/config.h"
#include "db.h"
#include "journal.h"
#include "callrouted/log.h"
#include "replwait.h"

#define REPLWAIT_QUEUE 1024 /* committed batches waiting; more: the drain pauses */
#define REPLWAIT_POLL_MS 20 /* while something waits: look at the standbys this often */

/*
 * One round trip, sent right after a batch commits on the same connection: the WAL insert
 * position now (past the commit record; not pg_current_wal_lsn(), the position written out,
 * which under synchronous_commit = off can still be before it), and the standbys' flush
 * positions.  Standbys: the physical
 * walsenders of pg_stat_replication (a logical subscriber is no failover target; a base
 * backup is no standby) and the physical slots nobody streams from now (a standby that is
 * configured but away).  flush_lsn is NULL to a role without pg_read_all_stats: counted
 * apart (column 4) to say so once.  LSNs as byte numbers.
 */
const char replwait_sql[] =
	"WITH s AS (SELECT r.flush_lsn AS lsn FROM pg_stat_replication r "
	"WHERE coalesce(r.state, '') <> 'backup' AND NOT EXISTS (SELECT 1 FROM "
	"pg_replication_slots l WHERE l.active_pid = r.pid AND l.slot_type = 'logical') "
	"UNION ALL SELECT restart_lsn FROM pg_replication_slots "
	"WHERE slot_type = 'physical' AND NOT active) "
	"SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::text, count(*), "
	"coalesce((min(lsn) - '0/0'::pg_lsn)::text, '0'), count(lsn) FROM s";

struct rw_batch {
	uint64_t seq, records;
	uint64_t lsn; /* 0: not known yet (the next query's position is after its commit) */
	int64_t since_ms;
};

static struct {
	bool on;
	int64_t timeout_ms;
	void (*wake)(void);
	struct event *poll_ev;
	struct rw_batch q[REPLWAIT_QUEUE];
	size_t head, n;
	bool due;
	bool result_seen;
	uint64_t now_lsn, flush_lsn, standbys, readable;
	bool warned_timeout, warned_unreadable;
	_Atomic uint64_t waiting_records, lag_bytes, n_standbys, timeouts;
} rw;

static int64_t
replwait_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
replwait_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	rw.due = true;
	if (rw.wake)
		rw.wake();
}

static void
replwait_gauge(void)
{
	uint64_t recs = 0;

	for (size_t i = 0; i < rw.n; i++)
		recs += rw.q[(rw.head + i) % REPLWAIT_QUEUE].records;
	atomic_store(&rw.waiting_records, recs);
}

bool
replwait_setup(const struct config *cfg, void (*wake)(void))
{
	rw.on = strcmp(cfg->replication_wait, "off") != 0;
	rw.timeout_ms = cfg->replication_wait_timeout_ms;
	rw.wake = wake;
	rw.poll_ev = evtimer_new(db_base(), replwait_poll_cb, NULL);
	return rw.poll_ev != NULL;
}

void
replwait_cleanup(void)
{
	if (rw.poll_ev)
		event_free(rw.poll_ev);
	rw.poll_ev = NULL;
	rw.n = rw.head = 0;
	rw.due = false;
}

void
replwait_committed(uint64_t seq, uint64_t records)
{
	struct rw_batch *b;

	if (!rw.on) {
		journal_checkpoint(seq, records);
		return;
	}
	if (rw.n > 0 && rw.q[(rw.head + rw.n - 1) % REPLWAIT_QUEUE].lsn == 0) {
		/* the last one waits for its position too: one entry */
		b = &rw.q[(rw.head + rw.n - 1) % REPLWAIT_QUEUE];
		if (seq > b->seq)
			b->seq = seq;
		b->records += records;
	} else if (rw.n == REPLWAIT_QUEUE) {
		/* cannot happen (replwait_full stops the drain first): be safe, not lossy */
		log_error("replwait: queue full; checkpointing record %" PRIu64 " now", seq);
		journal_checkpoint(seq, records);
		return;
	} else {
		b = &rw.q[(rw.head + rw.n) % REPLWAIT_QUEUE];
		b->seq = seq;
		b->records = records;
		b->lsn = 0;
		b->since_ms = replwait_now_ms();
		rw.n++;
	}
	rw.due = true;
	replwait_gauge();
}

bool
replwait_full(void)
{
	return rw.n >= REPLWAIT_QUEUE - 1;
}

bool
replwait_due(void)
{
	return rw.on && rw.n > 0 && rw.due;
}

static bool
replwait_u64(const PGresult *r, int col, uint64_t *out)
{
	char *end;
	const char *v;

	if (PQgetisnull(r, 0, col))
		return false;
	v = PQgetvalue(r, 0, col);
	*out = strtoull(v, &end, 10);
	return end != v && (*end == 0 || *end == '.');
}

void
replwait_result(const PGresult *r)
{
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 4)
		return;
	if (!replwait_u64(r, 0, &rw.now_lsn) || !replwait_u64(r, 1, &rw.standbys) ||
		!replwait_u64(r, 2, &rw.flush_lsn) || !replwait_u64(r, 3, &rw.readable))
		return;
	rw.result_seen = true;
}

/* Checkpoint the batches from the head up to and including the i-th. */
static void
replwait_release(size_t upto)
{
	uint64_t seq = 0, records = 0;

	for (size_t i = 0; i < upto; i++) {
		struct rw_batch *b = &rw.q[rw.head];

		seq = b->seq;
		records += b->records;
		rw.head = (rw.head + 1) % REPLWAIT_QUEUE;
		rw.n--;
	}
	replwait_gauge(); /* before the checkpoint: its pending count falls first */
	if (upto)
		journal_checkpoint(seq, records);
}

void
replwait_done(bool ok)
{
	struct timeval tv = { 0, REPLWAIT_POLL_MS * 1000 };
	int64_t now = replwait_now_ms();
	size_t release = 0;

	rw.due = false;
	if (!ok || !rw.result_seen) {
		/* a failed query: look again at the next poll (the connection may be going) */
		rw.result_seen = false;
		if (rw.n)
			evtimer_add(rw.poll_ev, &tv);
		return;
	}
	rw.result_seen = false;
	/* every batch queued before this query committed before it: the position is past it */
	for (size_t i = 0; i < rw.n; i++) {
		struct rw_batch *b = &rw.q[(rw.head + i) % REPLWAIT_QUEUE];

		if (b->lsn == 0)
			b->lsn = rw.now_lsn;
	}
	atomic_store(&rw.n_standbys, rw.standbys);
	atomic_store(&rw.lag_bytes,
		rw.standbys && rw.now_lsn > rw.flush_lsn ? rw.now_lsn - rw.flush_lsn : 0);
	if (rw.standbys > 0 && rw.readable == 0 && !rw.warned_unreadable) {
		rw.warned_unreadable = true;
		log_warning("replwait: the standbys' positions are not readable (grant "
			    "pg_read_all_stats to this role): drained batches wait %" PRId64
			    " ms each before their journal records are recycled",
			rw.timeout_ms);
	}
	while (release < rw.n) {
		const struct rw_batch *b = &rw.q[(rw.head + release) % REPLWAIT_QUEUE];

		if (rw.standbys > 0 && b->lsn > rw.flush_lsn) {
			if (now - b->since_ms < rw.timeout_ms)
				break;
			atomic_fetch_add(&rw.timeouts, 1);
			if (!rw.warned_timeout)
				log_warning(
					"replwait: a standby has not flushed the ledger's commit "
					"at %" PRIu64 " within %" PRId64 " ms (it is at %" PRIu64
					"): recycling the journal "
					"records anyway; a failover to it can lose them",
					b->lsn, rw.timeout_ms, rw.flush_lsn);
			rw.warned_timeout = true;
		} else if (rw.warned_timeout && rw.standbys > 0) {
			log_info("replwait: the standbys have caught up again");
			rw.warned_timeout = false;
		}
		release++;
	}
	replwait_release(release);
	replwait_gauge();
	if (rw.n)
		evtimer_add(rw.poll_ev, &tv);
}

void
replwait_reset(void)
{
	rw.n = rw.head = 0;
	rw.due = false;
	rw.result_seen = false;
	if (rw.poll_ev)
		evtimer_del(rw.poll_ev);
	replwait_gauge();
}

void
replwait_stats(stat_fn add, void *ctx)
{
	STAT_GAUGE(add, ctx, "callrouted_ledger_replication_wait_records",
		"Drained call events committed on the primary whose journal records wait for the "
		"standbys.",
		(double)atomic_load(&rw.waiting_records));
	STAT_GAUGE(add, ctx, "callrouted_ledger_replication_lag_bytes",
		"WAL bytes between the primary's position and the slowest standby's flush "
		"(last look).",
		(double)atomic_load(&rw.lag_bytes));
	STAT_GAUGE(add, ctx, "callrouted_ledger_replication_standbys",
		"Standbys (and unused physical slots) the drain waits for (last look).",
		(double)atomic_load(&rw.n_standbys));
	STAT_COUNTER(add, ctx, "callrouted_ledger_replication_timeouts_total",
		"Drained batches recycled before every standby had them (replication_wait_timeout).",
		atomic_load(&rw.timeouts));
}
