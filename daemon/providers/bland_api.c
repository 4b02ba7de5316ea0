/* providers/bland_api.c: Bland's number and call REST API: requests built, answers parsed. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "e164.h"
#include "provider_api.h"
#include "signature.h"

/*
 * Bland (https://api.bland.ai, "authorization: <api_key>", no "Bearer"):
 *   purchase  POST /numbers/purchase     {area_code: "415", country_code: "US"}
 *   assign    POST /v1/inbound/{e164}    {pathway_id, webhook, dynamic_data: [our look-up]}
 *   unassign  POST /v1/inbound/{e164}    {pathway_id: null, prompt: <not in service>, webhook}
 *   release   (no API documented for a number Bland sold): the unassign request, unbind_only
 *   call      POST /v1/calls             {phone_number, from, pathway_id, webhook}
 * Bland has no per-call routing webhook: the number is bound to its agent's pathway, and the
 * dynamic_data request configured on it asks our webhook for the call's context (agent and
 * client names) with a bearer token derived from the account's webhook secret.  The number is
 * Bland's identifier for it (provider_number_id = e164); a nickname is ours only.
 */

#define UNASSIGNED_PROMPT "This number is not in service."

/* ---- helpers (each *_api.c carries its own: provider_api.h exposes none) ---- */

#define ID_MAX 127 /* provider ids: agents, numbers, calls */
#define NICKNAME_MAX 64
#define API_KEY_MAX 256
#define URL_MAX 2048

static bool fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* s present, at most max bytes, no control characters (its value is never echoed). */
static bool check_text(const char *what, const char *s, size_t max, char *err, size_t errlen)
{
	size_t n;

	if (s == NULL || *s == '\0')
		return fail(err, errlen, "%s is required", what);
	for (n = 0; s[n] != '\0'; n++)
		if (is_control((unsigned char)s[n]))
			return fail(err, errlen, "%s must not contain control characters", what);
	if (n > max)
		return fail(err, errlen, "%s must be at most %zu bytes", what, max);
	return true;
}

static bool check_area_code(const char *s, char *err, size_t errlen)
{
	if (s == NULL || strlen(s) != 3 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
		s[2] < '0' || s[2] > '9')
		return fail(err, errlen, "area_code must be 3 digits");
	if (s[0] < '2')
		return fail(err, errlen, "area_code must not start with 0 or 1");
	return true;
}

/* A nickname is optional: NULL or "" is none. */
static bool check_nickname(const char *s, char *err, size_t errlen)
{
	return s == NULL || *s == '\0' || check_text("nickname", s, NICKNAME_MAX, err, errlen);
}

static bool to_e164(const char *what, const char *s, char out[E164_BUFSIZE], char *err,
	size_t errlen)
{
	uint64_t key;

	if (s == NULL || *s == '\0')
		return fail(err, errlen, "%s is required", what);
	if (!e164_parse(s, strlen(s), &key) || e164_format(key, out, E164_BUFSIZE) == 0)
		return fail(err, errlen, "%s is not an E.164 number", what);
	return true;
}

/* Wipes out (body and auth header): a failed builder leaves nothing behind. */
static bool req_fail(struct papi_request *out)
{
	papi_request_clear(out);
	memset(out, 0, sizeof(*out));
	return false;
}

/*
 * out = method, prefix + escaped arg (if any), the auth header; no body yet.  Every builder
 * zeroes out first, so a failed one leaves an out that papi_request_clear() accepts.
 */
static bool req_start(const struct papi_ctx *c, const char *method, const char *prefix,
	const char *arg, struct papi_request *out, char *err, size_t errlen)
{
	char esc[sizeof(out->path)];
	int n;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return fail(err, errlen, "no account context");
	if (!check_text("api key", c->api_key, API_KEY_MAX, err, errlen))
		return false;
	if (arg != NULL && !papi_path_escape(arg, esc, sizeof(esc)))
		return fail(err, errlen, "request path too long");
	n = snprintf(out->path, sizeof(out->path), "%s%s", prefix, arg != NULL ? esc : "");
	if (n < 0 || (size_t)n >= sizeof(out->path)) {
		req_fail(out);
		return fail(err, errlen, "request path too long");
	}
	out->method = method;
	snprintf(out->auth_name, sizeof(out->auth_name), "authorization");
	snprintf(out->auth_value, sizeof(out->auth_value), "%s", c->api_key);
	return true;
}

/* Hands body (NULL: json_pack failed) to out. */
static bool req_body(struct papi_request *out, json_t *body, char *err, size_t errlen)
{
	if (body == NULL) {
		req_fail(out);
		return fail(err, errlen, "could not build the request body (invalid UTF-8?)");
	}
	out->body = body;
	return true;
}

