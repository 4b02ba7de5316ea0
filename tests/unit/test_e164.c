/* test_e164.c: E.164 parsing and formatting, driven by a table of inputs and expected keys. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "callrouted/e164.h"

#define AS_STRLEN SIZE_MAX /* len = strlen(in) */

struct e164_case {
	const char *in;
	size_t len;
	bool ok;
	uint64_t key;
};

/* One case a line. */
/* clang-format off */
#define GOOD(s, k) { (s), AS_STRLEN, true, UINT64_C(k) }
#define BAD(s) { (s), AS_STRLEN, false, 0 }
#define GOOD_LEN(s, n, k) { (s), (n), true, UINT64_C(k) }
#define BAD_LEN(s, n) { (s), (n), false, 0 }

static const struct e164_case cases[] = {
	/* plain E.164 */
	GOOD("+14155550123", 14155550123),
	GOOD("+442079460000", 442079460000),
	GOOD("+33142685300", 33142685300),
	GOOD("+8613800138000", 8613800138000),
	GOOD("+1234567", 1234567),			/* 7 digits: the shortest */
	GOOD("+123456789012345", 123456789012345),	/* 15 digits: the longest */
	GOOD("+999999999999999", 999999999999999),
	GOOD("+100000000000000", 100000000000000),
	GOOD("+10000000", 10000000),
	/* visual separators between digits */
	GOOD("+1 415 555 0123", 14155550123),
	GOOD("+1 (415) 555-0123", 14155550123),
	GOOD("+1-415-555-0123", 14155550123),
	GOOD("+1.415.555.0123", 14155550123),
	GOOD("+1(415)5550123", 14155550123),
	GOOD("+44 20 7946 0000", 442079460000),
	GOOD("+1 - 415 - 555 - 0123", 14155550123), /* runs of separators */
	/* "00" in place of '+' */
	GOOD("0014155550123", 14155550123),
	GOOD("00442079460000", 442079460000),
	GOOD("001 415 555 0123", 14155550123),
	/* tel: URIs (RFC 3966 global numbers; the scheme is case-insensitive) */
	GOOD("tel:+14155550123", 14155550123),
	GOOD("tel:+1-415-555-0123", 14155550123),
	GOOD("TEL:+14155550123", 14155550123),
	GOOD("Tel:0014155550123", 14155550123),

	/* national formats: no country code */
	BAD("(415) 555-0123"),
	BAD("4155550123"),
	BAD("14155550123"),
	BAD("415-555-0123"),
	BAD("1 415 555 0123"),
	BAD("020 7946 0000"),
	BAD("0207946000"),
	BAD("0 14155550123"),
	BAD("tel:4155550123"),
	/* too short, too long */
	BAD("+123456"),
	BAD("+1"),
	BAD("00123456"),
	BAD("+1 23 45 6"),
	BAD("+1234567890123456"),
	BAD("+1 234 567 890 123 456"),
	BAD("001234567890123456"),
	BAD("+99999999999999999999999999999"), /* would overflow 64 bits */
	/* leading 0 after the international prefix */
	BAD("+04155550123"),
	BAD("+0"),
	BAD("+0014155550123"),
	BAD("00014155550123"),
	BAD("tel:+04155550123"),
	/* letters and other characters */
	BAD("+1415555012a"),
	BAD("+1415555O123"), /* letter O */
	BAD("+1 415 CALL NOW"),
	BAD("+1 415 555 0123 ext 4"),
	BAD("+1/415/555/0123"),
	BAD("+1_415_555_0123"),
	BAD("+1\t415\t555\t0123"),
	BAD("+1,4155550123"),
	BAD("tel:+14155550123;ext=4"),
	BAD("+\xd9\xa1\xd9\xa4\xd9\xa1\xd9\xa5\xd9\xa5\xd9\xa5\xd9\xa0"), /* Arabic-Indic digits */
	BAD("++14155550123"),
	BAD("+1+4155550123"),
	BAD("sip:+14155550123"),
	BAD("tel:"),
	BAD("tel:tel:+14155550123"),
	/* separators only between digits */
	BAD(" +14155550123"),
	BAD("+14155550123 "),
	BAD("+14155550123-"),
	BAD("+ 14155550123"),
	BAD("+(1) 415 555 0123"),
	BAD("00 14155550123"),
	BAD("-+14155550123"),
	BAD("tel: +14155550123"),
	/* empty and prefixes alone */
	BAD(""),
	BAD("+"),
	BAD("00"),
	BAD("0"),
	BAD("   "),
	BAD("()"),
	/* len, not NUL, ends the input */
	BAD_LEN("+1415\0" "5550123", 12), /* embedded NUL */
	BAD_LEN("+14155550123", 13),	  /* len takes in the terminating NUL */
	GOOD_LEN("+14155550123999", 12, 14155550123),
	GOOD_LEN("+14155550123 trailing junk", 12, 14155550123),
	BAD_LEN("+14155550123", 5),
	BAD_LEN("+14155550123", 0),
	BAD_LEN("+14155550123", 1),
	BAD_LEN("tel:+14155550123", 4),
	BAD_LEN("0014155550123", 1),
	GOOD_LEN("+1234567", 8, 1234567),
	BAD_LEN("+1234567", 7),
};
/* clang-format on */

