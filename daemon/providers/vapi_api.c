/* providers/vapi_api.c: Vapi's number and call REST API: requests built, answers parsed. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "callrouted/e164.h"
#include "provider_api.h"

/*
 * Vapi (https://api.vapi.ai, "Authorization: Bearer <api_key>"), from Vapi's OpenAPI
 * (CreateVapiPhoneNumberDTO, UpdateVapiPhoneNumberDTO, Server):
 *   purchase  POST /phone-number
 *             {provider: "vapi", numberDesiredAreaCode, name?, server: {url, credentialId?}}
 *   assign    GET /phone-number/{id}, then
 *             PATCH /phone-number/{id}  {provider: <the number's>, server: <its server with
 *             url and credentialId ours>, name?}
 *   unassign  the same
 *   rename    GET /phone-number/{id}, then PATCH /phone-number/{id}  {provider, name}
 *   release   DELETE /phone-number/{id}
 *   call      POST /call  {phoneNumberId, customer: {number}, assistantId}
 * A number with no assistantId, squadId or workflowId sends every inbound call to its server
 * URL as an assistant-request, and our routing table answers it: "assigning" at Vapi only makes
 * sure the number asks us, signed with the account's webhook credential (server.credentialId;
 * without one Vapi's requests are unsigned and we refuse them); which agent answers is the
 * routing table's business.  Vapi's id of the number (provider_number_id) is its "id".
 *
 * Read-modify-write, not "send only what we own": a PATCH replaces the server object whole (it
 * is one property of the DTO; Vapi documents no merge), so sending {url, credentialId} alone
 * would drop the timeoutSeconds, headers or backoffPlan an operator set.  The PATCH therefore
 * sends the server object as the GET answered it, with url and credentialId ours (a credential
 * is kept when the account names none), and no other top-level property but the provider
 * discriminator (the request type's required one, taken from the number: an imported Twilio
 * number says "twilio") and the name.  assistantId, squadId and workflowId are typed string,
 * not nullable: null is refused and Vapi documents no other way to clear them, so a number that
 * has one (set in Vapi's dashboard: it bypasses our routing) is refused with a message naming
 * it, for the operator to remove there.  Between the GET and the PATCH a dashboard edit of the
 * server can be lost (Vapi has no conditional update).
 */

#include "providers/papi_util.h"

/* ---- Vapi ---- */

#define VAPI_NAME_MAX 40 /* the phone number DTOs' name: maxLength 40 */

static const char *
vapi_credential(const struct papi_ctx *c)
{
	return c->webhook_credential_id != NULL && *c->webhook_credential_id != '\0' ?
		       c->webhook_credential_id :
		       NULL;
}

static bool
vapi_check_credential(const struct papi_ctx *c, char *err, size_t errlen)
{
	return vapi_credential(c) == NULL ||
	       papi_check_text("webhook credential id", c->webhook_credential_id, PAPI_ID_MAX, err,
		       errlen);
}

static bool
vapi_purchase(const struct papi_ctx *c, const char *area_code, const char *nickname,
	struct papi_request *out, char *err, size_t errlen)
{
	if (!papi_req_start(c, "POST", "/phone-number", NULL, "Authorization", "Bearer ", out, err,
		    errlen))
		return false;
	if (!papi_check_webhook(c, err, errlen) || !papi_check_area_code(area_code, err, errlen) ||
		!papi_check_nickname(nickname, err, errlen) ||
		!papi_check_name(&provider_api_vapi, nickname, err, errlen) ||
		!vapi_check_credential(c, err, errlen))
		return papi_req_fail(out);
	/* no assistantId: every call sends an assistant-request */
	return papi_req_body(out,
		json_pack("{s:s, s:s, s:s*, s:{s:s, s:s*}}", "provider", "vapi",
			"numberDesiredAreaCode", area_code, "name",
			nickname != NULL && *nickname != '\0' ? nickname : NULL, "server", "url",
			c->webhook_url, "credentialId", vapi_credential(c)),
		err, errlen);
}

/* The server object to send: the number's own (prev), with url and credentialId ours. */
static json_t *
vapi_server(const struct papi_ctx *c, json_t *number)
{
	json_t *cur = json_object_get(number, "server");
	json_t *srv = json_is_object(cur) ? json_deep_copy(cur) : json_object();

	if (srv == NULL)
		return NULL;
	if (json_object_set_new(srv, "url", json_string(c->webhook_url)) != 0 ||
		(vapi_credential(c) != NULL && json_object_set_new(srv, "credentialId",
						       json_string(vapi_credential(c))) != 0)) {
		json_decref(srv);
		return NULL;
	}
	return srv;
}

