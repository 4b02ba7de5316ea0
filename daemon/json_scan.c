/* json_scan.c: the strict, non-allocating reader of routing requests' few fields (json_scan.h). */
#include <stdint.h>
#include <string.h>

#include "json_scan.h"

#define SCAN_MAX_DEPTH 16
#define SCAN_MAX_KEYS 64
#define SCAN_MAX_DIGITS 15 /* always within jansson's json_int_t (long long) */
#define SCAN_PATH_MAX 4
#define SCAN_MAX_FIELDS 16

struct scan_key {
	const unsigned char *s;
	size_t n;
};

struct scan {
	const unsigned char *p, *end;
	struct jscan_field *f;
	size_t nf;
	size_t path_len[SCAN_MAX_FIELDS][SCAN_PATH_MAX]; /* strlen of the fields' keys */
	/* live[d]: the fields whose first d keys are those of the member being read (bit i:
	 * field i), so a value is matched against the fields still possible, not against all */
	unsigned live[SCAN_PATH_MAX + 1];
	struct scan_key keys[SCAN_MAX_KEYS]; /* the keys of the objects open, for duplicates */
	size_t nkeys;
};

static bool scan_value(struct scan *s, int plen, int depth);

static void
scan_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* Some byte of x is zero (exact as "some byte is": a borrow only follows a zero byte). */
static inline uint64_t
scan_zero_byte(uint64_t x)
{
	return (x - UINT64_C(0x0101010101010101)) & ~x & UINT64_C(0x8080808080808080);
}

/* The bytes a string of the subset holds as they are. */
/* clang-format off */
static const unsigned char scan_plain[256] = {
	/* 0x20 - 0x7e but 0x22 '"' and 0x5c '\\' */
	[0x20] = 1, [0x21] = 1, [0x23] = 1, [0x24] = 1, [0x25] = 1, [0x26] = 1, [0x27] = 1,
	[0x28] = 1, [0x29] = 1, [0x2a] = 1, [0x2b] = 1, [0x2c] = 1, [0x2d] = 1, [0x2e] = 1,
	[0x2f] = 1, [0x30] = 1, [0x31] = 1, [0x32] = 1, [0x33] = 1, [0x34] = 1, [0x35] = 1,
	[0x36] = 1, [0x37] = 1, [0x38] = 1, [0x39] = 1, [0x3a] = 1, [0x3b] = 1, [0x3c] = 1,
	[0x3d] = 1, [0x3e] = 1, [0x3f] = 1, [0x40] = 1, [0x41] = 1, [0x42] = 1, [0x43] = 1,
	[0x44] = 1, [0x45] = 1, [0x46] = 1, [0x47] = 1, [0x48] = 1, [0x49] = 1, [0x4a] = 1,
	[0x4b] = 1, [0x4c] = 1, [0x4d] = 1, [0x4e] = 1, [0x4f] = 1, [0x50] = 1, [0x51] = 1,
	[0x52] = 1, [0x53] = 1, [0x54] = 1, [0x55] = 1, [0x56] = 1, [0x57] = 1, [0x58] = 1,
	[0x59] = 1, [0x5a] = 1, [0x5b] = 1, [0x5d] = 1, [0x5e] = 1, [0x5f] = 1, [0x60] = 1,
	[0x61] = 1, [0x62] = 1, [0x63] = 1, [0x64] = 1, [0x65] = 1, [0x66] = 1, [0x67] = 1,
	[0x68] = 1, [0x69] = 1, [0x6a] = 1, [0x6b] = 1, [0x6c] = 1, [0x6d] = 1, [0x6e] = 1,
	[0x6f] = 1, [0x70] = 1, [0x71] = 1, [0x72] = 1, [0x73] = 1, [0x74] = 1, [0x75] = 1,
	[0x76] = 1, [0x77] = 1, [0x78] = 1, [0x79] = 1, [0x7a] = 1, [0x7b] = 1, [0x7c] = 1,
	[0x7d] = 1, [0x7e] = 1,
};
/* clang-format on */

