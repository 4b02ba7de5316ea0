/* test_rating.c: the rating table (rating_cases.txt), money formatting, provider durations. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "callrouted/rating.h"

#define MIN_TABLE_CASES 60

struct table_case {
	int64_t initial, increment, duration_ms, rate;
	bool ok;
	int64_t billed, amount;
};

/* Parse one line of rating_cases.txt (comment already cut); false if malformed. */
static bool
parse_case(const char *line, struct table_case *c)
{
	int n = 0;

	memset(c, 0, sizeof(*c));
	if (sscanf(line, " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " -> %n", &c->initial,
		    &c->increment, &c->duration_ms, &c->rate, &n) != 4 ||
		n == 0)
		return false;
	line += n;
	if (strncmp(line, "error", 5) == 0) {
		c->ok = false;
		line += 5;
	} else {
		n = 0;
		if (sscanf(line, "%" SCNd64 " %" SCNd64 "%n", &c->billed, &c->amount, &n) != 2 ||
			n == 0)
			return false;
		c->ok = true;
		line += n;
	}
	return line[strspn(line, " \t\r\n")] == '\0';
}

/* Run one case through every entry point; print and return false on any disagreement. */
static bool
check_case(const struct table_case *c, int lineno)
{
	struct rating_plan plan = { .rate_micros_per_min = c->rate,
		.initial_s = (int32_t)c->initial,
		.increment_s = (int32_t)c->increment };
	struct rating_result res = { -1, -1 };
	int64_t billed = -1, amount = -1;
	bool ok = rating_rate_call(true, c->duration_ms, &plan, &res);
	bool good = true;

	if (ok != c->ok) {
		print_error("rating_cases.txt:%d: expected %s, got %s\n", lineno,
			c->ok ? "success" : "error", ok ? "success" : "error");
		return false;
	}
	if (!ok) {
		if (res.billed_seconds != 0 || res.amount_micros != 0) {
			print_error("rating_cases.txt:%d: error left a non-zero result\n", lineno);
			good = false;
		}
		return good;
	}
	if (res.billed_seconds != c->billed || res.amount_micros != c->amount) {
		print_error("rating_cases.txt:%d: expected %" PRId64 " s %" PRId64
			    " micros, got %" PRId64 " s %" PRId64 " micros\n",
			lineno, c->billed, c->amount, res.billed_seconds, res.amount_micros);
		good = false;
	}
	/* The two halves on their own agree with the whole. */
	if (!rating_billed_seconds(c->duration_ms, &plan, &billed) || billed != c->billed) {
		print_error("rating_cases.txt:%d: rating_billed_seconds gave %" PRId64 "\n", lineno,
			billed);
		good = false;
	}
	if (!rating_amount_micros(c->billed, c->rate, &amount) || amount != c->amount) {
		print_error("rating_cases.txt:%d: rating_amount_micros gave %" PRId64 "\n", lineno,
			amount);
		good = false;
	}
	/* Never connected: nothing, whatever the duration. */
	res.billed_seconds = res.amount_micros = -1;
	if (!rating_rate_call(false, c->duration_ms, &plan, &res) || res.billed_seconds != 0 ||
		res.amount_micros != 0) {
		print_error("rating_cases.txt:%d: a never-connected call was billed\n", lineno);
		good = false;
	}
	return good;
}

static void
test_table(void **state)
{
	char path[4096], line[512];
	int lineno = 0, cases = 0, failures = 0;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/unit/rating_cases.txt", CALLROUTED_SOURCE_DIR);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s", path);

	while (fgets(line, sizeof(line), f) != NULL) {
		struct table_case c;
		char *hash = strchr(line, '#');

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f))
			fail_msg("rating_cases.txt:%d: line too long", lineno);
		if (hash != NULL)
			*hash = '\0';
		if (line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (!parse_case(line, &c)) {
			print_error("rating_cases.txt:%d: malformed case\n", lineno);
			failures++;
			continue;
		}
		cases++;
		if (!check_case(&c, lineno))
			failures++;
	}
	fclose(f);

	if (failures > 0)
		fail_msg("%d of the cases in rating_cases.txt failed", failures);
	if (cases < MIN_TABLE_CASES)
		fail_msg("rating_cases.txt has %d cases, expected at least %d", cases,
			MIN_TABLE_CASES);
}

