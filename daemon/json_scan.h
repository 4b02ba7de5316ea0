/* json_scan.h: a strict, non-allocating reader of the few fields a routing request needs. */
#ifndef CALLROUTED_JSON_SCAN_H
#define CALLROUTED_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jscan_type {
	JSCAN_ABSENT = 0,
	JSCAN_STRING,
	JSCAN_OBJECT,
	JSCAN_OTHER, /* a number, true, false, null or an array */
};

/* A field asked for: its path of keys from the top object (1 to 4 keys, NULL-terminated). */
struct jscan_field {
	const char *path[5];
	enum jscan_type type;
	/* JSCAN_STRING: the string's bytes in the body (no escapes in them); JSCAN_OTHER: the
	 * text of a number, true, false or null (NULL for an array) */
	const char *s;
	size_t n;
};

/*
 * Reads body whole and fills each field (absent ones JSCAN_ABSENT).  It knows only a subset of
 * JSON, one that jansson (json_loadb with JSON_REJECT_DUPLICATES) reads the same way: a top
 * object; strings of printable ASCII without escapes; integers of at most 15 digits; true,
 * false, null; arrays; at most 16 levels; at most 64 keys open at once, none repeated in its
 * object.  At most 16 fields.  False on anything else, valid JSON or not: then the caller
 * parses the body with jansson, which decides (so every body jansson refuses is still refused
 * the same way).
 */
bool json_scan(const char *body, size_t len, struct jscan_field *fields, size_t n_fields);

/* True if f is the string lit. */
bool jscan_is(const struct jscan_field *f, const char *lit);

/* A scanned string as a C string in buf (*out NULL if the field is not a string); false if it
 * does not fit in size bytes with its NUL. */
bool jscan_cstr(const struct jscan_field *f, char *buf, size_t size, const char **out);

/* True if f is null. */
bool jscan_is_null(const struct jscan_field *f);

/* True if f is an integer (the scanner's: at most 15 digits), in *v. */
bool jscan_int(const struct jscan_field *f, int64_t *v);

#endif
