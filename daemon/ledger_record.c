/* ledger_record.c: the journal record as text: written without a tree, read into columns. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "callrouted/text.h"
#include "ledger_record.h"

const char *const ledger_col_keys[LEDGER_COLS] = {
	"p",
	"id",
	"k",
	"d",
	"num",
	"from",
	"to",
	"pa",
	"st",
	"en",
	"dur",
	"c",
	"r",
	"why",
	"ag",
	"cl",
	"a",
	"n",
	"mm",
	"rate",
	"bs",
	"amt",
	"at",
	"q",
};

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                     */

static void
lrec_put(struct lrec_out *o, const char *s, size_t n)
{
	if (o->len < o->cap)
		memcpy(o->p + o->len, s, o->len + n <= o->cap ? n : o->cap - o->len);
	o->len += n;
}

static void
lrec_key(struct lrec_out *o, const char *key)
{
	size_t n = strlen(key);

	if (o->len > 1)
		lrec_put(o, ",", 1);
	lrec_put(o, "\"", 1);
	lrec_put(o, key, n);
	lrec_put(o, "\":", 2);
}

void
lrec_begin(struct lrec_out *o, char *buf, size_t cap)
{
	o->p = buf;
	o->cap = cap;
	o->len = 0;
	lrec_put(o, "{", 1);
}

/* Valid UTF-8 as jansson takes it (no overlong forms, no surrogates, at most U+10FFFF). */
static bool
lrec_utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], need, cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i - 1 < need)
			return false;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
			(cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

void
lrec_strn(struct lrec_out *o, const char *key, const char *v, size_t n)
{
	const unsigned char *s = (const unsigned char *)v, *run;

	lrec_key(o, key);
	if (!v || !lrec_utf8_ok(s, n)) {
		lrec_put(o, "null", 4);
		return;
	}
	lrec_put(o, "\"", 1);
	run = s;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		char e[6];
		size_t en = text_json_escape_byte(c, e);

		if (en == 0)
			continue;
		lrec_put(o, (const char *)run, (size_t)(s + i - run));
		run = s + i + 1;
		lrec_put(o, e, en);
	}
	lrec_put(o, (const char *)run, (size_t)(s + n - run));
	lrec_put(o, "\"", 1);
}

void
lrec_str(struct lrec_out *o, const char *key, const char *v)
{
	lrec_strn(o, key, v, v ? strlen(v) : 0);
}

void
lrec_int(struct lrec_out *o, const char *key, int64_t v)
{
	char buf[24], *p = buf + sizeof(buf);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	lrec_key(o, key);
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	lrec_put(o, p, (size_t)(buf + sizeof(buf) - p));
}

void
lrec_i64(struct lrec_out *o, const char *key, int64_t v)
{
	if (v >= 0) {
		lrec_int(o, key, v);
		return;
	}
	lrec_key(o, key);
	lrec_put(o, "null", 4);
}

void
lrec_bool(struct lrec_out *o, const char *key, bool v)
{
	lrec_key(o, key);
	if (v)
		lrec_put(o, "true", 4);
	else
		lrec_put(o, "false", 5);
}

