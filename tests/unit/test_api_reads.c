/* test_api_reads.c: the admin API reads' parameters; outbound call context limits, placement. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api_reads.h"
#include "provider_api.h"

static bool
param(const struct api_read *rd, struct api_read_args *a, const char *k, const char *v, char *err)
{
	return api_read_param(rd, a, k, v, err, 400);
}

static void
test_unknown_and_bad_params(void **state)
{
	struct api_read_args a;
	char err[400];

	api_read_args_init(&a);
	assert_false(param(&api_read_agents, &a, "bogus", "1", err));
	assert_non_null(strstr(err, "\"bogus\""));
	assert_non_null(strstr(err, "client, provider, name, limit, after"));
	assert_false(param(&api_read_call, &a, "x", "1", err));
	assert_non_null(strstr(err, "takes none"));
	assert_false(param(&api_read_agents, &a, "limit", "0", err));
	assert_non_null(strstr(err, "\"limit\": 1 to 500"));
	assert_false(param(&api_read_agents, &a, "limit", "501", err));
	assert_false(param(&api_read_agents, &a, "client", "-1", err));
	assert_false(param(&api_read_agents, &a, "client", "1x", err));
	assert_false(param(&api_read_agents, &a, "provider", "twilio", err));
	assert_non_null(strstr(err, "one of retell, vapi, bland"));
	assert_false(param(&api_read_agents, &a, "name", "", err));
	assert_true(param(&api_read_agents, &a, "limit", "500", err));
	assert_int_equal(a.limit, 500);
	assert_true(param(&api_read_agents, &a, "after", "7", err));
	assert_int_equal(a.after, 7);
	assert_true(param(&api_read_agents, &a, "name", "Front Desk", err));
	assert_string_equal(a.value[2], "Front Desk");
	api_read_args_clear(&a);
}

static void
test_times_and_dates(void **state)
{
	static const char *const good[] = { "2026-11-01", "2024-02-29", "2026-11-01T00:00:00Z",
		"2026-12-31T23:59:59.123456Z", "2026-01-01T10:00:00.5Z" };
	static const char *const bad[] = { "2026-02-29", "2026-13-01", "2026-11-31", "2026-11-1",
		"1969-12-31", "2026-11-01T24:00:00Z", "2026-11-01T10:60:00Z", "2026-11-01T10:00:00",
		"2026-11-01T10:00:00+01:00", "2026-11-01T10:00:00.1234567Z",
		"2026-11-01T10:00:00.Z", "2026-11-01 10:00:00Z", "yesterday", "" };
	struct api_read_args a;
	char err[400];

	api_read_args_init(&a);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!param(&api_read_calls, &a, "since", good[i], err))
			fail_msg("since=%s refused: %s", good[i], err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (param(&api_read_calls, &a, "until", bad[i], err))
			fail_msg("until=%s taken", bad[i]);
	assert_true(param(&api_read_usage, &a, "from", "2026-11-01", err));
	assert_false(param(&api_read_usage, &a, "to", "2026-11-01T00:00:00Z", err));
	assert_false(param(&api_read_usage, &a, "by", "week", err));
	assert_true(param(&api_read_usage, &a, "by", "day", err));
	api_read_args_clear(&a);
}

/* The SQL parameters: $1 agency, $2 portal client, $3 limit, $4 after, then the read's own. */
static void
test_query_params(void **state)
{
	const char *params[API_READ_MAX_PARAMS], *sql;
	struct api_read_args a;
	char err[400];
	int n;

	api_read_args_init(&a);
	a.agency_id = 3;
	assert_true(param(&api_read_calls, &a, "status", "ended", err));
	assert_true(param(&api_read_calls, &a, "until", "2026-11-03", err));
	assert_true(param(&api_read_calls, &a, "limit", "2", err));
	n = api_read_query(&api_read_calls, &a, &sql, params);
	assert_int_equal(n, 13);
	assert_string_equal(params[0], "3");
	assert_null(params[1]);
	assert_string_equal(params[2], "2");
	assert_string_equal(params[3], "0");
	assert_null(params[4]);
	assert_string_equal(params[8], "ended");
	assert_string_equal(params[11], "2026-11-03");
	assert_null(params[12]);
	assert_non_null(strstr(sql, "$13"));
	assert_null(strstr(sql, "$14"));
	api_read_args_clear(&a);

	/* a show: $3 the id; a portal token: $2 */
	api_read_args_init(&a);
	a.agency_id = 3;
	a.client_id = 9;
	a.id = 42;
	n = api_read_query(&api_read_call, &a, &sql, params);
	assert_int_equal(n, 3);
	assert_string_equal(params[1], "9");
	assert_string_equal(params[2], "42");

	/* usage: by chooses the SQL; $3, $4 the dates */
	assert_true(param(&api_read_usage, &a, "by", "number", err));
	assert_true(param(&api_read_usage, &a, "to", "2026-11-30", err));
	n = api_read_query(&api_read_usage, &a, &sql, params);
	assert_int_equal(n, 4);
	assert_null(params[2]);
	assert_string_equal(params[3], "2026-11-30");
	assert_non_null(strstr(sql, "phone_numbers n ON n.id = l.number_id"));
	api_read_args_clear(&a);
}

