/* loader.c: LISTEN/NOTIFY, full and incremental reloads feeding routes.c (db thread). */
#include <stdatomic.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "loader.h"
#include "callrouted/config.h"
#include "db.h"
#include "instances.h"
#include "callrouted/e164.h"
#include "callrouted/log.h"
#include "metrics.h"
#include "callrouted/migrate.h"
#include "callrouted/progress_log.h"
#include "callrouted/rating.h"
#include "policy_db.h"
#include "routes.h"
#include "snapshot.h"

#define CHANGES_CHANNEL "callrouted_changes"
#define CHANGES_BATCH 5000 /* numbers re-read by one query */
#define CHANGES_SAVE_DELAY_MS 1000
#define CHANGES_FEED_BATCH 1000  /* change log rows read by one query */
#define CHANGES_FEED_RETRY_MS 10 /* the standby has not replayed the doorbell's generation */

#define SQL_ACCOUNTS                                                                               \
	"SELECT id, agency_id, provider, slug, api_key, webhook_secret, webhook_auth "             \
	"FROM provider_accounts;"
#define SQL_AGENTS                                                                                 \
	"SELECT a.id, a.agency_id, a.client_id, a.provider, a.provider_agent_id, a.name, c.name "  \
	"FROM agents a LEFT JOIN clients c ON c.id = a.client_id;"
#define SQL_AGENCIES                                                                               \
	"SELECT id, rate_micros_per_min, billing_initial_s, billing_increment_s FROM agencies;"
/* the active numbers, streamed as a binary COPY: no result of every row held in memory, the
 * table built as they come; an inactive agent (migration 007: the sync no longer finds it at
 * its provider) takes no calls: its numbers read as unassigned.  Before it, how many rows
 * phone_numbers holds, without a scan (a count(*) of 10M rows takes seconds): the statistics' live
 * rows (exact after the inserting session ends; 0 on a standby, which keeps no such counts), else
 * the planner's reltuples: the table's size and the progress line's total (an estimate, above the
 * active ones) */
#define SQL_NUMBERS_ESTIMATE                                                                       \
	"SELECT greatest(pg_stat_get_live_tuples(c.oid), c.reltuples::bigint, 0) FROM pg_class c " \
	"WHERE c.oid = 'phone_numbers'::regclass;"
#define SQL_ACTIVE                                                                                 \
	"COPY (SELECT p.e164, p.id, CASE WHEN ag.active IS NOT FALSE THEN p.agent_id END, "        \
	"p.account_id FROM phone_numbers p LEFT JOIN agents ag ON ag.id = p.agent_id "             \
	"WHERE p.status = 'active') TO STDOUT (FORMAT binary);"
#define SQL_RELEASED                                                                               \
	"SELECT DISTINCT ON (e164) e164, id, account_id FROM phone_numbers p "                     \
	"WHERE status = 'released' AND NOT EXISTS (SELECT 1 FROM phone_numbers q "                 \
	"WHERE q.e164 = p.e164 AND q.status = 'active') ORDER BY e164, id DESC;"
#define SQL_BEGIN "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
/* the shared change generation the full reload's snapshot is at (migration 010) */
#define SQL_GENERATION "SELECT generation FROM callrouted_change_generation;"

static const char sql_hello[] = "LISTEN " CHANGES_CHANNEL "; " MIGRATE_EXISTS_SQL;
/* routes_database_url (a standby: no LISTEN there); the same result positions */
static const char sql_hello_standby[] = "SELECT 1; " MIGRATE_EXISTS_SQL;
static const char sql_full[] = SQL_BEGIN SQL_ACCOUNTS SQL_AGENCIES SQL_AGENTS SQL_NUMBERS_ESTIMATE
	SQL_ACTIVE SQL_RELEASED SQL_GENERATION "COMMIT";
static const char sql_catalog[] = SQL_BEGIN SQL_ACCOUNTS SQL_AGENCIES SQL_AGENTS "COMMIT";
static const char sql_numbers[] =
	"SELECT DISTINCT ON (p.e164) p.e164, p.id, "
	"CASE WHEN ag.active IS NOT FALSE THEN p.agent_id END, p.account_id, p.status "
	"FROM phone_numbers p LEFT JOIN agents ag ON ag.id = p.agent_id "
	"WHERE p.e164 = ANY($1::text[]) AND p.status IN ('active', 'released') "
	"ORDER BY p.e164, (p.status = 'active') DESC, p.id DESC";

static atomic_ulong changes_fulls_finished;
static struct progress changes_progress; /* the full reload's numbers (progress.h) */

unsigned long
loader_full_reloads_finished(void)
{
	return atomic_load(&changes_fulls_finished);
}

enum changes_query { Q_NONE, Q_HELLO, Q_VERSION, Q_FULL, Q_CATALOG, Q_NUMBERS, Q_FEED };

static struct {
	struct db_conn *conn;
	int64_t refresh_ms;
	struct event *refresh_ev;
	struct event *reload_ev; /* SIGHUP from another thread */
	struct event *save_ev;
	bool checked_once; /* the schema version was checked once in this process */
	bool schema_table; /* the hello found the migrations table */
	bool want_full, want_catalog;
	uint64_t *pending; /* E.164 keys to re-read */
	size_t n_pending, cap_pending;

	enum changes_query q;
	int q_index; /* which result of the query in flight */
	bool q_bad;  /* a result could not be used: discard the whole query */
	struct timespec t0;
	struct routes_catalog *new_cat;
	struct routes_snapshot *new_snap;
	uint64_t *inflight; /* keys of the Q_NUMBERS in flight */
	size_t n_inflight;
	size_t skipped; /* rows that failed validation */
	/* the full reload's COPY of the active numbers (changes_copy_data) */
	bool copy_header; /* its header was read */
	size_t copy_n;    /* rows in copy_batch */
	struct route_slot copy_batch[256];