size_t
lrec_end(struct lrec_out *o)
{
	lrec_put(o, "}", 1);
	return o->len;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                     */

enum lrec_type { LT_ABSENT = 0, LT_NULL, LT_STR, LT_INT, LT_TRUE, LT_FALSE };

struct lrec_span {
	const char *s; /* LT_STR: between the quotes; LT_INT: the digits */
	size_t n;
	unsigned char type;
	bool esc; /* LT_STR with backslash escapes */
};

void
lrec_cols_reset(struct lrec_cols *c)
{
	for (int i = 0; i < LEDGER_COLS; i++)
		c->col[i].len = 0;
	c->n = 0;
	c->failed = false;
}

void
lrec_cols_free(struct lrec_cols *c)
{
	for (int i = 0; i < LEDGER_COLS; i++) {
		free(c->col[i].p);
		c->col[i].p = NULL;
		c->col[i].len = c->col[i].cap = 0;
	}
	c->n = 0;
}

/* Room for more bytes in a column (and its closing "}" and NUL). */
static bool
lrec_room(struct lrec_cols *c, struct lrec_col *col, size_t more)
{
	size_t need = col->len + more + 2, cap;
	char *p;

	if (need <= col->cap)
		return true;
	cap = col->cap ? col->cap : 1024;
	while (cap < need)
		cap *= 2;
	p = realloc(col->p, cap);
	if (!p) {
		c->failed = true;
		return false;
	}
	col->p = p;
	col->cap = cap;
	return true;
}

/* The element's separator: "{" before the batch's first row, "," after. */
static void
lrec_sep(struct lrec_cols *c, struct lrec_col *col)
{
	col->p[col->len++] = c->n == 0 ? '{' : ',';
}

static bool
lrec_add_raw(struct lrec_cols *c, int i, const char *s, size_t n)
{
	struct lrec_col *col = &c->col[i];

	if (!lrec_room(c, col, n + 1))
		return false;
	lrec_sep(c, col);
	memcpy(col->p + col->len, s, n);
	col->len += n;
	return true;
}

/* A text element: quoted, its " and \ escaped (array_in's rules); a JSON string's escapes
 * decoded first when json is set (the span was checked: only \" \\ \/ \b \f \n \r \t). */
static bool
lrec_add_text(struct lrec_cols *c, int i, const char *s, size_t n, bool json)
{
	struct lrec_col *col = &c->col[i];
	char *w;

	if (!lrec_room(c, col, 2 * n + 3))
		return false;
	lrec_sep(c, col);
	w = col->p + col->len;
	*w++ = '"';
	for (size_t k = 0; k < n; k++) {
		char ch = s[k];

		if (json && ch == '\\') {
			switch (s[++k]) {
			case 'b':
				ch = '\b';
				break;
			case 'f':
				ch = '\f';
				break;
			case 'n':
				ch = '\n';
				break;
			case 'r':
				ch = '\r';
				break;
			case 't':
				ch = '\t';
				break;
			default: /* " \ / */
				ch = s[k];
			}
		}
		if (ch == '"' || ch == '\\')
			*w++ = '\\';
		*w++ = ch;
	}
	*w++ = '"';
	col->len = (size_t)(w - col->p);
	return true;
}

static const char *
lrec_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int
lrec_key_index(const char *k, size_t n, int guess)
{
	if (guess < LEDGER_COL_Q && strlen(ledger_col_keys[guess]) == n &&
		memcmp(ledger_col_keys[guess], k, n) == 0)
		return guess;
	for (int i = 0; i < LEDGER_COL_Q; i++)
		if (strlen(ledger_col_keys[i]) == n && memcmp(ledger_col_keys[i], k, n) == 0)
			return i;
	return -1;
}

/* A string from just after its opening quote: printable ASCII and the short escapes only.
 * Returns the closing quote, or NULL (not in the subset). */
static const char *
lrec_scan_str(const char *p, const char *end, bool *esc)
{
	*esc = false;
	while (p < end) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '"')
			return p;
		if (ch < 0x20 || ch > 0x7e)
			return NULL;
		if (ch == '\\') {
			if (++p == end || !strchr("\"\\/bfnrt", *p) || !*p)
				return NULL;
			*esc = true;
		}
		p++;
	}
	return NULL;
}

/*
 * The compact subset: one object of unrepeated keys (printable ASCII, no escapes) whose values
 * are strings of printable ASCII with short escapes, integers of at most 18 digits (no "-0"),
 * true, false or null.  False on anything else: jansson decides then.
 */
static bool
lrec_scan(const char *p, size_t len, struct lrec_span sp[LEDGER_COL_Q])
{
	const char *end = p + len;
	int guess = 0;

	memset(sp, 0, sizeof(*sp) * LEDGER_COL_Q);
	p = lrec_ws(p, end);
	if (p == end || *p++ != '{')
		return false;
	p = lrec_ws(p, end);
	if (p < end && *p == '}') {
		p++;
		return lrec_ws(p, end) == end;
	}
	for (;;) {
		const char *k, *v;
		struct lrec_span s = { 0 };
		bool esc;
		int i;

		if (p == end || *p++ != '"')
			return false;
		k = p;
		p = lrec_scan_str(p, end, &esc);
		if (!p || esc)
			return false;
		i = lrec_key_index(k, (size_t)(p - k), guess);
		p = lrec_ws(p + 1, end);
		if (p == end || *p++ != ':')
			return false;
		p = lrec_ws(p, end);
		if (p == end)
			return false;
		v = p;
		if (*p == '"') {
			v = ++p;
			p = lrec_scan_str(p, end, &esc);
			if (!p)
				return false;
			s = (struct lrec_span){ v, (size_t)(p - v), LT_STR, esc };
			p++;
		} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
			const char *d;

			if (*p == '-')
				p++;
			d = p;
			while (p < end && *p >= '0' && *p <= '9')
				p++;
			if (p == d || p - d > 18 || (*d == '0' && (p - d > 1 || *v == '-')))
				return false;
			if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
				return false;
			s = (struct lrec_span){ v, (size_t)(p - v), LT_INT, false };
		} else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
			s.type = LT_NULL;
			p += 4;
		} else if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
			s.type = LT_TRUE;
			p += 4;
		} else if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
			s.type = LT_FALSE;
			p += 5;
		} else {
			return false;
		}
		if (i >= 0) {
			if (sp[i].type != LT_ABSENT)
				return false; /* repeated: jansson's rule decides */
			sp[i] = s;
			guess = i + 1;
		}
		p = lrec_ws(p, end);
		if (p == end)
			return false;
		if (*p == '}')
			break;
		if (*p++ != ',')
			return false;
		p = lrec_ws(p, end);
	}
	return lrec_ws(p + 1, end) == end;
}

