/* sync.h: the provider sync: list, import, drift, repair; the periodic drift check, its metrics. */
#ifndef CALLROUTED_SYNC_H
#define CALLROUTED_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "stats.h"

struct config;

struct sync_opts {
	bool dry_run;         /* report only: change nothing here or at the provider */
	bool repair;          /* make the provider match us where it drifted (not with dry_run) */
	bool resolve_pending; /* with dry_run: still adopt or fail pending purchases (the
			       * periodic check) */
};

/* The answer of one sync: an HTTP status and its body (a report, or {"error":{...}}), owned
 * by the callee. */
typedef void (*sync_done_fn)(void *arg, int status, json_t *body);

/* On the admin thread's base (after httpc_setup): its own database connection and the timer
 * of the periodic drift check. */
bool sync_setup(struct event_base *base, const struct config *cfg)
	__attribute__((warn_unused_result));
void sync_start(void); /* on the admin thread: connect, arm the timer */
void sync_cleanup(void);

/* Sync the account slug of agency_id (another agency's account is absent: 404).  done runs
 * exactly once, on the admin thread's loop, never from within this call. */
void sync_account(uint64_t agency_id, const char *slug, const struct sync_opts *o,
	sync_done_fn done, void *arg);

/* callrouted_provider_drift{provider,account,kind}, callrouted_provider_sync_* (scrape.c, on
 * the admin thread). */
void sync_stats(stat_fn add, void *ctx);

#endif
