/* policy_db.h: the routing-policy loader and the concurrency/spend refresh (db thread). */
#ifndef CALLROUTED_POLICY_DB_H
#define CALLROUTED_POLICY_DB_H

#include <stdbool.h>

#include "routes.h"
#include "stats.h"

struct config;

/* After db_setup: a connection of its own (LISTEN callrouted_changes, policies, counts). */
bool policy_db_setup(const struct config *cfg);
/* After db_stop. */
void policy_db_cleanup(void);
/* The tables only the policies read (the route loader leaves their notifications alone). */
bool policy_db_owns_table(const char *table);
/* callrouted_policy_* gauges of s through add (scrape.c). */
void policy_db_stats(const struct routes_snapshot *s, stat_fn add, void *ctx);

#endif
