/* policy_db.c: the policy loader (db thread): policies into the snapshot, counts every second. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "callrouted/config.h"
#include "db.h"
#include "callrouted/log.h"
#include "metrics.h"
#include "policy_db.h"
#include "route_counts.h"
#include "route_policy.h"
#include "routes.h"
#include "snapshot.h"

#define POL_CHANNEL "callrouted_changes"
#define POL_COUNTS_MS 500         /* the counts are refreshed at least every second */
#define POL_REBUILD_S (24 * 3600) /* the zones' window moves on: rebuild once a day */
#define POL_SAVE_MS 1000          /* the snapshot file saved this long after a policy change */
#define POL_SAVE_FIGURES_S 60     /* and at most this often for changed figures alone */

static const char sql_listen[] = "LISTEN " POL_CHANNEL;
static const char sql_policy[] =
	"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
	"SELECT id, timezone, monthly_spend_cap_micros FROM agencies;"
	"SELECT id, agency_id, timezone, max_concurrent_calls, reserved_inbound_calls, "
	"monthly_spend_cap_micros FROM clients;"
	"SELECT id, client_id, number_id, weekday, extract(epoch FROM opens)::int, "
	"extract(epoch FROM closes)::int FROM business_hours;"
	"SELECT id, client_id, number_id, agency_id, day - date '1970-01-01' FROM closed_days;"
	"SELECT id, client_id, number_id, agency_id, prefix FROM blocked_callers;"
	"SELECT number_id, agent_id, weight FROM number_agent_splits;"
	"SELECT id, overflow_agent_id FROM phone_numbers "
	"WHERE overflow_agent_id IS NOT NULL AND status = 'active';"
	"SELECT id, refusal_agent_id FROM provider_accounts WHERE refusal_agent_id IS NOT NULL;"
	"COMMIT";
/* calls in progress per client with a limit (a call with no event for 6 h is not counted: its
 * end was lost), and the spend of this month and the last */
static const char sql_counts[] =
	"SELECT client_id, count(*) FROM calls WHERE status = 'in_progress' AND client_id IN "
	"(SELECT id FROM clients WHERE max_concurrent_calls IS NOT NULL) "
	"AND updated_at > now() - interval '6 hours' GROUP BY client_id;"
	"SELECT scope = 'agency', id, (extract(year FROM month) * 12 + extract(month FROM month) "
	"- 1)::int, amount_micros FROM route_spend_monthly "
	"WHERE month >= (now() - interval '40 days')::date";

enum pol_query { PQ_NONE, PQ_LISTEN, PQ_POLICY, PQ_COUNTS };

static struct {
	struct db_conn *conn;
	struct event *tick_ev, *save_ev;
	uint64_t saved_changes; /* route_counts_changes() at the last save */
	int64_t saved_ms;
	int64_t rebuild_tried_s; /* the last offline rebuild (pol_rebuild_offline) */
	bool want_policy, want_counts, listening;
	enum pol_query q;
	int q_index;
	bool q_bad;
	struct timespec t0;
	struct route_policy *building;
	struct route_policy *pending; /* built before any route table was loaded */
	int64_t built_s;
	unsigned long loads, failures, skipped;
	_Atomic int64_t last_load_us; /* read by the scrape (admin thread) */
} pd;

static int64_t
pol_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
pol_i64(const PGresult *r, int row, int col, int64_t *out)
{
	char *end;

	if (PQgetisnull(r, row, col))
		return false;
	*out = strtoll(PQgetvalue(r, row, col), &end, 10);
	return *end == 0 && end != PQgetvalue(r, row, col);
}

/* an id: 0 when null */
static bool
pol_id(const PGresult *r, int row, int col, uint64_t *out)
{
	int64_t v;

	*out = 0;
	if (PQgetisnull(r, row, col))
		return true;
	if (!pol_i64(r, row, col, &v) || v <= 0)
		return false;
	*out = (uint64_t)v;
	return true;
}

static int64_t
pol_opt(const PGresult *r, int row, int col)
{
	int64_t v;

	return pol_i64(r, row, col, &v) ? v : -1;
}

static void
pol_skip(const char *table, const PGresult *r, int row)
{
	if (pd.skipped++ < 10)
		log_warning("policy: skipping invalid %s row %s", table,
			log_esc(PQgetisnull(r, row, 0) ? "?" : PQgetvalue(r, row, 0)));
}

