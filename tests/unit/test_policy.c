/* test_policy.c: the routing decision: every rule, precedence, overflow, splits, DST, caps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "callrouted/e164.h"
#include "policy.h"
#include "callrouted/rating.h"
#include "routes.h"
#include "tzif.h"

/* agency 1 (account 10, retell); client 5 (America/New_York); agents 100 (client 5), 101
 * (overflow, no client), 102/103 (split); numbers: 1000 -> agent 100, 1001 -> agent 100 with
 * overflow 101, 1002 splits 102:1 / 103:3, 1003 unassigned */
#define NUM_PLAIN "+15550001000"
#define NUM_OVER "+15550001001"
#define NUM_SPLIT "+15550001002"
#define NUM_NONE "+15550001003"
#define CALLER "+14155550123"

/* 2026-12-02 (a Wednesday) 15:00 UTC = 10:00 in New York */
#define T_WED_10 INT64_C(1796223600)

struct fixture {
	struct routes_catalog *cat;
	struct routes_snapshot *snap;
	const struct route_account *acct;
	int32_t concurrent;
	int64_t client_mtd, agency_mtd;
	int32_t asked_month;
};

static int32_t
mock_concurrent(void *ctx, uint64_t client_id)
{
	struct fixture *f = ctx;

	(void)client_id;
	return f->concurrent;
}

static int64_t
mock_spend(void *ctx, bool agency, uint64_t id, int32_t month)
{
	struct fixture *f = ctx;

	(void)id;
	f->asked_month = month;
	return agency ? f->agency_mtd : f->client_mtd;
}

static uint64_t
key(const char *s)
{
	uint64_t k = 0;

	assert_true(e164_parse(s, strlen(s), &k));
	return k;
}

static void
add_number(struct fixture *f, const char *e164, uint64_t id, uint64_t agent_id)
{
	struct route_slot sl = { .key = key(e164), .number_id = id };

	sl.account_idx = routes_catalog_account_idx(f->cat, 10);
	sl.agent_idx = agent_id ? routes_catalog_agent_idx(f->cat, agent_id) : ROUTE_NONE;
	assert_true(route_table_put(&f->snap->numbers, &sl));
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct route_account a = { .id = 10,
		.agency_id = 1,
		.provider = PROVIDER_RETELL,
		.slug = "acct",
		.api_key = "k" };
	struct route_agency ag = { .id = 1,
		.rate_micros_per_min = 150000,
		.billing_initial_s = 60,
		.billing_increment_s = 60 };
	static const uint64_t ids[] = { 100, 101, 102, 103 };
	static const char *const pids[] = { "agent_a", "agent_over", "agent_s1", "agent_s2" };

	f->cat = routes_catalog_new();
	assert_true(routes_catalog_add_account(f->cat, &a));
	assert_true(routes_catalog_add_agency(f->cat, &ag));
	for (int i = 0; i < 4; i++) {
		struct route_agent g = { .id = ids[i],
			.agency_id = 1,
			.client_id = i == 1 ? 0 : 5,
			.provider = PROVIDER_RETELL,
			.provider_agent_id = pids[i],
			.name = pids[i] };

		assert_true(routes_catalog_add_agent(f->cat, &g));
	}
	assert_true(routes_catalog_finish(f->cat));
	f->snap = routes_snapshot_new(f->cat, 16);
	routes_catalog_unref(f->cat);
	f->acct = routes_catalog_account(f->cat, "acct", 4);
	add_number(f, NUM_PLAIN, 1000, 100);
	add_number(f, NUM_OVER, 1001, 100);
	add_number(f, NUM_SPLIT, 1002, 0);
	add_number(f, NUM_NONE, 1003, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	routes_snapshot_free(f->snap);
	free(f);
	return 0;
}

/* A policy: agency 1 (UTC unless tz_agency), client 5 in New York with the given figures. */
static struct route_policy *
policy_base(const char *tz_agency, int32_t max_conc, int64_t client_cap, int64_t agency_cap)
{
	struct route_policy *p = policy_new(T_WED_10);

	assert_non_null(p);
	assert_true(policy_add_agency(p, 1, tz_agency, agency_cap));
	assert_true(policy_add_client(p, 5, 1, "America/New_York", max_conc, 0, client_cap));
	assert_true(policy_add_overflow(p, 1001, 101));
	assert_true(policy_add_split(p, 1002, 102, 1));
	assert_true(policy_add_split(p, 1002, 103, 3));
	return p;
}

static void
install(struct fixture *f, struct route_policy *p)
{
	assert_true(policy_finish(p));
	policy_unref(f->snap->policy);
	f->snap->policy = p;
}

static void
decide(struct fixture *f, const char *to, const char *from, int64_t at, struct policy_result *r)
{
	struct policy_counts c = { mock_concurrent, mock_spend, f };
	struct policy_call call = { .snap = f->snap,
		.acct = f->acct,
		.to_key = key(to),
		.from_key = from ? key(from) : 0,
		.at_s = at };

	policy_decide(&call, &c, r);
}

static void
test_no_policy_assigned(void **state)
{
	struct fixture *f = *state;
	struct policy_result r;

	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_ASSIGNED);
	assert_string_equal(r.agent->provider_agent_id, "agent_a");
	assert_false(r.overflow);
	assert_int_equal(r.max_duration_s, -1);
	decide(f, NUM_NONE, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_UNASSIGNED);
	assert_null(r.agent);
	decide(f, "+15559999999", CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_UNASSIGNED);
	assert_int_equal(r.route, ROUTE_UNKNOWN);
}

