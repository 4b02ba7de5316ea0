/* metrics.c: per-thread counters and histograms, their aggregation and rendering, heartbeats. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "metrics.h"

#define METRICS_MAX_THREADS 128

static struct metrics_thread metrics_orphan = { .name = "other" };
_Thread_local struct metrics_thread *metrics_self = &metrics_orphan;

static struct metrics_thread *metrics_threads[METRICS_MAX_THREADS];
static _Atomic unsigned metrics_nthreads;
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int64_t metrics_active = -1;
static double metrics_start_time;

/* Bucket bounds in ns: 50 µs .. 1 s, fine enough to see a 1 ms p99 target. */
static const uint64_t metrics_bounds_ns[MH_BUCKETS - 1] = {
	50000,
	100000,
	250000,
	500000,
	1000000,
	2500000,
	5000000,
	10000000,
	25000000,
	50000000,
	100000000,
	250000000,
	1000000000,
};
static const char *const metrics_bounds_txt[MH_BUCKETS] = {
	"5e-05",
	"0.0001",
	"0.00025",
	"0.0005",
	"0.001",
	"0.0025",
	"0.005",
	"0.01",
	"0.025",
	"0.05",
	"0.1",
	"0.25",
	"1",
	"+Inf",
};

static const int metrics_codes[MC_CODES - 1] = { 200, 201, 204, 400, 401, 404, 405, 408, 413, 415,
	500, 503 };

size_t
metrics_code_idx(int code)
{
	for (size_t i = 0; i < MC_CODES - 1; i++)
		if (metrics_codes[i] == code)
			return i;
	return MC_CODES - 1;
}

uint64_t
metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
metrics_observe_ns(struct metrics_hist *h, uint64_t ns)
{
	size_t i = 0;

	while (i < MH_BUCKETS - 1 && ns > metrics_bounds_ns[i])
		i++;
	metrics_add(&h->buckets[i], 1);
	metrics_add(&h->count, 1);
	metrics_add(&h->sum_ns, ns);
}

struct metrics_thread *
metrics_thread_register(const char *name, bool beats)
{
	struct metrics_thread *t = metrics_thread_new(name, beats);

	if (t)
		metrics_self = t;
	return t;
}

struct metrics_thread *
metrics_thread_new(const char *name, bool beats)
{
	struct metrics_thread *t = calloc(1, sizeof(*t));
	unsigned n;

	if (!t)
		return NULL;
	t->name = name;
	t->beats = beats;
	pthread_mutex_lock(&metrics_lock);
	if (metrics_start_time == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		metrics_start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	}
	n = atomic_load(&metrics_nthreads);
	if (n == METRICS_MAX_THREADS) {
		pthread_mutex_unlock(&metrics_lock);
		free(t);
		return NULL;
	}
	metrics_threads[n] = t;
	atomic_store(&metrics_nthreads, n + 1);
	pthread_mutex_unlock(&metrics_lock);
	return t;
}

void
metrics_beat(void)
{
	metrics_add(&metrics_self->heartbeat, 1);
}

bool
metrics_all_progressed(char *who, size_t len)
{
	unsigned n = atomic_load(&metrics_nthreads);
	bool ok = true;

	if (len)
		*who = 0;
	for (unsigned i = 0; i < n; i++) {
		struct metrics_thread *t = metrics_threads[i];
		uint64_t hb = atomic_load(&t->heartbeat);

		if (!t->beats)
			continue;
		if (hb == t->seen) {
			if (ok && len)
				snprintf(who, len, "%s", t->name);
			ok = false;
		}
		t->seen = hb;
	}
	return ok;
}

void
metrics_set_active_calls(int64_t n)
{
	atomic_store(&metrics_active, n);
}

int64_t
metrics_active_calls(void)
{
	return atomic_load(&metrics_active);
}

double
metrics_started_at(void)
{
	return metrics_start_time;
}

uint64_t
metrics_webhook_total(void)
{
	unsigned n = atomic_load(&metrics_nthreads);
	uint64_t sum = 0;

	for (unsigned t = 0; t <= n; t++) {
		struct metrics_thread *m = t < n ? metrics_threads[t] : &metrics_orphan;

		for (size_t i = 0; i < MP_COUNT * WE_COUNT * MC_CODES; i++)
			sum += atomic_load_explicit(&m->webhook_requests[i], memory_order_relaxed);
	}
	return sum;
}

/* ---- label printers: `k="v",...` without braces, into buf ---- */

static const char *
metrics_provider(size_t p)
{
	return p < PROVIDER_COUNT ? provider_name((enum provider_id)p) : "unknown";
}

static void
metrics_label_none(char *buf, size_t len, size_t i)
{
	(void)i;
	if (len)
		*buf = 0;
}

static void
metrics_label_provider(char *buf, size_t len, size_t i)
{
	snprintf(buf, len, "provider=\"%s\"", metrics_provider(i));
}

static void
metrics_label_lookup(char *buf, size_t len, size_t i)
{
	snprintf(buf, len, "result=\"%s\"", route_result_name((enum route_result)i));
}

static void
metrics_label_decision(char *buf, size_t len, size_t i)
{
	snprintf(buf, len, "provider=\"%s\",decision=\"%s\"",
		provider_name((enum provider_id)(i / PD_COUNT)),
		policy_decision_name((enum policy_decision)(i % PD_COUNT)));
}

