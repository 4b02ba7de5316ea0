/* providers/bland_api.c: Bland's number and call REST API: requests built, answers parsed. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "callrouted/e164.h"
#include "provider_api.h"
#include "callrouted/signature.h"

/*
 * Bland (https://api.bland.ai, "authorization: <api_key>", no "Bearer"):
 *   purchase  POST /numbers/purchase  {area_code: "415", country_code: "US"}
 *   assign    POST /v1/inbound/{e164}  {pathway_id, webhook}, then
 *             POST /v1/inbound/{e164}  {prompt: <placeholder>, dynamic_data: [our look-up]}
 *   unassign  POST /v1/inbound/{e164}  {pathway_id: null, prompt: <not in service>, webhook}
 *   release   no API is documented for a number Bland sold: the unassign request, unbind_only
 *   call      POST /v1/calls  {phone_number, from, pathway_id, webhook}
 * Bland has no per-call routing webhook: the number is bound to its agent's pathway, and the
 * dynamic_data request configured on it asks our webhook for the call's context (agent and
 * client names) with a bearer token derived from the account's webhook secret.  The number is
 * Bland's identifier for it (provider_number_id = e164).  Bland's inbound number has no name
 * field (api-v1/post/inbound-number-update.mdx): a nickname, and a rename, stay ours.
 */

#define UNASSIGNED_PROMPT "This number is not in service."
#define PATHWAY_PROMPT "This number is answered by pathway "

#include "providers/papi_util.h"

/* ---- Bland ---- */

static bool
bland_purchase(const struct papi_ctx *c, const char *area_code, const char *nickname,
	struct papi_request *out, char *err, size_t errlen)
{
	if (!papi_req_start(c, "POST", "/numbers/purchase", NULL, "authorization", "", out, err,
		    errlen))
		return false;
	/* the nickname is kept in our database only: Bland has no field for it */
	if (!papi_check_area_code(area_code, err, errlen) ||
		!papi_check_nickname(nickname, err, errlen))
		return papi_req_fail(out);
	return papi_req_body(out,
		json_pack("{s:s, s:s}", "area_code", area_code, "country_code", "US"), err, errlen);
}

/*
 * Unbinding (unassign, and release, for which Bland documents no API): Bland's update wants a
 * prompt whenever the number follows no pathway ("prompt" is the one required field of
 * POST /v1/inbound/{phone_number}), and pathway_id null clears the pathway.  So the number
 * gets a neutral prompt that tells a caller it is not in service rather than keeping the old
 * agent or Bland's default agent; the webhook stays ours, so the post-call webhooks of calls
 * Bland still answers on it reach the ledger.  dynamic_data is not sent: the prompt uses no
 * variable, and a look-up for an unbound number gets our 404 ("no agent") anyway.
 */
static json_t *
bland_unbind_body(const struct papi_ctx *c)
{
	return json_pack("{s:n, s:s, s:s}", "pathway_id", "prompt", UNASSIGNED_PROMPT, "webhook",
		c->webhook_url);
}

/* The dynamic_data look-up that gives the pathway {{agent_name}} and {{client_name}}. */
static json_t *
bland_lookup(const struct papi_ctx *c, char *err, size_t errlen)
{
	char token[65], bearer[80];
	json_t *dd;

	if (!papi_check_text("slug", c->slug, PAPI_ID_MAX, err, errlen))
		return NULL;
	if (c->webhook_secret == NULL || c->webhook_secret[0] == '\0' ||
		!sig_bland_dynamic_token(c->webhook_secret, c->slug, token)) {
		papi_fail(err, errlen, "bland's dynamic_data look-up needs a webhook secret");
		return NULL;
	}
	snprintf(bearer, sizeof(bearer), "Bearer %s", token);
	/* clang-format off */
	dd = json_pack("[{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s}, s:b,"
			" s:[{s:s, s:s}, {s:s, s:s}]}]",
		"url", c->webhook_url,
		"method", "POST",
		"headers",
			"Authorization", bearer,
			"Content-Type", "application/json",
		"body",
			"event", "dynamic_data",
			"to", "{{to}}",
			"from", "{{from}}",
			"call_id", "{{call_id}}",
		"cache", 0,
		"response_data",
			"name", "agent_name", "data", "$.agent_name",
			"name", "client_name", "data", "$.client_name");
	/* clang-format on */
	if (dd == NULL)
		papi_fail(err, errlen, "could not build the request body (invalid UTF-8?)");
	return dd;
}

