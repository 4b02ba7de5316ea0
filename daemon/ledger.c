/* ledger.c: call events: the worker step (check, attribute, rate, encode) and the drain. */
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "callrouted/config.h"
#include "db.h"
#include "callrouted/e164.h"
#include "journal.h"
#include "ledger.h"
#include "ledger_record.h"
#include "callrouted/log.h"
#include "metrics.h"
#include "callrouted/rating.h"
#include "replwait.h"

/*
 * A journal record is the event as it was understood when it arrived: the provider's facts,
 * the attribution from the route table of that moment and the price from the agency's plan
 * of that moment, as one JSON object.  The drain turns a batch of records into one statement
 * that upserts calls and inserts billable calls into usage_ledger with ON CONFLICT DO
 * NOTHING on (provider, provider_call_id): a record drained twice (a lost checkpoint), an
 * event retried by the provider or the same event landing on two instances make one row.
 */

#define LEDGER_BATCH 500
#define LEDGER_RETRY_MS 1000
/*
 * Under load a batch that was not full is followed by the next one no sooner than this after
 * it was sent: each batch costs PostgreSQL a plan, a commit, the standbys' round trip and the
 * executor's start whatever its size, so batches that gather what came meanwhile cost less per
 * event (the journal's group commit, on the ledger's side).  An event on an idle drain goes at
 * once; one under load waits at most this long more.
 */
#define LEDGER_GATHER_MS 25
/* The drain's statement and replwait's, prepared on each ledger connection (sent as text if
 * refused). */
#define LEDGER_STMT "callrouted_ledger_drain"
#define LEDGER_REPL_STMT "callrouted_ledger_replwait"

static const char *const ledger_invalid_names[LEDGER_INVALID_COUNT] = {
	"call_id",
	"field_too_long",
	"bad_value",
	"time_out_of_range",
	"duration_out_of_range",
	"end_before_start",
	"unrateable",
	"record_too_large",
};

const char *
ledger_invalid_name(enum ledger_invalid r)
{
	return r < LEDGER_INVALID_COUNT ? ledger_invalid_names[r] : "unknown";
}

static const char *const ledger_dir_names[] = { "unknown", "inbound", "outbound" };

static struct {
	_Atomic uint64_t rows[PROVIDER_COUNT], billed_seconds[PROVIDER_COUNT],
		amount_micros[PROVIDER_COUNT];
	_Atomic uint64_t calls_written, batches, batch_failures, unattributed, agent_mismatches,
		events_rejected;
	_Atomic uint64_t invalid[PROVIDER_COUNT][LEDGER_INVALID_COUNT];
	_Atomic uint64_t rejects, reject_failures, duration_disagreements;
	_Atomic uint64_t unpriced[PROVIDER_COUNT];
} ls;

void
ledger_get_stats(struct ledger_stats *s)
{
	for (int p = 0; p < PROVIDER_COUNT; p++) {
		s->rows[p] = atomic_load(&ls.rows[p]);
		s->billed_seconds[p] = atomic_load(&ls.billed_seconds[p]);
		s->amount_micros[p] = atomic_load(&ls.amount_micros[p]);
		for (int r = 0; r < LEDGER_INVALID_COUNT; r++)
			s->invalid[p][r] = atomic_load(&ls.invalid[p][r]);
		s->unpriced[p] = atomic_load(&ls.unpriced[p]);
	}
	s->rejects = atomic_load(&ls.rejects);
	s->reject_failures = atomic_load(&ls.reject_failures);
	s->duration_disagreements = atomic_load(&ls.duration_disagreements);
	s->calls_written = atomic_load(&ls.calls_written);
	s->batches = atomic_load(&ls.batches);
	s->batch_failures = atomic_load(&ls.batch_failures);
	s->unattributed = atomic_load(&ls.unattributed);
	s->agent_mismatches = atomic_load(&ls.agent_mismatches);
	s->events_rejected = atomic_load(&ls.events_rejected);
}

/* ------------------------------------------------------------------------------------------ */
/* Worker side                                                                                 */

/* A time given by the provider, within years 2000..2099 (or unknown). */
static bool
ledger_time_ok(int64_t ms)
{
	return ms < 0 || (ms >= LEDGER_MIN_TIME_MS && ms < LEDGER_MAX_TIME_MS);
}

/*
 * Everything the drain will write, checked before the event is journaled: on false, *why is
 * the reason and detail the answer's text.  The one place the webhook's limits live.
 */
