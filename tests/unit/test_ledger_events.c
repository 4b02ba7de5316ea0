/* test_ledger_events.c: the ledger's worker step: validation, attribution, rating, the record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "journal.h"
#include "ledger.h"
#include "routes.h"

/*
 * The snapshot: agency 1 bills per second at $0.09/min, agency 2 bills 60/6 at $0.12/min,
 * agency 3's plan cannot be used (no initial increment).  Numbers:
 *   +14155550001 (id 101): account 1 (retell, agency 1), agent 10 (agent_a, client 5)
 *   +14155550002 (id 102): account 3 (retell, agency 2), agent 21 (agent_d)
 *   +14155550003 (id 103): account 2 (vapi, agency 2), agent 20 (asst_c)
 *   +14155550004 (id 104): account 4 (bland, agency 3), no agent
 */
#define NOW_MS INT64_C(1714608500000)
#define START_MS INT64_C(1714608000000)

static struct routes_snapshot *snap;
static char rec[JOURNAL_MAX_RECORD];

static void
put_number(uint64_t key, uint64_t number_id, uint64_t account_id, uint64_t agent_id)
{
	struct route_slot sl = { .key = key,
		.number_id = number_id,
		.account_idx = routes_catalog_account_idx(snap->catalog, account_id),
		.agent_idx =
			agent_id ? routes_catalog_agent_idx(snap->catalog, agent_id) : ROUTE_NONE };

	assert_true(route_table_put(&snap->numbers, &sl));
}