/*
 * Step 0 reads the number (GET); step 1 PATCHes it (see the top of the file for why).  The agent
 * is validated but not sent: the routing table answers the number's assistant-requests.
 */
static bool
vapi_update(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
	const struct papi_change *ch, unsigned step, const char *prev, size_t prev_len,
	struct papi_request *out, bool *last, char *err, size_t errlen)
{
	static const char *const own[] = { "assistantId", "squadId", "workflowId" };
	json_t *cur, *body, *prov, *srv;
	size_t i;

	memset(out, 0, sizeof(*out));
	*last = true;
	if (!papi_check_text("provider number id", provider_number_id, PAPI_ID_MAX, err, errlen) ||
		(ch->agent && ch->agent_id != NULL &&
			!papi_check_text("agent id", ch->agent_id, PAPI_ID_MAX, err, errlen)) ||
		(ch->name && !papi_check_nickname(ch->nickname, err, errlen)) ||
		(ch->name && !papi_check_name(&provider_api_vapi, ch->nickname, err, errlen)) ||
		!vapi_check_credential(c, err, errlen) ||
		(ch->agent && !papi_check_webhook(c, err, errlen)))
		return false;
	if (!ch->agent && !(ch->name && ch->nickname != NULL && *ch->nickname != '\0'))
		return true; /* nothing to send: Vapi's name cannot be cleared (string, not null) */
	if (step == 0) {
		*last = false;
		return papi_req_start(c, "GET", "/phone-number/", provider_number_id,
			"Authorization", "Bearer ", out, err, errlen);
	}
	if (!papi_req_start(c, "PATCH", "/phone-number/", provider_number_id, "Authorization",
		    "Bearer ", out, err, errlen))
		return false;
	if ((cur = papi_load_object(prev, prev_len, err, errlen)) == NULL)
		return papi_req_fail(out);
	prov = json_object_get(cur, "provider");
	if (!json_is_string(prov) || json_string_length(prov) == 0 ||
		json_string_length(prov) > 32) {
		json_decref(cur);
		papi_req_fail(out);
		return papi_fail(err, errlen, "vapi's phone number has no \"provider\"");
	}
	for (i = 0; ch->agent && i < sizeof(own) / sizeof(own[0]); i++) {
		json_t *v = json_object_get(cur, own[i]);

		if (json_is_string(v) && json_string_length(v) > 0) {
			json_decref(cur);
			papi_req_fail(out);
			return papi_fail(err, errlen,
				"the number has its own %s at vapi, which bypasses our routing: remove "
				"it in Vapi's dashboard (the API has no way to clear it)",
				own[i]);
		}
	}
	body = json_pack("{s:s}", "provider", json_string_value(prov));
	if (body != NULL && ch->agent) {
		srv = vapi_server(c, cur);
		if (srv == NULL || json_object_set_new(body, "server", srv) != 0) {
			json_decref(body);
			body = NULL;
		}
	}
	if (body != NULL && ch->name && ch->nickname != NULL && *ch->nickname != '\0' &&
		json_object_set_new(body, "name", json_string(ch->nickname)) != 0) {
		json_decref(body);
		body = NULL;
	}
	json_decref(cur);
	return papi_req_body(out, body, err, errlen);
}

static bool
vapi_release(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
	struct papi_request *out, bool *unbind_only, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (unbind_only != NULL)
		*unbind_only = false;
	return papi_check_text("provider number id", provider_number_id, PAPI_ID_MAX, err,
		       errlen) &&
	       papi_req_start(c, "DELETE", "/phone-number/", provider_number_id, "Authorization",
		       "Bearer ", out, err, errlen);
}

/* The caller ID is Vapi's id of our number (phoneNumberId); from_e164 is not sent. */
static bool
vapi_call(const struct papi_ctx *c, const char *from_e164, const char *from_provider_number_id,
	const char *to_e164_in, const char *provider_agent_id, struct papi_request *out, char *err,
	size_t errlen)
{
	char to[E164_BUFSIZE];

	memset(out, 0, sizeof(*out));
	if (!papi_check_text("from number id", from_provider_number_id, PAPI_ID_MAX, err, errlen) ||
		!papi_to_e164("to number", to_e164_in, to, err, errlen) ||
		!papi_check_text("agent id", provider_agent_id, PAPI_ID_MAX, err, errlen) ||
		!papi_req_start(c, "POST", "/call", NULL, "Authorization", "Bearer ", out, err,
			errlen))
		return false;
	return papi_req_body(out,
		json_pack("{s:s, s:{s:s}, s:s}", "phoneNumberId", from_provider_number_id,
			"customer", "number", to, "assistantId", provider_agent_id),
		err, errlen);
}

