/* tzif.c: the TZif parser (RFC 8536) and civil-date arithmetic for the routing policies. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tzif.h"

bool
tzif_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 64 || name[0] == '/' || strstr(name, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			    c == '/' || c == '_' || c == '+' || c == '-'))
			return false;
	}
	return true;
}

static uint32_t
tzif_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
tzif_be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)tzif_be32(p) << 32 | tzif_be32(p + 4));
}

struct tzif_hdr {
	uint32_t isut, isstd, leap, time, type, chr;
};

static bool
tzif_header(const unsigned char *p, size_t len, struct tzif_hdr *h)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return false;
	h->isut = tzif_be32(p + 20);
	h->isstd = tzif_be32(p + 24);
	h->leap = tzif_be32(p + 28);
	h->time = tzif_be32(p + 32);
	h->type = tzif_be32(p + 36);
	h->chr = tzif_be32(p + 40);
	return h->type >= 1 && h->type <= 256 && h->time <= 100000 && h->leap <= 100000 &&
	       h->chr <= 100000 && h->isut <= h->type && h->isstd <= h->type;
}

static size_t
tzif_body_len(const struct tzif_hdr *h, size_t tsz)
{
	return (size_t)h->time * tsz + h->time + (size_t)h->type * 6 + h->chr +
	       (size_t)h->leap * (tsz + 4) + h->isstd + h->isut;
}

bool
tzif_parse(const unsigned char *data, size_t len, int64_t from, int64_t to, int32_t *off_from,
	struct tz_transition *out, size_t max, size_t *n)
{
	struct tzif_hdr h;
	const unsigned char *p = data, *times, *idx, *types;
	size_t tsz = 4, body;

	*n = 0;
	if (!tzif_header(p, len, &h))
		return false;
	body = tzif_body_len(&h, 4);
	if (len < 44 + body)
		return false;
	if (data[4] >= '2') {
		/* skip the 32-bit part: the 64-bit one follows with its own header */
		p = data + 44 + body;
		len -= 44 + body;
		if (!tzif_header(p, len, &h))
			return false;
		tsz = 8;
		body = tzif_body_len(&h, 8);
		if (len < 44 + body)
			return false;
	}
	times = p + 44;
	idx = times + (size_t)h.time * tsz;
	types = idx + h.time;
	for (uint32_t i = 0; i < h.time; i++)
		if (idx[i] >= h.type)
			return false;
	/* before the first transition: local time type 0 (RFC 8536 3.2) */
	*off_from = (int32_t)tzif_be32(types);
	for (uint32_t i = 0; i < h.time; i++) {
		int64_t at = tsz == 8 ? tzif_be64(times + (size_t)i * 8) :
					(int64_t)(int32_t)tzif_be32(times + (size_t)i * 4);
		int32_t off = (int32_t)tzif_be32(types + (size_t)idx[i] * 6);

		if (at <= from) {
			*off_from = off;
		} else if (at <= to) {
			if (off != (*n ? out[*n - 1].off : *off_from)) {
				if (*n == max)
					return false;
				out[*n].at = at;
				out[*n].off = off;
				(*n)++;
			}
		}
	}
	return true;
}

bool
tzif_load(const char *name, int64_t from, int64_t to, int32_t *off_from, struct tz_transition *out,
	size_t max, size_t *n)
{
	char path[128];
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd;
	bool ok;

	*n = 0;
	*off_from = 0;
	if (!tzif_name_valid(name))
		return false;
	if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
		return true;
	snprintf(path, sizeof(path), "%s/%s", TZIF_DIR, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	for (;;) {
		if (len == cap) {
			unsigned char *p;

			cap = cap ? cap * 2 : 8192;
			if (cap > (1u << 20) || !(p = realloc(buf, cap))) {
				free(buf);
				close(fd);
				return false;
			}
			buf = p;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			free(buf);
			close(fd);
			return false;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	ok = tzif_parse(buf, len, from, to, off_from, out, max, n);
	free(buf);
	return ok;
}

void
tzif_civil(int64_t z, int32_t *y, int32_t *m, int32_t *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int32_t)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int32_t)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int32_t)(yoe + era * 400 + (*m <= 2));
}

int64_t
tzif_days(int32_t y, int32_t m, int32_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}
