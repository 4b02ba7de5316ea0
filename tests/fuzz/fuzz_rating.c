/* fuzz_rating.c: libFuzzer target for the duration parsers and rating_rate_call (properties). */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz_common.h"
#include "callrouted/rating.h"

/*
 * Input: 25 bytes of numbers (flags, duration ms, extra ms, rate, initial, increment), then
 * two '\n'-separated strings: an ISO 8601 timestamp and a seconds string; then 8 bytes of a
 * double (minutes).  Short inputs are zero-padded.
 */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

static uint64_t
fz_u64(const uint8_t **p, size_t *n, size_t w)
{
	uint64_t v = 0;

	for (size_t i = 0; i < w; i++, (*p)++, (*n)--) {
		if (*n == 0)
			break;
		v |= (uint64_t) * *p << (8 * i);
	}
	return v;
}

static bool
fz_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

static int
fz_num(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* A reference for a string rating_parse_iso8601_ms accepted: glibc's timegm on the fields. */
static void
fz_check_iso(const char *s, int64_t ms)
{
	struct tm tm = { 0 };
	size_t len = strlen(s), p = 19;
	int64_t want, frac = 0, off = 0;
	int nf = 0;

	if (len < 20 || !fz_digits(s, 4) || s[4] != '-' || s[7] != '-' || (s[10] | 0x20) != 't' ||
		s[13] != ':' || s[16] != ':')
		fuzz_fail("accepted \"%s\": not of the form YYYY-MM-DDTHH:MM:SS", s);
	tm.tm_year = fz_num(s, 4) - 1900;
	tm.tm_mon = fz_num(s + 5, 2) - 1;
	tm.tm_mday = fz_num(s + 8, 2);
	tm.tm_hour = fz_num(s + 11, 2);
	tm.tm_min = fz_num(s + 14, 2);
	tm.tm_sec = fz_num(s + 17, 2);
	if (s[p] == '.')
		for (p++; s[p] >= '0' && s[p] <= '9'; p++, nf++)
			if (nf < 3)
				frac = frac * 10 + (s[p] - '0');
	for (; nf < 3; nf++)
		frac *= 10;
	if ((s[p] | 0x20) == 'z') {
		if (p + 1 != len)
			fuzz_fail("accepted \"%s\": text after Z", s);
	} else {
		if (p + 6 != len || (s[p] != '+' && s[p] != '-'))
			fuzz_fail("accepted \"%s\": bad offset", s);
		off = ((int64_t)fz_num(s + p + 1, 2) * 3600 + fz_num(s + p + 4, 2) * 60) * 1000;
		if (s[p] == '-')
			off = -off;
	}
	want = (int64_t)timegm(&tm) * 1000 + frac - off;
	/* timegm normalises (Feb 30 -> Mar 2): a parser that accepted one is caught here too */
	if (tm.tm_mday != fz_num(s + 8, 2) || tm.tm_mon != fz_num(s + 5, 2) - 1 ||
		tm.tm_hour != fz_num(s + 11, 2) || tm.tm_sec != fz_num(s + 17, 2))
		fuzz_fail("accepted \"%s\": not a real date", s);
	if (want != ms)
		fuzz_fail("\"%s\" -> %" PRId64 ", timegm says %" PRId64, s, ms, want);
}

static void
fz_check_seconds(const char *s, bool ok, int64_t ms)
{
	const char *dot = strchr(s, '.');
	size_t wl = dot ? (size_t)(dot - s) : strlen(s);
	bool form = fz_digits(s, wl) && (!dot || fz_digits(dot + 1, strlen(dot + 1)));
	int64_t whole = 0;
	bool big = false;

	for (size_t i = 0; form && i < wl; i++)
		if (__builtin_mul_overflow(whole, 10, &whole) ||
			__builtin_add_overflow(whole, s[i] - '0', &whole))
			big = true;
	if (ok != form && !(form && big) && !(form && whole > (INT64_MAX - 1000) / 1000))
		fuzz_fail("seconds \"%s\": %s", s, ok ? "accepted, not of the form" : "refused");
	if (ok && (ms < 0 || (ms / 1000 != whole && ms / 1000 != whole + 1)))
		fuzz_fail("seconds \"%s\" -> %" PRId64 " ms", s, ms);
}

static void
fz_check_rate(bool connected, int64_t d, int64_t extra, const struct rating_plan *p)
{
	struct rating_result a, b;
	bool oka = rating_rate_call(connected, d, p, &a);
	bool okb = rating_rate_call(connected, d + extra, p, &b);
	int64_t s, billed;
	char buf[RATING_DOLLARS_BUFSIZE];

	if (oka != rating_plan_valid(p) && (!connected || (d >= 0 && d <= RATING_MAX_DURATION_MS)))
		fuzz_fail("rating_rate_call(%d, %" PRId64 ") = %d for a plan valid=%d", connected,
			d, oka, rating_plan_valid(p));
	if (!oka) {
		if (a.billed_seconds || a.amount_micros)
			fuzz_fail("a refused rating left a result");
		return;
	}
	if (!connected) {
		if (a.billed_seconds || a.amount_micros)
			fuzz_fail("a call that never connected billed something");
		return;
	}
	/* billed seconds: 0 for 0 ms, else at least the initial block and the duration, less
	 * than one increment above the duration */
	s = d / 1000 + (d % 1000 != 0);
	billed = a.billed_seconds;
	if (d == 0                ? billed != 0 :
		s <= p->initial_s ? billed != p->initial_s :
				    billed < s || billed - s >= p->increment_s ||
					    (billed - p->initial_s) % p->increment_s != 0)
		fuzz_fail("%" PRId64 " ms on %d/%d billed %" PRId64 " s", d, p->initial_s,
			p->increment_s, billed);
	/* amount = ceil(billed * rate / 60), in 128-bit arithmetic here */
	{
		__int128 prod = (__int128)billed * p->rate_micros_per_min;
		__int128 want = prod / 60 + (prod % 60 != 0);

		if (want != a.amount_micros)
			fuzz_fail("%" PRId64 " s at %" PRId64 "/min -> %" PRId64, billed,
				p->rate_micros_per_min, a.amount_micros);
	}
	/* monotone: a longer call never bills less */
	if (okb && extra >= 0 &&
		(b.billed_seconds < a.billed_seconds || b.amount_micros < a.amount_micros))
		fuzz_fail("%" PRId64 " ms bills %" PRId64 "/%" PRId64 ", %" PRId64
			  " ms bills %" PRId64 "/%" PRId64,
			d, a.billed_seconds, a.amount_micros, d + extra, b.billed_seconds,
			b.amount_micros);
	/* the dollars text reads back as the amount */
	if (rating_format_dollars(a.amount_micros, buf, sizeof(buf)) == 0)
		fuzz_fail("rating_format_dollars(%" PRId64 ") failed", a.amount_micros);
	{
		char *dot = strchr(buf, '.');
		int64_t back = strtoll(buf, NULL, 10) * 1000000 + strtoll(dot + 1, NULL, 10);

		if (!dot || strlen(dot + 1) != 6 || back != a.amount_micros)
			fuzz_fail("%" PRId64 " micros formatted \"%s\"", a.amount_micros, buf);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t flags = (uint8_t)fz_u64(&data, &size, 1);
	int64_t d = (int64_t)fz_u64(&data, &size, 8);
	int64_t extra = (int64_t)fz_u64(&data, &size, 4);
	struct rating_plan p;
	const uint8_t *f;
	size_t fl;
	char *iso, *secs;
	int64_t ms;
	bool ok;

	p.rate_micros_per_min = (int64_t)fz_u64(&data, &size, 4);
	p.initial_s = (int32_t)fz_u64(&data, &size, 4);
	p.increment_s = (int32_t)fz_u64(&data, &size, 4);
	if (flags & 1) {
		/* mostly valid plans and durations: the interesting region */
		p.rate_micros_per_min = (int64_t)((uint64_t)p.rate_micros_per_min %
						  (RATING_MAX_RATE_MICROS_PER_MIN + 1));
		p.initial_s = (int32_t)((uint32_t)p.initial_s % RATING_MAX_INCREMENT_S) + 1;
		p.increment_s = (int32_t)((uint32_t)p.increment_s % RATING_MAX_INCREMENT_S) + 1;
		d = (int64_t)((uint64_t)d % (RATING_MAX_DURATION_MS + 1));
		extra = (int64_t)((uint64_t)extra % 100000000);
	}
	if (d > INT64_MAX / 2 || d < INT64_MIN / 2)
		d /= 2;
	fz_check_rate(flags & 2, d, extra, &p);

	fuzz_take(&data, &size, '\n', &f, &fl);
	iso = fuzz_strndup(f, fl);
	fuzz_take(&data, &size, '\n', &f, &fl);
	secs = fuzz_strndup(f, fl);
	if (rating_parse_iso8601_ms(iso, &ms))
		fz_check_iso(iso, ms);
	else if (ms != 0)
		fuzz_fail("a refused timestamp left %" PRId64, ms);
	ok = rating_parse_seconds_string_ms(secs, &ms);
	fz_check_seconds(secs, ok, ms);
	if (size >= 8) {
		double m;

		memcpy(&m, data, 8);
		if (rating_minutes_to_ms(m, &ms) && (ms < 0 || ms > (INT64_C(1) << 53)))
			fuzz_fail("%g minutes -> %" PRId64 " ms", m, ms);
	}
	free(iso);
	free(secs);
	return 0;
}