static const char *const metrics_reload_kinds[MR_KINDS] = { "full", "catalog", "numbers" };

static void
metrics_label_reload(char *buf, size_t len, size_t i)
{
	snprintf(buf, len, "kind=\"%s\",result=\"%s\"", metrics_reload_kinds[i / 2],
		i % 2 ? "failed" : "ok");
}

static void
metrics_label_ok_failed(char *buf, size_t len, size_t i)
{
	snprintf(buf, len, "result=\"%s\"", i ? "failed" : "ok");
}

static void
metrics_label_reload_kind(char *buf, size_t len, size_t i)
{
	snprintf(buf, len, "kind=\"%s\"", metrics_reload_kinds[i]);
}

static void
metrics_label_provider_kind(char *buf, size_t len, size_t i)
{
	snprintf(buf, len, "provider=\"%s\",kind=\"%s\"", metrics_provider(i / 2),
		i % 2 ? "event" : "inbound");
}

static void
metrics_label_webhook(char *buf, size_t len, size_t i)
{
	size_t code = i % MC_CODES, ev = (i / MC_CODES) % WE_COUNT, p = i / MC_CODES / WE_COUNT;

	if (code < MC_CODES - 1)
		snprintf(buf, len, "provider=\"%s\",event=\"%s\",code=\"%d\"", metrics_provider(p),
			webhook_event_name((enum webhook_event)ev), metrics_codes[code]);
	else
		snprintf(buf, len, "provider=\"%s\",event=\"%s\",code=\"other\"",
			metrics_provider(p), webhook_event_name((enum webhook_event)ev));
}

/* ---- output ---- */

static void
metrics_head(struct evbuffer *b, const char *name, const char *help, const char *type)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name+suffix, then {labels[,extra]} when there are any */
static void
metrics_series(struct evbuffer *b, const char *name, void (*lab)(char *, size_t, size_t), size_t i,
	const char *suffix, const char *extra)
{
	char labels[256];

	lab(labels, sizeof(labels), i);
	if (!*labels && !extra)
		evbuffer_add_printf(b, "%s%s", name, suffix);
	else
		evbuffer_add_printf(b, "%s%s{%s%s%s}", name, suffix, labels,
			*labels && extra ? "," : "", extra ? extra : "");
}

void
metrics_render(struct evbuffer *b)
{
	unsigned n = atomic_load(&metrics_nthreads);

	/* counters: summed over the threads (and the fallback) */
#define METRICS_OUT(f, size, name, help, lab, sparse)                                              \
	do {                                                                                       \
		metrics_head(b, name, help, "counter");                                            \
		for (size_t i = 0; i < (size); i++) {                                              \
			uint64_t v =                                                               \
				atomic_load_explicit(&metrics_orphan.f[i], memory_order_relaxed);  \
			for (unsigned t = 0; t < n; t++)                                           \
				v += atomic_load_explicit(&metrics_threads[t]->f[i],               \
					memory_order_relaxed);                                     \
			if ((sparse) && v == 0)                                                    \
				continue;                                                          \
			metrics_series(b, name, lab, i, "", NULL);                                 \
			evbuffer_add_printf(b, " %" PRIu64 "\n", v);                               \
		}                                                                                  \
	} while (0);
	METRICS_COUNTERS(METRICS_OUT)
#undef METRICS_OUT

	/* histograms: buckets made cumulative here */
#define METRICS_HOUT(f, size, name, help, lab)                                                     \
	do {                                                                                       \
		metrics_head(b, name, help, "histogram");                                          \
		for (size_t i = 0; i < (size); i++) {                                              \
			uint64_t bk[MH_BUCKETS] = { 0 }, cnt = 0, sum = 0, acc = 0;                \
			for (unsigned t = 0; t <= n; t++) {                                        \
				struct metrics_hist *h =                                           \
					t < n ? &metrics_threads[t]->f[i] : &metrics_orphan.f[i];  \
				for (size_t k = 0; k < MH_BUCKETS; k++)                            \
					bk[k] += atomic_load_explicit(&h->buckets[k],              \
						memory_order_relaxed);                             \
				cnt += atomic_load_explicit(&h->count, memory_order_relaxed);      \
				sum += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);     \
			}                                                                          \
			for (size_t k = 0; k < MH_BUCKETS; k++) {                                  \
				char le[32];                                                       \
				acc += bk[k];                                                      \
				snprintf(le, sizeof(le), "le=\"%s\"", metrics_bounds_txt[k]);      \
				metrics_series(b, name, lab, i, "_bucket", le);                    \
				evbuffer_add_printf(b, " %" PRIu64 "\n", acc);                     \
			}                                                                          \
			metrics_series(b, name, lab, i, "_sum", NULL);                             \
			evbuffer_add_printf(b, " %.9f\n", (double)sum / 1e9);                      \
			metrics_series(b, name, lab, i, "_count", NULL);                           \
			evbuffer_add_printf(b, " %" PRIu64 "\n", cnt);                             \
		}                                                                                  \
	} while (0);
	METRICS_HISTOGRAMS(METRICS_HOUT)
#undef METRICS_HOUT
}
