/* policy.h: the per-call routing decision over a snapshot's policies (pure). */
#ifndef CALLROUTED_POLICY_H
#define CALLROUTED_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "route_policy.h"
#include "routes.h"

/* The decision, in the order the rules apply (README "Routing policy"). */
#define POLICY_DECISIONS(X)                                                                        \
	X(ASSIGNED, "assigned")                                                                    \
	X(SPLIT, "split")                                                                          \
	X(AFTER_HOURS, "after_hours")                                                              \
	X(CLOSED_DAY, "closed_day")                                                                \
	X(OVER_SPEND_CAP, "over_spend_cap")                                                        \
	X(OVER_CONCURRENCY, "over_concurrency")                                                    \
	X(BLOCKED, "blocked")                                                                      \
	X(UNASSIGNED, "unassigned")

enum policy_decision {
#define POLICY_ENUM(e, s) PD_##e,
	POLICY_DECISIONS(POLICY_ENUM)
#undef POLICY_ENUM
		PD_COUNT
};
const char *policy_decision_name(enum policy_decision d);

/* Which rule decided (explain). */
enum policy_rule {
	PR_NONE = 0,
	PR_BLOCKED_PREFIX,
	PR_CLOSED_DAY,
	PR_HOURS,    /* open by this row (assigned/split), or closed: no row covers the time */
	PR_CAP,      /* a monthly spend cap (client or agency) */
	PR_LIMIT,    /* the client's max_concurrent_calls */
	PR_SPLIT,    /* a weighted split */
	PR_AGENT,    /* the number's agent */
	PR_NO_AGENT, /* the number has no agent */
};
const char *policy_rule_name(enum policy_rule r);

/* The figures the decision counts against (route_counts.c; mocks in tests). */
struct policy_counts {
	/* calls in progress for the client: the database's count plus this daemon's taken slots */
	int32_t (*concurrent)(void *ctx, uint64_t client_id);
	/* month-to-date amount of the client (agency=false) or agency in month (policy_month_key)
	 */
	int64_t (*spend)(void *ctx, bool agency, uint64_t id, int32_t month);
	void *ctx;
};

/* A call to decide. */
struct policy_call {
	const struct routes_snapshot *snap;
	const struct route_account *acct;
	uint64_t to_key;   /* e164.h key of the called number */
	uint64_t from_key; /* of the caller; 0: unknown (anonymous, not E.164) */
	int64_t at_s;      /* UTC, seconds */
	bool ignore_limit; /* after a refused slot (route_counts_take): count it over the limit */
};

struct policy_result {
	enum policy_decision decision;
	enum route_result route; /* the number's look-up */
	uint64_t number_id;
	const struct route_agent *agent; /* who takes the call; NULL: no agent */
	bool overflow;                   /* agent is the number's overflow agent */
	enum policy_rule rule;
	enum policy_scope scope; /* whose rule */
	uint64_t rule_id;        /* the row (hours, closed day, block), or client/agency id */
	char prefix[17];         /* the block prefix, "+…" */
	uint64_t hours_id;       /* the business_hours row that keeps the number open (0: none) */
	enum policy_scope hours_scope;
	uint64_t client_id;             /* the number's client (0: none) */
	uint32_t zone;                  /* UINT32_MAX: none (UTC) */
	int64_t local_s;                /* at_s in the zone */
	int32_t concurrent, limit;      /* limit 0: none */
	int64_t cap_micros, mtd_micros; /* the cap that decided or bounds (POLICY_NO_CAP: none) */
	int64_t max_duration_s;         /* -1: no bound; else the call's maximum duration */
	uint32_t split_weight, split_total;
	bool take_slot; /* the caller takes a concurrency slot of client_id (route_counts_take) */
};

/*
 * Decide a call: blocked -> closed (closed day, then hours) -> over spend cap (client, then
 * agency) -> over concurrency -> split or assigned.  Turned away by hours, cap or concurrency:
 * the overflow agent if the number has one.  No lock, no allocation, no system call.
 */
void policy_decide(const struct policy_call *call, const struct policy_counts *counts,
	struct policy_result *out);

#endif