/* owner of a row: the number's, else the client's, else the agency's */
static enum policy_scope
pol_owner(uint64_t client, uint64_t number, uint64_t agency, uint64_t *owner)
{
	if (number) {
		*owner = number;
		return PS_NUMBER;
	}
	if (client) {
		*owner = client;
		return PS_CLIENT;
	}
	*owner = agency;
	return PS_AGENCY;
}

static bool
pol_shape(const PGresult *r, int cols)
{
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != cols) {
		log_error("policy: unexpected result shape (%s, %d columns)",
			PQresStatus(PQresultStatus(r)), PQnfields(r));
		pd.q_bad = true;
		return false;
	}
	return true;
}

static void
pol_read(int i, const PGresult *r)
{
	struct route_policy *p = pd.building;
	static const int cols[] = { 0, 3, 6, 6, 5, 5, 3, 2, 2 };

	if (i < 1 || i > 8 || !p || !pol_shape(r, cols[i]))
		return;
	for (int k = 0; k < PQntuples(r) && !pd.q_bad; k++) {
		uint64_t id = 0, a = 0, b = 0, c = 0, owner = 0;
		enum policy_scope sc = PS_NONE;
		int64_t x, y, z;
		bool ok = false;

		switch (i) {
		case 1: /* agencies */
			ok = pol_id(r, k, 0, &id) && id &&
			     policy_add_agency(p, id, PQgetvalue(r, k, 1), pol_opt(r, k, 2));
			if (ok)
				route_counts_agency(id);
			break;
		case 2: /* clients */
			x = pol_opt(r, k, 3);
			y = pol_opt(r, k, 4);
			ok = pol_id(r, k, 0, &id) && id && pol_id(r, k, 1, &a) && a &&
			     x <= INT32_MAX && y <= INT32_MAX &&
			     policy_add_client(p, id, a, PQgetvalue(r, k, 2), (int32_t)x,
				     (int32_t)y, pol_opt(r, k, 5));
			if (ok)
				route_counts_client(id, (int32_t)x);
			break;
		case 3: /* business_hours */
			ok = pol_id(r, k, 0, &id) && pol_id(r, k, 1, &a) && pol_id(r, k, 2, &b) &&
			     pol_i64(r, k, 3, &x) && pol_i64(r, k, 4, &y) && pol_i64(r, k, 5, &z) &&
			     y >= 0 && z <= 86400 && (sc = pol_owner(a, b, 0, &owner)) != PS_NONE &&
			     policy_add_hours(p, sc, owner, id, (int)x, (uint32_t)y, (uint32_t)z);
			break;
		case 4: /* closed_days */
			ok = pol_id(r, k, 0, &id) && pol_id(r, k, 1, &a) && pol_id(r, k, 2, &b) &&
			     pol_id(r, k, 3, &c) && pol_i64(r, k, 4, &x) && x > INT32_MIN &&
			     x < INT32_MAX && (sc = pol_owner(a, b, c, &owner)) != PS_NONE &&
			     policy_add_closed(p, sc, owner, id, (int32_t)x);
			break;
		case 5: /* blocked_callers */
			ok = pol_id(r, k, 0, &id) && pol_id(r, k, 1, &a) && pol_id(r, k, 2, &b) &&
			     pol_id(r, k, 3, &c) && (sc = pol_owner(a, b, c, &owner)) != PS_NONE &&
			     policy_add_blocked(p, sc, owner, id, PQgetvalue(r, k, 4));
			break;
		case 6: /* number_agent_splits */
			ok = pol_id(r, k, 0, &a) && a && pol_id(r, k, 1, &b) && b &&
			     pol_i64(r, k, 2, &x) && x >= 1 && x <= 1000 &&
			     policy_add_split(p, a, b, (uint32_t)x);
			break;
		case 7: /* overflow agents */
			ok = pol_id(r, k, 0, &a) && a && pol_id(r, k, 1, &b) && b &&
			     policy_add_overflow(p, a, b);
			break;
		case 8: /* Retell accounts' refusal agents */
			ok = pol_id(r, k, 0, &a) && a &&
			     policy_add_refusal_agent(p, a, PQgetvalue(r, k, 1));
			break;
		}
		if (!ok) {
			static const char *const names[] = { "", "agencies", "clients",
				"business_hours", "closed_days", "blocked_callers",
				"number_agent_splits", "phone_numbers", "provider_accounts" };

			pol_skip(names[i], r, k);
		}
	}
}

