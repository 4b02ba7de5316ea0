/* common/admin_api.c: the admin API's ids and tokens (shared by api.c and callroutectl). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "callrouted/admin_api.h"
#include "callrouted/text.h"

bool
admin_api_parse_id(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s) || strlen(s) > 18)
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0)
		return false;
	*out = v;
	return true;
}

/* base64url without padding of n bytes into out (4 characters per 3 bytes, then a NUL). */
static void
admin_base64url(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
	}
	out[o] = 0;
}

bool
admin_token_new(char out[ADMIN_TOKEN_SIZE])
{
	unsigned char raw[ADMIN_TOKEN_BYTES];
	size_t n = strlen(ADMIN_TOKEN_PREFIX);

	out[0] = 0;
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return false;
	memcpy(out, ADMIN_TOKEN_PREFIX, n);
	admin_base64url(raw, sizeof(raw), out + n);
	OPENSSL_cleanse(raw, sizeof(raw));
	return true;
}

bool
admin_token_ok(const char *token)
{
	return text_ok(token, ADMIN_TOKEN_MAX) && !strchr(token, ' ');
}

void
admin_token_sha256_hex(const char *token, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)token, strlen(token), md);
	for (size_t i = 0; i < sizeof(md); i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * sizeof(md)] = 0;
}
