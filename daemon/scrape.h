/* scrape.h: the collector above every subsystem: /metrics, the STATUS= line, /readyz. */
#ifndef CALLROUTED_SCRAPE_H
#define CALLROUTED_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;
struct routes_snapshot;

/*
 * Each asks the subsystems for their figures (metrics.c's counters, then one x_stats() call
 * per subsystem, through a stat_fn: stats.h) and renders them; s is the route table the
 * caller holds a read section of (NULL: none loaded yet).
 */

/* Every metric, Prometheus text format 0.0.4, into b. */
void scrape_metrics(struct evbuffer *b, const struct routes_snapshot *s);
/* The systemd STATUS= text (without "STATUS="), with the request rate since the last call
 * (one caller: the main thread's status timer). */
void scrape_status(char *buf, size_t len, const struct routes_snapshot *s);
/* The /readyz answer into b; its HTTP status (200 ready, 503 not; 503 with "stopping":true
 * once a graceful stop began: the load balancer takes this instance out first). */
int scrape_readyz(struct evbuffer *b, const struct routes_snapshot *s, bool stopping);

#endif
