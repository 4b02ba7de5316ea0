/* test_route_counts.c: concurrency slots: taken, reused by a retry of the same call, released. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "route_counts.h"
#include "route_counts_fixture.h"

static int
setup(void **state)
{
	(void)state;
	return route_counts_init() ? 0 : -1;
}

static void
test_call_key(void **state)
{
	(void)state;
	assert_true(key(0, NULL) == 0);
	assert_true(key(0, "") == 0);
	assert_true(key(0, "c_7f3a") != 0);
	assert_true(key(0, "c_7f3a") == key(0, "c_7f3a"));
	assert_true(key(0, "c_7f3a") != key(1, "c_7f3a")); /* (provider, call id) */
	assert_true(key(0, "c_7f3a") != key(0, "c_7f3b"));
	/* the length counts: a prefix is another id */
	assert_true(route_counts_call_key(0, "abc", 2) != key(0, "abc"));
}

/* limit 1: the same call three times holds one slot; another call is over the limit */
static void
test_retry_reuses_its_slot(void **state)
{
	uint64_t a = key(0, "call_a"), b = key(0, "call_b");

	(void)state;
	assert_true(route_counts_client(CLIENT, 1));
	assert_int_equal(concurrent(a, T), 0);
	assert_int_equal(route_counts_take(CLIENT, 1, T, a), ROUTE_TAKE_TAKEN);
	for (int i = 1; i <= 2; i++) {
		/* the retry is not counted against its own slot, and takes none */
		assert_int_equal(concurrent(a, T + i), 0);
		assert_int_equal(route_counts_take(CLIENT, 1, T + i, a), ROUTE_TAKE_REUSED);
		assert_int_equal(route_counts_taken(CLIENT, T + i), 1);
	}
	assert_int_equal(concurrent(b, T + 3), 1);
	assert_int_equal(concurrent(0, T + 3), 1);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 3, b), ROUTE_TAKE_REFUSED);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 3, 0), ROUTE_TAKE_REFUSED);
	assert_int_equal(route_counts_taken(CLIENT, T + 3), 1);
}

/* a request without a call id takes a slot each time, as before */
static void
test_no_call_id(void **state)
{
	(void)state;
	assert_true(route_counts_client(CLIENT, 2));
	assert_int_equal(route_counts_take(CLIENT, 2, T, 0), ROUTE_TAKE_TAKEN);
	assert_int_equal(concurrent(0, T), 1);
	assert_int_equal(route_counts_take(CLIENT, 2, T, 0), ROUTE_TAKE_TAKEN);
	assert_int_equal(route_counts_take(CLIENT, 2, T, 0), ROUTE_TAKE_REFUSED);
	/* nor does a call id match a slot taken without one */
	assert_int_equal(route_counts_take(CLIENT, 2, T, key(0, "x")), ROUTE_TAKE_REFUSED);
}

/* a retry starts the slot's life again; an expired slot's key names no call */
static void
test_life(void **state)
{
	uint64_t a = key(1, "call_a"), b = key(1, "call_b");

	(void)state;
	assert_true(route_counts_client(CLIENT, 1));
	assert_int_equal(route_counts_take(CLIENT, 1, T, a), ROUTE_TAKE_TAKEN);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 9000, a), ROUTE_TAKE_REUSED);
	assert_int_equal(route_counts_taken(CLIENT, T + 15000), 1);
	assert_int_equal(route_counts_taken(CLIENT, T + 9000 + ROUTE_COUNTS_SLOT_MS), 0);
	/* expired: another call takes it, and the first call's retry no longer matches it */
	assert_int_equal(route_counts_take(CLIENT, 1, T + 20000, b), ROUTE_TAKE_TAKEN);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 20001, a), ROUTE_TAKE_REFUSED);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 20002, b), ROUTE_TAKE_REUSED);
}

