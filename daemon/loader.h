/* loader.h: LISTEN/NOTIFY, full and incremental reloads feeding routes.c (db thread). */
#ifndef CALLROUTED_LOADER_H
#define CALLROUTED_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "stats.h"

struct config;
struct db_conn;

/* Take the routes connection and put the refresh timer on the db thread's loop (after
 * db_setup, before db_start). */
bool loader_setup(const struct config *cfg) __attribute__((warn_unused_result));
/* After db_stop (the db thread is joined), before db_free. */
void loader_cleanup(void);
/* SIGHUP (any thread): a full reload on the db thread. */
void loader_request_reload(void);
/* The routes connection is up (any thread): "the database" of /readyz, STATUS= and metrics. */
bool loader_db_up(void);
/* The shared change generation (migration 010's callrouted_change_generation, the same for
 * every daemon of the database) the route table has applied (any thread; 0 before the first
 * load); it is handed to instances_set_change_generation (the instances row and
 * callrouted_routes_change_generation): a daemon whose figure lags the others misses changes. */
uint64_t loader_change_generation(void);
/* callrouted_db_up, through add (scrape.c). */
void loader_stats(stat_fn add, void *ctx);
/* Full reloads finished, well or not (any thread): SIGHUP's READY=1 waits for the next one. */
unsigned long loader_full_reloads_finished(void);

#endif
