/* common/signature.c: webhook signature checks of each provider (HMAC-SHA256, constant time). */
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "callrouted/signature.h"

#define SIG_DIGEST_LEN 32
#define SIG_HEX_LEN (2 * SIG_DIGEST_LEN)
#define SIG_MAX_TS_DIGITS 19                     /* 19 decimal digits always fit in uint64_t */
#define VAPI_MS_THRESHOLD UINT64_C(100000000000) /* 1e11: smaller timestamps are seconds */

static const char dynamic_data_prefix[] = "callrouted-dynamic-data:";

/* The HMAC implementation, fetched once (explicit fetching spares a lookup per request). */
static EVP_MAC *hmac_mac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
/* One HMAC-SHA256 context per thread, its digest set once: a request only re-keys it (no
 * allocation and no digest look-up per request).  Freed when its thread exits. */
static pthread_key_t hmac_ctx_key;

static void
hmac_ctx_free(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
}

static void
hmac_fetch(void)
{
	hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (pthread_key_create(&hmac_ctx_key, hmac_ctx_free) != 0) {
		EVP_MAC_free(hmac_mac);
		hmac_mac = NULL;
	}
}

static EVP_MAC_CTX *
hmac_ctx(void)
{
	static char digest_name[] = "SHA256";
	EVP_MAC_CTX *ctx = pthread_getspecific(hmac_ctx_key);
	OSSL_PARAM params[2];

	if (ctx != NULL)
		return ctx;
	ctx = EVP_MAC_CTX_new(hmac_mac);
	if (ctx == NULL)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(ctx, params) || pthread_setspecific(hmac_ctx_key, ctx) != 0) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

const char *
sig_result_name(enum sig_result r)
{
	switch (r) {
	case SIG_OK:
		return "ok";
	case SIG_MISSING:
		return "missing";
	case SIG_MALFORMED:
		return "malformed";
	case SIG_STALE:
		return "stale";
	case SIG_MISMATCH:
		return "mismatch";
	}
	return "unknown";
}

bool
sig_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return false;
	if (alen == 0)
		return true;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

bool
sig_hmac_sha256_hex(const void *key, size_t keylen, const void *p1, size_t l1, const void *p2,
	size_t l2, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SIG_DIGEST_LEN];
	size_t mdlen = 0;
	EVP_MAC_CTX *ctx = NULL;
	bool ok = false;

	out[0] = '\0';
	if ((key == NULL && keylen > 0) || (p1 == NULL && l1 > 0) || (p2 == NULL && l2 > 0))
		return false;
	pthread_once(&hmac_once, hmac_fetch);
	if (hmac_mac == NULL)
		return false;

	ctx = hmac_ctx();
	if (ctx == NULL)
		goto fail;
	/* A NULL key would mean "keep the previous key": pass an empty one instead. */
	if (!EVP_MAC_init(ctx, keylen > 0 ? key : (const void *)"", keylen, NULL))
		goto fail;
	if (l1 > 0 && !EVP_MAC_update(ctx, p1, l1))
		goto fail;
	if (l2 > 0 && !EVP_MAC_update(ctx, p2, l2))
		goto fail;
	if (!EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) || mdlen != SIG_DIGEST_LEN)
		goto fail;

	for (size_t i = 0; i < SIG_DIGEST_LEN; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[SIG_HEX_LEN] = '\0';
	ok = true;
fail:
	OPENSSL_cleanse(md, sizeof(md));
	return ok;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_lower_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/*
 * Copy exactly 64 hex digits of either case (then the end of the string) into out, lowercased;
 * false if s is not of that form.
 */
static bool
hex_lower_copy(const char *s, char out[SIG_HEX_LEN + 1])
{
	for (size_t i = 0; i < SIG_HEX_LEN; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!is_lower_hex(c))
			return false;
		out[i] = c;
	}
	out[SIG_HEX_LEN] = '\0';
	return s[SIG_HEX_LEN] == '\0';
}

/* Read 1..19 decimal digits at s; *n is how many were read.  False if none or too many. */
static bool
parse_timestamp(const char *s, uint64_t *v, size_t *n)
{
	size_t i = 0;
	uint64_t x = 0;

	while (is_digit(s[i])) {
		if (i == SIG_MAX_TS_DIGITS)
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
		i++;
	}
	if (i == 0)
		return false;
	*v = x;
	*n = i;
	return true;
}

