/* tzif.h: time-zone offsets from the tzdata TZif files, precomputed for a window of time. */
#ifndef CALLROUTED_TZIF_H
#define CALLROUTED_TZIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TZIF_DIR "/usr/share/zoneinfo"
#define TZIF_MAX_TRANSITIONS 512

/* From at (UTC seconds) on, local time = UTC + off seconds. */
struct tz_transition {
	int64_t at;
	int32_t off;
};

/* A valid zone name: what PostgreSQL's names look like ("America/New_York", "UTC", "Etc/GMT+5");
 * no "..", no leading '/', 1..64 characters of [A-Za-z0-9/_+-]. */
bool tzif_name_valid(const char *name);

/*
 * Parse TZif data (RFC 8536, version 1 to 4; the 64-bit part of version 2 and later): the
 * offset in force at from into *off_from, and the transitions in (from, to] into out (at most
 * max; *n their count).  Past the file's last transition the last offset stays (Debian's tzdata
 * is "fat": transitions are listed up to 2037).  false: not TZif, or truncated.
 */
bool tzif_parse(const unsigned char *data, size_t len, int64_t from, int64_t to, int32_t *off_from,
	struct tz_transition *out, size_t max, size_t *n);

/* tzif_parse of TZIF_DIR/name ("UTC" and "Etc/UTC" need no file). Not for the worker path. */
bool tzif_load(const char *name, int64_t from, int64_t to, int32_t *off_from,
	struct tz_transition *out, size_t max, size_t *n);

/* Civil date of a day number (days since 1970-01-01), and back (H. Hinnant's algorithms). */
void tzif_civil(int64_t days, int32_t *y, int32_t *m, int32_t *d);
int64_t tzif_days(int32_t y, int32_t m, int32_t d);

#endif
