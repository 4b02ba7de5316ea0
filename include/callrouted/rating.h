/* callrouted/rating.h: call duration, billing increments and rate to integer micro-dollars. */
#ifndef CALLROUTED_RATING_H
#define CALLROUTED_RATING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Billing (the product's rule: a platform rate per agency, default $0.15/min, on the call's
 * duration, inbound and outbound alike; partial minutes round up; calls that never connect
 * bill nothing).  Money is integer micro-dollars, never floating point.
 * A plan is a rate per minute plus billing increments "initial/increment" in seconds:
 *
 *   60/60  the default: per started minute, as the product's billing FAQ says (partial minutes
 *          round up; a 61 s call bills 120 s)
 *   1/1    per-second billing
 *   60/6   common in telecom: the first minute whole, then 6 s steps (a 61 s call bills 66 s)
 *
 * billed seconds: 0 ms -> 0; else s = ceil(ms / 1000); s <= initial -> initial;
 *                 else initial + ceil((s - initial) / increment) * increment
 * amount:         ceil(billed_seconds * rate_micros_per_min / 60), integer only
 *
 * Example: a 5-minute call at the default $0.15/min (150000 micros) on 60/60 bills 300 s and
 * costs 750000 micros ("0.750000").  A call that never connected bills nothing.
 */

#define RATING_MAX_DURATION_MS (48LL * 3600 * 1000) /* longer calls are rejected, not capped */
#define RATING_MAX_RATE_MICROS_PER_MIN 100000000LL  /* $100/min */
#define RATING_MAX_INCREMENT_S 3600                 /* bound of initial_s and increment_s */
#define RATING_DEFAULT_RATE_MICROS_PER_MIN 150000LL /* $0.15/min */
#define RATING_DEFAULT_INITIAL_S 60
#define RATING_DEFAULT_INCREMENT_S 60

/* "-9223372036854.775808" and its NUL: enough for any int64_t. */
#define RATING_DOLLARS_BUFSIZE 22

struct rating_plan {
	int64_t rate_micros_per_min;
	int32_t initial_s;
	int32_t increment_s;
};

struct rating_result {
	int64_t billed_seconds;
	int64_t amount_micros;
};

/* Valid: rate 0..RATING_MAX_RATE_MICROS_PER_MIN, initial_s 1..3600, increment_s 1..3600. */
bool rating_plan_valid(const struct rating_plan *p);

/*
 * Billed seconds for a connected call of duration_ms (formula above).  Returns false (and
 * *out 0) for a negative duration, one above RATING_MAX_DURATION_MS, or an invalid plan.
 * Only the plan's increments matter here, but the whole plan must be valid.
 */
bool rating_billed_seconds(int64_t duration_ms, const struct rating_plan *p, int64_t *out)
	__attribute__((warn_unused_result));

/*
 * amount = ceil(billed_seconds * rate / 60).  Returns false (and *out 0) for negative
 * billed_seconds, a rate outside 0..RATING_MAX_RATE_MICROS_PER_MIN, or overflow.
 */
bool rating_amount_micros(int64_t billed_seconds, int64_t rate_micros_per_min, int64_t *out)
	__attribute__((warn_unused_result));

/*
 * Rate a call: billed seconds and amount.  connected=false -> billed 0 and amount 0 whatever
 * duration_ms says (a never-connected call bills nothing), but the plan must still be valid.
 * On false *out is zeroed.
 */
bool rating_rate_call(bool connected, int64_t duration_ms, const struct rating_plan *p,
	struct rating_result *out) __attribute__((warn_unused_result));

/*
 * Format micro-dollars as exact decimal dollars with six decimals: 750000 -> "0.750000",
 * -1 -> "-0.000001", 0 -> "0.000000".  Returns the length written; 0 (and buf "" when size > 0)
 * if buf is NULL or smaller than the text and its NUL.  RATING_DOLLARS_BUFSIZE always suffices.
 */
size_t rating_format_dollars(int64_t micros, char *buf, size_t size);

/*
 * Provider fields to milliseconds (README "Usage ledger", the duration per provider: Retell
 * duration_ms, Vapi endedAt - startedAt as ISO 8601, Bland corrected_duration in seconds or
 * call_length in minutes).
 *
 * rating_parse_iso8601_ms: an ISO 8601 / RFC 3339 UTC timestamp as Vapi and Bland send it,
 * "YYYY-MM-DDTHH:MM:SS[.f]" then 'Z' or "+hh:mm" / "-hh:mm", with 0..9 fractional digits
 * (a '.' needs at least one; digits beyond milliseconds are truncated), to ms since the Unix
 * epoch.  Lower-case 't' and 'z' are accepted (RFC 3339).  Rejected: anything else around it,
 * out-of-range fields (month 13, Feb 30 outside leap years, hour 24, second 60 (no leap
 * seconds), offset hour above 23), missing parts.  Independent of the process's TZ.
 */
bool rating_parse_iso8601_ms(const char *s, int64_t *ms) __attribute__((warn_unused_result));

/*
 * Bland's corrected_duration, seconds as a decimal string ("15", "15.5", "0") to ms, rounded to
 * the nearest ms (half up).  Digits only, an optional '.' with digits on both sides; no sign,
 * no spaces, not empty; false on overflow.
 */
bool rating_parse_seconds_string_ms(const char *s, int64_t *ms) __attribute__((warn_unused_result));

/*
 * Bland's call_length, minutes as a JSON number, to ms = llround(minutes * 60000).
 * Rejects NaN, infinities, negatives and values above 2^53 ms (where doubles stop being exact).
 */
bool rating_minutes_to_ms(double minutes, int64_t *ms) __attribute__((warn_unused_result));

#endif
