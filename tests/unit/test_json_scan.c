/* test_json_scan.c: the routing scanner reads only what jansson reads, and the same. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "json_scan.h"

enum { F_EVENT, F_CI, F_TO, F_FROM, F_N };

static void
fields_init(struct jscan_field f[F_N])
{
	memset(f, 0, sizeof(struct jscan_field) * F_N);
	f[F_EVENT].path[0] = "event";
	f[F_CI].path[0] = "call_inbound";
	f[F_TO].path[0] = "call_inbound";
	f[F_TO].path[1] = "to_number";
	f[F_FROM].path[0] = "call_inbound";
	f[F_FROM].path[1] = "from_number";
}

static enum jscan_type
type_of(json_t *v)
{
	if (!v)
		return JSCAN_ABSENT;
	if (json_is_string(v))
		return JSCAN_STRING;
	if (json_is_object(v))
		return JSCAN_OBJECT;
	return JSCAN_OTHER;
}

static void
field_matches(const struct jscan_field *f, json_t *v)
{
	assert_int_equal(f->type, type_of(v));
	if (f->type == JSCAN_STRING) {
		assert_int_equal(f->n, json_string_length(v));
		assert_memory_equal(f->s, json_string_value(v), f->n);
	}
}

/* The invariant: scanned => jansson reads an object with the same fields. */
static bool
check(const char *body, size_t len)
{
	struct jscan_field f[F_N];
	json_error_t err;
	json_t *j, *ci;
	bool ok;

	fields_init(f);
	ok = json_scan(body, len, f, F_N);
	if (!ok)
		return false;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	assert_non_null(j);
	assert_true(json_is_object(j));
	ci = json_object_get(j, "call_inbound");
	field_matches(&f[F_EVENT], json_object_get(j, "event"));
	field_matches(&f[F_CI], ci);
	field_matches(&f[F_TO], json_is_object(ci) ? json_object_get(ci, "to_number") : NULL);
	field_matches(&f[F_FROM], json_is_object(ci) ? json_object_get(ci, "from_number") : NULL);
	json_decref(j);
	return true;
}

#define BENCH_BODY                                                                                 \
	"{\"event\":\"call_inbound\",\"call_inbound\":{\"agent_id\":\"agent_default01\","          \
	"\"agent_version\":3,\"from_number\":\"+12024076813\",\"to_number\":\"+15550174620\"}}"

