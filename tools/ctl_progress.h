/* ctl_progress.h: callroutectl's progress line for long commands (stderr, a terminal only). */
#ifndef CALLROUTECTL_PROGRESS_H
#define CALLROUTECTL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
