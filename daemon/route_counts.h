/* route_counts.h: per-client calls in progress and month-to-date spend, shared lock-free. */
#ifndef CALLROUTED_ROUTE_COUNTS_H
#define CALLROUTED_ROUTE_COUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* A taken slot lasts until the call's start or end event, or this long (from the last arrival
 * of its routing request, when it carries a call id). */
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
/* The figures of a client (agency=false) or agency: false when it has no entry. */
bool route_counts_get(struct policy_figure *f);
/* At start (before the db thread runs): figures saved in the snapshot file. */
void route_counts_restore(const struct policy_figure *f);
/* Bumped whenever a refresh changes a figure (the snapshot is saved again then). */
uint64_t route_counts_changes(void);
/* When the figures were last refreshed from the database (ms; 0: never). */
int64_t route_counts_refreshed_ms(void);

/*
 * The key of a call's slot: a 64-bit hash of the provider and the call id a routing request
 * carries (Retell call_inbound.call_id, Vapi message.call.id) and its events repeat; 0: none
 * (no id, or an empty one).  A provider's retry of the same routing request carries the same id,
 * so it finds the slot its first arrival took (README "Counting across instances").
 */
uint64_t route_counts_call_key(unsigned provider, const char *id, size_t n);

/* What a decision counts at: now (the slots' expiry) and its call's key (0: none; the live slot
 * taken for that call is its own, not another call's). */
struct route_counts_at {
	int64_t now_ms;
	uint64_t call;
};

/* The figures the decision counts against (at: as above, read through the ops' ctx). */
void route_counts_ops(struct policy_counts *out, struct route_counts_at *at);
int32_t route_counts_in_progress_db(uint64_t client_id);
/* The live slots taken here (every call's). */
int32_t route_counts_taken(uint64_t client_id, int64_t now_ms);

enum route_take {
	ROUTE_TAKE_REFUSED = 0, /* the limit is reached: nothing taken */
	ROUTE_TAKE_TAKEN,       /* a slot taken (or the client is not tracked: no limit known) */
	ROUTE_TAKE_REUSED,      /* call's live slot, taken by an earlier arrival: lives 10 s more */
};

/* Take one slot of client's limit for call (0: none), counting the database's figure and every
 * slot taken here; a call with a live slot of its own takes none (ROUTE_TAKE_REUSED). */
enum route_take route_counts_take(uint64_t client_id, int32_t limit, int64_t now_ms, uint64_t call);
/* The call's start (started=true) or end event arrived here: one slot is released (after a
 * start, once the database's count can have it): call's own if it has one (0: none), else the
 * oldest. */
void route_counts_release(uint64_t client_id, bool started, int64_t now_ms, uint64_t call);

#endif