/* |now_ms - ts_ms| <= tolerance_ms, computed without overflow. */
static bool
within_tolerance(uint64_t ts_ms, int64_t now_ms, int64_t tolerance_ms)
{
	int64_t ts, diff;

	if (tolerance_ms < 0 || ts_ms > (uint64_t)INT64_MAX)
		return false;
	ts = (int64_t)ts_ms;
	if (ts >= now_ms) {
		if (__builtin_sub_overflow(ts, now_ms, &diff))
			return false;
	} else {
		diff = now_ms - ts; /* now_ms > ts >= 0: no overflow */
	}
	return diff <= tolerance_ms;
}

/* The token of a "Bearer <token>" header value (scheme case-insensitive); NULL if not one. */
static const char *
bearer_token(const char *h)
{
	if (strncasecmp(h, "Bearer", 6) != 0 || h[6] != ' ')
		return NULL;
	h += 6;
	while (*h == ' ')
		h++;
	return *h != '\0' ? h : NULL;
}

static bool
has_secret(const char *secret)
{
	return secret != NULL && secret[0] != '\0';
}

enum sig_result
sig_verify_retell(const char *api_key, const char *header, const void *body, size_t len,
	int64_t now_ms, int64_t tolerance_ms)
{
	const char *ts, *digest;
	size_t nts = 0;
	uint64_t v = 0;
	char want[SIG_HEX_LEN + 1];

	if (!has_secret(api_key) || header == NULL)
		return SIG_MISSING;
	if (body == NULL && len > 0)
		return SIG_MALFORMED;

	/* ^v=(\d+),d=([0-9a-f]{64})$ */
	if (header[0] != 'v' || header[1] != '=')
		return SIG_MALFORMED;
	ts = header + 2;
	if (!parse_timestamp(ts, &v, &nts))
		return SIG_MALFORMED;
	if (ts[nts] != ',' || ts[nts + 1] != 'd' || ts[nts + 2] != '=')
		return SIG_MALFORMED;
	digest = ts + nts + 3;
	for (size_t i = 0; i < SIG_HEX_LEN; i++)
		if (!is_lower_hex(digest[i]))
			return SIG_MALFORMED;
	if (digest[SIG_HEX_LEN] != '\0')
		return SIG_MALFORMED;

	if (!within_tolerance(v, now_ms, tolerance_ms))
		return SIG_STALE;
	/* The signed message is the body then the timestamp exactly as sent. */
	if (!sig_hmac_sha256_hex(api_key, strlen(api_key), body, len, ts, nts, want))
		return SIG_MISMATCH;
	return sig_equal(want, SIG_HEX_LEN, digest, SIG_HEX_LEN) ? SIG_OK : SIG_MISMATCH;
}

enum sig_result
sig_verify_vapi_hmac(const char *secret, const char *sig_header, const char *ts_header,
	const void *body, size_t len, int64_t now_ms, int64_t tolerance_ms)
{
	char got[SIG_HEX_LEN + 1], want[SIG_HEX_LEN + 1];
	char prefix[SIG_MAX_TS_DIGITS + 1];
	size_t nts = 0;
	uint64_t v = 0;

	if (!has_secret(secret) || sig_header == NULL || ts_header == NULL)
		return SIG_MISSING;
	if (body == NULL && len > 0)
		return SIG_MALFORMED;

	if (strncasecmp(sig_header, "sha256=", 7) == 0)
		sig_header += 7;
	if (!hex_lower_copy(sig_header, got))
		return SIG_MALFORMED;
	if (!parse_timestamp(ts_header, &v, &nts) || ts_header[nts] != '\0')
		return SIG_MALFORMED;

	if (!within_tolerance(v < VAPI_MS_THRESHOLD ? v * 1000 : v, now_ms, tolerance_ms))
		return SIG_STALE;
	/* The signed message is "<timestamp as sent>.<body>". */
	memcpy(prefix, ts_header, nts);
	prefix[nts] = '.';
	if (!sig_hmac_sha256_hex(secret, strlen(secret), prefix, nts + 1, body, len, want))
		return SIG_MISMATCH;
	return sig_equal(want, SIG_HEX_LEN, got, SIG_HEX_LEN) ? SIG_OK : SIG_MISMATCH;
}

