/* test_policy_snapshot.c: routing policies and figures in the snapshot file: round trip, damage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "callrouted/e164.h"
#include "policy.h"
#include "route_counts.h"
#include "routes.h"
#include "snapshot.h"

/* 2026-12-02 (a Wednesday) 15:00 UTC */
#define T0 INT64_C(1796223600)

static const char *const numbers[] = { "+15550001000", "+15550001001", "+15550001002",
	"+15550001003", "+15550001004" };
static const char *const callers[] = { "+14155550123", "+19005550100", "+447700900123",
	"+15550009999", NULL };

struct fix {
	struct routes_snapshot *snap;
	int32_t concurrent;
	int64_t mtd;
};

static int32_t
mock_concurrent(void *ctx, uint64_t client_id)
{
	(void)client_id;
	return ((struct fix *)ctx)->concurrent;
}

static int64_t
mock_spend(void *ctx, bool agency, uint64_t id, int32_t month)
{
	(void)id;
	(void)month;
	return agency ? ((struct fix *)ctx)->mtd / 2 : ((struct fix *)ctx)->mtd;
}

static uint64_t
key(const char *s)
{
	uint64_t k = 0;

	assert_true(e164_parse(s, strlen(s), &k));
	return k;
}

/* agency 1 (Europe/Paris, cap), client 5 (New York, limit 2, cap), agents 100..103 */
static struct routes_snapshot *
make(bool with_policy)
{
	struct routes_catalog *c = routes_catalog_new();
	struct route_account a = { .id = 10,
		.agency_id = 1,
		.provider = PROVIDER_RETELL,
		.slug = "acct",
		.api_key = "k" };
	struct route_agency ag = { .id = 1,
		.rate_micros_per_min = 150000,
		.billing_initial_s = 60,
		.billing_increment_s = 6 };
	static const uint64_t ids[] = { 100, 101, 102, 103 };
	static const char *const pids[] = { "agent_a", "agent_over", "agent_s1", "agent_s2" };
	struct routes_snapshot *s;
	struct route_policy *p;

	assert_true(routes_catalog_add_account(c, &a));
	assert_true(routes_catalog_add_agency(c, &ag));
	for (int i = 0; i < 4; i++) {
		struct route_agent g = { .id = ids[i],
			.agency_id = 1,
			.client_id = i == 1 ? 0 : 5,
			.provider = PROVIDER_RETELL,
			.provider_agent_id = pids[i],
			.name = pids[i] };

		assert_true(routes_catalog_add_agent(c, &g));
	}
	assert_true(routes_catalog_finish(c));
	s = routes_snapshot_new(c, 16);
	routes_catalog_unref(c);
	for (int i = 0; i < 5; i++) {
		struct route_slot sl = { .key = key(numbers[i]), .number_id = 1000 + (uint64_t)i };

		sl.account_idx = routes_catalog_account_idx(s->catalog, 10);
		sl.agent_idx =
			i == 2 || i == 3 ? ROUTE_NONE : routes_catalog_agent_idx(s->catalog, 100);
		assert_true(route_table_put(&s->numbers, &sl));
	}
	s->generation = 3;
	if (!with_policy)
		return s;
	p = policy_new(T0);
	assert_true(policy_add_agency(p, 1, "Europe/Paris", 5000000));
	assert_true(policy_add_client(p, 5, 1, "America/New_York", 2, 1, 1000000));
	assert_true(policy_add_refusal_agent(p, 10, "agent_refuse"));
	assert_true(policy_add_blocked(p, PS_AGENCY, 1, 71, "+1900"));
	assert_true(policy_add_blocked(p, PS_CLIENT, 5, 72, "+1415555"));
	assert_true(policy_add_blocked(p, PS_NUMBER, 1000, 73, "+44"));
	for (int wd = 1; wd <= 5; wd++)
		assert_true(policy_add_hours(p, PS_CLIENT, 5, 200 + (uint64_t)wd, wd, 9 * 3600,
			17 * 3600));
	assert_true(policy_add_hours(p, PS_NUMBER, 1001, 210, 3, 8 * 3600, 9 * 3600));
	assert_true(policy_add_hours(p, PS_NUMBER, 1001, 211, 3, 12 * 3600, 86400));
	assert_true(policy_add_closed(p, PS_CLIENT, 5, 300, 20791));    /* 2026-12-04 */
	assert_true(policy_add_closed(p, PS_NUMBER, 1004, 301, 20790)); /* 2026-12-03 */
	assert_true(policy_add_closed(p, PS_AGENCY, 1, 302, 20785));    /* 2026-11-29 */
	assert_true(policy_add_overflow(p, 1001, 101));
	assert_true(policy_add_overflow(p, 1000, 101));
	assert_true(policy_add_split(p, 1002, 102, 1));
	assert_true(policy_add_split(p, 1002, 103, 3));
	assert_true(policy_finish(p));
	s->policy = p;
	return s;
}

