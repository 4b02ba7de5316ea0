/* test_provider_api.c: the providers' number and call requests, answers and errors. */
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

/* a string literal and its length */
#define LIT(s) s, sizeof(s) - 1

#define WEBHOOK "https://hooks.example.com/v1/webhooks/bland/acme"
/* HMAC-SHA256("bland-test-secret", "callrouted-dynamic-data:acme"), as in test_signature.c. */
#define BLAND_DYN_ACME "57dee7cecbef6582d99a67dbadddb096b9646cda72034479f5b363aae8b3c6d9"

static const struct papi_ctx ctx = {
	.api_key = "key_test_123",
	.webhook_url = WEBHOOK,
	.webhook_secret = "bland-test-secret",
	.slug = "acme",
};

/* r is the request want describes; body_json NULL: no body. */
static void
assert_request(const struct papi_request *r, const char *method, const char *path,
	const char *auth_name, const char *auth_value, const char *body_json)
{
	json_error_t je;
	json_t *want;

	assert_non_null(r->method);
	assert_string_equal(r->method, method);
	assert_string_equal(r->path, path);
	assert_string_equal(r->auth_name, auth_name);
	assert_string_equal(r->auth_value, auth_value);
	if (body_json == NULL) {
		assert_null(r->body);
		return;
	}
	want = json_loads(body_json, 0, &je);
	if (want == NULL)
		fail_msg("expected body does not parse: %s", je.text);
	assert_non_null(r->body);
	if (!json_equal(want, r->body)) {
		char *got = json_dumps(r->body, JSON_SORT_KEYS);

		print_error("got  %s\nwant %s\n", got, body_json);
		free(got);
		json_decref(want);
		fail();
	}
	json_decref(want);
}

/* A failed builder leaves no body and no secret behind, and says why. */
static void
assert_refused(bool ok, const struct papi_request *r, const char *err, const char *want_err)
{
	assert_false(ok);
	assert_null(r->body);
	assert_string_equal(r->auth_value, "");
	if (strstr(err, want_err) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want_err);
}

#define VAPI_ID "7f5c1e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
/* GET /phone-number/{id} as Vapi answers it for a number we bought (no credential yet) */
#define VAPI_GOT                                                                                   \
	"{\"id\": \"" VAPI_ID "\", \"orgId\": \"org_1\", \"provider\": \"vapi\","                  \
	" \"number\": \"+14155550123\", \"status\": \"active\", \"name\": \"Front desk\","         \
	" \"server\": {\"url\": \"https://old.example.com/hook\"}}"

/* The agent change assign used to be: step 0 (Vapi: the GET, then step 1 on VAPI_GOT). */
static bool
assign(const struct provider_api *a, const struct papi_ctx *c, const char *e164, const char *nid,
	const char *agent, struct papi_request *r, char *err, size_t errlen)
{
	struct papi_change ch = { .agent = true, .agent_id = agent };
	bool last = false;

	if (!a->update(c, e164, nid, &ch, 0, NULL, 0, r, &last, err, errlen))
		return false;
	if (a != &provider_api_vapi)
		return true;
	assert_false(last);
	assert_string_equal(r->method, "GET");
	assert_null(r->body);
	papi_request_clear(r);
	if (!a->update(c, e164, nid, &ch, 1, LIT(VAPI_GOT), r, &last, err, errlen))
		return false;
	assert_true(last);
	return true;
}

/* ---- the table, papi_path_escape ---- */

static void
test_get(void **state)
{
	assert_ptr_equal(provider_api_get(PROVIDER_RETELL), &provider_api_retell);
	assert_ptr_equal(provider_api_get(PROVIDER_VAPI), &provider_api_vapi);
	assert_ptr_equal(provider_api_get(PROVIDER_BLAND), &provider_api_bland);
	assert_null(provider_api_get(PROVIDER_COUNT));
	assert_int_equal(provider_api_retell.provider, PROVIDER_RETELL);
	assert_int_equal(provider_api_vapi.provider, PROVIDER_VAPI);
	assert_int_equal(provider_api_bland.provider, PROVIDER_BLAND);
	assert_string_equal(provider_api_retell.default_base_url, "https://api.retellai.com");
	assert_string_equal(provider_api_vapi.default_base_url, "https://api.vapi.ai");
	assert_string_equal(provider_api_bland.default_base_url, "https://api.bland.ai");
}

static void
test_path_escape(void **state)
{
	char out[64], small[4];

	assert_true(papi_path_escape("+14155550123", out, sizeof(out)));
	assert_string_equal(out, "%2B14155550123");
	assert_true(papi_path_escape("AZaz09-._~", out, sizeof(out)));
	assert_string_equal(out, "AZaz09-._~");
	assert_true(papi_path_escape("a b/c?d#e%f&g=h", out, sizeof(out)));
	assert_string_equal(out, "a%20b%2Fc%3Fd%23e%25f%26g%3Dh");
	assert_true(papi_path_escape("\xc3\xa9\x01\x7f", out, sizeof(out)));
	assert_string_equal(out, "%C3%A9%01%7F");
	assert_true(papi_path_escape("", out, sizeof(out)));
	assert_string_equal(out, "");
	/* exact fit, one short */
	assert_true(papi_path_escape("abc", small, sizeof(small)));
	assert_string_equal(small, "abc");
	assert_false(papi_path_escape("abcd", small, sizeof(small)));
	assert_string_equal(small, "");
	assert_true(papi_path_escape("+", small, sizeof(small)));
	assert_string_equal(small, "%2B");
	assert_false(papi_path_escape("a+", small, sizeof(small)));
	assert_string_equal(small, "");
	assert_false(papi_path_escape(NULL, out, sizeof(out)));
	assert_false(papi_path_escape("a", out, 0));
}

