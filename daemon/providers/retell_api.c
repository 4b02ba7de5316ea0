/* providers/retell_api.c: Retell's number and call REST API: requests built, answers parsed. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "callrouted/e164.h"
#include "provider_api.h"

/*
 * Retell (https://api.retellai.com, "Authorization: Bearer <api_key>"):
 *   purchase  POST /create-phone-number
 *             {area_code (int), inbound_webhook_url, nickname?}
 *   assign    PATCH /update-phone-number/{e164}
 *             {inbound_agents: [{agent_id, weight: 1}], inbound_webhook_url}
 *   unassign  PATCH /update-phone-number/{e164}  {inbound_agents: [], inbound_webhook_url}
 *   rename    PATCH /update-phone-number/{e164}  {nickname} (null clears it)
 *   release   DELETE /delete-phone-number/{e164}
 *   call      POST /v2/create-phone-call  {from_number, to_number, override_agent_id}
 * The number's inbound webhook (ours) picks the agent of each call; the bound inbound agent is
 * only what Retell falls back to when our webhook cannot answer.  The number itself is Retell's
 * identifier for it (provider_number_id = e164).  retell-sdk's phone-number.ts types nickname
 * as a plain string ("for your reference only") with no documented limit: ours (64) applies.
 */

#include "providers/papi_util.h"

/* ---- Retell ---- */

static bool
retell_purchase(const struct papi_ctx *c, const char *area_code, const char *nickname,
	struct papi_request *out, char *err, size_t errlen)
{
	if (!papi_req_start(c, "POST", "/create-phone-number", NULL, "Authorization", "Bearer ",
		    out, err, errlen))
		return false;
	if (!papi_check_webhook(c, err, errlen) || !papi_check_area_code(area_code, err, errlen) ||
		!papi_check_nickname(nickname, err, errlen))
		return papi_req_fail(out);
	/* no agent at purchase: the number is bound when assigned */
	return papi_req_body(out,
		json_pack("{s:i, s:s, s:s*}", "area_code", atoi(area_code), "inbound_webhook_url",
			c->webhook_url, "nickname",
			nickname != NULL && *nickname != '\0' ? nickname : NULL),
		err, errlen);
}

static bool
retell_update(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
	const struct papi_change *ch, unsigned step, const char *prev, size_t prev_len,
	struct papi_request *out, bool *last, char *err, size_t errlen)
{
	char num[E164_BUFSIZE];
	json_t *body;

	memset(out, 0, sizeof(*out));
	*last = true;
	if (!ch->agent && !ch->name)
		return true;
	if (!papi_to_e164("number", e164, num, err, errlen) ||
		!papi_req_start(c, "PATCH", "/update-phone-number/", num, "Authorization",
			"Bearer ", out, err, errlen))
		return false;
	if ((ch->agent && !papi_check_webhook(c, err, errlen)) ||
		(ch->agent && ch->agent_id != NULL &&
			!papi_check_text("agent id", ch->agent_id, PAPI_ID_MAX, err, errlen)) ||
		(ch->name && !papi_check_nickname(ch->nickname, err, errlen)))
		return papi_req_fail(out);
	body = json_object();
	/*
	 * Our webhook stays the number's inbound webhook either way; the agent bound here is only
	 * Retell's fallback when our webhook cannot answer.  Unassigned: no fallback agent.
	 */
	if (body != NULL && ch->agent &&
		(json_object_set_new(body, "inbound_agents",
			 ch->agent_id != NULL ?
				 json_pack("[{s:s, s:i}]", "agent_id", ch->agent_id, "weight", 1) :
				 json_array()) != 0 ||
			json_object_set_new(body, "inbound_webhook_url",
				json_string(c->webhook_url)) != 0)) {
		json_decref(body);
		body = NULL;
	}
	if (body != NULL && ch->name &&
		json_object_set_new(body, "nickname",
			ch->nickname != NULL && *ch->nickname != '\0' ? json_string(ch->nickname) :
									json_null()) != 0) {
		json_decref(body);
		body = NULL;
	}
	return papi_req_body(out, body, err, errlen);
}

static bool
retell_release(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
	struct papi_request *out, bool *unbind_only, char *err, size_t errlen)
{
	char num[E164_BUFSIZE];

	memset(out, 0, sizeof(*out));
	if (unbind_only != NULL)
		*unbind_only = false;
	if (!papi_to_e164("number", e164, num, err, errlen) ||
		!papi_req_start(c, "DELETE", "/delete-phone-number/", num, "Authorization",
			"Bearer ", out, err, errlen))
		return false;
	return true;
}