static bool
ledger_check(const struct call_event *ev, enum ledger_invalid *why, const char **detail)
{
	if (!ev->call_id || !*ev->call_id || strlen(ev->call_id) > LEDGER_MAX_CALL_ID) {
		*why = LEDGER_INVALID_CALL_ID;
		*detail = ev->call_id && *ev->call_id ? "call id longer than 256 bytes" :
							"missing call id";
		return false;
	}
	if ((ev->from && strlen(ev->from) > LEDGER_MAX_NUMBER) ||
		(ev->to && strlen(ev->to) > LEDGER_MAX_NUMBER)) {
		*why = LEDGER_INVALID_FIELD_LENGTH;
		*detail = "phone number longer than 128 bytes";
		return false;
	}
	if (ev->provider_agent_id && strlen(ev->provider_agent_id) > LEDGER_MAX_AGENT_ID) {
		*why = LEDGER_INVALID_FIELD_LENGTH;
		*detail = "agent id longer than 256 bytes";
		return false;
	}
	if (ev->invalid) {
		*why = LEDGER_INVALID_BAD_VALUE;
		*detail = ev->invalid;
		return false;
	}
	if (!ledger_time_ok(ev->started_ms) || !ledger_time_ok(ev->ended_ms)) {
		*why = LEDGER_INVALID_TIME_RANGE;
		*detail = "call time outside the years 2000 to 2099";
		return false;
	}
	if (ev->started_ms >= 0 && ev->ended_ms >= 0 && ev->ended_ms < ev->started_ms) {
		*why = LEDGER_INVALID_END_BEFORE_START;
		*detail = "call ends before it starts";
		return false;
	}
	if (ev->duration_ms > RATING_MAX_DURATION_MS ||
		(ev->started_ms >= 0 && ev->ended_ms >= 0 &&
			ev->ended_ms - ev->started_ms > RATING_MAX_DURATION_MS)) {
		*why = LEDGER_INVALID_DURATION;
		*detail = "call longer than 48 hours";
		return false;
	}
	return true;
}

/* An event refused before it is journaled: one log line, a counter, the answer's status. */
static bool
ledger_refuse(const struct route_account *acct, const struct call_event *ev,
	enum ledger_invalid why, int status, const char *detail, struct ledger_result *res)
{
	atomic_fetch_add(&ls.invalid[acct->provider][why], 1);
	atomic_fetch_add(&ls.events_rejected, 1);
	log_warning("ledger: %s/%s call %s refused (%s): %s", provider_name(acct->provider),
		acct->slug, log_esc(ev->call_id), ledger_invalid_name(why), detail);
	res->status = status;
	res->reason = detail;
	res->len = 0;
	return false;
}

bool
ledger_validate(const struct route_account *acct, const struct call_event *ev,
	struct ledger_result *res)
{
	enum ledger_invalid why;
	const char *detail;

	if (!ledger_check(ev, &why, &detail))
		return ledger_refuse(acct, ev, why, 400, detail, res);
	res->status = 200;
	res->reason = NULL;
	res->len = 0;
	return true;
}

/* The end reason as journaled: cut to LEDGER_MAX_END_REASON bytes on a UTF-8 boundary. */
static void
ledger_put_reason(struct lrec_out *o, const char *why)
{
	size_t n;

	if (!why) {
		lrec_str(o, "why", NULL);
		return;
	}
	n = strlen(why);
	if (n > LEDGER_MAX_END_REASON) {
		n = LEDGER_MAX_END_REASON;
		while (n > 0 && ((unsigned char)why[n] & 0xc0) == 0x80)
			n--;
	}
	lrec_strn(o, "why", why, n);
}

bool
ledger_encode(const struct routes_snapshot *snap, const struct route_account *acct,
	const struct call_event *ev, int64_t now_ms, char *buf, size_t cap,
	struct ledger_result *res)
{
	const struct routes_catalog *cat = snap->catalog;
	const char *ours = NULL;
	const struct route_slot *sl = NULL;
	const struct route_agent *agent = NULL, *evagent;
	const struct route_agency *agency = NULL;
	struct rating_result rr = { 0, 0 };
	struct rating_plan plan = { 0, 0, 0 };
	char num[E164_BUFSIZE] = "";
	uint64_t key = 0, agency_id = 0;
	bool mismatch = false;
	struct lrec_out o;
	size_t n;

	/* our number: inbound calls come to it, outbound calls come from it */
	if (ev->dir == CALL_DIR_INBOUND)
		ours = ev->to;
	else if (ev->dir == CALL_DIR_OUTBOUND)
		ours = ev->from;
	if (ours && e164_parse(ours, strlen(ours), &key)) {
		sl = routes_number(snap, key);
		e164_format(key, num, sizeof(num));
	}
	/* attribution: only a number of this account (a number of another account is unknown) */
	if (sl && sl->account_idx < cat->n_accounts &&
		cat->accounts[sl->account_idx].id == acct->id) {
		agency_id = acct->agency_id;
		if (sl->agent_idx < cat->n_agents)
			agent = &cat->agents[sl->agent_idx];
		evagent = routes_catalog_agent_by_pid(cat, acct->provider, ev->provider_agent_id);
		if (evagent && evagent->agency_id != agency_id)
			evagent = NULL;
		if (ev->provider_agent_id && agent &&
			strcmp(ev->provider_agent_id, agent->provider_agent_id) != 0) {
			mismatch = true;
			atomic_fetch_add(&ls.agent_mismatches, 1);
			log_warning(
				"ledger: %s/%s call %s: the provider says agent %s, number %s is "
				"assigned to %s",
				provider_name(acct->provider), acct->slug, log_esc(ev->call_id),
				log_esc(ev->provider_agent_id), num,
				log_esc(agent->provider_agent_id));
		}
		/* the agent that took the call, when we know it; else the number's */
		if (evagent)
			agent = evagent;
	} else {
		sl = NULL;
		atomic_fetch_add(&ls.unattributed, 1);
		log_info("ledger: %s/%s call %s on a number the platform does not know (%s): "
			 "recorded unattributed",
			provider_name(acct->provider), acct->slug, log_esc(ev->call_id),
			ours ? log_esc(ours) : "none");
	}
	if (agency_id)
		agency = routes_catalog_agency(cat, agency_id);
	if (agency) {
		plan.rate_micros_per_min = agency->rate_micros_per_min;
		plan.initial_s = agency->billing_initial_s;
		plan.increment_s = agency->billing_increment_s;
	}
	if (ev->kind == CALL_ENDED && ev->rated && agency &&
		!rating_rate_call(ev->connected, ev->duration_ms < 0 ? 0 : ev->duration_ms, &plan,
			&rr)) {
		/* the webhook's limits are rating's and the schema's: a plan that cannot be used */
		atomic_fetch_add(&ls.invalid[acct->provider][LEDGER_INVALID_UNRATEABLE], 1);
		atomic_fetch_add(&ls.events_rejected, 1);
		log_warning("ledger: %s/%s call %s refused (unrateable): cannot rate %" PRId64
			    " ms at %" PRId64 "/min %d/%d of agency %" PRIu64,
			provider_name(acct->provider), acct->slug, log_esc(ev->call_id),
			ev->duration_ms, plan.rate_micros_per_min, plan.initial_s, plan.increment_s,
			agency_id);
		res->status = 400;
		res->reason = "call duration out of range";
		res->len = 0;
		return false;
	}

