/* test_signature.c: webhook signature checks and signing: the providers' vectors, edge cases. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "callrouted/signature.h"

#define TOLERANCE_MS INT64_C(300000) /* signature_tolerance default: 5 min */

/*
 * The vectors of tests/fixtures/signatures.json, one row each, in the file's order (Retell's
 * first one is its SDK's own test vector).  A NULL header is one the vector does not send.
 */
struct sig_vector {
	const char *provider;
	const char *auth; /* Vapi: "hmac" or "bearer" */
	const char *key;
	const char *body;
	const char *retell_signature; /* x-retell-signature */
	const char *vapi_timestamp;   /* x-timestamp */
	const char *vapi_signature;   /* x-signature */
	const char *authorization;
	const char *x_vapi_secret;
	const char *bland_signature; /* x-webhook-signature */
	int64_t now_ms;
	enum sig_result want; /* "valid": true -> SIG_OK; false -> the reason */
};

/* clang-format off */
#define RETELL_HDR "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e"
#define RETELL_BODY "{\"event\":\"call_ended\"}"
#define VAPI_BODY "{\"message\":{\"type\":\"status-update\"}}"
#define VAPI_SIG "854b02b41aedb7f3688cbef04dc502b254bfbbe130f4c9d00992a0bef78675cc"
/* HMAC-SHA256("vapi-test-secret", "1700000000123." VAPI_BODY), computed with Python's hmac. */
#define VAPI_SIG_MS "f33d786b8fbca6641c92e193214fa61fec3ceca6ab41519438c92e2cd85dd83f"
#define BLAND_BODY "{\"call_id\":\"abc\"}"
#define BLAND_SIG "79288605c66f46f0944be46e731605b4b53720523535a47096161964abf7c228"
/* HMAC-SHA256("bland-test-secret", "callrouted-dynamic-data:acme"), computed with Python's hmac. */
#define BLAND_DYN_ACME "57dee7cecbef6582d99a67dbadddb096b9646cda72034479f5b363aae8b3c6d9"

static const struct sig_vector vectors[] = {
	{ .provider = "retell", .key = "test-api-key", .body = RETELL_BODY,
		.retell_signature = RETELL_HDR, .now_ms = INT64_C(1700000000000),
		.want = SIG_OK },
	{ .provider = "retell", .key = "test-api-key", .body = RETELL_BODY,
		.retell_signature = RETELL_HDR, .now_ms = INT64_C(1700000300001),
		.want = SIG_STALE }, /* timestamp outside 5 min window */
	{ .provider = "retell", .key = "wrong-key", .body = RETELL_BODY,
		.retell_signature = RETELL_HDR, .now_ms = INT64_C(1700000000000),
		.want = SIG_MISMATCH }, /* wrong key */
	{ .provider = "retell", .key = "test-api-key", .body = "{\"event\":\"call_ended\" }",
		.retell_signature = RETELL_HDR, .now_ms = INT64_C(1700000000000),
		.want = SIG_MISMATCH }, /* body changed */
	{ .provider = "vapi", .auth = "hmac", .key = "vapi-test-secret", .body = VAPI_BODY,
		.vapi_timestamp = "1700000000", .vapi_signature = VAPI_SIG,
		.now_ms = INT64_C(1700000000000), .want = SIG_OK },
	{ .provider = "vapi", .auth = "bearer", .key = "vapi-bearer-secret", .body = VAPI_BODY,
		.authorization = "Bearer vapi-bearer-secret", .want = SIG_OK },
	{ .provider = "vapi", .auth = "bearer", .key = "vapi-bearer-secret", .body = VAPI_BODY,
		.x_vapi_secret = "vapi-bearer-secret", .want = SIG_OK }, /* legacy header */
	{ .provider = "vapi", .auth = "bearer", .key = "vapi-bearer-secret", .body = VAPI_BODY,
		.authorization = "Bearer vapi-bearer-secreT", .want = SIG_MISMATCH },
	{ .provider = "bland", .key = "bland-test-secret", .body = BLAND_BODY,
		.bland_signature = BLAND_SIG, .want = SIG_OK },
	{ .provider = "bland", .key = "bland-test-secret", .body = "{\"call_id\":\"abc\"} ",
		.bland_signature = BLAND_SIG, .want = SIG_MISMATCH },
};
/* clang-format on */

static enum sig_result
verify_vector(const struct sig_vector *v)
{
	size_t len = strlen(v->body);

	if (strcmp(v->provider, "retell") == 0)
		return sig_verify_retell(v->key, v->retell_signature, v->body, len, v->now_ms,
			TOLERANCE_MS);
	if (strcmp(v->provider, "vapi") == 0 && strcmp(v->auth, "hmac") == 0)
		return sig_verify_vapi_hmac(v->key, v->vapi_signature, v->vapi_timestamp, v->body,
			len, v->now_ms, TOLERANCE_MS);
	if (strcmp(v->provider, "vapi") == 0 && strcmp(v->auth, "bearer") == 0)
		return sig_verify_vapi_bearer(v->key, v->authorization, v->x_vapi_secret);
	if (strcmp(v->provider, "bland") == 0)
		return sig_verify_bland(v->key, v->bland_signature, v->body, len);
	fail_msg("unknown provider %s", v->provider);
	return SIG_MISSING;
}

