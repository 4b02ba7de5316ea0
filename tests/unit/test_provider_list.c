/* test_provider_list.c: the providers' list requests and pages (the provider sync's input). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "provider_api.h"

#define LIT(s) s, sizeof(s) - 1

static const struct papi_ctx ctx = { .api_key = "key_test_123", .slug = "acme" };

static json_t *
item(json_t *a, size_t i)
{
	json_t *o = json_array_get(a, i);

	assert_non_null(o);
	return o;
}

static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void
test_retell_list(void **state)
{
	const struct provider_api *a = &provider_api_retell;
	struct papi_request r;
	char err[256], next[256];
	json_t *into = json_array();

	assert_true(a->list_numbers(&ctx, NULL, &r, err, sizeof(err)));
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/v2/list-phone-numbers");
	assert_string_equal(r.auth_value, "Bearer key_test_123");
	assert_true(a->list_numbers(&ctx, "+14155550100", &r, err, sizeof(err)));
	assert_string_equal(r.path, "/v2/list-phone-numbers?pagination_key=%2B14155550100");
	assert_true(a->parse_numbers(
		LIT("{\"items\": [{\"phone_number\": \"+14155550101\", \"inbound_webhook_url\": "
		    "\"https://x/y\", \"inbound_agents\": [{\"agent_id\": \"ag_1\", \"weight\": 1}],"
		    " \"nickname\": \"front\"}, {\"phone_number\": \"+14155550102\"}],"
		    " \"has_more\": true, \"pagination_key\": \"+14155550102\"}"),
		into, next, sizeof(next), err, sizeof(err)));
	assert_string_equal(next, "+14155550102");
	assert_int_equal(json_array_size(into), 2);
	assert_string_equal(str(item(into, 0), "e164"), "+14155550101");
	assert_string_equal(str(item(into, 0), "id"), "+14155550101");
	assert_string_equal(str(item(into, 0), "webhook"), "https://x/y");
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(item(into, 0), "agents"), 0)),
		"ag_1");
	assert_int_equal(json_array_size(json_object_get(item(into, 1), "agents")), 0);
	assert_true(json_is_null(json_object_get(item(into, 1), "webhook")));
	/* has_more without a key is refused: the walk could not go on */
	assert_false(a->parse_numbers(LIT("{\"items\": [], \"has_more\": true}"), into, next,
		sizeof(next), err, sizeof(err)));
	assert_false(a->parse_numbers(LIT("[]"), into, next, sizeof(next), err, sizeof(err)));
	json_decref(into);

	/* agents: POST /v2/list-agents, voice agents, {items, has_more, pagination_key} */
	into = json_array();
	assert_true(a->list_agents(&ctx, "ag_9", &r, err, sizeof(err)));
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.path, "/v2/list-agents?pagination_key=ag_9");
	assert_non_null(r.body);
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(r.body, "filter_criteria"), "channel"),
			"value")),
		"voice");
	papi_request_clear(&r);
	assert_true(a->parse_agents(
		LIT("{\"items\": [{\"agent_id\": \"ag_1\", \"agent_name\": \"A\", \"channel\": "
		    "\"voice\"}, {\"agent_id\": \"ag_1\"}, {\"agent_id\": \"ag_2\"}], "
		    "\"has_more\": false}"),
		into, next, sizeof(next), err, sizeof(err)));
	assert_string_equal(next, "");
	assert_int_equal(json_array_size(into), 2);
	assert_string_equal(str(item(into, 0), "name"), "A");
	assert_true(json_is_null(json_object_get(item(into, 1), "name")));
	assert_false(a->parse_agents(LIT("[]"), into, next, sizeof(next), err, sizeof(err)));
	json_decref(into);
}

static void
test_vapi_list(void **state)
{
	const struct provider_api *a = &provider_api_vapi;
	struct papi_request r;
	char err[256], next[256], page[100 * 160 + 64];
	json_t *into = json_array();
	size_t o = 0;

	assert_true(a->list_numbers(&ctx, "Le:2026-01-01T00:00:00.000Z", &r, err, sizeof(err)));
	assert_string_equal(r.path,
		"/phone-number?limit=100&createdAtLe=2026-01-01T00%3A00%3A00.000Z");
	assert_true(a->list_agents(&ctx, NULL, &r, err, sizeof(err)));
	assert_string_equal(r.path, "/assistant?limit=100");
	assert_true(a->parse_numbers(
		LIT("[{\"id\": \"n1\", \"number\": \"+14155550201\", \"createdAt\": \"t2\", "
		    "\"assistantId\": \"asst_1\", \"server\": {\"url\": \"https://x\", "
		    "\"credentialId\": \"cred_1\"}, \"name\": \"Main\"},"
		    " {\"id\": \"n2\", \"status\": \"activating\", \"createdAt\": \"t1\"}]"),
		into, next, sizeof(next), err, sizeof(err)));
	assert_string_equal(next, ""); /* a short page */
	assert_string_equal(str(item(into, 0), "owner"), "assistantId");
	assert_string_equal(str(item(into, 0), "credential"), "cred_1");
	assert_string_equal(str(item(into, 0), "webhook"), "https://x");
	assert_true(json_is_null(json_object_get(item(into, 1), "e164")));
	assert_string_equal(str(item(into, 1), "id"), "n2");
	json_decref(into);

	/* a full page: the next starts at its last createdAt; ids seen are not added twice */
	o += (size_t)snprintf(page + o, sizeof(page) - o, "[");
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(page + o, sizeof(page) - o,
			"%s{\"id\": \"a%d\", \"name\": \"x\", \"createdAt\": \"t%03d\"}",
			i ? "," : "", i, 999 - i);
	snprintf(page + o, sizeof(page) - o, "]");
	into = json_array();
	assert_true(
		a->parse_agents(page, strlen(page), into, next, sizeof(next), err, sizeof(err)));
	assert_string_equal(next, "Le:t900");
	assert_int_equal(json_array_size(into), 100);
	assert_true(
		a->parse_agents(page, strlen(page), into, next, sizeof(next), err, sizeof(err)));
	assert_string_equal(next, ""); /* nothing new: the walk ends */
	assert_int_equal(json_array_size(into), 100);
	json_decref(into);
	/* oldest first: the next page is from the newest on */
	o = (size_t)snprintf(page, sizeof(page), "[");
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(page + o, sizeof(page) - o,
			"%s{\"id\": \"b%d\", \"createdAt\": \"t%03d\"}", i ? "," : "", i, i);
	snprintf(page + o, sizeof(page) - o, "]");
	into = json_array();
	assert_true(
		a->parse_agents(page, strlen(page), into, next, sizeof(next), err, sizeof(err)));
	assert_string_equal(next, "Ge:t099");
	assert_true(a->list_agents(&ctx, next, &r, err, sizeof(err)));
	assert_string_equal(r.path, "/assistant?limit=100&createdAtGe=t099");
	assert_false(a->list_agents(&ctx, "t099", &r, err, sizeof(err)));
	json_decref(into);
}