	/* connected, ended, and nothing to measure it by: in calls, billed to no one; said so */
	if (ev->kind == CALL_ENDED && ev->connected && !ev->rated && !ev->priced_later && agency) {
		atomic_fetch_add(&ls.unpriced[acct->provider], 1);
		log_warning("ledger: %s/%s call %s ended connected with no duration: recorded in "
			    "calls, not billed",
			provider_name(acct->provider), acct->slug, log_esc(ev->call_id));
	}

	/* written as jansson would dump the object, without building it (ledger_record.c) */
	lrec_begin(&o, buf, cap);
	lrec_str(&o, "p", provider_name(acct->provider));
	lrec_str(&o, "id", ev->call_id);
	lrec_str(&o, "k", ev->kind == CALL_ENDED ? "end" : "start");
	lrec_str(&o, "d", ledger_dir_names[ev->dir]);
	lrec_str(&o, "num", *num ? num : NULL);
	lrec_str(&o, "from", ev->from);
	lrec_str(&o, "to", ev->to);
	lrec_str(&o, "pa", ev->provider_agent_id);
	lrec_i64(&o, "st", ev->started_ms);
	lrec_i64(&o, "en", ev->ended_ms);
	lrec_i64(&o, "dur", ev->duration_ms);
	lrec_bool(&o, "c", ev->connected);
	lrec_bool(&o, "r", ev->kind == CALL_ENDED && ev->rated);
	ledger_put_reason(&o, ev->end_reason);
	lrec_i64(&o, "ag", agency_id ? (int64_t)agency_id : -1);
	lrec_i64(&o, "cl", agent && agent->client_id ? (int64_t)agent->client_id : -1);
	lrec_i64(&o, "a", agent ? (int64_t)agent->id : -1);
	lrec_i64(&o, "n", sl ? (int64_t)sl->number_id : -1);
	lrec_bool(&o, "mm", mismatch);
	lrec_i64(&o, "rate", agency ? plan.rate_micros_per_min : -1);
	lrec_i64(&o, "bs", rr.billed_seconds);
	lrec_i64(&o, "amt", rr.amount_micros);
	lrec_int(&o, "at", now_ms);
	n = lrec_end(&o);
	/* cannot happen within the limits above (the record is under 16 KiB); never a 503 loop */
	if (n > cap || n > JOURNAL_MAX_RECORD)
		return ledger_refuse(acct, ev, LEDGER_INVALID_TOO_LARGE, 413,
			"event too large to journal", res);
	res->status = 200;
	res->reason = NULL;
	res->len = n;
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* db thread side: the drain                                                                   */

static struct {
	struct db_conn *conn;
	char *instance;
	struct event *retry_ev;
	struct event *gather_ev; /* the next batch after LEDGER_GATHER_MS */
	int64_t sent_ms;         /* when the last batch was sent (monotonic) */
	bool sent_full;          /* it was full: more is waiting, no gathering */
	struct event *tick_ev;   /* safety net: look at the journal every second */
	bool in_flight;
	bool gauge_in_flight;   /* the active-calls query, not a batch */
	bool reject_in_flight;  /* keeping a refused record in ledger_rejects */
	bool repl_in_flight;    /* asking where the standbys are (replwait.c) */
	bool prepare_in_flight; /* PREPARE of the drain's statement on this connection */
	bool prepare_tried;     /* on this connection (refused: batches go as text) */
	bool prepared;
	int ticks;
	size_t max_batch;
	char *sql;     /* the drain's statement (one for every batch size) */
	char *prepare; /* PREPARE LEDGER_STMT (types) AS sql */
	/* the batch in flight: its columns as text[] literals */
	struct lrec_cols cols;
	const char *params[1 + LEDGER_COLS];
	size_t n;
	uint64_t last_seq;
	bool result_seen;
	char *raw;         /* the batch's first record as journaled (kept if refused) */
	char rej_state[6]; /* SQLSTATE and message of the refusal being kept */
	char *rej_msg;
} ld;

static void
ledger_batch_free(void)
{
	lrec_cols_reset(&ld.cols);
	ld.n = 0;
	ld.last_seq = 0;
	ld.result_seen = false;
	free(ld.raw);
	ld.raw = NULL;
	free(ld.rej_msg);
	ld.rej_msg = NULL;
}

static bool
ledger_take_record(uint64_t seq, const void *payload, size_t len, void *arg)
{
	switch (lrec_cols_add(&ld.cols, seq, payload, len)) {
	case LREC_OK:
		break;
	case LREC_NOT_EVENT:
		/* written by us and checksummed: a record we cannot read is a bug; keep it */
		log_error("ledger: journal record %" PRIu64 " is not a call event; skipped", seq);
		atomic_fetch_add(&ls.events_rejected, 1);
		ld.last_seq = seq;
		return true;
	case LREC_NOMEM:
		/* out of memory: this record is read again with the next batch */
		return false;
	}
	if (ld.n == 0) {
		ld.raw = malloc(len + 1);
		if (ld.raw) {
			memcpy(ld.raw, payload, len);
			ld.raw[len] = 0;
		}
	}
	ld.n++;
	ld.last_seq = seq;
	return true;
}

/*
 * The drain's statement: ev is the batch, one row per record (unnest of the LEDGER_COLS text[]
 * parameters $2..$25, in journal order), $1 the instance.  The same text for every batch size,
 * so it is parsed and planned once per connection (a prepared statement), not per batch.
 */
static char *
ledger_build_sql(void)
{
	struct evbuffer *b = evbuffer_new();
	char *sql = NULL;
	size_t len;

	if (!b)
		return NULL;
	evbuffer_add_printf(b,
		"WITH ev (p, id, k, d, num, frm, too, pa, st, en, dur, c, r, why, "
		"ag, cl, a, n, mm, rate, bs, amt, arr, q) AS (SELECT * FROM unnest(");
	for (int k = 0; k < LEDGER_COLS; k++)
		evbuffer_add_printf(b, "%s$%d::text[]", k ? ", " : "", k + 2);
	evbuffer_add(b, ")", 1);
	/*
	 * o: the calls rows as they were; d: one record per call, the first rated end event (in
	 * journal order) before anything else; dis: later rated end events of a call whose
	 * duration is not the one billed (calls.duration_ms keeps the first, as usage_ledger
	 * does; the latest other one goes to duration_disagreement_ms).  An end without an end
	 * time ends at start + duration, else when the event arrived ("at"), so that every
	 * ledger row has an ended_at; a provider's end time wins over one derived before.
	 */
	evbuffer_add_printf(b,
		"), o AS (SELECT x.provider AS op, x.provider_call_id AS oid, x.duration_ms AS odur, "
		"x.ended_at AS oend FROM calls x "
		"WHERE (x.provider, x.provider_call_id) IN (SELECT p, id FROM ev)), "
		"d AS (SELECT DISTINCT ON (p, id) * FROM ev "
		"ORDER BY p, id, (k = 'end') DESC, (r = 't') DESC, q::bigint), "
		"dis AS (SELECT e.p AS dp, e.id AS did, "
		"(array_agg(e.dur::bigint ORDER BY e.q::bigint DESC))[1] AS other, count(*) AS nd "
		"FROM ev e JOIN d ON d.p = e.p AND d.id = e.id "
		"LEFT JOIN o ON o.op = e.p AND o.oid = e.id "
		"WHERE e.k = 'end' AND e.r = 't' AND e.dur IS NOT NULL AND e.dur::bigint <> "
		"coalesce(o.odur, CASE WHEN d.r = 't' THEN d.dur::bigint END) "
		"GROUP BY e.p, e.id), "
		"c AS (INSERT INTO calls AS x (provider, provider_call_id, direction, number_id, e164, "
		"agent_id, agency_id, client_id, provider_agent_id, from_number, to_number, status, "
		"connected, started_at, ended_at, duration_ms, end_reason, agent_mismatch, "
		"duration_disagreement_ms) "
		"SELECT p, id, d, n::bigint, num, a::bigint, ag::bigint, cl::bigint, pa, frm, too, "
		"CASE WHEN k = 'end' THEN 'ended' ELSE 'in_progress' END, "
		"CASE WHEN k = 'end' THEN c::boolean END, "
		"to_timestamp(st::bigint / 1000.0), "
		"CASE WHEN k = 'end' THEN coalesce(to_timestamp(en::bigint / 1000.0), oend, "
		"to_timestamp(coalesce(st::bigint + dur::bigint, arr::bigint) / 1000.0)) END, "
		"CASE WHEN r = 't' THEN dur::bigint END, why, mm::boolean, other "
		"FROM d LEFT JOIN o ON op = p AND oid = id LEFT JOIN dis ON dp = p AND did = id "
		"ON CONFLICT (provider, provider_call_id) DO UPDATE SET "
		"status = CASE WHEN x.status = 'ended' OR EXCLUDED.status = 'ended' "
		"THEN 'ended' ELSE 'in_progress' END, "
		"connected = coalesce(EXCLUDED.connected, x.connected), "
		"started_at = coalesce(x.started_at, EXCLUDED.started_at), "
		"ended_at = coalesce(EXCLUDED.ended_at, x.ended_at), "
		"duration_ms = coalesce(x.duration_ms, EXCLUDED.duration_ms), "
		"duration_disagreement_ms = coalesce(EXCLUDED.duration_disagreement_ms, "
		"x.duration_disagreement_ms), "
		"end_reason = coalesce(EXCLUDED.end_reason, x.end_reason), "
		"number_id = coalesce(EXCLUDED.number_id, x.number_id), "
		"e164 = coalesce(EXCLUDED.e164, x.e164), "
		"agent_id = coalesce(EXCLUDED.agent_id, x.agent_id), "
		"agency_id = coalesce(EXCLUDED.agency_id, x.agency_id), "
		"client_id = coalesce(EXCLUDED.client_id, x.client_id), "
		"provider_agent_id = coalesce(EXCLUDED.provider_agent_id, x.provider_agent_id), "
		"from_number = coalesce(EXCLUDED.from_number, x.from_number), "
		"to_number = coalesce(EXCLUDED.to_number, x.to_number), "
		"agent_mismatch = x.agent_mismatch OR EXCLUDED.agent_mismatch, "
		"updated_at = now() RETURNING 1), "
		"l AS (INSERT INTO usage_ledger (provider, provider_call_id, agency_id, client_id, "
		"agent_id, number_id, direction, started_at, ended_at, duration_ms, billed_seconds, "
		"rate_micros_per_min, amount_micros, recorded_by) "
		"SELECT p, id, ag::bigint, cl::bigint, a::bigint, n::bigint, d, "
		"to_timestamp(st::bigint / 1000.0), "
		"to_timestamp(coalesce(en::bigint, st::bigint + dur::bigint, arr::bigint) / 1000.0), "
		"dur::bigint, bs::bigint, rate::bigint, amt::bigint, $1 FROM d "
		"WHERE k = 'end' AND r = 't' AND c = 't' AND ag IS NOT NULL AND bs::bigint > 0 "
		"ON CONFLICT (provider, provider_call_id) DO NOTHING "
		"RETURNING provider, billed_seconds, amount_micros) "
		"SELECT (SELECT count(*) FROM c), (SELECT coalesce(sum(nd), 0) FROM dis)");
	/* then count, billed seconds and amount per provider, in provider_id order */
	for (int pr = 0; pr < PROVIDER_COUNT; pr++)
		evbuffer_add_printf(b,
			", count(*) FILTER (WHERE provider = '%s'), "
			"coalesce(sum(billed_seconds) FILTER (WHERE provider = '%s'), 0), "
			"coalesce(sum(amount_micros) FILTER (WHERE provider = '%s'), 0)",
			provider_name((enum provider_id)pr), provider_name((enum provider_id)pr),
			provider_name((enum provider_id)pr));
	evbuffer_add_printf(b, " FROM l");
	len = evbuffer_get_length(b);
	sql = malloc(len + 1);
	if (sql) {
		evbuffer_remove(b, sql, len);
		sql[len] = 0;
	}
	evbuffer_free(b);
	return sql;
}

static char *
ledger_build_prepare(const char *sql)
{
	struct evbuffer *b = evbuffer_new();
	char *out = NULL;
	size_t len;

	if (!b)
		return NULL;
	/* custom plans: each batch is planned with its arrays' lengths (and the calls table as it
	 * is then: a generic plan made while it was small would scan it whole once it is not);
	 * planning a statement this small is cheap, parsing it is done once */
	evbuffer_add_printf(b,
		"SET plan_cache_mode = force_custom_plan; PREPARE " LEDGER_STMT " (text");
	for (int k = 0; k < LEDGER_COLS; k++)
		evbuffer_add_printf(b, ", text[]");
	/* replwait's query after each batch: parsed and planned once too (it has no parameters:
	 * one plan, whatever plan_cache_mode says) */
	evbuffer_add_printf(b, ") AS %s; PREPARE " LEDGER_REPL_STMT " AS %s", sql, replwait_sql);
	len = evbuffer_get_length(b);
	out = malloc(len + 1);
	if (out) {
		evbuffer_remove(b, out, len);
		out[len] = 0;
	}
	evbuffer_free(b);
	return out;
}

static void
ledger_retry_later(void)
{
	struct timeval tv = { LEDGER_RETRY_MS / 1000, (LEDGER_RETRY_MS % 1000) * 1000 };

	evtimer_add(ld.retry_ev, &tv);
}

#define LEDGER_ACTIVE_CALLS_SQL                                                                    \
	"SELECT count(*) FROM calls WHERE status = 'in_progress' "                                 \
	"AND first_seen_at > now() - interval '48 hours'"
#define LEDGER_GAUGE_TICKS 5 /* seconds between active-calls counts */

static int64_t
ledger_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
ledger_pump(struct db_conn *c)
{
	int64_t now_ms;

	if (ld.in_flight || ld.gauge_in_flight || ld.repl_in_flight || ld.prepare_in_flight ||
		!db_idle(c) || !db_schema_ok() || evtimer_pending(ld.retry_ev, NULL))
		return;
	/* the drain's statement, once a connection: planned once, not per batch */
	if (!ld.prepare_tried) {
		ld.prepare_tried = true;
		ld.prepare_in_flight = db_send(c, ld.prepare, 0, NULL);
		if (ld.prepare_in_flight)
			return;
	}
	/* committed batches wait for the standbys before they are checkpointed */
	if (replwait_due()) {
		ld.repl_in_flight = ld.prepared ? db_send_prepared(c, LEDGER_REPL_STMT, 0, NULL) :
						  db_send(c, replwait_sql, 0, NULL);
		return;
	}
	if (replwait_full())
		return;
	/* gathering (the standbys' query above is not held back by it) */
	if (evtimer_pending(ld.gather_ev, NULL))
		return;
	now_ms = ledger_now_ms();
	if (!ld.sent_full && now_ms - ld.sent_ms < LEDGER_GATHER_MS) {
		int64_t wait_ms = LEDGER_GATHER_MS - (now_ms - ld.sent_ms);
		struct timeval tv = { 0, (suseconds_t)(wait_ms > 0 ? wait_ms : 0) * 1000 };

		evtimer_add(ld.gather_ev, &tv);
		return;
	}
	ledger_batch_free();
	journal_read(ld.max_batch, ledger_take_record, NULL);
	if (ld.n == 0) {
		if (ld.last_seq) /* only unreadable records: move past them */
			replwait_committed(ld.last_seq, 0);
		if (ld.cols.failed) {
			/* out of memory before the first record: read it again in a second */
			log_error("ledger: out of memory reading the journal; retrying");
			atomic_fetch_add(&ls.batch_failures, 1);
			ledger_batch_free();
			ledger_retry_later();
			return;
		}
		/* idle: refresh the active-calls gauge now and then (calls in progress, ended
		 * calls excluded; calls never ended are forgotten after the longest call) */
		if (ld.ticks >= LEDGER_GAUGE_TICKS) {
			ld.ticks = 0;
			ld.gauge_in_flight = db_send(c, LEDGER_ACTIVE_CALLS_SQL, 0, NULL);
		}
		return;
	}
	if (!lrec_cols_finish(&ld.cols)) {
		log_error("ledger: out of memory building a batch; retrying");
		atomic_fetch_add(&ls.batch_failures, 1);
		journal_rewind();
		ledger_batch_free();
		ledger_retry_later();
		return;
	}
	ld.params[0] = ld.instance;
	for (int k = 0; k < LEDGER_COLS; k++)
		ld.params[1 + k] = ld.cols.col[k].p;
	ld.sent_ms = now_ms;
	ld.sent_full = ld.n >= ld.max_batch;
	if (ld.prepared)
		ld.in_flight = db_send_prepared(c, LEDGER_STMT, 1 + LEDGER_COLS, ld.params);
	else
		ld.in_flight = db_send(c, ld.sql, 1 + LEDGER_COLS, ld.params);
	if (!ld.in_flight) {
		journal_rewind();
		ledger_batch_free();
	}
}

static void
ledger_result(struct db_conn *c, PGresult *r)
{
	if (ld.prepare_in_flight)
		return;
	if (ld.repl_in_flight) {
		replwait_result(r);
		return;
	}
	if (ld.gauge_in_flight) {
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			metrics_set_active_calls(strtoll(PQgetvalue(r, 0, 0), NULL, 10));
		return;
	}
	if (ld.reject_in_flight || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
		PQnfields(r) != 2 + 3 * PROVIDER_COUNT)
		return;
	ld.result_seen = true;
	atomic_fetch_add(&ls.calls_written, strtoull(PQgetvalue(r, 0, 0), NULL, 10));
	atomic_fetch_add(&ls.duration_disagreements, strtoull(PQgetvalue(r, 0, 1), NULL, 10));
	for (int p = 0; p < PROVIDER_COUNT; p++) {
		atomic_fetch_add(&ls.rows[p], strtoull(PQgetvalue(r, 0, 2 + 3 * p), NULL, 10));
		atomic_fetch_add(&ls.billed_seconds[p],
			strtoull(PQgetvalue(r, 0, 3 + 3 * p), NULL, 10));
		atomic_fetch_add(&ls.amount_micros[p],
			strtoull(PQgetvalue(r, 0, 4 + 3 * p), NULL, 10));
	}
}

/*
 * A data error (class 22 or 23) on one record: it will never go in as it is.  Keep it in
 * ledger_rejects (the record as journaled, why, who) and move the checkpoint past it only
 * once that insert has committed (ledger_reject_done); an operator replays it from there.
 */
static void
ledger_reject_keep(struct db_conn *c)
{
	char seq[24];
	const char *params[5];

	snprintf(ld.rej_state, sizeof(ld.rej_state), "%s", db_sqlstate(c));
	free(ld.rej_msg);
	ld.rej_msg = strdup(db_error_message(c));
	snprintf(seq, sizeof(seq), "%" PRIu64, ld.last_seq);
	params[0] = ld.raw;
	params[1] = ld.rej_state;
	params[2] = ld.rej_msg ? ld.rej_msg : "";
	params[3] = ld.instance;
	params[4] = seq;
	if (!ld.raw) {
		/* out of memory copying the record: read it again later */
		journal_rewind();
		ledger_batch_free();
		ledger_retry_later();
		return;
	}
	ld.reject_in_flight = ld.in_flight = db_send(c,
		"INSERT INTO ledger_rejects (record, sqlstate, message, instance, journal_seq) "
		"VALUES ($1, $2, $3, $4, $5::bigint)",
		5, params);
	if (!ld.in_flight) {
		journal_rewind();
		ledger_batch_free();
	}
}

/* The refused record's call, read again from the record kept (a rare path). */
static void
ledger_log_kept(void)
{
	json_error_t err;
	json_t *o = ld.raw ? json_loads(ld.raw, 0, &err) : NULL;
	const char *p = json_string_value(json_object_get(o, "p"));
	const char *id = json_string_value(json_object_get(o, "id"));

	log_error("ledger: journal record %" PRIu64 " (call %s/%s) refused by the database "
		  "(SQLSTATE %s: %s); kept in ledger_rejects",
		ld.last_seq, p ? p : "?", id ? log_esc(id) : "?", ld.rej_state,
		log_esc(ld.rej_msg));
	json_decref(o);
}

static void
ledger_reject_done(struct db_conn *c, bool ok)
{
	ld.reject_in_flight = ld.in_flight = false;
	if (!ok) {
		/* not kept: the checkpoint stays before it; the drain tries again in a second */
		atomic_fetch_add(&ls.reject_failures, 1);
		log_error("ledger: journal record %" PRIu64 " refused by the database could not be "
			  "kept in ledger_rejects (SQLSTATE %s); retrying",
			ld.last_seq, db_sqlstate(c));
		journal_rewind();
		ledger_batch_free();
		ledger_retry_later();
		return;
	}
	atomic_fetch_add(&ls.rejects, 1);
	atomic_fetch_add(&ls.events_rejected, 1);
	ledger_log_kept();
	replwait_committed(ld.last_seq, 1);
	ledger_batch_free();
	db_wake(c);
}

static void
ledger_done(struct db_conn *c, bool ok)
{
	const char *st = db_sqlstate(c);
	bool data_error = st[0] == '2' && (st[1] == '2' || st[1] == '3');

	if (ld.prepare_in_flight) {
		ld.prepare_in_flight = false;
		ld.prepared = ok;
		if (!ok)
			log_warning("ledger: the drain's statement could not be prepared (SQLSTATE "
				    "%s): batches go as text on this connection",
				st);
		db_wake(c);
		return;
	}
	if (ld.repl_in_flight) {
		ld.repl_in_flight = false;
		replwait_done(ok);
		db_wake(c);
		return;
	}
	if (ld.gauge_in_flight) {
		ld.gauge_in_flight = false;
		db_wake(c);
		return;
	}
	if (ld.reject_in_flight) {
		ledger_reject_done(c, ok);
		return;
	}
	ld.in_flight = false;
	if (ok && ld.result_seen) {
		atomic_fetch_add(&ls.batches, 1);
		replwait_committed(ld.last_seq, ld.n);
		log_debug("ledger: drained %zu event%s up to record %" PRIu64, ld.n,
			ld.n == 1 ? "" : "s", ld.last_seq);
		ledger_batch_free();
		if (ld.max_batch < LEDGER_BATCH)
			ld.max_batch =
				ld.max_batch * 2 > LEDGER_BATCH ? LEDGER_BATCH : ld.max_batch * 2;
		db_wake(c);
		return;
	}
	atomic_fetch_add(&ls.batch_failures, 1);
	if (data_error && ld.n == 1) {
		ledger_reject_keep(c);
		return;
	}
	journal_rewind();
	if (data_error) {
		/* find the record the database refuses: one at a time until past it */
		ld.max_batch = 1;
		ledger_batch_free();
		db_wake(c);
		return;
	}
	ledger_batch_free();
	ledger_retry_later();
}

static void
ledger_connected(struct db_conn *c)
{
}

static void
ledger_disconnected(struct db_conn *c)
{
	/* a batch in flight may or may not have committed: read it again, it is idempotent */
	ld.in_flight = false;
	ld.gauge_in_flight = false;
	ld.reject_in_flight = false;
	/* what waited for the standbys is drained again from the last replicated checkpoint:
	 * a failover's new primary may not have it (the unique key folds repeats) */
	ld.repl_in_flight = false;
	/* a new session has no prepared statement */
	ld.prepare_in_flight = ld.prepare_tried = ld.prepared = false;
	replwait_reset();
	journal_rewind();
	ledger_batch_free();
}

static void
ledger_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	db_wake(ld.conn);
}

