/* ctl_progress.h: callroutectl's progress line for long commands (stderr, a terminal only). */
#ifndef CALLROUTECTL_PROGRESS_H
#define CALLROUTECTL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "callrouted/progress.h"

/*
 * One line on stderr, rewritten in place ("\r", erase to the end of the line), at most once
 * a second (callrouted/progress.h: nothing for work shorter than that); nothing at all when
 * stderr is not a terminal or the output is --json.  Usage, e.g. for a sync:
 *
 *	struct ctl_progress pr;
 *
 *	ctl_progress_start(&pr, "sync", "numbers", total, ctl_json);   (total 0: not known)
 *	for (...) ctl_progress_update(&pr, done);
 *	ctl_progress_end(&pr);                                  (erases the line, if drawn)
 *
 * pr.m.total may be changed on the way (a total learnt from the first page).
 */
struct ctl_progress {
	struct progress m;
	bool on;    /* stderr is a terminal and not --json */
	bool drawn; /* a line is on the screen */
};

void ctl_progress_start(struct ctl_progress *p, const char *what, const char *unit, uint64_t total,
	bool json);
void ctl_progress_update(struct ctl_progress *p, uint64_t done);
void ctl_progress_end(struct ctl_progress *p);

/*
 * PQexecParams, with "what: 2.0 s" drawn (as above) while PostgreSQL works on it: for a
 * query that can take long (usage over a big range).  The result as PQexecParams returns it
 * (NULL only if the query could not be sent: PQerrorMessage says why).
 */
PGresult *ctl_progress_query(const char *what, bool json, PGconn *conn, const char *sql,
	int nparams, const char *const *params);

#endif