	/* the change feed (migration 010): generations of callrouted_change_log */
	struct db_conn *bell;     /* with routes_database_url: the LISTEN on the primary */
	bool standby;             /* ch.conn reads routes_database_url */
	uint64_t seen_gen;        /* changes up to this are applied or queued */
	uint64_t full_gen;        /* the full reload in flight is at this generation */
	uint64_t full_notified;   /* the highest generation notified while it was in flight */
	uint64_t target_gen;      /* the primary's generation, as the doorbell last said */
	uint64_t feed_rows;       /* rows of the Q_FEED in flight */
	uint64_t feed_server_gen; /* the reading server's generation (Q_FEED) */
	bool want_feed;
	struct event *poll_ev, *feed_retry_ev;
} ch;

static atomic_ullong changes_applied_gen;
static void changes_apply_payload(const char *payload);
static void changes_settle(void);

static void changes_start(enum changes_query q, const char *sql, int nparams,
	const char *const *params);

static double
changes_elapsed(void)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - ch.t0.tv_sec) + (double)(t1.tv_nsec - ch.t0.tv_nsec) / 1e9;
}

static int64_t
changes_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
changes_pending_add(uint64_t key)
{
	if (ch.n_pending == ch.cap_pending) {
		size_t cap = ch.cap_pending ? ch.cap_pending * 2 : 64;
		uint64_t *p = realloc(ch.pending, cap * sizeof(*p));

		if (!p) {
			/* cannot remember it: fall back to a full reload */
			log_error("changes: out of memory queueing a change; reloading everything");
			ch.want_full = true;
			return;
		}
		ch.pending = p;
		ch.cap_pending = cap;
	}
	ch.pending[ch.n_pending++] = key;
}

static void
changes_reset_query(void)
{
	routes_catalog_unref(ch.new_cat);
	ch.new_cat = NULL;
	routes_snapshot_free(ch.new_snap);
	ch.new_snap = NULL;
	free(ch.inflight);
	ch.inflight = NULL;
	ch.n_inflight = 0;
	ch.q = Q_NONE;
	ch.q_index = 0;
	ch.q_bad = false;
	ch.skipped = 0;
	ch.copy_header = false;
	ch.copy_n = 0;
}

static bool
changes_u64(const PGresult *r, int row, int col, uint64_t *out)
{
	const char *v;
	uint64_t n = 0;
	int len, i;

	if (PQgetisnull(r, row, col)) {
		*out = 0;
		return true;
	}
	v = PQgetvalue(r, row, col);
	len = PQgetlength(r, row, col);
	if (len < 1 || len > 18) /* bigint ids above 10^18 are not ours */
		return false;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out = n;
	return n > 0;
}

static const char *
changes_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static bool
changes_expect(const PGresult *r, int ncols)
{
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != ncols) {
		log_error("changes: unexpected result shape (%s, %d columns)",
			PQresStatus(PQresultStatus(r)), PQnfields(r));
		ch.q_bad = true;
		return false;
	}
	return true;
}

/* A catalog row of table that does not pass: logged, counted, skipped. */
static void
changes_skip_row(const char *table, const PGresult *r, int row)
{
	log_warning("changes: skipping invalid %s row %s", table, log_esc(changes_str(r, row, 0)));
	ch.skipped++;
}

static void
changes_read_accounts(const PGresult *r)
{
	if (!changes_expect(r, 7))
		return;
	ch.new_cat = routes_catalog_new();
	if (!ch.new_cat) {
		ch.q_bad = true;
		return;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct route_account a = { 0 };
		const char *prov = changes_str(r, i, 2), *auth = changes_str(r, i, 6);

		a.slug = changes_str(r, i, 3);
		a.api_key = changes_str(r, i, 4);
		a.webhook_secret = changes_str(r, i, 5);
		if (!changes_u64(r, i, 0, &a.id) || !changes_u64(r, i, 1, &a.agency_id) || !prov ||
			!provider_from_name(prov, strlen(prov), &a.provider) || !a.slug ||
			!*a.slug || !a.api_key ||
			(auth && strcmp(auth, "hmac") != 0 && strcmp(auth, "bearer") != 0)) {
			changes_skip_row("provider_accounts", r, i);
			continue;
		}
		if (a.webhook_secret && !*a.webhook_secret)
			a.webhook_secret = NULL;
		a.auth = auth && strcmp(auth, "bearer") == 0 ? WEBHOOK_AUTH_BEARER :
							       WEBHOOK_AUTH_HMAC;
		if (!routes_catalog_add_account(ch.new_cat, &a)) {
			ch.q_bad = true;
			return;
		}
	}
}

static void
changes_read_agencies(const PGresult *r)
{
	if (!ch.new_cat || !changes_expect(r, 4))
		return;
	for (int i = 0; i < PQntuples(r); i++) {
		struct route_agency a = { 0 };
		uint64_t rate, ini, inc;

		if (!changes_u64(r, i, 0, &a.id) || PQgetisnull(r, i, 1) ||
			!changes_u64(r, i, 2, &ini) || !changes_u64(r, i, 3, &inc) ||
			ini > RATING_MAX_INCREMENT_S || inc > RATING_MAX_INCREMENT_S) {
			changes_skip_row("agencies", r, i);
			continue;
		}
		/* rate 0 is valid (free), which changes_u64 refuses */
		rate = strtoull(PQgetvalue(r, i, 1), NULL, 10);
		a.rate_micros_per_min = (int64_t)rate;
		a.billing_initial_s = (int32_t)ini;
		a.billing_increment_s = (int32_t)inc;
		if (rate > 100000000ULL) {
			log_warning("changes: agency %llu: rate %llu above $100/min; skipped",
				(unsigned long long)a.id, (unsigned long long)rate);
			ch.skipped++;
			continue;
		}
		if (!routes_catalog_add_agency(ch.new_cat, &a)) {
			ch.q_bad = true;
			return;
		}
	}
}