/* The same vector checked under its key set once (sig_key_set), as the route catalog does. */
static enum sig_result
verify_vector_keyed(const struct sig_vector *v)
{
	size_t len = strlen(v->body);
	struct sig_key k;
	enum sig_result r = SIG_MISSING;

	assert_true(sig_key_set(&k, v->key));
	if (strcmp(v->provider, "retell") == 0)
		r = sig_verify_retell_key(&k, v->retell_signature, v->body, len, v->now_ms,
			TOLERANCE_MS);
	else if (strcmp(v->provider, "vapi") == 0 && strcmp(v->auth, "hmac") == 0)
		r = sig_verify_vapi_hmac_key(&k, v->vapi_signature, v->vapi_timestamp, v->body, len,
			v->now_ms, TOLERANCE_MS);
	else if (strcmp(v->provider, "bland") == 0)
		r = sig_verify_bland_key(&k, v->bland_signature, v->body, len);
	else
		r = verify_vector(v); /* bearer: no HMAC */
	sig_key_wipe(&k);
	return r;
}

static void
test_fixture_vectors(void **state)
{
	unsigned failures = 0;

	assert_int_equal(sizeof(vectors) / sizeof(vectors[0]), 10);
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		enum sig_result r = verify_vector(&vectors[i]);

		if (r != vectors[i].want) {
			print_error("vector %zu (%s): got %s, want %s\n", i, vectors[i].provider,
				sig_result_name(r), sig_result_name(vectors[i].want));
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* Keys set once give every vector the same answer; an unset, wiped or NULL key is a missing
 * secret; a key longer than the block and one past the per-thread cache's slot both work. */
static void
test_keys_set_once(void **state)
{
	static const char body[] = "{\"event\":\"call_inbound\"}";
	char long_key[300], hdr[160];
	struct sig_key k;

	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		assert_int_equal(verify_vector_keyed(&vectors[i]), vectors[i].want);
	assert_false(sig_key_set(&k, NULL));
	assert_false(k.set);
	assert_false(sig_key_set(&k, ""));
	assert_int_equal(sig_verify_retell_key(&k, RETELL_HDR, RETELL_BODY, strlen(RETELL_BODY),
				 INT64_C(1700000000000), TOLERANCE_MS),
		SIG_MISSING);
	assert_int_equal(sig_verify_retell_key(NULL, RETELL_HDR, RETELL_BODY, strlen(RETELL_BODY),
				 INT64_C(1700000000000), TOLERANCE_MS),
		SIG_MISSING);
	assert_int_equal(sig_verify_bland_key(NULL, BLAND_SIG, BLAND_BODY, strlen(BLAND_BODY)),
		SIG_MISSING);
	assert_int_equal(sig_verify_vapi_hmac_key(NULL, VAPI_SIG, "1700000000", VAPI_BODY,
				 strlen(VAPI_BODY), INT64_C(1700000000000), TOLERANCE_MS),
		SIG_MISSING);
	assert_true(sig_key_set(&k, "test-api-key"));
	sig_key_wipe(&k);
	assert_false(k.set);
	for (size_t n = 60; n < sizeof(long_key); n += 67) {
		memset(long_key, 'k', n);
		long_key[n] = 0;
		assert_true(sig_sign_retell(long_key, body, strlen(body), INT64_C(1700000000000),
			hdr, sizeof(hdr)));
		assert_true(sig_key_set(&k, long_key));
		assert_int_equal(sig_verify_retell_key(&k, hdr, body, strlen(body),
					 INT64_C(1700000000000), TOLERANCE_MS),
			SIG_OK);
		long_key[0] = 'x';
		assert_true(sig_key_set(&k, long_key));
		assert_int_equal(sig_verify_retell_key(&k, hdr, body, strlen(body),
					 INT64_C(1700000000000), TOLERANCE_MS),
			SIG_MISMATCH);
		sig_key_wipe(&k);
	}
}

/* ---- primitives ---- */

static void
test_result_names(void **state)
{
	assert_string_equal(sig_result_name(SIG_OK), "ok");
	assert_string_equal(sig_result_name(SIG_MISSING), "missing");
	assert_string_equal(sig_result_name(SIG_MALFORMED), "malformed");
	assert_string_equal(sig_result_name(SIG_STALE), "stale");
	assert_string_equal(sig_result_name(SIG_MISMATCH), "mismatch");
	assert_non_null(sig_result_name((enum sig_result)99));
}

static void
test_equal(void **state)
{
	assert_true(sig_equal("abc", 3, "abc", 3));
	assert_false(sig_equal("abc", 3, "abd", 3));
	assert_false(sig_equal("abc", 3, "abcd", 4));
	assert_false(sig_equal("abc", 3, "", 0));
	assert_true(sig_equal("", 0, "", 0));
	assert_true(sig_equal(NULL, 0, NULL, 0));
	assert_false(sig_equal("a\0b", 3, "a\0c", 3));
}

static void
test_hmac_hex(void **state)
{
	/* RFC 4231 test case 1 */
	static const unsigned char key1[20] = { 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
		0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b };
	static const char want1[] =
		"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
	/* RFC 4231 test case 2 */
	static const char want2[] =
		"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
	static const char want_empty[] =
		"b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad";
	char out[65];

	assert_true(sig_hmac_sha256_hex(key1, sizeof(key1), "Hi There", 8, NULL, 0, out));
	assert_string_equal(out, want1);
	/* The two parts are simply concatenated, wherever the split falls. */
	assert_true(sig_hmac_sha256_hex(key1, sizeof(key1), "Hi ", 3, "There", 5, out));
	assert_string_equal(out, want1);
	assert_true(sig_hmac_sha256_hex(key1, sizeof(key1), NULL, 0, "Hi There", 8, out));
	assert_string_equal(out, want1);
	assert_true(
		sig_hmac_sha256_hex("Jefe", 4, "what do ya want ", 16, "for nothing?", 12, out));
	assert_string_equal(out, want2);
	/* Empty key, empty message. */
	assert_true(sig_hmac_sha256_hex("", 0, "", 0, NULL, 0, out));
	assert_string_equal(out, want_empty);
	assert_true(sig_hmac_sha256_hex(NULL, 0, NULL, 0, NULL, 0, out));
	assert_string_equal(out, want_empty);
	/* A NULL buffer with a length is refused. */
	assert_false(sig_hmac_sha256_hex(NULL, 4, "x", 1, NULL, 0, out));
	assert_false(sig_hmac_sha256_hex("k", 1, NULL, 1, NULL, 0, out));
	assert_false(sig_hmac_sha256_hex("k", 1, "x", 1, NULL, 1, out));
	/* The Retell SDK vector: body then timestamp. */
	assert_true(sig_hmac_sha256_hex("test-api-key", 12, RETELL_BODY, strlen(RETELL_BODY),
		"1700000000000", 13, out));
	assert_string_equal(out, RETELL_HDR + strlen("v=1700000000000,d="));
}

/* HMAC-SHA256 by OpenSSL's own one-shot HMAC(), the reference of the test below. */
static void
reference_hex(const void *key, size_t keylen, const void *msg, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	assert_non_null(HMAC(EVP_sha256(), key, (int)keylen, msg, len, md, &mdlen));
	assert_int_equal(mdlen, 32);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/*
 * The per-thread pads cache: keys of every length around the block (64) and the cache's slot
 * size (128), keys longer than the block (hashed first, RFC 4231 case 6), and more keys than
 * slots used twice over (slots taken over by another key and back), each against OpenSSL's
 * HMAC().
 */
static void
test_hmac_pads_cache(void **state)
{
	static const char want6[] =
		"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
	static const char msg6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	unsigned char key[300];
	char msg[700], out[65], want[65];

	(void)state;
	memset(key, 0xaa, 131);
	assert_true(sig_hmac_sha256_hex(key, 131, msg6, strlen(msg6), NULL, 0, out));
	assert_string_equal(out, want6);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 7 + 3);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('a' + i % 26);
	for (int round = 0; round < 2; round++) {
		for (size_t kl = 0; kl <= 200; kl++) {
			size_t ml = (kl * 13) % sizeof(msg);

			reference_hex(key, kl, msg, ml, want);
			assert_true(sig_hmac_sha256_hex(key, kl, msg, ml / 3, msg + ml / 3,
				ml - ml / 3, out));
			assert_string_equal(out, want);
		}
	}
}

/* ---- Retell ---- */

#define RETELL_NOW INT64_C(1700000000000)
#define RETELL_DIGEST "07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e"

static enum sig_result
retell(const char *key, const char *header, const char *body, int64_t now)
{
	return sig_verify_retell(key, header, body, strlen(body), now, TOLERANCE_MS);
}

static void
test_retell_window(void **state)
{
	/* The window is inclusive and applies in both directions. */
	assert_int_equal(retell("test-api-key", RETELL_HDR, RETELL_BODY, RETELL_NOW), SIG_OK);
	assert_int_equal(retell("test-api-key", RETELL_HDR, RETELL_BODY, RETELL_NOW + TOLERANCE_MS),
		SIG_OK);
	assert_int_equal(retell("test-api-key", RETELL_HDR, RETELL_BODY, RETELL_NOW - TOLERANCE_MS),
		SIG_OK);
	/* past: sent 5 min + 1 ms ago */
	assert_int_equal(
		retell("test-api-key", RETELL_HDR, RETELL_BODY, RETELL_NOW + TOLERANCE_MS + 1),
		SIG_STALE);
	/* future: dated 5 min + 1 ms ahead */
	assert_int_equal(
		retell("test-api-key", RETELL_HDR, RETELL_BODY, RETELL_NOW - TOLERANCE_MS - 1),
		SIG_STALE);
	assert_int_equal(retell("test-api-key", RETELL_HDR, RETELL_BODY, 0), SIG_STALE);
	assert_int_equal(retell("test-api-key", RETELL_HDR, RETELL_BODY, INT64_MAX), SIG_STALE);
	assert_int_equal(retell("test-api-key", RETELL_HDR, RETELL_BODY, INT64_MIN), SIG_STALE);
	/* A zero tolerance still accepts the exact time; a negative one nothing. */
	assert_int_equal(sig_verify_retell("test-api-key", RETELL_HDR, RETELL_BODY,
				 strlen(RETELL_BODY), RETELL_NOW, 0),
		SIG_OK);
	assert_int_equal(sig_verify_retell("test-api-key", RETELL_HDR, RETELL_BODY,
				 strlen(RETELL_BODY), RETELL_NOW, -1),
		SIG_STALE);
}

static void
test_retell_mismatch(void **state)
{
	assert_int_equal(retell("wrong-key", RETELL_HDR, RETELL_BODY, RETELL_NOW), SIG_MISMATCH);
	assert_int_equal(retell("test-api-key ", RETELL_HDR, RETELL_BODY, RETELL_NOW),
		SIG_MISMATCH);
	assert_int_equal(
		retell("test-api-key", RETELL_HDR, "{\"event\":\"call_endeD\"}", RETELL_NOW),
		SIG_MISMATCH);
	assert_int_equal(retell("test-api-key", RETELL_HDR, "", RETELL_NOW), SIG_MISMATCH);
	/* The body's length, not a NUL, ends it. */
	assert_int_equal(sig_verify_retell("test-api-key", RETELL_HDR, RETELL_BODY,
				 strlen(RETELL_BODY) - 1, RETELL_NOW, TOLERANCE_MS),
		SIG_MISMATCH);
	/* The timestamp is signed: moving it breaks the digest. */
	assert_int_equal(
		retell("test-api-key", "v=1700000000001,d=" RETELL_DIGEST, RETELL_BODY, RETELL_NOW),
		SIG_MISMATCH);
	/* A flipped digit of the digest. */
	assert_int_equal(retell("test-api-key",
				 "v=1700000000000,d="
				 "07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823f",
				 RETELL_BODY, RETELL_NOW),
		SIG_MISMATCH);
	/* Leading zeros are digits of the signed timestamp as sent. */
	assert_int_equal(retell("test-api-key", "v=01700000000000,d=" RETELL_DIGEST, RETELL_BODY,
				 RETELL_NOW),
		SIG_MISMATCH);
	assert_int_equal(retell("test-api-key",
				 "v=01700000000000,d="
				 "5b499063ff9f0c38294ba6f51b7cad7dc5216d585ac7442d2579d33ad613263f",
				 RETELL_BODY, RETELL_NOW),
		SIG_OK);
	/* Empty body. */
	assert_int_equal(retell("test-api-key",
				 "v=1700000000000,d="
				 "3c2757e9ff3f06dc2b4957bb8f8018c615ab2e0c6f522e1de8537bf316688224",
				 "", RETELL_NOW),
		SIG_OK);
	assert_int_equal(sig_verify_retell("test-api-key",
				 "v=1700000000000,d="
				 "3c2757e9ff3f06dc2b4957bb8f8018c615ab2e0c6f522e1de8537bf316688224",
				 NULL, 0, RETELL_NOW, TOLERANCE_MS),
		SIG_OK);
}

static void
test_retell_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"v=",
		"v=1700000000000",
		"v=1700000000000,",
		"v=1700000000000,d=",
		"d=" RETELL_DIGEST,                                    /* missing v= */
		"v=1700000000000," RETELL_DIGEST,                      /* missing d= */
		"v=1700000000000,D=" RETELL_DIGEST,                    /* uppercase D= */
		"V=1700000000000,d=" RETELL_DIGEST,                    /* uppercase V= */
		"v=1700000000000;d=" RETELL_DIGEST,                    /* wrong separator */
		"v=1700000000000, d=" RETELL_DIGEST,                   /* space */
		" v=1700000000000,d=" RETELL_DIGEST,                   /* leading space */
		"v=1700000000000,d=" RETELL_DIGEST " ",                /* trailing space */
		"v=1700000000000,d=" RETELL_DIGEST "\n",               /* trailing newline */
		"v=1700000000000,d=" RETELL_DIGEST "0",                /* 65 hex chars */
		"v=1700000000000,d=" RETELL_DIGEST ",v=1",             /* trailing junk */
		"d=" RETELL_DIGEST ",v=1700000000000",                 /* swapped */
		"v=,d=" RETELL_DIGEST,                                 /* empty timestamp */
		"v=-1700000000000,d=" RETELL_DIGEST,                   /* sign */
		"v=+1700000000000,d=" RETELL_DIGEST,                   /* sign */
		"v=1700000000000.5,d=" RETELL_DIGEST,                  /* fraction */
		"v=1.7e12,d=" RETELL_DIGEST,                           /* exponent */
		"v=0x18bcfe56800,d=" RETELL_DIGEST,                    /* hex */
		"v=00000000000000000001700000000000,d=" RETELL_DIGEST, /* 32 digits */
		"v=99999999999999999999,d=" RETELL_DIGEST,             /* 20 digits: huge */
		"v=18446744073709551616,d=" RETELL_DIGEST,             /* 2^64 */
		/* 63 hex chars */
		"v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823",
		/* non-hex */
		"v=1700000000000,d="
		"07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823g",
		"v=1700000000000,d="
		"07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823 ",
		/* uppercase hex: Retell's pattern is [0-9a-f] */
		"v=1700000000000,d="
		"07024CABE7DD8F6D1C6E4A8324CA92C812E6AD4A7EE506C04F7E462E3321823E",
		"v=1700000000000,d="
		"07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823E",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum sig_result r = retell("test-api-key", bad[i], RETELL_BODY, RETELL_NOW);

		if (r != SIG_MALFORMED)
			fail_msg("header \"%s\": got %s, want malformed", bad[i],
				sig_result_name(r));
	}
	/* An embedded NUL ends the header where C strings end. */
	assert_int_equal(retell("test-api-key",
				 "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c8"
				 "\0"
				 "12e6ad4a7ee506c04f7e462e3321823e",
				 RETELL_BODY, RETELL_NOW),
		SIG_MALFORMED);
}