static void
test_blocked_scopes_and_no_overflow(void **state)
{
	struct fixture *f = *state;
	struct route_policy *p = policy_base(NULL, 0, -1, -1);
	struct policy_result r;

	assert_true(policy_add_blocked(p, PS_AGENCY, 1, 7, "+1415"));
	assert_true(policy_add_blocked(p, PS_NUMBER, 1001, 8, "+44"));
	assert_true(policy_add_blocked(p, PS_CLIENT, 5, 9, "+3312"));
	assert_false(policy_add_blocked(p, PS_CLIENT, 5, 10, "44"));
	/* a closed day too: blocked comes first */
	assert_true(policy_add_closed(p, PS_CLIENT, 5, 11, (int32_t)(T_WED_10 / 86400)));
	install(f, p);
	decide(f, NUM_OVER, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_BLOCKED);
	assert_null(r.agent); /* never the overflow agent */
	assert_false(r.overflow);
	assert_int_equal(r.scope, PS_AGENCY);
	assert_int_equal(r.rule_id, 7);
	assert_string_equal(r.prefix, "+1415");
	decide(f, NUM_OVER, "+447700900123", T_WED_10, &r);
	assert_int_equal(r.decision, PD_BLOCKED);
	assert_int_equal(r.scope, PS_NUMBER);
	decide(f, NUM_PLAIN, "+447700900123", T_WED_10, &r); /* the +44 rule is 1001's only */
	assert_int_equal(r.decision, PD_CLOSED_DAY);
	decide(f, NUM_PLAIN, "+33123456789", T_WED_10, &r);
	assert_int_equal(r.decision, PD_BLOCKED);
	assert_int_equal(r.scope, PS_CLIENT);
	assert_int_equal(r.rule_id, 9);
	decide(f, NUM_PLAIN, NULL, T_WED_10, &r); /* anonymous: no prefix matches */
	assert_int_equal(r.decision, PD_CLOSED_DAY);
}