static void
changes_read_agents(const PGresult *r)
{
	if (!ch.new_cat || !changes_expect(r, 7))
		return;
	for (int i = 0; i < PQntuples(r); i++) {
		struct route_agent a = { 0 };
		const char *prov = changes_str(r, i, 3);

		a.provider_agent_id = changes_str(r, i, 4);
		a.name = changes_str(r, i, 5);
		a.client_name = changes_str(r, i, 6);
		if (!changes_u64(r, i, 0, &a.id) || !changes_u64(r, i, 1, &a.agency_id) ||
			!changes_u64(r, i, 2, &a.client_id) || !prov ||
			!provider_from_name(prov, strlen(prov), &a.provider) ||
			!a.provider_agent_id || !*a.provider_agent_id || !a.name) {
			changes_skip_row("agents", r, i);
			continue;
		}
		if (!routes_catalog_add_agent(ch.new_cat, &a)) {
			ch.q_bad = true;
			return;
		}
	}
	if (!routes_catalog_finish(ch.new_cat)) {
		log_error("changes: duplicate account slug or agent id in the catalog");
		ch.q_bad = true;
	}
}

/* One phone_numbers row into a slot of the new snapshot's catalog; false: skip it. */
static bool
changes_number_slot(const PGresult *r, int i, const struct routes_catalog *cat, bool released,
	struct route_slot *sl)
{
	const char *e164 = changes_str(r, i, 0);
	uint64_t agent_id = 0, account_id;
	int acct_col = released ? 2 : 3;

	memset(sl, 0, sizeof(*sl));
	if (!e164 || !e164_parse(e164, strlen(e164), &sl->key) ||
		!changes_u64(r, i, 1, &sl->number_id) ||
		(!released && !changes_u64(r, i, 2, &agent_id)) ||
		!changes_u64(r, i, acct_col, &account_id) || account_id == 0)
		return false;
	sl->account_idx = routes_catalog_account_idx(cat, account_id);
	if (sl->account_idx == ROUTE_NONE)
		return false;
	if (released)
		sl->agent_idx = ROUTE_RELEASED;
	else if (agent_id == 0)
		sl->agent_idx = ROUTE_NONE;
	else if ((sl->agent_idx = routes_catalog_agent_idx(cat, agent_id)) == ROUTE_NONE)
		return false;
	return true;
}

/* Results 1 to 3 of the full reload and of the catalog's reload (SQL_ACCOUNTS, SQL_AGENCIES,
 * SQL_AGENTS): read into the new catalog; false for another result. */
static bool
changes_read_catalog(const PGresult *r, int i)
{
	if (i == 1)
		changes_read_accounts(r);
	else if (i == 2)
		changes_read_agencies(r);
	else if (i == 3)
		changes_read_agents(r);
	else
		return false;
	return true;
}

/* Result 4 of the full reload: about how many numbers its COPY sends (at least the current
 * table's): the new table, sized for them (it grows if there are more), and the progress
 * line's total. */
static void
changes_read_estimate(const PGresult *r)
{
	const struct routes_snapshot *cur = routes_current();
	unsigned long long n;

	if (!ch.new_cat || !changes_expect(r, 1))
		return;
	if (PQntuples(r) != 1 || (n = strtoull(PQgetvalue(r, 0, 0), NULL, 10)) > UINT32_MAX / 2) {
		log_error("changes: unusable row estimate of phone_numbers");
		ch.q_bad = true;
		return;
	}
	if (cur && cur->source == ROUTES_FROM_DATABASE && n < cur->numbers.count)
		n = cur->numbers.count;
	ch.new_snap = routes_snapshot_new(ch.new_cat, (size_t)n + 1024);
	if (!ch.new_snap) {
		log_error("changes: out of memory for %llu numbers", n);
		ch.q_bad = true;
		return;
	}
	progress_init(&changes_progress, "routes: full reload", "numbers", (uint64_t)n, 4096);
	progress_backdate(&changes_progress, changes_elapsed()); /* the query's wait */
}

/* Result 5: the COPY of the active numbers starts (its rows: changes_copy_data). */
static void
changes_copy_start(const PGresult *r)
{
	if (PQresultStatus(r) != PGRES_COPY_OUT || PQnfields(r) != 4 || !PQbinaryTuples(r)) {
		log_error("changes: unexpected result shape (%s, %d columns)",
			PQresStatus(PQresultStatus(r)), PQnfields(r));
		ch.q_bad = true;
	}
	ch.copy_header = false;
	ch.copy_n = 0;
}

static void
changes_copy_flush(void)
{
	if (ch.copy_n && !ch.q_bad &&
		!route_table_put_many(&ch.new_snap->numbers, ch.copy_batch, ch.copy_n))
		ch.q_bad = true;
	ch.copy_n = 0;
}

static uint32_t
changes_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A binary COPY bigint field: 8 bytes big-endian, 1 .. 10^18 - 1 (as changes_u64 takes
 * them); NULL (len -1) is 0 when null_ok. */
static bool
changes_copy_u64(const unsigned char *f, int32_t len, bool null_ok, uint64_t *out)
{
	if (len == -1) {
		*out = 0;
		return null_ok;
	}
	if (len != 8)
		return false;
	*out = (uint64_t)changes_be32(f) << 32 | changes_be32(f + 4);
	return *out > 0 && *out < UINT64_C(1000000000000000000);
}