static void
test_retell_huge_timestamp(void **state)
{
	/* 19 digits parse (no overflow) but lie far outside any window, past INT64_MAX too. */
	assert_int_equal(retell("test-api-key", "v=9999999999999999999,d=" RETELL_DIGEST,
				 RETELL_BODY, RETELL_NOW),
		SIG_STALE);
	assert_int_equal(retell("test-api-key", "v=9223372036854775808,d=" RETELL_DIGEST,
				 RETELL_BODY, INT64_MAX),
		SIG_STALE);
	assert_int_equal(retell("test-api-key", "v=9223372036854775807,d=" RETELL_DIGEST,
				 RETELL_BODY, RETELL_NOW),
		SIG_STALE);
	assert_int_equal(retell("test-api-key", "v=0,d=" RETELL_DIGEST, RETELL_BODY, RETELL_NOW),
		SIG_STALE);
	/* At the far ends of now_ms: no overflow in |now - v|. */
	assert_int_equal(retell("test-api-key", "v=9223372036854775807,d=" RETELL_DIGEST,
				 RETELL_BODY, INT64_MIN),
		SIG_STALE);
	assert_int_equal(retell("test-api-key", "v=9223372036854775807,d=" RETELL_DIGEST,
				 RETELL_BODY, INT64_MAX),
		SIG_MISMATCH);
	assert_int_equal(retell("test-api-key", "v=0,d=" RETELL_DIGEST, RETELL_BODY, INT64_MIN),
		SIG_STALE);
}