static void
test_request_clear(void **state)
{
	struct papi_request r = { .body = json_object() };

	papi_request_clear(&r);
	assert_null(r.body);
	papi_request_clear(&r);
	papi_request_clear(NULL);
}

/* ---- Retell ---- */

#define RETELL_AUTH "Authorization", "Bearer key_test_123"

static void
test_retell_requests(void **state)
{
	const struct provider_api *a = &provider_api_retell;
	struct papi_request r;
	char err[256] = "";
	bool unbind = true;

	assert_true(a->purchase(&ctx, "415", "Front desk", &r, err, sizeof(err)));
	assert_request(&r, "POST", "/create-phone-number", RETELL_AUTH,
		"{\"area_code\": 415, \"inbound_webhook_url\": \"" WEBHOOK "\","
		" \"nickname\": \"Front desk\"}");
	papi_request_clear(&r);

	assert_true(a->purchase(&ctx, "212", NULL, &r, err, sizeof(err)));
	assert_request(&r, "POST", "/create-phone-number", RETELL_AUTH,
		"{\"area_code\": 212, \"inbound_webhook_url\": \"" WEBHOOK "\"}");
	papi_request_clear(&r);

	assert_true(a->purchase(&ctx, "212", "", &r, err, sizeof(err)));
	assert_request(&r, "POST", "/create-phone-number", RETELL_AUTH,
		"{\"area_code\": 212, \"inbound_webhook_url\": \"" WEBHOOK "\"}");
	papi_request_clear(&r);

	assert_true(
		assign(a, &ctx, "+14155550123", "+14155550123", "agent_abc", &r, err, sizeof(err)));
	assert_request(&r, "PATCH", "/update-phone-number/%2B14155550123", RETELL_AUTH,
		"{\"inbound_agents\": [{\"agent_id\": \"agent_abc\", \"weight\": 1}],"
		" \"inbound_webhook_url\": \"" WEBHOOK "\"}");
	papi_request_clear(&r);

	/* unassign; the number is normalised */
	assert_true(assign(a, &ctx, "+1 (415) 555-0123", NULL, NULL, &r, err, sizeof(err)));
	assert_request(&r, "PATCH", "/update-phone-number/%2B14155550123", RETELL_AUTH,
		"{\"inbound_agents\": [], \"inbound_webhook_url\": \"" WEBHOOK "\"}");
	papi_request_clear(&r);

	assert_true(
		a->release(&ctx, "+14155550123", "+14155550123", &r, &unbind, err, sizeof(err)));
	assert_false(unbind);
	assert_request(&r, "DELETE", "/delete-phone-number/%2B14155550123", RETELL_AUTH, NULL);
	papi_request_clear(&r);

	assert_true(a->call(&ctx, "+14155550123", "+14155550123", "+12125550199", "agent_abc", &r,
		err, sizeof(err)));
	assert_request(&r, "POST", "/v2/create-phone-call", RETELL_AUTH,
		"{\"from_number\": \"+14155550123\", \"to_number\": \"+12125550199\","
		" \"override_agent_id\": \"agent_abc\"}");
	papi_request_clear(&r);
}

static void
test_retell_parse(void **state)
{
	const struct provider_api *a = &provider_api_retell;
	static const char number[] =
		"{\"phone_number\": \"+14157774444\", \"phone_number_type\": \"retell-twilio\","
		" \"phone_number_pretty\": \"+1 (415) 777-4444\", \"area_code\": 415,"
		" \"inbound_agents\": [], \"outbound_agents\": [],"
		" \"inbound_webhook_url\": \"" WEBHOOK "\", \"nickname\": \"Front desk\","
		" \"last_modification_timestamp\": 1703413636133}";
	static const char call[] =
		"{\"call_type\": \"phone_call\", \"from_number\": \"+14157774444\","
		" \"to_number\": \"+12137774445\", \"direction\": \"outbound\","
		" \"call_id\": \"Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6\", \"agent_id\": \"agent_abc\","
		" \"agent_version\": 1, \"call_status\": \"registered\", \"metadata\": {}}";
	struct papi_number n;
	struct papi_call c;
	char err[256];

	assert_true(a->parse_number(number, strlen(number), &n, err, sizeof(err)));
	assert_string_equal(n.e164, "+14157774444");
	assert_string_equal(n.provider_number_id, "+14157774444");

	assert_true(a->parse_call(call, strlen(call), &c, err, sizeof(err)));
	assert_string_equal(c.call_id, "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6");

	assert_false(
		a->parse_number(LIT("{\"phone_number\": \"4157774444\"}"), &n, err, sizeof(err)));
	assert_non_null(strstr(err, "not an E.164 number"));
	assert_string_equal(n.e164, "");
	assert_false(a->parse_number(LIT("{\"nickname\": \"x\"}"), &n, err, sizeof(err)));
	assert_non_null(strstr(err, "\"phone_number\""));
	assert_false(a->parse_call(LIT("{\"call_id\": \"\"}"), &c, err, sizeof(err)));
	assert_non_null(strstr(err, "empty"));
	assert_false(a->parse_call(LIT("{\"call_id\": 42}"), &c, err, sizeof(err)));
	assert_non_null(strstr(err, "\"call_id\""));
}