static bool check_webhook(const struct papi_ctx *c, char *err, size_t errlen)
{
	return check_text("webhook url", c->webhook_url, URL_MAX, err, errlen);
}

static json_t *load_object(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j;

	if (body == NULL || len == 0) {
		fail(err, errlen, "empty answer");
		return NULL;
	}
	j = json_loadb(body, len, 0, &je);
	if (j == NULL) {
		fail(err, errlen, "answer is not JSON: %s", je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		fail(err, errlen, "answer is not a JSON object");
		return NULL;
	}
	return j;
}

/* o[key]: a non-empty string without control characters that fits out. */
static bool copy_string(json_t *o, const char *key, char *out, size_t outlen, char *err,
	size_t errlen)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	size_t n, i;

	if (!json_is_string(v))
		return fail(err, errlen, "answer has no \"%s\" string", key);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0)
		return fail(err, errlen, "answer's \"%s\" is empty", key);
	if (n >= outlen)
		return fail(err, errlen, "answer's \"%s\" is too long", key);
	for (i = 0; i < n; i++)
		if (is_control((unsigned char)s[i]))
			return fail(err, errlen, "answer's \"%s\" has control characters", key);
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* o[key]: an E.164 number, normalised. */
static bool copy_e164(json_t *o, const char *key, char out[E164_BUFSIZE], char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	uint64_t k;

	if (!json_is_string(v))
		return fail(err, errlen, "answer has no \"%s\" string", key);
	if (!e164_parse(json_string_value(v), json_string_length(v), &k) ||
		e164_format(k, out, E164_BUFSIZE) == 0)
		return fail(err, errlen, "answer's \"%s\" is not an E.164 number", key);
	return true;
}

/* Appends s to out ("; " between messages), control characters as spaces, truncated. */
static void msg_append(char *out, size_t outlen, const char *s)
{
	size_t n = strlen(out);

	if (*s == '\0')
		return;
	if (n > 0) {
		if (outlen - n < 3)
			return;
		out[n++] = ';';
		out[n++] = ' ';
	}
	for (; *s != '\0' && n + 1 < outlen; s++)
		out[n++] = is_control((unsigned char)*s) ? ' ' : *s;
	out[n] = '\0';
}

/* ---- Bland ---- */