static void
test_retell_missing(void **state)
{
	assert_int_equal(retell(NULL, RETELL_HDR, RETELL_BODY, RETELL_NOW), SIG_MISSING);
	assert_int_equal(retell("", RETELL_HDR, RETELL_BODY, RETELL_NOW), SIG_MISSING);
	assert_int_equal(retell("test-api-key", NULL, RETELL_BODY, RETELL_NOW), SIG_MISSING);
	assert_int_equal(retell(NULL, NULL, RETELL_BODY, RETELL_NOW), SIG_MISSING);
}

/* ---- Vapi HMAC ---- */

#define VAPI_NOW INT64_C(1700000000000)

static enum sig_result
vapi(const char *secret, const char *sig, const char *ts, const char *body, int64_t now)
{
	return sig_verify_vapi_hmac(secret, sig, ts, body, strlen(body), now, TOLERANCE_MS);
}

static void
test_vapi_hmac(void **state)
{
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "1700000000", VAPI_BODY, VAPI_NOW),
		SIG_OK);
	/* Optional "sha256=" prefix. */
	assert_int_equal(
		vapi("vapi-test-secret", "sha256=" VAPI_SIG, "1700000000", VAPI_BODY, VAPI_NOW),
		SIG_OK);
	assert_int_equal(
		vapi("vapi-test-secret", "SHA256=" VAPI_SIG, "1700000000", VAPI_BODY, VAPI_NOW),
		SIG_OK);
	/* Uppercase hex, compared case-insensitively. */
	assert_int_equal(vapi("vapi-test-secret",
				 "854B02B41AEDB7F3688CBEF04DC502B254BFBBE130F4C9D00992A0BEF78675CC",
				 "1700000000", VAPI_BODY, VAPI_NOW),
		SIG_OK);
	assert_int_equal(
		vapi("vapi-test-secret",
			"sha256=854b02b41aedb7f3688cbef04dc502b254bfbbe130f4c9d00992a0bef78675CC",
			"1700000000", VAPI_BODY, VAPI_NOW),
		SIG_OK);
	/* Millisecond timestamps (>= 1e11), signed as sent. */
	assert_int_equal(
		vapi("vapi-test-secret", VAPI_SIG_MS, "1700000000123", VAPI_BODY, VAPI_NOW),
		SIG_OK);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG_MS, "1700000000123", VAPI_BODY,
				 VAPI_NOW + TOLERANCE_MS + 123),
		SIG_OK);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG_MS, "1700000000123", VAPI_BODY,
				 VAPI_NOW + TOLERANCE_MS + 124),
		SIG_STALE);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "1700000000123", VAPI_BODY, VAPI_NOW),
		SIG_MISMATCH);
	/* Wrong secret, tampered body. */
	assert_int_equal(vapi("wrong-secret", VAPI_SIG, "1700000000", VAPI_BODY, VAPI_NOW),
		SIG_MISMATCH);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "1700000000",
				 "{\"message\":{\"type\":\"status-update\"}} ", VAPI_NOW),
		SIG_MISMATCH);
	/* The timestamp is signed. */
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "1700000001", VAPI_BODY, VAPI_NOW),
		SIG_MISMATCH);
}