static void
test_retell_error_message(void **state)
{
	const struct provider_api *a = &provider_api_retell;
	char out[128];

#define RETELL_ERR(body, want)                                                                     \
	do {                                                                                       \
		a->error_message(body, strlen(body), out, sizeof(out));                            \
		assert_string_equal(out, want);                                                    \
	} while (0)
	RETELL_ERR("{\"message\": \"Phone number not found\"}", "Phone number not found");
	RETELL_ERR("{\"error_message\": \"Invalid area code\"}", "Invalid area code");
	RETELL_ERR("{\"error\": \"Unauthorized\"}", "Unauthorized");
	RETELL_ERR("{\"message\": 3, \"error_message\": \"second\", \"error\": \"third\"}",
		"second");
	RETELL_ERR("{\"status\": 404}", "");
	RETELL_ERR("<html>Bad Gateway</html>", "");
	RETELL_ERR("[\"x\"]", "");
	RETELL_ERR("{\"message\": \"line\\nbreak\"}", "line break");
#undef RETELL_ERR
	a->error_message(NULL, 0, out, sizeof(out));
	assert_string_equal(out, "");
}

/* ---- Vapi ---- */

#define VAPI_AUTH "Authorization", "Bearer key_test_123"

static void
test_vapi_requests(void **state)
{
	const struct provider_api *a = &provider_api_vapi;
	struct papi_request r;
	char err[256] = "";
	bool unbind = true;

	assert_true(a->purchase(&ctx, "415", "Front desk", &r, err, sizeof(err)));
	assert_request(&r, "POST", "/phone-number", VAPI_AUTH,
		"{\"provider\": \"vapi\", \"numberDesiredAreaCode\": \"415\","
		" \"name\": \"Front desk\", \"server\": {\"url\": \"" WEBHOOK "\"}}");
	papi_request_clear(&r);

	assert_true(a->purchase(&ctx, "415", NULL, &r, err, sizeof(err)));
	assert_request(&r, "POST", "/phone-number", VAPI_AUTH,
		"{\"provider\": \"vapi\", \"numberDesiredAreaCode\": \"415\","
		" \"server\": {\"url\": \"" WEBHOOK "\"}}");
	papi_request_clear(&r);

	/* assign: the provider discriminator, the server with our url; no null anywhere */
	assert_true(assign(a, &ctx, "+14155550123", VAPI_ID, "asst_5c2b", &r, err, sizeof(err)));
	assert_request(&r, "PATCH", "/phone-number/" VAPI_ID, VAPI_AUTH,
		"{\"provider\": \"vapi\", \"server\": {\"url\": \"" WEBHOOK "\"}}");
	papi_request_clear(&r);

	/* unassign: the same; the id is escaped */
	assert_true(assign(a, &ctx, NULL, "pn/1 2", NULL, &r, err, sizeof(err)));
	assert_request(&r, "PATCH", "/phone-number/pn%2F1%202", VAPI_AUTH,
		"{\"provider\": \"vapi\", \"server\": {\"url\": \"" WEBHOOK "\"}}");
	papi_request_clear(&r);

	assert_true(a->release(&ctx, "+14155550123", VAPI_ID, &r, &unbind, err, sizeof(err)));
	assert_false(unbind);
	assert_request(&r, "DELETE", "/phone-number/" VAPI_ID, VAPI_AUTH, NULL);
	papi_request_clear(&r);

	assert_true(a->call(&ctx, "+14155550123", VAPI_ID, "+12125550199", "asst_5c2b", &r, err,
		sizeof(err)));
	assert_request(&r, "POST", "/call", VAPI_AUTH,
		"{\"phoneNumberId\": \"" VAPI_ID "\", \"customer\": {\"number\": \"+12125550199\"},"
		" \"assistantId\": \"asst_5c2b\"}");
	papi_request_clear(&r);
}

#define CRED_CTX(name)                                                                             \
	struct papi_ctx name = ctx;                                                                \
	name.webhook_credential_id = "cred-abc_1"