static bool bland_purchase(const struct papi_ctx *c, const char *area_code, const char *nickname,
	struct papi_request *out, char *err, size_t errlen)
{
	if (!req_start(c, "POST", "/numbers/purchase", NULL, out, err, errlen))
		return false;
	/* the nickname is kept in our database only: Bland has no field for it */
	if (!check_area_code(area_code, err, errlen) || !check_nickname(nickname, err, errlen))
		return req_fail(out);
	return req_body(out, json_pack("{s:s, s:s}", "area_code", area_code, "country_code", "US"),
		err, errlen);
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
static json_t *bland_unbind_body(const struct papi_ctx *c)
{
	return json_pack("{s:n, s:s, s:s}", "pathway_id", "prompt", UNASSIGNED_PROMPT, "webhook",
		c->webhook_url);
}

/*
 * Binding: the agent's pathway, our post-call webhook, and the dynamic_data look-up that gives
 * the pathway {{agent_name}} and {{client_name}}.  Bland fills the body's {{to}}, {{from}}
 * and {{call_id}}; it cannot sign the body, hence the token (sig_bland_dynamic_token).
 * Bland's page warns that setting a pathway resets prompt, first_sentence, model, dynamic_data,
 * tools and transfer_list; whether that also drops a dynamic_data sent in the same request is
 * not documented (the answer's "updates" would tell).
 */
static bool bland_assign(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
	const char *provider_agent_id, struct papi_request *out, char *err, size_t errlen)
{
	char num[E164_BUFSIZE], token[65], bearer[80];
	json_t *body;

	memset(out, 0, sizeof(*out));
	if (!to_e164("number", e164, num, err, errlen) ||
		!req_start(c, "POST", "/v1/inbound/", num, out, err, errlen))
		return false;
	if (!check_webhook(c, err, errlen))
		return req_fail(out);
	if (provider_agent_id == NULL)
		return req_body(out, bland_unbind_body(c), err, errlen);
	if (!check_text("agent id", provider_agent_id, ID_MAX, err, errlen) ||
		!check_text("slug", c->slug, ID_MAX, err, errlen))
		return req_fail(out);
	if (c->webhook_secret == NULL || c->webhook_secret[0] == '\0' ||
		!sig_bland_dynamic_token(c->webhook_secret, c->slug, token)) {
		req_fail(out);
		return fail(err, errlen, "bland's dynamic_data look-up needs a webhook secret");
	}
	snprintf(bearer, sizeof(bearer), "Bearer %s", token);
	/* clang-format off */
	body = json_pack("{s:s, s:s, s:[{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s}, s:b,"
			" s:[{s:s, s:s}, {s:s, s:s}]}]}",
		"pathway_id", provider_agent_id,
		"webhook", c->webhook_url,
		"dynamic_data",
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
	return req_body(out, body, err, errlen);
}

/* Bland sells numbers but documents no way to give one back: unbind it and say so. */
static bool bland_release(const struct papi_ctx *c, const char *e164,
	const char *provider_number_id, struct papi_request *out, bool *unbind_only, char *err,
	size_t errlen)
{
	if (unbind_only != NULL)
		*unbind_only = true;
	return bland_assign(c, e164, provider_number_id, NULL, out, err, errlen);
}

static bool bland_call(const struct papi_ctx *c, const char *from_e164,
	const char *from_provider_number_id, const char *to_e164_in, const char *provider_agent_id,
	struct papi_request *out, char *err, size_t errlen)
{
	char from[E164_BUFSIZE], to[E164_BUFSIZE];

	memset(out, 0, sizeof(*out));
	if (!to_e164("from number", from_e164, from, err, errlen) ||
		!to_e164("to number", to_e164_in, to, err, errlen) ||
		!check_text("agent id", provider_agent_id, ID_MAX, err, errlen) ||
		!req_start(c, "POST", "/v1/calls", NULL, out, err, errlen))
		return false;
	if (!check_webhook(c, err, errlen))
		return req_fail(out);
	return req_body(out,
		json_pack("{s:s, s:s, s:s, s:s}", "phone_number", to, "from", from, "pathway_id",
			provider_agent_id, "webhook", c->webhook_url),
		err, errlen);
}

/*
 * Bland's error bodies: {"status": "error", "message": "..."}, {"error": "..."}, or
 * {"data": null, "errors": [{"error": "<code>", "message": "..."}, ...]} (or strings).
 */
static void bland_error_message(const char *body, size_t len, char *out, size_t outlen)
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
			msg_append(out, outlen, json_string_value(v));
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
					msg_append(out, outlen, json_string_value(v));
			}
		}
	}
	json_decref(j);
}

/* A 2xx answer may still say {"status": "error", ...}: refuse it with Bland's message. */
static bool bland_status_ok(json_t *j, const char *body, size_t len, char *err, size_t errlen)
{
	json_t *st = json_object_get(j, "status");
	char msg[256];

	if (!json_is_string(st) || strcmp(json_string_value(st), "error") != 0)
		return true;
	bland_error_message(body, len, msg, sizeof(msg));
	return fail(err, errlen, "bland answered status \"error\"%s%s", msg[0] ? ": " : "", msg);
}

/*
 * The purchase answer: {"phone_number": "+1..."} (documented in the older version of the page);
 * the same under "data" (Bland's newer {data, errors} envelope) is accepted too.
 */
static bool bland_parse_number(const char *body, size_t len, struct papi_number *out, char *err,
	size_t errlen)
{
	json_t *j = load_object(body, len, err, errlen), *o, *data;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return false;
	o = j;
	data = json_object_get(j, "data");
	if (!json_object_get(j, "phone_number") && json_is_object(data))
		o = data;
	ok = bland_status_ok(j, body, len, err, errlen) &&
	     copy_e164(o, "phone_number", out->e164, err, errlen);
	json_decref(j);
	if (!ok)
		return false;
	snprintf(out->provider_number_id, sizeof(out->provider_number_id), "%s", out->e164);
	return true;
}

/* {"status": "success", "message": "Call successfully queued.", "call_id": "...", ...} */
static bool bland_parse_call(const char *body, size_t len, struct papi_call *out, char *err,
	size_t errlen)
{
	json_t *j = load_object(body, len, err, errlen);
	bool ok;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return false;
	ok = bland_status_ok(j, body, len, err, errlen) &&
	     copy_string(j, "call_id", out->call_id, sizeof(out->call_id), err, errlen);
	json_decref(j);
	return ok;
}

const struct provider_api provider_api_bland = {
	.provider = PROVIDER_BLAND,
	.default_base_url = "https://api.bland.ai",
	.purchase = bland_purchase,
	.assign = bland_assign,
	.release = bland_release,
	.call = bland_call,
	.parse_number = bland_parse_number,
	.parse_call = bland_parse_call,
	.error_message = bland_error_message,
};
