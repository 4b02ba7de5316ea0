/* providers/provider.c: the names of the providers and of the webhook events. */
#include <string.h>

#include "providers/provider.h"

#define PROVIDER_NAME_(id, name, ops) [PROVIDER_##id] = name,
static const char *const provider_names[PROVIDER_COUNT] = { PROVIDER_LIST(PROVIDER_NAME_) };
#undef PROVIDER_NAME_

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
provider_name(enum provider_id p)
{
	return (unsigned)p < PROVIDER_COUNT ? provider_names[p] : "?";
}

bool
provider_from_name(const char *s, size_t len, enum provider_id *out)
{
	for (int i = 0; i < PROVIDER_COUNT; i++)
		if (strlen(provider_names[i]) == len && memcmp(s, provider_names[i], len) == 0) {
			*out = (enum provider_id)i;
			return true;
		}
	return false;
}

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