/* Every create and update names the account's credential; an update keeps what it does not own. */
static void
test_vapi_credential_and_merge(void **state)
{
	const struct provider_api *a = &provider_api_vapi;
	struct papi_change ch = { .agent = true, .agent_id = "asst_5c2b" };
	struct papi_request r;
	char err[256] = "";
	bool last = true;
	CRED_CTX(c);

	assert_true(a->purchase(&c, "415", NULL, &r, err, sizeof(err)));
	assert_request(&r, "POST", "/phone-number", VAPI_AUTH,
		"{\"provider\": \"vapi\", \"numberDesiredAreaCode\": \"415\","
		" \"server\": {\"url\": \"" WEBHOOK "\", \"credentialId\": \"cred-abc_1\"}}");
	papi_request_clear(&r);

	assert_true(assign(a, &c, NULL, VAPI_ID, "asst_5c2b", &r, err, sizeof(err)));
	assert_request(&r, "PATCH", "/phone-number/" VAPI_ID, VAPI_AUTH,
		"{\"provider\": \"vapi\","
		" \"server\": {\"url\": \"" WEBHOOK "\", \"credentialId\": \"cred-abc_1\"}}");
	papi_request_clear(&r);

	/* the operator's server settings survive; our url and credential replace theirs */
	assert_true(a->update(&c, NULL, VAPI_ID, &ch, 1,
		LIT("{\"provider\": \"twilio\", \"server\": {\"url\": \"https://x\","
		    " \"credentialId\": \"cred-old\", \"timeoutSeconds\": 12,"
		    " \"headers\": {\"x-a\": \"b\"}}, \"name\": \"keep\", \"fallbackDestination\":"
		    " {\"type\": \"number\", \"number\": \"+14155550100\"}}"),
		&r, &last, err, sizeof(err)));
	assert_true(last);
	assert_request(&r, "PATCH", "/phone-number/" VAPI_ID, VAPI_AUTH,
		"{\"provider\": \"twilio\", \"server\": {\"url\": \"" WEBHOOK "\","
		" \"credentialId\": \"cred-abc_1\", \"timeoutSeconds\": 12,"
		" \"headers\": {\"x-a\": \"b\"}}}");
	papi_request_clear(&r);

	/* no credential configured: one attached in the dashboard is kept */
	assert_true(a->update(&ctx, NULL, VAPI_ID, &ch, 1,
		LIT("{\"provider\": \"vapi\", \"server\": {\"url\": \"https://x\","
		    " \"credentialId\": \"cred-dash\"}}"),
		&r, &last, err, sizeof(err)));
	assert_request(&r, "PATCH", "/phone-number/" VAPI_ID, VAPI_AUTH,
		"{\"provider\": \"vapi\","
		" \"server\": {\"url\": \"" WEBHOOK "\", \"credentialId\": \"cred-dash\"}}");
	papi_request_clear(&r);

	/* an assistant, squad or workflow of the number's own: refused, naming it (never null) */
	assert_refused(a->update(&c, NULL, VAPI_ID, &ch, 1,
			       LIT("{\"provider\": \"vapi\", \"assistantId\": \"asst_dash\"}"), &r,
			       &last, err, sizeof(err)),
		&r, err, "its own assistantId");
	assert_refused(a->update(&c, NULL, VAPI_ID, &ch, 1,
			       LIT("{\"provider\": \"vapi\", \"workflowId\": \"wf_1\"}"), &r, &last,
			       err, sizeof(err)),
		&r, err, "its own workflowId");
	/* null or absent ones are fine */
	assert_true(a->update(&c, NULL, VAPI_ID, &ch, 1,
		LIT("{\"provider\": \"vapi\", \"assistantId\": null, \"squadId\": null}"), &r,
		&last, err, sizeof(err)));
	papi_request_clear(&r);
	/* a read without the discriminator, or not an object */
	assert_refused(a->update(&c, NULL, VAPI_ID, &ch, 1, LIT("{\"id\": \"x\"}"), &r, &last, err,
			       sizeof(err)),
		&r, err, "no \"provider\"");
	assert_refused(a->update(&c, NULL, VAPI_ID, &ch, 1, LIT("[]"), &r, &last, err, sizeof(err)),
		&r, err, "not a JSON object");

	/* a bad credential id is refused before anything is sent */
	c.webhook_credential_id = "cred\nX";
	assert_refused(a->purchase(&c, "415", NULL, &r, err, sizeof(err)), &r, err,
		"webhook credential id must not contain control characters");
	assert_refused(a->update(&c, NULL, VAPI_ID, &ch, 0, NULL, 0, &r, &last, err, sizeof(err)),
		&r, err, "webhook credential id");
}

/* Renames: Retell nickname (null clears), Vapi name (40 at most, not cleared), Bland none. */
static void
test_renames(void **state)
{
	struct papi_change ch = { .name = true, .nickname = "After" };
	struct papi_request r;
	char err[256] = "";
	char n41[42];
	bool last = false;

	assert_true(provider_api_retell.update(&ctx, "+14155550123", NULL, &ch, 0, NULL, 0, &r,
		&last, err, sizeof(err)));
	assert_true(last);
	assert_request(&r, "PATCH", "/update-phone-number/%2B14155550123", RETELL_AUTH,
		"{\"nickname\": \"After\"}");
	papi_request_clear(&r);
	ch.nickname = NULL;
	assert_true(provider_api_retell.update(&ctx, "+14155550123", NULL, &ch, 0, NULL, 0, &r,
		&last, err, sizeof(err)));
	assert_request(&r, "PATCH", "/update-phone-number/%2B14155550123", RETELL_AUTH,
		"{\"nickname\": null}");
	papi_request_clear(&r);
	/* agent and name in one request */
	ch = (struct papi_change){ .agent = true,
		.agent_id = "agent_abc",
		.name = true,
		.nickname = "Both" };
	assert_true(provider_api_retell.update(&ctx, "+14155550123", NULL, &ch, 0, NULL, 0, &r,
		&last, err, sizeof(err)));
	assert_request(&r, "PATCH", "/update-phone-number/%2B14155550123", RETELL_AUTH,
		"{\"inbound_agents\": [{\"agent_id\": \"agent_abc\", \"weight\": 1}],"
		" \"inbound_webhook_url\": \"" WEBHOOK "\", \"nickname\": \"Both\"}");
	papi_request_clear(&r);

	/* Vapi: GET, then {provider, name} only (the server is left alone) */
	ch = (struct papi_change){ .name = true, .nickname = "After" };
	assert_true(provider_api_vapi.update(&ctx, NULL, VAPI_ID, &ch, 0, NULL, 0, &r, &last, err,
		sizeof(err)));
	assert_false(last);
	assert_request(&r, "GET", "/phone-number/" VAPI_ID, VAPI_AUTH, NULL);
	papi_request_clear(&r);
	assert_true(provider_api_vapi.update(&ctx, NULL, VAPI_ID, &ch, 1, LIT(VAPI_GOT), &r, &last,
		err, sizeof(err)));
	assert_true(last);
	assert_request(&r, "PATCH", "/phone-number/" VAPI_ID, VAPI_AUTH,
		"{\"provider\": \"vapi\", \"name\": \"After\"}");
	papi_request_clear(&r);
	/* clearing: Vapi's name is a string (no null): nothing is sent */
	ch.nickname = NULL;
	assert_true(provider_api_vapi.update(&ctx, NULL, VAPI_ID, &ch, 0, NULL, 0, &r, &last, err,
		sizeof(err)));
	assert_true(last);
	assert_null(r.method);
	/* 40 characters, counted as characters */
	memset(n41, 'n', 41);
	n41[41] = '\0';
	ch.nickname = n41;
	assert_refused(provider_api_vapi.update(&ctx, NULL, VAPI_ID, &ch, 0, NULL, 0, &r, &last,
			       err, sizeof(err)),
		&r, err, "at most 40 characters");
	assert_refused(provider_api_vapi.purchase(&ctx, "415", n41, &r, err, sizeof(err)), &r, err,
		"at most 40 characters for a vapi number (vapi's name field)");
	assert_false(papi_check_name(&provider_api_vapi, n41, err, sizeof(err)));
	n41[40] = '\0';
	assert_true(papi_check_name(&provider_api_vapi, n41, err, sizeof(err)));
	/* 20 two-byte characters are 20, not 40 */
	assert_true(papi_check_name(&provider_api_vapi,
		"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
		err, sizeof(err)));
	/* Retell documents no limit (ours, 64); Bland has no name: nothing to check or send */
	assert_true(papi_check_name(&provider_api_retell, n41, err, sizeof(err)));
	assert_true(papi_check_name(&provider_api_bland, n41, err, sizeof(err)));
	assert_true(papi_check_name(&provider_api_vapi, NULL, err, sizeof(err)));
	ch.nickname = "After";
	assert_true(provider_api_bland.update(&ctx, "+14155550123", NULL, &ch, 0, NULL, 0, &r,
		&last, err, sizeof(err)));
	assert_true(last);
	assert_null(r.method);
	assert_null(r.body);
}

