/* admin.h: the admin listener: /healthz, /readyz (admin API and /metrics come later). */
#ifndef CALLROUTED_ADMIN_H
#define CALLROUTED_ADMIN_H

#include <stdbool.h>

#include <event2/event.h>

struct config;

bool admin_setup(struct event_base *base, const struct config *cfg)
	__attribute__((warn_unused_result));
void admin_cleanup(void);
/* True once a route table is loaded (from the database or the snapshot file). */
bool admin_ready(void);

#endif
