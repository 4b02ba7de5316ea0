/* common/signature.c: webhook signature checks of each provider (HMAC-SHA256, constant time). */
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * HMAC-SHA256 on OpenSSL's SHA256_CTX (deprecated since OpenSSL 3.0, kept by it and by every
 * 3.x: the one interface whose state is a plain struct).  HMAC(k, m) = H(k^opad || H(k^ipad ||
 * m)), so a key's two pad blocks are hashed once into two states, and a request copies them
 * (two struct copies) and hashes its message and one outer block.  Measured with callgrind
 * over 2,000 Retell webhooks: EVP_MAC re-initialised from a keyed context spent ~2,500
 * instructions per request around the compressions (provider dispatch, locks, parameter
 * handling); these structs spend ~400.  The block function is the same either way.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "callrouted/signature.h"

#define SIG_DIGEST_LEN 32
#define SIG_HEX_LEN (2 * SIG_DIGEST_LEN)
#define SIG_MAX_TS_DIGITS 19                     /* 19 decimal digits always fit in uint64_t */
#define VAPI_MS_THRESHOLD UINT64_C(100000000000) /* 1e11: smaller timestamps are seconds */

static const char dynamic_data_prefix[] = "callrouted-dynamic-data:";

/* A key's pads hashed: the states after the key^ipad and the key^opad blocks. */
struct hmac_pads {
	SHA256_CTX inner, outer;
};

/*
 * Per thread, the pads of the keys it has seen (the accounts' secrets): a direct-mapped table
 * by a hash of the key; a key longer than a slot holds is padded per use.  Freed (and wiped)
 * when its thread exits.
 */
static pthread_key_t hmac_cache_key;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static bool hmac_cache_ok;

#define HMAC_CACHE_SLOTS 64
#define HMAC_CACHE_KEY_MAX 128

struct hmac_slot {
	bool keyed;
	size_t keylen;
	unsigned char key[HMAC_CACHE_KEY_MAX];
	struct hmac_pads pads;
};

struct hmac_cache {
	struct hmac_slot slot[HMAC_CACHE_SLOTS];
};

static void
hmac_cache_free(void *arg)
{
	OPENSSL_cleanse(arg, sizeof(struct hmac_cache));
	free(arg);
}

static void
hmac_cache_init(void)
{
	hmac_cache_ok = pthread_key_create(&hmac_cache_key, hmac_cache_free) == 0;
}

/*
 * The pads of key (RFC 2104: a key longer than the block is hashed first).  That hash by the
 * same SHA256_CTX calls, checked: OpenSSL 3's one-shot SHA256() is EVP_Q_digest (a fetch, an
 * allocation), and when it fails it leaves k untouched, all zeros: the empty key's pads, which
 * would verify any request signed with an empty key.
 */
static bool
hmac_pads_of(const unsigned char *key, size_t keylen, struct hmac_pads *p)
{
	unsigned char k[SHA256_CBLOCK], pad[SHA256_CBLOCK];
	bool ok = true;

	memset(k, 0, sizeof(k));
	if (keylen > SHA256_CBLOCK) {
		SHA256_CTX kh;

		ok = SHA256_Init(&kh) && SHA256_Update(&kh, key, keylen) && SHA256_Final(k, &kh);
		OPENSSL_cleanse(&kh, sizeof(kh));
	} else if (keylen > 0) {
		memcpy(k, key, keylen);
	}
	for (size_t i = 0; i < SHA256_CBLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	ok = ok && SHA256_Init(&p->inner) && SHA256_Update(&p->inner, pad, sizeof(pad));
	for (size_t i = 0; i < SHA256_CBLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	ok = ok && SHA256_Init(&p->outer) && SHA256_Update(&p->outer, pad, sizeof(pad));
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(pad, sizeof(pad));
	return ok;
}

/* FNV-1a of the key: which slot it goes to (not a secret's digest: the slot keeps the key). */
static size_t
hmac_slot_of(const unsigned char *key, size_t keylen)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < keylen; i++)
		h = (h ^ key[i]) * 16777619u;
	return (h ^ (h >> 16)) & (HMAC_CACHE_SLOTS - 1);
}

/*
 * This thread's cached pads of key, padded now if the slot held another key; NULL when the key
 * cannot be cached (too long, no memory): the caller pads into its own.
 */
static const struct hmac_pads *
hmac_pads_cached(const unsigned char *key, size_t keylen)
{
	struct hmac_cache *c;
	struct hmac_slot *sl;

	pthread_once(&hmac_once, hmac_cache_init);
	if (!hmac_cache_ok || keylen > HMAC_CACHE_KEY_MAX)
		return NULL;
	c = pthread_getspecific(hmac_cache_key);
	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return NULL;
		if (pthread_setspecific(hmac_cache_key, c) != 0) {
			free(c);
			return NULL;
		}
	}
	sl = &c->slot[hmac_slot_of(key, keylen)];
	if (sl->keyed && sl->keylen == keylen && CRYPTO_memcmp(sl->key, key, keylen) == 0)
		return &sl->pads;
	sl->keyed = false;
	OPENSSL_cleanse(sl->key, sizeof(sl->key));
	if (!hmac_pads_of(key, keylen, &sl->pads))
		return NULL;
	if (keylen > 0) /* key may be NULL then: memcpy's arguments must not be */
		memcpy(sl->key, key, keylen);
	sl->keylen = keylen;
	sl->keyed = true;
	return &sl->pads;
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