static bool
retell_call(const struct papi_ctx *c, const char *from_e164, const char *from_provider_number_id,
	const char *to_e164_in, const char *provider_agent_id, struct papi_request *out, char *err,
	size_t errlen)
{
	char from[E164_BUFSIZE], to[E164_BUFSIZE];

	memset(out, 0, sizeof(*out));
	if (!papi_to_e164("from number", from_e164, from, err, errlen) ||
		!papi_to_e164("to number", to_e164_in, to, err, errlen) ||
		!papi_check_text("agent id", provider_agent_id, PAPI_ID_MAX, err, errlen) ||
		!papi_req_start(c, "POST", "/v2/create-phone-call", NULL, "Authorization",
			"Bearer ", out, err, errlen))
		return false;
	return papi_req_body(out,
		json_pack("{s:s, s:s, s:s}", "from_number", from, "to_number", to,
			"override_agent_id", provider_agent_id),
		err, errlen);
}

/*
 * Create Phone Call takes retell_llm_dynamic_variables ("key value pairs of string", injected
 * into the agent's prompt) and metadata (any object, stored with the call, not seen by the
 * agent) [https://docs.retellai.com/api-references/create-phone-call].
 */
static bool
retell_call_context(json_t *body, json_t *variables, json_t *metadata, char *err, size_t errlen)
{
	if (variables && json_object_set(body, "retell_llm_dynamic_variables", variables) != 0)
		return false;
	if (metadata && json_object_set(body, "metadata", metadata) != 0)
		return false;
	return true;
}

/* PhoneNumberResponse: phone_number (E.164) is also Retell's id of the number. */
static bool
retell_parse_number(const char *body, size_t len, struct papi_number *out, char *err, size_t errlen)
{
	json_t *j = papi_load_object(body, len, err, errlen);
	bool ok;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return false;
	ok = papi_copy_e164(j, "phone_number", out->e164, err, errlen);
	json_decref(j);
	if (!ok)
		return false;
	snprintf(out->provider_number_id, sizeof(out->provider_number_id), "%s", out->e164);
	return true;
}

static bool
retell_parse_call(const char *body, size_t len, struct papi_call *out, char *err, size_t errlen)
{
	return papi_parse_field(body, len, "call_id", out->call_id, sizeof(out->call_id), err,
		errlen);
}

/* Retell's error bodies: {"message": ...}, {"error_message": ...} or {"error": ...}. */
static void
retell_error_message(const char *body, size_t len, char *out, size_t outlen)
{
	static const char *const keys[] = { "message", "error_message", "error" };
	json_t *j;
	size_t i;

	if (out == NULL || outlen == 0)
		return;
	out[0] = '\0';
	if (body == NULL || (j = json_loadb(body, len, 0, NULL)) == NULL)
		return;
	for (i = 0; json_is_object(j) && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(j, keys[i]);

		if (json_is_string(v) && json_string_length(v) > 0) {
			papi_msg_append(out, outlen, json_string_value(v));
			break;
		}
	}
	json_decref(j);
}

/*
 * Listing (the provider sync), from retell-typescript-sdk 5.60 (src/resources/phone-number.ts,
 * agent.ts; https://docs.retellai.com/api-references/list-phone-numbers):
 *   numbers  GET /v2/list-phone-numbers?pagination_key=K
 *            -> {items: [PhoneNumberResponse], has_more, pagination_key}
 *   agents   POST /v2/list-agents?pagination_key=K  {filter_criteria: {channel: {type: "string",
 *            op: "eq", value: "voice"}}} (voice agents: a chat agent takes no call)
 *            -> {items: [{agent_id, agent_name, channel, ...}], has_more, pagination_key}
 * The page size (limit) is left to Retell: its bounds are not documented.  The next page is
 * asked for while has_more, with the answer's pagination_key.
 */

static bool
retell_list_req(const struct papi_ctx *c, const char *method, const char *what, const char *cursor,
	struct papi_request *out, char *err, size_t errlen)
{
	char path[400], esc[300];

	if (cursor != NULL && *cursor != '\0') {
		if (!papi_path_escape(cursor, esc, sizeof(esc)))
			return papi_fail(err, errlen, "pagination key too long");
		snprintf(path, sizeof(path), "%s?pagination_key=%s", what, esc);
	} else {
		snprintf(path, sizeof(path), "%s", what);
	}
	return papi_req_start(c, method, path, NULL, "Authorization", "Bearer ", out, err, errlen);
}

