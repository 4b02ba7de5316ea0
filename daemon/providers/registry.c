/* providers/registry.c: the only list of provider ops tables (one line each in provider.h). */
#include <string.h>

#include "providers/registry.h"

#define PROVIDER_OPS_(id, name, ops) [PROVIDER_##id] = &ops,
static const struct provider_ops *const provider_registry[PROVIDER_COUNT] = { PROVIDER_LIST(
	PROVIDER_OPS_) };
#undef PROVIDER_OPS_

const struct provider_ops *
provider_ops_get(enum provider_id p)
{
	return (unsigned)p < PROVIDER_COUNT ? provider_registry[p] : NULL;
}

const struct provider_event *
provider_event_find(const struct provider_ops *ops, const char *name)
{
	for (const struct provider_event *e = ops->events; e->name; e++)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}
