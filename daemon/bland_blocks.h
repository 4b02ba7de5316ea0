/* bland_blocks.h: blocked_callers pushed to Bland's blocked-numbers API (list, add, remove). */
#ifndef CALLROUTED_BLAND_BLOCKS_H
#define CALLROUTED_BLAND_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "stats.h"

struct config;

/*
 * Bland has no per-call routing webhook, so the blocked_callers rows that apply to a Bland
 * number (the agency's, the client's of its agent, the number's own) are pushed to Bland as
 * block rules of that inbound number (POST /v1/blocked_numbers, is_global false).  Only a
 * prefix that is a whole number can be pushed (Bland blocks exact numbers); a shorter one is
 * reported (sync report, log once, callrouted_bland_blocks_unpushable).  Rules we create carry
 * a reason starting with BB_REASON_TAG; only those are ever removed.
 *
 * Everything runs on the admin thread's loop (libpq async on its own connection, the provider
 * through httpc.c), never on the webhook workers.  It runs after a NOTIFY of a change of
 * blocked_callers, phone_numbers (an assignment), agents, clients or provider_accounts, once
 * after (re)connecting, and in every provider sync of a Bland account (bland_blocks_account,
 * from sync.c: the periodic check retries what failed).
 */
#define BB_REASON_TAG "callrouted:"
#define BB_MAX_PER_REQUEST 10 /* "Maximum 10 numbers per request" */

/* The answer for one account: its report object ({"error": ...} when it could not run),
 * owned by the callee. */
typedef void (*bb_done_fn)(void *arg, json_t *report);

bool bland_blocks_setup(struct event_base *base, const struct config *cfg)
	__attribute__((warn_unused_result));
void bland_blocks_start(void);
void bland_blocks_cleanup(void);

/* Reconcile the account (apply false: compare only); done runs once, on the admin loop,
 * never from within this call. */
void bland_blocks_account(uint64_t account_id, bool apply, bb_done_fn done, void *arg);

/* A blocked_callers prefix Bland can take: a whole E.164 number (what e164_is_canonical
 * accepts; a +1 number has exactly 11 digits). */
bool bland_blocks_pushable(const char *prefix);

void bland_blocks_stats(stat_fn add, void *ctx);

#endif
