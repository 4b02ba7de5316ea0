/* db.h: the database thread: one libpq connection driven asynchronously on its own event_base. */
#ifndef CALLROUTED_DB_H
#define CALLROUTED_DB_H

#include <stdbool.h>

#include <event2/event.h>
#include <libpq-fe.h>

struct config;

/* Called on the db thread when the process must stop (e.g. the schema does not match). */
typedef void (*db_fatal_fn)(int exit_code);

bool db_setup(const struct config *cfg, db_fatal_fn fatal) __attribute__((warn_unused_result));
bool db_start(void) __attribute__((warn_unused_result)); /* starts the thread */
void db_stop(void);                                      /* joins the thread, frees all */

/* Any thread. */
bool db_is_up(void);
void db_request_reload(void);
unsigned long db_reconnects(void);

/* ---- for changes.c, on the db thread only ---- */

struct event_base *db_base(void);
/* Send a query (one or more statements, or one statement with text params) on the idle
 * connection; results come to changes_result() then changes_done().  False if not idle. */
bool db_send(const char *sql, int nparams, const char *const *params);
bool db_idle(void);
/* Stop the process with this exit code (logged by the caller). */
void db_fatal(int code);
/* Drop the connection (e.g. a protocol surprise); reconnects after reconnect_interval. */
void db_disconnect(const char *why);

#endif