/*
 * At '"': a string of printable ASCII, no escape.  Eight bytes at a time while a word holds
 * none of '"', '\\', a control byte (< 0x20), DEL or a byte of 0x80 and up; the word that does
 * is read byte by byte, by a table.  Routing bodies' strings are short (keys, ids, numbers):
 * callgrind over 2,000 Retell webhooks, 1,498 -> 1,380 instructions per request here; the
 * words count in long values (a Vapi call object's URLs and transcripts).
 */
static bool
scan_string(struct scan *s, struct scan_key *k)
{
	const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
	const unsigned char *b = ++s->p;

	while (s->end - s->p >= 8) {
		uint64_t x;

		memcpy(&x, s->p, 8);
		if ((x & highs) | ((x - 0x20 * ones) & ~x & highs) |
			scan_zero_byte(x ^ ('"' * ones)) | scan_zero_byte(x ^ ('\\' * ones)) |
			scan_zero_byte(x ^ (0x7f * ones)))
			break;
		s->p += 8;
	}
	while (s->p < s->end && scan_plain[*s->p])
		s->p++;
	if (s->p == s->end || *s->p != '"')
		return false;
	k->s = b;
	k->n = (size_t)(s->p - b);
	s->p++;
	return true;
}

/* -?(0|[1-9][0-9]*), at most SCAN_MAX_DIGITS digits; a fraction or exponent is not ours. */
static bool
scan_integer(struct scan *s)
{
	size_t digits = 0;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0') {
		s->p++;
		digits = 1;
	} else {
		while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
			s->p++;
			if (++digits > SCAN_MAX_DIGITS)
				return false;
		}
	}
	if (digits == 0)
		return false;
	return s->p == s->end ||
	       (*s->p != '.' && *s->p != 'e' && *s->p != 'E' && !(*s->p >= '0' && *s->p <= '9'));
}

static bool
scan_literal(struct scan *s, const char *lit, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return false;
	s->p += n;
	return true;
}

/* The fields whose path is the plen keys read (live[plen], no key after) get this value's
 * type (and string). */
static void
scan_mark(struct scan *s, int plen, enum jscan_type type, const struct scan_key *str)
{
	for (unsigned m = s->live[plen]; m; m &= m - 1) {
		struct jscan_field *f = &s->f[__builtin_ctz(m)];

		if (f->path[plen])
			continue;
		f->type = type;
		if (str) {
			f->s = (const char *)str->s;
			f->n = str->n;
		}
	}
}

/* The fields of live[plen] whose key at plen is k: live[plen + 1]. */
static unsigned
scan_descend(const struct scan *s, int plen, const struct scan_key *k)
{
	unsigned out = 0;

	for (unsigned m = s->live[plen]; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctz(m);
		const char *key = s->f[i].path[plen];

		if (key && s->path_len[i][plen] == k->n && memcmp(key, k->s, k->n) == 0)
			out |= 1u << i;
	}
	return out;
}

/* At '{'. */
static bool
scan_object(struct scan *s, int plen, int depth)
{
	size_t base = s->nkeys;

	s->p++;
	scan_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return true;
	}
	for (;;) {
		struct scan_key k;

		if (s->p >= s->end || *s->p != '"' || !scan_string(s, &k))
			return false;
		for (size_t i = base; i < s->nkeys; i++)
			if (s->keys[i].n == k.n && memcmp(s->keys[i].s, k.s, k.n) == 0)
				return false; /* jansson refuses a repeated key */
		if (s->nkeys == SCAN_MAX_KEYS)
			return false;
		s->keys[s->nkeys++] = k;
		scan_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return false;
		s->p++;
		scan_ws(s);
		/* a member no field can be in (or beyond the longest path) is read unnamed */
		int child = -1;

		if (plen >= 0 && plen < SCAN_PATH_MAX && s->live[plen] &&
			(s->live[plen + 1] = scan_descend(s, plen, &k)) != 0)
			child = plen + 1;
		if (!scan_value(s, child, depth + 1))
			return false;
		scan_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == '}') {
			s->p++;
			s->nkeys = base;
			return true;
		}
		if (*s->p != ',')
			return false;
		s->p++;
		scan_ws(s);
	}
}