static void
test_parse_table(void **state)
{
	unsigned failures = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct e164_case *c = &cases[i];
		size_t len = c->len == AS_STRLEN ? strlen(c->in) : c->len;
		uint64_t key = 0xdeadbeef;
		bool ok = e164_parse(c->in, len, &key);

		if (ok != c->ok || (ok && key != c->key)) {
			print_error("case %zu \"%s\" (len %zu): got %s %llu, want %s %llu\n", i,
				c->in, len, ok ? "ok" : "reject", (unsigned long long)key,
				c->ok ? "ok" : "reject", (unsigned long long)c->key);
			failures++;
		}
		if (!ok)
			assert_int_equal(key, 0xdeadbeef); /* untouched on rejection */
	}
	assert_int_equal(failures, 0);
}

static void
test_parse_null(void **state)
{
	uint64_t key = 0;

	assert_false(e164_parse(NULL, 0, &key));
	assert_false(e164_parse(NULL, 12, &key));
	assert_false(e164_parse("+14155550123", 12, NULL));
}

static void
test_format(void **state)
{
	char buf[E164_BUFSIZE];

	assert_int_equal(e164_format(UINT64_C(14155550123), buf, sizeof(buf)), 12);
	assert_string_equal(buf, "+14155550123");
	assert_int_equal(e164_format(UINT64_C(1234567), buf, sizeof(buf)), 8);
	assert_string_equal(buf, "+1234567");
	assert_int_equal(e164_format(UINT64_C(999999999999999), buf, sizeof(buf)), 16);
	assert_string_equal(buf, "+999999999999999");
	assert_int_equal(e164_format(UINT64_C(100000000000000), buf, sizeof(buf)), 16);
	assert_string_equal(buf, "+100000000000000");
}

static void
test_format_invalid(void **state)
{
	static const uint64_t invalid[] = {
		0, 1, 999999,                   /* 6 digits: never a parsed key */
		UINT64_C(1000000000000000),     /* 16 digits */
		UINT64_C(9999999999999999),     /* 16 digits */
		UINT64_C(18446744073709551615), /* 20 digits */
	};
	char buf[E164_BUFSIZE];

	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(e164_format(invalid[i], buf, sizeof(buf)), 0);
		assert_int_equal(buf[0], '\0');
	}
}

static void
test_format_small_buffer(void **state)
{
	char buf[E164_BUFSIZE];

	/* "+14155550123" needs 13 bytes with its NUL. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(e164_format(UINT64_C(14155550123), buf, 12), 0);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(e164_format(UINT64_C(14155550123), buf, 13), 12);
	assert_string_equal(buf, "+14155550123");
	assert_int_equal(e164_format(UINT64_C(14155550123), buf, 0), 0);
	assert_int_equal(e164_format(UINT64_C(14155550123), NULL, 13), 0);
	/* The largest key fits E164_BUFSIZE exactly. */
	assert_int_equal(e164_format(UINT64_C(999999999999999), buf, E164_BUFSIZE), 16);
	assert_int_equal(e164_format(UINT64_C(999999999999999), buf, E164_BUFSIZE - 1), 0);
}

/* Every accepted case formats to "+digits", which parses back to the same key. */
static void
test_round_trip_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct e164_case *c = &cases[i];
		char buf[E164_BUFSIZE];
		uint64_t key = 0;
		size_t n;

		if (!c->ok)
			continue;
		n = e164_format(c->key, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(n, strlen(buf));
		assert_int_equal(buf[0], '+');
		assert_true(e164_parse(buf, n, &key));
		assert_int_equal(key, c->key);
	}
}

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void
test_round_trip_random(void **state)
{
	uint64_t seed = 164;

	for (int i = 0; i < 100000; i++) {
		/* Spread over every length from 7 to 15 digits. */
		static const uint64_t lo[] = { UINT64_C(1000000), UINT64_C(10000000),
			UINT64_C(100000000), UINT64_C(1000000000), UINT64_C(10000000000),
			UINT64_C(100000000000), UINT64_C(1000000000000), UINT64_C(10000000000000),
			UINT64_C(100000000000000) };
		uint64_t base = lo[i % 9];
		uint64_t want = base + splitmix64(&seed) % (base * 9);
		char buf[E164_BUFSIZE];
		uint64_t key = 0;
		size_t n = e164_format(want, buf, sizeof(buf));

		assert_int_equal(n, (size_t)(i % 9) + 8);
		assert_true(e164_parse(buf, n, &key));
		assert_int_equal(key, want);
	}
}

static void
test_canonical(void **state)
{
	static const char *const yes[] = { "+14155550123", "+4930123456", "+1234567",
		"+123456789012345" };
	static const char *const no[] = { "", "+", "14155550123", "+1 415 555 0123",
		"+1-415-555-0123", "+01234567", "+123456", "+1234567890123456", "0014155550123",
		"tel:+14155550123", "+14155550123 ", "+1415555012a" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(e164_is_canonical(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (e164_is_canonical(no[i]))
			fail_msg("\"%s\" taken as canonical", no[i]);
	assert_false(e164_is_canonical(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_null),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_invalid),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_round_trip_table),
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
