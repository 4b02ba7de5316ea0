/* route_api.h: GET /v1/route (explain a routing decision) and the outbound reservation check. */
#ifndef CALLROUTED_ROUTE_API_H
#define CALLROUTED_ROUTE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The query of GET /v1/route?to=E164&from=E164&at=ISO8601. */
struct route_explain_q {
	uint64_t to, from; /* e164.h keys; from 0: none */
	int64_t at_ms;     /* -1: now */
	bool has_to;
};

void route_explain_q_init(struct route_explain_q *q);
/* One query parameter; false with *why (a static string) when it is not one of its form. */
bool route_explain_param(struct route_explain_q *q, const char *key, const char *value,
	const char **why);
/*
 * Evaluate the call as the webhooks do (policy_decide on the route snapshot in use, the live
 * figures; no slot taken) for a number of agency_id.  Returns the answer's JSON with *status
 * 200, or an error object with *status 400 (no to), 404 (not a number of this agency) or 503
 * (no route table yet).  Admin thread.
 */
json_t *route_explain(const struct route_explain_q *q, uint64_t agency_id, int *status);

/*
 * POST /v1/calls: may agent_id (of agency_id) place an outbound call?  false (why written) when its
 * client has max_concurrent_calls and the call would leave fewer than reserved_inbound_calls slots
 * for inbound; true otherwise (a slot is then taken until the call's start event).
 */
bool route_outbound_allowed(uint64_t agent_id, uint64_t agency_id, char *why, size_t len);

#endif