static void
decide(struct fix *f, const struct routes_snapshot *s, const char *to, const char *from, int64_t at,
	struct policy_result *r)
{
	struct policy_counts c = { mock_concurrent, mock_spend, f };
	struct policy_call call = { .snap = s,
		.acct = routes_catalog_account(s->catalog, "acct", 4),
		.to_key = key(to),
		.from_key = from ? key(from) : 0,
		.at_s = at };

	memset(r, 0, sizeof(*r));
	policy_decide(&call, &c, r);
}

/* every decision of a over numbers, callers, times over a week and figures is b's */
static unsigned
same_decisions(const struct routes_snapshot *a, const struct routes_snapshot *b)
{
	struct fix f = { 0 };
	unsigned kinds = 0, n = 0;

	for (int64_t t = T0 - 8 * 86400; t < T0 + 8 * 86400; t += 37 * 60)
		for (int i = 0; i < 5; i++)
			for (int k = 0; k < 5; k++)
				for (int m = 0; m < 3; m++) {
					struct policy_result x, y;

					f.concurrent = m == 1 ? 2 : 0;
					f.mtd = m == 2 ? 1000000 : 0;
					decide(&f, a, numbers[i], callers[k], t, &x);
					decide(&f, b, numbers[i], callers[k], t, &y);
					assert_int_equal(x.decision, y.decision);
					assert_int_equal(x.rule, y.rule);
					assert_int_equal(x.scope, y.scope);
					assert_int_equal(x.rule_id, y.rule_id);
					assert_int_equal(x.hours_id, y.hours_id);
					assert_int_equal(x.overflow, y.overflow);
					assert_int_equal(x.max_duration_s, y.max_duration_s);
					assert_int_equal(x.limit, y.limit);
					assert_int_equal(x.cap_micros, y.cap_micros);
					assert_int_equal(x.local_s, y.local_s);
					assert_string_equal(x.prefix, y.prefix);
					assert_int_equal(x.agent ? x.agent->id : 0,
						y.agent ? y.agent->id : 0);
					kinds |= 1u << x.decision;
					n++;
				}
	assert_true(n > 10000);
	return kinds;
}