/* One active number of the COPY: e164 text, id, agent_id (NULL: unassigned), account_id. */
static void
changes_copy_row(const unsigned char *const f[4], const int32_t len[4])
{
	struct route_slot *sl = &ch.copy_batch[ch.copy_n];
	uint64_t id, agent_id, account_id;

	progress_log_tick(&changes_progress, changes_progress.done + 1);
	memset(sl, 0, sizeof(*sl));
	if (len[0] < 0 || !e164_parse((const char *)f[0], (size_t)len[0], &sl->key) ||
		!changes_copy_u64(f[1], len[1], false, &id) ||
		!changes_copy_u64(f[2], len[2], true, &agent_id) ||
		!changes_copy_u64(f[3], len[3], false, &account_id) ||
		(sl->account_idx = routes_catalog_account_idx(ch.new_cat, account_id)) ==
			ROUTE_NONE ||
		(agent_id != 0 && (sl->agent_idx = routes_catalog_agent_idx(ch.new_cat,
					   agent_id)) == ROUTE_NONE)) {
		if (ch.skipped++ < 10)
			log_warning("changes: skipping invalid phone_numbers row %lld",
				len[1] == 8 ? (long long)((uint64_t)changes_be32(f[1]) << 32 |
							  changes_be32(f[1] + 4)) :
					      -1LL);
		return;
	}
	sl->number_id = id;
	if (agent_id == 0)
		sl->agent_idx = ROUTE_NONE;
	if (++ch.copy_n == sizeof(ch.copy_batch) / sizeof(ch.copy_batch[0]))
		changes_copy_flush();
}

/*
 * A CopyData message of the full reload's COPY (PostgreSQL's binary format: the header before
 * the first row, then per row a 16-bit field count and each field as a 32-bit length, -1 for
 * NULL, and its bytes; a count of -1 ends it).  The server sends whole rows per message.
 */
static void
changes_copy_data(struct db_conn *c, const char *buf, int len)
{
	static const unsigned char sig[11] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n',
		0 };
	const unsigned char *p = (const unsigned char *)buf, *end = p + len;

	if (ch.q != Q_FULL || ch.q_bad || !ch.new_snap)
		return;
	if (!ch.copy_header) {
		uint32_t ext;

		if (len < 19 || memcmp(p, sig, sizeof(sig)) != 0)
			goto bad;
		ext = changes_be32(p + 15);
		if (ext > (uint32_t)len - 19)
			goto bad;
		p += 19 + ext;
		ch.copy_header = true;
	}
	while (p < end) {
		const unsigned char *f[4];
		int32_t flen[4];
		int16_t nf;

		if (end - p < 2)
			goto bad;
		nf = (int16_t)(p[0] << 8 | p[1]);
		p += 2;
		if (nf == -1 && p == end)
			return; /* the trailer */
		if (nf != 4)
			goto bad;
		for (int k = 0; k < 4; k++) {
			if (end - p < 4)
				goto bad;
			flen[k] = (int32_t)changes_be32(p);
			p += 4;
			if (flen[k] < -1 || flen[k] > end - p)
				goto bad;
			f[k] = p;
			if (flen[k] > 0)
				p += flen[k];
		}
		changes_copy_row(f, flen);
	}
	return;
bad:
	log_error("changes: unreadable COPY data of the active numbers (%d bytes)", len);
	ch.q_bad = true;
}

/* Result 6, the COPY's end: its last rows into the table. */
static void
changes_copy_end(const PGresult *r)
{
	if (!ch.new_snap)
		return;
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_error("changes: unexpected end of the COPY (%s)",
			PQresStatus(PQresultStatus(r)));
		ch.q_bad = true;
		return;
	}
	changes_copy_flush();
}

/* Result 7: the released numbers (no active row), into the table the COPY filled. */
static void
changes_read_released(const PGresult *r)
{
	enum { BATCH = 256 };
	struct route_slot batch[BATCH];
	size_t nb = 0;
	int rows = PQntuples(r);

	if (!ch.new_cat || !changes_expect(r, 3) || !ch.new_snap)
		return;
	changes_progress.total += (uint64_t)rows;
	for (int i = 0; i < rows; i++) {
		progress_log_tick(&changes_progress, changes_progress.done + 1);
		if (!changes_number_slot(r, i, ch.new_cat, true, &batch[nb])) {
			if (ch.skipped++ < 10)
				log_warning("changes: skipping invalid phone_numbers row %s",
					log_esc(changes_str(r, i, 1)));
			continue;
		}
		if (++nb == BATCH || i == rows - 1) {
			if (!route_table_put_many(&ch.new_snap->numbers, batch, nb)) {
				ch.q_bad = true;
				return;
			}
			nb = 0;
		}
	}
	if (nb && !route_table_put_many(&ch.new_snap->numbers, batch, nb))
		ch.q_bad = true;
}

/* Re-read numbers: apply onto a copy of the current table. */
static void
changes_read_changed(const PGresult *r)
{
	const struct routes_snapshot *cur = routes_current();
	struct route_slot sl;

	if (!cur || !changes_expect(r, 5))
		return;
	/* a number assigned to an agent we do not know yet: the catalog first, then again */
	for (int i = 0; i < PQntuples(r); i++) {
		uint64_t agent_id;
		const char *st = changes_str(r, i, 4);

		if (st && strcmp(st, "active") == 0 && changes_u64(r, i, 2, &agent_id) &&
			agent_id != 0 &&
			routes_catalog_agent_idx(cur->catalog, agent_id) == ROUTE_NONE) {
			ch.want_catalog = true;
			for (size_t k = 0; k < ch.n_inflight; k++)
				changes_pending_add(ch.inflight[k]);
			ch.q_bad = true;
			return;
		}
	}
	ch.new_snap = calloc(1, sizeof(*ch.new_snap));
	if (!ch.new_snap || !route_table_copy(&ch.new_snap->numbers, &cur->numbers)) {
		free(ch.new_snap);
		ch.new_snap = NULL;
		ch.q_bad = true;
		return;
	}
	ch.new_snap->catalog = cur->catalog;
	routes_catalog_ref(cur->catalog);
	for (size_t k = 0; k < ch.n_inflight; k++)
		route_table_del(&ch.new_snap->numbers, ch.inflight[k]);
	for (int i = 0; i < PQntuples(r); i++) {
		const char *st = changes_str(r, i, 4);
		bool released = !st || strcmp(st, "active") != 0;
		const char *e164 = changes_str(r, i, 0);
		uint64_t agent_id = 0, account_id = 0;

		memset(&sl, 0, sizeof(sl));
		if (!e164 || !e164_parse(e164, strlen(e164), &sl.key) ||
			!changes_u64(r, i, 1, &sl.number_id) || !changes_u64(r, i, 2, &agent_id) ||
			!changes_u64(r, i, 3, &account_id) ||
			(sl.account_idx = routes_catalog_account_idx(cur->catalog, account_id)) ==
				ROUTE_NONE) {
			log_warning("changes: skipping invalid phone_numbers row %s",
				log_esc(changes_str(r, i, 1)));
			continue;
		}
		if (released)
			sl.agent_idx = ROUTE_RELEASED;
		else if (agent_id == 0)
			sl.agent_idx = ROUTE_NONE;
		else
			sl.agent_idx = routes_catalog_agent_idx(cur->catalog, agent_id);
		if (!route_table_put(&ch.new_snap->numbers, &sl)) {
			ch.q_bad = true;
			return;
		}
	}
}