/* hex(HMAC(pads' key, p1 || p2)) into out. */
static bool
hmac_hex(const struct hmac_pads *pads, const void *p1, size_t l1, const void *p2, size_t l2,
	char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SIG_DIGEST_LEN];
	SHA256_CTX h;
	bool ok;

	out[0] = '\0';
	if ((p1 == NULL && l1 > 0) || (p2 == NULL && l2 > 0))
		return false;
	h = pads->inner;
	ok = (l1 == 0 || SHA256_Update(&h, p1, l1)) && (l2 == 0 || SHA256_Update(&h, p2, l2)) &&
	     SHA256_Final(md, &h);
	h = pads->outer;
	ok = ok && SHA256_Update(&h, md, sizeof(md)) && SHA256_Final(md, &h);
	if (ok) {
		for (size_t i = 0; i < SIG_DIGEST_LEN; i++) {
			out[2 * i] = hex[md[i] >> 4];
			out[2 * i + 1] = hex[md[i] & 0xf];
		}
		out[SIG_HEX_LEN] = '\0';
	}
	OPENSSL_cleanse(md, sizeof(md));
	OPENSSL_cleanse(&h, sizeof(h));
	return ok;
}

bool
sig_hmac_sha256_hex(const void *key, size_t keylen, const void *p1, size_t l1, const void *p2,
	size_t l2, char out[65])
{
	const struct hmac_pads *pads;
	struct hmac_pads own;
	bool ok;

	out[0] = '\0';
	if ((key == NULL && keylen > 0) || (p1 == NULL && l1 > 0) || (p2 == NULL && l2 > 0))
		return false;
	pads = hmac_pads_cached(key, keylen);
	if (pads == NULL) {
		if (!hmac_pads_of(key, keylen, &own)) {
			OPENSSL_cleanse(&own, sizeof(own));
			return false;
		}
		pads = &own;
	}
	ok = hmac_hex(pads, p1, l1, p2, l2, out);
	if (pads == &own)
		OPENSSL_cleanse(&own, sizeof(own));
	return ok;
}

_Static_assert(sizeof(struct hmac_pads) <= SIG_KEY_BYTES, "SIG_KEY_BYTES holds two SHA-256 states");

bool
sig_key_set(struct sig_key *k, const char *secret)
{
	struct hmac_pads p;
	bool ok;

	sig_key_wipe(k);
	if (secret == NULL || secret[0] == '\0')
		return false;
	ok = hmac_pads_of((const unsigned char *)secret, strlen(secret), &p);
	if (ok) {
		memcpy(k->st, &p, sizeof(p));
		k->set = true;
	}
	OPENSSL_cleanse(&p, sizeof(p));
	return ok;
}