/*
 * Binding, in two requests: first the agent's pathway and our post-call webhook, then the
 * dynamic_data look-up.  Bland's page says "Setting a pathway will set prompt, first_sentence,
 * model, dynamic_data and tools to null", so a dynamic_data sent with the pathway (or before
 * it) is lost; the second request sets only dynamic_data, which leaves the pathway alone.  The
 * webhook goes with the pathway (it is not among the fields a pathway resets), so calls the
 * pathway answers reach the ledger even if the second request fails.  The page marks prompt
 * required ("no need to pass the 'prompt' field if you are setting a pathway", which the
 * second request does not), so it carries a placeholder prompt naming the pathway; the page
 * says the pathway overrides the prompt field.  Bland fills the
 * look-up's {{to}}, {{from}} and {{call_id}}; it cannot sign the body, hence the token
 * (sig_bland_dynamic_token).  A rename sends nothing (no name at Bland).
 */
static bool
bland_update(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
	const struct papi_change *ch, unsigned step, const char *prev, size_t prev_len,
	struct papi_request *out, bool *last, char *err, size_t errlen)
{
	char num[E164_BUFSIZE], prompt[sizeof(PATHWAY_PROMPT) + PAPI_ID_MAX + 2];
	json_t *dd;

	memset(out, 0, sizeof(*out));
	*last = true;
	if (!ch->agent)
		return true;
	if (!papi_to_e164("number", e164, num, err, errlen) ||
		!papi_req_start(c, "POST", "/v1/inbound/", num, "authorization", "", out, err,
			errlen))
		return false;
	if (!papi_check_webhook(c, err, errlen))
		return papi_req_fail(out);
	if (ch->agent_id == NULL)
		return papi_req_body(out, bland_unbind_body(c), err, errlen);
	if (!papi_check_text("agent id", ch->agent_id, PAPI_ID_MAX, err, errlen) ||
		(dd = bland_lookup(c, err, errlen)) == NULL)
		return papi_req_fail(out);
	if (step == 0) {
		json_decref(dd); /* checked now, so nothing is set when it cannot be built */
		*last = false;
		return papi_req_body(out,
			json_pack("{s:s, s:s}", "pathway_id", ch->agent_id, "webhook",
				c->webhook_url),
			err, errlen);
	}
	snprintf(prompt, sizeof(prompt), PATHWAY_PROMPT "%s.", ch->agent_id);
	return papi_req_body(out, json_pack("{s:s, s:o}", "prompt", prompt, "dynamic_data", dd),
		err, errlen);
}

/* Bland sells numbers but documents no way to give one back: unbind it and say so. */
static bool
bland_release(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
	struct papi_request *out, bool *unbind_only, char *err, size_t errlen)
{
	static const struct papi_change unbind = { .agent = true, .agent_id = NULL };
	bool last;

	if (unbind_only != NULL)
		*unbind_only = true;
	return bland_update(c, e164, provider_number_id, &unbind, 0, NULL, 0, out, &last, err,
		errlen);
}

static bool
bland_call(const struct papi_ctx *c, const char *from_e164, const char *from_provider_number_id,
	const char *to_e164_in, const char *provider_agent_id, struct papi_request *out, char *err,
	size_t errlen)
{
	char from[E164_BUFSIZE], to[E164_BUFSIZE];

	memset(out, 0, sizeof(*out));
	if (!papi_to_e164("from number", from_e164, from, err, errlen) ||
		!papi_to_e164("to number", to_e164_in, to, err, errlen) ||
		!papi_check_text("agent id", provider_agent_id, PAPI_ID_MAX, err, errlen) ||
		!papi_req_start(c, "POST", "/v1/calls", NULL, "authorization", "", out, err,
			errlen))
		return false;
	if (!papi_check_webhook(c, err, errlen))
		return papi_req_fail(out);
	return papi_req_body(out,
		json_pack("{s:s, s:s, s:s, s:s}", "phone_number", to, "from", from, "pathway_id",
			provider_agent_id, "webhook", c->webhook_url),
		err, errlen);
}