/* {items, has_more, pagination_key}: items into *items (borrowed from *j), next set. */
static bool
retell_page(const char *body, size_t len, json_t **j, json_t **items, char *next, size_t nextlen,
	char *err, size_t errlen)
{
	json_t *pk;

	*next = '\0';
	if ((*j = papi_load_object(body, len, err, errlen)) == NULL)
		return false;
	*items = json_object_get(*j, "items");
	if (!json_is_array(*items))
		return papi_fail(err, errlen, "answer has no \"items\" array");
	if (!json_is_true(json_object_get(*j, "has_more")))
		return true;
	pk = json_object_get(*j, "pagination_key");
	if (!json_is_string(pk) || json_string_length(pk) == 0 || json_string_length(pk) >= nextlen)
		return papi_fail(err, errlen, "has_more without a usable pagination_key");
	snprintf(next, nextlen, "%s", json_string_value(pk));
	return true;
}

static bool
retell_list_numbers(const struct papi_ctx *c, const char *cursor, struct papi_request *out,
	char *err, size_t errlen)
{
	return retell_list_req(c, "GET", "/v2/list-phone-numbers", cursor, out, err, errlen);
}

static bool
retell_parse_numbers(const char *body, size_t len, json_t *into, char *next, size_t nextlen,
	char *err, size_t errlen)
{
	json_t *j = NULL, *items = NULL, *n, *a;
	size_t i, k;
	bool ok = retell_page(body, len, &j, &items, next, nextlen, err, errlen);

	for (i = 0; ok && i < json_array_size(items); i++) {
		json_t *agents = json_array(), *e164;

		n = json_array_get(items, i);
		e164 = papi_item_e164(n, "phone_number");
		json_array_foreach(json_object_get(n, "inbound_agents"), k, a)
		{
			json_t *id = papi_item_str(a, "agent_id", PAPI_ID_MAX);

			if (json_is_string(id))
				json_array_append_new(agents, id);
			else
				json_decref(id);
		}
		/* the number is Retell's id of it */
		ok = papi_listed_number(into, e164, json_is_string(e164) ? json_incref(e164) : NULL,
			papi_item_str(n, "inbound_webhook_url", PAPI_URL_MAX), agents, json_null(),
			json_null(), papi_item_str(n, "nickname", 256), err, errlen);
	}
	json_decref(j);
	return ok;
}

static bool
retell_list_agents(const struct papi_ctx *c, const char *cursor, struct papi_request *out,
	char *err, size_t errlen)
{
	if (!retell_list_req(c, "POST", "/v2/list-agents", cursor, out, err, errlen))
		return false;
	return papi_req_body(out,
		json_pack("{s:{s:{s:s, s:s, s:s}}}", "filter_criteria", "channel", "type", "string",
			"op", "eq", "value", "voice"),
		err, errlen);
}

static bool
retell_parse_agents(const char *body, size_t len, json_t *into, char *next, size_t nextlen,
	char *err, size_t errlen)
{
	json_t *j = NULL, *items = NULL, *a;
	size_t i;
	bool ok = retell_page(body, len, &j, &items, next, nextlen, err, errlen);

	for (i = 0; ok && i < json_array_size(items); i++) {
		json_t *id;

		a = json_array_get(items, i);
		id = papi_item_str(a, "agent_id", PAPI_ID_MAX);
		if (papi_listed_has(into, id)) {
			json_decref(id);
			continue;
		}
		ok = papi_listed_agent(into, id, papi_item_str(a, "agent_name", 256), err, errlen);
	}
	json_decref(j);
	return ok;
}

const struct provider_api provider_api_retell = {
	.provider = PROVIDER_RETELL,
	.default_base_url = "https://api.retellai.com",
	.purchase = retell_purchase,
	.update = retell_update,
	.release = retell_release,
	.call = retell_call,
	.call_context = retell_call_context,
	.parse_number = retell_parse_number,
	.parse_call = retell_parse_call,
	.error_message = retell_error_message,
	.list_numbers = retell_list_numbers,
	.parse_numbers = retell_parse_numbers,
	.list_agents = retell_list_agents,
	.parse_agents = retell_parse_agents,
	.name_max = PAPI_NICKNAME_MAX,
	.name_field = "nickname",
};