enum sig_result
sig_verify_vapi_bearer(const char *secret, const char *authorization, const char *x_vapi_secret)
{
	enum sig_result r = SIG_MISSING;
	size_t slen;

	if (!has_secret(secret))
		return SIG_MISSING;
	slen = strlen(secret);

	/* Either header may carry the secret; one that matches is enough. */
	if (authorization != NULL) {
		const char *token = bearer_token(authorization);

		if (token == NULL)
			r = SIG_MALFORMED;
		else if (sig_equal(token, strlen(token), secret, slen))
			return SIG_OK;
		else
			r = SIG_MISMATCH;
	}
	if (x_vapi_secret != NULL) {
		if (sig_equal(x_vapi_secret, strlen(x_vapi_secret), secret, slen))
			return SIG_OK;
		r = SIG_MISMATCH;
	}
	return r;
}

enum sig_result
sig_verify_bland(const char *secret, const char *header, const void *body, size_t len)
{
	char got[SIG_HEX_LEN + 1], want[SIG_HEX_LEN + 1];

	if (!has_secret(secret) || header == NULL)
		return SIG_MISSING;
	if (body == NULL && len > 0)
		return SIG_MALFORMED;
	if (!hex_lower_copy(header, got))
		return SIG_MALFORMED;
	if (!sig_hmac_sha256_hex(secret, strlen(secret), body, len, NULL, 0, want))
		return SIG_MISMATCH;
	return sig_equal(want, SIG_HEX_LEN, got, SIG_HEX_LEN) ? SIG_OK : SIG_MISMATCH;
}

bool
sig_bland_dynamic_token(const char *secret, const char *slug, char out[65])
{
	out[0] = '\0';
	if (!has_secret(secret) || slug == NULL)
		return false;
	return sig_hmac_sha256_hex(secret, strlen(secret), dynamic_data_prefix,
		sizeof(dynamic_data_prefix) - 1, slug, strlen(slug), out);
}

enum sig_result
sig_verify_bland_dynamic(const char *secret, const char *slug, const char *authorization)
{
	char got[SIG_HEX_LEN + 1], want[SIG_HEX_LEN + 1];
	const char *token;

	if (!has_secret(secret) || slug == NULL || authorization == NULL)
		return SIG_MISSING;
	token = bearer_token(authorization);
	if (token == NULL || !hex_lower_copy(token, got))
		return SIG_MALFORMED;
	if (!sig_bland_dynamic_token(secret, slug, want))
		return SIG_MISMATCH;
	return sig_equal(want, SIG_HEX_LEN, got, SIG_HEX_LEN) ? SIG_OK : SIG_MISMATCH;
}

bool
sig_sign_retell(const char *api_key, const void *body, size_t len, int64_t now_ms, char *out,
	size_t size)
{
	char ts[24], digest[SIG_HEX_LEN + 1];
	int n;

	if (size > 0)
		out[0] = '\0';
	if (!has_secret(api_key) || now_ms < 0 || (body == NULL && len > 0))
		return false;
	n = snprintf(ts, sizeof(ts), "%lld", (long long)now_ms);
	if (!sig_hmac_sha256_hex(api_key, strlen(api_key), body, len, ts, (size_t)n, digest))
		return false;
	n = snprintf(out, size, "v=%s,d=%s", ts, digest);
	if (n < 0 || (size_t)n >= size) {
		if (size > 0)
			out[0] = '\0';
		return false;
	}
	return true;
}

bool
sig_sign_vapi_hmac(const char *secret, const char *ts, const void *body, size_t len, char out[65])
{
	char prefix[SIG_MAX_TS_DIGITS + 2];
	size_t nts;

	out[0] = '\0';
	if (!has_secret(secret) || ts == NULL || (body == NULL && len > 0))
		return false;
	nts = strlen(ts);
	if (nts == 0 || nts > SIG_MAX_TS_DIGITS)
		return false;
	memcpy(prefix, ts, nts);
	prefix[nts] = '.';
	return sig_hmac_sha256_hex(secret, strlen(secret), prefix, nts + 1, body, len, out);
}

bool
sig_sign_bland(const char *secret, const void *body, size_t len, char out[65])
{
	out[0] = '\0';
	if (!has_secret(secret) || (body == NULL && len > 0))
		return false;
	return sig_hmac_sha256_hex(secret, strlen(secret), body, len, NULL, 0, out);
}