static void
test_plan_valid(void **state)
{
	struct rating_plan def = { RATING_DEFAULT_RATE_MICROS_PER_MIN, RATING_DEFAULT_INITIAL_S,
		RATING_DEFAULT_INCREMENT_S };
	struct rating_plan p;

	(void)state;
	assert_true(rating_plan_valid(&def));
	p = def;
	p.rate_micros_per_min = 0;
	assert_true(rating_plan_valid(&p));
	p.rate_micros_per_min = RATING_MAX_RATE_MICROS_PER_MIN;
	assert_true(rating_plan_valid(&p));
	p.rate_micros_per_min = RATING_MAX_RATE_MICROS_PER_MIN + 1;
	assert_false(rating_plan_valid(&p));
	p.rate_micros_per_min = INT64_MIN;
	assert_false(rating_plan_valid(&p));
	p = def;
	p.initial_s = INT32_MAX;
	assert_false(rating_plan_valid(&p));
	p = def;
	p.increment_s = INT32_MIN;
	assert_false(rating_plan_valid(&p));
	assert_false(rating_plan_valid(NULL));
}

static void
test_not_connected(void **state)
{
	static const int64_t durations[] = { 0, 1, 15791, 300000, RATING_MAX_DURATION_MS,
		RATING_MAX_DURATION_MS + 1, -1, INT64_MIN, INT64_MAX };
	struct rating_plan plans[] = {
		{ 150000, 60, 60 },
		{ 150000, 1, 1 },
		{ RATING_MAX_RATE_MICROS_PER_MIN, 60, 6 },
		{ 0, 30, 6 },
	};
	struct rating_plan bad = { 150000, 0, 60 };
	struct rating_result res;

	(void)state;
	for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++) {
		for (size_t j = 0; j < sizeof(durations) / sizeof(durations[0]); j++) {
			res.billed_seconds = res.amount_micros = -1;
			assert_true(rating_rate_call(false, durations[j], &plans[i], &res));
			assert_int_equal(res.billed_seconds, 0);
			assert_int_equal(res.amount_micros, 0);
		}
	}
	/* A connected call of 0 ms bills nothing either. */
	assert_true(rating_rate_call(true, 0, &plans[0], &res));
	assert_int_equal(res.billed_seconds, 0);
	assert_int_equal(res.amount_micros, 0);
	/* The plan is checked even when nothing is billed. */
	res.billed_seconds = res.amount_micros = -1;
	assert_false(rating_rate_call(false, 60000, &bad, &res));
	assert_int_equal(res.billed_seconds, 0);
	assert_int_equal(res.amount_micros, 0);
	assert_false(rating_rate_call(false, 60000, NULL, &res));
	assert_false(rating_rate_call(false, 60000, &plans[0], NULL));
}

static void
test_faq_example(void **state)
{
	/* The billing FAQ: a 5-minute call at $0.15/min costs $0.75. */
	struct rating_plan plan = { RATING_DEFAULT_RATE_MICROS_PER_MIN, RATING_DEFAULT_INITIAL_S,
		RATING_DEFAULT_INCREMENT_S };
	struct rating_result res;
	char buf[RATING_DOLLARS_BUFSIZE];

	(void)state;
	assert_true(rating_rate_call(true, 5 * 60 * 1000, &plan, &res));
	assert_int_equal(res.billed_seconds, 300);
	assert_int_equal(res.amount_micros, 750000);
	assert_int_equal(rating_format_dollars(res.amount_micros, buf, sizeof(buf)), 8);
	assert_string_equal(buf, "0.750000");
}

