/* route_counts.h: per-client calls in progress and month-to-date spend, shared lock-free. */
#ifndef CALLROUTED_ROUTE_COUNTS_H
#define CALLROUTED_ROUTE_COUNTS_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

/* A taken slot lasts until the call's start or end event, or this long. */
#define ROUTE_COUNTS_SLOT_MS 10000
/* After the start event a slot stays this long: until the database's count has the call. */
#define ROUTE_COUNTS_STARTED_MS 2500
#define ROUTE_COUNTS_MAX_SLOTS 1024

/*
 * Writers of the table's keys and database figures: the db thread only (policy_db.c); the
 * workers read figures and take or release slots (atomics, no lock, no allocation).
 */
bool route_counts_init(void);
void route_counts_free(void);

/* db thread: make sure client (or agency) entries exist; slots: the client's limit. */
bool route_counts_client(uint64_t client_id, int32_t limit);
bool route_counts_agency(uint64_t agency_id);
/* db thread: a refresh begins (figures not named by it become 0), figures, it ends. */
void route_counts_refresh_begin(void);
void route_counts_set_in_progress(uint64_t client_id, int32_t n);
void route_counts_set_spend(bool agency, uint64_t id, int32_t month, int64_t micros);
void route_counts_refresh_end(int64_t now_ms);
/* When the figures were last refreshed from the database (ms; 0: never). */
int64_t route_counts_refreshed_ms(void);

/* The figures the decision counts against; now_ms: for the slots' expiry. */
void route_counts_ops(struct policy_counts *out, int64_t *now_ms);
int32_t route_counts_in_progress_db(uint64_t client_id);
int32_t route_counts_taken(uint64_t client_id, int64_t now_ms);

/* Take one slot of client's limit; false: the limit is reached (counting the database's
 * figure and every slot taken here), nothing taken. */
bool route_counts_take(uint64_t client_id, int32_t limit, int64_t now_ms);
/* The call's start (started=true) or end event arrived here: one slot is released (after a
 * start, once the database's count can have it). */
void route_counts_release(uint64_t client_id, bool started, int64_t now_ms);

#endif
