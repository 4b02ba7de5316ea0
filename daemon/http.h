/* http.h: webhook worker threads: an event_base and evhttp each on SO_REUSEPORT listeners. */
#ifndef CALLROUTED_HTTP_H
#define CALLROUTED_HTTP_H

#include <stdbool.h>

#include <event2/event.h>

struct config;

/* Create the workers and bind their listeners (errors are logged: port in use, bad address). */
bool http_setup(const struct config *cfg) __attribute__((warn_unused_result));
bool http_start(void) __attribute__((warn_unused_result));
void http_stop(void);
int http_workers(void);

/* Bind an evhttp to "host:port" through a listener with the given extra LEV_OPT_ flags. */
struct evhttp;
bool http_bind(struct event_base *base, struct evhttp *http, const char *addr, unsigned flags)
	__attribute__((warn_unused_result));

#endif
