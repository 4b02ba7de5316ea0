/* ctl_progress.c: callroutectl's progress line for long commands (stderr, a terminal only). */
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
