/* callrouted/text.h: checks on text from outside, shared by the daemon and the tools. */
#ifndef CALLROUTED_TEXT_H
#define CALLROUTED_TEXT_H

#include <stdbool.h>
#include <string.h>

/* 1..max bytes, no control characters (names, nicknames, tokens). */
static inline bool
text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

#endif