static void
test_vapi_parse(void **state)
{
	const struct provider_api *a = &provider_api_vapi;
	static const char number[] =
		"{\"id\": \"" VAPI_ID "\", \"orgId\": \"org_1\", \"provider\": \"vapi\","
		" \"number\": \"+14155559876\", \"name\": \"Front desk\", \"status\": "
		"\"activating\","
		" \"numberDesiredAreaCode\": \"415\", \"server\": {\"url\": \"" WEBHOOK "\"},"
		" \"createdAt\": \"2026-05-02T00:00:00.000Z\","
		" \"updatedAt\": \"2026-05-02T00:00:00.000Z\"}";
	static const char no_number[] =
		"{\"id\": \"" VAPI_ID "\", \"provider\": \"vapi\", \"status\": \"activating\"}";
	static const char no_id[] = "{\"number\": \"+14155559876\", \"provider\": \"vapi\"}";
	static const char call[] =
		"{\"id\": \"c_7f3a\", \"orgId\": \"org_1\", \"type\": \"outboundPhoneCall\","
		" \"status\": \"queued\", \"phoneNumberId\": \"" VAPI_ID "\","
		" \"assistantId\": \"asst_5c2b\", \"customer\": {\"number\": \"+12125550199\"},"
		" \"createdAt\": \"2026-05-02T00:00:00.000Z\"}";
	struct papi_number n;
	struct papi_call c;
	char err[256];

	assert_true(a->parse_number(number, strlen(number), &n, err, sizeof(err)));
	assert_string_equal(n.e164, "+14155559876");
	assert_string_equal(n.provider_number_id, VAPI_ID);

	assert_false(a->parse_number(no_number, strlen(no_number), &n, err, sizeof(err)));
	assert_non_null(strstr(err, "\"number\""));
	assert_non_null(strstr(err, VAPI_ID));
	assert_non_null(strstr(err, "activating"));
	/* the id is kept: the purchase is recorded pending with it (migration 007) */
	assert_string_equal(n.provider_number_id, VAPI_ID);
	assert_string_equal(n.e164, "");

	assert_false(a->parse_number(no_id, strlen(no_id), &n, err, sizeof(err)));
	assert_non_null(strstr(err, "\"id\""));

	assert_true(a->parse_call(call, strlen(call), &c, err, sizeof(err)));
	assert_string_equal(c.call_id, "c_7f3a");
	assert_false(a->parse_call(LIT("{\"callId\": \"x\"}"), &c, err, sizeof(err)));
	assert_non_null(strstr(err, "\"id\""));
}

static void
test_vapi_error_message(void **state)
{
	const struct provider_api *a = &provider_api_vapi;
	char out[128], tiny[12];
	static const char two[] = "{\"message\": [\"customer.number must be a valid phone number "
				  "in the E.164 format\","
				  " \"assistantId must be a UUID\"], \"error\": \"Bad Request\", "
				  "\"statusCode\": 400}";

	a->error_message(two, strlen(two), out, sizeof(out));
	assert_string_equal(out, "customer.number must be a valid phone number in the E.164 "
				 "format; assistantId must be a UUID");
	a->error_message(LIT("{\"message\": \"Phone number not found\", \"error\": \"Not Found\"}"),
		out, sizeof(out));
	assert_string_equal(out, "Phone number not found");
	a->error_message(LIT("{\"error\": \"Unauthorized\", \"statusCode\": 401}"), out,
		sizeof(out));
	assert_string_equal(out, "Unauthorized");
	a->error_message(LIT("{\"message\": [], \"error\": \"Bad Request\"}"), out, sizeof(out));
	assert_string_equal(out, "Bad Request");
	a->error_message(LIT("not json"), out, sizeof(out));
	assert_string_equal(out, "");
	/* truncated, still terminated */
	a->error_message(two, strlen(two), tiny, sizeof(tiny));
	assert_string_equal(tiny, "customer.nu");
}

/* ---- Bland ---- */

#define BLAND_AUTH "authorization", "key_test_123"

