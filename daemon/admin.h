/* admin.h: the admin listener and its thread: /healthz, /readyz, /metrics, /v1 (api.c). */
#ifndef CALLROUTED_ADMIN_H
#define CALLROUTED_ADMIN_H

#include <stdbool.h>

#include <event2/event.h>

struct config;

/* The admin thread: its own loop serves /healthz, /readyz, /metrics and the /v1 admin API
 * (whose provider calls and database queries run on it, never on a webhook worker). */
bool admin_setup(const struct config *cfg) __attribute__((warn_unused_result));
bool admin_start(void) __attribute__((warn_unused_result));
void admin_cleanup(void);
/* True once a route table is loaded (from the database or, *from_file, the snapshot file).
 * The main thread's (it has its own snapshot reader). */
bool admin_ready(bool *from_file);
/* A graceful stop began: /readyz answers 503 from now on (any thread; main's SIGTERM). */
void admin_set_stopping(void);

#endif
