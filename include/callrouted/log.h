/* callrouted/log.h: leveled logging to stderr (systemd priority prefixes under journald). */
#ifndef CALLROUTED_LOG_H
#define CALLROUTED_LOG_H

#include <stdarg.h>
#include <stdatomic.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

extern _Atomic int log_current_level; /* SIGHUP sets it while workers read it */

void log_setup(void);
void log_set_level(int level);
int log_level_from_name(const char *s);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Outside text (provider- or client-supplied, a database's message) for a "%s" of a log line,
 * escaped by text_escape (callrouted/text.h): control characters, backslashes and quotes
 * cannot forge a line or a field.  The result lives in one of LOG_ESC_SLOTS buffers of this
 * thread, reused round-robin: use at most LOG_ESC_SLOTS in one log call.  Longer text is cut
 * to LOG_ESC_MAX bytes with "...", and trailing newlines (libpq's messages end in one) are
 * dropped.  log_msg itself also escapes any control character left in
 * a line, so a site that forgets cannot split a line.
 */
#define LOG_ESC_SLOTS 8
#define LOG_ESC_MAX 512
const char *log_esc(const char *s);

/* The level check comes first so disabled messages cost no formatting. */
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...)                                                                           \
	do {                                                                                       \
		if (log_current_level >= LOG_LEVEL_WARNING)                                        \
			log_msg(LOG_LEVEL_WARNING, __VA_ARGS__);                                   \
	} while (0)
#define log_info(...)                                                                              \
	do {                                                                                       \
		if (log_current_level >= LOG_LEVEL_INFO)                                           \
			log_msg(LOG_LEVEL_INFO, __VA_ARGS__);                                      \
	} while (0)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_current_level >= LOG_LEVEL_DEBUG)                                          \
			log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                     \
	} while (0)

#endif