/*
 * CreateCallDTO has no metadata of its own (its 16 fields:
 * https://docs.rs/vapi-client/latest/vapi_client/models/create_outbound_call_dto/struct.CreateOutboundCallDto.html);
 * its assistantOverrides (AssistantOverrides) take
 * variableValues (an object: fills the {{variable}} placeholders of the assistant's prompt and
 * messages) and metadata (an object, kept with the call)
 * [https://docs.vapi.ai/assistants/assistant-overrides;
 * https://docs.rs/vapi-client/latest/vapi_client/models/assistant_overrides/struct.AssistantOverrides.html].
 */
static bool
vapi_call_context(json_t *body, json_t *variables, json_t *metadata, char *err, size_t errlen)
{
	json_t *o;

	if (!variables && !metadata)
		return true;
	o = json_object();
	if (!o || (variables && json_object_set(o, "variableValues", variables) != 0) ||
		(metadata && json_object_set(o, "metadata", metadata) != 0) ||
		json_object_set_new(body, "assistantOverrides", o) != 0) {
		return false;
	}
	return true;
}

/* The phone number object: id (ours to keep) and number (E.164). */
static bool
vapi_parse_number(const char *body, size_t len, struct papi_number *out, char *err, size_t errlen)
{
	json_t *j = papi_load_object(body, len, err, errlen);
	bool ok;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return false;
	ok = papi_copy_string(j, "id", out->provider_number_id, sizeof(out->provider_number_id),
		err, errlen);
	if (ok && !papi_copy_e164(j, "number", out->e164, err, errlen)) {
		/* bought but without a usable number: say which, so it can be found and released */
		char why[128];
		json_t *st = json_object_get(j, "status");

		snprintf(why, sizeof(why), "%s", err != NULL && errlen > 0 ? err : "");
		papi_fail(err, errlen, "%s (vapi phone number id %s, status %s)", why,
			out->provider_number_id,
			json_is_string(st) ? json_string_value(st) : "unknown");
		ok = false;
	}
	json_decref(j);
	/* no digits yet (status activating): the id is kept, for the caller to record it pending */
	if (!ok)
		memset(out->e164, 0, sizeof(out->e164));
	return ok;
}

/* The Call object: id. */
static bool
vapi_parse_call(const char *body, size_t len, struct papi_call *out, char *err, size_t errlen)
{
	return papi_parse_field(body, len, "id", out->call_id, sizeof(out->call_id), err, errlen);
}

/*
 * Vapi's (NestJS) error bodies: {"message": "..." or ["...", ...], "error": "Bad Request",
 * "statusCode": 400}.  message first (strings of an array joined with "; "), else error.
 */
static void
vapi_error_message(const char *body, size_t len, char *out, size_t outlen)
{
	json_t *j, *m, *v;
	size_t i;

	if (out == NULL || outlen == 0)
		return;
	out[0] = '\0';
	if (body == NULL || (j = json_loadb(body, len, 0, NULL)) == NULL)
		return;
	if (json_is_object(j)) {
		m = json_object_get(j, "message");
		if (json_is_string(m)) {
			papi_msg_append(out, outlen, json_string_value(m));
		} else if (json_is_array(m)) {
			json_array_foreach(m, i, v) if (json_is_string(v))
				papi_msg_append(out, outlen, json_string_value(v));
		}
		m = json_object_get(j, "error");
		if (out[0] == '\0' && json_is_string(m))
			papi_msg_append(out, outlen, json_string_value(m));
	}
	json_decref(j);
}

/*
 * Listing (the provider sync): GET /phone-number and GET /assistant take limit (default 100,
 * at most 1000) and createdAt/updatedAt filters (Gt, Lt, Ge, Le) and answer a JSON array
 * (Vapi's OpenAPI, paths./phone-number and ./assistant get; https://docs.vapi.ai/api-reference/
 * phone-numbers/list).  Vapi documents no order and no cursor, so pages are walked by
 * createdAt in whichever order a full page comes: newest first, the next page is createdAtLe
 * its oldest createdAt; oldest first, createdAtGe its newest (Le/Ge, not Lt/Gt, so items
 * sharing that instant are not skipped; ids already seen are dropped), until a page is short
 * or brings nothing new.  The cursor is "Le:<time>" or "Ge:<time>".
 */
#define VAPI_PAGE 100

static bool
vapi_list_path(const struct papi_ctx *c, const char *what, const char *cursor,
	struct papi_request *out, char *err, size_t errlen)
{
	char path[400], esc[200];

