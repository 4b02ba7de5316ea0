/* test_route_counts_race.c: a slot's call key, stored after its until_ms, names no other call. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

/*
 * route_counts.c itself, with its hook points running what another worker does meanwhile: once,
 * then nothing.  between: between a slot's two words (until_ms changed, call not yet stored);
 * give_back: before a take over the limit gives its slot back; before_claim / before_release:
 * before a take claims a free slot / a release frees the slot it chose.
 */
static void (*between)(void);
static void (*give_back)(void);
static void (*before_claim)(void);
static void (*before_release)(void);

/* Run hook h once (it is cleared first: a hook that takes or releases does not run again). */
static void
run_hook(void (**h)(void))
{
	void (*f)(void) = *h;

	*h = NULL;
	if (f)
		f();
}

#define RC_BETWEEN_WORDS() run_hook(&between)
#define RC_BEFORE_GIVE_BACK() run_hook(&give_back)
#define RC_BEFORE_CLAIM() run_hook(&before_claim)
#define RC_BEFORE_RELEASE() run_hook(&before_release)

#include "route_counts.c"
#include "route_counts_fixture.h"

static uint64_t ka, kb, ke;

static int
setup(void **state)
{
	(void)state;
	ka = key(0, "call_a");
	kb = key(0, "call_b");
	ke = key(0, "call_e");
	between = NULL;
	give_back = NULL;
	before_claim = before_release = NULL;
	return route_counts_init() && route_counts_client(CLIENT, 1) ? 0 : -1;
}

/* An end event without a call id (the oldest slot goes, whoever's), then call E's routing.  (An
 * event of another call with an id leaves a slot a call id names alone; in the window the slot's
 * key reads as another's.) */
static void
release_then_e_takes(void)
{
	route_counts_release(CLIENT, false, T, 0);
	assert_int_equal(route_counts_take(CLIENT, 1, T, ke), ROUTE_TAKE_TAKEN);
}

/* An end event that releases the slot (without an id: A's own, in the window, reads its key as
 * another's and leaves the slot to expire), then call E's routing. */
static void
a_ends_then_e_takes(void)
{
	route_counts_release(CLIENT, false, T + 1, 0);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 1, ke), ROUTE_TAKE_TAKEN);
}

/*
 * B claims the slot; before it stores its key the slot is released and E claims it.  The slot
 * is E's: E's decision does not count it against E, and B's retry does not reuse it.
 */
static void
test_claim_then_slot_retaken(void **state)
{
	(void)state;
	between = release_then_e_takes;
	route_counts_take(CLIENT, 1, T, kb);
	assert_null(between);
	assert_int_equal(route_counts_taken(CLIENT, T + 1), 1);
	assert_int_equal(concurrent(ke, T + 1), 0);
	assert_int_not_equal(route_counts_take(CLIENT, 1, T + 1, kb), ROUTE_TAKE_REUSED);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 2, ke), ROUTE_TAKE_REUSED);
}

/*
 * A's retry gives its slot a new life; before it stores its key again, A's end event releases
 * the slot and E claims it.  The slot is E's, not A's.
 */
static void
test_reuse_then_slot_retaken(void **state)
{
	(void)state;
	assert_int_equal(route_counts_take(CLIENT, 1, T, ka), ROUTE_TAKE_TAKEN);
	between = a_ends_then_e_takes;
	assert_int_equal(route_counts_take(CLIENT, 1, T + 1, ka), ROUTE_TAKE_REUSED);
	assert_null(between);
	assert_int_equal(route_counts_taken(CLIENT, T + 2), 1);
	assert_int_equal(concurrent(ke, T + 2), 0);
	assert_int_not_equal(route_counts_take(CLIENT, 1, T + 2, ka), ROUTE_TAKE_REUSED);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 3, ke), ROUTE_TAKE_REUSED);
}

/* B's retry, on another worker, finds B's slot (taken, not yet given back). */
static void
b_retried(void)
{
	assert_int_equal(route_counts_take(CLIENT, 1, T + 1, kb), ROUTE_TAKE_REUSED);
}

/*
 * B's take finds the limit reached (the database's figure counts one more meanwhile) and gives
 * its slot back; before it does, B's retry reused the slot and is routed with it.  The slot
 * stays taken, B's.
 */
static void
test_give_back_after_retry_reused(void **state)
{
	(void)state;
	route_counts_set_in_progress(CLIENT, 1);
	give_back = b_retried;
	assert_int_equal(route_counts_take(CLIENT, 1, T, kb), ROUTE_TAKE_REFUSED);
	assert_null(give_back);
	assert_int_equal(route_counts_taken(CLIENT, T + 2), 1);
	route_counts_set_in_progress(CLIENT, 0);
	assert_int_equal(concurrent(kb, T + 2), 0);
	assert_int_equal(route_counts_take(CLIENT, 1, T + 2, kb), ROUTE_TAKE_REUSED);
}

/* The client's limit is raised (its slots move to a bigger array) meanwhile. */
static void
limit_raised(void)
{
	assert_true(route_counts_client(CLIENT, 3));
}

/*
 * A take has loaded the (old) array and found a free slot; the limit is raised before it claims
 * it.  The claim must count in the array in use (it was lost in the old one: the count low for
 * up to 10 s).
 */
static void
test_claim_while_limit_raised(void **state)
{
	(void)state;
	before_claim = limit_raised;
	assert_int_equal(route_counts_take(CLIENT, 3, T, ka), ROUTE_TAKE_TAKEN);
	assert_null(before_claim);
	assert_int_equal(route_counts_taken(CLIENT, T + 1), 1);
	assert_int_equal(route_counts_take(CLIENT, 3, T + 2, ka), ROUTE_TAKE_REUSED);
	assert_int_equal(route_counts_taken(CLIENT, T + 2), 1);
}

/*
 * A's end event has chosen A's slot in the old array; the limit is raised before it frees it.
 * The release must free it in the array in use (it was lost: the slot counted for 10 s).
 */
static void
test_release_while_limit_raised(void **state)
{
	(void)state;
	assert_int_equal(route_counts_take(CLIENT, 1, T, ka), ROUTE_TAKE_TAKEN);
	before_release = limit_raised;
	route_counts_release(CLIENT, false, T + 1, ka);
	assert_null(before_release);
	assert_int_equal(route_counts_taken(CLIENT, T + 2), 0);
	assert_int_equal(route_counts_take(CLIENT, 3, T + 3, ke), ROUTE_TAKE_TAKEN);
	assert_int_equal(route_counts_taken(CLIENT, T + 3), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_claim_then_slot_retaken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse_then_slot_retaken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_give_back_after_retry_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_while_limit_raised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_while_limit_raised, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