/* an event releases its own call's slot, not the oldest */
static void
test_release_own(void **state)
{
	uint64_t a = key(0, "call_a"), b = key(0, "call_b"), c = key(0, "call_c");

	(void)state;
	assert_true(route_counts_client(CLIENT, 2));
	assert_int_equal(route_counts_take(CLIENT, 2, T, a), ROUTE_TAKE_TAKEN);
	assert_int_equal(route_counts_take(CLIENT, 2, T + 5, b), ROUTE_TAKE_TAKEN);
	route_counts_release(CLIENT, false, T + 10, b); /* b ended */
	assert_int_equal(route_counts_taken(CLIENT, T + 10), 1);
	assert_int_equal(route_counts_take(CLIENT, 2, T + 11, a), ROUTE_TAKE_REUSED);
	/* an event of a call without a slot here leaves a slot another call's id names alone */
	route_counts_release(CLIENT, false, T + 12, c);
	assert_int_equal(route_counts_taken(CLIENT, T + 12), 1);
	/* and takes the oldest of the requests that carried no id */
	assert_int_equal(route_counts_take(CLIENT, 2, T + 13, 0), ROUTE_TAKE_TAKEN);
	assert_int_equal(route_counts_taken(CLIENT, T + 13), 2);
	route_counts_release(CLIENT, false, T + 14, c);
	assert_int_equal(route_counts_taken(CLIENT, T + 14), 1);
	assert_int_equal(route_counts_take(CLIENT, 2, T + 15, a), ROUTE_TAKE_REUSED);
	/* an event without an id at all: the oldest live slot, keyed or not, as before */
	route_counts_release(CLIENT, false, T + 16, 0);
	assert_int_equal(route_counts_taken(CLIENT, T + 16), 0);
}

/* a long call: its start released its slot; its end must not free the slot of another call
 * routed since (the limit would then admit one more) */
static void
test_end_after_start_spares_others(void **state)
{
	uint64_t a = key(0, "call_a"), b = key(0, "call_b");

	(void)state;
	assert_true(route_counts_client(CLIENT, 2));
	assert_int_equal(route_counts_take(CLIENT, 2, T, a), ROUTE_TAKE_TAKEN);
	route_counts_release(CLIENT, true, T + 100, a); /* a started: the database counts it */
	assert_int_equal(route_counts_take(CLIENT, 2, T + 3000, b), ROUTE_TAKE_TAKEN);
	route_counts_release(CLIENT, false, T + 4000, a);          /* a ended */
	assert_int_equal(route_counts_taken(CLIENT, T + 4000), 1); /* b's slot stays */
	assert_int_equal(route_counts_take(CLIENT, 2, T + 4001, b), ROUTE_TAKE_REUSED);
}

/* after the start event the slot is the database's (2.5 s): a routing request of the call then
 * is a new decision, not a reuse */
static void
test_release_started(void **state)
{
	uint64_t a = key(0, "call_a");

	(void)state;
	assert_true(route_counts_client(CLIENT, 1));
	assert_int_equal(route_counts_take(CLIENT, 1, T, a), ROUTE_TAKE_TAKEN);
	route_counts_release(CLIENT, true, T + 100, a);
	assert_int_equal(route_counts_taken(CLIENT, T + 101), 1);
	assert_int_equal(concurrent(a, T + 101), 1);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 101, a), ROUTE_TAKE_REFUSED);
	assert_int_equal(route_counts_taken(CLIENT, T + 100 + ROUTE_COUNTS_STARTED_MS), 0);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 2700, a), ROUTE_TAKE_TAKEN);
}

/* the database's figure counts with the slots; a reuse still needs no new slot */
static void
test_with_database_figure(void **state)
{
	uint64_t a = key(0, "call_a");

	(void)state;
	assert_true(route_counts_client(CLIENT, 2));
	assert_int_equal(route_counts_take(CLIENT, 2, T, a), ROUTE_TAKE_TAKEN);
	route_counts_refresh_begin();
	route_counts_set_in_progress(CLIENT, 1);
	route_counts_refresh_end(T);
	assert_int_equal(concurrent(a, T + 1), 1);
	assert_int_equal(concurrent(0, T + 1), 2);
	assert_int_equal(route_counts_take(CLIENT, 2, T + 1, a), ROUTE_TAKE_REUSED);
	assert_int_equal(route_counts_take(CLIENT, 2, T + 1, key(0, "call_b")), ROUTE_TAKE_REFUSED);
}

/* a larger limit copies the slots with their keys */
static void
test_grown_keeps_keys(void **state)
{
	uint64_t a = key(0, "call_a");

	(void)state;
	assert_true(route_counts_client(CLIENT, 1));
	assert_int_equal(route_counts_take(CLIENT, 1, T, a), ROUTE_TAKE_TAKEN);
	assert_true(route_counts_client(CLIENT, 3));
	assert_int_equal(route_counts_take(CLIENT, 3, T + 1, a), ROUTE_TAKE_REUSED);
	assert_int_equal(route_counts_taken(CLIENT, T + 1), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_key),
		cmocka_unit_test_setup_teardown(test_retry_reuses_its_slot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_call_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_life, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_own, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_after_start_spares_others, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_release_started, setup, teardown),
		cmocka_unit_test_setup_teardown(test_with_database_figure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grown_keeps_keys, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