static void
test_amount_edges(void **state)
{
	int64_t out;

	(void)state;
	/* ceil(1 * 1 / 60) = 1: amounts round up. */
	assert_true(rating_amount_micros(1, 1, &out));
	assert_int_equal(out, 1);
	assert_true(rating_amount_micros(60, 1, &out));
	assert_int_equal(out, 1);
	assert_true(rating_amount_micros(61, 1, &out));
	assert_int_equal(out, 2);
	assert_true(rating_amount_micros(0, RATING_MAX_RATE_MICROS_PER_MIN, &out));
	assert_int_equal(out, 0);
	/* Huge but representable: no overflow in the rounding. */
	assert_true(rating_amount_micros(INT64_MAX, 1, &out));
	assert_int_equal(out, INT64_MAX / 60 + 1);
	assert_true(rating_amount_micros(INT64_MAX / RATING_MAX_RATE_MICROS_PER_MIN,
		RATING_MAX_RATE_MICROS_PER_MIN, &out));
	/* Overflow and invalid inputs fail and leave 0. */
	out = -1;
	assert_false(rating_amount_micros(INT64_MAX, 2, &out));
	assert_int_equal(out, 0);
	out = -1;
	assert_false(rating_amount_micros(INT64_MAX / RATING_MAX_RATE_MICROS_PER_MIN + 1,
		RATING_MAX_RATE_MICROS_PER_MIN, &out));
	assert_int_equal(out, 0);
	assert_false(rating_amount_micros(-1, 150000, &out));
	assert_false(rating_amount_micros(60, -1, &out));
	assert_false(rating_amount_micros(60, RATING_MAX_RATE_MICROS_PER_MIN + 1, &out));
	assert_false(rating_amount_micros(60, 150000, NULL));
	assert_false(rating_billed_seconds(1000, NULL, &out));
}

static void
test_format_dollars(void **state)
{
	static const struct {
		int64_t micros;
		const char *text;
	} cases[] = {
		{ 0, "0.000000" },
		{ 1, "0.000001" },
		{ -1, "-0.000001" },
		{ 750000, "0.750000" },
		{ -750000, "-0.750000" },
		{ 999999, "0.999999" },
		{ 1000000, "1.000000" },
		{ 1000001, "1.000001" },
		{ 123456789, "123.456789" },
		{ 432000000, "432.000000" },
		{ INT64_MAX, "9223372036854.775807" },
		{ INT64_MIN, "-9223372036854.775808" },
		{ INT64_MIN + 1, "-9223372036854.775807" },
	};
	char buf[RATING_DOLLARS_BUFSIZE];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = rating_format_dollars(cases[i].micros, buf, sizeof(buf));

		assert_string_equal(buf, cases[i].text);
		assert_int_equal(n, strlen(cases[i].text));
	}
}

static void
test_format_dollars_small_buffer(void **state)
{
	char buf[RATING_DOLLARS_BUFSIZE];

	(void)state;
	/* "0.750000" needs 9 bytes with its NUL. */
	assert_int_equal(rating_format_dollars(750000, buf, 9), 8);
	assert_string_equal(buf, "0.750000");
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rating_format_dollars(750000, buf, 8), 0);
	assert_string_equal(buf, "");
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rating_format_dollars(INT64_MIN, buf, RATING_DOLLARS_BUFSIZE - 1), 0);
	assert_string_equal(buf, "");
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rating_format_dollars(1, buf, 0), 0);
	assert_int_equal(buf[0], 'x');
	assert_int_equal(rating_format_dollars(1, NULL, 16), 0);
}

static int64_t
iso(const char *s)
{
	int64_t ms = INT64_MIN;

	if (!rating_parse_iso8601_ms(s, &ms))
		fail_msg("rejected \"%s\"", s);
	return ms;
}

static void
test_iso8601_fixtures(void **state)
{
	(void)state;
	/* tests/fixtures/vapi/end-of-call-report.json: the same call as retell/call_ended.json. */
	assert_int_equal(iso("2024-05-02T00:07:55.945Z"), INT64_C(1714608475945));
	assert_int_equal(iso("2024-05-02T00:08:11.736Z"), INT64_C(1714608491736));
	assert_int_equal(iso("2024-05-02T00:08:11.736Z") - iso("2024-05-02T00:07:55.945Z"), 15791);
	/* vapi/end-of-call-report-outbound.json */
	assert_int_equal(iso("2024-05-02T01:03:05.250Z") - iso("2024-05-02T01:00:00.000Z"), 185250);
	/* bland/post-call.json: created_at with an offset, started_at, end_at */
	assert_int_equal(iso("2024-05-02T00:07:50.000+00:00"), INT64_C(1714608470000));
	assert_int_equal(iso("2024-05-02T00:08:11.000Z") - iso("2024-05-02T00:07:55.945Z"), 15055);
	/* bland/post-call-outbound.json: agrees with its corrected_duration "126" */
	assert_int_equal(iso("2024-05-02T02:02:09.000Z") - iso("2024-05-02T02:00:03.000Z"), 126000);
}