static void
test_bland_list(void **state)
{
	const struct provider_api *a = &provider_api_bland;
	struct papi_request r;
	char err[256], next[256];
	json_t *into = json_array();

	assert_true(a->list_numbers(&ctx, NULL, &r, err, sizeof(err)));
	assert_string_equal(r.path, "/v1/inbound");
	assert_string_equal(r.auth_name, "authorization");
	assert_string_equal(r.auth_value, "key_test_123");
	assert_true(a->list_agents(&ctx, NULL, &r, err, sizeof(err)));
	assert_string_equal(r.path, "/v1/pathway");
	assert_true(a->parse_numbers(
		LIT("{\"inbound_numbers\": [{\"phone_number\": \"+14155550301\", \"pathway_id\": "
		    "\"pw_1\", \"webhook\": \"https://x\"}, {\"phone_number\": \"+14155550302\", "
		    "\"pathway_id\": null}]}"),
		into, next, sizeof(next), err, sizeof(err)));
	assert_int_equal(json_array_size(into), 2);
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(item(into, 0), "agents"), 0)),
		"pw_1");
	assert_int_equal(json_array_size(json_object_get(item(into, 1), "agents")), 0);
	assert_false(a->parse_numbers(LIT("{\"status\": \"error\", \"message\": \"no\"}"), into,
		next, sizeof(next), err, sizeof(err)));
	json_decref(into);
	into = json_array();
	assert_true(a->parse_agents(LIT("[{\"id\": \"pw_1\", \"name\": \"Intake\"}]"), into, next,
		sizeof(next), err, sizeof(err)));
	assert_string_equal(str(item(into, 0), "name"), "Intake");
	assert_false(a->parse_agents(LIT("{\"status\": \"error\", \"message\": \"no\"}"), into,
		next, sizeof(next), err, sizeof(err)));
	json_decref(into);
}

/* Every parser over answers of the wrong shape: refused or skipped, never a crash, and a
 * number or agent is only ever listed with a usable id. */
static void
test_list_garbage(void **state)
{
	static const char *const bodies[] = {
		"",
		"not json",
		"null",
		"[]",
		"{}",
		"[1, \"x\", null, {}, []]",
		"{\"items\": 5}",
		"{\"items\": [1, null, {\"phone_number\": 5}]}",
		"{\"items\": [], \"has_more\": true, \"pagination_key\": 7}",
		"{\"inbound_numbers\": [{\"phone_number\": \"+1415555\\u0001\"}]}",
		"{\"inbound_numbers\": {\"a\": 1}}",
		"[{\"id\": \"a\\u0000b\"}]",
		"[{\"id\": 12, \"name\": [1]}]",
		"[{\"id\": \"n1\", \"number\": \"12\", \"server\": 3, \"assistantId\": 4}]",
		"{\"items\": [{\"agent_id\": \"\"}, {\"agent_id\": \"ok\", \"agent_name\": 3}]}",
	};
	const struct provider_api *apis[] = { &provider_api_retell, &provider_api_vapi,
		&provider_api_bland };
	char err[256], next[64];

	for (size_t a = 0; a < sizeof(apis) / sizeof(apis[0]); a++)
		for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++)
			for (int agents = 0; agents < 2; agents++) {
				json_t *into = json_array(), *o;
				size_t i;
				bool ok = agents ? apis[a]->parse_agents(bodies[b],
							   strlen(bodies[b]), into, next,
							   sizeof(next), err, sizeof(err)) :
						   apis[a]->parse_numbers(bodies[b],
							   strlen(bodies[b]), into, next,
							   sizeof(next), err, sizeof(err));

				if (!ok)
					assert_true(err[0] != '\0');
				json_array_foreach(into, i, o)
				{
					json_t *id = json_object_get(o, "id");

					assert_true(
						json_is_string(id) && json_string_length(id) > 0);
				}
				json_decref(into);
			}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retell_list),
		cmocka_unit_test(test_vapi_list),
		cmocka_unit_test(test_bland_list),
		cmocka_unit_test(test_list_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
