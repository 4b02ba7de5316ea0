/* common/e164.c: phone number normalisation to E.164 and its 64-bit integer key (pure). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "callrouted/e164.h"

#define E164_MIN_KEY UINT64_C(1000000)         /* smallest 7-digit number */
#define E164_MAX_KEY UINT64_C(999999999999999) /* largest 15-digit number */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_separator(char c)
{
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')';
}

bool
e164_parse(const char *s, size_t len, uint64_t *key)
{
	size_t i = 0;
	uint64_t v = 0;
	unsigned int digits = 0;
	bool separator = false;

	if (s == NULL || key == NULL)
		return false;

	/* RFC 3966 scheme names are case-insensitive. */
	if (len >= 4 && strncasecmp(s, "tel:", 4) == 0)
		i = 4;

	/* The international prefix: '+', or the ITU "00". */
	if (i < len && s[i] == '+')
		i++;
	else if (len - i >= 2 && s[i] == '0' && s[i + 1] == '0')
		i += 2;
	else
		return false;

	/* The country code comes at once and never starts with 0. */
	if (i >= len || !is_digit(s[i]) || s[i] == '0')
		return false;

	for (; i < len; i++) {
		char c = s[i];

		if (is_digit(c)) {
			if (++digits > E164_MAX_DIGITS)
				return false;
			v = v * 10 + (uint64_t)(c - '0');
			separator = false;
		} else if (is_separator(c)) {
			separator = true;
		} else {
			return false;
		}
	}
	/* Separators only between digits: none may trail. */
	if (separator || digits < E164_MIN_DIGITS)
		return false;

	*key = v;
	return true;
}

size_t
e164_format(uint64_t key, char *buf, size_t size)
{
	char digits[E164_MAX_DIGITS];
	size_t n = 0;

	if (buf == NULL || size == 0)
		return 0;
	buf[0] = '\0';
	if (key < E164_MIN_KEY || key > E164_MAX_KEY)
		return 0;

	while (key > 0) {
		digits[n++] = (char)('0' + key % 10);
		key /= 10;
	}
	if (size < n + 2)
		return 0;

	buf[0] = '+';
	for (size_t i = 0; i < n; i++)
		buf[1 + i] = digits[n - 1 - i];
	buf[n + 1] = '\0';
	return n + 1;
}

bool
e164_is_canonical(const char *s)
{
	char buf[E164_BUFSIZE];
	uint64_t key;

	return s != NULL && s[0] == '+' && e164_parse(s, strlen(s), &key) &&
	       e164_format(key, buf, sizeof(buf)) > 0 && strcmp(buf, s) == 0;
}