void
sig_key_wipe(struct sig_key *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

/* hex(HMAC(k, p1 || p2)) into out, k set (sig_key_set). */
static bool
key_hex(const struct sig_key *k, const void *p1, size_t l1, const void *p2, size_t l2, char out[65])
{
	struct hmac_pads p;
	bool ok;

	memcpy(&p, k->st, sizeof(p));
	ok = hmac_hex(&p, p1, l1, p2, l2, out);
	OPENSSL_cleanse(&p, sizeof(p));
	return ok;
}

/* The secret of a check: a key set once, or a string keyed through the thread's cache. */
struct sig_secret {
	const struct sig_key *k;
	const char *s;
};

static bool
secret_ok(struct sig_secret sec)
{
	return sec.k ? sec.k->set : sec.s != NULL && sec.s[0] != '\0';
}

static bool
secret_hex(struct sig_secret sec, const void *p1, size_t l1, const void *p2, size_t l2,
	char out[65])
{
	if (sec.k)
		return key_hex(sec.k, p1, l1, p2, l2, out);
	return sig_hmac_sha256_hex(sec.s, strlen(sec.s), p1, l1, p2, l2, out);
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Each hex digit byte -> that digit in lowercase; 0 for any other byte.  A table, not tests:
 * 64 digits mixing letters and numbers would mispredict a branch every other byte. */
static const char hex_lower_of[256] = {
	['0'] = '0',
	['1'] = '1',
	['2'] = '2',
	['3'] = '3',
	['4'] = '4',
	['5'] = '5',
	['6'] = '6',
	['7'] = '7',
	['8'] = '8',
	['9'] = '9',
	['a'] = 'a',
	['b'] = 'b',
	['c'] = 'c',
	['d'] = 'd',
	['e'] = 'e',
	['f'] = 'f',
	['A'] = 'a',
	['B'] = 'b',
	['C'] = 'c',
	['D'] = 'd',
	['E'] = 'e',
	['F'] = 'f',
};

/* True if s holds exactly 64 lowercase hex digits then its end. */
static bool
is_lower_hex64(const char *s)
{
	unsigned ok = 1;

	for (size_t i = 0; i < SIG_HEX_LEN; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == 0) /* the string's end: also keeps the reads inside it */
			return false;
		ok &= (unsigned)(hex_lower_of[c] == (char)c);
	}
	return ok && s[SIG_HEX_LEN] == '\0';
}

/*
 * Copy exactly 64 hex digits of either case (then the end of the string) into out, lowercased;
 * false if s is not of that form.
 */
static bool
hex_lower_copy(const char *s, char out[SIG_HEX_LEN + 1])
{
	unsigned ok = 1;

	for (size_t i = 0; i < SIG_HEX_LEN; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == 0) /* the string's end: also keeps the reads inside it */
			return false;
		out[i] = hex_lower_of[c];
		ok &= (unsigned)(out[i] != 0);
	}
	out[SIG_HEX_LEN] = '\0';
	return ok && s[SIG_HEX_LEN] == '\0';
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

static enum sig_result
verify_retell(struct sig_secret sec, const char *header, const void *body, size_t len,
	int64_t now_ms, int64_t tolerance_ms)
{
	const char *ts, *digest;
	size_t nts = 0;
	uint64_t v = 0;
	char want[SIG_HEX_LEN + 1];

	if (!secret_ok(sec) || header == NULL)
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
	if (!is_lower_hex64(digest))
		return SIG_MALFORMED;

	if (!within_tolerance(v, now_ms, tolerance_ms))
		return SIG_STALE;
	/* The signed message is the body then the timestamp exactly as sent. */
	if (!secret_hex(sec, body, len, ts, nts, want))
		return SIG_MISMATCH;
	return sig_equal(want, SIG_HEX_LEN, digest, SIG_HEX_LEN) ? SIG_OK : SIG_MISMATCH;
}

enum sig_result
sig_verify_retell(const char *api_key, const char *header, const void *body, size_t len,
	int64_t now_ms, int64_t tolerance_ms)
{
	return verify_retell((struct sig_secret){ .s = api_key }, header, body, len, now_ms,
		tolerance_ms);
}

enum sig_result
sig_verify_retell_key(const struct sig_key *k, const char *header, const void *body, size_t len,
	int64_t now_ms, int64_t tolerance_ms)
{
	static const struct sig_key unset;

	return verify_retell((struct sig_secret){ .k = k ? k : &unset }, header, body, len, now_ms,
		tolerance_ms);
}

static enum sig_result
verify_vapi_hmac(struct sig_secret sec, const char *sig_header, const char *ts_header,
	const void *body, size_t len, int64_t now_ms, int64_t tolerance_ms)
{
	char got[SIG_HEX_LEN + 1], want[SIG_HEX_LEN + 1];
	char prefix[SIG_MAX_TS_DIGITS + 1];
	size_t nts = 0;
	uint64_t v = 0;

	if (!secret_ok(sec) || sig_header == NULL || ts_header == NULL)
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
	if (!secret_hex(sec, prefix, nts + 1, body, len, want))
		return SIG_MISMATCH;
	return sig_equal(want, SIG_HEX_LEN, got, SIG_HEX_LEN) ? SIG_OK : SIG_MISMATCH;
}

enum sig_result
sig_verify_vapi_hmac(const char *secret, const char *sig_header, const char *ts_header,
	const void *body, size_t len, int64_t now_ms, int64_t tolerance_ms)
{
	return verify_vapi_hmac((struct sig_secret){ .s = secret }, sig_header, ts_header, body,
		len, now_ms, tolerance_ms);
}

enum sig_result
sig_verify_vapi_hmac_key(const struct sig_key *k, const char *sig_header, const char *ts_header,
	const void *body, size_t len, int64_t now_ms, int64_t tolerance_ms)
{
	static const struct sig_key unset;

	return verify_vapi_hmac((struct sig_secret){ .k = k ? k : &unset }, sig_header, ts_header,
		body, len, now_ms, tolerance_ms);
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

static enum sig_result
verify_bland(struct sig_secret sec, const char *header, const void *body, size_t len)
{
	char got[SIG_HEX_LEN + 1], want[SIG_HEX_LEN + 1];

	if (!secret_ok(sec) || header == NULL)
		return SIG_MISSING;
	if (body == NULL && len > 0)
		return SIG_MALFORMED;
	if (!hex_lower_copy(header, got))
		return SIG_MALFORMED;
	if (!secret_hex(sec, body, len, NULL, 0, want))
		return SIG_MISMATCH;
	return sig_equal(want, SIG_HEX_LEN, got, SIG_HEX_LEN) ? SIG_OK : SIG_MISMATCH;
}

enum sig_result
sig_verify_bland(const char *secret, const char *header, const void *body, size_t len)
{
	return verify_bland((struct sig_secret){ .s = secret }, header, body, len);
}

enum sig_result
sig_verify_bland_key(const struct sig_key *k, const char *header, const void *body, size_t len)
{
	static const struct sig_key unset;

	return verify_bland((struct sig_secret){ .k = k ? k : &unset }, header, body, len);
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
