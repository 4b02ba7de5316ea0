/* providers/vapi_api.c: Vapi's number and call REST API: requests built, answers parsed. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "e164.h"
#include "provider_api.h"

/*
 * Vapi (https://api.vapi.ai, "Authorization: Bearer <api_key>"):
 *   purchase  POST /phone-number
 *             {provider: "vapi", numberDesiredAreaCode, name?, server: {url}}
 *   assign    PATCH /phone-number/{id}
 *             {assistantId: null, squadId: null, workflowId: null, server: {url}}
 *   unassign  the same
 *   release   DELETE /phone-number/{id}
 *   call      POST /call  {phoneNumberId, customer: {number}, assistantId}
 * A number with no assistantId, squadId or workflowId sends every inbound call to its server
 * URL as an assistant-request, and our routing table answers it: "assigning" at Vapi only makes
 * sure the number asks us; which agent answers is the routing table's business.  Vapi's id of
 * the number (provider_number_id) is its "id", not the number.
 */

#include "providers/papi_util.h"

/* ---- Vapi ---- */

static bool vapi_purchase(const struct papi_ctx *c, const char *area_code, const char *nickname,
	struct papi_request *out, char *err, size_t errlen)
{
	if (!papi_req_start(c, "POST", "/phone-number", NULL, "Authorization", "Bearer ", out, err, errlen))
		return false;
	if (!papi_check_webhook(c, err, errlen) || !papi_check_area_code(area_code, err, errlen) ||
		!papi_check_nickname(nickname, err, errlen))
		return papi_req_fail(out);
	/* no assistantId: every call sends an assistant-request */
	return papi_req_body(out,
		json_pack("{s:s, s:s, s:s*, s:{s:s}}", "provider", "vapi", "numberDesiredAreaCode",
			area_code, "name", nickname != NULL && *nickname != '\0' ? nickname : NULL,
			"server", "url", c->webhook_url),
		err, errlen);
}

/*
 * Assign and unassign send the same body: the number must hold no assistant, squad or workflow
 * of its own (else Vapi never asks us) and must point at our webhook.  The agent is validated
 * but not sent.
 */
static bool vapi_assign(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
	const char *provider_agent_id, struct papi_request *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!papi_check_text("provider number id", provider_number_id, PAPI_ID_MAX, err, errlen) ||
		(provider_agent_id != NULL &&
			!papi_check_text("agent id", provider_agent_id, PAPI_ID_MAX, err, errlen)) ||
		!papi_req_start(c, "PATCH", "/phone-number/", provider_number_id, "Authorization", "Bearer ", out, err, errlen))
		return false;
	if (!papi_check_webhook(c, err, errlen))
		return papi_req_fail(out);
	return papi_req_body(out,
		json_pack("{s:n, s:n, s:n, s:{s:s}}", "assistantId", "squadId", "workflowId",
			"server", "url", c->webhook_url),
		err, errlen);
}

static bool vapi_release(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
	struct papi_request *out, bool *unbind_only, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (unbind_only != NULL)
		*unbind_only = false;
	return papi_check_text("provider number id", provider_number_id, PAPI_ID_MAX, err, errlen) &&
	       papi_req_start(c, "DELETE", "/phone-number/", provider_number_id, "Authorization", "Bearer ", out, err, errlen);
}

/* The caller ID is Vapi's id of our number (phoneNumberId); from_e164 is not sent. */
static bool vapi_call(const struct papi_ctx *c, const char *from_e164,
	const char *from_provider_number_id, const char *to_e164_in, const char *provider_agent_id,
	struct papi_request *out, char *err, size_t errlen)
{
	char to[E164_BUFSIZE];

	memset(out, 0, sizeof(*out));
	if (!papi_check_text("from number id", from_provider_number_id, PAPI_ID_MAX, err, errlen) ||
		!papi_to_e164("to number", to_e164_in, to, err, errlen) ||
		!papi_check_text("agent id", provider_agent_id, PAPI_ID_MAX, err, errlen) ||
		!papi_req_start(c, "POST", "/call", NULL, "Authorization", "Bearer ", out, err, errlen))
		return false;
	return papi_req_body(out,
		json_pack("{s:s, s:{s:s}, s:s}", "phoneNumberId", from_provider_number_id,
			"customer", "number", to, "assistantId", provider_agent_id),
		err, errlen);
}

/* The phone number object: id (ours to keep) and number (E.164). */
static bool vapi_parse_number(const char *body, size_t len, struct papi_number *out, char *err,
	size_t errlen)
{
	json_t *j = papi_load_object(body, len, err, errlen);
	bool ok;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return false;
	ok = papi_copy_string(j, "id", out->provider_number_id, sizeof(out->provider_number_id), err,
		errlen);
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
	if (!ok)
		memset(out, 0, sizeof(*out));
	return ok;
}

/* The Call object: id. */
static bool vapi_parse_call(const char *body, size_t len, struct papi_call *out, char *err,
	size_t errlen)
{
	return papi_parse_field(body, len, "id", out->call_id, sizeof(out->call_id), err, errlen);
}

/*
 * Vapi's (NestJS) error bodies: {"message": "..." or ["...", ...], "error": "Bad Request",
 * "statusCode": 400}.  message first (strings of an array joined with "; "), else error.
 */
static void vapi_error_message(const char *body, size_t len, char *out, size_t outlen)
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

const struct provider_api provider_api_vapi = {
	.provider = PROVIDER_VAPI,
	.default_base_url = "https://api.vapi.ai",
	.purchase = vapi_purchase,
	.assign = vapi_assign,
	.release = vapi_release,
	.call = vapi_call,
	.parse_number = vapi_parse_number,
	.parse_call = vapi_parse_call,
	.error_message = vapi_error_message,
};