static void
test_closed_day_precedence_and_overflow(void **state)
{
	struct fixture *f = *state;
	struct route_policy *p = policy_base(NULL, 0, -1, -1);
	struct policy_result r;
	int32_t today = (int32_t)tzif_days(2026, 12, 2), tomorrow = today + 1;

	assert_true(policy_add_closed(p, PS_AGENCY, 1, 20, tomorrow));
	assert_true(policy_add_closed(p, PS_CLIENT, 5, 21, today));
	assert_true(policy_add_closed(p, PS_NUMBER, 1001, 22, tomorrow));
	install(f, p);
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_CLOSED_DAY);
	assert_int_equal(r.scope, PS_CLIENT);
	assert_int_equal(r.rule_id, 21);
	assert_null(r.agent);
	/* 1001 has days of its own: today is not one of them (the client's do not apply) */
	decide(f, NUM_OVER, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_ASSIGNED);
	decide(f, NUM_OVER, CALLER, T_WED_10 + 86400, &r);
	assert_int_equal(r.decision, PD_CLOSED_DAY);
	assert_true(r.overflow);
	assert_string_equal(r.agent->provider_agent_id, "agent_over");
	/* the day is the zone's: 2026-12-03 03:00 UTC is still the 2nd in New York */
	decide(f, NUM_PLAIN, CALLER, T_WED_10 + 12 * 3600, &r);
	assert_int_equal(r.decision, PD_CLOSED_DAY);
	decide(f, NUM_PLAIN, CALLER, T_WED_10 + 10 * 3600, &r); /* 05:00 UTC the 3rd: closed */
	assert_int_equal(r.decision, PD_CLOSED_DAY);
	decide(f, NUM_PLAIN, CALLER, T_WED_10 + 15 * 3600, &r); /* 06:00 the 3rd in NY */
	assert_int_equal(r.decision, PD_ASSIGNED);
}

static void
test_business_hours(void **state)
{
	struct fixture *f = *state;
	struct route_policy *p = policy_base(NULL, 0, -1, -1);
	struct policy_result r;

	/* the client: Wednesday 09:00-12:00 and 13:00-17:00; number 1001: Wednesday 11:00-24:00 */
	assert_true(policy_add_hours(p, PS_CLIENT, 5, 30, 3, 9 * 3600, 12 * 3600));
	assert_true(policy_add_hours(p, PS_CLIENT, 5, 31, 3, 13 * 3600, 17 * 3600));
	assert_true(policy_add_hours(p, PS_NUMBER, 1001, 32, 3, 11 * 3600, 86400));
	assert_false(policy_add_hours(p, PS_CLIENT, 5, 33, 8, 0, 10));
	assert_false(policy_add_hours(p, PS_CLIENT, 5, 33, 1, 10, 10));
	install(f, p);
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_ASSIGNED);
	assert_int_equal(r.hours_id, 30);
	assert_int_equal(r.hours_scope, PS_CLIENT);
	decide(f, NUM_PLAIN, CALLER, T_WED_10 + 2 * 3600 + 1800, &r); /* 12:30: the gap */
	assert_int_equal(r.decision, PD_AFTER_HOURS);
	assert_int_equal(r.rule, PR_HOURS);
	assert_null(r.agent);
	decide(f, NUM_PLAIN, CALLER, T_WED_10 + 3 * 3600, &r); /* 13:00 opens */
	assert_int_equal(r.hours_id, 31);
	decide(f, NUM_PLAIN, CALLER, T_WED_10 + 7 * 3600, &r); /* 17:00 closes */
	assert_int_equal(r.decision, PD_AFTER_HOURS);
	decide(f, NUM_PLAIN, CALLER, T_WED_10 + 86400, &r); /* Thursday: no rows, closed */
	assert_int_equal(r.decision, PD_AFTER_HOURS);
	/* the number's own rows win: 10:00 is closed for it, with its overflow agent */
	decide(f, NUM_OVER, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_AFTER_HOURS);
	assert_true(r.overflow);
	assert_int_equal(r.agent->id, 101);
	decide(f, NUM_OVER, CALLER, T_WED_10 + 8 * 3600, &r); /* 18:00 */
	assert_int_equal(r.decision, PD_ASSIGNED);
	assert_int_equal(r.hours_id, 32);
	decide(f, NUM_OVER, CALLER, T_WED_10 + 14 * 3600 - 1, &r); /* 23:59:59 */
	assert_int_equal(r.decision, PD_ASSIGNED);
}