/* the second request of a binding: the look-up alone (the pathway, set first, nulls it) */
static const char bland_lookup[] =
	"{\"prompt\": \"This number is answered by pathway pw_123.\","
	" \"dynamic_data\": [{\"url\": \"" WEBHOOK "\", \"method\": \"POST\","
	" \"headers\": {\"Authorization\": \"Bearer " BLAND_DYN_ACME "\","
	" \"Content-Type\": \"application/json\"},"
	" \"body\": {\"event\": \"dynamic_data\", \"to\": \"{{to}}\", \"from\": \"{{from}}\","
	" \"call_id\": \"{{call_id}}\"},"
	" \"cache\": false,"
	" \"response_data\": [{\"name\": \"agent_name\", \"data\": \"$.agent_name\"},"
	" {\"name\": \"client_name\", \"data\": \"$.client_name\"}]}]}";

static const char bland_unbound[] =
	"{\"pathway_id\": null, \"prompt\": \"This number is not in service.\","
	" \"webhook\": \"" WEBHOOK "\"}";

static void
test_bland_requests(void **state)
{
	const struct provider_api *a = &provider_api_bland;
	struct papi_request r;
	char err[256] = "";
	bool unbind = false;

	/* the nickname stays ours */
	assert_true(a->purchase(&ctx, "415", "Front desk", &r, err, sizeof(err)));
	assert_request(&r, "POST", "/numbers/purchase", BLAND_AUTH,
		"{\"area_code\": \"415\", \"country_code\": \"US\"}");
	papi_request_clear(&r);

	/* the pathway first (it resets dynamic_data), then the look-up alone */
	assert_true(
		assign(a, &ctx, "+14155550123", "+14155550123", "pw_123", &r, err, sizeof(err)));
	assert_request(&r, "POST", "/v1/inbound/%2B14155550123", BLAND_AUTH,
		"{\"pathway_id\": \"pw_123\", \"webhook\": \"" WEBHOOK "\"}");
	papi_request_clear(&r);
	{
		struct papi_change ch = { .agent = true, .agent_id = "pw_123" };
		bool last = true;

		assert_true(a->update(&ctx, "+14155550123", "+14155550123", &ch, 0, NULL, 0, &r,
			&last, err, sizeof(err)));
		assert_false(last);
		papi_request_clear(&r);
		assert_true(a->update(&ctx, "+14155550123", "+14155550123", &ch, 1,
			LIT("{\"status\": \"success\"}"), &r, &last, err, sizeof(err)));
		assert_true(last);
		assert_request(&r, "POST", "/v1/inbound/%2B14155550123", BLAND_AUTH, bland_lookup);
		papi_request_clear(&r);
	}

	assert_true(assign(a, &ctx, "+14155550123", "+14155550123", NULL, &r, err, sizeof(err)));
	assert_request(&r, "POST", "/v1/inbound/%2B14155550123", BLAND_AUTH, bland_unbound);
	papi_request_clear(&r);

	/* no release API: the unbind request, said so */
	assert_true(
		a->release(&ctx, "+14155550123", "+14155550123", &r, &unbind, err, sizeof(err)));
	assert_true(unbind);
	assert_request(&r, "POST", "/v1/inbound/%2B14155550123", BLAND_AUTH, bland_unbound);
	papi_request_clear(&r);

	assert_true(a->call(&ctx, "+14155550123", "+14155550123", "+12125550199", "pw_123", &r, err,
		sizeof(err)));
	assert_request(&r, "POST", "/v1/calls", BLAND_AUTH,
		"{\"phone_number\": \"+12125550199\", \"from\": \"+14155550123\","
		" \"pathway_id\": \"pw_123\", \"webhook\": \"" WEBHOOK "\"}");
	papi_request_clear(&r);
}

static void
test_bland_needs_secret(void **state)
{
	const struct provider_api *a = &provider_api_bland;
	struct papi_ctx c = ctx;
	struct papi_request r;
	char err[256] = "";

	c.webhook_secret = NULL;
	assert_refused(assign(a, &c, "+14155550123", NULL, "pw_123", &r, err, sizeof(err)), &r, err,
		"webhook secret");
	c.webhook_secret = "";
	assert_refused(assign(a, &c, "+14155550123", NULL, "pw_123", &r, err, sizeof(err)), &r, err,
		"webhook secret");
	/* unbinding needs none */
	assert_true(assign(a, &c, "+14155550123", NULL, NULL, &r, err, sizeof(err)));
	papi_request_clear(&r);
	c.webhook_secret = "bland-test-secret";
	c.slug = NULL;
	assert_refused(assign(a, &c, "+14155550123", NULL, "pw_123", &r, err, sizeof(err)), &r, err,
		"slug is required");
}

static void
test_bland_parse(void **state)
{
	const struct provider_api *a = &provider_api_bland;
	static const char call[] =
		"{\"status\": \"success\", \"message\": \"Call successfully queued.\","
		" \"call_id\": \"9d404c1b-6a23-4426-953a-a52c392ff8f1\", \"batch_id\": null}";
	static const char call_error[] =
		"{\"status\": \"error\", \"message\": \"Invalid phone number\","
		" \"call_id\": \"9d404c1b\"}";
	static const char wrapped[] = "{\"data\": {\"phone_number\": \"+14155550142\"},"
				      " \"errors\": null}";
	struct papi_number n;
	struct papi_call c;
	char err[256];

	assert_true(
		a->parse_number(LIT("{\"phone_number\": \"+14155550142\"}"), &n, err, sizeof(err)));
	assert_string_equal(n.e164, "+14155550142");
	assert_string_equal(n.provider_number_id, "+14155550142");
	assert_true(a->parse_number(wrapped, strlen(wrapped), &n, err, sizeof(err)));
	assert_string_equal(n.e164, "+14155550142");
	assert_false(a->parse_number(
		LIT("{\"status\": \"error\", \"message\": \"No numbers available\"}"), &n, err,
		sizeof(err)));
	assert_non_null(strstr(err, "No numbers available"));
	assert_false(
		a->parse_number(LIT("{\"phone_number\": \"415-555-0142\"}"), &n, err, sizeof(err)));
	assert_non_null(strstr(err, "not an E.164 number"));

	assert_true(a->parse_call(call, strlen(call), &c, err, sizeof(err)));
	assert_string_equal(c.call_id, "9d404c1b-6a23-4426-953a-a52c392ff8f1");
	assert_false(a->parse_call(call_error, strlen(call_error), &c, err, sizeof(err)));
	assert_non_null(strstr(err, "Invalid phone number"));
	assert_string_equal(c.call_id, "");
	assert_false(a->parse_call(LIT("{\"status\": \"success\"}"), &c, err, sizeof(err)));
	assert_non_null(strstr(err, "\"call_id\""));
}

