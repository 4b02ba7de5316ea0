/* test_ledger_record.c: the journal record writer and reader, held to what jansson does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ledger_record.h"

/* ---- the reference: jansson's reading of a record, as the drain's texts ---- */

struct ref_row {
	bool event;
	char *v[LEDGER_COLS]; /* NULL: SQL NULL */
};

static void
ref_free(struct ref_row *r)
{
	for (int i = 0; i < LEDGER_COLS; i++)
		free(r->v[i]);
	memset(r, 0, sizeof(*r));
}

static struct ref_row
ref_read(uint64_t seq, const char *payload, size_t len)
{
	struct ref_row r = { 0 };
	json_error_t err;
	json_t *o = json_loadb(payload, len, 0, &err);
	char buf[32];

	if (!json_is_object(o) || !json_is_string(json_object_get(o, "p")) ||
		!json_is_string(json_object_get(o, "id"))) {
		json_decref(o);
		return r;
	}
	r.event = true;
	for (int i = 0; i < LEDGER_COL_Q; i++) {
		json_t *v = json_object_get(o, ledger_col_keys[i]);

		if (json_is_string(v)) {
			r.v[i] = strdup(json_string_value(v));
		} else if (json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			r.v[i] = strdup(buf);
		} else if (json_is_boolean(v)) {
			r.v[i] = strdup(json_is_true(v) ? "t" : "f");
		}
	}
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)seq);
	r.v[LEDGER_COL_Q] = strdup(buf);
	json_decref(o);
	return r;
}

/* ---- PostgreSQL's reading of a one-dimensional text[] literal (array_in's rules) ---- */

/* The element at index k (0-based) of lit: *isnull, or its text in out. */
static void
lit_element(const char *lit, size_t k, bool *isnull, char *out, size_t cap)
{
	const char *p = lit;
	size_t idx = 0;

	assert_int_equal(*p, '{');
	p++;
	for (;;) {
		size_t n = 0;
		bool quoted = false;

		assert_true(*p != 0);
		if (*p == '"') {
			quoted = true;
			p++;
			while (*p != '"') {
				assert_true(*p != 0);
				if (*p == '\\')
					p++;
				assert_true(n + 1 < cap);
				out[n++] = *p++;
			}
			p++;
		} else {
			while (*p != ',' && *p != '}') {
				assert_true(*p != 0 && *p != '"' && *p != '\\' && *p != ' ');
				assert_true(n + 1 < cap);
				out[n++] = *p++;
			}
			assert_true(n > 0);
		}
		out[n] = 0;
		if (idx == k) {
			*isnull = !quoted && strcmp(out, "NULL") == 0;
			return;
		}
		idx++;
		assert_int_equal(*p, ',');
		p++;
	}
}

static void
lit_count(const char *lit, size_t n)
{
	/* the literal holds exactly n elements, then "}" and its end */
	const char *p = lit + 1;
	size_t count = 0;
	bool inq = false;

	if (n == 0) {
		assert_string_equal(lit, "{}");
		return;
	}
	for (; *p; p++) {
		if (inq && *p == '\\') {
			p++;
			continue;
		}
		if (*p == '"')
			inq = !inq;
		else if (!inq && (*p == ',' || *p == '}'))
			count++;
		if (!inq && *p == '}') {
			assert_int_equal(p[1], 0);
			break;
		}
	}
	assert_int_equal(count, n);
}

static char elem[70000];

