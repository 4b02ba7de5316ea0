/* callrouted/e164.h: phone number normalisation to E.164 and its 64-bit integer key. */
#ifndef CALLROUTED_E164_H
#define CALLROUTED_E164_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define E164_MAX_DIGITS 15
#define E164_MIN_DIGITS 7
#define E164_BUFSIZE (E164_MAX_DIGITS + 2) /* '+', digits, NUL */

/*
 * Parse a phone number into its E.164 key: the digits after '+' read as an unsigned integer
 * (country codes never start with 0, so the integer is unique).  Accepted: "+" then 7..15
 * digits, the first not 0; visual separators (space, '-', '.', '(', ')') between digits;
 * "00" in place of the leading "+" (ITU international prefix); a "tel:" prefix.
 * Rejected: national formats without a country code ("(415) 555-0123", "4155550123"),
 * letters, empty, too short or too long.  len is the length of s (no NUL needed).
 */
bool e164_parse(const char *s, size_t len, uint64_t *key) __attribute__((warn_unused_result));

/* Write "+<digits>" for key into buf (at least E164_BUFSIZE bytes); returns length, 0 if invalid.
 */
size_t e164_format(uint64_t key, char *buf, size_t size);

/* s is already what e164_format writes: "+" then 7..15 digits, the first not 0 (the schema's
 * phone_numbers.e164 check, ^\+[1-9][0-9]{6,14}$). */
bool e164_is_canonical(const char *s);

#endif
