/* test_admin_api.c: the admin API's shared rules: ids, tokens (form, hash), the error shape. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "callrouted/admin_api.h"

static void
test_parse_id(void **state)
{
	static const char *const bad[] = { "", "0", "-1", "+1", " 1", "1 ", "1x", "0x10", "1.0",
		"1234567890123456789", "99999999999999999999" };
	uint64_t id = 7;

	assert_true(admin_api_parse_id("1", &id));
	assert_int_equal(id, 1);
	assert_true(admin_api_parse_id("000042", &id));
	assert_int_equal(id, 42);
	assert_true(admin_api_parse_id("999999999999999999", &id)); /* 18 digits */
	assert_int_equal(id, UINT64_C(999999999999999999));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		id = 7;
		if (admin_api_parse_id(bad[i], &id))
			fail_msg("\"%s\" parsed as an id", bad[i]);
		assert_int_equal(id, 7);
	}
	assert_false(admin_api_parse_id(NULL, &id));
}

static void
test_token_new(void **state)
{
	char a[ADMIN_TOKEN_SIZE], b[ADMIN_TOKEN_SIZE];

	assert_true(admin_token_new(a));
	assert_true(admin_token_new(b));
	/* crt_ then 43 base64url characters (32 bytes, no padding) */
	assert_int_equal(strlen(a), 4 + 43);
	assert_int_equal(strlen(a) + 1, ADMIN_TOKEN_SIZE);
	assert_memory_equal(a, "crt_", 4);
	assert_int_equal(
		strspn(a + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
		43);
	assert_string_not_equal(a, b);
	assert_true(admin_token_ok(a));
}

static void
test_token_ok(void **state)
{
	char longest[ADMIN_TOKEN_MAX + 2];

	memset(longest, 'a', ADMIN_TOKEN_MAX);
	longest[ADMIN_TOKEN_MAX] = 0;
	assert_true(admin_token_ok(longest));
	longest[ADMIN_TOKEN_MAX] = 'a';
	longest[ADMIN_TOKEN_MAX + 1] = 0;
	assert_false(admin_token_ok(longest));
	assert_true(admin_token_ok("x"));
	assert_false(admin_token_ok(""));
	assert_false(admin_token_ok("a b"));
	assert_false(admin_token_ok("a\tb"));
	assert_false(admin_token_ok("a\nb"));
	assert_false(admin_token_ok("a\x7f"));
}

static void
test_token_sha256(void **state)
{
	char hex[65];

	/* sha256("abc"), FIPS 180-2 */
	admin_token_sha256_hex("abc", hex);
	assert_string_equal(hex,
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	admin_token_sha256_hex("", hex);
	assert_string_equal(hex,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void
test_error_shape(void **state)
{
	char buf[128];

	snprintf(buf, sizeof(buf), ADMIN_API_ERROR_FMT, "not_found", "no such number");
	assert_string_equal(buf,
		"{\"" ADMIN_API_ERROR_KEY "\":{\"" ADMIN_API_ERROR_CODE
		"\":\"not_found\",\"" ADMIN_API_ERROR_MESSAGE "\":\"no such number\"}}");
	assert_string_equal(ADMIN_API_NUMBERS, ADMIN_API_PREFIX "numbers");
	assert_string_equal(ADMIN_API_CALLS, ADMIN_API_PREFIX "calls");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_id),
		cmocka_unit_test(test_token_new),
		cmocka_unit_test(test_token_ok),
		cmocka_unit_test(test_token_sha256),
		cmocka_unit_test(test_error_shape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
