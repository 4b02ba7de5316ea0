/* common/rating.c: call duration, billing increments and rate to integer micro-dollars (pure). */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "callrouted/rating.h"

#define MS_PER_S 1000
#define MS_PER_DAY INT64_C(86400000)
#define MAX_EXACT_DOUBLE_MS 9007199254740992.0 /* 2^53 */

bool
rating_plan_valid(const struct rating_plan *p)
{
	if (p == NULL)
		return false;
	if (p->rate_micros_per_min < 0 || p->rate_micros_per_min > RATING_MAX_RATE_MICROS_PER_MIN)
		return false;
	if (p->initial_s < 1 || p->initial_s > RATING_MAX_INCREMENT_S)
		return false;
	if (p->increment_s < 1 || p->increment_s > RATING_MAX_INCREMENT_S)
		return false;
	return true;
}

bool
rating_billed_seconds(int64_t duration_ms, const struct rating_plan *p, int64_t *out)
{
	int64_t s, steps;

	if (out == NULL)
		return false;
	*out = 0;
	if (!rating_plan_valid(p) || duration_ms < 0 || duration_ms > RATING_MAX_DURATION_MS)
		return false;
	if (duration_ms == 0)
		return true;

	/* Bounded above, so none of this can overflow: s <= 172800, the result <= 176400. */
	s = duration_ms / MS_PER_S + (duration_ms % MS_PER_S != 0);
	if (s <= p->initial_s) {
		*out = p->initial_s;
		return true;
	}
	steps = (s - p->initial_s + p->increment_s - 1) / p->increment_s;
	*out = p->initial_s + steps * p->increment_s;
	return true;
}

bool
rating_amount_micros(int64_t billed_seconds, int64_t rate_micros_per_min, int64_t *out)
{
	int64_t product;

	if (out == NULL)
		return false;
	*out = 0;
	if (billed_seconds < 0 || rate_micros_per_min < 0 ||
		rate_micros_per_min > RATING_MAX_RATE_MICROS_PER_MIN)
		return false;
	if (__builtin_mul_overflow(billed_seconds, rate_micros_per_min, &product))
		return false;
	/* ceil(product / 60) for product >= 0, without product + 59 overflowing. */
	*out = product / 60 + (product % 60 != 0);
	return true;
}

bool
rating_rate_call(bool connected, int64_t duration_ms, const struct rating_plan *p,
	struct rating_result *out)
{
	int64_t billed, amount;

	if (out == NULL)
		return false;
	out->billed_seconds = 0;
	out->amount_micros = 0;
	if (!rating_plan_valid(p))
		return false;
	if (!connected)
		return true;
	if (!rating_billed_seconds(duration_ms, p, &billed))
		return false;
	if (!rating_amount_micros(billed, p->rate_micros_per_min, &amount))
		return false;
	out->billed_seconds = billed;
	out->amount_micros = amount;
	return true;
}

size_t
rating_format_dollars(int64_t micros, char *buf, size_t size)
{
	char rev[RATING_DOLLARS_BUFSIZE];
	uint64_t mag;
	size_t n = 0, len = 0;
	bool negative = micros < 0;

	if (buf == NULL || size == 0)
		return 0;
	buf[0] = '\0';

	/* The magnitude in unsigned arithmetic: -INT64_MIN does not fit an int64_t. */
	mag = negative ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;

	/* Six decimals, the point, then at least one integer digit, least significant first. */
	for (int i = 0; i < 6; i++) {
		rev[n++] = (char)('0' + mag % 10);
		mag /= 10;
	}
	rev[n++] = '.';
	do {
		rev[n++] = (char)('0' + mag % 10);
		mag /= 10;
	} while (mag > 0);
	if (negative)
		rev[n++] = '-';

	if (size < n + 1)
		return 0;
	while (n > 0)
		buf[len++] = rev[--n];
	buf[len] = '\0';
	return len;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Exactly n digits at *s into *v; advances *s. */
static bool
take_digits(const char **s, int n, int *v)
{
	int x = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit((*s)[i]))
			return false;
		x = x * 10 + ((*s)[i] - '0');
	}
	*s += n;
	*v = x;
	return true;
}