static void
test_vapi_stale(void **state)
{
	/* Seconds: the window is inclusive, in both directions. */
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "1700000000", VAPI_BODY,
				 VAPI_NOW + TOLERANCE_MS),
		SIG_OK);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "1700000000", VAPI_BODY,
				 VAPI_NOW - TOLERANCE_MS),
		SIG_OK);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "1700000000", VAPI_BODY,
				 VAPI_NOW + TOLERANCE_MS + 1),
		SIG_STALE);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "1700000000", VAPI_BODY,
				 VAPI_NOW - TOLERANCE_MS - 1),
		SIG_STALE);
	/* The seconds/ms boundary: 99999999999 s is year 5138, 1e11 ms is 1973. */
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "99999999999", VAPI_BODY, VAPI_NOW),
		SIG_STALE);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "100000000000", VAPI_BODY, VAPI_NOW),
		SIG_STALE);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, "0", VAPI_BODY, VAPI_NOW), SIG_STALE);
	assert_int_equal(
		vapi("vapi-test-secret", VAPI_SIG, "9999999999999999999", VAPI_BODY, VAPI_NOW),
		SIG_STALE);
}

static void
test_vapi_malformed(void **state)
{
	static const char *const bad_sig[] = {
		"",
		"sha256=",
		/* 63 hex chars */
		"854b02b41aedb7f3688cbef04dc502b254bfbbe130f4c9d00992a0bef78675c",
		/* 65 hex chars */
		"854b02b41aedb7f3688cbef04dc502b254bfbbe130f4c9d00992a0bef78675cc0",
		/* non-hex */
		"854b02b41aedb7f3688cbef04dc502b254bfbbe130f4c9d00992a0bef78675cg",
		" " VAPI_SIG,
		VAPI_SIG " ",
		"sha256 =" VAPI_SIG,
		"sha1=" VAPI_SIG,
		"sha256=sha256=" VAPI_SIG,
		"v1," VAPI_SIG,
	};
	static const char *const bad_ts[] = {
		"", " 1700000000", "1700000000 ", "-1700000000", "+1700000000", "1700000000.0",
		"1.7e9", "0x6553f100", "17000000OO", "99999999999999999999", /* 20 digits */
		"18446744073709551616",                                      /* 2^64 */
		"00000000000000000001700000000",                             /* 29 digits */
	};

	for (size_t i = 0; i < sizeof(bad_sig) / sizeof(bad_sig[0]); i++) {
		enum sig_result r =
			vapi("vapi-test-secret", bad_sig[i], "1700000000", VAPI_BODY, VAPI_NOW);

		if (r != SIG_MALFORMED)
			fail_msg("x-signature \"%s\": got %s, want malformed", bad_sig[i],
				sig_result_name(r));
	}
	for (size_t i = 0; i < sizeof(bad_ts) / sizeof(bad_ts[0]); i++) {
		enum sig_result r =
			vapi("vapi-test-secret", VAPI_SIG, bad_ts[i], VAPI_BODY, VAPI_NOW);

		if (r != SIG_MALFORMED)
			fail_msg("x-timestamp \"%s\": got %s, want malformed", bad_ts[i],
				sig_result_name(r));
	}
}