static void
test_round_trip(void **state)
{
	struct routes_snapshot *s = make(true), *d;
	unsigned char *buf;
	const char *why, *pwhy;
	unsigned kinds;
	size_t len;

	(void)state;
	assert_true(snapshot_encode(s, &buf, &len));
	assert_memory_equal(buf, "CRSNAP03", 8);
	d = snapshot_decode_policy(buf, len, &why, &pwhy);
	assert_non_null(d);
	assert_null(pwhy);
	assert_non_null(d->policy);
	assert_int_equal(d->policy->n_numbers, s->policy->n_numbers);
	assert_int_equal(d->policy->n_hours, s->policy->n_hours);
	assert_int_equal(d->policy->n_blocked, s->policy->n_blocked);
	assert_int_equal(d->policy->n_closed, s->policy->n_closed);
	assert_int_equal(d->policy->n_splits, s->policy->n_splits);
	assert_string_equal(policy_refusal_agent(d->policy, 10), "agent_refuse");
	kinds = same_decisions(s, d);
	/* the grid saw every rule */
	assert_true(kinds & (1u << PD_ASSIGNED));
	assert_true(kinds & (1u << PD_SPLIT));
	assert_true(kinds & (1u << PD_AFTER_HOURS));
	assert_true(kinds & (1u << PD_CLOSED_DAY));
	assert_true(kinds & (1u << PD_OVER_SPEND_CAP));
	assert_true(kinds & (1u << PD_OVER_CONCURRENCY));
	assert_true(kinds & (1u << PD_BLOCKED));
	assert_true(kinds & (1u << PD_UNASSIGNED));
	/* encoded again: the same policy section (the numbers' order is the hash table's) */
	{
		struct routes_snapshot *plain = make(false);
		unsigned char *buf2, *buf0;
		size_t len2, len0;

		assert_true(snapshot_encode(d, &buf2, &len2));
		assert_true(snapshot_encode(plain, &buf0, &len0));
		assert_int_equal(len2, len);
		assert_memory_equal(buf2 + len0 - 33, buf + len0 - 33, len - len0);
		free(buf0);
		free(buf2);
		routes_snapshot_free(plain);
	}
	free(buf);
	routes_snapshot_free(d);
	routes_snapshot_free(s);
}

/* the figures last read from PostgreSQL go into the file and back into route_counts */
static void
test_figures(void **state)
{
	struct routes_snapshot *s = make(true), *d;
	struct policy_figure g = { .id = 5 };
	unsigned char *buf;
	const char *why, *pwhy;
	size_t len;

	(void)state;
	assert_true(route_counts_init());
	assert_true(route_counts_agency(1));
	assert_true(route_counts_client(5, 2));
	route_counts_refresh_begin();
	route_counts_set_in_progress(5, 1);
	route_counts_set_spend(false, 5, 2026 * 12 + 11, 987654);
	route_counts_set_spend(true, 1, 2026 * 12 + 11, 1234567);
	route_counts_refresh_end(1);
	assert_true(snapshot_encode(s, &buf, &len));
	route_counts_free();
	d = snapshot_decode_policy(buf, len, &why, &pwhy);
	assert_non_null(d);
	assert_null(pwhy);
	assert_int_equal(d->policy->n_restored, 2);
	/* restored into a fresh table (policy_db_setup does this at start) */
	assert_true(route_counts_init());
	assert_true(route_counts_agency(1));
	assert_true(route_counts_client(5, 2));
	for (uint32_t i = 0; i < d->policy->n_restored; i++)
		route_counts_restore(&d->policy->restored[i]);
	assert_int_equal(route_counts_in_progress_db(5), 1);
	assert_true(route_counts_get(&g));
	assert_true(g.month[0] == 2026 * 12 + 11 || g.month[1] == 2026 * 12 + 11);
	assert_int_equal(g.month[0] == 2026 * 12 + 11 ? g.amount[0] : g.amount[1], 987654);
	g = (struct policy_figure){ .id = 1, .agency = true };
	assert_true(route_counts_get(&g));
	assert_int_equal(g.month[0] == 2026 * 12 + 11 ? g.amount[0] : g.amount[1], 1234567);
	/* one slot left of the limit 2 */
	assert_int_equal(route_counts_take(5, 2, 10, 0), ROUTE_TAKE_TAKEN);
	assert_int_equal(route_counts_take(5, 2, 10, 0), ROUTE_TAKE_REFUSED);
	route_counts_free();
	free(buf);
	routes_snapshot_free(d);
	routes_snapshot_free(s);
}

static void
reseal(unsigned char *buf, size_t len)
{
	SHA256(buf, len - SHA256_DIGEST_LENGTH, buf + len - SHA256_DIGEST_LENGTH);
}

/* A policy section that is damaged (but checksummed: written so) or cut short is refused; the
 * numbers stand. Without a new checksum the whole file is refused (test_snapshot.c). */
