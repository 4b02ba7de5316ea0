/* common/pq_notice.c: PostgreSQL's notices and idle-connection errors, logged and counted. */
#include <stdatomic.h>
#include <string.h>

#include "callrouted/log.h"
#include "callrouted/pq_notice.h"

static atomic_ulong pq_notice_count;

static void
pq_notice_receive(void *arg, const PGresult *r)
{
	const char *who = arg;
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	int level = LOG_LEVEL_DEBUG;

	atomic_fetch_add(&pq_notice_count, 1);
	if (!sev)
		sev = "NOTICE";
	if (strcmp(sev, "WARNING") == 0)
		level = LOG_LEVEL_WARNING;
	else if (strcmp(sev, "ERROR") == 0 || strcmp(sev, "FATAL") == 0 ||
		 strcmp(sev, "PANIC") == 0)
		level = LOG_LEVEL_INFO;
	if (log_current_level < level)
		return;
	if (!msg)
		msg = PQresultErrorMessage(r);
	log_msg(level, "db: %s: the server says %s: %s (SQLSTATE %s)", who, log_esc(sev),
		log_esc(msg), state ? log_esc(state) : "?");
}

void
pq_notice_install(PGconn *conn, const char *who)
{
	if (conn)
		PQsetNoticeReceiver(conn, pq_notice_receive, (void *)who);
}

unsigned long
pq_notices(void)
{
	return atomic_load(&pq_notice_count);
}