static void
test_vapi_missing(void **state)
{
	assert_int_equal(vapi(NULL, VAPI_SIG, "1700000000", VAPI_BODY, VAPI_NOW), SIG_MISSING);
	assert_int_equal(vapi("", VAPI_SIG, "1700000000", VAPI_BODY, VAPI_NOW), SIG_MISSING);
	assert_int_equal(vapi("vapi-test-secret", NULL, "1700000000", VAPI_BODY, VAPI_NOW),
		SIG_MISSING);
	assert_int_equal(vapi("vapi-test-secret", VAPI_SIG, NULL, VAPI_BODY, VAPI_NOW),
		SIG_MISSING);
	assert_int_equal(vapi("vapi-test-secret", NULL, NULL, VAPI_BODY, VAPI_NOW), SIG_MISSING);
}

/* ---- Vapi bearer ---- */

static void
test_vapi_bearer(void **state)
{
	static const char secret[] = "vapi-bearer-secret";

	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer vapi-bearer-secret", NULL), SIG_OK);
	/* The scheme is case-insensitive (RFC 7235); the token is not. */
	assert_int_equal(sig_verify_vapi_bearer(secret, "bearer vapi-bearer-secret", NULL), SIG_OK);
	assert_int_equal(sig_verify_vapi_bearer(secret, "BEARER vapi-bearer-secret", NULL), SIG_OK);
	assert_int_equal(sig_verify_vapi_bearer(secret, "bEaReR vapi-bearer-secret", NULL), SIG_OK);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer  vapi-bearer-secret", NULL),
		SIG_OK);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer VAPI-BEARER-SECRET", NULL),
		SIG_MISMATCH);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer vapi-bearer-secreT", NULL),
		SIG_MISMATCH);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer vapi-bearer-secre", NULL),
		SIG_MISMATCH);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer vapi-bearer-secrets", NULL),
		SIG_MISMATCH);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer vapi-bearer-secret ", NULL),
		SIG_MISMATCH);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer wrong", NULL), SIG_MISMATCH);
	/* Not the Bearer scheme. */
	assert_int_equal(sig_verify_vapi_bearer(secret, "vapi-bearer-secret", NULL), SIG_MALFORMED);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Basic dmFwaTpzZWNyZXQ=", NULL),
		SIG_MALFORMED);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearervapi-bearer-secret", NULL),
		SIG_MALFORMED);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer", NULL), SIG_MALFORMED);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer ", NULL), SIG_MALFORMED);
	assert_int_equal(sig_verify_vapi_bearer(secret, "", NULL), SIG_MALFORMED);
	assert_int_equal(sig_verify_vapi_bearer(secret, " Bearer vapi-bearer-secret", NULL),
		SIG_MALFORMED);
}

static void
test_vapi_bearer_legacy(void **state)
{
	static const char secret[] = "vapi-bearer-secret";

	assert_int_equal(sig_verify_vapi_bearer(secret, NULL, "vapi-bearer-secret"), SIG_OK);
	assert_int_equal(sig_verify_vapi_bearer(secret, NULL, "vapi-bearer-secreT"), SIG_MISMATCH);
	assert_int_equal(sig_verify_vapi_bearer(secret, NULL, "Bearer vapi-bearer-secret"),
		SIG_MISMATCH);
	assert_int_equal(sig_verify_vapi_bearer(secret, NULL, ""), SIG_MISMATCH);
	/* Either header may carry it. */
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer wrong", "vapi-bearer-secret"),
		SIG_OK);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Basic x", "vapi-bearer-secret"), SIG_OK);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer vapi-bearer-secret", "wrong"),
		SIG_OK);
	assert_int_equal(sig_verify_vapi_bearer(secret, "Bearer wrong", "wrong"), SIG_MISMATCH);
}

static void
test_vapi_bearer_missing(void **state)
{
	assert_int_equal(sig_verify_vapi_bearer("vapi-bearer-secret", NULL, NULL), SIG_MISSING);
	assert_int_equal(sig_verify_vapi_bearer(NULL, "Bearer vapi-bearer-secret", NULL),
		SIG_MISSING);
	assert_int_equal(sig_verify_vapi_bearer(NULL, NULL, "vapi-bearer-secret"), SIG_MISSING);
	/* An empty secret is no secret: it must not match an empty token. */
	assert_int_equal(sig_verify_vapi_bearer("", "Bearer ", NULL), SIG_MISSING);
	assert_int_equal(sig_verify_vapi_bearer("", NULL, ""), SIG_MISSING);
}

/* ---- Bland ---- */

static enum sig_result
bland(const char *secret, const char *header, const char *body)
{
	return sig_verify_bland(secret, header, body, strlen(body));
}

