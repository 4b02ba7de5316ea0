/* route_api.c: GET /v1/route (why a call goes where it goes) and the outbound slot reservation. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "callrouted/e164.h"
#include "policy.h"
#include "callrouted/rating.h"
#include "route_api.h"
#include "route_counts.h"
#include "routes.h"

void
route_explain_q_init(struct route_explain_q *q)
{
	memset(q, 0, sizeof(*q));
	q->at_ms = -1;
}

bool
route_explain_param(struct route_explain_q *q, const char *key, const char *value, const char **why)
{
	if (strcmp(key, "to") == 0) {
		if (!e164_parse(value, strlen(value), &q->to)) {
			*why = "to: an E.164 number";
			return false;
		}
		q->has_to = true;
		return true;
	}
	if (strcmp(key, "from") == 0) {
		if (!*value) {
			q->from = 0;
			return true;
		}
		if (!e164_parse(value, strlen(value), &q->from)) {
			*why = "from: an E.164 number (or empty: an anonymous caller)";
			return false;
		}
		return true;
	}
	if (strcmp(key, "at") == 0) {
		if (!rating_parse_iso8601_ms(value, &q->at_ms) || q->at_ms < 0) {
			*why = "at: an ISO 8601 time with its offset, e.g. 2026-03-08T14:30:00Z";
			return false;
		}
		return true;
	}
	*why = "unknown query parameter (to, from, at)";
	return false;
}

static int64_t
route_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
route_iso(int64_t s, char *buf, size_t len, bool utc)
{
	int64_t day = s >= 0 ? s / 86400 : -((-s + 86399) / 86400), sod = s - day * 86400;
	int32_t y, m, d;

	tzif_civil(day, &y, &m, &d);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%s", y, m, d, (int)(sod / 3600),
		(int)(sod / 60 % 60), (int)(sod % 60), utc ? "Z" : "");
}

static json_t *
route_error(int *status, int code, const char *ecode, const char *msg)
{
	*status = code;
	return json_pack("{s:{s:s,s:s}}", "error", "code", ecode, "message", msg);
}

/* the admin thread's read section of the route snapshot */
static struct routes_reader *
route_reader(void)
{
	static _Thread_local struct routes_reader *r;

	if (!r)
		r = routes_reader_register();
	return r;
}

static json_t *
route_explain_json(const struct routes_snapshot *s, const struct route_account *acct,
	const struct route_explain_q *q, int64_t at_ms, int64_t now_ms)
{
	struct policy_call call = { .snap = s,
		.acct = acct,
		.to_key = q->to,
		.from_key = q->from,
		.at_s = at_ms / 1000 };
	struct policy_counts counts;
	struct policy_result res;
	char buf[40], num[E164_BUFSIZE];
	json_t *o, *rule;
	struct route_counts_at at = { .now_ms = now_ms };

	route_counts_ops(&counts, &at);
	policy_decide(&call, &counts, &res);
	o = json_object();
	e164_format(q->to, num, sizeof(num));
	json_object_set_new(o, "to", json_string(num));
	if (q->from) {
		e164_format(q->from, num, sizeof(num));
		json_object_set_new(o, "from", json_string(num));
	} else {
		json_object_set_new(o, "from", json_null());
	}
	route_iso(at_ms / 1000, buf, sizeof(buf), true);
	json_object_set_new(o, "at", json_string(buf));
	json_object_set_new(o, "provider", json_string(provider_name(acct->provider)));
	json_object_set_new(o, "account", json_string(acct->slug));
	json_object_set_new(o, "number_id",
		res.number_id ? json_integer((json_int_t)res.number_id) : json_null());
	json_object_set_new(o, "decision", json_string(policy_decision_name(res.decision)));
	json_object_set_new(o, "overflow", json_boolean(res.overflow));
	if (res.agent)
		json_object_set_new(o, "agent",
			json_pack("{s:I,s:s,s:s}", "id", (json_int_t)res.agent->id,
				"provider_agent_id", res.agent->provider_agent_id, "name",
				res.agent->name));
	else
		json_object_set_new(o, "agent", json_null());
	rule = json_pack("{s:s,s:s}", "table", policy_rule_name(res.rule), "scope",
		policy_scope_name(res.scope));
	if (res.rule_id)
		json_object_set_new(rule, "id", json_integer((json_int_t)res.rule_id));
	if (res.rule == PR_BLOCKED_PREFIX)
		json_object_set_new(rule, "prefix", json_string(res.prefix));
	json_object_set_new(o, "rule", rule);
	json_object_set_new(o, "client_id",
		res.client_id ? json_integer((json_int_t)res.client_id) : json_null());
	if (s->policy && res.zone != UINT32_MAX) {
		json_object_set_new(o, "time_zone",
			json_string(policy_zone_name(s->policy, res.zone)));
		route_iso(res.local_s, buf, sizeof(buf), false);
		json_object_set_new(o, "local_time", json_string(buf));
	} else {
		json_object_set_new(o, "time_zone", json_null());
		json_object_set_new(o, "local_time", json_null());
	}
	json_object_set_new(o, "business_hours_id",
		res.hours_id ? json_integer((json_int_t)res.hours_id) : json_null());
	if (res.limit)
		json_object_set_new(o, "concurrency",
			json_pack("{s:i,s:i,s:i,s:i}", "in_progress", res.concurrent, "limit",
				res.limit, "database", route_counts_in_progress_db(res.client_id),
				"taken_here", route_counts_taken(res.client_id, now_ms)));
	else
		json_object_set_new(o, "concurrency", json_null());
	if (res.cap_micros != POLICY_NO_CAP)
		json_object_set_new(o, "spend",
			json_pack("{s:I,s:I}", "cap_micros", (json_int_t)res.cap_micros,
				"month_to_date_micros", (json_int_t)res.mtd_micros));
	else
		json_object_set_new(o, "spend", json_null());
	json_object_set_new(o, "max_duration_seconds",
		res.max_duration_s > 0 ? json_integer(res.max_duration_s) : json_null());
	if (res.decision == PD_SPLIT)
		json_object_set_new(o, "split",
			json_pack("{s:i,s:i}", "weight", (int)res.split_weight, "total",
				(int)res.split_total));
	json_object_set_new(o, "policies_loaded", json_boolean(s->policy != NULL));
	json_object_set_new(o, "figures_age_ms",
		route_counts_refreshed_ms() ? json_integer(now_ms - route_counts_refreshed_ms()) :
					      json_null());
	return o;
}

