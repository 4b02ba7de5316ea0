/* instances.h: this daemon's row in callrouted_instances, kept up to date (db thread). */
#ifndef CALLROUTED_INSTANCES_H
#define CALLROUTED_INSTANCES_H

#include <stdbool.h>
#include <stdint.h>

#include "stats.h"

struct config;

/* Take the instances connection and its timer on the db thread's loop (after db_setup,
 * before db_start); every INSTANCES_INTERVAL_MS it upserts this daemon's row. */
bool instances_setup(const struct config *cfg) __attribute__((warn_unused_result));
/* After db_stop (the db thread is joined), before db_free. */
void instances_cleanup(void);
/*
 * The hook of the shared change counter (issue 14, item 3): the route loader calls this (any
 * thread) with the change generation its published table reflects.  From the first call on,
 * the row's change_generation and the callrouted_routes_change_generation gauge carry it (the
 * same number on every daemon that is up to date, so the alert rules compare daemons with
 * it); before, the column is NULL and the gauge 0.
 */
void instances_set_change_generation(uint64_t generation);
/* callrouted_instance_heartbeats_total, _heartbeat_failures_total and the change generation,
 * through add (scrape.c). */
void instances_stats(stat_fn add, void *ctx);

#define INSTANCES_INTERVAL_MS 5000
/* A row older than this is stale (3 periods): callroutectl instances says STALE, another daemon
 * may take its name over. */
#define INSTANCES_STALE_S 15
#define INSTANCES_STALE_TEXT "15"

#endif