static bool
take_char(const char **s, char c)
{
	if (**s != c)
		return false;
	(*s)++;
	return true;
}

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil):
 * shift the year to start in March so the leap day is the last day of the year, count whole
 * 400-year eras (146097 days each), then the day within the era.
 */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;                                   /* [0, 399] */
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
	return era * 146097 + doe - 719468;
}

bool
rating_parse_iso8601_ms(const char *s, int64_t *ms)
{
	int year, mon, day, hour, min, sec, oh = 0, om = 0, frac = 0, sign = 0;
	int64_t t;

	if (ms == NULL)
		return false;
	*ms = 0;
	if (s == NULL)
		return false;

	if (!take_digits(&s, 4, &year) || !take_char(&s, '-') || !take_digits(&s, 2, &mon) ||
		!take_char(&s, '-') || !take_digits(&s, 2, &day))
		return false;
	if (*s != 'T' && *s != 't')
		return false;
	s++;
	if (!take_digits(&s, 2, &hour) || !take_char(&s, ':') || !take_digits(&s, 2, &min) ||
		!take_char(&s, ':') || !take_digits(&s, 2, &sec))
		return false;

	/* Fraction: 1..9 digits; the first three make the milliseconds, the rest are dropped. */
	if (*s == '.') {
		int n = 0;

		s++;
		while (is_digit(*s)) {
			if (++n > 9)
				return false;
			if (n <= 3)
				frac = frac * 10 + (*s - '0');
			s++;
		}
		if (n == 0)
			return false;
		for (; n < 3; n++)
			frac *= 10;
	}

	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s == '+' ? 1 : -1;
		s++;
		if (!take_digits(&s, 2, &oh) || !take_char(&s, ':') || !take_digits(&s, 2, &om))
			return false;
		if (oh > 23 || om > 59)
			return false;
	} else {
		return false;
	}
	if (*s != '\0')
		return false;

	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
		return false;
	if (hour > 23 || min > 59 || sec > 59)
		return false;

	/* Local time minus its offset is UTC; years 0000..9999 keep this far from overflow. */
	t = days_from_civil(year, mon, day) * MS_PER_DAY;
	t += ((int64_t)hour * 3600 + min * 60 + sec) * MS_PER_S + frac;
	t -= (int64_t)sign * ((int64_t)oh * 3600 + om * 60) * MS_PER_S;
	*ms = t;
	return true;
}

bool
rating_parse_seconds_string_ms(const char *s, int64_t *ms)
{
	int64_t whole = 0, frac = 0;
	int n = 0;

	if (ms == NULL)
		return false;
	*ms = 0;
	if (s == NULL || !is_digit(*s))
		return false;

	for (; is_digit(*s); s++) {
		if (__builtin_mul_overflow(whole, 10, &whole) ||
			__builtin_add_overflow(whole, *s - '0', &whole))
			return false;
	}
	/* Fraction in tenths of a millisecond (four digits kept), then rounded half up. */
	if (*s == '.') {
		s++;
		if (!is_digit(*s))
			return false;
		for (; is_digit(*s); s++) {
			if (n < 4) {
				frac = frac * 10 + (*s - '0');
				n++;
			}
		}
		for (; n < 4; n++)
			frac *= 10;
	}
	if (*s != '\0')
		return false;

	if (__builtin_mul_overflow(whole, MS_PER_S, &whole) ||
		__builtin_add_overflow(whole, (frac + 5) / 10, &whole))
		return false;
	*ms = whole;
	return true;
}

bool
rating_minutes_to_ms(double minutes, int64_t *ms)
{
	double v;

	if (ms == NULL)
		return false;
	*ms = 0;
	/* NaN fails every comparison, so it is rejected here too. */
	if (!(minutes >= 0.0))
		return false;
	v = minutes * 60000.0;
	if (!(v <= MAX_EXACT_DOUBLE_MS))
		return false;
	*ms = (int64_t)llround(v);
	return true;
}
