/* providers/papi_util.c: checks, requests and answer parsing shared by the REST APIs. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "callrouted/text.h"
#include "provider_api.h"
#include "providers/papi_util.h"

bool
papi_check_name(const struct provider_api *pa, const char *nickname, char *err, size_t errlen)
{
	size_t n = 0;

	if (pa == NULL || nickname == NULL || *nickname == '\0' || pa->name_max == 0)
		return true;
	for (const unsigned char *p = (const unsigned char *)nickname; *p; p++)
		if ((*p & 0xc0) != 0x80)
			n++;
	if (n > pa->name_max)
		return papi_fail(err, errlen,
			"nickname: at most %zu characters for a %s number (%s's %s field)",
			pa->name_max, provider_name(pa->provider), provider_name(pa->provider),
			pa->name_field ? pa->name_field : "name");
	return true;
}

bool
papi_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* s present, at most max bytes, no control characters (its value is never echoed). */
bool
papi_check_text(const char *what, const char *s, size_t max, char *err, size_t errlen)
{
	size_t n;

	if (s == NULL || *s == '\0')
		return papi_fail(err, errlen, "%s is required", what);
	for (n = 0; s[n] != '\0'; n++)
		if (text_is_control((unsigned char)s[n]))
			return papi_fail(err, errlen, "%s must not contain control characters",
				what);
	if (n > max)
		return papi_fail(err, errlen, "%s must be at most %zu bytes", what, max);
	return true;
}

bool
papi_check_area_code(const char *s, char *err, size_t errlen)
{
	if (s == NULL || strlen(s) != 3 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
		s[2] < '0' || s[2] > '9')
		return papi_fail(err, errlen, "area_code must be 3 digits");
	if (s[0] < '2')
		return papi_fail(err, errlen, "area_code must not start with 0 or 1");
	return true;
}

/* A nickname is optional: NULL or "" is none. */
bool
papi_check_nickname(const char *s, char *err, size_t errlen)
{
	return s == NULL || *s == '\0' ||
	       papi_check_text("nickname", s, PAPI_NICKNAME_MAX, err, errlen);
}

bool
papi_to_e164(const char *what, const char *s, char out[E164_BUFSIZE], char *err, size_t errlen)
{
	uint64_t key;

	if (s == NULL || *s == '\0')
		return papi_fail(err, errlen, "%s is required", what);
	if (!e164_parse(s, strlen(s), &key) || e164_format(key, out, E164_BUFSIZE) == 0)
		return papi_fail(err, errlen, "%s is not an E.164 number", what);
	return true;
}

/* Wipes out (body and auth header): a failed builder leaves nothing behind. */
bool
papi_req_fail(struct papi_request *out)
{
	papi_request_clear(out);
	memset(out, 0, sizeof(*out));
	return false;
}

/*
 * out = method, prefix + escaped arg (if any), the auth header; no body yet.  Every builder
 * zeroes out first, so a failed one leaves an out that papi_request_clear() accepts.
 */
bool
papi_req_start(const struct papi_ctx *c, const char *method, const char *prefix, const char *arg,
	const char *auth_name, const char *auth_scheme, struct papi_request *out, char *err,
	size_t errlen)
{
	char esc[sizeof(out->path)];
	int n;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return papi_fail(err, errlen, "no account context");
	if (!papi_check_text("api key", c->api_key, PAPI_API_KEY_MAX, err, errlen))
		return false;
	if (arg != NULL && !papi_path_escape(arg, esc, sizeof(esc)))
		return papi_fail(err, errlen, "request path too long");
	n = snprintf(out->path, sizeof(out->path), "%s%s", prefix, arg != NULL ? esc : "");
	if (n < 0 || (size_t)n >= sizeof(out->path)) {
		papi_req_fail(out);
		return papi_fail(err, errlen, "request path too long");
	}
	out->method = method;
	snprintf(out->auth_name, sizeof(out->auth_name), "%s", auth_name);
	snprintf(out->auth_value, sizeof(out->auth_value), "%s%s", auth_scheme, c->api_key);
	return true;
}

/* Hands body (NULL: json_pack failed) to out. */
bool
papi_req_body(struct papi_request *out, json_t *body, char *err, size_t errlen)
{
	if (body == NULL) {
		papi_req_fail(out);
		return papi_fail(err, errlen, "could not build the request body (invalid UTF-8?)");
	}
	out->body = body;
	return true;
}

bool
papi_check_webhook(const struct papi_ctx *c, char *err, size_t errlen)
{
	return papi_check_text("webhook url", c->webhook_url, PAPI_URL_MAX, err, errlen);
}

