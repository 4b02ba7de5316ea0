/* changes.h: LISTEN/NOTIFY, full and incremental reloads feeding routes.c (db thread). */
#ifndef CALLROUTED_CHANGES_H
#define CALLROUTED_CHANGES_H

#include <stdbool.h>

struct config;
struct db_conn;

/* Create the routes connection (db thread's base must exist). */
struct db_conn *changes_setup(const struct config *cfg);
void changes_cleanup(void);
/* SIGHUP or timer (db thread). */
void changes_request_full(void);
/* Full reloads finished, well or not (any thread): SIGHUP's READY=1 waits for the next one. */
unsigned long changes_full_reloads_finished(void);

#endif
