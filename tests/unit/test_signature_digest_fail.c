/* test_signature_digest_fail.c: a key longer than a block whose digest fails is no empty key. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "callrouted/signature.h"

/*
 * OpenSSL 3's one-shot SHA256() is EVP_Q_digest(): a fetch and an allocation, so it can fail
 * (no memory, no provider), returning NULL with md untouched.  This executable's own SHA256()
 * (which the code linked into it binds to) fails that way every time.
 */
unsigned char *
SHA256(const unsigned char *d, size_t n, unsigned char *md)
{
	(void)d;
	(void)n;
	(void)md;
	return NULL;
}

static void
hex_of(const unsigned char *md, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* HMAC by OpenSSL's HMAC() (EVP, not SHA256()). */
static void
reference(const void *key, size_t keylen, const char *msg, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	assert_non_null(HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
		strlen(msg), md, &mdlen));
	assert_int_equal(mdlen, 32);
	hex_of(md, mdlen, out);
}

/*
 * Keys of 65 to 200 bytes (cached and not) must still give HMAC() or fail, never the HMAC of
 * the all-zero pad (the empty key's), which anybody can compute.
 */
static void
test_long_key_digest_fails(void **state)
{
	unsigned char key[200];
	const char *msg = "{\"event\":\"call_started\"}";
	char empty[65], want[65], got[65];

	(void)state;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(0xa5 ^ i);
	reference("", 0, msg, empty);
	for (size_t len = 65; len <= sizeof(key); len++) {
		bool ok = sig_hmac_sha256_hex(key, len, msg, strlen(msg), NULL, 0, got);

		reference(key, len, msg, want);
		if (ok) {
			assert_string_not_equal(got, empty);
			assert_string_equal(got, want);
		} else {
			assert_string_equal(got, "");
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_key_digest_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
