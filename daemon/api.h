/* api.h: the admin API (/v1/numbers, /v1/calls): tokens, scoping, provider calls, database. */
#ifndef CALLROUTED_API_H
#define CALLROUTED_API_H

#include <stdbool.h>

#include <event2/event.h>

struct config;
struct wire_req;

/* On the admin thread's base: its database connection and the provider client. */
bool api_setup(struct event_base *base, const struct config *cfg)
	__attribute__((warn_unused_result));
void api_start(void); /* on the admin thread: connect */
void api_cleanup(void);
/* A request under /v1/ (the admin thread). */
void api_handle(struct wire_req *req);

#endif
