/* webhook.h: webhook request handling shared by the providers (dispatch, answers, errors). */
#ifndef CALLROUTED_WEBHOOK_H
#define CALLROUTED_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "routes.h"
#include "signature.h"
#include "wire.h"

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
	json_t *json;          /* parsed body (object) */
	int64_t now_ms;
	bool token_auth;       /* authenticated by a token, not a body signature (Bland look-up) */
	int status;            /* answer */
	struct webhook_out *out; /* answer body (JSON) */
	const char *event;     /* event name for logs */
	struct journal_waiter *waiter; /* the worker's, for call events */
	bool deferred;         /* answered later (when the event is durable) */
	unsigned provider_idx; /* metrics: provider from the path, or MP_UNKNOWN */
	bool has_replay_key;   /* the request carries a per-request signature */
	bool replayed;         /* the same signed request acted before, within the window */
	unsigned char replay_key[16];
	uint64_t t0_ns;        /* metrics: when the request was fully read */
};

/* Count an answered request (status, event) and its latency since t0_ns. */
void webhook_count(unsigned provider_idx, const char *event, int status, uint64_t t0_ns);

struct provider_ops {
	const char *name;
	enum sig_result (*verify)(struct webhook_req *w);
	void (*handle)(struct webhook_req *w);
};

extern const struct provider_ops provider_retell;
extern const struct provider_ops provider_vapi;
extern const struct provider_ops provider_bland;

const char *webhook_header(const struct webhook_req *w, const char *name);

/* Answers. */
void webhook_error(struct webhook_req *w, int status, const char *reason);
void webhook_empty(struct webhook_req *w);   /* 200 {} */
/* Append s as a JSON string (quotes and escapes). */
void webhook_json_str(struct webhook_out *b, const char *s);
/* Append the variables object {"agent_name":…,"client_name":…} and the metadata object
 * {"callrouted_agency_id":…,…} of a hit. */
void webhook_json_vars(struct webhook_out *b, const struct route_agent *a);
void webhook_json_meta(struct webhook_out *b, const struct route_agent *a, uint64_t number_id);

/* Look up a number given as text in the request; on a bad number answers 400 and returns false. */
bool webhook_route(struct webhook_req *w, const char *number, struct route_answer *ans);

/* The worker's request entry point for /v1/webhooks/... */
struct journal_waiter;
void webhook_handle(struct wire_req *req, const struct config *cfg,
	const struct routes_snapshot *snap, struct journal_waiter *waiter);

#endif
