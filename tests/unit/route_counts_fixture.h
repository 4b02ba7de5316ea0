/* route_counts_fixture.h: what the route_counts tests share: one client, a clock, its figures. */
#ifndef CALLROUTED_ROUTE_COUNTS_FIXTURE_H
#define CALLROUTED_ROUTE_COUNTS_FIXTURE_H

#include <stdint.h>
#include <string.h>

#include "route_counts.h"

#define CLIENT 7
#define T 1000000 /* ms */

/* A call id's slot key (provider 0). */
static inline uint64_t
key(unsigned provider, const char *id)
{
	return route_counts_call_key(provider, id, id ? strlen(id) : 0);
}

/* What policy_decide counts for a request of call (0: none) at now. */
static inline int32_t
concurrent(uint64_t call, int64_t now)
{
	struct route_counts_at at = { .now_ms = now, .call = call };
	struct policy_counts ops;

	route_counts_ops(&ops, &at);
	return ops.concurrent(ops.ctx, CLIENT);
}

/* cmocka teardown: the counts freed. */
static inline int
teardown(void **state)
{
	(void)state;
	route_counts_free();
	return 0;
}

#endif
