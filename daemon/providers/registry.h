/* providers/registry.h: a provider is one ops table: signature, replay key, events, REST API. */
#ifndef CALLROUTED_REGISTRY_H
#define CALLROUTED_REGISTRY_H

#include "providers/provider.h"
#include "callrouted/signature.h"

struct provider_api;
struct webhook_req;

/* One event a provider sends: its name as the provider spells it, what it is counted as, and
 * what answers it (webhook_empty for an event acknowledged and ignored). */
struct provider_event {
	const char *name;
	enum webhook_event event;
	void (*handle)(struct webhook_req *w);
};

struct provider_ops {
	enum provider_id id;
	/* the body's signature or the token, on w->body as received */
	enum sig_result (*verify)(struct webhook_req *w);
	/* the headers that name this one request (a signature over a timestamp or the body), for
	 * replays; *sig stays NULL when the request is authorised by something that names none */
	void (*replay_sig)(const struct webhook_req *w, const char **sig, const char **ts);
	/* the event's name in the parsed body (w->json); NULL: the request is answered (400 when
	 * the body says no event, 401 when its authorisation does not cover it) */
	const char *(*event_name)(struct webhook_req *w);
	const struct provider_event *events; /* ends with a NULL name; others are "other" */
	/* optional, after the signature check: answer a routing request or handle a call event
	 * without building the body's tree (json_scan.h; a call event after
	 * webhook_replay_check, as the tree's path does); false: not handled, the body is
	 * parsed and dispatched */
	bool (*fast)(struct webhook_req *w);
	const struct provider_api *api; /* the provider's REST API (provider_api.h) */
};

#define PROVIDER_OPS_DECL_(id, name, ops) extern const struct provider_ops ops;
PROVIDER_LIST(PROVIDER_OPS_DECL_)
#undef PROVIDER_OPS_DECL_

/* The provider's ops table, or NULL for a value that is not a provider. */
const struct provider_ops *provider_ops_get(enum provider_id p);

/* The entry of the event called name, or NULL (an event the provider's table does not list). */
const struct provider_event *provider_event_find(const struct provider_ops *ops, const char *name);

#endif