/* At '['. */
static bool
scan_array(struct scan *s, int depth)
{
	s->p++;
	scan_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return true;
	}
	for (;;) {
		if (!scan_value(s, -1, depth + 1))
			return false;
		scan_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == ']') {
			s->p++;
			return true;
		}
		if (*s->p != ',')
			return false;
		s->p++;
		scan_ws(s);
	}
}

/* A value at plen keys from the top (live[plen]: the fields it can be; -1: none). */
static bool
scan_value(struct scan *s, int plen, int depth)
{
	struct scan_key str;
	bool ok;

	if (depth > SCAN_MAX_DEPTH || s->p >= s->end)
		return false;
	switch (*s->p) {
	case '"':
		if (!scan_string(s, &str))
			return false;
		if (plen > 0)
			scan_mark(s, plen, JSCAN_STRING, &str);
		return true;
	case '{':
		if (plen > 0)
			scan_mark(s, plen, JSCAN_OBJECT, NULL);
		return scan_object(s, plen, depth);
	case '[':
		if (plen > 0)
			scan_mark(s, plen, JSCAN_OTHER, NULL);
		return scan_array(s, depth);
	}
	/* a scalar: its text is the field's */
	str.s = s->p;
	switch (*s->p) {
	case 't':
		ok = scan_literal(s, "true", 4);
		break;
	case 'f':
		ok = scan_literal(s, "false", 5);
		break;
	case 'n':
		ok = scan_literal(s, "null", 4);
		break;
	default:
		ok = scan_integer(s);
	}
	if (ok && plen > 0) {
		str.n = (size_t)(s->p - str.s);
		scan_mark(s, plen, JSCAN_OTHER, &str);
	}
	return ok;
}

bool
json_scan(const char *body, size_t len, struct jscan_field *fields, size_t n_fields)
{
	struct scan s = { .p = (const unsigned char *)body,
		.end = (const unsigned char *)body + len,
		.f = fields,
		.nf = n_fields };

	s.live[0] = n_fields <= SCAN_MAX_FIELDS ? (1u << n_fields) - 1 : 0;
	for (size_t i = 0; i < n_fields; i++) {
		fields[i].type = JSCAN_ABSENT;
		fields[i].s = NULL;
		fields[i].n = 0;
		for (size_t j = 0; j < SCAN_PATH_MAX && i < SCAN_MAX_FIELDS; j++)
			s.path_len[i][j] = fields[i].path[j] ? strlen(fields[i].path[j]) : 0;
	}
	if (!body || n_fields > SCAN_MAX_FIELDS)
		return false;
	scan_ws(&s);
	if (s.p >= s.end || *s.p != '{' || !scan_value(&s, 0, 1))
		return false;
	scan_ws(&s);
	return s.p == s.end;
}

bool
jscan_is(const struct jscan_field *f, const char *lit)
{
	return f->type == JSCAN_STRING && f->n == strlen(lit) && memcmp(f->s, lit, f->n) == 0;
}

bool
jscan_cstr(const struct jscan_field *f, char *buf, size_t size, const char **out)
{
	*out = NULL;
	if (f->type != JSCAN_STRING)
		return true;
	if (f->n >= size)
		return false;
	memcpy(buf, f->s, f->n);
	buf[f->n] = 0;
	*out = buf;
	return true;
}

bool
jscan_is_null(const struct jscan_field *f)
{
	return f->type == JSCAN_OTHER && f->s && f->n == 4 && memcmp(f->s, "null", 4) == 0;
}

bool
jscan_int(const struct jscan_field *f, int64_t *v)
{
	const char *p = f->s, *end;
	bool neg = false;
	int64_t x = 0;

	/* an absent field has no text: no pointer arithmetic on NULL */
	if (f->type != JSCAN_OTHER || !p || f->n == 0)
		return false;
	end = p + f->n;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p == end || *p < '0' || *p > '9')
		return false;
	/* the scanner took at most 15 digits: no overflow */
	for (; p < end; p++)
		x = x * 10 + (*p - '0');
	*v = neg ? -x : x;
	return true;
}
