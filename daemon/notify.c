/* notify.c: systemd notifications: READY, STATUS, RELOADING, STOPPING and a proving WATCHDOG. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "callrouted/log.h"
#include "metrics.h"
#include "notify.h"
#include "routes.h"
#include "scrape.h"

#define NOTIFY_STATUS_MS 5000

static struct event *notify_status_ev, *notify_watchdog_ev;
static bool notify_starving; /* a thread showed no progress at the last check */
static struct routes_reader *notify_reader;

static void
notify_status_cb(evutil_socket_t fd, short what, void *arg)
{
	char status[256];

	scrape_status(status, sizeof(status), routes_read_begin(notify_reader));
	routes_read_end(notify_reader);
	sd_notifyf(0, "STATUS=%s", status);
}

/* Ping only while every worker and the db thread have turned their loops since last time. */
static void
notify_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	char who[32];

	if (metrics_all_progressed(who, sizeof(who))) {
		if (notify_starving)
			log_info("watchdog: every thread shows progress again");
		notify_starving = false;
		sd_notify(0, "WATCHDOG=1");
		return;
	}
	if (!notify_starving)
		log_error("watchdog: thread \"%s\" shows no progress; not pinging systemd", who);
	notify_starving = true;
}

bool
notify_setup(struct event_base *base)
{
	struct timeval st = { NOTIFY_STATUS_MS / 1000, 0 };
	uint64_t usec = 0;

	notify_reader = routes_reader_register();
	notify_status_ev = event_new(base, -1, EV_PERSIST, notify_status_cb, NULL);
	if (!notify_reader || !notify_status_ev || event_add(notify_status_ev, &st) != 0)
		return false;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		struct timeval wt = { (time_t)(usec / 2 / 1000000),
			(suseconds_t)(usec / 2 % 1000000) };

		notify_watchdog_ev = event_new(base, -1, EV_PERSIST, notify_watchdog_cb, NULL);
		if (!notify_watchdog_ev || event_add(notify_watchdog_ev, &wt) != 0)
			return false;
		log_info("watchdog: pinging every %" PRIu64 " ms while all threads show progress",
			usec / 2000);
	}
	return true;
}

void
notify_cleanup(void)
{
	if (notify_status_ev)
		event_free(notify_status_ev);
	if (notify_watchdog_ev)
		event_free(notify_watchdog_ev);
	notify_status_ev = notify_watchdog_ev = NULL;
}

void
notify_ready(void)
{
	sd_notify(0, "READY=1");
	notify_status_cb(-1, 0, NULL);
}

void
notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
		(uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

void
notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}