static void
test_iso8601_values(void **state)
{
	(void)state;
	assert_int_equal(iso("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(iso("1970-01-01T00:00:00.001Z"), 1);
	assert_int_equal(iso("1969-12-31T23:59:59.999Z"), -1);
	assert_int_equal(iso("2000-02-29T12:00:00Z"), INT64_C(951825600000));
	assert_int_equal(iso("2038-01-19T03:14:08Z"), INT64_C(2147483648000));
	assert_int_equal(iso("1900-03-01T00:00:00Z"), INT64_C(-2203891200000));
	assert_int_equal(iso("9999-12-31T23:59:59.999Z"), INT64_C(253402300799999));
	assert_int_equal(iso("0001-01-01T00:00:00Z"), INT64_C(-62135596800000));
	assert_int_equal(iso("0000-01-01T00:00:00Z"), INT64_C(-62167219200000));
	/* RFC 3339 allows lower-case t and z. */
	assert_int_equal(iso("2024-05-02t00:07:55.945z"), INT64_C(1714608475945));
	/* 0..9 fractional digits; beyond milliseconds they are truncated. */
	assert_int_equal(iso("2024-05-02T00:07:55Z"), INT64_C(1714608475000));
	assert_int_equal(iso("2024-05-02T00:07:55.9Z"), INT64_C(1714608475900));
	assert_int_equal(iso("2024-05-02T00:07:55.94Z"), INT64_C(1714608475940));
	assert_int_equal(iso("2024-05-02T00:07:55.9459Z"), INT64_C(1714608475945));
	assert_int_equal(iso("2024-05-02T00:07:55.945999999Z"), INT64_C(1714608475945));
	assert_int_equal(iso("2024-05-02T00:07:55.000000000Z"), INT64_C(1714608475000));
	/* Every day of a leap year's February, and the last of a century's. */
	assert_int_equal(iso("2024-03-01T00:00:00Z") - iso("2024-02-29T00:00:00Z"), 86400000);
	assert_int_equal(iso("2100-03-01T00:00:00Z") - iso("2100-02-28T00:00:00Z"), 86400000);
	assert_int_equal(iso("2025-01-01T00:00:00Z") - iso("2024-01-01T00:00:00Z"),
		INT64_C(366) * 86400000);
}

static void
test_iso8601_offsets(void **state)
{
	int64_t utc = INT64_C(1714608475945); /* 2024-05-02T00:07:55.945Z */

	(void)state;
	assert_int_equal(iso("2024-05-02T00:07:55.945+00:00"), utc);
	assert_int_equal(iso("2024-05-02T00:07:55.945-00:00"), utc);
	assert_int_equal(iso("2024-05-02T02:07:55.945+02:00"), utc);
	assert_int_equal(iso("2024-05-02T05:37:55.945+05:30"), utc);
	assert_int_equal(iso("2024-05-01T19:07:55.945-05:00"), utc);
	assert_int_equal(iso("2024-05-01T12:07:55.945-12:00"), utc);
	assert_int_equal(iso("2024-05-02T14:07:55.945+14:00"), utc);
	assert_int_equal(iso("2024-05-01T23:59:59.999-00:30"), INT64_C(1714609799999));
	assert_int_equal(iso("2024-05-02T23:59:00+23:59"), iso("2024-05-02T00:00:00Z"));
}

static void
test_iso8601_rejected(void **state)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"2024",
		"2024-05-02",
		"2024-05-02T",
		"2024-05-02T00:07",
		"2024-05-02T00:07:55",     /* no zone: local time is not accepted */
		"2024-05-02T00:07:55.945", /* likewise */
		"2024-05-02 00:07:55Z",    /* space for T */
		"2024-05-02X00:07:55Z",
		" 2024-05-02T00:07:55Z",
		"2024-05-02T00:07:55Z ",
		"2024-05-02T00:07:55Zjunk",
		"2024-05-02T00:07:55ZZ",
		"2024-5-02T00:07:55Z",
		"2024-05-2T00:07:55Z",
		"24-05-02T00:07:55Z",
		"+2024-05-02T00:07:55Z",
		"-2024-05-02T00:07:55Z",
		"20240502T000755Z", /* ISO 8601 basic format */
		"2024-05-02T0:07:55Z",
		"2024-05-02T00:7:55Z",
		"2024-05-02T00:07:5Z",
		"2024-05-02T00:07:55.Z",           /* '.' without digits */
		"2024-05-02T00:07:55,945Z",        /* comma decimal sign */
		"2024-05-02T00:07:55.9459459459Z", /* 10 fractional digits */
		"2024-05-02T00:07:55.94aZ",
		"2024-00-02T00:00:00Z",
		"2024-13-02T00:00:00Z",
		"2024-05-00T00:00:00Z",
		"2024-05-32T00:00:00Z",
		"2024-04-31T00:00:00Z",
		"2024-06-31T00:00:00Z",
		"2024-02-30T00:00:00Z",
		"2023-02-29T00:00:00Z", /* not a leap year */
		"1900-02-29T00:00:00Z", /* century, not a leap year */
		"2100-02-29T00:00:00Z",
		"2024-05-02T24:00:00Z",
		"2024-05-02T23:60:00Z",
		"2024-05-02T23:59:60Z", /* leap seconds are not accepted */
		"2024-05-02T99:99:99Z",
		"2024-05-02T00:07:55+24:00",
		"2024-05-02T00:07:55+05:60",
		"2024-05-02T00:07:55+0500",
		"2024-05-02T00:07:55+05",
		"2024-05-02T00:07:55+5:00",
		"2024-05-02T00:07:55+05:00Z",
		"2024-05-02T00:07:55 +05:00",
		"2024-05-02T00:07:55UTC",
		"2024-05-02T00:07:55GMT",
		"２０２４-05-02T00:07:55Z",
		"1714608475945",
		"2024-05-02T00:07:55.945Z\n",
	};
	int64_t ms;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = -1;
		if (rating_parse_iso8601_ms(bad[i], &ms))
			fail_msg("accepted \"%s\" as %" PRId64, bad[i], ms);
		assert_int_equal(ms, 0);
	}
	assert_false(rating_parse_iso8601_ms(NULL, &ms));
	assert_false(rating_parse_iso8601_ms("2024-05-02T00:07:55Z", NULL));
}