/* A new snapshot: the current one's numbers and catalog, these policies. */
static bool
pol_publish(struct route_policy *p)
{
	const struct routes_snapshot *cur = routes_current();
	struct routes_snapshot *s;

	if (!cur)
		return false;
	s = calloc(1, sizeof(*s));
	if (!s) {
		log_error("policy: out of memory publishing the policies; keeping the old ones");
		return false;
	}
	route_table_share(&s->numbers, &cur->numbers); /* the same numbers: no copy */
	s->catalog = cur->catalog;
	routes_catalog_ref(s->catalog);
	s->policy = p;
	s->generation = cur->generation + 1;
	s->source = cur->source;
	s->loaded_at_ms = cur->loaded_at_ms;
	routes_publish(s);
	return true;
}

/* The snapshot file gets the policies and the figures (snapshot.c encodes on this thread; the
 * writer thread writes); only a table read from the database is saved, as the loader does. */
static void
pol_save_cb(evutil_socket_t fd, short what, void *arg)
{
	const struct routes_snapshot *cur = routes_current();

	(void)fd;
	(void)what;
	(void)arg;
	if (!cur || cur->source != ROUTES_FROM_DATABASE)
		return;
	pd.saved_changes = route_counts_changes();
	pd.saved_ms = pol_now_ms();
	snapshot_save(cur);
}

static void
pol_save_later(int64_t delay_ms)
{
	struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };

	if (pd.save_ev && !evtimer_pending(pd.save_ev, NULL))
		evtimer_add(pd.save_ev, &tv);
}

static void
pol_reset_query(void)
{
	policy_unref(pd.building);
	pd.building = NULL;
	pd.q = PQ_NONE;
	pd.q_index = 0;
	pd.q_bad = false;
}

static void
pol_result(struct db_conn *c, PGresult *r)
{
	int i = pd.q_index++;

	(void)c;
	if (pd.q_bad)
		return;
	if (pd.q == PQ_POLICY) {
		pol_read(i, r);
	} else if (pd.q == PQ_COUNTS) {
		if (i == 0 && pol_shape(r, 2)) {
			route_counts_refresh_begin();
			for (int k = 0; k < PQntuples(r); k++) {
				uint64_t id;
				int64_t n;

				if (pol_id(r, k, 0, &id) && pol_i64(r, k, 1, &n) && n >= 0 &&
					n < INT32_MAX)
					route_counts_set_in_progress(id, (int32_t)n);
			}
		} else if (i == 1 && pol_shape(r, 4)) {
			for (int k = 0; k < PQntuples(r); k++) {
				uint64_t id;
				int64_t m, amt;

				if (pol_id(r, k, 1, &id) && pol_i64(r, k, 2, &m) &&
					pol_i64(r, k, 3, &amt) && m > 0 && m < INT32_MAX)
					route_counts_set_spend(strcmp(PQgetvalue(r, k, 0), "t") ==
								       0,
						id, (int32_t)m, amt);
			}
		}
	}
}

static void
pol_done(struct db_conn *c, bool ok)
{
	(void)c;
	if (pd.q == PQ_LISTEN && ok)
		pd.listening = true;
	if (pd.q == PQ_LISTEN && !ok) {
		pol_reset_query();
		db_disconnect(pd.conn, "LISTEN failed"); /* again after reconnect_interval */
		return;
	}
	if (pd.q == PQ_COUNTS && ok && !pd.q_bad) {
		route_counts_refresh_end(pol_now_ms());
		if (route_counts_changes() != pd.saved_changes &&
			pol_now_ms() - pd.saved_ms >= POL_SAVE_FIGURES_S * 1000)
			pol_save_later(POL_SAVE_MS);
	}
	if (pd.q == PQ_POLICY) {
		struct timespec t1;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		atomic_store(&pd.last_load_us, (int64_t)(t1.tv_sec - pd.t0.tv_sec) * 1000000 +
						       (t1.tv_nsec - pd.t0.tv_nsec) / 1000);
		if (!ok || pd.q_bad || !pd.building || !policy_finish(pd.building)) {
			pd.failures++;
			METRICS_INC(policy_reloads, 1);
			log_error("policy: reload failed; keeping the policies in use");
		} else {
			struct route_policy *p = pd.building;

			pd.building = NULL;
			pd.loads++;
			METRICS_INC(policy_reloads, 0);
			if (p->zone_failures)
				log_warning("policy: %u time zones not found under %s: UTC used",
					p->zone_failures, TZIF_DIR);
			log_debug(
				"policy: %u numbers, %u clients, %u agencies, %u blocked, %u hours, "
				"%u closed days, %u splits in %.3f s",
				p->n_numbers, p->n_clients, p->n_agencies, p->n_blocked, p->n_hours,
				p->n_closed, p->n_splits,
				(double)atomic_load(&pd.last_load_us) / 1e6);
			policy_unref(pd.pending);
			pd.pending = NULL;
			if (!pol_publish(p))
				pd.pending = p; /* no route table yet: with the first one */
			else
				pol_save_later(POL_SAVE_MS);
		}
	}
	pol_reset_query();
}

