/* common/progress_log.c: progress log lines of long work (reload, migrate, journal replay). */
#include "callrouted/log.h"
#include "callrouted/progress_log.h"

void
progress_log(const struct progress *p)
{
	char line[256];

	progress_format(p, line, sizeof(line), false);
	log_info("%s", line);
}

void
progress_log_end(const struct progress *p)
{
	char line[256];

	if (!p->reports)
		return;
	progress_format(p, line, sizeof(line), true);
	log_info("%s", line);
}