static void
test_seconds_string(void **state)
{
	static const struct {
		const char *in;
		int64_t ms;
	} good[] = {
		{ "15", 15000 },
		{ "0", 0 },
		{ "126", 126000 },
		{ "1.5", 1500 },
		{ "15.5", 15500 },
		{ "0.0", 0 },
		{ "00015", 15000 },
		{ "15.791", 15791 },
		{ "15.7914", 15791 },
		{ "15.7915", 15792 }, /* nearest ms, half up */
		{ "15.79149999", 15791 },
		{ "0.0005", 1 },
		{ "0.0004", 0 },
		{ "0.9999", 1000 },
		{ "172800", 172800000 },
		{ "172800.001", 172800001 },
		{ "9223372036854775", INT64_C(9223372036854775000) },
	};
	static const char *const bad[] = {
		"",
		"abc",
		"-1",
		"+1",
		"-0",
		" 15",
		"15 ",
		"15\n",
		"1.",
		".5",
		"1.5.5",
		"1..5",
		"1e3",
		"15s",
		"0x10",
		"1,5",
		"NaN",
		"inf",
		"9223372036854776",     /* 1000 times this overflows */
		"9223372036854775.808", /* so does adding the fraction */
		"99999999999999999999999",
	};
	int64_t ms;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = -1;
		if (!rating_parse_seconds_string_ms(good[i].in, &ms))
			fail_msg("rejected \"%s\"", good[i].in);
		if (ms != good[i].ms)
			fail_msg("\"%s\": expected %" PRId64 " ms, got %" PRId64, good[i].in,
				good[i].ms, ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = -1;
		if (rating_parse_seconds_string_ms(bad[i], &ms))
			fail_msg("accepted \"%s\" as %" PRId64, bad[i], ms);
		assert_int_equal(ms, 0);
	}
	assert_false(rating_parse_seconds_string_ms(NULL, &ms));
	assert_false(rating_parse_seconds_string_ms("15", NULL));
}

