/* callrouted/provider.h: the providers and their names (paths, database, config, metrics). */
#ifndef CALLROUTED_PROVIDER_NAMES_H
#define CALLROUTED_PROVIDER_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The registry of providers, one line each: X(ID, name, ops) gives the constant PROVIDER_ID,
 * the name used in webhook paths, the database, the configuration and the metrics, and the
 * daemon's ops table for it (struct provider_ops in daemon/providers/registry.h, defined in
 * daemon/providers/NAME.c; only the daemon expands that column).  The order is the enum's (the
 * snapshot file stores it: append only).
 */
#define PROVIDER_LIST(X)                                                                           \
	X(RETELL, "retell", provider_retell)                                                       \
	X(VAPI, "vapi", provider_vapi)                                                             \
	X(BLAND, "bland", provider_bland)

#define PROVIDER_ENUM_(id, name, ops) PROVIDER_##id,
enum provider_id { PROVIDER_LIST(PROVIDER_ENUM_) PROVIDER_COUNT };
#undef PROVIDER_ENUM_

/* The provider's name ("?" for a value outside the enum). */
const char *provider_name(enum provider_id p);
/* The provider of the name s (len bytes, no NUL needed); false if none is called that. */
bool provider_from_name(const char *s, size_t len, enum provider_id *out);

#endif