json_t *
papi_load_object(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j;

	if (body == NULL || len == 0) {
		papi_fail(err, errlen, "empty answer");
		return NULL;
	}
	j = json_loadb(body, len, 0, &je);
	if (j == NULL) {
		papi_fail(err, errlen, "answer is not JSON: %s", je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		papi_fail(err, errlen, "answer is not a JSON object");
		return NULL;
	}
	return j;
}

/* o[key]: a non-empty string without control characters that fits out. */
bool
papi_copy_string(json_t *o, const char *key, char *out, size_t outlen, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	size_t n, i;

	if (!json_is_string(v))
		return papi_fail(err, errlen, "answer has no \"%s\" string", key);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0)
		return papi_fail(err, errlen, "answer's \"%s\" is empty", key);
	if (n >= outlen)
		return papi_fail(err, errlen, "answer's \"%s\" is too long", key);
	for (i = 0; i < n; i++)
		if (text_is_control((unsigned char)s[i]))
			return papi_fail(err, errlen, "answer's \"%s\" has control characters",
				key);
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* o[key]: an E.164 number, normalised. */
bool
papi_copy_e164(json_t *o, const char *key, char out[E164_BUFSIZE], char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	uint64_t k;

	if (!json_is_string(v))
		return papi_fail(err, errlen, "answer has no \"%s\" string", key);
	if (!e164_parse(json_string_value(v), json_string_length(v), &k) ||
		e164_format(k, out, E164_BUFSIZE) == 0)
		return papi_fail(err, errlen, "answer's \"%s\" is not an E.164 number", key);
	return true;
}

/* Appends s to out ("; " between messages), control characters as spaces, truncated. */
void
papi_msg_append(char *out, size_t outlen, const char *s)
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
		out[n++] = text_is_control((unsigned char)*s) ? ' ' : *s;
	out[n] = '\0';
}

bool
papi_parse_field(const char *body, size_t len, const char *key, char *out, size_t outlen, char *err,
	size_t errlen)
{
	json_t *j = papi_load_object(body, len, err, errlen);
	bool ok;

	memset(out, 0, outlen);
	if (j == NULL)
		return false;
	ok = papi_copy_string(j, key, out, outlen, err, errlen);
	json_decref(j);
	return ok;
}

/* ---- listing (the provider sync) ---- */

json_t *
papi_load_json(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j;

	if (body == NULL || len == 0) {
		papi_fail(err, errlen, "empty answer");
		return NULL;
	}
	j = json_loadb(body, len, JSON_DECODE_ANY, &je);
	if (j == NULL)
		papi_fail(err, errlen, "answer is not JSON: %s", je.text);
	return j;
}

/* o[key] as a new JSON string when it is printable text of at most max bytes, else null. */
json_t *
papi_item_str(json_t *o, const char *key, size_t max)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
		return json_null();
	for (const char *s = json_string_value(v); *s; s++)
		if (text_is_control((unsigned char)*s))
			return json_null();
	return json_string(json_string_value(v));
}

/* o[key] as a normalised E.164 JSON string, or null. */
json_t *
papi_item_e164(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	char buf[E164_BUFSIZE];
	uint64_t k;

	if (!json_is_string(v) || !e164_parse(json_string_value(v), json_string_length(v), &k) ||
		e164_format(k, buf, sizeof(buf)) == 0)
		return json_null();
	return json_string(buf);
}

/* Append a normalised number (provider_api.h); every json_t argument is stolen. */
bool
papi_listed_number(json_t *into, json_t *e164, json_t *id, json_t *webhook, json_t *agents,
	json_t *owner, json_t *credential, json_t *name, char *err, size_t errlen)
{
	json_t *o;

	if (id == NULL || !json_is_string(id)) {
		json_decref(e164);
		json_decref(id);
		json_decref(webhook);
		json_decref(agents);
		json_decref(owner);
		json_decref(credential);
		json_decref(name);
		return papi_fail(err, errlen, "a listed number has no usable id");
	}
	o = json_pack("{s:o*, s:o, s:o*, s:o*, s:o*, s:o*, s:o*}", "e164", e164, "id", id,
		"webhook", webhook, "agents", agents ? agents : json_array(), "owner", owner,
		"credential", credential, "name", name);
	if (o == NULL || json_array_append_new(into, o) != 0)
		return papi_fail(err, errlen, "out of memory");
	return true;
}

bool
papi_listed_agent(json_t *into, json_t *id, json_t *name, char *err, size_t errlen)
{
	json_t *o;

	if (id == NULL || !json_is_string(id)) {
		json_decref(id);
		json_decref(name);
		return papi_fail(err, errlen, "a listed agent has no usable id");
	}
	o = json_pack("{s:o, s:o*}", "id", id, "name", name);
	if (o == NULL || json_array_append_new(into, o) != 0)
		return papi_fail(err, errlen, "out of memory");
	return true;
}

/* An item of into already has this id (a JSON string). */
bool
papi_listed_has(json_t *into, json_t *id)
{
	size_t i;
	json_t *o;

	if (!json_is_string(id))
		return false;
	json_array_foreach(into, i, o)
	{
		if (json_equal(json_object_get(o, "id"), id))
			return true;
	}
	return false;
}