static void
test_bland_error_message(void **state)
{
	const struct provider_api *a = &provider_api_bland;
	char out[128];
	static const char errors[] =
		"{\"data\": null, \"errors\": [{\"error\": \"INVALID_AREA_CODE\","
		" \"message\": \"Area code 999 is not available\"}, {\"error\": \"SECOND\"},"
		" \"plain\"]}";

	a->error_message(LIT("{\"status\": \"error\", \"message\": \"Invalid pathway_id\"}"), out,
		sizeof(out));
	assert_string_equal(out, "Invalid pathway_id");
	a->error_message(LIT("{\"error\": \"Unauthorized\"}"), out, sizeof(out));
	assert_string_equal(out, "Unauthorized");
	a->error_message(errors, strlen(errors), out, sizeof(out));
	assert_string_equal(out, "Area code 999 is not available; SECOND; plain");
	a->error_message(LIT("{}"), out, sizeof(out));
	assert_string_equal(out, "");
	a->error_message(LIT("Internal Server Error"), out, sizeof(out));
	assert_string_equal(out, "");
}

/* ---- input validation, every provider ---- */

static void
test_validation(void **state)
{
	const struct provider_api *apis[] = { &provider_api_retell, &provider_api_vapi,
		&provider_api_bland };
	static const char *const bad_area[] = { "41", "4155", "41a", " 41", "" };
	char long_id[200], nick65[66];
	struct papi_ctx c;
	struct papi_request r;
	char err[256];
	size_t i, k;
	bool unbind;

	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	memset(nick65, 'n', 65);
	nick65[65] = '\0';

	for (i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
		const struct provider_api *a = apis[i];
		const char *nid = a == &provider_api_vapi ? VAPI_ID : "+14155550123";

		for (k = 0; k < sizeof(bad_area) / sizeof(bad_area[0]); k++)
			assert_refused(a->purchase(&ctx, bad_area[k], NULL, &r, err, sizeof(err)),
				&r, err, "area_code must be 3 digits");
		assert_refused(a->purchase(&ctx, NULL, NULL, &r, err, sizeof(err)), &r, err,
			"area_code must be 3 digits");
		assert_refused(a->purchase(&ctx, "015", NULL, &r, err, sizeof(err)), &r, err,
			"must not start with 0 or 1");
		assert_refused(a->purchase(&ctx, "115", NULL, &r, err, sizeof(err)), &r, err,
			"must not start with 0 or 1");
		assert_refused(a->purchase(&ctx, "415", nick65, &r, err, sizeof(err)), &r, err,
			"nickname must be at most 64 bytes");
		assert_refused(a->purchase(&ctx, "415", "tab\there", &r, err, sizeof(err)), &r, err,
			"nickname must not contain control characters");
		nick65[64] = '\0'; /* 64 bytes: fine, but for Vapi (its name: 40 at most) */
		if (a == &provider_api_vapi) {
			assert_refused(a->purchase(&ctx, "415", nick65, &r, err, sizeof(err)), &r,
				err, "nickname: at most 40 characters");
		} else {
			assert_true(a->purchase(&ctx, "415", nick65, &r, err, sizeof(err)));
			papi_request_clear(&r);
		}
		nick65[64] = 'n';
		if (a != &provider_api_bland) /* the nickname is sent: JSON wants UTF-8 */
			assert_refused(a->purchase(&ctx, "415", "caf\xe9", &r, err, sizeof(err)),
				&r, err, "invalid UTF-8");

		/* account context */
		c = ctx;
		c.api_key = NULL;
		assert_refused(a->purchase(&c, "415", NULL, &r, err, sizeof(err)), &r, err,
			"api key is required");
		c.api_key = "key\r\nX-Injected: 1";
		assert_refused(a->purchase(&c, "415", NULL, &r, err, sizeof(err)), &r, err,
			"api key must not contain control characters");
		assert_null(strstr(err, "Injected")); /* the key is never echoed */
		assert_refused(a->purchase(NULL, "415", NULL, &r, err, sizeof(err)), &r, err,
			"no account context");
		c = ctx;
		c.webhook_url = "";
		assert_refused(assign(a, &c, "+14155550123", nid, "agent_1", &r, err, sizeof(err)),
			&r, err, "webhook url is required");
		if (a == &provider_api_bland) /* the only call body carrying our webhook */
			assert_refused(a->call(&c, "+14155550123", nid, "+12125550199", "agent_1",
					       &r, err, sizeof(err)),
				&r, err, "webhook url is required");

		/* agent ids */
		assert_refused(assign(a, &ctx, "+14155550123", nid, "", &r, err, sizeof(err)), &r,
			err, "agent id is required");
		assert_refused(assign(a, &ctx, "+14155550123", nid, long_id, &r, err, sizeof(err)),
			&r, err, "agent id must be at most 127 bytes");
		assert_refused(assign(a, &ctx, "+14155550123", nid, "a\x01", &r, err, sizeof(err)),
			&r, err, "agent id must not contain control characters");
		assert_refused(assign(a, &ctx, "+14155550123", nid, "a\x7f", &r, err, sizeof(err)),
			&r, err, "agent id must not contain control characters");
		assert_refused(a->call(&ctx, "+14155550123", nid, "+12125550199", NULL, &r, err,
				       sizeof(err)),
			&r, err, "agent id is required");
		long_id[127] = '\0'; /* 127 bytes: fine */
		assert_true(assign(a, &ctx, "+14155550123", nid, long_id, &r, err, sizeof(err)));
		papi_request_clear(&r);
		long_id[127] = 'a';

		/* numbers */
		assert_refused(a->call(&ctx, "+14155550123", nid, "4155550199", "agent_1", &r, err,
				       sizeof(err)),
			&r, err, "to number is not an E.164 number");
		assert_refused(a->call(&ctx, "+14155550123", nid, "+1415555019x", "agent_1", &r,
				       err, sizeof(err)),
			&r, err, "to number is not an E.164 number");
		if (a == &provider_api_vapi) {
			assert_refused(assign(a, &ctx, "+14155550123", NULL, "agent_1", &r, err,
					       sizeof(err)),
				&r, err, "provider number id is required");
			assert_refused(assign(a, &ctx, "+14155550123", long_id, "agent_1", &r, err,
					       sizeof(err)),
				&r, err, "provider number id must be at most 127");
			assert_refused(
				a->release(&ctx, "+14155550123", "", &r, &unbind, err, sizeof(err)),
				&r, err, "provider number id is required");
			assert_refused(a->call(&ctx, "+14155550123", NULL, "+12125550199",
					       "agent_1", &r, err, sizeof(err)),
				&r, err, "from number id is required");
		} else {
			assert_refused(
				assign(a, &ctx, "555-0123", nid, "agent_1", &r, err, sizeof(err)),
				&r, err, "number is not an E.164 number");
			assert_refused(assign(a, &ctx, NULL, nid, NULL, &r, err, sizeof(err)), &r,
				err, "number is required");
			assert_refused(a->release(&ctx, "+1", nid, &r, &unbind, err, sizeof(err)),
				&r, err, "number is not an E.164 number");
			assert_refused(a->call(&ctx, "0014155550123x", nid, "+12125550199",
					       "agent_1", &r, err, sizeof(err)),
				&r, err, "from number is not an E.164 number");
		}
	}
}

