/* providers/provider.h: the provider and webhook event vocabulary (the bottom layer). */
#ifndef CALLROUTED_PROVIDER_H
#define CALLROUTED_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The registry of providers, one line each: X(ID, name, ops) gives the constant PROVIDER_ID,
 * the name used in webhook paths, the database, the configuration and the metrics, and the
 * provider's ops table (struct provider_ops in providers/registry.h, defined in
 * providers/NAME.c).  The order is the enum's (the snapshot file stores it: append only).
 */
#define PROVIDER_LIST(X)                                                                           \
	X(RETELL, "retell", provider_retell)                                                       \
	X(VAPI, "vapi", provider_vapi)                                                             \
	X(BLAND, "bland", provider_bland)

#define PROVIDER_ENUM_(id, name, ops) PROVIDER_##id,
enum provider_id { PROVIDER_LIST(PROVIDER_ENUM_) PROVIDER_COUNT };
#undef PROVIDER_ENUM_

const char *provider_name(enum provider_id p);
bool provider_from_name(const char *s, size_t len, enum provider_id *out);

/* Webhook events as handled and counted (bounded: whatever else a provider sends is "other"). */
enum webhook_event {
	WE_NONE = 0, /* answered before the event was known (404, 401, 415, ...) */
	WE_CALL_INBOUND,
	WE_CALL_STARTED,
	WE_CALL_ENDED,
	WE_CALL_ANALYZED,
	WE_ASSISTANT_REQUEST,
	WE_STATUS_UPDATE,
	WE_END_OF_CALL_REPORT,
	WE_DYNAMIC_DATA,
	WE_POST_CALL,
	WE_LIVE_EVENT,
	WE_OTHER,
	WE_COUNT
};
const char *webhook_event_name(enum webhook_event e);
/* Routing answers (call_inbound, assistant-request, dynamic_data) versus call events. */
bool webhook_event_is_inbound(enum webhook_event e);

#endif