static json_t *
parse(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);

	assert_non_null(j);
	return j;
}

static void
expect_context(const char *vars, const char *meta, bool ok, const char *words)
{
	json_t *v = vars ? parse(vars) : NULL, *m = meta ? parse(meta) : NULL;
	char err[256] = "";

	if (papi_check_call_context(v, m, err, sizeof(err)) != ok)
		fail_msg("%s / %s: %s", vars ? vars : "-", meta ? meta : "-", err);
	if (words && !strstr(err, words))
		fail_msg("\"%s\" lacks \"%s\"", err, words);
	json_decref(v);
	json_decref(m);
}

static void
test_context_limits(void **state)
{
	char big[PAPI_CONTEXT_BYTES_MAX + 64];

	expect_context("{\"name\":\"Ana\",\"_x9\":\"\"}", "{\"a.b-c\":{\"d\":[1,2]}}", true, NULL);
	expect_context(NULL, NULL, true, NULL);
	expect_context("{\"n\":1}", NULL, false, "variables.n: a string");
	expect_context("{\"9a\":\"x\"}", NULL, false, "digit");
	expect_context("{\"a-b\":\"x\"}", NULL, false, "a key is 1 to 64");
	expect_context(NULL, "{\"a b\":1}", false, "metadata: a key");
	snprintf(big, sizeof(big), "{\"k\":\"%01025d\"}", 0);
	expect_context(big, NULL, false, "variables.k: at most 1024 bytes");
	snprintf(big, sizeof(big), "{\"k\":\"%01024d\"}", 0);
	expect_context(big, NULL, true, NULL);
	snprintf(big, sizeof(big), "{\"k\":\"%08190d\"}", 0);
	expect_context(NULL, big, false, "at most 8192 bytes");
	{
		json_t *o = json_object();
		char key[16];

		for (int i = 0; i <= PAPI_VARS_MAX; i++) {
			snprintf(key, sizeof(key), "k%d", i);
			json_object_set_new(o, key, json_string("v"));
		}
		assert_false(papi_check_call_context(o, NULL, big, sizeof(big)));
		assert_non_null(strstr(big, "at most 32 keys"));
		json_decref(o);
	}
}

/* Each provider's body gets them where its API takes them. */
static void
test_context_placement(void **state)
{
	static const struct {
		const struct provider_api *pa;
		const char *want;
	} cases[] = {
		{ &provider_api_retell,
			"{\"x\":1,\"retell_llm_dynamic_variables\":{\"n\":\"A\"},\"metadata\":{\"m\":1}}" },
		{ &provider_api_vapi,
			"{\"x\":1,\"assistantOverrides\":{\"variableValues\":{\"n\":\"A\"},"
			"\"metadata\":{\"m\":1}}}" },
		{ &provider_api_bland,
			"{\"x\":1,\"request_data\":{\"n\":\"A\"},\"metadata\":{\"m\":1}}" },
	};
	char err[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *body = parse("{\"x\":1}"), *v = parse("{\"n\":\"A\"}"),
		       *m = parse("{\"m\":1}");
		json_t *want = parse(cases[i].want), *none = parse("{\"x\":1}");

		assert_true(cases[i].pa->call_context(body, v, m, err, sizeof(err)));
		assert_true(json_equal(body, want));
		json_decref(body);
		body = parse("{\"x\":1}");
		assert_true(cases[i].pa->call_context(body, NULL, NULL, err, sizeof(err)));
		assert_true(json_equal(body, none));
		json_decref(body);
		json_decref(v);
		json_decref(m);
		json_decref(want);
		json_decref(none);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_and_bad_params),
		cmocka_unit_test(test_times_and_dates),
		cmocka_unit_test(test_query_params),
		cmocka_unit_test(test_context_limits),
		cmocka_unit_test(test_context_placement),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
