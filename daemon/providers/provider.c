/* providers/provider.c: the names of the webhook events (common/provider.c: the providers'). */
#include <string.h>

#include "providers/provider.h"

static const char *const webhook_event_names[WE_COUNT] = {
	"none",
	"call_inbound",
	"call_started",
	"call_ended",
	"call_analyzed",
	"assistant-request",
	"status-update",
	"end-of-call-report",
	"dynamic_data",
	"post-call",
	"live-event",
	"other",
};

const char *
webhook_event_name(enum webhook_event e)
{
	return (unsigned)e < WE_COUNT ? webhook_event_names[e] : "other";
}

bool
webhook_event_is_inbound(enum webhook_event e)
{
	return e == WE_CALL_INBOUND || e == WE_ASSISTANT_REQUEST || e == WE_DYNAMIC_DATA;
}
