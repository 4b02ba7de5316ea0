/* number_changes.h: leases, Idempotency-Key and number_events: SQL, checks, counters. */
#ifndef CALLROUTED_NUMBER_CHANGES_H
#define CALLROUTED_NUMBER_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "stats.h"

/*
 * Leases (migration 006, number_change_leases).  A change to a number takes its lease first
 * (nc_lease_sql) and ends with a write that deletes the lease only if it is still its own: a
 * change that outlived its lease writes nothing.  The lease lasts nc_lease_seconds(): two
 * provider requests (the most a change sends) and a margin; before each provider request the
 * change checks that the request can end within it (nc_lease_room), so no request of an
 * expired lease ever reaches the provider after another change took the number over.
 */
#define NC_HOLDER_LEN 32 /* hex characters of a lease holder */
#define NC_LEASE_MARGIN_S 5

unsigned nc_lease_seconds(int provider_timeout_s);
/* The in-flight bound of an idempotency key: a purchase, then a two-request bind. */
unsigned nc_idem_seconds(int provider_timeout_s);
/* 128 random bits as hex (OpenSSL's RAND_bytes); false if the generator failed. */
bool nc_holder_new(char out[NC_HOLDER_LEN + 1]);
/* CLOCK_MONOTONIC, in seconds. */
double nc_now(void);
/* A provider request of timeout_s started now ends before the lease's local deadline. */
bool nc_lease_room(double deadline, int timeout_s);

/*
 * $1 number id, $2 agency id, $3 holder, $4 instance, $5 action ('change'|'release'),
 * $6 lease seconds, $7 token id (NULL: the sync).  One row: number exists in the agency (0/1),
 * lease taken (0/1), and of the lease found before (NULL when none): its instance, its action,
 * whether it had expired, its expiry (ISO 8601 UTC).  Taking over an expired lease records an
 * 'interrupted' event.
 */
extern const char nc_lease_sql[];
/* $1 number id, $2 holder: give the lease back (a change that failed). */
extern const char nc_lease_release_sql[];

/*
 * Idempotency-Key (draft-ietf-httpapi-idempotency-key-header-07, "Idempotency-Key HTTP Request
 * Header Field": https://datatracker.ietf.org/doc/html/draft-ietf-httpapi-idempotency-key-header):
 * the value is an sf-string; we take it bare (as Stripe's clients send it) or in double quotes.
 */
#define NC_KEY_MAX 255

/* The key of a header value into out (NC_KEY_MAX + 1 bytes); false with the reason. */
bool nc_key_parse(const char *value, char *out, size_t outlen, char *err, size_t errlen);
/* Hex SHA-256 of the route ("POST /v1/numbers") and the body in canonical form (keys sorted,
 * compact): the same request however its JSON was spaced or ordered. */
bool nc_request_digest(const char *route, const json_t *body, char hex[65]);

/*
 * $1 agency, $2 key, $3 route, $4 digest (hex), $5 token id, $6 instance, $7 in-flight seconds.
 * One row: claimed (0/1); when not claimed, the row found (NULL when it is not visible yet: a
 * concurrent claim): route, same digest (bool), state, still locked (bool), status, body.
 */
extern const char nc_idem_claim_sql[];
/* $1 agency, $2 key, $3 status, $4 body: the first answer, kept. */
extern const char nc_idem_store_sql[];
/* $1 agency, $2 key: the request never reached the provider: the key is free again. */
extern const char nc_idem_drop_sql[];
/* No parameters: keys past their 24 h. */
extern const char nc_idem_expire_sql[];
#define NC_IDEM_EXPIRE_INTERVAL_S 600

/*
 * number_events.  The API's own final writes insert their events in the same statement as the
 * change (api.c).  Other code (the provider sync) records one with nc_event_sql and the
 * parameters nc_event_params builds: actor 'sync' (token id 0), or a token's id.
 */
struct nc_event {
	uint64_t number_id;
	const char *action; /* lower-case word: buy, assign, unassign, rename, release, ... */
	uint64_t before_agent_id, after_agent_id;     /* 0: none */
	const char *before_nickname, *after_nickname; /* NULL: none */
	uint64_t token_id;                            /* 0: the sync */
	const char *provider_request_id;              /* NULL: none */
	const char *detail;                           /* NULL: none */
};

#define NC_EVENT_NPARAMS 10
/* SELECT number_event_add($1..$10): one row, the event's id (NULL: no such number). */
extern const char nc_event_sql[];
/* params[i] malloc'd (NULL for an SQL NULL); false when out of memory (nothing to free). */
bool nc_event_params(const struct nc_event *e, const char *instance,
	char *params[NC_EVENT_NPARAMS]);
void nc_event_params_free(char *params[NC_EVENT_NPARAMS]);

/* Counters (any thread). */
enum nc_counter {
	NC_LEASE_CONFLICTS,      /* 409: another change holds the number */
	NC_LEASE_TAKEOVERS,      /* an expired lease taken over: a change that did not finish */
	NC_LEASE_LOST,           /* a change that ran out of its lease */
	NC_IDEM_REPLAYS,         /* first answers given again */
	NC_IDEM_INVALID,         /* 400: a malformed key */
	NC_IDEM_MISMATCH,        /* 422: the key with another request */
	NC_IDEM_IN_FLIGHT,       /* 409: the key's first request still running */
	NC_IDEM_UNKNOWN,         /* 409: the key's first request never finished */
	NC_IDEM_RECORD_FAILURES, /* an answer (or a lease release) that could not be written */
	NC_EVENTS,               /* number_events rows the API wrote */
	NC_IDEM_EXPIRED,         /* keys deleted after 24 h */
	NC_COUNTERS
};
void nc_count(enum nc_counter c, uint64_t n);
uint64_t nc_counter_get(enum nc_counter c);
void number_changes_stats(stat_fn add, void *ctx);

#endif