/*
 * Send Call takes request_data (an object: "any JSON you put in here will be visible to the AI
 * agent during the call", {{name}} in the task/pathway) and metadata (an object, kept with the
 * call and sent back in its webhook) [https://docs.bland.ai/api-v1/post/calls].
 */
static bool
bland_call_context(json_t *body, json_t *variables, json_t *metadata, char *err, size_t errlen)
{
	if (variables && json_object_set(body, "request_data", variables) != 0)
		return false;
	if (metadata && json_object_set(body, "metadata", metadata) != 0)
		return false;
	return true;
}

/*
 * Bland's error bodies: {"status": "error", "message": "..."}, {"error": "..."}, or
 * {"data": null, "errors": [{"error": "<code>", "message": "..."}, ...]} (or strings).
 */
static void
bland_error_message(const char *body, size_t len, char *out, size_t outlen)
{
	json_t *j, *v, *e, *errors;
	size_t i;

	if (out == NULL || outlen == 0)
		return;
	out[0] = '\0';
	if (body == NULL || (j = json_loadb(body, len, 0, NULL)) == NULL)
		return;
	if (json_is_object(j)) {
		v = json_object_get(j, "message");
		if (!json_is_string(v) || json_string_length(v) == 0)
			v = json_object_get(j, "error");
		if (json_is_string(v)) {
			papi_msg_append(out, outlen, json_string_value(v));
		} else {
			errors = json_object_get(j, "errors");
			json_array_foreach(errors, i, e)
			{
				if (json_is_object(e)) {
					v = json_object_get(e, "message");
					if (!json_is_string(v))
						v = json_object_get(e, "error");
				} else {
					v = e;
				}
				if (json_is_string(v))
					papi_msg_append(out, outlen, json_string_value(v));
			}
		}
	}
	json_decref(j);
}

/* A 2xx answer may still say {"status": "error", ...}: refuse it with Bland's message. */
static bool
bland_status_ok(json_t *j, const char *body, size_t len, char *err, size_t errlen)
{
	json_t *st = json_object_get(j, "status");
	char msg[256];

	if (!json_is_string(st) || strcmp(json_string_value(st), "error") != 0)
		return true;
	bland_error_message(body, len, msg, sizeof(msg));
	return papi_fail(err, errlen, "bland answered status \"error\"%s%s", msg[0] ? ": " : "",
		msg);
}

/*
 * The purchase answer: {"phone_number": "+1..."} (documented in the older version of the page);
 * the same under "data" (Bland's newer {data, errors} envelope) is accepted too.
 */
static bool
bland_parse_number(const char *body, size_t len, struct papi_number *out, char *err, size_t errlen)
{
	json_t *j = papi_load_object(body, len, err, errlen), *o, *data;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return false;
	o = j;
	data = json_object_get(j, "data");
	if (!json_object_get(j, "phone_number") && json_is_object(data))
		o = data;
	ok = bland_status_ok(j, body, len, err, errlen) &&
	     papi_copy_e164(o, "phone_number", out->e164, err, errlen);
	json_decref(j);
	if (!ok)
		return false;
	snprintf(out->provider_number_id, sizeof(out->provider_number_id), "%s", out->e164);
	return true;
}

/* {"status": "success", "message": "Call successfully queued.", "call_id": "...", ...} */
static bool
bland_parse_call(const char *body, size_t len, struct papi_call *out, char *err, size_t errlen)
{
	json_t *j = papi_load_object(body, len, err, errlen);
	bool ok;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return false;
	ok = bland_status_ok(j, body, len, err, errlen) &&
	     papi_copy_string(j, "call_id", out->call_id, sizeof(out->call_id), err, errlen);
	json_decref(j);
	return ok;
}