static void
ledger_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	ld.ticks++;
	db_wake(ld.conn);
}

static void
ledger_durable_hook(void *arg)
{
	db_wake(ld.conn);
}

static void
ledger_wake(void)
{
	db_wake(ld.conn);
}

static const struct db_conn_ops ledger_ops = {
	.needs_primary = true,
	.name = "ledger",
	.connected = ledger_connected,
	.disconnected = ledger_disconnected,
	.notify = NULL,
	.result = ledger_result,
	.done = ledger_done,
	.pump = ledger_pump,
};

bool
ledger_db_setup(const struct config *cfg)
{
	struct timeval tick = { 1, 0 };

	ld.conn = db_conn_new(&ledger_ops);
	ld.instance = strdup(cfg->instance_name);
	ld.retry_ev = evtimer_new(db_base(), ledger_retry_cb, NULL);
	ld.gather_ev = evtimer_new(db_base(), ledger_retry_cb, NULL);
	ld.sent_ms = INT64_MIN / 2;
	ld.tick_ev = event_new(db_base(), -1, EV_PERSIST, ledger_tick_cb, NULL);
	ld.ticks = LEDGER_GAUGE_TICKS;
	ld.sql = ledger_build_sql();
	ld.prepare = ld.sql ? ledger_build_prepare(ld.sql) : NULL;
	ld.max_batch = LEDGER_BATCH;
	if (!ld.conn || !ld.instance || !ld.retry_ev || !ld.gather_ev || !ld.tick_ev || !ld.sql ||
		!ld.prepare || !replwait_setup(cfg, ledger_wake))
		return false;
	event_add(ld.tick_ev, &tick);
	journal_set_durable_hook(ledger_durable_hook, NULL);
	return true;
}

