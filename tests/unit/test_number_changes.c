/* test_number_changes.c: number_changes.c's key check, digest, lease bounds, event params. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "number_changes.h"

struct key_case {
	const char *in;
	const char *key; /* NULL: refused */
};

/* clang-format off */
static const struct key_case key_cases[] = {
	{ "a", "a" },
	{ "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d" },
	{ "\"quoted\"", "quoted" },
	{ "A-z_0.9:~+/=", "A-z_0.9:~+/=" },
	{ "", NULL },
	{ "\"\"", NULL },
	{ "\"", NULL },
	{ "\"open", NULL },
	{ "has space", NULL },
	{ "semi;colon", NULL },
	{ "comma,", NULL },
	{ "t\tab", NULL },
	{ "caf\xc3\xa9", NULL },
	{ "back\\slash", NULL },
	{ "in\"side", NULL },
};
/* clang-format on */

static void
test_keys(void **state)
{
	char out[NC_KEY_MAX + 1], err[256];

	for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		const struct key_case *c = &key_cases[i];
		bool ok = nc_key_parse(c->in, out, sizeof(out), err, sizeof(err));

		if (ok != (c->key != NULL))
			fail_msg("key \"%s\": %s", c->in, ok ? "accepted" : err);
		if (ok)
			assert_string_equal(out, c->key);
		else
			assert_non_null(strstr(err, "Idempotency-Key"));
	}
}

static void
test_key_lengths(void **state)
{
	char in[NC_KEY_MAX + 4], out[NC_KEY_MAX + 1], err[256];

	memset(in, 'k', sizeof(in));
	in[NC_KEY_MAX] = '\0';
	assert_true(nc_key_parse(in, out, sizeof(out), err, sizeof(err)));
	assert_int_equal(strlen(out), NC_KEY_MAX);
	in[NC_KEY_MAX] = 'k';
	in[NC_KEY_MAX + 1] = '\0';
	assert_false(nc_key_parse(in, out, sizeof(out), err, sizeof(err)));
	assert_non_null(strstr(err, "has 256"));
	/* 255 characters within quotes */
	in[0] = '"';
	in[NC_KEY_MAX + 1] = '"';
	in[NC_KEY_MAX + 2] = '\0';
	assert_true(nc_key_parse(in, out, sizeof(out), err, sizeof(err)));
	assert_int_equal(strlen(out), NC_KEY_MAX);
	/* an output buffer too small is a refusal, never a cut key */
	assert_false(nc_key_parse("abcdef", out, 4, err, sizeof(err)));
}

static void
test_digest(void **state)
{
	json_t *a = json_loads("{\"account\":\"ret-a\",\"area_code\":\"415\"}", 0, NULL);
	json_t *b = json_loads("{ \"area_code\" : \"415\", \"account\" : \"ret-a\" }", 0, NULL);
	json_t *c = json_loads("{\"account\":\"ret-a\",\"area_code\":415}", 0, NULL);
	char ha[65], hb[65], hc[65], hr[65];

	assert_true(nc_request_digest("POST /v1/numbers", a, ha));
	assert_true(nc_request_digest("POST /v1/numbers", b, hb));
	assert_true(nc_request_digest("POST /v1/numbers", c, hc));
	assert_true(nc_request_digest("POST /v1/calls", a, hr));
	assert_int_equal(strlen(ha), 64);
	assert_string_equal(ha, hb);     /* spacing and key order do not matter */
	assert_string_not_equal(ha, hc); /* a value's type does */
	assert_string_not_equal(ha, hr); /* nor the route */
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void
test_lease_bounds(void **state)
{
	char h1[NC_HOLDER_LEN + 1], h2[NC_HOLDER_LEN + 1];

	assert_int_equal(nc_lease_seconds(10), 25);
	assert_int_equal(nc_lease_seconds(2), 9);
	assert_int_equal(nc_idem_seconds(10), 35);
	assert_true(nc_holder_new(h1));
	assert_true(nc_holder_new(h2));
	assert_int_equal(strlen(h1), NC_HOLDER_LEN);
	assert_int_equal(strspn(h1, "0123456789abcdef"), NC_HOLDER_LEN);
	assert_string_not_equal(h1, h2);
	assert_true(nc_lease_room(nc_now() + 11, 10));
	assert_false(nc_lease_room(nc_now() + 9, 10));
}

static void
test_event_params(void **state)
{
	struct nc_event e = {
		.number_id = 42,
		.action = "repair",
		.after_agent_id = 7,
		.after_nickname = "Front desk",
		.provider_request_id = "req_1",
	};
	char *p[NC_EVENT_NPARAMS];

	assert_true(nc_event_params(&e, "host-a", p));
	assert_string_equal(p[0], "42");
	assert_string_equal(p[1], "repair");
	assert_null(p[2]);
	assert_string_equal(p[3], "7");
	assert_null(p[4]);
	assert_string_equal(p[5], "Front desk");
	assert_null(p[6]); /* token 0: the sync */
	assert_string_equal(p[7], "host-a");
	assert_string_equal(p[8], "req_1");
	assert_null(p[9]);
	nc_event_params_free(p);
	for (int i = 0; i < NC_EVENT_NPARAMS; i++)
		assert_null(p[i]);
	assert_non_null(strstr(nc_event_sql, "number_event_add($1::bigint"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_key_lengths),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_lease_bounds),
		cmocka_unit_test(test_event_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