json_t *
route_explain(const struct route_explain_q *q, uint64_t agency_id, int *status)
{
	struct routes_reader *rd = route_reader();
	const struct routes_snapshot *s;
	const struct route_slot *sl;
	const struct route_account *acct;
	int64_t now = route_now_ms();
	json_t *o;

	if (!q->has_to)
		return route_error(status, 400, "invalid", "to: an E.164 number is required");
	if (!rd)
		return route_error(status, 503, "unavailable",
			"no reader slot for the route table");
	s = routes_read_begin(rd);
	if (!s) {
		routes_read_end(rd);
		return route_error(status, 503, "unavailable", "no route table loaded yet");
	}
	sl = routes_number(s, q->to);
	acct = sl && sl->account_idx < s->catalog->n_accounts ?
		       &s->catalog->accounts[sl->account_idx] :
		       NULL;
	if (!acct || acct->agency_id != agency_id) {
		routes_read_end(rd);
		return route_error(status, 404, "not_found", "no such number");
	}
	o = route_explain_json(s, acct, q, q->at_ms >= 0 ? q->at_ms : now, now);
	routes_read_end(rd);
	*status = 200;
	return o;
}

bool
route_outbound_allowed(uint64_t agent_id, uint64_t agency_id, char *why, size_t len)
{
	struct routes_reader *rd = route_reader();
	const struct routes_snapshot *s;
	const struct policy_client *cl = NULL;
	int64_t now = route_now_ms();
	bool ok = true;

	if (!rd)
		return true;
	s = routes_read_begin(rd);
	if (s && s->policy) {
		uint32_t i = routes_catalog_agent_idx(s->catalog, agent_id);

		/* another agency's agent: the API's own look-up answers (404) */
		if (i < s->catalog->n_agents && s->catalog->agents[i].client_id &&
			s->catalog->agents[i].agency_id == agency_id)
			cl = policy_client(s->policy, s->catalog->agents[i].client_id);
	}
	if (cl && cl->max_concurrent) {
		int32_t allowed = cl->max_concurrent - cl->reserved_inbound;
		int32_t now_n =
			route_counts_in_progress_db(cl->id) + route_counts_taken(cl->id, now);

		if (allowed <= 0 || now_n >= allowed ||
			route_counts_take(cl->id, allowed, now, 0) == ROUTE_TAKE_REFUSED) {
			snprintf(why, len,
				"client %" PRIu64
				" has %d of %d calls in progress and keeps %d for "
				"inbound (max_concurrent_calls, reserved_inbound_calls)",
				cl->id, now_n, cl->max_concurrent, cl->reserved_inbound);
			ok = false;
		}
	}
	routes_read_end(rd);
	return ok;
}
