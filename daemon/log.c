/* log.c: leveled logging to stderr; libevent's own messages are routed here too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"

_Atomic int log_current_level = LOG_LEVEL_INFO;
static int log_journal; /* stderr goes to journald: use <N> priority prefixes, no timestamps */

static const char *const log_names[] = { "error", "warning", "info", "debug" };
static const int log_syslog_prio[] = { 3, 4, 6, 7 };

static void
log_libevent_cb(int severity, const char *msg)
{
	int level;

	switch (severity) {
	case EVENT_LOG_DEBUG: level = LOG_LEVEL_DEBUG; break;
	case EVENT_LOG_MSG: level = LOG_LEVEL_INFO; break;
	case EVENT_LOG_WARN: level = LOG_LEVEL_WARNING; break;
	default: level = LOG_LEVEL_ERROR; break;
	}
	if (level <= log_current_level)
		log_msg(level, "libevent: %s", msg);
}

void
log_setup(void)
{
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	event_set_log_callback(log_libevent_cb);
}

void
log_set_level(int level)
{
	log_current_level = level;
}

int
log_level_from_name(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, log_names[i]) == 0)
			return i;
	return -1;
}

void
log_msg(int level, const char *fmt, ...)
{
	char line[2048];
	size_t n = 0;
	va_list ap;
	int r;

	if (level > log_current_level)
		return;
	if (log_journal) {
		r = snprintf(line, sizeof(line), "<%d>", log_syslog_prio[level]);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		r = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			tm.tm_sec, ts.tv_nsec / 1000000, log_names[level]);
	}
	if (r > 0)
		n = (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	line[n++] = '\n';
	/* one write per line so lines from several threads do not interleave */
	fwrite(line, 1, n, stderr);
}
