/* provider_api.c: the provider API look-up (from the registry), request clean-up, path escaping. */
#include <stdbool.h>
#include <stddef.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <jansson.h>

#include "provider_api.h"
#include "providers/registry.h"

/* The provider's REST API ops, from the one registry (daemon/providers/registry.c). */
const struct provider_api *
provider_api_get(enum provider_id p)
{
	const struct provider_ops *ops = provider_ops_get(p);

	return ops ? ops->api : NULL;
}

static bool
papi_context_key(const char *k, const char *extra)
{
	size_t n = strlen(k);

	if (n < 1 || n > PAPI_VAR_KEY_MAX || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (; *k; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
			    (*k >= '0' && *k <= '9') || *k == '_' || (*k && strchr(extra, *k))))
			return false;
	return true;
}

static size_t
papi_json_bytes(json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	size_t n = s ? strlen(s) : 0;

	free(s);
	return n;
}

bool
papi_check_call_context(json_t *variables, json_t *metadata, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	size_t vb, mb;

	if (variables) {
		if (json_object_size(variables) > PAPI_VARS_MAX) {
			snprintf(err, errlen, "variables: at most %d keys", PAPI_VARS_MAX);
			return false;
		}
		json_object_foreach(variables, key, v)
		{
			if (!papi_context_key(key, "")) {
				snprintf(err, errlen,
					"variables: a key is 1 to %d of A-Z a-z 0-9 _, not starting "
					"with a digit",
					PAPI_VAR_KEY_MAX);
				return false;
			}
			if (!json_is_string(v)) {
				snprintf(err, errlen, "variables.%s: a string", key);
				return false;
			}
			if (json_string_length(v) > PAPI_VAR_VALUE_MAX ||
				strlen(json_string_value(v)) != json_string_length(v)) {
				snprintf(err, errlen,
					"variables.%s: at most %d bytes (UTF-8), no NUL character",
					key, PAPI_VAR_VALUE_MAX);
				return false;
			}
		}
	}
	if (metadata) {
		if (json_object_size(metadata) > PAPI_VARS_MAX) {
			snprintf(err, errlen, "metadata: at most %d keys", PAPI_VARS_MAX);
			return false;
		}
		json_object_foreach(metadata, key, v)
		{
			if (!papi_context_key(key, ".-")) {
				snprintf(err, errlen,
					"metadata: a key is 1 to %d of A-Z a-z 0-9 _ . -, not starting "
					"with a digit",
					PAPI_VAR_KEY_MAX);
				return false;
			}
		}
	}
	vb = papi_json_bytes(variables);
	mb = papi_json_bytes(metadata);
	if (vb > PAPI_CONTEXT_BYTES_MAX || mb > PAPI_CONTEXT_BYTES_MAX ||
		vb + mb > PAPI_CONTEXT_BYTES_MAX) {
		snprintf(err, errlen,
			"variables and metadata: at most %d bytes as compact JSON, together (%zu)",
			PAPI_CONTEXT_BYTES_MAX, vb + mb);
		return false;
	}
	return true;
}

void
papi_request_clear(struct papi_request *r)
{
	if (r == NULL)
		return;
	json_decref(r->body);
	r->body = NULL;
}

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 percent-encoding of everything but the unreserved characters; false if out is short. */
bool
papi_path_escape(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (out == NULL || outlen == 0)
		return false;
	out[0] = '\0';
	if (s == NULL)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (is_unreserved(c)) {
			if (outlen - o < 2)
				goto fail;
			out[o++] = (char)c;
		} else {
			if (outlen - o < 4)
				goto fail;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0x0f];
		}
	}
	out[o] = '\0';
	return true;
fail:
	out[0] = '\0';
	return false;
}
