/* webhook.h: webhook request handling shared by the providers (dispatch, answers, errors). */
#ifndef CALLROUTED_WEBHOOK_H
#define CALLROUTED_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "policy.h"
#include "providers/registry.h"
#include "routes.h"
#include "callrouted/signature.h"
#include "wire.h"

struct call_event;
struct config;

/* The answer being built: a string builder that starts on the stack (no allocation for the
 * answers of routing webhooks) and grows on the heap if it must. */
struct webhook_out {
	char *p;
	size_t len, cap;
	bool failed;
	char stack[1024];
};

void webhook_out_add(struct webhook_out *o, const char *s, size_t n);
#define webhook_out_lit(o, lit) webhook_out_add((o), (lit), sizeof(lit) - 1)
void webhook_out_u64(struct webhook_out *o, uint64_t v);

/* One webhook request in flight on a worker (lives for the length of the callback). */
struct webhook_req {
	struct wire_req *req;
	const struct config *cfg;
	const struct routes_snapshot *snap;
	const struct route_account *acct;
	const unsigned char *body;
	size_t len;
	json_t *json; /* parsed body (object) */
	bool arena;   /* w->json is in this thread's json arena (json_arena.h) */
	int64_t now_ms;
	bool token_auth; /* authenticated by a token, not a body signature (Bland look-up) */
	int status;      /* answer */
	struct webhook_out *out;       /* answer body (JSON) */
	enum webhook_event event;      /* what the provider said it is (logs, metrics) */
	struct journal_waiter *waiter; /* the worker's, for call events */
	bool deferred;                 /* answered later (when the event is durable) */
	unsigned provider_idx;         /* metrics: provider from the path, or MP_UNKNOWN */
	bool has_replay_key;           /* the request carries a per-request signature */
	bool replayed;                 /* the same signed request acted before, within the window */
	unsigned char replay_key[16];
	uint64_t t0_ns; /* metrics: when the request was fully read */
};

/* Count an answered request (status, event) and its latency since t0_ns. */
void webhook_count(unsigned provider_idx, enum webhook_event event, int status, uint64_t t0_ns);

const char *webhook_header(const struct webhook_req *w, const char *name);

/* Answers. */
void webhook_error(struct webhook_req *w, int status, const char *reason);
void webhook_empty(struct webhook_req *w); /* 200 {} */
/* Append s as a JSON string (quotes and escapes). */
void webhook_json_str(struct webhook_out *b, const char *s);
/* Append the variables object {"agent_name":…,"client_name":…} and the metadata object
 * {"callrouted_agency_id":…,…} of a hit. */
void webhook_json_vars(struct webhook_out *b, const struct route_agent *a);
void webhook_json_meta(struct webhook_out *b, const struct route_agent *a, uint64_t number_id);

/*
 * A call event: validated, attributed and rated by the ledger, appended to the journal with the
 * worker's waiter and answered when it is durable (200) or could not be made so (503); refused
 * with 400 (or 413) if the ledger cannot use it; a replay of a durable one is answered 200.
 */
void webhook_call_event(struct webhook_req *w, const struct call_event *ev);

struct provider_ops;
/* Before a call event is handled: is it a replay of one made durable (w->replayed)?  What
 * webhook_process does before the body is parsed; a fast path handling one does it too. */
void webhook_replay_check(struct webhook_req *w, const struct provider_ops *ops);

/* The worker's completion callback for journal appends (see journal_waiter_new). */
void webhook_journal_done(void *arg, bool durable);

/*
 * Decide an inbound call to number (text of the request) from caller (NULL or not E.164:
 * unknown) now: the number's look-up, then the routing policies (policy.h), a concurrency slot
 * taken when the decision counts against a limit; counted in callrouted_route_decisions_total.
 * call_key: route_counts_call_key of the call id the request carries (0: none); a retry of the
 * same call reuses the live slot its first arrival took (callrouted_route_slot_reuses_total)
 * and is not counted against itself.  On a bad number answers 400 and returns false.
 */
bool webhook_decide(struct webhook_req *w, const char *number, const char *caller,
	uint64_t call_key, struct policy_result *res);
/* route_counts_call_key of a routing request's call id (id NULL or empty: 0). */
uint64_t webhook_call_key(const struct webhook_req *w, const char *id, size_t n);
/* The metadata object of a decision: the ids of webhook_json_meta (those known) and
 * "callrouted_decision", "callrouted_overflow". */
void webhook_json_meta_decision(struct webhook_out *b, const struct policy_result *r);

/* Look up a number given as text in the request; on a bad number answers 400 and returns false. */
bool webhook_route(struct webhook_req *w, const char *number, struct route_answer *ans);

/* Call the handler of the event the parsed body names (w->json, after the signature check);
 * an event the provider's table does not list is acknowledged (200 {}) and counted "other". */
void webhook_dispatch(struct webhook_req *w);

/* The worker's request entry point for /v1/webhooks/... */
struct journal_waiter;
void webhook_handle(struct wire_req *req, const struct config *cfg,
	const struct routes_snapshot *snap, struct journal_waiter *waiter);

#endif
