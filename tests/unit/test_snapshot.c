/* test_snapshot.c: snapshot file encoding: round trip, corruption and truncation rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "routes.h"
#include "snapshot.h"

static struct routes_snapshot *
make_snapshot(size_t n)
{
	struct routes_catalog *c = routes_catalog_new();
	struct route_account a1 = { .id = 7,
		.agency_id = 1,
		.provider = PROVIDER_RETELL,
		.slug = "acme-retell",
		.api_key = "key",
		.webhook_secret = NULL };
	struct route_account a2 = { .id = 3,
		.agency_id = 1,
		.provider = PROVIDER_VAPI,
		.auth = WEBHOOK_AUTH_BEARER,
		.slug = "acme-vapi",
		.api_key = "k2",
		.webhook_secret = "s\"ecret" };
	struct route_agent g1 = { .id = 42,
		.agency_id = 1,
		.client_id = 5,
		.provider = PROVIDER_RETELL,
		.provider_agent_id = "agent_x",
		.name = "Rita",
		.client_name = "Acme Dental" };
	struct route_agent g2 = { .id = 9,
		.agency_id = 1,
		.provider = PROVIDER_VAPI,
		.provider_agent_id = "asst_y",
		.name = "Val" };
	struct routes_snapshot *s;

	assert_non_null(c);
	assert_true(routes_catalog_add_account(c, &a1));
	assert_true(routes_catalog_add_account(c, &a2));
	assert_true(routes_catalog_add_agent(c, &g1));
	assert_true(routes_catalog_add_agent(c, &g2));
	assert_true(routes_catalog_finish(c));
	s = routes_snapshot_new(c, n);
	assert_non_null(s);
	routes_catalog_unref(c);
	for (size_t i = 0; i < n; i++) {
		struct route_slot sl = { .key = 14155550000ULL + i,
			.number_id = i + 1,
			.account_idx = routes_catalog_account_idx(s->catalog, i % 2 ? 7 : 3) };

		sl.agent_idx = i % 3 == 0 ? ROUTE_NONE :
			       i % 3 == 1 ? routes_catalog_agent_idx(s->catalog, i % 2 ? 42 : 9) :
					    ROUTE_RELEASED;
		assert_true(route_table_put(&s->numbers, &sl));
	}
	s->generation = 17;
	s->loaded_at_ms = 1700000000123;
	return s;
}

static void
test_round_trip(void **state)
{
	struct routes_snapshot *s = make_snapshot(10000), *d;
	const struct route_account *acct;
	struct route_answer ans;
	unsigned char *buf;
	const char *why;
	size_t len;

	(void)state;
	assert_true(snapshot_encode(s, &buf, &len));
	d = snapshot_decode(buf, len, &why);
	assert_non_null(d);
	assert_int_equal(d->generation, 17);
	assert_int_equal(d->loaded_at_ms, 1700000000123);
	assert_int_equal(d->source, ROUTES_FROM_FILE);
	assert_int_equal(d->numbers.count, 10000);
	acct = routes_catalog_account(d->catalog, "acme-vapi", 9);
	assert_non_null(acct);
	assert_string_equal(acct->webhook_secret, "s\"ecret");
	assert_int_equal(acct->auth, WEBHOOK_AUTH_BEARER);
	assert_null(routes_catalog_account(d->catalog, "acme-retell", 11)->webhook_secret);
	for (size_t i = 0; i < 10000; i++) {
		const struct route_slot *a = route_table_get(&s->numbers, 14155550000ULL + i);
		const struct route_slot *b = route_table_get(&d->numbers, 14155550000ULL + i);

		assert_non_null(b);
		assert_memory_equal(a, b, sizeof(*a));
	}
	/* lookups through the decoded catalog: odd numbers belong to acme-retell */
	acct = routes_catalog_account(d->catalog, "acme-retell", 11);
	assert_int_equal(routes_lookup(d, acct, 14155550001ULL, &ans), ROUTE_HIT);
	assert_string_equal(ans.agent->provider_agent_id, "agent_x");
	assert_string_equal(ans.agent->client_name, "Acme Dental");
	assert_int_equal(routes_lookup(d, acct, 14155550003ULL, &ans), ROUTE_UNASSIGNED);
	assert_int_equal(routes_lookup(d, acct, 14155550005ULL, &ans), ROUTE_RELEASED_NUM);
	/* an even number is acme-vapi's: never answered through acme-retell */
	assert_int_equal(routes_lookup(d, acct, 14155550004ULL, &ans), ROUTE_UNKNOWN);
	assert_int_equal(routes_lookup(d, acct, 19999999999ULL, &ans), ROUTE_UNKNOWN);
	free(buf);
	routes_snapshot_free(s);
	routes_snapshot_free(d);
}

static void
test_corruption(void **state)
{
	struct routes_snapshot *s = make_snapshot(100), *d;
	unsigned char *buf;
	const char *why;
	size_t len;

	(void)state;
	assert_true(snapshot_encode(s, &buf, &len));
	/* every single flipped byte is caught */
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x40;
		d = snapshot_decode(buf, len, &why);
		assert_null(d);
		buf[i] ^= 0x40;
	}
	/* every truncation is caught */
	for (size_t i = 0; i < len; i++)
		assert_null(snapshot_decode(buf, i, &why));
	d = snapshot_decode(buf, len, &why);
	assert_non_null(d);
	routes_snapshot_free(d);
	free(buf);
	routes_snapshot_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_corruption),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
