/* common/log.c: leveled logging to stderr; libevent's own messages are routed here too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "callrouted/text.h"
#include "callrouted/log.h"

_Atomic int log_current_level = LOG_LEVEL_INFO;
static int log_journal; /* stderr goes to journald: use <N> priority prefixes, no timestamps */

static const char *const log_names[] = { "error", "warning", "info", "debug" };
static const int log_syslog_prio[] = { 3, 4, 6, 7 };

static void
log_libevent_cb(int severity, const char *msg)
{
	int level;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		level = LOG_LEVEL_DEBUG;
		break;
	case EVENT_LOG_MSG:
		level = LOG_LEVEL_INFO;
		break;
	case EVENT_LOG_WARN:
		level = LOG_LEVEL_WARNING;
		break;
	default:
		level = LOG_LEVEL_ERROR;
		break;
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

const char *
log_esc(const char *s)
{
	static _Thread_local char slots[LOG_ESC_SLOTS][LOG_ESC_MAX];
	static _Thread_local unsigned next;
	char *buf = slots[next++ % LOG_ESC_SLOTS];
	size_t n = s ? strlen(s) : 0;

	/* libpq's messages end in a newline: not part of the text */
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	return text_escape_n(s, n, buf, LOG_ESC_MAX);
}

/* Escape control characters in line[from..*n) (one line, whatever the message holds). */
static void
log_guard(char *line, size_t from, size_t *n, size_t size)
{
	char out[2048], e[4];
	size_t o = 0, i;

	for (i = from; i < *n; i++)
		if (text_is_control((unsigned char)line[i]))
			break;
	if (i == *n)
		return;
	for (i = from; i < *n; i++) {
		unsigned char c = (unsigned char)line[i];
		size_t k = 1;

		/* only control characters: quotes and backslashes are the format's own */
		if (text_is_control(c))
			k = text_escape_byte(c, e);
		else
			e[0] = (char)c;
		if (from + o + k > size)
			break;
		memcpy(out + o, e, k);
		o += k;
	}
	memcpy(line + from, out, o);
	*n = from + o;
}

void
log_msg(int level, const char *fmt, ...)
{
	char line[2048];
	size_t n = 0, prefix;
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
		r = snprintf(line, sizeof(line),
			"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			ts.tv_nsec / 1000000, log_names[level]);
	}
	if (r > 0)
		n = (size_t)r;
	prefix = n;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	log_guard(line, prefix, &n, sizeof(line) - 1);
	line[n++] = '\n';
	/* one write per line so lines from several threads do not interleave */
	fwrite(line, 1, n, stderr);
}