/* A new catalog under the current numbers: re-point every slot by id. */
static struct routes_snapshot *
changes_remap(const struct routes_snapshot *cur, struct routes_catalog *cat)
{
	const struct routes_catalog *old = cur->catalog;
	struct routes_snapshot *s = calloc(1, sizeof(*s));
	uint32_t *agent_map = NULL, *acct_map = NULL;
	bool same = true;

	if (!s)
		return NULL;
	agent_map = malloc(((size_t)old->n_agents + 1) * sizeof(*agent_map));
	acct_map = malloc(((size_t)old->n_accounts + 1) * sizeof(*acct_map));
	if (!agent_map || !acct_map)
		goto fail;
	for (uint32_t i = 0; i < old->n_agents; i++) {
		agent_map[i] = routes_catalog_agent_idx(cat, old->agents[i].id);
		same &= agent_map[i] == i;
	}
	for (uint32_t i = 0; i < old->n_accounts; i++) {
		acct_map[i] = routes_catalog_account_idx(cat, old->accounts[i].id);
		same &= acct_map[i] == i;
	}
	if (same) {
		/* every agent and account kept its index (a plan or a name changed, one was
		 * added): the slots stay right as they are; share them rather than rebuild
		 * millions */
		route_table_share(&s->numbers, &cur->numbers);
		goto done;
	}
	if (!route_table_init(&s->numbers, cur->numbers.count + 1024))
		goto fail;
	for (size_t i = 0; i <= cur->numbers.mask; i++) {
		struct route_slot sl = cur->numbers.slots[i];

		if (sl.key == 0 || sl.account_idx >= old->n_accounts ||
			acct_map[sl.account_idx] == ROUTE_NONE)
			continue;
		sl.account_idx = acct_map[sl.account_idx];
		if (sl.agent_idx < old->n_agents)
			sl.agent_idx = agent_map[sl.agent_idx]; /* gone: ROUTE_NONE */
		if (!route_table_put(&s->numbers, &sl))
			goto fail;
	}
done:
	free(agent_map);
	free(acct_map);
	s->catalog = cat;
	routes_catalog_ref(cat);
	return s;
fail:
	free(agent_map);
	free(acct_map);
	route_table_free(&s->numbers);
	free(s);
	return NULL;
}

static void
changes_save_cb(evutil_socket_t fd, short what, void *arg)
{
	const struct routes_snapshot *cur = routes_current();

	if (cur && cur->source == ROUTES_FROM_DATABASE)
		snapshot_save(cur);
}

static void
changes_publish(struct routes_snapshot *s, const char *what)
{
	const struct routes_snapshot *cur = routes_current();
	struct timeval tv = { CHANGES_SAVE_DELAY_MS / 1000, (CHANGES_SAVE_DELAY_MS % 1000) * 1000 };

	int kind = strcmp(what, "full") == 0    ? MR_FULL :
		   strcmp(what, "catalog") == 0 ? MR_CATALOG :
						  MR_NUMBERS;

	s->generation = (cur ? cur->generation : 0) + 1;
	s->source = ROUTES_FROM_DATABASE;
	s->loaded_at_ms = changes_now_ms();
	routes_publish(s);
	/* counted once routing sees it: a scrape that shows the reload promises the new table */
	METRICS_INC(routes_reloads, kind * 2);
	METRICS_OBSERVE(routes_reload_duration, kind, (uint64_t)(changes_elapsed() * 1e9));
	if (strcmp(what, "full") == 0)
		log_info("routes: loaded %u numbers in %.3f s (generation %llu, %u agents, %u "
			 "accounts%s)",
			s->numbers.count, changes_elapsed(), (unsigned long long)s->generation,
			s->catalog->n_agents, s->catalog->n_accounts,
			ch.skipped ? ", some invalid rows skipped" : "");
	else
		log_debug("routes: %s update in %.3f s (generation %llu, %u numbers)", what,
			changes_elapsed(), (unsigned long long)s->generation, s->numbers.count);
	if (!evtimer_pending(ch.save_ev, NULL))
		evtimer_add(ch.save_ev, &tv);
}

/* Refused schema: fatal on the first check of this process, else retry later. */
static void
changes_schema_mismatch(void)
{
	db_set_schema_ok(false);
	ch.q_bad = true;
	if (!ch.checked_once)
		db_fatal(1);
	ch.checked_once = true;
}

/*
 * Q_FEED on the routes connection: the server's generation, then the logged changes after
 * seen_gen in order.  Generations have no gaps (the counter's UPDATE is transactional), so a
 * first row other than seen_gen + 1, or none while the counter is ahead, means the log was
 * pruned past us: reload everything.
 */
static void
changes_read_feed(const PGresult *r, int i)
{
	if (i == 0) {
		if (changes_expect(r, 1) && PQntuples(r) == 1)
			ch.feed_server_gen = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
		return;
	}
	if (i != 1 || !changes_expect(r, 2))
		return;
	ch.feed_rows = (uint64_t)PQntuples(r);
	if ((PQntuples(r) > 0 && strtoull(PQgetvalue(r, 0, 0), NULL, 10) != ch.seen_gen + 1) ||
		(PQntuples(r) == 0 && ch.feed_server_gen > ch.seen_gen)) {
		log_warning(
			"changes: the change log no longer holds generation %llu; reloading all",
			(unsigned long long)ch.seen_gen + 1);
		ch.want_full = true;
		return;
	}
	for (int k = 0; k < PQntuples(r); k++) {
		changes_apply_payload(PQgetvalue(r, k, 1));
		ch.seen_gen = strtoull(PQgetvalue(r, k, 0), NULL, 10);
	}
}

