/* ctl_progress.c: callroutectl's progress line for long commands (stderr, a terminal only). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "ctl_progress.h"

void
ctl_progress_start(struct ctl_progress *p, const char *what, const char *unit, uint64_t total,
	bool json)
{
	progress_init(&p->m, what, unit, total, 1);
	p->on = !json && isatty(STDERR_FILENO);
	p->drawn = false;
}

void
ctl_progress_update(struct ctl_progress *p, uint64_t done)
{
	char line[256];

	if (!p->on) {
		p->m.done = done;
		return;
	}
	if (!progress_due(&p->m, done))
		return;
	progress_format(&p->m, line, sizeof(line), false);
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	p->drawn = true;
}

void
ctl_progress_end(struct ctl_progress *p)
{
	if (p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->drawn = false;
}

PGresult *
ctl_progress_query(const char *what, bool json, PGconn *conn, const char *sql, int nparams,
	const char *const *params)
{
	struct ctl_progress p;
	PGresult *r, *last = NULL;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return NULL;
	ctl_progress_start(&p, what, NULL, 0, json);
	while (PQisBusy(conn)) {
		struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
		int n = poll(&pfd, 1, 200);

		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && !PQconsumeInput(conn))
			break; /* the connection failed: PQgetResult says so */
		ctl_progress_update(&p, 0);
	}
	ctl_progress_end(&p);
	/* the last result is the query's (a failure, if any, comes as one) */
	while ((r = PQgetResult(conn)) != NULL) {
		PQclear(last);
		last = r;
	}
	return last;
}
