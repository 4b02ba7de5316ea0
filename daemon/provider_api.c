/* provider_api.c: the provider API look-up (from the registry), request clean-up, path escaping. */
#include <stdbool.h>
#include <stddef.h>

#include <stdarg.h>
#include <stdio.h>
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