static void
changes_feed_done(void)
{
	struct timeval tv = { 0, CHANGES_FEED_RETRY_MS * 1000 };

	if (ch.feed_rows == CHANGES_FEED_BATCH)
		ch.want_feed = true; /* more */
	else if (ch.feed_retry_ev && ch.feed_server_gen < ch.target_gen &&
		 !evtimer_pending(ch.feed_retry_ev, NULL))
		evtimer_add(ch.feed_retry_ev, &tv); /* not replayed there yet: look again soon */
	ch.feed_rows = 0;
}

/* Nothing left to apply: the table is at the generation seen (the metric, the instances). */
static void
changes_settle(void)
{
	if (ch.q == Q_NONE && !ch.want_full && !ch.want_catalog && ch.n_pending == 0 &&
		routes_current()) {
		atomic_store(&changes_applied_gen, ch.seen_gen);
		/* the instances row and callrouted_routes_change_generation */
		instances_set_change_generation(ch.seen_gen);
	}
}

static void
changes_result(struct db_conn *c, PGresult *r)
{
	int i = ch.q_index++;

	if (ch.q_bad)
		return;
	switch (ch.q) {
	case Q_HELLO:
		/* LISTEN, then: does the migrations table exist? */
		if (i == 1 && changes_expect(r, 1) && PQntuples(r) == 1) {
			ch.schema_table = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
			if (!ch.schema_table) {
				log_error("db: the database has no callrouted schema: run "
					  "callrouted --migrate");
				changes_schema_mismatch();
			}
		}
		break;
	case Q_VERSION:
		if (i == 0 && changes_expect(r, 1)) {
			int n = PQntuples(r), *rec = malloc(((size_t)n + 1) * sizeof(*rec));
			int v, want = migrate_target_version();

			if (!rec) {
				log_error("db: out of memory reading the schema version");
				ch.q_bad = true;
				break;
			}
			for (int k = 0; k < n; k++)
				rec[k] = atoi(PQgetvalue(r, k, 0));
			v = migrate_schema_version(rec, (size_t)n);
			free(rec);

			db_set_schema_ok(v == want);
			if (v < want)
				log_error(
					"db: the database schema is at version %d, older than this "
					"binary's %d: run callrouted --migrate",
					v, want);
			else if (v > want)
				log_error(
					"db: the database schema is at version %d, newer than this "
					"binary's %d: upgrade callrouted",
					v, want);
			if (v != want)
				changes_schema_mismatch();
			ch.checked_once = true;
		}
		break;
	case Q_FULL:
		/* BEGIN, accounts, agencies, agents, the numbers' estimate, the active ones' COPY
		 * (its start, its end), released numbers, the generation, COMMIT */
		if (changes_read_catalog(r, i))
			break;
		if (i == 4)
			changes_read_estimate(r);
		else if (i == 5)
			changes_copy_start(r);
		else if (i == 6)
			changes_copy_end(r);
		else if (i == 7)
			changes_read_released(r);
		else if (i == 8 && changes_expect(r, 1) && PQntuples(r) == 1)
			ch.full_gen = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
		break;
	case Q_FEED:
		changes_read_feed(r, i);
		break;
	case Q_CATALOG:
		changes_read_catalog(r, i);
		break;
	case Q_NUMBERS:
		changes_read_changed(r);
		break;
	case Q_NONE:
		break;
	}
}

static void
changes_done(struct db_conn *c, bool ok)
{
	enum changes_query q = ch.q;

	if (q == Q_FULL)
		atomic_fetch_add(&changes_fulls_finished, 1);

	if (!ok || ch.q_bad) {
		if (q == Q_HELLO || q == Q_VERSION) {
			changes_reset_query();
			db_disconnect(ch.conn, "schema check failed");
			return;
		}
		if (q == Q_FULL || q == Q_CATALOG || q == Q_NUMBERS)
			METRICS_INC(routes_reloads, (q == Q_FULL           ? MR_FULL :
							    q == Q_CATALOG ? MR_CATALOG :
									     MR_NUMBERS) *
								    2 +
							    1);
		if (q == Q_FULL || q == Q_CATALOG)
			log_error("routes: %s reload failed; keeping generation %llu",
				q == Q_FULL ? "full" : "catalog",
				routes_current() ?
					(unsigned long long)routes_current()->generation :
					0ULL);
		if (!ok && q == Q_NUMBERS) {
			for (size_t k = 0; k < ch.n_inflight; k++)
				changes_pending_add(ch.inflight[k]);
		}
		changes_reset_query();
		return;
	}
	switch (q) {
	case Q_HELLO:
		changes_reset_query();
		changes_start(Q_VERSION, MIGRATE_VERSION_SQL, 0, NULL);
		return;
	case Q_VERSION:
		ch.want_full = true;
		break;
	case Q_FULL:
		if (ch.new_snap) {
			changes_publish(ch.new_snap, "full");
			ch.new_snap = NULL;
			/* the feed goes on from the snapshot's generation (a standby further
			 * behind than the last one read: its changes are read again; a new
			 * primary that lacks the old one's last changes: its generation) */
			ch.seen_gen =
				ch.full_gen > ch.full_notified ? ch.full_gen : ch.full_notified;
		}
#ifdef __GLIBC__
		/* what the reload's results and rows took: back to the system (the old table,
		 * a mapping of its own, goes when its readers are gone) */
		malloc_trim(0);
#endif
		break;
	case Q_FEED:
		changes_feed_done();
		break;
	case Q_CATALOG: {
		const struct routes_snapshot *cur = routes_current();
		struct routes_snapshot *s;

		if (!ch.new_cat)
			break;
		if (!cur) {
			ch.want_full = true;
			break;
		}
		s = changes_remap(cur, ch.new_cat);
		if (!s) {
			log_error("routes: out of memory applying a catalog change; reloading all");
			ch.want_full = true;
			break;
		}
		changes_publish(s, "catalog");
		break;
	}
	case Q_NUMBERS:
		if (ch.new_snap) {
			changes_publish(ch.new_snap, "numbers");
			ch.new_snap = NULL;
		}
		break;
	case Q_NONE:
		break;
	}
	changes_reset_query();
	changes_settle();
}

