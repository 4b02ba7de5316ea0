/* test_stats.c: the x_stats() figures keep scrape.c's contract (families, names, types). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loader.h"
#include "db.h"
#include "ledger.h"
#include "routes.h"
#include "stats.h"
#include "wire.h"

#define MAX_FAMILIES 128

struct seen {
	char family[MAX_FAMILIES][128];
	char help[MAX_FAMILIES][512];
	char type[MAX_FAMILIES][16];
	size_t nfamilies, nseries;
	char last[128];
};

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void
collect(void *ctx, const char *name, const char *help, const char *type, const char *labels,
	const char *value)
{
	struct seen *s = ctx;
	char *end;

	assert_non_null(name);
	assert_non_null(help);
	assert_non_null(value);
	assert_true(strncmp(name, "callrouted_", 11) == 0);
	assert_true(*help);
	assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0);
	if (strcmp(type, "counter") == 0)
		assert_true(ends_with(name, "_total"));
	strtod(value, &end);
	assert_true(*value && *end == 0);
	if (labels && *labels)
		assert_true(labels[strlen(labels) - 1] == '"'); /* k="v",... without braces */
	s->nseries++;
	if (strcmp(s->last, name) == 0) {
		/* the same family goes on: the same HELP and TYPE */
		assert_string_equal(s->help[s->nfamilies - 1], help);
		assert_string_equal(s->type[s->nfamilies - 1], type);
		return;
	}
	/* a new family: never one seen before (its series would be split under two HELPs) */
	for (size_t i = 0; i < s->nfamilies; i++)
		if (strcmp(s->family[i], name) == 0)
			fail_msg("family %s comes back after another one", name);
	assert_true(s->nfamilies < MAX_FAMILIES);
	snprintf(s->family[s->nfamilies], sizeof(s->family[0]), "%s", name);
	snprintf(s->help[s->nfamilies], sizeof(s->help[0]), "%s", help);
	snprintf(s->type[s->nfamilies], sizeof(s->type[0]), "%s", type);
	s->nfamilies++;
	snprintf(s->last, sizeof(s->last), "%s", name);
}

static bool
has(const struct seen *s, const char *family)
{
	for (size_t i = 0; i < s->nfamilies; i++)
		if (strcmp(s->family[i], family) == 0)
			return true;
	return false;
}

static void
test_subsystem_figures(void **state)
{
	struct seen *s = calloc(1, sizeof(*s));

	(void)state;
	assert_non_null(s);
	routes_stats(NULL, collect, s);
	wire_stats(WIRE_WEBHOOK, collect, s);
	wire_stats(WIRE_ADMIN, collect, s);
	loader_stats(collect, s);
	db_stats(collect, s);
	ledger_stats(collect, s);
	assert_true(has(s, "callrouted_routes_entries"));
	assert_true(has(s, "callrouted_http_connections_open"));
	assert_true(has(s, "callrouted_http_tls_handshake_failures_total"));
	assert_true(has(s, "callrouted_admin_http_accept_errors_total"));
	assert_false(has(s, "callrouted_admin_http_tls_handshake_failures_total"));
	assert_true(has(s, "callrouted_db_up"));
	assert_true(has(s, "callrouted_ledger_events_invalid_total"));
	/* families of several series: accept_errors by reason, the ledger by provider */
	assert_true(s->nseries > s->nfamilies);
	free(s);
}

/* The helpers print as the old renderer did: integers for counters, %.17g for gauges. */
static void
value_cb(void *ctx, const char *name, const char *help, const char *type, const char *labels,
	const char *value)
{
	snprintf(ctx, 64, "%s", value);
}

static void
test_value_formats(void **state)
{
	char v[64];

	(void)state;
	stat_u64(value_cb, v, "x_total", "h", "counter", NULL, UINT64_MAX);
	assert_string_equal(v, "18446744073709551615");
	stat_f64(value_cb, v, "x", "h", "gauge", NULL, 0.1);
	assert_string_equal(v, "0.10000000000000001");
	stat_f64(value_cb, v, "x", "h", "gauge", NULL, 3);
	assert_string_equal(v, "3");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subsystem_figures),
		cmocka_unit_test(test_value_formats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
