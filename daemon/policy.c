/* policy.c: the per-call routing decision: blocked, closed, caps, concurrency, splits. */
#include <stdlib.h>
#include <string.h>

#include "callrouted/e164.h"
#include "mix64.h"
#include "policy.h"

#define POLICY_NONE UINT32_MAX

static const char *const policy_decision_names[PD_COUNT] = {
#define POLICY_NAME(e, s) s,
	POLICY_DECISIONS(POLICY_NAME)
#undef POLICY_NAME
};

const char *
policy_decision_name(enum policy_decision d)
{
	return (unsigned)d < PD_COUNT ? policy_decision_names[d] : "?";
}

const char *
policy_rule_name(enum policy_rule r)
{
	static const char *const names[] = { "none", "blocked_callers", "closed_days",
		"business_hours", "monthly_spend_cap_micros", "max_concurrent_calls",
		"number_agent_splits", "agent", "no_agent" };

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

static int64_t
policy_floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* ------------------------------------------------------------------------------------------ */
/* The decision                                                                                */

static const struct policy_block *
policy_match_block(const struct route_policy *p, const struct policy_range *rg, const char *digits,
	size_t n)
{
	for (uint32_t i = 0; i < rg->n; i++) {
		const struct policy_block *b = &p->blocked[rg->first + i];

		if (b->len <= n && memcmp(b->digits, digits, b->len) == 0)
			return b;
	}
	return NULL;
}

static const struct policy_closed *
policy_match_closed(const struct route_policy *p, const struct policy_range *rg, int32_t day)
{
	uint32_t lo = 0, hi = rg->n;

	while (lo < hi) { /* sorted by day */
		uint32_t mid = lo + (hi - lo) / 2;
		const struct policy_closed *c = &p->closed[rg->first + mid];

		if (c->day == day)
			return c;
		if (c->day < day)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Turned away by hours, cap or concurrency: the overflow agent, else no agent. */
static void
policy_turn_away(const struct policy_call *call, const struct policy_number *num,
	enum policy_decision d, struct policy_result *out)
{
	const struct routes_catalog *c = call->snap->catalog;

	out->decision = d;
	out->agent = NULL;
	out->take_slot = false;
	if (num && num->overflow_agent_id) {
		uint32_t i = routes_catalog_agent_idx(c, num->overflow_agent_id);

		if (i < c->n_agents && c->agents[i].agency_id == call->acct->agency_id &&
			c->agents[i].provider == call->acct->provider) {
			out->agent = &c->agents[i];
			out->overflow = true;
		}
	}
}

static const struct route_agent *
policy_agent(const struct policy_call *call, uint64_t agent_id)
{
	const struct routes_catalog *c = call->snap->catalog;
	uint32_t i = routes_catalog_agent_idx(c, agent_id);

	if (i >= c->n_agents || c->agents[i].agency_id != call->acct->agency_id ||
		c->agents[i].provider != call->acct->provider)
		return NULL;
	return &c->agents[i];
}

/* The call goes to the number's own agent a. */
static void
policy_number_agent(struct policy_result *out, const struct route_agent *a)
{
	out->decision = PD_ASSIGNED;
	out->rule = PR_AGENT;
	out->scope = PS_NUMBER;
	out->rule_id = a->id;
	out->agent = a;
}

void
policy_decide(const struct policy_call *call, const struct policy_counts *counts,
	struct policy_result *out)
{
	const struct routes_snapshot *s = call->snap;
	const struct route_policy *p = s->policy;
	const struct policy_number *num = NULL;
	const struct policy_client *cl = NULL;
	const struct policy_agency *ag = NULL;
	const struct route_agency *plan;
	const struct route_agent *agent;
	struct route_answer ans;
	char from[E164_BUFSIZE];
	size_t from_n = 0;
	int64_t remaining = INT64_MAX, local, day;
	int32_t sod, wd;
	uint32_t zone = POLICY_NONE;

	memset(out, 0, sizeof(*out));
	out->cap_micros = out->mtd_micros = POLICY_NO_CAP;
	out->max_duration_s = -1;
	out->zone = POLICY_NONE;
	out->route = routes_lookup(s, call->acct, call->to_key, &ans);
	out->number_id = ans.number_id;
	out->decision = PD_UNASSIGNED;
	out->rule = PR_NO_AGENT;
	if (out->route == ROUTE_UNKNOWN || out->route == ROUTE_RELEASED_NUM)
		return;
	agent = ans.agent;
	if (p) {
		num = policy_number(p, ans.number_id);
		ag = policy_agency(p, call->acct->agency_id);
	}
	/* the number's client: its agent's, else its first split agent's */
	if (!agent && num && num->splits.n)
		agent = policy_agent(call, p->splits[num->splits.first].agent_id);
	if (agent && agent->client_id) {
		out->client_id = agent->client_id;
		if (p)
			cl = policy_client(p, agent->client_id);
	}
	if (!p) {
		if (ans.agent)
			policy_number_agent(out, ans.agent);
		return;
	}
	/* 1. blocked: the agency's, the client's and the number's prefixes all apply */
	if (call->from_key)
		from_n = e164_format(call->from_key, from, sizeof(from));
	if (from_n > 1) {
		const struct policy_block *b = NULL;
		enum policy_scope sc = PS_NONE;

		if (num && (b = policy_match_block(p, &num->rules.blocked, from + 1, from_n - 1)))
			sc = PS_NUMBER;
		else if (cl &&
			 (b = policy_match_block(p, &cl->rules.blocked, from + 1, from_n - 1)))
			sc = PS_CLIENT;
		else if (ag &&
			 (b = policy_match_block(p, &ag->rules.blocked, from + 1, from_n - 1)))
			sc = PS_AGENCY;
		if (b) {
			out->decision = PD_BLOCKED;
			out->rule = PR_BLOCKED_PREFIX;
			out->scope = sc;
			out->rule_id = b->id;
			out->prefix[0] = '+';
			memcpy(out->prefix + 1, b->digits, b->len);
			out->prefix[b->len + 1] = 0;
			return;
		}
	}
	if (!agent) {
		/* no agent and no split: nothing to route to (the rules below do not matter) */
		return;
	}
	/* 2. closed: the number's zone is its client's, else its agency's */
	zone = cl ? cl->zone : ag ? ag->zone : POLICY_NONE;
	out->zone = zone;
	local = call->at_s + (zone != POLICY_NONE ? policy_zone_offset(p, zone, call->at_s) : 0);
	out->local_s = local;
	day = policy_floor_div(local, 86400);
	sod = (int32_t)(local - day * 86400);
	wd = (int32_t)((day % 7 + 7 + 3) % 7) + 1; /* 1970-01-01 was a Thursday (ISO 4) */
	{
		const struct policy_range *rg = NULL;
		enum policy_scope sc = PS_NONE;
		const struct policy_closed *c;

		if (num && num->rules.closed.n) {
			rg = &num->rules.closed;
			sc = PS_NUMBER;
		} else if (cl && cl->rules.closed.n) {
			rg = &cl->rules.closed;
			sc = PS_CLIENT;
		} else if (ag && ag->rules.closed.n) {
			rg = &ag->rules.closed;
			sc = PS_AGENCY;
		}
		if (rg && (c = policy_match_closed(p, rg, (int32_t)day))) {
			out->rule = PR_CLOSED_DAY;
			out->scope = sc;
			out->rule_id = c->id;
			policy_turn_away(call, num, PD_CLOSED_DAY, out);
			return;
		}
		rg = NULL;
		if (num && num->rules.hours.n) {
			rg = &num->rules.hours;
			sc = PS_NUMBER;
		} else if (cl && cl->rules.hours.n) {
			rg = &cl->rules.hours;
			sc = PS_CLIENT;
		}
		if (rg) {
			const struct policy_hours *open = NULL;

			for (uint32_t i = 0; i < rg->n; i++) {
				const struct policy_hours *h = &p->hours[rg->first + i];

				if (h->weekday == wd && (uint32_t)sod >= h->opens &&
					(uint32_t)sod < h->closes) {
					open = h;
					break;
				}
			}
			out->hours_scope = sc;
			if (!open) {
				out->rule = PR_HOURS;
				out->scope = sc;
				out->rule_id = 0;
				policy_turn_away(call, num, PD_AFTER_HOURS, out);
				return;
			}
			out->hours_id = open->id; /* explain: the row that keeps it open */
		}
	}
	/* 3. spend caps: the client's, then the agency's, each in its own zone's month */
	plan = routes_catalog_agency(s->catalog, call->acct->agency_id);
	if (cl && cl->cap_micros != POLICY_NO_CAP) {
		int64_t mtd = counts->spend(counts->ctx, false, cl->id,
			policy_month_key(p, cl->zone, call->at_s));

		out->cap_micros = cl->cap_micros;
		out->mtd_micros = mtd;
		if (mtd >= cl->cap_micros) {
			out->rule = PR_CAP;
			out->scope = PS_CLIENT;
			out->rule_id = cl->id;
			policy_turn_away(call, num, PD_OVER_SPEND_CAP, out);
			return;
		}
		remaining = cl->cap_micros - mtd;
	}
	if (ag && ag->cap_micros != POLICY_NO_CAP) {
		int64_t mtd = counts->spend(counts->ctx, true, ag->id,
			policy_month_key(p, ag->zone, call->at_s));

		if (mtd >= ag->cap_micros) {
			out->cap_micros = ag->cap_micros;
			out->mtd_micros = mtd;
			out->rule = PR_CAP;
			out->scope = PS_AGENCY;
			out->rule_id = ag->id;
			policy_turn_away(call, num, PD_OVER_SPEND_CAP, out);
			return;
		}
		if (ag->cap_micros - mtd < remaining) {
			remaining = ag->cap_micros - mtd;
			out->cap_micros = ag->cap_micros;
			out->mtd_micros = mtd;
		}
	}
	if (remaining != INT64_MAX && plan)
		out->max_duration_s = policy_max_duration_s(remaining, plan->rate_micros_per_min,
			plan->billing_initial_s, plan->billing_increment_s);
	/* 4. concurrency: the client's calls in progress, every daemon's plus our taken slots */
	if (cl && cl->max_concurrent) {
		out->limit = cl->max_concurrent;
		out->concurrent = counts->concurrent(counts->ctx, cl->id);
		if (call->ignore_limit || out->concurrent >= cl->max_concurrent) {
			out->rule = PR_LIMIT;
			out->scope = PS_CLIENT;
			out->rule_id = cl->id;
			policy_turn_away(call, num, PD_OVER_CONCURRENCY, out);
			return;
		}
		out->take_slot = true;
	}
	/* 5. a weighted split (the same caller, the same agent), else the number's agent */
	if (num && num->splits.n && num->total_weight) {
		uint64_t h = mix64(mix64(call->from_key) ^ call->to_key);
		uint32_t bucket = (uint32_t)(h % num->total_weight), acc = 0;

		for (uint32_t i = 0; i < num->splits.n; i++) {
			const struct policy_split *sp = &p->splits[num->splits.first + i];

			acc += sp->weight;
			if (bucket < acc) {
				const struct route_agent *a = policy_agent(call, sp->agent_id);

				if (!a)
					break;
				out->decision = PD_SPLIT;
				out->rule = PR_SPLIT;
				out->scope = PS_NUMBER;
				out->rule_id = sp->agent_id;
				out->agent = a;
				out->split_weight = sp->weight;
				out->split_total = num->total_weight;
				return;
			}
		}
	}
	if (ans.agent) {
		policy_number_agent(out, ans.agent);
		return;
	}
	out->decision = PD_UNASSIGNED;
	out->rule = PR_NO_AGENT;
	out->take_slot = false;
}
