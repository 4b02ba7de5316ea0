/* stats.h: how a subsystem hands its figures to the collector (memcached's ADD_STAT). */
#ifndef CALLROUTED_STATS_H
#define CALLROUTED_STATS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

/*
 * One figure: its family name, HELP and TYPE (the collector prints them once, before the
 * first series of the family), its labels (`k="v",...` without braces; NULL or "" for none)
 * and its value as text.  x_stats(stat_fn add, void *ctx) calls add once per series; the
 * subsystem never sees the renderer (scrape.c) and the renderer never sees the subsystem's
 * structs.
 */
typedef void (*stat_fn)(void *ctx, const char *name, const char *help, const char *type,
	const char *labels, const char *value);

static inline void
stat_u64(stat_fn add, void *ctx, const char *name, const char *help, const char *type,
	const char *labels, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	add(ctx, name, help, type, labels, buf);
}

static inline void
stat_f64(stat_fn add, void *ctx, const char *name, const char *help, const char *type,
	const char *labels, double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.17g", v);
	add(ctx, name, help, type, labels, buf);
}

/* The two common cases: a counter (integer) and a gauge (printed as a double). */
#define STAT_COUNTER(add, ctx, name, help, v) stat_u64(add, ctx, name, help, "counter", NULL, v)
#define STAT_GAUGE(add, ctx, name, help, v) stat_f64(add, ctx, name, help, "gauge", NULL, v)

#endif