static void
test_accepts(void **state)
{
	static const char *const ok[] = {
		BENCH_BODY,
		"{}",
		" \t\r\n{ \"event\" : \"call_inbound\" } \n",
		"{\"event\":\"call_inbound\",\"call_inbound\":\"x\"}",
		"{\"event\":\"call_inbound\",\"call_inbound\":{\"to_number\":5}}",
		"{\"event\":\"call_inbound\",\"call_inbound\":{\"to_number\":null,\"x\":[1,-0,[],{}]}}",
		"{\"a\":{\"to_number\":\"+1\"},\"call_inbound\":{\"b\":{\"to_number\":\"+2\"}}}",
		"{\"l\":[{\"event\":\"x\"}],\"event\":\"e\",\"t\":true,\"f\":false,\"n\":null}",
		"{\"\":\"\",\"n\":-123456789012345}",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_true(check(ok[i], strlen(ok[i])));
}

static void
test_leaves_to_jansson(void **state)
{
	/* invalid JSON, or valid JSON outside the subset: never scanned */
	static const char *const no[] = {
		"",
		" ",
		"[]",
		"\"x\"",
		"{",
		"{}}",
		"{} x",
		"{\"a\":1,}",
		"{\"a\" 1}",
		"{\"a\":01}",
		"{\"a\":1.5}",
		"{\"a\":1e3}",
		"{\"a\":-}",
		"{\"a\":1234567890123456}",
		"{\"a\":tru}",
		"{\"a\":nul}",
		"{\"a\":\"\\n\"}",
		"{\"a\":\"\\u00e9\"}",
		"{\"a\":\"\xc3\xa9\"}",
		"{\"a\":\"\x01\"}",
		"{\"a\":\"unterminated}",
		"{\"a\":1,\"a\":2}",
		"{\"c\":{\"a\":1,\"a\":2}}",
		"{\"a\":[1,]}",
		"{\"a\":[1 2]}",
		"{a:1}",
		"\xef\xbb\xbf{}",
		"{\"a\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}",
	};

	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(check(no[i], strlen(no[i])));
	/* a NUL inside */
	assert_false(check("{\"a\":\"x\0\"}", 9));
	assert_false(check("{}\0", 3));
}

/*
 * Strings are read eight bytes at a time: a string of every length from 0 to 40 is taken whole,
 * and one with a byte the subset excludes (a control byte, DEL, a backslash, a byte of 0x80 and
 * up) at any position in it is left to jansson.
 */
static void
test_long_strings(void **state)
{
	static const unsigned char bad[] = { 0x00, 0x01, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0xc3, 0xff,
		'\\' };
	char body[128], val[48];

	(void)state;
	for (size_t n = 0; n <= 40; n++) {
		struct jscan_field f[F_N];
		int len;

		for (size_t i = 0; i < n; i++)
			val[i] = (char)(' ' + (i * 7) % 94 == '"' || ' ' + (i * 7) % 94 == '\\' ?
						'x' :
						' ' + (i * 7) % 94);
		val[n] = 0;
		len = snprintf(body, sizeof(body), "{\"event\":\"%s\"}", val);
		fields_init(f);
		assert_true(json_scan(body, (size_t)len, f, F_N));
		assert_int_equal(f[F_EVENT].type, JSCAN_STRING);
		assert_int_equal(f[F_EVENT].n, n);
		assert_memory_equal(f[F_EVENT].s, val, n);
		assert_true(check(body, (size_t)len));
		for (size_t at = 0; at < n; at++) {
			for (size_t b = 0; b < sizeof(bad); b++) {
				body[10 + at] = (char)bad[b];
				fields_init(f);
				assert_false(json_scan(body, (size_t)len, f, F_N));
			}
			body[10 + at] = val[at];
		}
	}
}

/* Random mutations of routing bodies: whatever the scanner takes, jansson takes the same. */
static void
test_mutations(void **state)
{
	static const char *const seeds[] = {
		BENCH_BODY,
		"{\"event\":\"call_inbound\",\"call_inbound\":{\"to_number\":\"+1\",\"x\":[1,{}]}}",
	};
	static const char alphabet[] = "{}[]\":,\\ 0123456789-.eEtrufalsn\x01\x80";
	char buf[512];
	unsigned seed = 12345;
	size_t scanned = 0;

	for (int iter = 0; iter < 200000; iter++) {
		const char *s = seeds[iter % 2];
		size_t len = strlen(s);
		int edits = 1 + (int)(rand_r(&seed) % 4);

		memcpy(buf, s, len);
		for (int e = 0; e < edits; e++) {
			size_t at = (size_t)rand_r(&seed) % len;
			int op = rand_r(&seed) % 3;
			char c = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];

			if (op == 0) {
				buf[at] = c;
			} else if (op == 1 && len > 1) {
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
			} else if (len + 1 < sizeof(buf)) {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = c;
				len++;
			}
		}
		scanned += check(buf, len);
	}
	/* the mutations kept some bodies readable (the invariant was put to the test) */
	assert_true(scanned > 1000);
}

/* Paths of 3 and 4 keys (Vapi's): scanned => the same as jansson's walk down the objects. */
static json_t *
walk(json_t *j, const char *const *path)
{
	for (; *path; path++) {
		if (!json_is_object(j))
			return NULL;
		j = json_object_get(j, *path);
	}
	return j;
}

static bool
check_deep(const char *body, size_t len)
{
	struct jscan_field f[7] = {
		{ .path = { "message" } },
		{ .path = { "message", "type" } },
		{ .path = { "message", "phoneNumber", "number" } },
		{ .path = { "message", "customer" } },
		{ .path = { "message", "customer", "number" } },
		{ .path = { "message", "call", "customer" } },
		{ .path = { "message", "call", "customer", "number" } },
	};
	json_error_t err;
	json_t *j;

	if (!json_scan(body, len, f, 7))
		return false;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	assert_non_null(j);
	for (size_t i = 0; i < 7; i++)
		field_matches(&f[i], walk(j, f[i].path));
	json_decref(j);
	return true;
}

#define VAPI_BODY                                                                                  \
	"{\"message\":{\"type\":\"assistant-request\",\"call\":{\"id\":\"c1\",\"customer\":"       \
	"{\"number\":\"+14155550123\"}},\"phoneNumber\":{\"number\":\"+15550001111\"},"            \
	"\"customer\":{\"number\":\"+14155550123\"}}}"

static void
test_deep_paths(void **state)
{
	static const char alphabet[] = "{}[]\":,\\ 0123456789-.eEtrufalsn\x01\x80";
	char buf[512];
	unsigned seed = 777;
	size_t scanned = 0;

	assert_true(check_deep(VAPI_BODY, strlen(VAPI_BODY)));
	assert_true(check_deep("{\"message\":{\"call\":[{\"customer\":{\"number\":\"x\"}}]}}",
		strlen("{\"message\":{\"call\":[{\"customer\":{\"number\":\"x\"}}]}}")));
	for (int iter = 0; iter < 100000; iter++) {
		size_t len = strlen(VAPI_BODY);

		memcpy(buf, VAPI_BODY, len);
		for (int e = 0; e < 1 + (int)(rand_r(&seed) % 4); e++) {
			size_t at = (size_t)rand_r(&seed) % len;
			char c = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];

			if (rand_r(&seed) % 2 || len + 1 >= sizeof(buf)) {
				buf[at] = c;
			} else {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = c;
				len++;
			}
		}
		scanned += check_deep(buf, len);
	}
	assert_true(scanned > 1000);
}

