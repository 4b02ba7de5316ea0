/* common/provider.c: the names of the providers. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "callrouted/provider.h"

#define PROVIDER_NAME_(id, name, ops) [PROVIDER_##id] = name,
static const char *const provider_names[PROVIDER_COUNT] = { PROVIDER_LIST(PROVIDER_NAME_) };
#undef PROVIDER_NAME_

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
