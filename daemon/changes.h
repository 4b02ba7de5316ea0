/* changes.h: LISTEN/NOTIFY, full and incremental reloads feeding routes.c (db thread). */
#ifndef CALLROUTED_CHANGES_H
#define CALLROUTED_CHANGES_H

#include <stdbool.h>

#include <libpq-fe.h>

struct config;

bool changes_setup(const struct config *cfg);
void changes_cleanup(void);

/* Events from db.c (db thread). */
void changes_connected(void);
void changes_disconnected(void);
void changes_notify(const char *channel, const char *payload);
void changes_result(PGresult *r);      /* each result of the query in flight; caller clears */
void changes_done(bool ok);            /* the query in flight finished (ok: no error result) */
void changes_request_full(void);       /* SIGHUP or timer */
void changes_pump(void);               /* send the next piece of work if the connection is idle */

#endif