/* Add the record to a fresh batch and hold the result and every column to jansson's reading. */
static void
check_record(const char *payload, size_t len)
{
	struct lrec_cols c = { 0 };
	struct ref_row ref = ref_read(77, payload, len);
	enum lrec_read r;

	lrec_cols_reset(&c);
	r = lrec_cols_add(&c, 77, payload, len);
	if (!ref.event) {
		if (r != LREC_NOT_EVENT)
			fail_msg("record read as an event, jansson refuses it: %.*s", (int)len,
				payload);
		assert_int_equal(c.n, 0);
		assert_true(lrec_cols_finish(&c));
		for (int i = 0; i < LEDGER_COLS; i++)
			assert_string_equal(c.col[i].p, "{}");
		lrec_cols_free(&c);
		return;
	}
	if (r != LREC_OK)
		fail_msg("record not read, jansson reads it: %.*s", (int)len, payload);
	assert_int_equal(c.n, 1);
	assert_true(lrec_cols_finish(&c));
	for (int i = 0; i < LEDGER_COLS; i++) {
		bool isnull;

		lit_count(c.col[i].p, 1);
		lit_element(c.col[i].p, 0, &isnull, elem, sizeof(elem));
		if (!ref.v[i] != isnull || (ref.v[i] && strcmp(ref.v[i], elem) != 0))
			fail_msg("column %s: got %s%s%s, jansson %s%s%s (record %.*s)",
				ledger_col_keys[i], isnull ? "" : "\"", isnull ? "NULL" : elem,
				isnull ? "" : "\"", ref.v[i] ? "\"" : "",
				ref.v[i] ? ref.v[i] : "NULL", ref.v[i] ? "\"" : "", (int)len,
				payload);
	}
	ref_free(&ref);
	lrec_cols_free(&c);
}

static void
check(const char *payload)
{
	check_record(payload, strlen(payload));
}

/* A record as the daemon writes it. */
static const char typical[] =
	"{\"p\":\"retell\",\"id\":\"call-1\",\"k\":\"end\",\"d\":\"inbound\",\"num\":\"+14155550001\","
	"\"from\":\"+12125550100\",\"to\":\"+14155550001\",\"pa\":\"agent_a\",\"st\":1714608000000,"
	"\"en\":1714608061200,\"dur\":61200,\"c\":true,\"r\":true,\"why\":\"user_hangup\",\"ag\":1,"
	"\"cl\":5,\"a\":10,\"n\":101,\"mm\":false,\"rate\":90000,\"bs\":62,\"amt\":93000,"
	"\"at\":1714608500000}";

