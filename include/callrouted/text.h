/* callrouted/text.h: checks on text from outside, shared by the daemon and the tools. */
#ifndef CALLROUTED_TEXT_H
#define CALLROUTED_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* A control character (0x00-0x1f, 0x7f): never accepted in outside text, escaped in logs. */
static inline bool
text_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* 1..max bytes, no control characters (names, nicknames, tokens). */
static inline bool
text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (text_is_control((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * The escape of byte c inside a JSON string as jansson's json_dumps writes it ('"', '\\', \b \f
 * \n \r \t, another control byte \u00XX): its length, 0 when c is written as it is.
 */
static inline size_t
text_json_escape_byte(unsigned char c, char e[6])
{
	static const char hex[] = "0123456789ABCDEF";
	static const char short_of
		[0x20] = { ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't' };

	if (c >= 0x20 && c != '"' && c != '\\')
		return 0;
	e[0] = '\\';
	if (c == '"' || c == '\\' || short_of[c]) {
		e[1] = c == '"' || c == '\\' ? (char)c : short_of[c];
		return 2;
	}
	memcpy(e + 1, "u00", 3);
	e[4] = hex[c >> 4];
	e[5] = hex[c & 15];
	return 6;
}

/* The escape of one byte of outside text for a log line (see text_escape); returns its length. */
static inline size_t
text_escape_byte(unsigned char c, char e[4])
{
	static const char hex[] = "0123456789abcdef";

	if (c == '\\' || c == '"') {
		e[0] = '\\';
		e[1] = (char)c;
		return 2;
	}
	if (c == '\n' || c == '\r' || c == '\t') {
		e[0] = '\\';
		e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		return 2;
	}
	if (text_is_control(c)) {
		e[0] = '\\';
		e[1] = 'x';
		e[2] = hex[c >> 4];
		e[3] = hex[c & 15];
		return 4;
	}
	e[0] = (char)c;
	return 1;
}

/*
 * Outside text made safe for one log line: a backslash becomes "\\", a double quote "\"",
 * newline, carriage return and tab "\n", "\r", "\t", any other control character (0x00-0x1f,
 * 0x7f) "\xNN"; other bytes (UTF-8 included) are kept.  NULL becomes "(null)".  Text whose
 * escape does not fit buf is cut after the last whole escape that leaves room for "..." (size
 * 4 or more).  Returns buf ("" if size is 0).  text_escape_n: the first len bytes of s (which
 * may hold NULs: they become "\x00").
 */
static inline const char *
text_escape_n(const char *s, size_t len, char *buf, size_t size)
{
	size_t o = 0, need = 0;
	char e[4];

	if (!buf || size == 0)
		return "";
	if (!s) {
		s = "(null)";
		len = 6;
	}
	for (size_t i = 0; i < len; i++)
		need += text_escape_byte((unsigned char)s[i], e);
	for (size_t i = 0; i < len; i++) {
		size_t n = text_escape_byte((unsigned char)s[i], e);

		if (need >= size && o + n + 3 >= size) {
			if (size >= 4) {
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(buf + o, e, n);
		o += n;
	}
	buf[o] = 0;
	return buf;
}

static inline const char *
text_escape(const char *s, char *buf, size_t size)
{
	return text_escape_n(s, s ? strlen(s) : 0, buf, size);
}

#endif
