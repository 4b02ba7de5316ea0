/* callrouted/progress_log.h: progress log lines of long work (reload, migrate, journal replay). */
#ifndef CALLROUTED_PROGRESS_LOG_H
#define CALLROUTED_PROGRESS_LOG_H

#include "callrouted/progress.h"

/* One info line "what: done of total unit (pct%), rate unit/s, elapsed s" now. */
void progress_log(const struct progress *p);
/* The closing line "what: done unit in t s (rate unit/s)", only if a progress line was logged. */
void progress_log_end(const struct progress *p);

/* Count done items; logs a progress line when one is due (see callrouted/progress.h). */
static inline void
progress_log_tick(struct progress *p, uint64_t done)
{
	if (progress_due(p, done))
		progress_log(p);
}

#endif