static void
test_subset_and_beyond(void **state)
{
	static const char *const records[] = {
		typical,
		"{\"p\":\"vapi\",\"id\":\"x\"}",
		"{\"p\":\"bland\",\"id\":\"q\\\"u\\\\o\\/te\\n\\t\\r\\b\\f\",\"why\":\"a\\\"b\"}",
		"{\"p\":\"retell\",\"id\":\"caf\\u00e9\",\"why\":\"\\ud83d\\ude00\"}",
		"{\"p\":\"retell\",\"id\":\"caf\xc3\xa9\",\"pa\":\"\xe2\x82\xac\"}",
		" { \"p\" : \"retell\" , \"id\" : \"a b\" , \"st\" : 12 , \"c\" : null } \n",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":-5,\"en\":0,\"dur\":123456789012345678}",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":1234567890123456789}",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":-1234567890123456789}",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":12345678901234567890}",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":9999999999999999999}",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":999999999999999999}",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":-0}",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":007}",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":1.5,\"en\":1e3,\"dur\":2E2}",
		"{\"p\":\"retell\",\"id\":\"1\",\"st\":{\"x\":1},\"en\":[1,2],\"why\":{}}",
		"{\"p\":\"retell\",\"id\":\"1\",\"id\":\"2\"}",
		"{\"p\":\"retell\",\"id\":\"1\",\"zz\":1,\"zz\":\"2\",\"q\":\"99\"}",
		"{\"\\u0070\":\"retell\",\"id\":\"1\"}",
		"{\"p\":\"retell\"}",
		"{\"id\":\"1\"}",
		"{\"p\":1,\"id\":\"1\"}",
		"{\"p\":\"retell\",\"id\":null}",
		"{}",
		"[]",
		"",
		"null",
		"{\"p\":\"retell\",\"id\":\"1\"} x",
		"{\"p\":\"retell\",\"id\":\"1\",}",
		"{\"p\":\"retell\",\"id\":\"1\"",
		"{\"p\":\"retell\",\"id\":\"\\u0000\"}",
		"{\"p\":\"retell\",\"id\":\"\\x\"}",
		"{\"p\":\"retell\",\"id\":\"a\tb\"}",
		"{\"p\":\"retell\",\"id\":\"\xff\"}",
		"{\"p\":\"retell\",\"id\":\"\xc3\"}",
		"{\"p\":\"retell\",\"id\":\"NULL\",\"why\":\"\"}",
		"{\"p\":\"retell\",\"id\":\"1\",\"c\":tru}",
		"{\"p\":\"retell\",\"id\":\"1\",\"c\":nul}",
		"{\"p\":\"retell\",\"id\":\"1\",\"c\":true1}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
		check(records[i]);
	/* a NUL inside the record */
	check_record("{\"p\":\"retell\",\"id\":\"a\0b\"}", 25);
}

/* Every byte of the typical record replaced by characters that matter to JSON, and every cut:
 * the reader agrees with jansson on each. */
static void
test_mutations(void **state)
{
	static const char subst[] = "\"\\{}[],:0-9 .eatfnx\x01\x7f\x80\xc3";
	char buf[sizeof(typical)];
	size_t n = sizeof(typical) - 1;

	(void)state;
	for (size_t pos = 0; pos < n; pos++) {
		for (size_t k = 0; k < sizeof(subst) - 1; k++) {
			memcpy(buf, typical, n);
			buf[pos] = subst[k];
			check_record(buf, n);
		}
		check_record(typical, pos);
		/* a byte taken out */
		memcpy(buf, typical, pos);
		memcpy(buf + pos, typical + pos + 1, n - pos - 1);
		check_record(buf, n - 1);
	}
}

/* Many rows: each column's literal holds them in order; a refused record adds nothing. */
static void
test_batch(void **state)
{
	struct lrec_cols c = { 0 };
	char rec[256];

	(void)state;
	lrec_cols_reset(&c);
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(rec, sizeof(rec),
			"{\"p\":\"retell\",\"id\":\"call-%d\",\"st\":%d,\"why\":%s}", i, i * 7,
			i % 3 ? "\"a,b\\\"c\"" : "null");

		assert_int_equal(lrec_cols_add(&c, 1000 + (uint64_t)i, rec, (size_t)n), LREC_OK);
		if (i % 100 == 0)
			assert_int_equal(lrec_cols_add(&c, 5, "{\"p\":1}", 7), LREC_NOT_EVENT);
	}
	assert_int_equal(c.n, 1000);
	assert_true(lrec_cols_finish(&c));
	lit_count(c.col[0].p, 1000);
	for (int i = 0; i < 1000; i += 37) {
		bool isnull;
		char want[32];

		lit_element(c.col[1].p, (size_t)i, &isnull, elem, sizeof(elem));
		snprintf(want, sizeof(want), "call-%d", i);
		assert_false(isnull);
		assert_string_equal(elem, want);
		lit_element(c.col[8].p, (size_t)i, &isnull, elem, sizeof(elem));
		snprintf(want, sizeof(want), "%d", i * 7);
		assert_string_equal(elem, want);
		lit_element(c.col[13].p, (size_t)i, &isnull, elem, sizeof(elem));
		assert_int_equal(isnull, i % 3 == 0);
		if (!isnull)
			assert_string_equal(elem, "a,b\"c");
		lit_element(c.col[LEDGER_COL_Q].p, (size_t)i, &isnull, elem, sizeof(elem));
		snprintf(want, sizeof(want), "%d", 1000 + i);
		assert_string_equal(elem, want);
		lit_element(c.col[4].p, (size_t)i, &isnull, elem, sizeof(elem));
		assert_true(isnull);
	}
	/* the next batch starts empty */
	lrec_cols_reset(&c);
	assert_true(lrec_cols_finish(&c));
	assert_string_equal(c.col[0].p, "{}");
	lrec_cols_free(&c);
}

/* ---- writing: byte for byte what jansson dumps (JSON_COMPACT) ---- */

