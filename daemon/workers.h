/* workers.h: webhook worker threads: an event_base and evhttp each on SO_REUSEPORT listeners. */
#ifndef CALLROUTED_WORKERS_H
#define CALLROUTED_WORKERS_H

#include <stdbool.h>

#include <event2/event.h>

struct config;

/* Create the workers and bind their listeners (errors are logged: port in use, bad address). */
bool workers_setup(const struct config *cfg) __attribute__((warn_unused_result));
bool workers_start(void) __attribute__((warn_unused_result));
/* Stop the worker loops (each runs flush_ms more for answers on their way) and join them;
 * their servers, waiters and bases stay, so another thread may still post to them. */
void workers_stop(int flush_ms);
/* Free what workers_setup built: after workers_stop, journal_stop and the admin thread's stop (the
 * journal writer completes into the workers' waiters, the admin thread's test hook reads the
 * worker list). */
void workers_cleanup(void);
int workers_count(void);

/* Apply the reloadable keys of config_current() on every worker (max_body_bytes). */
void workers_apply_config(void);
/* Close the listeners (graceful stop): connections in progress are served. */
void workers_stop_accepting(void);
/* Test hook: block a worker's loop for ms (CALLROUTED_TEST_HOOKS=1 only). */
bool workers_debug_stall(int worker, int ms);

/* Bind an evhttp to "host:port" through a listener with the given extra LEV_OPT_ flags. */
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_bound_socket *workers_bind(struct event_base *base, struct evhttp *http,
	const char *addr, unsigned flags) __attribute__((warn_unused_result));

#endif