static bool
lrec_add_seq(struct lrec_cols *c, uint64_t seq)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, seq);

	return lrec_add_raw(c, LEDGER_COL_Q, buf, (size_t)n);
}

static bool
lrec_add_span(struct lrec_cols *c, int i, const struct lrec_span *s)
{
	switch (s->type) {
	case LT_STR:
		return lrec_add_text(c, i, s->s, s->n, s->esc);
	case LT_INT:
		return lrec_add_raw(c, i, s->s, s->n);
	case LT_TRUE:
		return lrec_add_raw(c, i, "t", 1);
	case LT_FALSE:
		return lrec_add_raw(c, i, "f", 1);
	default:
		return lrec_add_raw(c, i, "NULL", 4);
	}
}

/* jansson's reading of a record outside the subset: the same texts as the subset's. */
static enum lrec_read
lrec_add_slow(struct lrec_cols *c, uint64_t seq, const char *payload, size_t len)
{
	json_error_t err;
	json_t *o = json_loadb(payload, len, 0, &err);
	bool ok = true;

	c->slow++;
	if (!json_is_object(o) || !json_is_string(json_object_get(o, "p")) ||
		!json_is_string(json_object_get(o, "id"))) {
		json_decref(o);
		return LREC_NOT_EVENT;
	}
	for (int i = 0; ok && i < LEDGER_COL_Q; i++) {
		json_t *v = json_object_get(o, ledger_col_keys[i]);
		char buf[32];

		if (json_is_string(v)) {
			ok = lrec_add_text(c, i, json_string_value(v), json_string_length(v),
				false);
		} else if (json_is_integer(v)) {
			int n = snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
				json_integer_value(v));

			ok = lrec_add_raw(c, i, buf, (size_t)n);
		} else if (json_is_boolean(v)) {
			ok = lrec_add_raw(c, i, json_is_true(v) ? "t" : "f", 1);
		} else {
			ok = lrec_add_raw(c, i, "NULL", 4);
		}
	}
	json_decref(o);
	return ok && lrec_add_seq(c, seq) ? LREC_OK : LREC_NOMEM;
}

enum lrec_read
lrec_cols_add(struct lrec_cols *c, uint64_t seq, const char *payload, size_t len)
{
	struct lrec_span sp[LEDGER_COL_Q];
	size_t keep[LEDGER_COLS];
	enum lrec_read r = LREC_OK;
	bool ok = true;

	if (c->failed)
		return LREC_NOMEM;
	for (int i = 0; i < LEDGER_COLS; i++)
		keep[i] = c->col[i].len;
	if (lrec_scan(payload, len, sp)) {
		if (sp[0].type != LT_STR || sp[1].type != LT_STR)
			return LREC_NOT_EVENT;
		for (int i = 0; ok && i < LEDGER_COL_Q; i++)
			ok = lrec_add_span(c, i, &sp[i]);
		ok = ok && lrec_add_seq(c, seq);
		r = ok ? LREC_OK : LREC_NOMEM;
	} else {
		r = lrec_add_slow(c, seq, payload, len);
	}
	if (r != LREC_OK) {
		/* a row is added whole or not at all */
		for (int i = 0; i < LEDGER_COLS; i++)
			c->col[i].len = keep[i];
		return r;
	}
	c->n++;
	return LREC_OK;
}

bool
lrec_cols_finish(struct lrec_cols *c)
{
	/* a row refused for want of memory was taken back whole: the rows before it are sent */
	c->failed = false;
	for (int i = 0; i < LEDGER_COLS; i++) {
		struct lrec_col *col = &c->col[i];

		/* every add left room for these two bytes; an empty batch may have no buffer */
		if (c->n == 0) {
			if (!lrec_room(c, col, 1))
				return false;
			col->p[col->len++] = '{';
		}
		col->p[col->len++] = '}';
		col->p[col->len] = 0;
	}
	return true;
}