static void
test_writer_is_jansson(void **state)
{
	static const char *const strs[] = {
		"plain", "", "q\"uote back\\slash /slash", "\b\f\n\r\t\x01\x1f\x7f",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\xff bad", "\xc3",
		"\xed\xa0\x80",     /* a surrogate */
		"\xc0\xaf",         /* overlong */
		"\xf4\x90\x80\x80", /* above U+10FFFF */
	};
	char buf[1024];
	char *want;

	(void)state;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		struct lrec_out o;
		json_t *j = json_object(), *s;
		size_t n;

		lrec_begin(&o, buf, sizeof(buf));
		lrec_str(&o, "s", strs[i]);
		lrec_str(&o, "none", NULL);
		lrec_i64(&o, "neg", -1);
		lrec_i64(&o, "big", INT64_MAX);
		lrec_int(&o, "min", INT64_MIN);
		lrec_int(&o, "zero", 0);
		lrec_bool(&o, "t", true);
		lrec_bool(&o, "f", false);
		n = lrec_end(&o);
		assert_true(n < sizeof(buf));
		buf[n] = 0;
		/* jansson refuses a string that is not UTF-8: the writer writes null */
		s = json_string(strs[i]);
		json_object_set_new(j, "s", s ? s : json_null());
		json_object_set_new(j, "none", json_null());
		json_object_set_new(j, "neg", json_null());
		json_object_set_new(j, "big", json_integer(INT64_MAX));
		json_object_set_new(j, "min", json_integer(INT64_MIN));
		json_object_set_new(j, "zero", json_integer(0));
		json_object_set_new(j, "t", json_true());
		json_object_set_new(j, "f", json_false());
		want = json_dumps(j, JSON_COMPACT);
		assert_string_equal(buf, want);
		free(want);
		json_decref(j);
	}
}

/* A record that does not fit: the length it needs, nothing written past cap. */
static void
test_writer_cap(void **state)
{
	char buf[40];
	struct lrec_out o;
	size_t n;

	(void)state;
	memset(buf, '#', sizeof(buf));
	lrec_begin(&o, buf, 20);
	lrec_str(&o, "id", "0123456789abcdefghij");
	lrec_int(&o, "at", 1714608500000);
	n = lrec_end(&o);
	assert_int_equal(n, strlen("{\"id\":\"0123456789abcdefghij\",\"at\":1714608500000}"));
	assert_memory_equal(buf, "{\"id\":\"0123456789abc", 20);
	for (size_t i = 20; i < sizeof(buf); i++)
		assert_int_equal(buf[i], '#');
}

/* What the writer writes, the reader reads directly (never through jansson). */
static void
test_round_trip(void **state)
{
	struct lrec_cols c = { 0 };
	char buf[512];
	struct lrec_out o;
	size_t n;
	bool isnull;

	(void)state;
	lrec_begin(&o, buf, sizeof(buf));
	lrec_str(&o, "p", "retell");
	lrec_str(&o, "id", "x\"y\\z\n");
	lrec_str(&o, "k", "end");
	lrec_i64(&o, "st", 5);
	lrec_i64(&o, "en", -1);
	lrec_bool(&o, "c", true);
	n = lrec_end(&o);
	lrec_cols_reset(&c);
	assert_int_equal(lrec_cols_add(&c, 9, buf, n), LREC_OK);
	assert_int_equal(c.slow, 0);
	assert_true(lrec_cols_finish(&c));
	lit_element(c.col[1].p, 0, &isnull, elem, sizeof(elem));
	assert_string_equal(elem, "x\"y\\z\n");
	lit_element(c.col[8].p, 0, &isnull, elem, sizeof(elem));
	assert_string_equal(elem, "5");
	lit_element(c.col[9].p, 0, &isnull, elem, sizeof(elem));
	assert_true(isnull);
	lit_element(c.col[11].p, 0, &isnull, elem, sizeof(elem));
	assert_string_equal(elem, "t");
	lrec_cols_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subset_and_beyond),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_writer_is_jansson),
		cmocka_unit_test(test_writer_cap),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