static void
test_minutes(void **state)
{
	int64_t ms;

	(void)state;
	/* bland/post-call.json and post-call-outbound.json */
	assert_true(rating_minutes_to_ms(0.25, &ms));
	assert_int_equal(ms, 15000);
	assert_true(rating_minutes_to_ms(2.1, &ms)); /* 126000.00000000001 in doubles */
	assert_int_equal(ms, 126000);
	assert_true(rating_minutes_to_ms(0.0, &ms));
	assert_int_equal(ms, 0);
	assert_true(rating_minutes_to_ms(-0.0, &ms));
	assert_int_equal(ms, 0);
	assert_true(rating_minutes_to_ms(0.26318333333333332, &ms)); /* 15791 ms */
	assert_int_equal(ms, 15791);
	assert_true(rating_minutes_to_ms(2880.0, &ms)); /* 48 h */
	assert_int_equal(ms, RATING_MAX_DURATION_MS);
	assert_true(rating_minutes_to_ms(1.0 / 32.0, &ms)); /* exactly 1875 ms */
	assert_int_equal(ms, 1875);

	ms = -1;
	assert_false(rating_minutes_to_ms(-1.0, &ms));
	assert_int_equal(ms, 0);
	assert_false(rating_minutes_to_ms(-1e-9, &ms));
	assert_false(rating_minutes_to_ms(NAN, &ms));
	assert_false(rating_minutes_to_ms(INFINITY, &ms));
	assert_false(rating_minutes_to_ms(-INFINITY, &ms));
	assert_false(rating_minutes_to_ms(1e300, &ms));
	assert_false(rating_minutes_to_ms(1.0, NULL));
}

/*
 * What the schema accepts, rating can bill: the CHECK constraints of agencies in
 * 004_billing_limits.sql are rating_plan_valid's bounds, and the largest plan prices the
 * longest call without overflow.
 */
static void
test_schema_limits_match(void **state)
{
	struct rating_plan top = { RATING_MAX_RATE_MICROS_PER_MIN, RATING_MAX_INCREMENT_S,
		RATING_MAX_INCREMENT_S };
	struct rating_plan p;
	struct rating_result rr;
	char path[1024], want[128], *sql;
	FILE *f;
	long n;

	(void)state;
	snprintf(path, sizeof(path), "%s/daemon/sql/004_billing_limits.sql", CALLROUTED_SOURCE_DIR);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	sql = calloc(1, (size_t)n + 1);
	assert_non_null(sql);
	assert_int_equal(fread(sql, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	snprintf(want, sizeof(want), "CHECK (rate_micros_per_min BETWEEN 0 AND %lld)",
		(long long)RATING_MAX_RATE_MICROS_PER_MIN);
	assert_non_null(strstr(sql, want));
	snprintf(want, sizeof(want), "CHECK (billing_initial_s BETWEEN 1 AND %d)",
		RATING_MAX_INCREMENT_S);
	assert_non_null(strstr(sql, want));
	snprintf(want, sizeof(want), "CHECK (billing_increment_s BETWEEN 1 AND %d)",
		RATING_MAX_INCREMENT_S);
	assert_non_null(strstr(sql, want));
	free(sql);

	/* the corners of what the schema accepts are all billable */
	assert_true(rating_rate_call(true, RATING_MAX_DURATION_MS, &top, &rr));
	assert_int_equal(rr.billed_seconds, 172800);
	assert_int_equal(rr.amount_micros, INT64_C(288000000000));
	p = top;
	p.initial_s = 1;
	p.increment_s = 1;
	assert_true(rating_rate_call(true, 1, &p, &rr));
	assert_int_equal(rr.billed_seconds, 1);
	p.rate_micros_per_min = 0;
	assert_true(rating_rate_call(true, RATING_MAX_DURATION_MS, &p, &rr));
	assert_int_equal(rr.amount_micros, 0);
	/* and just outside is not (the schema refuses those) */
	p = top;
	p.initial_s = RATING_MAX_INCREMENT_S + 1;
	assert_false(rating_plan_valid(&p));
	p = top;
	p.increment_s = 0;
	assert_false(rating_plan_valid(&p));
	assert_false(rating_rate_call(true, RATING_MAX_DURATION_MS + 1, &top, &rr));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_schema_limits_match),
		cmocka_unit_test(test_plan_valid),
		cmocka_unit_test(test_not_connected),
		cmocka_unit_test(test_faq_example),
		cmocka_unit_test(test_amount_edges),
		cmocka_unit_test(test_format_dollars),
		cmocka_unit_test(test_format_dollars_small_buffer),
		cmocka_unit_test(test_iso8601_fixtures),
		cmocka_unit_test(test_iso8601_values),
		cmocka_unit_test(test_iso8601_offsets),
		cmocka_unit_test(test_iso8601_rejected),
		cmocka_unit_test(test_seconds_string),
		cmocka_unit_test(test_minutes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