static void
changes_start(enum changes_query q, const char *sql, int nparams, const char *const *params)
{
	changes_reset_query();
	ch.q = q;
	clock_gettime(CLOCK_MONOTONIC, &ch.t0);
	if (!db_send(ch.conn, sql, nparams, params))
		changes_reset_query();
}

static void
changes_pump(struct db_conn *c)
{
	if (!db_idle(ch.conn) || ch.q != Q_NONE)
		return;
	if (!ch.checked_once) {
		/* not reachable: connected() sends the hello first */
		return;
	}
	if (ch.want_full) {
		ch.want_full = false;
		ch.want_catalog = false;
		ch.n_pending = 0; /* the full reload reads them all */
		ch.full_notified = 0;
		changes_start(Q_FULL, sql_full, 0, NULL);
		return;
	}
	if (!routes_current())
		return;
	if (ch.want_catalog) {
		ch.want_catalog = false;
		changes_start(Q_CATALOG, sql_catalog, 0, NULL);
		return;
	}
	if (ch.n_pending > 0) {
		size_t n = ch.n_pending < CHANGES_BATCH ? ch.n_pending : CHANGES_BATCH;
		char *arr = malloc(n * (E164_BUFSIZE + 3) + 3), *p;
		const char *params[1];

		if (!arr)
			return;
		p = arr;
		*p++ = '{';
		for (size_t i = 0; i < n; i++) {
			if (i)
				*p++ = ',';
			p += e164_format(ch.pending[ch.n_pending - n + i], p, E164_BUFSIZE);
		}
		*p++ = '}';
		*p = 0;
		params[0] = arr;
		changes_reset_query();
		ch.inflight = malloc(n * sizeof(*ch.inflight));
		if (!ch.inflight) {
			free(arr);
			return;
		}
		memcpy(ch.inflight, ch.pending + ch.n_pending - n, n * sizeof(*ch.inflight));
		ch.n_inflight = n;
		ch.n_pending -= n;
		ch.q = Q_NUMBERS;
		clock_gettime(CLOCK_MONOTONIC, &ch.t0);
		if (!db_send(ch.conn, sql_numbers, 1, params)) {
			for (size_t k = 0; k < ch.n_inflight; k++)
				changes_pending_add(ch.inflight[k]);
			changes_reset_query();
		}
		free(arr);
		return;
	}
	if (ch.want_feed) {
		char sql[256];

		ch.want_feed = false;
		snprintf(sql, sizeof(sql),
			"SELECT generation FROM callrouted_change_generation; "
			"SELECT generation, payload::text FROM callrouted_change_log "
			"WHERE generation > %llu ORDER BY generation LIMIT %d",
			(unsigned long long)ch.seen_gen, CHANGES_FEED_BATCH);
		changes_start(Q_FEED, sql, 0, NULL);
	}
}

static void
changes_connected(struct db_conn *c)
{
	changes_reset_query();
	ch.q = Q_HELLO;
	if (!db_send(ch.conn, ch.standby ? sql_hello_standby : sql_hello, 0, NULL))
		changes_reset_query();
	/* whatever was missed while away: the full reload after the hello covers it */
	ch.n_pending = 0;
	ch.want_catalog = false;
}

static void
changes_disconnected(struct db_conn *c)
{
	changes_reset_query();
}

/* db thread: SIGHUP's reload, posted by loader_request_reload. */
static void
changes_reload_cb(evutil_socket_t fd, short what, void *arg)
{
	ch.want_full = true;
	db_wake(ch.conn);
}

void
loader_request_reload(void)
{
	if (ch.reload_ev)
		event_active(ch.reload_ev, EV_TIMEOUT, 0);
}

uint64_t
loader_change_generation(void)
{
	return atomic_load(&changes_applied_gen);
}

bool
loader_db_up(void)
{
	return ch.conn && db_conn_up(ch.conn);
}

static void
changes_notify(struct db_conn *c, const char *channel, const char *payload)
{
	if (strcmp(channel, CHANGES_CHANNEL) != 0)
		return;
	METRICS_INC(changes_notifications, 0);
	changes_apply_payload(payload);
}

/* A change, as notified or as logged in callrouted_change_log: queue what it asks for. */
static void
changes_apply_payload(const char *payload)
{
	json_error_t err;
	json_t *j, *t, *nums, *g;
	const char *table;

	j = json_loads(payload, 0, &err);
	t = j ? json_object_get(j, "t") : NULL;
	table = json_is_string(t) ? json_string_value(t) : NULL;
	if (!table) {
		log_warning("changes: unreadable notification, reloading all: %.200s",
			log_esc(payload));
		ch.want_full = true;
		json_decref(j);
		return;
	}
	log_debug("changes: notification %.200s", log_esc(payload));
	g = json_object_get(j, "g");
	if (json_is_integer(g) && json_integer_value(g) > 0) {
		uint64_t gen = (uint64_t)json_integer_value(g);

		if (gen > ch.seen_gen)
			ch.seen_gen = gen;
		if (ch.q == Q_FULL && gen > ch.full_notified)
			ch.full_notified = gen; /* queued: applied after the full reload */
	}
	if (policy_db_owns_table(table)) {
		json_decref(j); /* the policy loader's (policy_db.c) */
		return;
	}
	if (strcmp(table, "phone_numbers") != 0) {
		ch.want_catalog = true;
		json_decref(j);
		return;
	}
	nums = json_object_get(j, "e164");
	if (!json_is_array(nums) || json_is_true(json_object_get(j, "all"))) {
		ch.want_full = true;
		json_decref(j);
		return;
	}
	for (size_t i = 0; i < json_array_size(nums); i++) {
		json_t *v = json_array_get(nums, i);
		uint64_t key;

		if (json_is_string(v) &&
			e164_parse(json_string_value(v), json_string_length(v), &key))
			changes_pending_add(key);
	}
	json_decref(j);
}