static void
test_damaged_policy_section(void **state)
{
	struct routes_snapshot *s = make(true), *plain = make(false), *d;
	unsigned char *buf, *buf0, *copy;
	const char *why, *pwhy;
	size_t len, len0, start, refused = 0;

	(void)state;
	assert_true(snapshot_encode(s, &buf, &len));
	assert_true(snapshot_encode(plain, &buf0, &len0));
	start = len0 - SHA256_DIGEST_LENGTH; /* after the has_policy byte */
	assert_true(len > len0);
	copy = malloc(len);
	for (size_t i = start; i < len - SHA256_DIGEST_LENGTH; i++)
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(copy, buf, len);
			copy[i] ^= (unsigned char)(1u << bit);
			reseal(copy, len);
			d = snapshot_decode_policy(copy, len, &why, &pwhy);
			assert_non_null(d);
			assert_int_equal(d->numbers.count, 5);
			if (pwhy) {
				assert_null(d->policy);
				refused++;
			} else {
				assert_non_null(d->policy);
			}
			routes_snapshot_free(d);
		}
	assert_true(refused > (len - SHA256_DIGEST_LENGTH - start) / 2);
	/* every cut inside the section */
	for (size_t cut = start; cut < len - SHA256_DIGEST_LENGTH; cut++) {
		size_t n = cut + SHA256_DIGEST_LENGTH;

		memcpy(copy, buf, cut);
		reseal(copy, n);
		d = snapshot_decode_policy(copy, n, &why, &pwhy);
		assert_non_null(d);
		assert_non_null(pwhy);
		assert_null(d->policy);
		assert_int_equal(d->numbers.count, 5);
		routes_snapshot_free(d);
	}
	/* a bad has_policy byte, or a cut before it: the file is refused */
	memcpy(copy, buf, len);
	copy[start - 1] = 2;
	reseal(copy, len);
	assert_null(snapshot_decode_policy(copy, len, &why, &pwhy));
	memcpy(copy, buf0, len0 - SHA256_DIGEST_LENGTH - 1);
	reseal(copy, len0 - 1);
	assert_null(snapshot_decode_policy(copy, len0 - 1, &why, &pwhy));
	free(copy);
	free(buf);
	free(buf0);
	routes_snapshot_free(s);
	routes_snapshot_free(plain);
}

/* "CRSNAP02" (before the policy section) still loads, without policies, and says so */
static void
test_version_2(void **state)
{
	struct routes_snapshot *s = make(false), *d;
	unsigned char *buf;
	const char *why, *pwhy;
	size_t len;

	(void)state;
	assert_true(snapshot_encode(s, &buf, &len));
	/* drop the has_policy byte: what version 2 wrote */
	memmove(buf + len - SHA256_DIGEST_LENGTH - 1, buf + len - SHA256_DIGEST_LENGTH,
		SHA256_DIGEST_LENGTH);
	len--;
	memcpy(buf, "CRSNAP02", 8);
	reseal(buf, len);
	d = snapshot_decode_policy(buf, len, &why, &pwhy);
	assert_non_null(d);
	assert_non_null(pwhy);
	assert_null(d->policy);
	assert_int_equal(d->numbers.count, 5);
	routes_snapshot_free(d);
	memcpy(buf, "CRSNAP01", 8);
	reseal(buf, len);
	assert_null(snapshot_decode_policy(buf, len, &why, &pwhy));
	free(buf);
	routes_snapshot_free(s);
}

/* the daily rebuild without the database: the same decisions, the window centred anew */
static void
test_rebuild(void **state)
{
	struct routes_snapshot *s = make(true), *s2 = make(false);
	int64_t later = T0 + 400 * 86400;

	(void)state;
	s2->policy = snapshot_policy_rebuild(s->policy, later);
	assert_non_null(s2->policy);
	assert_true((s2->policy->window_from + s2->policy->window_to) / 2 == later);
	assert_int_equal(s2->policy->n_restored, 0);
	same_decisions(s, s2);
	routes_snapshot_free(s);
	routes_snapshot_free(s2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_figures),
		cmocka_unit_test(test_damaged_policy_section),
		cmocka_unit_test(test_version_2),
		cmocka_unit_test(test_rebuild),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