	if (cursor != NULL && *cursor != '\0') {
		if (strlen(cursor) < 4 || cursor[2] != ':' ||
			(strncmp(cursor, "Le", 2) != 0 && strncmp(cursor, "Ge", 2) != 0))
			return papi_fail(err, errlen, "bad cursor");
		if (!papi_path_escape(cursor + 3, esc, sizeof(esc)))
			return papi_fail(err, errlen, "cursor too long");
		snprintf(path, sizeof(path), "/%s?limit=%d&createdAt%.2s=%s", what, VAPI_PAGE,
			cursor, esc);
	} else {
		snprintf(path, sizeof(path), "/%s?limit=%d", what, VAPI_PAGE);
	}
	return papi_req_start(c, "GET", path, NULL, "Authorization", "Bearer ", out, err, errlen);
}

static bool
vapi_list_numbers(const struct papi_ctx *c, const char *cursor, struct papi_request *out, char *err,
	size_t errlen)
{
	return vapi_list_path(c, "phone-number", cursor, out, err, errlen);
}

static bool
vapi_list_agents(const struct papi_ctx *c, const char *cursor, struct papi_request *out, char *err,
	size_t errlen)
{
	return vapi_list_path(c, "assistant", cursor, out, err, errlen);
}

/* One page of either list; numbers: normalise a phone number, else an assistant. */
static bool
vapi_parse_page(const char *body, size_t len, json_t *into, bool numbers, char *next,
	size_t nextlen, char *err, size_t errlen)
{
	static const char *const own[] = { "assistantId", "squadId", "workflowId" };
	json_t *j = papi_load_json(body, len, err, errlen), *n, *last = NULL;
	size_t i, added = 0;
	bool ok = true;

	*next = '\0';
	if (j == NULL)
		return false;
	if (!json_is_array(j)) {
		json_decref(j);
		return papi_fail(err, errlen, "answer is not an array");
	}
	json_array_foreach(j, i, n)
	{
		json_t *id = papi_item_str(n, "id", PAPI_ID_MAX),
		       *srv = json_object_get(n, "server");
		json_t *owner = json_null(), *agents = json_array();

		last = n;
		if (papi_listed_has(into, id)) {
			json_decref(id);
			json_decref(agents);
			continue;
		}
		added++;
		if (!numbers) {
			json_decref(agents);
			ok = papi_listed_agent(into, id, papi_item_str(n, "name", 256), err,
				errlen);
		} else {
			for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++) {
				json_t *v = papi_item_str(n, own[k], PAPI_ID_MAX);

				if (json_is_string(v) && json_is_null(owner)) {
					owner = json_string(own[k]);
					if (k == 0)
						json_array_append(agents, v);
				}
				json_decref(v);
			}
			/* activating: no "number" yet */
			ok = papi_listed_number(into, papi_item_e164(n, "number"), id,
				papi_item_str(srv, "url", PAPI_URL_MAX), agents, owner,
				papi_item_str(srv, "credentialId", PAPI_ID_MAX),
				papi_item_str(n, "name", 256), err, errlen);
		}
		if (!ok)
			break;
	}
	if (ok && json_array_size(j) >= VAPI_PAGE && added > 0 && last != NULL) {
		json_t *t0 = json_object_get(json_array_get(j, 0), "createdAt");
		json_t *t = json_object_get(last, "createdAt");

		if (!json_is_string(t) || !json_is_string(t0) ||
			json_string_length(t) + 4 > nextlen)
			ok = papi_fail(err, errlen, "a full page whose items have no createdAt");
		else /* ISO 8601 UTC times compare as strings */
			snprintf(next, nextlen, "%s:%s",
				strcmp(json_string_value(t0), json_string_value(t)) >= 0 ? "Le" :
											   "Ge",
				json_string_value(t));
	}
	json_decref(j);
	return ok;
}

static bool
vapi_parse_numbers(const char *body, size_t len, json_t *into, char *next, size_t nextlen,
	char *err, size_t errlen)
{
	return vapi_parse_page(body, len, into, true, next, nextlen, err, errlen);
}

static bool
vapi_parse_agents(const char *body, size_t len, json_t *into, char *next, size_t nextlen, char *err,
	size_t errlen)
{
	return vapi_parse_page(body, len, into, false, next, nextlen, err, errlen);
}

const struct provider_api provider_api_vapi = {
	.provider = PROVIDER_VAPI,
	.default_base_url = "https://api.vapi.ai",
	.purchase = vapi_purchase,
	.update = vapi_update,
	.release = vapi_release,
	.call = vapi_call,
	.call_context = vapi_call_context,
	.parse_number = vapi_parse_number,
	.parse_call = vapi_parse_call,
	.error_message = vapi_error_message,
	.list_numbers = vapi_list_numbers,
	.parse_numbers = vapi_parse_numbers,
	.list_agents = vapi_list_agents,
	.parse_agents = vapi_parse_agents,
	.name_max = VAPI_NAME_MAX,
	.name_field = "name",
};