static void
pol_start(enum pol_query q, const char *sql)
{
	pol_reset_query();
	pd.q = q;
	clock_gettime(CLOCK_MONOTONIC, &pd.t0);
	if (q == PQ_POLICY) {
		pd.built_s = pol_now_ms() / 1000;
		pd.building = policy_new(pd.built_s);
		pd.skipped = 0;
		if (!pd.building) {
			pol_reset_query();
			return;
		}
	}
	if (!db_send(pd.conn, sql, 0, NULL))
		pol_reset_query();
}

static void
pol_pump(struct db_conn *c)
{
	(void)c;
	if (!db_idle(pd.conn) || pd.q != PQ_NONE)
		return;
	if (pd.pending && routes_current()) {
		struct route_policy *p = pd.pending;

		pd.pending = NULL;
		if (!pol_publish(p))
			pd.pending = p;
		else
			pol_save_later(POL_SAVE_MS);
	}
	if (!pd.listening) {
		pol_start(PQ_LISTEN, sql_listen);
		return;
	}
	if (pd.want_policy) {
		pd.want_policy = false;
		pol_start(PQ_POLICY, sql_policy);
		return;
	}
	if (pd.want_counts) {
		pd.want_counts = false;
		pol_start(PQ_COUNTS, sql_counts);
	}
}

static void
pol_connected(struct db_conn *c)
{
	(void)c;
	pol_reset_query();
	pd.listening = false;
	/* whatever changed while away */
	pd.want_policy = pd.want_counts = true;
}

static void
pol_disconnected(struct db_conn *c)
{
	(void)c;
	pol_reset_query();
	pd.listening = false;
}

bool
policy_db_owns_table(const char *t)
{
	return strcmp(t, "business_hours") == 0 || strcmp(t, "closed_days") == 0 ||
	       strcmp(t, "blocked_callers") == 0 || strcmp(t, "number_agent_splits") == 0 ||
	       strcmp(t, "phone_numbers_overflow") == 0;
}

static void
pol_notify(struct db_conn *c, const char *channel, const char *payload)
{
	json_t *j, *t;

	(void)c;
	if (strcmp(channel, POL_CHANNEL) != 0)
		return;
	j = json_loads(payload, 0, NULL);
	t = j ? json_object_get(j, "t") : NULL;
	/* ours (the overflow agents of phone_numbers included), and the tables whose columns
	 * the policies read (time zones, limits, caps); a TRUNCATE of phone_numbers too */
	if (!json_is_string(t) || policy_db_owns_table(json_string_value(t)) ||
		strcmp(json_string_value(t), "agencies") == 0 ||
		strcmp(json_string_value(t), "clients") == 0 ||
		strcmp(json_string_value(t), "provider_accounts") == 0 ||
		(strcmp(json_string_value(t), "phone_numbers") == 0 &&
			!json_object_get(j, "e164") && !json_object_get(j, "all")))
		pd.want_policy = true;
	json_decref(j);
}

/* Without PostgreSQL (e.g. started from the snapshot file): the zones' window still moves on
 * once a day, rebuilt from the policies in use (their rows are in them). */
