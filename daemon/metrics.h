/* metrics.h: the counter list, per-thread counters and histograms, their rendering, heartbeats. */
#ifndef CALLROUTED_METRICS_H
#define CALLROUTED_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "providers/provider.h"
#include "routes.h"

struct evbuffer;

enum { MC_CODES = 13 }; /* 200 201 204 400 401 404 405 408 413 415 500 503 other */
size_t metrics_code_idx(int code);
#define MP_UNKNOWN PROVIDER_COUNT /* provider dimension: the path named none of ours */
#define MP_COUNT (PROVIDER_COUNT + 1)
enum { MR_FULL = 0, MR_CATALOG, MR_NUMBERS, MR_KINDS };
enum { MH_BUCKETS = 14 };

/*
 * Every per-thread counter, once: X(field, size, name, help, label printer, sparse).  The list
 * generates the struct, the aggregation and the output (memcached's idea).  A sparse counter
 * prints only its non-zero series (the webhook counter has 4 x 12 x 13 of them).
 */
#define METRICS_COUNTERS(X)                                                                          \
	X(webhook_requests, MP_COUNT *WE_COUNT *MC_CODES, "callrouted_webhook_requests_total",       \
		"Webhook requests answered, by provider, event and status code.",                    \
		metrics_label_webhook, true)                                                         \
	X(webhook_replays, PROVIDER_COUNT, "callrouted_webhook_replays_total",                       \
		"Signed requests seen before within the signature window (call events not "          \
		"journaled again), by provider.",                                                    \
		metrics_label_provider, false)                                                       \
	X(route_lookups, ROUTE_RESULT_COUNT, "callrouted_route_lookups_total",                       \
		"Number look-ups of routing webhooks, by result.", metrics_label_lookup, false)      \
	X(signature_failures, PROVIDER_COUNT, "callrouted_webhook_signature_failures_total",         \
		"Webhooks refused for a missing, malformed, stale or wrong signature, by provider.", \
		metrics_label_provider, false)                                                       \
	X(routes_reloads, MR_KINDS * 2, "callrouted_routes_reloads_total",                           \
		"Route table updates, by kind (full, catalog, numbers) and result.",                 \
		metrics_label_reload, false)                                                         \
	X(thread_priority_failures, 1, "callrouted_thread_priority_failures_total",                  \
		"Background threads (database, snapshot writer) whose nice value could not be "      \
		"lowered (setpriority refused, e.g. by a seccomp filter).",                          \
		metrics_label_none, false)                                                           \
	X(changes_notifications, 1, "callrouted_changes_notifications_total",                        \
		"Change notifications received from PostgreSQL.", metrics_label_none, false)         \
	X(config_reloads, 2, "callrouted_config_reloads_total",                                      \
		"Configuration reloads (SIGHUP), by result (failed: the old one stays).",            \
		metrics_label_ok_failed, false)                                                      \
	X(route_decisions, PROVIDER_COUNT *PD_COUNT, "callrouted_route_decisions_total",             \
		"Routing decisions of inbound webhooks, by provider and decision.",                  \
		metrics_label_decision, true)                                                        \
	X(route_overflows, PROVIDER_COUNT, "callrouted_route_overflow_total",                        \
		"Calls the overflow agent took (hours, cap or limit turned them away), by "          \
		"provider.",                                                                         \
		metrics_label_provider, false)                                                       \
	X(route_slot_reuses, PROVIDER_COUNT, "callrouted_route_slot_reuses_total",                   \
		"Routing requests that reused the live concurrency slot of their call id (a "        \
		"provider's or HAProxy's retry), by provider.",                                      \
		metrics_label_provider, false)                                                       \
	X(policy_reloads, 2, "callrouted_policy_reloads_total",                                      \
		"Routing-policy reloads, by result (failed: the old policies stay).",                \
		metrics_label_ok_failed, false)                                                      \
	X(snapshot_policy_refused, 1, "callrouted_snapshot_policy_refused_total",                    \
		"Snapshot files whose policy section was refused (numbers loaded, no policies).",    \
		metrics_label_none, false)

/* X(field, size, name, help, label printer) */
#define METRICS_HISTOGRAMS(X)                                                                      \
	X(webhook_duration, PROVIDER_COUNT * 2, "callrouted_webhook_duration_seconds",             \
		"Time from a webhook fully read to its answer, by provider and kind (inbound: "    \
		"routing answers; event: call events, durable before the answer).",                \
		metrics_label_provider_kind)                                                       \
	X(routes_reload_duration, MR_KINDS, "callrouted_routes_reload_duration_seconds",           \
		"Duration of route table updates (query, build and publish), by kind.",            \
		metrics_label_reload_kind)                                                         \
	X(journal_fsync_duration, 1, "callrouted_journal_fsync_duration_seconds",                  \
		"Duration of one journal write and fdatasync (one group commit).",                 \
		metrics_label_none)                                                                \
	X(journal_append_duration, 1, "callrouted_journal_append_duration_seconds",                \
		"Time from a call event queued for the journal to it being durable.",              \
		metrics_label_none)

struct metrics_hist {
	_Atomic uint64_t buckets[MH_BUCKETS]; /* cumulative at output, not here */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
};

struct metrics_thread {
#define METRICS_FIELD(f, n, name, help, lab, sparse) _Atomic uint64_t f[n];
	METRICS_COUNTERS(METRICS_FIELD)
#undef METRICS_FIELD
#define METRICS_HFIELD(f, n, name, help, lab) struct metrics_hist f[n];
	METRICS_HISTOGRAMS(METRICS_HFIELD)
#undef METRICS_HFIELD
	_Atomic uint64_t heartbeat; /* the watchdog's proof of progress */
	const char *name;
	bool beats;    /* the watchdog expects heartbeats from this thread */
	uint64_t seen; /* heartbeat at the last watchdog check (main thread) */
};

/* The calling thread's counters (a shared fallback before it registers). */
extern _Thread_local struct metrics_thread *metrics_self;

/* Register the calling thread (before the scrapes start); the struct lives until exit. */
struct metrics_thread *metrics_thread_register(const char *name, bool beats);
/* The same for a thread not yet started: it sets metrics_self = the result itself. */
struct metrics_thread *metrics_thread_new(const char *name, bool beats);

static inline void
metrics_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

#define METRICS_INC(field, idx) metrics_add(&metrics_self->field[(idx)], 1)
void metrics_observe_ns(struct metrics_hist *h, uint64_t ns);
#define METRICS_OBSERVE(field, idx, ns) metrics_observe_ns(&metrics_self->field[(idx)], (ns))

uint64_t metrics_now_ns(void); /* CLOCK_MONOTONIC */

/* Gauges fed by other threads. */
void metrics_set_active_calls(int64_t n);
int64_t metrics_active_calls(void); /* -1 before the first count */
double metrics_started_at(void);    /* unix time of the first registered thread */

/* Render the counters and histograms above (Prometheus text format 0.0.4) into b; the rest
 * of /metrics is scrape.c's. */
void metrics_render(struct evbuffer *b);

/* The watchdog: every registered thread that beats must have beaten since the last call. */
bool metrics_all_progressed(char *who, size_t len);
void metrics_beat(void);

/* Total webhook requests so far (for STATUS= rates). */
uint64_t metrics_webhook_total(void);

#endif