/* A call event's fields (Retell's, 14 of them): scanned => jansson's types, and a scalar's text
 * read as jansson reads it (null, an integer and its value). */
static void
scalar_matches(const struct jscan_field *f, json_t *v)
{
	int64_t x;

	field_matches(f, v);
	if (f->type != JSCAN_OTHER)
		return;
	assert_int_equal(jscan_is_null(f), json_is_null(v));
	assert_int_equal(jscan_int(f, &x), json_is_integer(v));
	if (json_is_integer(v))
		assert_true(x == json_integer_value(v));
	if (json_is_array(v))
		assert_null(f->s);
	if (json_is_true(v) || json_is_false(v)) {
		assert_int_equal(f->n, json_is_true(v) ? 4 : 5);
		assert_memory_equal(f->s, json_is_true(v) ? "true" : "false", f->n);
	}
}

static bool
check_call(const char *body, size_t len)
{
	static const char *const keys[] = { "call_id", "direction", "from_number", "to_number",
		"agent_id", "start_timestamp", "end_timestamp", "disconnection_reason",
		"duration_ms", "agent_version", "x" };
	enum { N = 3 + sizeof(keys) / sizeof(keys[0]) };
	struct jscan_field f[N] = { { .path = { "event" } }, { .path = { "call" } },
		{ .path = { "n" } } };
	json_error_t err;
	json_t *j;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		f[3 + i].path[0] = "call";
		f[3 + i].path[1] = keys[i];
	}
	if (!json_scan(body, len, f, N))
		return false;
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	assert_non_null(j);
	for (size_t i = 0; i < N; i++)
		scalar_matches(&f[i], walk(j, f[i].path));
	json_decref(j);
	return true;
}

#define CALL_BODY                                                                                  \
	"{\"event\":\"call_ended\",\"call\":{\"call_id\":\"c-1\",\"agent_id\":\"ag\","             \
	"\"agent_version\":1,\"call_type\":\"phone_call\",\"direction\":\"inbound\","              \
	"\"from_number\":\"+12125550100\",\"to_number\":\"+15550000001\","                         \
	"\"start_timestamp\":1714608000000,\"end_timestamp\":1714608065000,"                       \
	"\"duration_ms\":-65000,\"x\":[true,null],\"disconnection_reason\":null},\"n\":false}"

static void
test_call_event_fields(void **state)
{
	static const char alphabet[] = "{}[]\":,\\ 0123456789-.eEtrufalsn\x01\x80";
	char buf[512];
	unsigned seed = 4242;
	size_t scanned = 0;

	(void)state;
	assert_true(check_call(CALL_BODY, strlen(CALL_BODY)));
	/* more than 16 fields: not ours */
	{
		struct jscan_field f[17] = { { .path = { "event" } } };

		assert_false(json_scan("{}", 2, f, 17));
	}
	for (int iter = 0; iter < 100000; iter++) {
		size_t len = strlen(CALL_BODY);

		memcpy(buf, CALL_BODY, len);
		for (int e = 0; e < 1 + (int)(rand_r(&seed) % 4); e++) {
			size_t at = (size_t)rand_r(&seed) % len;
			char c = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];

			if (rand_r(&seed) % 2 || len + 1 >= sizeof(buf)) {
				buf[at] = c;
			} else {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = c;
				len++;
			}
		}
		scanned += check_call(buf, len);
	}
	assert_true(scanned > 1000);
}

/* A field without text (absent, an array, an object) is no integer; and reading it does no
 * arithmetic on its NULL text (UBSan: "applying zero offset to null pointer"). */
static void
test_int_without_text(void **state)
{
	struct jscan_field f[2] = { { .path = { "a" } }, { .path = { "b" } } };
	int64_t x = 7;

	(void)state;
	assert_true(json_scan("{\"a\":[1,2]}", 11, f, 2));
	assert_int_equal(f[0].type, JSCAN_OTHER);
	assert_null(f[0].s);
	assert_false(jscan_int(&f[0], &x));
	assert_int_equal(f[1].type, JSCAN_ABSENT);
	assert_false(jscan_int(&f[1], &x));
	assert_false(jscan_is_null(&f[1]));
	assert_true(x == 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_call_event_fields),
		cmocka_unit_test(test_leaves_to_jansson),
		cmocka_unit_test(test_long_strings),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_deep_paths),
		cmocka_unit_test(test_int_without_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