static void
pol_rebuild_offline(void)
{
	const struct routes_snapshot *cur = routes_current();
	const struct route_policy *p = cur ? cur->policy : NULL;
	int64_t now_s = pol_now_ms() / 1000;
	struct route_policy *q;

	if (pd.listening || pd.q != PQ_NONE || !p ||
		now_s - (p->window_from + p->window_to) / 2 <= POL_REBUILD_S ||
		now_s - pd.rebuild_tried_s < 3600) /* after a failure: again in an hour */
		return;
	pd.rebuild_tried_s = now_s;
	q = snapshot_policy_rebuild(p, now_s);
	if (!q || !pol_publish(q)) {
		policy_unref(q);
		METRICS_INC(policy_reloads, 1);
		log_error("policy: rebuilding the zones' offsets without the database failed");
		return;
	}
	METRICS_INC(policy_reloads, 0);
	log_info("policy: zones' offsets rebuilt for a window centred on now (database down)");
}

static void
pol_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	pd.want_counts = true;
	if (pd.built_s && pol_now_ms() / 1000 - pd.built_s > POL_REBUILD_S)
		pd.want_policy = true;
	pol_rebuild_offline();
	db_wake(pd.conn);
}

static const struct db_conn_ops pol_ops = {
	.name = "policy",
	.connected = pol_connected,
	.disconnected = pol_disconnected,
	.notify = pol_notify,
	.result = pol_result,
	.done = pol_done,
	.pump = pol_pump,
	.needs_primary = true, /* it LISTENs (refused on a standby) */
};

/* At start, before the db thread runs: the policies of the snapshot file (main.c published
 * it) count against the figures saved with them, plus this daemon's own slots. */
static bool
pol_restore(void)
{
	const struct routes_snapshot *cur = routes_current();
	const struct route_policy *p = cur ? cur->policy : NULL;

	if (!p)
		return true;
	for (uint32_t i = 0; i < p->n_agencies; i++)
		if (!route_counts_agency(p->agencies[i].id))
			return false;
	for (uint32_t i = 0; i < p->n_clients; i++)
		if (!route_counts_client(p->clients[i].id, p->clients[i].max_concurrent))
			return false;
	for (uint32_t i = 0; i < p->n_restored; i++)
		route_counts_restore(&p->restored[i]);
	return true;
}

bool
policy_db_setup(const struct config *cfg)
{
	struct timeval tv = { POL_COUNTS_MS / 1000, (POL_COUNTS_MS % 1000) * 1000 };

	(void)cfg;
	if (!route_counts_init() || !pol_restore())
		return false;
	pd.conn = db_conn_new(&pol_ops);
	pd.tick_ev = event_new(db_base(), -1, EV_PERSIST, pol_tick_cb, NULL);
	pd.save_ev = evtimer_new(db_base(), pol_save_cb, NULL);
	if (!pd.conn || !pd.tick_ev || !pd.save_ev)
		return false;
	event_add(pd.tick_ev, &tv);
	return true;
}

void
policy_db_cleanup(void)
{
	pol_reset_query();
	if (pd.tick_ev)
		event_free(pd.tick_ev);
	if (pd.save_ev && evtimer_pending(pd.save_ev, NULL))
		pol_save_cb(-1, 0,
			NULL); /* a policy change not saved yet (the db thread is joined) */
	if (pd.save_ev)
		event_free(pd.save_ev);
	policy_unref(pd.pending);
	memset(&pd, 0, sizeof(pd));
	route_counts_free();
}

void
policy_db_stats(const struct routes_snapshot *s, stat_fn add, void *ctx)
{
	const struct route_policy *p = s ? s->policy : NULL;

	STAT_GAUGE(add, ctx, "callrouted_policy_numbers",
		"Numbers with policies of their own (hours, days, blocks, splits, overflow).",
		p ? p->n_numbers : 0);
	STAT_GAUGE(add, ctx, "callrouted_policy_bytes",
		"Bytes of the routing policies in the route snapshot.", (double)policy_bytes(p));
	STAT_GAUGE(add, ctx, "callrouted_policy_load_seconds",
		"Duration of the last routing-policy load (query, build, publish).",
		(double)atomic_load(&pd.last_load_us) / 1e6);
	STAT_GAUGE(add, ctx, "callrouted_policy_counts_age_seconds",
		"Seconds since the concurrency and spend figures were last read from PostgreSQL.",
		route_counts_refreshed_ms() ?
			(double)(pol_now_ms() - route_counts_refreshed_ms()) / 1000.0 :
			-1);
}