static int
setup(void **state)
{
	struct routes_catalog *c = routes_catalog_new();
	const struct route_agency agencies[] = {
		{ .id = 1,
			.rate_micros_per_min = 90000,
			.billing_initial_s = 1,
			.billing_increment_s = 1 },
		{ .id = 2,
			.rate_micros_per_min = 120000,
			.billing_initial_s = 60,
			.billing_increment_s = 6 },
		{ .id = 3,
			.rate_micros_per_min = 120000,
			.billing_initial_s = 0,
			.billing_increment_s = 6 },
	};
	const struct route_account accounts[] = {
		{ .id = 1,
			.agency_id = 1,
			.provider = PROVIDER_RETELL,
			.slug = "a-retell",
			.api_key = "k1" },
		{ .id = 2,
			.agency_id = 2,
			.provider = PROVIDER_VAPI,
			.slug = "b-vapi",
			.api_key = "k2",
			.webhook_secret = "s2" },
		{ .id = 3,
			.agency_id = 2,
			.provider = PROVIDER_RETELL,
			.slug = "b-retell",
			.api_key = "k3" },
		{ .id = 4,
			.agency_id = 3,
			.provider = PROVIDER_BLAND,
			.slug = "c-bland",
			.api_key = "k4",
			.webhook_secret = "s4" },
	};
	const struct route_agent agents[] = {
		{ .id = 10,
			.agency_id = 1,
			.client_id = 5,
			.provider = PROVIDER_RETELL,
			.provider_agent_id = "agent_a",
			.name = "Rita",
			.client_name = "Acme" },
		{ .id = 11,
			.agency_id = 1,
			.provider = PROVIDER_RETELL,
			.provider_agent_id = "agent_b",
			.name = "Rob" },
		{ .id = 20,
			.agency_id = 2,
			.provider = PROVIDER_VAPI,
			.provider_agent_id = "asst_c",
			.name = "Val" },
		{ .id = 21,
			.agency_id = 2,
			.provider = PROVIDER_RETELL,
			.provider_agent_id = "agent_d",
			.name = "Dora" },
	};

	(void)state;
	assert_non_null(c);
	for (size_t i = 0; i < sizeof(agencies) / sizeof(agencies[0]); i++)
		assert_true(routes_catalog_add_agency(c, &agencies[i]));
	for (size_t i = 0; i < sizeof(accounts) / sizeof(accounts[0]); i++)
		assert_true(routes_catalog_add_account(c, &accounts[i]));
	for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
		assert_true(routes_catalog_add_agent(c, &agents[i]));
	assert_true(routes_catalog_finish(c));
	snap = routes_snapshot_new(c, 16);
	assert_non_null(snap);
	routes_catalog_unref(c);
	put_number(14155550001ULL, 101, 1, 10);
	put_number(14155550002ULL, 102, 3, 21);
	put_number(14155550003ULL, 103, 2, 20);
	put_number(14155550004ULL, 104, 4, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	routes_snapshot_free(snap);
	snap = NULL;
	return 0;
}

static const struct route_account *
account(const char *slug)
{
	const struct route_account *a = routes_catalog_account(snap->catalog, slug, strlen(slug));

	assert_non_null(a);
	return a;
}

/* An ended, connected inbound call of 61.2 s to to, from a caller outside. */
static struct call_event
ended(const char *to, const char *agent)
{
	struct call_event ev = { .call_id = "call-1",
		.kind = CALL_ENDED,
		.dir = CALL_DIR_INBOUND,
		.from = "+12125550100",
		.to = to,
		.provider_agent_id = agent,
		.started_ms = START_MS,
		.ended_ms = START_MS + 61200,
		.duration_ms = 61200,
		.connected = true,
		.rated = true,
		.end_reason = "user_hangup" };

	return ev;
}

/* Validate, encode and parse the record (the test fails if either refuses). */
static json_t *
encode(const char *slug, const struct call_event *ev)
{
	const struct route_account *a = account(slug);
	struct ledger_result res;
	json_error_t jerr;
	json_t *o;

	assert_true(ledger_validate(a, ev, &res));
	assert_true(ledger_encode(snap, a, ev, NOW_MS, rec, sizeof(rec), &res));
	assert_int_equal(res.status, 200);
	assert_true(res.len > 0 && res.len <= sizeof(rec));
	o = json_loadb(rec, res.len, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(o);
	assert_true(json_is_object(o));
	return o;
}

static void
assert_int_field(json_t *o, const char *key, int64_t v)
{
	json_t *f = json_object_get(o, key);

	if (!json_is_integer(f))
		fail_msg("record field \"%s\" is not an integer", key);
	assert_int_equal(json_integer_value(f), v);
}

static void
assert_null_field(json_t *o, const char *key)
{
	if (!json_is_null(json_object_get(o, key)))
		fail_msg("record field \"%s\" is not null", key);
}

static void
assert_str_field(json_t *o, const char *key, const char *v)
{
	json_t *f = json_object_get(o, key);

	if (!json_is_string(f))
		fail_msg("record field \"%s\" is not a string", key);
	assert_string_equal(json_string_value(f), v);
}

static void
assert_bool_field(json_t *o, const char *key, bool v)
{
	json_t *f = json_object_get(o, key);

	if (!json_is_boolean(f))
		fail_msg("record field \"%s\" is not a boolean", key);
	assert_int_equal(json_is_true(f), v);
}

/* The attribution of an unattributed record: nobody, no plan, nothing billed. */
static void
assert_unattributed(json_t *o)
{
	assert_null_field(o, "ag");
	assert_null_field(o, "cl");
	assert_null_field(o, "a");
	assert_null_field(o, "n");
	assert_null_field(o, "rate");
	assert_int_field(o, "bs", 0);
	assert_int_field(o, "amt", 0);
	assert_bool_field(o, "mm", false);
}

static void
test_inbound_by_to(void **state)
{
	struct call_event ev = ended("+14155550001", "agent_a");
	json_t *o;

	(void)state;
	o = encode("a-retell", &ev);
	assert_int_equal(json_object_size(o), 23);
	assert_str_field(o, "p", "retell");
	assert_str_field(o, "id", "call-1");
	assert_str_field(o, "k", "end");
	assert_str_field(o, "d", "inbound");
	assert_str_field(o, "num", "+14155550001");
	assert_str_field(o, "from", "+12125550100");
	assert_str_field(o, "to", "+14155550001");
	assert_str_field(o, "pa", "agent_a");
	assert_int_field(o, "st", START_MS);
	assert_int_field(o, "en", START_MS + 61200);
	assert_int_field(o, "dur", 61200);
	assert_bool_field(o, "c", true);
	assert_bool_field(o, "r", true);
	assert_str_field(o, "why", "user_hangup");
	assert_int_field(o, "ag", 1);
	assert_int_field(o, "cl", 5);
	assert_int_field(o, "a", 10);
	assert_int_field(o, "n", 101);
	assert_bool_field(o, "mm", false);
	/* per second: 61.2 s is 62 s, at $0.09/min $0.093 */
	assert_int_field(o, "rate", 90000);
	assert_int_field(o, "bs", 62);
	assert_int_field(o, "amt", 93000);
	assert_int_field(o, "at", NOW_MS);
	json_decref(o);
}

static void
test_outbound_by_from(void **state)
{
	struct call_event ev = ended("+12125550100", "agent_a");
	json_t *o;

	(void)state;
	ev.dir = CALL_DIR_OUTBOUND;
	ev.from = "+14155550001";
	o = encode("a-retell", &ev);
	assert_str_field(o, "d", "outbound");
	assert_str_field(o, "num", "+14155550001");
	assert_int_field(o, "ag", 1);
	assert_int_field(o, "a", 10);
	assert_int_field(o, "n", 101);
	assert_int_field(o, "bs", 62);
	json_decref(o);

	/* inbound, our number in from: the number called is not ours */
	ev.dir = CALL_DIR_INBOUND;
	o = encode("a-retell", &ev);
	assert_str_field(o, "num", "+12125550100");
	assert_unattributed(o);
	json_decref(o);
}

static void
test_unknown_number(void **state)
{
	struct call_event ev = ended("+14155559999", NULL);
	struct ledger_stats before, after;
	json_t *o;

	(void)state;
	ledger_get_stats(&before);
	o = encode("a-retell", &ev);
	ledger_get_stats(&after);
	assert_int_equal(after.unattributed, before.unattributed + 1);
	assert_str_field(o, "num", "+14155559999");
	assert_null_field(o, "pa");
	assert_unattributed(o);
	json_decref(o);
}

static void
test_number_of_another_account(void **state)
{
	struct call_event ev = ended("+14155550002", "agent_d");
	json_t *o;

	(void)state;
	/* the number is account 3's (same provider, agency 2): unknown to account 1 */
	o = encode("a-retell", &ev);
	assert_str_field(o, "num", "+14155550002");
	assert_unattributed(o);
	json_decref(o);

	/* and through its own account it is attributed, billed 60/6 */
	o = encode("b-retell", &ev);
	assert_int_field(o, "ag", 2);
	assert_null_field(o, "cl");
	assert_int_field(o, "a", 21);
	assert_int_field(o, "n", 102);
	assert_int_field(o, "bs", 66);
	json_decref(o);
}

static void
test_agent_mismatch(void **state)
{
	struct call_event ev = ended("+14155550001", "agent_b");
	struct ledger_stats before, after;
	json_t *o;

	(void)state;
	/* the provider names another agent of the agency: that agent took the call */
	ledger_get_stats(&before);
	o = encode("a-retell", &ev);
	ledger_get_stats(&after);
	assert_int_equal(after.agent_mismatches, before.agent_mismatches + 1);
	assert_bool_field(o, "mm", true);
	assert_int_field(o, "ag", 1);
	assert_int_field(o, "a", 11);
	assert_null_field(o, "cl");
	assert_int_field(o, "n", 101);
	assert_int_field(o, "amt", 93000);
	json_decref(o);

	/* an agent we do not know: the number's agent, the mismatch said */
	ev.provider_agent_id = "agent_zzz";
	o = encode("a-retell", &ev);
	assert_bool_field(o, "mm", true);
	assert_int_field(o, "a", 10);
	assert_int_field(o, "cl", 5);
	json_decref(o);

	/* an agent of another agency is not taken */
	ev.provider_agent_id = "agent_d";
	o = encode("a-retell", &ev);
	assert_bool_field(o, "mm", true);
	assert_int_field(o, "a", 10);
	json_decref(o);

	/* no agent named: no mismatch */
	ev.provider_agent_id = NULL;
	o = encode("a-retell", &ev);
	assert_bool_field(o, "mm", false);
	assert_int_field(o, "a", 10);
	json_decref(o);
}

static void
test_unattributed(void **state)
{
	struct call_event ev = ended("+14155550001", "agent_a");
	json_t *o;

	(void)state;
	/* no direction: no number of ours to attribute by */
	ev.dir = CALL_DIR_UNKNOWN;
	o = encode("a-retell", &ev);
	assert_str_field(o, "d", "unknown");
	assert_null_field(o, "num");
	assert_unattributed(o);
	json_decref(o);

	/* a number that is not E.164 */
	ev.dir = CALL_DIR_INBOUND;
	ev.to = "not a number";
	o = encode("a-retell", &ev);
	assert_null_field(o, "num");
	assert_str_field(o, "to", "not a number");
	assert_unattributed(o);
	json_decref(o);
}

static void
test_plans(void **state)
{
	struct call_event ev = ended("+14155550003", "asst_c");
	json_t *o;

	(void)state;
	/* 60/6 at $0.12/min: 61.2 s is 66 s, $0.132 */
	o = encode("b-vapi", &ev);
	assert_str_field(o, "p", "vapi");
	assert_int_field(o, "ag", 2);
	assert_int_field(o, "rate", 120000);
	assert_int_field(o, "bs", 66);
	assert_int_field(o, "amt", 132000);
	json_decref(o);

	/* under the first minute: the minute */
	ev.duration_ms = 20000;
	ev.ended_ms = START_MS + 20000;
	o = encode("b-vapi", &ev);
	assert_int_field(o, "bs", 60);
	assert_int_field(o, "amt", 120000);
	json_decref(o);

	/* per second: exactly 30 s is 30 s, $0.045 */
	ev = ended("+14155550001", "agent_a");
	ev.duration_ms = 30000;
	ev.ended_ms = START_MS + 30000;
	o = encode("a-retell", &ev);
	assert_int_field(o, "bs", 30);
	assert_int_field(o, "amt", 45000);
	json_decref(o);
}

static void
test_never_connected(void **state)
{
	struct call_event ev = ended("+14155550003", "asst_c");
	json_t *o;

	(void)state;
	ev.connected = false;
	ev.started_ms = -1;
	ev.duration_ms = -1;
	ev.end_reason = "customer-did-not-answer";
	o = encode("b-vapi", &ev);
	assert_bool_field(o, "c", false);
	assert_bool_field(o, "r", true);
	assert_null_field(o, "st");
	assert_null_field(o, "dur");
	assert_int_field(o, "ag", 2);
	assert_int_field(o, "a", 20);
	assert_int_field(o, "rate", 120000);
	assert_int_field(o, "bs", 0);
	assert_int_field(o, "amt", 0);
	json_decref(o);
}

static void
test_started_and_unpriced(void **state)
{
	struct call_event ev = ended("+14155550001", "agent_a");
	struct ledger_stats before, after;
	json_t *o;

	(void)state;
	ev.kind = CALL_STARTED;
	ev.ended_ms = ev.duration_ms = -1;
	ev.end_reason = NULL;
	ev.rated = false;
	o = encode("a-retell", &ev);
	assert_str_field(o, "k", "start");
	assert_bool_field(o, "r", false);
	assert_null_field(o, "why");
	assert_int_field(o, "a", 10);
	assert_int_field(o, "bs", 0);
	json_decref(o);

	/* ended connected with nothing to measure: recorded, not billed, counted */
	ev.kind = CALL_ENDED;
	ledger_get_stats(&before);
	o = encode("a-retell", &ev);
	ledger_get_stats(&after);
	assert_int_equal(after.unpriced[PROVIDER_RETELL], before.unpriced[PROVIDER_RETELL] + 1);
	assert_bool_field(o, "r", false);
	assert_int_field(o, "bs", 0);
	json_decref(o);
}

static void
test_end_reason_cut(void **state)
{
	struct call_event ev = ended("+14155550001", "agent_a");
	char why[LEDGER_MAX_END_REASON + 8];
	json_t *o;

	(void)state;
	/* a two-byte character straddling the limit is dropped whole */
	memset(why, 'x', sizeof(why) - 1);
	why[sizeof(why) - 1] = 0;
	why[LEDGER_MAX_END_REASON - 1] = (char)0xc3;
	why[LEDGER_MAX_END_REASON] = (char)0xa9;
	ev.end_reason = why;
	o = encode("a-retell", &ev);
	assert_int_equal(strlen(json_string_value(json_object_get(o, "why"))),
		LEDGER_MAX_END_REASON - 1);
	json_decref(o);
}

/* ledger_validate refuses, counted by reason, answered 400 with the reason's text. */
static void
refused(const struct call_event *ev, enum ledger_invalid why, const char *reason)
{
	const struct route_account *a = account("a-retell");
	struct ledger_stats before, after;
	struct ledger_result res;

	ledger_get_stats(&before);
	assert_false(ledger_validate(a, ev, &res));
	ledger_get_stats(&after);
	assert_int_equal(res.status, 400);
	assert_string_equal(res.reason, reason);
	assert_int_equal(after.invalid[PROVIDER_RETELL][why],
		before.invalid[PROVIDER_RETELL][why] + 1);
	assert_int_equal(after.events_rejected, before.events_rejected + 1);
}

static void
test_validation(void **state)
{
	struct call_event ev = ended("+14155550001", "agent_a");
	char big[LEDGER_MAX_AGENT_ID + 2];

	(void)state;
	ev.call_id = NULL;
	refused(&ev, LEDGER_INVALID_CALL_ID, "missing call id");
	ev = ended("+14155550001", "agent_a");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	ev.provider_agent_id = big;
	refused(&ev, LEDGER_INVALID_FIELD_LENGTH, "agent id longer than 256 bytes");
	ev = ended("+14155550001", "agent_a");
	ev.invalid = "duration_ms is not a non-negative integer";
	refused(&ev, LEDGER_INVALID_BAD_VALUE, "duration_ms is not a non-negative integer");
	ev = ended("+14155550001", "agent_a");
	ev.started_ms = 1000;
	refused(&ev, LEDGER_INVALID_TIME_RANGE, "call time outside the years 2000 to 2099");
	ev = ended("+14155550001", "agent_a");
	ev.ended_ms = START_MS - 1;
	refused(&ev, LEDGER_INVALID_END_BEFORE_START, "call ends before it starts");
	ev = ended("+14155550001", "agent_a");
	ev.duration_ms = INT64_C(48) * 3600 * 1000 + 1;
	ev.ended_ms = -1;
	refused(&ev, LEDGER_INVALID_DURATION, "call longer than 48 hours");
}

static void
test_refused_by_the_step(void **state)
{
	struct call_event ev = ended("+14155550004", NULL);
	const struct route_account *a = account("c-bland");
	struct ledger_stats before, after;
	struct ledger_result res;
	char small[64];

	(void)state;
	/* the agency's plan cannot price it */
	ledger_get_stats(&before);
	assert_true(ledger_validate(a, &ev, &res));
	assert_false(ledger_encode(snap, a, &ev, NOW_MS, rec, sizeof(rec), &res));
	ledger_get_stats(&after);
	assert_int_equal(res.status, 400);
	assert_string_equal(res.reason, "call duration out of range");
	assert_int_equal(after.invalid[PROVIDER_BLAND][LEDGER_INVALID_UNRATEABLE],
		before.invalid[PROVIDER_BLAND][LEDGER_INVALID_UNRATEABLE] + 1);

	/* a record that does not fit the buffer: 413, never a 503 the provider retries */
	ev = ended("+14155550001", "agent_a");
	a = account("a-retell");
	assert_false(ledger_encode(snap, a, &ev, NOW_MS, small, sizeof(small), &res));
	assert_int_equal(res.status, 413);
	assert_string_equal(res.reason, "event too large to journal");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inbound_by_to),
		cmocka_unit_test(test_outbound_by_from),
		cmocka_unit_test(test_unknown_number),
		cmocka_unit_test(test_number_of_another_account),
		cmocka_unit_test(test_agent_mismatch),
		cmocka_unit_test(test_unattributed),
		cmocka_unit_test(test_plans),
		cmocka_unit_test(test_never_connected),
		cmocka_unit_test(test_started_and_unpriced),
		cmocka_unit_test(test_end_reason_cut),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_refused_by_the_step),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