/* America/New_York, 09:00-17:00 every day: both 2026 transition days. */
static void
test_dst_new_york(void **state)
{
	struct fixture *f = *state;
	struct route_policy *p = policy_base(NULL, 0, -1, -1);
	struct policy_result r;
	int64_t mar8 = tzif_days(2026, 3, 8) * 86400, nov1 = tzif_days(2026, 11, 1) * 86400;
	uint32_t ny;

	for (int wd = 1; wd <= 7; wd++)
		assert_true(policy_add_hours(p, PS_CLIENT, 5, (uint64_t)(40 + wd), wd, 9 * 3600,
			17 * 3600));
	install(f, p);
	ny = policy_client(f->snap->policy, 5)->zone;
	assert_string_equal(policy_zone_name(f->snap->policy, ny), "America/New_York");
	/* 8 March 2026, a Sunday: clocks go 02:00 EST -> 03:00 EDT (07:00 UTC) */
	assert_int_equal(policy_zone_offset(f->snap->policy, ny, mar8 + 7 * 3600 - 1), -5 * 3600);
	assert_int_equal(policy_zone_offset(f->snap->policy, ny, mar8 + 7 * 3600), -4 * 3600);
	decide(f, NUM_PLAIN, CALLER, mar8 + 13 * 3600 + 30 * 60, &r); /* 09:30 EDT */
	assert_int_equal(r.decision, PD_ASSIGNED);
	assert_int_equal(r.hours_id, 47);
	decide(f, NUM_PLAIN, CALLER, mar8 + 12 * 3600 + 30 * 60, &r); /* 08:30 EDT */
	assert_int_equal(r.decision, PD_AFTER_HOURS);
	decide(f, NUM_PLAIN, CALLER, mar8 + 21 * 3600 - 1, &r); /* 16:59:59 EDT */
	assert_int_equal(r.decision, PD_ASSIGNED);
	decide(f, NUM_PLAIN, CALLER, mar8 + 21 * 3600, &r); /* 17:00 EDT */
	assert_int_equal(r.decision, PD_AFTER_HOURS);
	/* 1 November 2026, a Sunday: 02:00 EDT -> 01:00 EST (06:00 UTC) */
	assert_int_equal(policy_zone_offset(f->snap->policy, ny, nov1 + 6 * 3600 - 1), -4 * 3600);
	assert_int_equal(policy_zone_offset(f->snap->policy, ny, nov1 + 6 * 3600), -5 * 3600);
	decide(f, NUM_PLAIN, CALLER, nov1 + 13 * 3600 + 30 * 60, &r); /* 08:30 EST */
	assert_int_equal(r.decision, PD_AFTER_HOURS);
	decide(f, NUM_PLAIN, CALLER, nov1 + 14 * 3600, &r); /* 09:00 EST */
	assert_int_equal(r.decision, PD_ASSIGNED);
	decide(f, NUM_PLAIN, CALLER, nov1 + 22 * 3600 - 1, &r); /* 16:59:59 EST */
	assert_int_equal(r.decision, PD_ASSIGNED);
	decide(f, NUM_PLAIN, CALLER, nov1 + 22 * 3600, &r); /* 17:00 EST */
	assert_int_equal(r.decision, PD_AFTER_HOURS);
	/* the Saturday before, 31 October 16:30 EDT = 20:30 UTC: open */
	decide(f, NUM_PLAIN, CALLER, nov1 - 86400 + 20 * 3600 + 30 * 60, &r);
	assert_int_equal(r.decision, PD_ASSIGNED);
	assert_int_equal(r.hours_id, 46);
}