static void
test_bland(void **state)
{
	assert_int_equal(bland("bland-test-secret", BLAND_SIG, BLAND_BODY), SIG_OK);
	assert_int_equal(bland("bland-test-secret",
				 "79288605C66F46F0944BE46E731605B4B53720523535A47096161964ABF7C228",
				 BLAND_BODY),
		SIG_OK);
	assert_int_equal(bland("wrong-secret", BLAND_SIG, BLAND_BODY), SIG_MISMATCH);
	assert_int_equal(bland("bland-test-secret", BLAND_SIG, "{\"call_id\":\"abd\"}"),
		SIG_MISMATCH);
	assert_int_equal(bland("bland-test-secret", BLAND_SIG, ""), SIG_MISMATCH);
	assert_int_equal(bland("bland-test-secret",
				 "79288605c66f46f0944be46e731605b4b53720523535a47096161964abf7c229",
				 BLAND_BODY),
		SIG_MISMATCH);
	/* malformed */
	assert_int_equal(bland("bland-test-secret", "", BLAND_BODY), SIG_MALFORMED);
	assert_int_equal(bland("bland-test-secret",
				 "79288605c66f46f0944be46e731605b4b53720523535a47096161964abf7c22",
				 BLAND_BODY),
		SIG_MALFORMED);
	assert_int_equal(bland("bland-test-secret", BLAND_SIG "0", BLAND_BODY), SIG_MALFORMED);
	assert_int_equal(bland("bland-test-secret",
				 "79288605c66f46f0944be46e731605b4b53720523535a47096161964abf7c22z",
				 BLAND_BODY),
		SIG_MALFORMED);
	assert_int_equal(bland("bland-test-secret", "sha256=" BLAND_SIG, BLAND_BODY),
		SIG_MALFORMED);
	assert_int_equal(bland("bland-test-secret", BLAND_SIG " ", BLAND_BODY), SIG_MALFORMED);
	/* missing */
	assert_int_equal(bland(NULL, BLAND_SIG, BLAND_BODY), SIG_MISSING);
	assert_int_equal(bland("", BLAND_SIG, BLAND_BODY), SIG_MISSING);
	assert_int_equal(bland("bland-test-secret", NULL, BLAND_BODY), SIG_MISSING);
}

static void
test_bland_dynamic(void **state)
{
	char token[65], auth[80];

	assert_true(sig_bland_dynamic_token("bland-test-secret", "acme", token));
	assert_string_equal(token, BLAND_DYN_ACME);
	/* Round trip. */
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	assert_int_equal(sig_verify_bland_dynamic("bland-test-secret", "acme", auth), SIG_OK);
	assert_int_equal(
		sig_verify_bland_dynamic("bland-test-secret", "acme", "bearer " BLAND_DYN_ACME),
		SIG_OK);
	assert_int_equal(
		sig_verify_bland_dynamic("bland-test-secret", "acme",
			"Bearer 57DEE7CECBEF6582D99A67DBADDDB096B9646CDA72034479F5B363AAE8B3C6D9"),
		SIG_OK);
	/* The token is bound to the slug and the secret. */
	assert_int_equal(sig_verify_bland_dynamic("bland-test-secret", "acme2", auth),
		SIG_MISMATCH);
	assert_int_equal(sig_verify_bland_dynamic("bland-test-secret", "acm", auth), SIG_MISMATCH);
	assert_int_equal(sig_verify_bland_dynamic("bland-test-secret", "", auth), SIG_MISMATCH);
	assert_int_equal(sig_verify_bland_dynamic("other-secret", "acme", auth), SIG_MISMATCH);
	assert_true(sig_bland_dynamic_token("bland-test-secret", "acme2", token));
	assert_string_not_equal(token, BLAND_DYN_ACME);
	assert_true(sig_bland_dynamic_token("other-secret", "acme", token));
	assert_string_not_equal(token, BLAND_DYN_ACME);
	/* The token is not the secret. */
	assert_int_equal(
		sig_verify_bland_dynamic("bland-test-secret", "acme", "Bearer bland-test-secret"),
		SIG_MALFORMED);
	/* malformed */
	assert_int_equal(sig_verify_bland_dynamic("bland-test-secret", "acme", BLAND_DYN_ACME),
		SIG_MALFORMED);
	assert_int_equal(sig_verify_bland_dynamic("bland-test-secret", "acme", "Bearer "),
		SIG_MALFORMED);
	assert_int_equal(
		sig_verify_bland_dynamic("bland-test-secret", "acme",
			"Bearer 57dee7cecbef6582d99a67dbadddb096b9646cda72034479f5b363aae8b3c6d"),
		SIG_MALFORMED);
	assert_int_equal(
		sig_verify_bland_dynamic("bland-test-secret", "acme", "Basic " BLAND_DYN_ACME),
		SIG_MALFORMED);
	/* missing */
	assert_int_equal(sig_verify_bland_dynamic("bland-test-secret", "acme", NULL), SIG_MISSING);
	assert_int_equal(sig_verify_bland_dynamic(NULL, "acme", auth), SIG_MISSING);
	assert_int_equal(sig_verify_bland_dynamic("", "acme", auth), SIG_MISSING);
	assert_int_equal(sig_verify_bland_dynamic("bland-test-secret", NULL, auth), SIG_MISSING);
	assert_false(sig_bland_dynamic_token(NULL, "acme", token));
	assert_string_equal(token, "");
	assert_false(sig_bland_dynamic_token("", "acme", token));
	assert_false(sig_bland_dynamic_token("bland-test-secret", NULL, token));
}

/* ---- signing (callsim's): the vectors, and what the checks accept ---- */

static void
test_sign_vectors(void **state)
{
	char hdr[SIG_RETELL_HEADER_SIZE], sig[65];

	assert_true(sig_sign_retell("test-api-key", RETELL_BODY, strlen(RETELL_BODY),
		INT64_C(1700000000000), hdr, sizeof(hdr)));
	assert_string_equal(hdr, RETELL_HDR);
	assert_true(sig_sign_vapi_hmac("vapi-test-secret", "1700000000", VAPI_BODY,
		strlen(VAPI_BODY), sig));
	assert_string_equal(sig, VAPI_SIG);
	assert_true(sig_sign_vapi_hmac("vapi-test-secret", "1700000000123", VAPI_BODY,
		strlen(VAPI_BODY), sig));
	assert_string_equal(sig, VAPI_SIG_MS);
	assert_true(sig_sign_bland("bland-test-secret", BLAND_BODY, strlen(BLAND_BODY), sig));
	assert_string_equal(sig, BLAND_SIG);
}

