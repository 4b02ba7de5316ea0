/* test_wire_query.c: wire.c's strict query string decoder, driven by a table of cases. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

struct query_case {
	const char *in;
	bool ok;
	const char *pairs; /* "k=v|k=v" as decoded; NULL when refused */
};

/* clang-format off */
static const struct query_case cases[] = {
	{ NULL, true, "" },
	{ "", true, "" },
	{ "a=1", true, "a=1" },
	{ "limit=4&after=17", true, "limit=4|after=17" },
	{ "a=", true, "a=" },
	{ "a=%31", true, "a=1" },
	{ "a=%7e%7E", true, "a=~~" },
	{ "a=x+y", true, "a=x y" },
	{ "a=%2B", true, "a=+" },
	{ "a=%26b%3Dc", true, "a=&b=c" },
	{ "k%65y=v", true, "key=v" },
	{ "a=b=c", true, "a=b=c" },
	/* refused */
	{ "a", false, NULL },
	{ "=1", false, NULL },
	{ "a=1&", false, NULL },
	{ "&a=1", false, NULL },
	{ "a=1&&b=2", false, NULL },
	{ "a=1&a=2", false, NULL },
	{ "a=1&b=2&a=1", false, NULL },
	{ "a=%", false, NULL },
	{ "a=%3", false, NULL },
	{ "a=%zz", false, NULL },
	{ "a=%g1", false, NULL },
	{ "a=%00", false, NULL },
	{ "%61=1&a=2", false, NULL }, /* the same key once decoded */
	{ "a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1&n=1&o=1&p=1&q=1", false, NULL },
};
/* clang-format on */

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct query_case *c = &cases[i];
		struct wire_query q;
		char got[512] = "";
		bool ok = wire_query_parse(c->in, &q);

		if (ok != c->ok)
			fail_msg("case %zu \"%s\": parse %s, want %s", i, c->in ? c->in : "(null)",
				ok ? "ok" : "refused", c->ok ? "ok" : "refused");
		if (!ok) {
			assert_int_equal(q.n, 0);
			assert_null(q.buf);
			continue;
		}
		for (int k = 0; k < q.n; k++) {
			size_t n = strlen(got);

			snprintf(got + n, sizeof(got) - n, "%s%s=%s", k ? "|" : "", q.key[k],
				q.value[k]);
		}
		if (strcmp(got, c->pairs) != 0)
			fail_msg("case %zu \"%s\": got \"%s\", want \"%s\"", i, c->in, got,
				c->pairs);
		wire_query_clear(&q);
	}
}

static void
test_get(void **state)
{
	struct wire_query q;

	(void)state;
	assert_true(wire_query_parse("worker=0&ms=3000", &q));
	assert_string_equal(wire_query_get(&q, "worker"), "0");
	assert_string_equal(wire_query_get(&q, "ms"), "3000");
	assert_null(wire_query_get(&q, "w"));
	assert_null(wire_query_get(&q, "worke"));
	wire_query_clear(&q);
	assert_int_equal(q.n, 0);
	wire_query_clear(&q); /* twice is harmless */
}

static void
test_sixteen_pairs(void **state)
{
	struct wire_query q;
	char in[256] = "";

	(void)state;
	for (int i = 0; i < WIRE_MAX_PARAMS; i++) {
		size_t n = strlen(in);

		snprintf(in + n, sizeof(in) - n, "%sk%d=%d", i ? "&" : "", i, i);
	}
	assert_true(wire_query_parse(in, &q));
	assert_int_equal(q.n, WIRE_MAX_PARAMS);
	assert_string_equal(wire_query_get(&q, "k15"), "15");
	wire_query_clear(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_sixteen_pairs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