/*
 * Listing (the provider sync), neither paginated as documented: GET /v1/inbound answers
 * {"inbound_numbers": [{phone_number, webhook, pathway_id, prompt, ...}]} (api-v1/get/
 * inbound.mdx), GET /v1/pathway answers [{id, name, description, ...}] (api-v1/get/
 * all_pathway.mdx: "every conversational pathway in your account").  A number's agent is its
 * pathway.
 */
static bool
bland_list_numbers(const struct papi_ctx *c, const char *cursor, struct papi_request *out,
	char *err, size_t errlen)
{
	return papi_req_start(c, "GET", "/v1/inbound", NULL, "authorization", "", out, err, errlen);
}

static bool
bland_parse_numbers(const char *body, size_t len, json_t *into, char *next, size_t nextlen,
	char *err, size_t errlen)
{
	json_t *j = papi_load_object(body, len, err, errlen), *items, *n;
	size_t i;
	bool ok;

	*next = '\0';
	if (j == NULL)
		return false;
	ok = bland_status_ok(j, body, len, err, errlen);
	items = json_object_get(j, "inbound_numbers");
	if (ok && !json_is_array(items))
		ok = papi_fail(err, errlen, "answer has no \"inbound_numbers\" array");
	for (i = 0; ok && i < json_array_size(items); i++) {
		json_t *e164, *pathway, *agents = json_array();

		n = json_array_get(items, i);
		e164 = papi_item_e164(n, "phone_number");
		pathway = papi_item_str(n, "pathway_id", PAPI_ID_MAX);
		if (json_is_string(pathway))
			json_array_append(agents, pathway);
		json_decref(pathway);
		ok = papi_listed_number(into, e164, json_is_string(e164) ? json_incref(e164) : NULL,
			papi_item_str(n, "webhook", PAPI_URL_MAX), agents, json_null(), json_null(),
			json_null(), err, errlen);
	}
	json_decref(j);
	return ok;
}

static bool
bland_list_agents(const struct papi_ctx *c, const char *cursor, struct papi_request *out, char *err,
	size_t errlen)
{
	return papi_req_start(c, "GET", "/v1/pathway", NULL, "authorization", "", out, err, errlen);
}

static bool
bland_parse_agents(const char *body, size_t len, json_t *into, char *next, size_t nextlen,
	char *err, size_t errlen)
{
	json_t *j = papi_load_json(body, len, err, errlen), *a;
	size_t i;
	bool ok = true;

	*next = '\0';
	if (j == NULL)
		return false;
	if (!json_is_array(j)) {
		ok = json_is_object(j) ? bland_status_ok(j, body, len, err, errlen) : true;
		json_decref(j);
		return ok ? papi_fail(err, errlen, "answer is not an array of pathways") : false;
	}
	json_array_foreach(j, i, a)
	{
		json_t *id = papi_item_str(a, "id", PAPI_ID_MAX);

		if (papi_listed_has(into, id)) {
			json_decref(id);
			continue;
		}
		if (!(ok = papi_listed_agent(into, id, papi_item_str(a, "name", 256), err, errlen)))
			break;
	}
	json_decref(j);
	return ok;
}

const struct provider_api provider_api_bland = {
	.provider = PROVIDER_BLAND,
	.default_base_url = "https://api.bland.ai",
	.purchase = bland_purchase,
	.update = bland_update,
	.release = bland_release,
	.call = bland_call,
	.call_context = bland_call_context,
	.parse_number = bland_parse_number,
	.parse_call = bland_parse_call,
	.error_message = bland_error_message,
	.list_numbers = bland_list_numbers,
	.parse_numbers = bland_parse_numbers,
	.list_agents = bland_list_agents,
	.parse_agents = bland_parse_agents,
	.name_max = 0,
	.name_field = NULL,
};