static void
test_sign_round_trip(void **state)
{
	static const char body[] = "{\"x\":\"\\u0000\"}\n";
	char hdr[SIG_RETELL_HEADER_SIZE], sig[65];
	int64_t now = INT64_C(1714608475945);

	assert_true(sig_sign_retell("k", body, sizeof(body) - 1, now, hdr, sizeof(hdr)));
	assert_int_equal(sig_verify_retell("k", hdr, body, sizeof(body) - 1, now, TOLERANCE_MS),
		SIG_OK);
	assert_true(sig_sign_vapi_hmac("s", "1714608475", body, sizeof(body) - 1, sig));
	assert_int_equal(sig_verify_vapi_hmac("s", sig, "1714608475", body, sizeof(body) - 1, now,
				 TOLERANCE_MS),
		SIG_OK);
	assert_true(sig_sign_bland("s", body, sizeof(body) - 1, sig));
	assert_int_equal(sig_verify_bland("s", sig, body, sizeof(body) - 1), SIG_OK);
	/* an empty body is a body */
	assert_true(sig_sign_bland("s", NULL, 0, sig));
	assert_int_equal(sig_verify_bland("s", sig, "", 0), SIG_OK);
}

static void
test_sign_refused(void **state)
{
	char hdr[SIG_RETELL_HEADER_SIZE], sig[65];

	assert_false(sig_sign_retell("", "x", 1, 1, hdr, sizeof(hdr)));
	assert_string_equal(hdr, "");
	assert_false(sig_sign_retell(NULL, "x", 1, 1, hdr, sizeof(hdr)));
	assert_false(sig_sign_retell("k", "x", 1, -1, hdr, sizeof(hdr)));
	assert_false(sig_sign_retell("k", NULL, 1, 1, hdr, sizeof(hdr)));
	/* too small for the header: nothing half written */
	assert_false(sig_sign_retell("k", "x", 1, 1, hdr, 20));
	assert_string_equal(hdr, "");
	assert_false(sig_sign_vapi_hmac("", "1", "x", 1, sig));
	assert_false(sig_sign_vapi_hmac("s", "", "x", 1, sig));
	assert_false(sig_sign_vapi_hmac("s", NULL, "x", 1, sig));
	assert_false(sig_sign_vapi_hmac("s", "12345678901234567890", "x", 1, sig));
	assert_string_equal(sig, "");
	assert_false(sig_sign_bland(NULL, "x", 1, sig));
	assert_false(sig_sign_bland("s", NULL, 1, sig));
	assert_string_equal(sig, "");
}

/* The keyed contexts each thread keeps (more keys than slots, keys that do not fit one, the
 * empty key, each again after others) give what a fresh HMAC gives. */
static void
test_hmac_key_cache(void **state)
{
	static const char msg1[] = "{\"event\":\"call_inbound\"}", msg2[] = "1700000000000";
	char key[300], got[65], want[65];
	unsigned char md[32];
	size_t mdlen;

	for (int round = 0; round < 3; round++) {
		for (int k = 0; k < 200; k++) {
			/* lengths 0..299: the empty key, cached ones, ones too long to cache */
			size_t klen = (size_t)((k * 37 + round) % 300);

			for (size_t i = 0; i < klen; i++)
				key[i] = (char)('a' + (i * 7 + (size_t)k) % 26);
			assert_true(sig_hmac_sha256_hex(key, klen, msg1, sizeof(msg1) - 1, msg2,
				sizeof(msg2) - 1, got));
			{
				char both[sizeof(msg1) + sizeof(msg2)];

				memcpy(both, msg1, sizeof(msg1) - 1);
				memcpy(both + sizeof(msg1) - 1, msg2, sizeof(msg2) - 1);
				assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL,
					klen ? key : "", klen, (const unsigned char *)both,
					sizeof(msg1) + sizeof(msg2) - 2, md, sizeof(md), &mdlen));
			}
			assert_int_equal(mdlen, 32);
			for (size_t i = 0; i < 32; i++)
				snprintf(want + 2 * i, 3, "%02x", md[i]);
			assert_string_equal(got, want);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_vectors),
		cmocka_unit_test(test_result_names),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_keys_set_once),
		cmocka_unit_test(test_hmac_hex),
		cmocka_unit_test(test_hmac_pads_cache),
		cmocka_unit_test(test_hmac_key_cache),
		cmocka_unit_test(test_retell_window),
		cmocka_unit_test(test_retell_mismatch),
		cmocka_unit_test(test_retell_malformed),
		cmocka_unit_test(test_retell_huge_timestamp),
		cmocka_unit_test(test_retell_missing),
		cmocka_unit_test(test_vapi_hmac),
		cmocka_unit_test(test_vapi_stale),
		cmocka_unit_test(test_vapi_malformed),
		cmocka_unit_test(test_vapi_missing),
		cmocka_unit_test(test_vapi_bearer),
		cmocka_unit_test(test_vapi_bearer_legacy),
		cmocka_unit_test(test_vapi_bearer_missing),
		cmocka_unit_test(test_bland),
		cmocka_unit_test(test_bland_dynamic),
		cmocka_unit_test(test_sign_vectors),
		cmocka_unit_test(test_sign_round_trip),
		cmocka_unit_test(test_sign_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
