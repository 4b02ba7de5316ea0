/* callrouted/pq_notice.h: what PostgreSQL says outside a query's result, into our log. */
#ifndef CALLROUTED_PQ_NOTICE_H
#define CALLROUTED_PQ_NOTICE_H

#include <libpq-fe.h>

/*
 * libpq prints a notice, a warning, or the FATAL a server sends before it closes an idle
 * connection ("terminating connection due to administrator command") raw to stderr, outside
 * the log's format and unescaped.  pq_notice_install routes them through log_msg instead,
 * escaped, tagged with who (a static string: the connection's name, "migrate"): DEBUG, LOG, INFO
 * and NOTICE at debug; WARNING at warning; ERROR, FATAL and PANIC at info (the connection's loss
 * that follows is what the caller logs as the failure).  Each one counts in pq_notices().
 */
void pq_notice_install(PGconn *conn, const char *who);
unsigned long pq_notices(void);

#endif
