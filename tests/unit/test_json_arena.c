/* test_json_arena.c: jansson's per-request arena: in it, out of it, full, on other threads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "json_arena.h"

#define BODY "{\"event\":\"call_inbound\",\"call_inbound\":{\"to_number\":\"+15550174620\"}}"

static void
test_request_in_arena(void **state)
{
	json_t *before = json_pack("{s:s}", "k", "made before the arena");
	json_error_t err;

	for (int i = 0; i < 1000; i++) {
		json_t *j;

		assert_true(json_arena_begin());
		j = json_loadb(BODY, strlen(BODY), JSON_REJECT_DUPLICATES, &err);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(
					    json_object_get(j, "call_inbound"), "to_number")),
			"+15550174620");
		assert_true(json_arena_all_inside());
		if (i % 2)
			json_decref(j); /* its frees are ignored */
		json_arena_end();
		assert_false(json_arena_all_inside());
	}
	/* a value from before the arena is freed by free() even while an arena is on */
	assert_true(json_arena_begin());
	json_decref(before);
	json_arena_end();
}

/* A body bigger than the arena: what does not fit comes from malloc and is freed by decref (the
 * sanitizer tree's leak check holds that). */
static void
test_spill(void **state)
{
	size_t n = 20000, len = 0;
	char *big = malloc(n * 16 + 16);
	json_error_t err;
	json_t *j;

	assert_non_null(big);
	big[len++] = '[';
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(big + len, "%s\"v%06zu\"", i ? "," : "", i);
	big[len++] = ']';
	assert_true(json_arena_begin());
	j = json_loadb(big, len, 0, &err);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), n);
	assert_false(json_arena_all_inside());
	json_decref(j);
	json_arena_end();
	free(big);
}

static void *
other_thread(void *arg)
{
	json_error_t err;
	json_t *j = json_loadb(BODY, strlen(BODY), 0, &err);

	/* no arena on this thread: malloc and free */
	assert_non_null(j);
	json_decref(j);
	return arg;
}

static void
test_other_threads(void **state)
{
	pthread_t t;

	assert_true(json_arena_begin());
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	json_arena_end();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_in_arena),
		cmocka_unit_test(test_spill),
		cmocka_unit_test(test_other_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