static void
test_spend_caps(void **state)
{
	struct fixture *f = *state;
	struct policy_result r;

	install(f, policy_base("Europe/Paris", 0, 1000000, 5000000));
	f->client_mtd = 999999;
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_ASSIGNED);
	/* 1 micro left buys less than the first minute: one increment all the same */
	assert_int_equal(r.max_duration_s, 60);
	assert_int_equal(f->asked_month, 2026 * 12 + 11);
	f->client_mtd = 1000000;
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_OVER_SPEND_CAP);
	assert_int_equal(r.scope, PS_CLIENT);
	assert_int_equal(r.cap_micros, 1000000);
	assert_int_equal(r.mtd_micros, 1000000);
	assert_null(r.agent);
	decide(f, NUM_OVER, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_OVER_SPEND_CAP);
	assert_true(r.overflow);
	/* under the client's cap, at the agency's */
	f->client_mtd = 0;
	f->agency_mtd = 5000000;
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_OVER_SPEND_CAP);
	assert_int_equal(r.scope, PS_AGENCY);
	/* the bound: the smaller remaining budget at $0.15/min on 60/60 */
	f->agency_mtd = 5000000 - 450000; /* 3 minutes left at the agency, 1000000 at the client */
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_ASSIGNED);
	assert_int_equal(r.max_duration_s, 180);
	f->agency_mtd = 5000000 - 449999;
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.max_duration_s, 120);
}

static void
test_max_duration_exact(void **state)
{
	(void)state;
	assert_int_equal(policy_max_duration_s(750000, 150000, 60, 60), 300);
	assert_int_equal(policy_max_duration_s(749999, 150000, 60, 60), 240);
	assert_int_equal(policy_max_duration_s(0, 150000, 60, 60), 60);
	assert_int_equal(policy_max_duration_s(5, 150000, 1, 1), 1); /* 2500 micros a second */
	assert_int_equal(policy_max_duration_s(25000, 150000, 1, 1), 10);
	assert_int_equal(policy_max_duration_s(24999, 150000, 1, 1), 9);
	assert_int_equal(policy_max_duration_s(165000, 150000, 60, 6), 66);
	assert_int_equal(policy_max_duration_s(164999, 150000, 60, 6), 60);
	assert_int_equal(policy_max_duration_s(100, 0, 60, 60), -1);
	/* whatever the plan, what the bound allows costs no more than what is left */
	for (int64_t left = 0; left < 2000000; left += 7919) {
		int64_t b = policy_max_duration_s(left, 150000, 60, 6), amt;

		assert_true(rating_amount_micros(b, 150000, &amt));
		assert_true(amt <= left || b == 6);
	}
}

static void
test_concurrency(void **state)
{
	struct fixture *f = *state;
	struct policy_result r;

	install(f, policy_base(NULL, 2, 1000, -1));
	f->concurrent = 1;
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_ASSIGNED);
	assert_true(r.take_slot);
	assert_int_equal(r.client_id, 5);
	f->concurrent = 2;
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_OVER_CONCURRENCY);
	assert_int_equal(r.concurrent, 2);
	assert_int_equal(r.limit, 2);
	assert_false(r.take_slot);
	decide(f, NUM_OVER, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_OVER_CONCURRENCY);
	assert_true(r.overflow);
	/* the cap comes before the limit */
	f->client_mtd = 1000;
	decide(f, NUM_PLAIN, CALLER, T_WED_10, &r);
	assert_int_equal(r.decision, PD_OVER_SPEND_CAP);
}

