/* providers/provider.h: the provider and webhook event vocabulary (the daemon's bottom layer). */
#ifndef CALLROUTED_PROVIDER_H
#define CALLROUTED_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "callrouted/provider.h"

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