static void
changes_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	ch.want_full = true;
	db_wake(ch.conn);
}

/* ---- the doorbell: one LISTEN on the primary when routes come from routes_database_url ---- */

static void
changes_feed_cb(evutil_socket_t fd, short what, void *arg)
{
	ch.want_feed = true;
	db_wake(ch.conn);
}

static void
bell_target(uint64_t g)
{
	if (g > ch.target_gen)
		ch.target_gen = g;
	if (ch.target_gen > ch.seen_gen) {
		ch.want_feed = true;
		db_wake(ch.conn);
	}
}

static void
bell_connected(struct db_conn *c)
{
	/* a failure drops the connection (db.c logs it); it says hello again when back */
	db_send(c, "LISTEN " CHANGES_CHANNEL "; " SQL_GENERATION, 0, NULL);
}

static void
bell_disconnected(struct db_conn *c)
{
}

static void
bell_notify(struct db_conn *c, const char *channel, const char *payload)
{
	json_error_t err;
	json_t *j, *g;

	if (strcmp(channel, CHANGES_CHANNEL) != 0)
		return;
	METRICS_INC(changes_notifications, 0);
	j = json_loads(payload, 0, &err);
	g = j ? json_object_get(j, "g") : NULL;
	if (json_is_integer(g) && json_integer_value(g) > 0)
		bell_target((uint64_t)json_integer_value(g));
	else
		changes_feed_cb(-1, 0, NULL); /* no generation: look at the log now */
	json_decref(j);
}

static void
bell_result(struct db_conn *c, PGresult *r)
{
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1)
		bell_target(strtoull(PQgetvalue(r, 0, 0), NULL, 10));
}

static void
bell_done(struct db_conn *c, bool ok)
{
}

static void
bell_pump(struct db_conn *c)
{
}

static const struct db_conn_ops bell_ops = {
	.needs_primary = true, /* LISTEN is refused on a standby (SQLSTATE 25006) */
	.name = "changes",
	.connected = bell_connected,
	.disconnected = bell_disconnected,
	.notify = bell_notify,
	.result = bell_result,
	.done = bell_done,
	.pump = bell_pump,
};

static const struct db_conn_ops changes_ops_standby = {
	.name = "routes",
	.connected = changes_connected,
	.disconnected = changes_disconnected,
	.notify = NULL,
	.result = changes_result,
	.done = changes_done,
	.copy_data = changes_copy_data,
	.pump = changes_pump,
};

static const struct db_conn_ops changes_ops = {
	.needs_primary = true, /* it LISTENs */
	.name = "routes",
	.connected = changes_connected,
	.disconnected = changes_disconnected,
	.notify = changes_notify,
	.result = changes_result,
	.done = changes_done,
	.copy_data = changes_copy_data,
	.pump = changes_pump,
};

bool
loader_setup(const struct config *cfg)
{
	struct timeval tv = { cfg->refresh_interval_ms / 1000,
		(cfg->refresh_interval_ms % 1000) * 1000 };

	struct timeval poll = { cfg->change_poll_interval_ms / 1000,
		(cfg->change_poll_interval_ms % 1000) * 1000 };

	ch.refresh_ms = cfg->refresh_interval_ms;
	ch.standby = cfg->routes_database_url && *cfg->routes_database_url;
	ch.conn = db_conn_new(ch.standby ? &changes_ops_standby : &changes_ops);
	ch.refresh_ev = event_new(db_base(), -1, EV_PERSIST, changes_refresh_cb, NULL);
	ch.reload_ev = event_new(db_base(), -1, 0, changes_reload_cb, NULL);
	ch.save_ev = evtimer_new(db_base(), changes_save_cb, NULL);
	if (!ch.conn || !ch.refresh_ev || !ch.reload_ev || !ch.save_ev)
		return false;
	event_add(ch.refresh_ev, &tv);
	if (ch.standby) {
		/* routes from routes_database_url; the doorbell on database_url */
		ch.bell = db_conn_new(&bell_ops);
		ch.poll_ev = event_new(db_base(), -1, EV_PERSIST, changes_feed_cb, NULL);
		ch.feed_retry_ev = evtimer_new(db_base(), changes_feed_cb, NULL);
		if (!db_conn_set_conninfo(ch.conn, cfg->routes_database_url) || !ch.bell ||
			!ch.poll_ev || !ch.feed_retry_ev)
			return false;
		event_add(ch.poll_ev, &poll);
	}
	return true;
}

void
loader_cleanup(void)
{
	/* a change published in the last second is not on disk yet: save it now */
	if (ch.save_ev && evtimer_pending(ch.save_ev, NULL))
		changes_save_cb(-1, 0, NULL);
	changes_reset_query();
	if (ch.refresh_ev)
		event_free(ch.refresh_ev);
	if (ch.reload_ev)
		event_free(ch.reload_ev);
	if (ch.save_ev)
		event_free(ch.save_ev);
	if (ch.poll_ev)
		event_free(ch.poll_ev);
	if (ch.feed_retry_ev)
		event_free(ch.feed_retry_ev);
	free(ch.pending);
	memset(&ch, 0, sizeof(ch));
}

void
loader_stats(stat_fn add, void *ctx)
{
	STAT_GAUGE(add, ctx, "callrouted_db_up",
		"1 while the routes connection to PostgreSQL is up.", loader_db_up() ? 1 : 0);
}
