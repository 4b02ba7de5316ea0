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
 *   purchase  POST   /phone-number       {provider: "vapi", numberDesiredAreaCode, name?,
 *                                         server: {url}}
 *   assign    PATCH  /phone-number/{id}  {assistantId: null, squadId: null, workflowId: null,
 *                                         server: {url}}   (unassign: the same)
 *   release   DELETE /phone-number/{id}
 *   call      POST   /call               {phoneNumberId, customer: {number}, assistantId}
 * A number with no assistantId, squadId or workflowId sends every inbound call to its server
 * URL as an assistant-request, and our routing table answers it: "assigning" at Vapi only makes
 * sure the number asks us; which agent answers is the routing table's business.  Vapi's id of
 * the number (provider_number_id) is its "id", not the number.
 */

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
	snprintf(out->auth_name, sizeof(out->auth_name), "Authorization");
	snprintf(out->auth_value, sizeof(out->auth_value), "Bearer %s", c->api_key);
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

/* ---- Vapi ---- */

static bool vapi_purchase(const struct papi_ctx *c, const char *area_code, const char *nickname,
	struct papi_request *out, char *err, size_t errlen)
{
	if (!req_start(c, "POST", "/phone-number", NULL, out, err, errlen))
		return false;
	if (!check_webhook(c, err, errlen) || !check_area_code(area_code, err, errlen) ||
		!check_nickname(nickname, err, errlen))
		return req_fail(out);
	/* no assistantId: every call sends an assistant-request */
	return req_body(out,
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
	if (!check_text("provider number id", provider_number_id, ID_MAX, err, errlen) ||
		(provider_agent_id != NULL &&
			!check_text("agent id", provider_agent_id, ID_MAX, err, errlen)) ||
		!req_start(c, "PATCH", "/phone-number/", provider_number_id, out, err, errlen))
		return false;
	if (!check_webhook(c, err, errlen))
		return req_fail(out);
	return req_body(out,
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
	return check_text("provider number id", provider_number_id, ID_MAX, err, errlen) &&
	       req_start(c, "DELETE", "/phone-number/", provider_number_id, out, err, errlen);
}

/* The caller ID is Vapi's id of our number (phoneNumberId); from_e164 is not sent. */
static bool vapi_call(const struct papi_ctx *c, const char *from_e164,
	const char *from_provider_number_id, const char *to_e164_in, const char *provider_agent_id,
	struct papi_request *out, char *err, size_t errlen)
{
	char to[E164_BUFSIZE];

	memset(out, 0, sizeof(*out));
	if (!check_text("from number id", from_provider_number_id, ID_MAX, err, errlen) ||
		!to_e164("to number", to_e164_in, to, err, errlen) ||
		!check_text("agent id", provider_agent_id, ID_MAX, err, errlen) ||
		!req_start(c, "POST", "/call", NULL, out, err, errlen))
		return false;
	return req_body(out,
		json_pack("{s:s, s:{s:s}, s:s}", "phoneNumberId", from_provider_number_id,
			"customer", "number", to, "assistantId", provider_agent_id),
		err, errlen);
}

/* The phone number object: id (ours to keep) and number (E.164). */
static bool vapi_parse_number(const char *body, size_t len, struct papi_number *out, char *err,
	size_t errlen)
{
	json_t *j = load_object(body, len, err, errlen);
	bool ok;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return false;
	ok = copy_string(j, "id", out->provider_number_id, sizeof(out->provider_number_id), err,
		errlen);
	if (ok && !copy_e164(j, "number", out->e164, err, errlen)) {
		/* bought but without a usable number: say which, so it can be found and released */
		char why[128];
		json_t *st = json_object_get(j, "status");

		snprintf(why, sizeof(why), "%s", err != NULL && errlen > 0 ? err : "");
		fail(err, errlen, "%s (vapi phone number id %s, status %s)", why,
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
	json_t *j = load_object(body, len, err, errlen);
	bool ok;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return false;
	ok = copy_string(j, "id", out->call_id, sizeof(out->call_id), err, errlen);
	json_decref(j);
	return ok;
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
			msg_append(out, outlen, json_string_value(m));
		} else if (json_is_array(m)) {
			json_array_foreach(m, i, v) if (json_is_string(v))
				msg_append(out, outlen, json_string_value(v));
		}
		m = json_object_get(j, "error");
		if (out[0] == '\0' && json_is_string(m))
			msg_append(out, outlen, json_string_value(m));
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