/* ---- answers that are not what a 2xx should carry, every provider ---- */

static void
test_parse_garbage(void **state)
{
	const struct provider_api *apis[] = { &provider_api_retell, &provider_api_vapi,
		&provider_api_bland };
	static const char *const garbage[] = { "", "not json", "[1, 2]", "\"+14155550123\"",
		"{\"phone_number\": ", "null" };
	char long_call[512];
	struct papi_number n;
	struct papi_call c;
	char err[256];
	size_t i, k;

	snprintf(long_call, sizeof(long_call), "{\"call_id\": \"%0200d\", \"id\": \"%0200d\"}", 1,
		1);
	for (i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
		const struct provider_api *a = apis[i];

		for (k = 0; k < sizeof(garbage) / sizeof(garbage[0]); k++) {
			err[0] = '\0';
			assert_false(a->parse_number(garbage[k], strlen(garbage[k]), &n, err,
				sizeof(err)));
			assert_true(err[0] != '\0');
			err[0] = '\0';
			assert_false(a->parse_call(garbage[k], strlen(garbage[k]), &c, err,
				sizeof(err)));
			assert_true(err[0] != '\0');
		}
		assert_false(a->parse_number(NULL, 0, &n, err, sizeof(err)));
		assert_false(a->parse_call(NULL, 0, &c, err, sizeof(err)));
		assert_false(a->parse_call(long_call, strlen(long_call), &c, err, sizeof(err)));
		assert_non_null(strstr(err, "too long"));
		assert_false(
			a->parse_call(LIT("{\"call_id\": \"a\\u0001b\", \"id\": \"a\\u0001b\"}"),
				&c, err, sizeof(err)));
		assert_non_null(strstr(err, "control characters"));
		/* an error answer is still refused when no buffer for the error is given */
		assert_false(a->parse_call(LIT("{}"), &c, NULL, 0));
	}
	/* the JSON parser's word is in the error */
	assert_false(provider_api_retell.parse_number(LIT("not json"), &n, err, sizeof(err)));
	assert_non_null(strstr(err, "not JSON"));
	assert_false(provider_api_retell.parse_number(LIT("[1]"), &n, err, sizeof(err)));
	assert_non_null(strstr(err, "not a JSON object"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_path_escape),
		cmocka_unit_test(test_request_clear),
		cmocka_unit_test(test_retell_requests),
		cmocka_unit_test(test_retell_parse),
		cmocka_unit_test(test_retell_error_message),
		cmocka_unit_test(test_vapi_requests),
		cmocka_unit_test(test_vapi_credential_and_merge),
		cmocka_unit_test(test_renames),
		cmocka_unit_test(test_vapi_parse),
		cmocka_unit_test(test_vapi_error_message),
		cmocka_unit_test(test_bland_requests),
		cmocka_unit_test(test_bland_needs_secret),
		cmocka_unit_test(test_bland_parse),
		cmocka_unit_test(test_bland_error_message),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_parse_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
