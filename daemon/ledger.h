/* ledger.h: call events: the worker step (attribute, rate, encode) and the drain, exactly once. */
#ifndef CALLROUTED_LEDGER_H
#define CALLROUTED_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "routes.h"
#include "stats.h"

struct config;

enum call_kind { CALL_STARTED = 0, CALL_ENDED };
enum call_dir { CALL_DIR_UNKNOWN = 0, CALL_DIR_INBOUND, CALL_DIR_OUTBOUND };

/* A provider's call event, normalised by the providers (strings point into the request). */
struct call_event {
	const char *call_id; /* the provider's call id: the idempotency key */
	enum call_kind kind;
	enum call_dir dir;
	const char *from, *to;         /* as the provider gave them (may be NULL) */
	const char *provider_agent_id; /* the agent the provider says handled it (may be NULL) */
	int64_t started_ms, ended_ms;  /* ms since epoch, -1 unknown */
	int64_t duration_ms;           /* -1 unknown */
	bool connected;                /* false: never connected, bills nothing */
	bool rated;                    /* an end event with what billing needs (else calls only) */
	const char *end_reason;
	const char *invalid; /* set by the parser: a field present but unusable (why) */
	bool priced_later;   /* an end the provider prices in a later event (Vapi) */
};

/*
 * What ledger_validate accepts (anything else is answered 400 before it is journaled, so the
 * drain never meets a record PostgreSQL refuses): call id 1..256 bytes, numbers and the
 * provider agent id up to 128 / 256 bytes (an end reason is cut to 1024), times within years
 * 2000..2099 UTC, durations (given, or end - start) 0..48 h, the end not before the start.
 */
#define LEDGER_MAX_CALL_ID 256
#define LEDGER_MAX_NUMBER 128
#define LEDGER_MAX_AGENT_ID 256
#define LEDGER_MAX_END_REASON 1024
#define LEDGER_MIN_TIME_MS INT64_C(946684800000)  /* 2000-01-01T00:00:00Z */
#define LEDGER_MAX_TIME_MS INT64_C(4102444800000) /* 2100-01-01T00:00:00Z, excluded */

/* Why an event was refused at the webhook (the reason label of events_invalid). */
enum ledger_invalid {
	LEDGER_INVALID_CALL_ID = 0,  /* missing or too long */
	LEDGER_INVALID_FIELD_LENGTH, /* a number or the agent id too long */
	LEDGER_INVALID_BAD_VALUE,    /* a field present but unusable (a negative number) */
	LEDGER_INVALID_TIME_RANGE,   /* a time outside 2000..2099 */
	LEDGER_INVALID_DURATION,     /* above 48 h */
	LEDGER_INVALID_END_BEFORE_START,
	LEDGER_INVALID_UNRATEABLE, /* the agency's plan cannot price it */
	LEDGER_INVALID_TOO_LARGE,  /* the record does not fit a journal record */
	LEDGER_INVALID_COUNT
};
const char *ledger_invalid_name(enum ledger_invalid r);

/*
 * Worker side, a pure step (no HTTP, no journal): what a refused event is answered.  status is
 * 400 (the event is unusable: the provider must not retry), 413 (too large to journal) or 503
 * (out of memory: the provider retries); reason is the answer's text (a static string).
 */
struct ledger_result {
	int status;
	const char *reason;
	size_t len; /* ledger_encode: the record's length in the caller's buffer */
};

/* Check the event against what the drain will write (the limits above); a refusal is logged
 * and counted (events_invalid) here. */
bool ledger_validate(const struct route_account *acct, const struct call_event *ev,
	struct ledger_result *res) __attribute__((warn_unused_result));

/*
 * Attribute a validated event through the route snapshot as it is now (inbound calls by the
 * number called, outbound ones by the number calling; a number of another account is unknown),
 * rate it with its agency's plan and encode the journal record into buf[cap] (the record is
 * not NUL-terminated; res->len says its length).  now_ms is when the event arrived.
 */
bool ledger_encode(const struct routes_snapshot *snap, const struct route_account *acct,
	const struct call_event *ev, int64_t now_ms, char *buf, size_t cap,
	struct ledger_result *res) __attribute__((warn_unused_result));

/* db thread side: the ledger connection and the drain. */
bool ledger_db_setup(const struct config *cfg);
void ledger_db_cleanup(void);

struct ledger_stats {
	uint64_t rows[PROVIDER_COUNT], billed_seconds[PROVIDER_COUNT],
		amount_micros[PROVIDER_COUNT];
	uint64_t calls_written, batches, batch_failures, unattributed, agent_mismatches,
		events_rejected;
	uint64_t invalid[PROVIDER_COUNT][LEDGER_INVALID_COUNT];
	uint64_t rejects, reject_failures, duration_disagreements;
	uint64_t unpriced[PROVIDER_COUNT];
};
void ledger_get_stats(struct ledger_stats *s);

/* The callrouted_ledger_* figures, through add (scrape.c). */
void ledger_stats(stat_fn add, void *ctx);

#endif