static void
test_split(void **state)
{
	struct fixture *f = *state;
	struct policy_result r;
	unsigned n102 = 0, n103 = 0;
	char from[20];

	install(f, policy_base(NULL, 0, -1, -1));
	for (int i = 0; i < 4000; i++) {
		snprintf(from, sizeof(from), "+1415%07d", i);
		decide(f, NUM_SPLIT, from, T_WED_10, &r);
		assert_int_equal(r.decision, PD_SPLIT);
		assert_int_equal(r.split_total, 4);
		if (r.agent->id == 102)
			n102++;
		else
			n103++;
		/* the same caller, the same agent */
		{
			uint64_t first = r.agent->id;

			decide(f, NUM_SPLIT, from, T_WED_10 + 3600, &r);
			assert_int_equal(r.agent->id, first);
		}
	}
	/* weights 1:3 */
	assert_true(n102 > 850 && n102 < 1150);
	assert_true(n103 > 2850 && n103 < 3150);
}

/* The cost of a decision on a number with policies (printed, not asserted: shared CPUs). */
static void
test_decision_cost(void **state)
{
	struct fixture *f = *state;
	struct route_policy *p = policy_base("America/New_York", 0, -1, -1);
	struct policy_counts c = { mock_concurrent, mock_spend, f };
	struct policy_call call = { .snap = f->snap, .acct = f->acct, .at_s = T_WED_10 };
	struct policy_result r;
	struct timespec t0, t1;
	const int n = 2000000;
	double ns;

	assert_true(policy_add_hours(p, PS_NUMBER, 1001, 50, 3, 0, 86400));
	assert_true(policy_add_blocked(p, PS_NUMBER, 1001, 51, "+1999"));
	assert_true(policy_add_closed(p, PS_NUMBER, 1001, 52, 1000));
	/* 200,000 other numbers with policies of their own, as in tools/bench */
	for (uint64_t id = 10000; id < 210000; id++) {
		assert_true(policy_add_hours(p, PS_NUMBER, id, id, 3, 0, 86400));
		assert_true(policy_add_blocked(p, PS_NUMBER, id, id, "+1999"));
	}
	install(f, p);
	call.to_key = key(NUM_OVER);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		call.from_key = key(CALLER) + (uint64_t)(i & 1023);
		policy_decide(&call, &c, &r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(r.decision, PD_ASSIGNED);
	ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
	print_message("policy_decide on a number with policies: %.0f ns; policies of 200,002 "
		      "numbers: %zu bytes\n",
		ns, policy_bytes(f->snap->policy));
}

static void
test_tzif(void **state)
{
	struct tz_transition tr[64];
	size_t n;
	int32_t off;

	(void)state;
	assert_true(tzif_load("America/New_York", tzif_days(2026, 1, 1) * 86400,
		tzif_days(2027, 1, 1) * 86400, &off, tr, 64, &n));
	assert_int_equal(off, -5 * 3600);
	assert_int_equal(n, 2);
	assert_int_equal(tr[0].at, tzif_days(2026, 3, 8) * 86400 + 7 * 3600);
	assert_int_equal(tr[1].at, tzif_days(2026, 11, 1) * 86400 + 6 * 3600);
	assert_true(tzif_load("UTC", 0, 1, &off, tr, 64, &n));
	assert_int_equal(n, 0);
	assert_false(tzif_load("../etc/passwd", 0, 1, &off, tr, 64, &n));
	assert_false(tzif_load("Mars/Olympus", 0, 1, &off, tr, 64, &n));
	assert_false(tzif_parse((const unsigned char *)"TZif2", 5, 0, 1, &off, tr, 64, &n));
	{
		int32_t y, m, d;

		tzif_civil(tzif_days(2024, 2, 29), &y, &m, &d);
		assert_int_equal(y * 10000 + m * 100 + d, 20240229);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_policy_assigned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocked_scopes_and_no_overflow, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_closed_day_precedence_and_overflow, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_business_hours, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dst_new_york, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spend_caps, setup, teardown),
		cmocka_unit_test(test_max_duration_exact),
		cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decision_cost, setup, teardown),
		cmocka_unit_test(test_tzif),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
