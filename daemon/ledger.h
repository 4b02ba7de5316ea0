/* ledger.h: call lifecycle events -> journal -> PostgreSQL (calls, usage_ledger), exactly once. */
#ifndef CALLROUTED_LEDGER_H
#define CALLROUTED_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "routes.h"

struct config;
struct webhook_req;

enum call_kind { CALL_STARTED = 0, CALL_ENDED };
enum call_dir { CALL_DIR_UNKNOWN = 0, CALL_DIR_INBOUND, CALL_DIR_OUTBOUND };

/* A provider's call event, normalised by the providers (strings point into the request). */
struct call_event {
	const char *call_id;           /* the provider's call id: the idempotency key */
	enum call_kind kind;
	enum call_dir dir;
	const char *from, *to;         /* as the provider gave them (may be NULL) */
	const char *provider_agent_id; /* the agent the provider says handled it (may be NULL) */
	int64_t started_ms, ended_ms;  /* ms since epoch, -1 unknown */
	int64_t duration_ms;           /* -1 unknown */
	bool connected;                /* false: never connected, bills nothing */
	bool rated;                    /* an end event with what billing needs (else calls only) */
	const char *end_reason;
};

/*
 * Worker side: attribute the event through the route table as it is now, rate it with its
 * agency's plan, append it to the journal and defer the answer until it is durable: 200 once
 * fsynced, 503 if it could not be written (the provider retries).
 */
void ledger_submit(struct webhook_req *w, const struct call_event *ev);

/* Worker's completion callback for journal appends (see journal_waiter_new). */
void ledger_journal_done(void *arg, bool durable);

/* db thread side: the ledger connection and the drain. */
bool ledger_db_setup(const struct config *cfg);
void ledger_db_cleanup(void);

struct ledger_stats {
	uint64_t rows[PROVIDER_COUNT], billed_seconds[PROVIDER_COUNT],
		amount_micros[PROVIDER_COUNT];
	uint64_t calls_written, batches, batch_failures, unattributed, agent_mismatches,
		events_rejected;
};
void ledger_get_stats(struct ledger_stats *s);

#endif
