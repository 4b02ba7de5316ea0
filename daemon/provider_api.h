/* provider_api.h: each provider's REST API for numbers and calls (requests, answers). */
#ifndef CALLROUTED_PROVIDER_API_H
#define CALLROUTED_PROVIDER_API_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "callrouted/e164.h"
#include "routes.h"

/* One request to a provider: method, path (URL-encoded, with query) under the base URL,
 * a JSON body or none, and the auth header. */
struct papi_request {
	const char *method; /* "GET", "POST", "PATCH", "DELETE" (static strings) */
	char path[512];
	json_t *body;         /* owned by the request; NULL: no body */
	char auth_name[32];   /* e.g. "Authorization" */
	char auth_value[512]; /* e.g. "Bearer <key>" (a secret: never log it) */
};
void papi_request_clear(struct papi_request *r); /* frees body; keeps the struct */

/* What the request builders need to know of the account and of us. */
struct papi_ctx {
	const char *api_key;
	const char *webhook_url;    /* ours for this account: <public_url>/v1/webhooks/<p>/<slug> */
	const char *webhook_secret; /* NULL if none */
	const char *slug;
	const char *webhook_credential_id; /* Vapi: the server.credentialId to send; NULL if none */
};

/* A change to a number at the provider: its agent and/or its name. */
struct papi_change {
	bool agent;           /* change the agent binding */
	const char *agent_id; /* the provider's agent id; NULL: unassign */
	bool name;            /* change the name shown in the provider's dashboard */
	const char *nickname; /* NULL or "": none */
};

struct papi_number {
	char e164[E164_BUFSIZE];
	char provider_number_id[128]; /* Vapi's id; Retell and Bland: the number itself */
};

struct papi_call {
	char call_id[128];
};

struct provider_api {
	enum provider_id provider;
	const char *default_base_url; /* "https://api.retellai.com" ... */

	/* Each builder validates its inputs and fills out; false with a message in err. */
	bool (*purchase)(const struct papi_ctx *c, const char *area_code, const char *nickname,
		struct papi_request *out, char *err, size_t errlen);
	/*
	 * Request number step (0, 1, ...) of a change; prev is the 2xx answer to the request of
	 * step - 1 (NULL at step 0).  *last: no request follows this one.  A change with nothing
	 * to send leaves out->method NULL (and *last true).  An unassign keeps our webhook.
	 */
	bool (*update)(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
		const struct papi_change *ch, unsigned step, const char *prev, size_t prev_len,
		struct papi_request *out, bool *last, char *err, size_t errlen);
	/* *unbind_only set when the provider has no release API (Bland): the request unbinds. */
	bool (*release)(const struct papi_ctx *c, const char *e164, const char *provider_number_id,
		struct papi_request *out, bool *unbind_only, char *err, size_t errlen);
	bool (*call)(const struct papi_ctx *c, const char *from_e164,
		const char *from_provider_number_id, const char *to_e164,
		const char *provider_agent_id, struct papi_request *out, char *err, size_t errlen);

	/* An outbound call's context into the body call() built, where the provider takes it:
	 * variables (a string map) and metadata (an object), either NULL; checked before by
	 * papi_check_call_context. */
	bool (*call_context)(json_t *body, json_t *variables, json_t *metadata, char *err,
		size_t errlen);

	/* Parse a 2xx answer.  purchase: the number bought; call: the provider's call id. */
	bool (*parse_number)(const char *body, size_t len, struct papi_number *out, char *err,
		size_t errlen);
	bool (*parse_call)(const char *body, size_t len, struct papi_call *out, char *err,
		size_t errlen);
	/* The provider's own message from an error answer (4xx/5xx), or "" if none. */
	void (*error_message)(const char *body, size_t len, char *out, size_t outlen);

	/*
	 * Listing, for the provider sync (sync.c).  list_* build the request of one page: cursor
	 * NULL or "" for the first, else what parse_* left in next for the one after.  parse_*
	 * append each item of a 2xx page to into (a JSON array), normalised:
	 *   a number: {"e164": "+1..." or null (Vapi, while activating), "id": the provider's id,
	 *              "webhook": the URL the provider calls for it or null, "agents": [the
	 *              provider agent ids it binds: Retell inbound_agents, Bland pathway_id, Vapi
	 *              assistantId], "owner": null or the Vapi field that bypasses our webhook
	 *              ("assistantId", "squadId", "workflowId"), "credential": Vapi
	 *              server.credentialId or null, "name": its name or null}
	 *   an agent:  {"id": the provider's agent id, "name": its name}
	 * and set next to the following page's cursor, or "" when this page was the last (seen:
	 * the array's items so far, for providers paginating by time).
	 */
	bool (*list_numbers)(const struct papi_ctx *c, const char *cursor, struct papi_request *out,
		char *err, size_t errlen);
	bool (*parse_numbers)(const char *body, size_t len, json_t *into, char *next,
		size_t nextlen, char *err, size_t errlen);
	bool (*list_agents)(const struct papi_ctx *c, const char *cursor, struct papi_request *out,
		char *err, size_t errlen);
	bool (*parse_agents)(const char *body, size_t len, json_t *into, char *next, size_t nextlen,
		char *err, size_t errlen);

	/* The longest name the provider documents, in characters; 0: it has no name field. */
	size_t name_max;
	const char *name_field; /* "nickname", "name"; NULL when name_max is 0 */
};

extern const struct provider_api provider_api_retell;
extern const struct provider_api provider_api_vapi;
extern const struct provider_api provider_api_bland;

const struct provider_api *provider_api_get(enum provider_id p);

/* A nickname fits the provider's name field (checked before any provider call); NULL or ""
 * is none.  Names are counted in characters (UTF-8 code points). */
bool papi_check_name(const struct provider_api *pa, const char *nickname, char *err, size_t errlen);

/*
 * The limits of POST /v1/calls' variables and metadata (README, "Admin API"), the same for every
 * provider: variables an object of at most PAPI_VARS_MAX keys, each 1 to 64 of [A-Za-z0-9_]
 * (not starting with a digit: a {{name}} of the agent's prompt), each value a string of at
 * most PAPI_VAR_VALUE_MAX bytes without NUL; metadata an object of at most PAPI_VARS_MAX
 * top-level keys (1 to 64 of [A-Za-z0-9_.-]), any JSON values; each at most
 * PAPI_CONTEXT_BYTES_MAX bytes as compact JSON, both together too.  false with the limit
 * broken, named, in err.
 */
#define PAPI_VARS_MAX 32
#define PAPI_VAR_KEY_MAX 64
#define PAPI_VAR_VALUE_MAX 1024
#define PAPI_CONTEXT_BYTES_MAX 8192
bool papi_check_call_context(json_t *variables, json_t *metadata, char *err, size_t errlen);

/* "+14155550123" -> "%2B14155550123" (for paths). */
bool papi_path_escape(const char *s, char *out, size_t outlen);

#endif
