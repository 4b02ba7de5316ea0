/* notify.h: systemd notifications: READY, STATUS, RELOADING, STOPPING and a proving WATCHDOG. */
#ifndef CALLROUTED_NOTIFY_H
#define CALLROUTED_NOTIFY_H

#include <stdbool.h>

#include <event2/event.h>

/* Start the status and watchdog timers on the main loop (watchdog only under WATCHDOG_USEC). */
bool notify_setup(struct event_base *base) __attribute__((warn_unused_result));
void notify_cleanup(void);
void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);

#endif
