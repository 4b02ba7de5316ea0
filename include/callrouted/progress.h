/* callrouted/progress.h: the pace of long work (counts, rate, when to report), daemon and tools. */
#ifndef CALLROUTED_PROGRESS_H
#define CALLROUTED_PROGRESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/*
 * A meter of one piece of work: progress_due says when a report is due -- the clock is read
 * once every `every` items, and a report is due only once the work has run for `interval`
 * seconds and `interval` seconds after the previous report (so short work reports nothing,
 * long work one line a second whatever the item rate).  `interval` is 1 s, or
 * CALLROUTED_PROGRESS_INTERVAL (seconds, 0 to 3600; 0: a report at every clock reading, for
 * the tests).
 */
#define PROGRESS_INTERVAL_S 1.0
#define PROGRESS_INTERVAL_ENV "CALLROUTED_PROGRESS_INTERVAL"

struct progress {
	const char *what; /* "routes: full reload" */
	const char *unit; /* "numbers"; NULL: a wait, the time only ("what: 2.0 s") */
	uint64_t total;   /* 0: not known */
	uint64_t done;
	double t0, last, interval;
	unsigned every, left;
	unsigned reports; /* reports made so far */
};

static inline double
progress_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double
progress_interval(void)
{
	const char *s = getenv(PROGRESS_INTERVAL_ENV);
	char *end;
	double v;

	if (!s || !*s)
		return PROGRESS_INTERVAL_S;
	v = strtod(s, &end);
	return *end == '\0' && v >= 0 && v <= 3600 ? v : PROGRESS_INTERVAL_S;
}

static inline void
progress_init(struct progress *p, const char *what, const char *unit, uint64_t total,
	unsigned every)
{
	p->what = what;
	p->unit = unit;
	p->total = total;
	p->done = 0;
	p->t0 = p->last = progress_clock();
	p->interval = progress_interval();
	p->every = every ? every : 1;
	p->left = p->every;
	p->reports = 0;
}

/* The work began `seconds` before progress_init (a query's wait, say). */
static inline void
progress_backdate(struct progress *p, double seconds)
{
	p->t0 -= seconds;
	p->last = p->t0;
}

static inline double
progress_elapsed(const struct progress *p)
{
	return progress_clock() - p->t0;
}

/* done items so far; true: report now. */
static inline bool
progress_due(struct progress *p, uint64_t done)
{
	double now;

	p->done = done;
	if (--p->left > 0)
		return false;
	p->left = p->every;
	now = progress_clock();
	if (now - p->t0 < p->interval || now - p->last < p->interval)
		return false;
	p->last = now;
	p->reports++;
	return true;
}

/* "what: 120000 of 500000 numbers (24%), 95000 numbers/s, 1.3 s" (or "what: 120000 numbers,
 * ..." when the total is not known); final: "what: 500000 numbers in 5.2 s (96000 numbers/s)". */
static inline int
progress_format(const struct progress *p, char *buf, size_t size, bool final)
{
	double t = progress_elapsed(p);
	double rate = t > 0 ? (double)p->done / t : 0;

	if (!p->unit) /* a wait: time only */
		return snprintf(buf, size, final ? "%s: done in %.1f s" : "%s: %.1f s", p->what, t);
	if (final)
		return snprintf(buf, size, "%s: %" PRIu64 " %s in %.1f s (%.0f %s/s)", p->what,
			p->done, p->unit, t, rate, p->unit);
	if (p->total)
		return snprintf(buf, size,
			"%s: %" PRIu64 " of %" PRIu64 " %s (%u%%), %.0f %s/s, %.1f s", p->what,
			p->done, p->total, p->unit,
			(unsigned)(p->done >= p->total ? 100 : p->done * 100 / p->total), rate,
			p->unit, t);
	return snprintf(buf, size, "%s: %" PRIu64 " %s, %.0f %s/s, %.1f s", p->what, p->done,
		p->unit, rate, p->unit, t);
}

#endif
