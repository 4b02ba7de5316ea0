/* test_provider_registry.c: every provider has one whole ops table, and its events are unique. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "provider_api.h"
#include "providers/registry.h"

static void
test_names(void **state)
{
	enum provider_id p;

	(void)state;
	for (int i = 0; i < PROVIDER_COUNT; i++) {
		const char *name = provider_name((enum provider_id)i);

		assert_true(provider_from_name(name, strlen(name), &p));
		assert_int_equal(p, i);
	}
	assert_false(provider_from_name("retel", 5, &p));
	assert_false(provider_from_name("retells", 7, &p));
	assert_string_equal(provider_name(PROVIDER_COUNT), "?");
	assert_string_equal(webhook_event_name(WE_NONE), "none");
	assert_string_equal(webhook_event_name(WE_COUNT), "other");
	assert_true(webhook_event_is_inbound(WE_DYNAMIC_DATA));
	assert_false(webhook_event_is_inbound(WE_POST_CALL));
}

static void
test_ops_tables(void **state)
{
	(void)state;
	assert_null(provider_ops_get(PROVIDER_COUNT));
	for (int i = 0; i < PROVIDER_COUNT; i++) {
		const struct provider_ops *ops = provider_ops_get((enum provider_id)i);
		size_t n = 0;

		assert_non_null(ops);
		assert_int_equal(ops->id, i);
		assert_non_null(ops->verify);
		assert_non_null(ops->replay_sig);
		assert_non_null(ops->event_name);
		assert_ptr_equal(ops->api, provider_api_get((enum provider_id)i));
		for (const struct provider_event *e = ops->events; e->name; e++, n++) {
			assert_non_null(e->handle);
			assert_true(e->event > WE_NONE && e->event < WE_COUNT);
			/* the first entry of a name is the one dispatched: no second one */
			assert_ptr_equal(provider_event_find(ops, e->name), e);
		}
		assert_true(n > 0);
		assert_null(provider_event_find(ops, "no-such-event"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ops_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