void
ledger_db_cleanup(void)
{
	journal_set_durable_hook(NULL, NULL);
	replwait_cleanup();
	ledger_batch_free();
	if (ld.retry_ev)
		event_free(ld.retry_ev);
	if (ld.gather_ev)
		event_free(ld.gather_ev);
	if (ld.tick_ev)
		event_free(ld.tick_ev);
	lrec_cols_free(&ld.cols);
	free(ld.instance);
	free(ld.sql);
	free(ld.prepare);
	memset(&ld, 0, sizeof(ld));
}

/* ---- the figures for the collector (scrape.c) ---- */

static void
ledger_stat_per_provider(stat_fn add, void *ctx, const char *name, const char *help,
	const uint64_t v[PROVIDER_COUNT])
{
	char labels[64];

	for (int p = 0; p < PROVIDER_COUNT; p++) {
		snprintf(labels, sizeof(labels), "provider=\"%s\"",
			provider_name((enum provider_id)p));
		stat_u64(add, ctx, name, help, "counter", labels, v[p]);
	}
}

void
ledger_stats(stat_fn add, void *ctx)
{
	static const char invalid_help[] =
		"Call events refused with 400/413 before they were journaled, by provider and reason.";
	struct ledger_stats st;
	char labels[128];

	ledger_get_stats(&st);
	ledger_stat_per_provider(add, ctx, "callrouted_ledger_rows_total",
		"Rows inserted into usage_ledger by this instance, by provider.", st.rows);
	ledger_stat_per_provider(add, ctx, "callrouted_ledger_billed_seconds_total",
		"Billed seconds of the rows inserted into usage_ledger, by provider.",
		st.billed_seconds);
	ledger_stat_per_provider(add, ctx, "callrouted_ledger_amount_micros_total",
		"Amount in micro-dollars of the rows inserted into usage_ledger, by provider.",
		st.amount_micros);
	STAT_COUNTER(add, ctx, "callrouted_ledger_calls_written_total",
		"Rows inserted or updated in calls.", st.calls_written);
	STAT_COUNTER(add, ctx, "callrouted_ledger_batches_total",
		"Batches of journal records committed to PostgreSQL.", st.batches);
	STAT_COUNTER(add, ctx, "callrouted_ledger_batch_failures_total",
		"Batches PostgreSQL refused or failed (retried).", st.batch_failures);
	STAT_COUNTER(add, ctx, "callrouted_ledger_unattributed_total",
		"Call events on numbers the platform does not know (recorded, billed to no one).",
		st.unattributed);
	STAT_COUNTER(add, ctx, "callrouted_ledger_agent_mismatches_total",
		"Call events whose provider agent is not the number's assigned agent.",
		st.agent_mismatches);
	STAT_COUNTER(add, ctx, "callrouted_ledger_rejected_total",
		"Call events refused at the webhook or kept in ledger_rejects (refused by the "
		"database).",
		st.events_rejected);
	for (int p = 0; p < PROVIDER_COUNT; p++)
		for (int r = 0; r < LEDGER_INVALID_COUNT; r++) {
			snprintf(labels, sizeof(labels), "provider=\"%s\",reason=\"%s\"",
				provider_name((enum provider_id)p),
				ledger_invalid_name((enum ledger_invalid)r));
			stat_u64(add, ctx, "callrouted_ledger_events_invalid_total", invalid_help,
				"counter", labels, st.invalid[p][r]);
		}
	ledger_stat_per_provider(add, ctx, "callrouted_ledger_unpriced_total",
		"Connected calls that ended with no duration (recorded in calls, not billed), by "
		"provider.",
		st.unpriced);
	STAT_COUNTER(add, ctx, "callrouted_ledger_rejects_total",
		"Journal records PostgreSQL refused (SQLSTATE class 22/23), kept in ledger_rejects.",
		st.rejects);
	STAT_COUNTER(add, ctx, "callrouted_ledger_reject_failures_total",
		"Refused journal records that could not be kept in ledger_rejects (retried).",
		st.reject_failures);
	STAT_COUNTER(add, ctx, "callrouted_ledger_duration_disagreements_total",
		"Later end events whose duration differs from the one billed (the first is kept).",
		st.duration_disagreements);
	replwait_stats(add, ctx);
}
