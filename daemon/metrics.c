/* metrics.c: per-thread counters and histograms, their aggregation and /metrics rendering. */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "changes.h"
#include "db.h"
#include "journal.h"
#include "ledger.h"
#include "metrics.h"
#include "routes.h"
#include "wire.h"

#define METRICS_MAX_THREADS 128

static struct metrics_thread metrics_orphan = { .name = "other" };
_Thread_local struct metrics_thread *metrics_self = &metrics_orphan;

static struct metrics_thread *metrics_threads[METRICS_MAX_THREADS];
static _Atomic unsigned metrics_nthreads;
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int64_t metrics_active_calls = -1;
static double metrics_start_time;

/* Bucket bounds in ns: 50 µs .. 1 s, fine enough to see a 1 ms p99 target. */
static const uint64_t metrics_bounds_ns[MH_BUCKETS - 1] = {
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
	100000000, 250000000, 1000000000,
};
static const char *const metrics_bounds_txt[MH_BUCKETS] = {
	"5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
	"0.05", "0.1", "0.25", "1", "+Inf",
};

static const int metrics_codes[MC_CODES - 1] = { 200, 201, 204, 400, 401, 404, 405, 408, 413,
	415, 500, 503 };

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
	atomic_store(&metrics_active_calls, n);
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
metrics_series(struct evbuffer *b, const char *name, void (*lab)(char *, size_t, size_t),
	size_t i, const char *suffix, const char *extra)
{
	char labels[256];

	lab(labels, sizeof(labels), i);
	if (!*labels && !extra)
		evbuffer_add_printf(b, "%s%s", name, suffix);
	else
		evbuffer_add_printf(b, "%s%s{%s%s%s}", name, suffix, labels,
			*labels && extra ? "," : "", extra ? extra : "");
}

static void
metrics_gauge(struct evbuffer *b, const char *name, const char *help, const char *type,
	double v)
{
	metrics_head(b, name, help, type);
	evbuffer_add_printf(b, "%s %.17g\n", name, v);
}

static void
metrics_counter_u64(struct evbuffer *b, const char *name, const char *help, uint64_t v)
{
	metrics_head(b, name, help, "counter");
	evbuffer_add_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* The HTTP server figures of a wire.c group: callrouted_http_* for the webhook listener,
 * callrouted_admin_http_* for the admin listener (its admin_* keys). */
static void
metrics_wire(struct evbuffer *b, enum wire_group g)
{
	const char *pre = g == WIRE_ADMIN ? "callrouted_admin_http" : "callrouted_http";
	const char *who = g == WIRE_ADMIN ? "Admin" : "Webhook";
	const char *key = g == WIRE_ADMIN ? "admin_" : "";
	char name[96], help[256];
	struct wire_stats ws;

	wire_get_stats(g, &ws);
#define METRICS_WIRE(suffix, ...)                                                                \
	snprintf(name, sizeof(name), "%s_%s", pre, suffix);                                      \
	snprintf(help, sizeof(help), __VA_ARGS__)
	METRICS_WIRE("connections_open", "%s connections open now.", who);
	metrics_gauge(b, name, help, "gauge", (double)ws.open);
	METRICS_WIRE("connections_accepted_total", "%s connections accepted.", who);
	metrics_counter_u64(b, name, help, ws.accepted);
	METRICS_WIRE("connections_refused_total",
		"%s connections refused at %smax_connections (503, closed).", who, key);
	metrics_counter_u64(b, name, help, ws.refused);
	METRICS_WIRE("request_timeouts_total",
		"Requests that did not arrive within %srequest_timeout (408, closed).", key);
	metrics_counter_u64(b, name, help, ws.request_timeouts);
	METRICS_WIRE("idle_closes_total", "Keep-alive connections closed after %skeepalive_timeout.",
		key);
	metrics_counter_u64(b, name, help, ws.idle_closes);
	METRICS_WIRE("body_too_large_total",
		"Requests refused for a body over %smax_body_bytes (413).", key);
	metrics_counter_u64(b, name, help, ws.too_large);
	METRICS_WIRE("headers_too_large_total",
		"Requests refused for a head over %smax_header_bytes (431).", key);
	metrics_counter_u64(b, name, help, ws.headers_too_large);
	METRICS_WIRE("bad_requests_total", "Malformed HTTP requests (400, 501, 505; closed).");
	metrics_counter_u64(b, name, help, ws.bad_requests);
	if (g == WIRE_WEBHOOK)
		metrics_counter_u64(b, "callrouted_http_tls_handshake_failures_total",
			"TLS handshakes that failed on the webhook listener.",
			ws.tls_handshake_failures);
	METRICS_WIRE("accept_errors_total",
		"%s connections not taken for want of descriptors or memory, by reason: emfile, "
		"enfile, other (accept failed: accepting pauses for a moment), reserve (refused "
		"with 503: the last descriptors are kept for the daemon).", who);
#undef METRICS_WIRE
	metrics_head(b, name, help, "counter");
	evbuffer_add_printf(b, "%s{reason=\"emfile\"} %llu\n%s{reason=\"enfile\"} %llu\n"
		"%s{reason=\"other\"} %llu\n%s{reason=\"reserve\"} %llu\n", name, ws.accept_emfile,
		name, ws.accept_enfile, name, ws.accept_other, name, ws.accept_reserve);
}

static void
metrics_process(struct evbuffer *b)
{
	struct rusage ru;
	long pages = 0, rss = 0;
	int fds = 0;
	DIR *d;
	FILE *f;

	getrusage(RUSAGE_SELF, &ru);
	metrics_gauge(b, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
		"counter",
		(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	metrics_gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
		(double)rss * (double)sysconf(_SC_PAGESIZE));
	d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *de;

		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				fds++;
		closedir(d);
		fds--; /* the directory stream itself */
	}
	metrics_gauge(b, "process_open_fds", "Number of open file descriptors.", "gauge", fds);
	metrics_gauge(b, "process_max_fds", "Maximum number of open file descriptors.", "gauge",
		(double)sysconf(_SC_OPEN_MAX));
	metrics_gauge(b, "process_start_time_seconds",
		"Start time of the process since unix epoch in seconds.", "gauge", metrics_start_time);
}

void
metrics_render(struct evbuffer *b)
{
	unsigned n = atomic_load(&metrics_nthreads);
	struct journal_stats js;
	struct ledger_stats ls;
	const struct routes_snapshot *s;
	int64_t active;

	/* counters: summed over the threads (and the fallback) */
#define METRICS_OUT(f, size, name, help, lab, sparse)                                              \
	do {                                                                                         \
		metrics_head(b, name, help, "counter");                                              \
		for (size_t i = 0; i < (size); i++) {                                                \
			uint64_t v = atomic_load_explicit(&metrics_orphan.f[i], memory_order_relaxed); \
			for (unsigned t = 0; t < n; t++)                                              \
				v += atomic_load_explicit(&metrics_threads[t]->f[i],                   \
					memory_order_relaxed);                                           \
			if ((sparse) && v == 0)                                                       \
				continue;                                                             \
			metrics_series(b, name, lab, i, "", NULL);                                    \
			evbuffer_add_printf(b, " %" PRIu64 "\n", v);                                  \
		}                                                                                    \
	} while (0);
	METRICS_COUNTERS(METRICS_OUT)
#undef METRICS_OUT

	/* histograms: buckets made cumulative here */
#define METRICS_HOUT(f, size, name, help, lab)                                                     \
	do {                                                                                         \
		metrics_head(b, name, help, "histogram");                                            \
		for (size_t i = 0; i < (size); i++) {                                                \
			uint64_t bk[MH_BUCKETS] = { 0 }, cnt = 0, sum = 0, acc = 0;                   \
			for (unsigned t = 0; t <= n; t++) {                                           \
				struct metrics_hist *h = t < n ? &metrics_threads[t]->f[i] :           \
								 &metrics_orphan.f[i];                  \
				for (size_t k = 0; k < MH_BUCKETS; k++)                                \
					bk[k] += atomic_load_explicit(&h->buckets[k],                  \
						memory_order_relaxed);                                   \
				cnt += atomic_load_explicit(&h->count, memory_order_relaxed);          \
				sum += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);         \
			}                                                                             \
			for (size_t k = 0; k < MH_BUCKETS; k++) {                                     \
				char le[32];                                                           \
				acc += bk[k];                                                          \
				snprintf(le, sizeof(le), "le=\"%s\"", metrics_bounds_txt[k]);           \
				metrics_series(b, name, lab, i, "_bucket", le);                         \
				evbuffer_add_printf(b, " %" PRIu64 "\n", acc);                          \
			}                                                                             \
			metrics_series(b, name, lab, i, "_sum", NULL);                                \
			evbuffer_add_printf(b, " %.9f\n", (double)sum / 1e9);                         \
			metrics_series(b, name, lab, i, "_count", NULL);                              \
			evbuffer_add_printf(b, " %" PRIu64 "\n", cnt);                                \
		}                                                                                    \
	} while (0);
	METRICS_HISTOGRAMS(METRICS_HOUT)
#undef METRICS_HOUT

	/* gauges and counters kept by their subsystems */
	s = routes_current();
	metrics_gauge(b, "callrouted_routes_entries", "Numbers in the route table.", "gauge",
		s ? s->numbers.count : 0);
	metrics_gauge(b, "callrouted_routes_generation", "Generation of the route table.", "gauge",
		s ? (double)s->generation : 0);
	metrics_gauge(b, "callrouted_routes_last_reload_timestamp_seconds",
		"When the route table in use was built (unix time).", "gauge",
		s ? (double)s->loaded_at_ms / 1000.0 : 0);
	metrics_gauge(b, "callrouted_routes_from_snapshot",
		"1 while routing from the snapshot file of an earlier run, 0 from the database.",
		"gauge", s && s->source == ROUTES_FROM_FILE ? 1 : 0);
	metrics_gauge(b, "callrouted_routes_table_bytes", "Bytes of the number hash table.",
		"gauge", s ? (double)route_table_bytes(&s->numbers) : 0);
	metrics_wire(b, WIRE_WEBHOOK);
	metrics_wire(b, WIRE_ADMIN);
	metrics_gauge(b, "callrouted_db_up", "1 while the routes connection to PostgreSQL is up.",
		"gauge", changes_db_up() ? 1 : 0);
	metrics_counter_u64(b, "callrouted_db_reconnects_total",
		"Connections to PostgreSQL made again after a failure or a loss.", db_reconnects());

	journal_get_stats(&js);
	metrics_gauge(b, "callrouted_journal_records_pending",
		"Durable call events not yet in PostgreSQL.", "gauge", (double)js.pending);
	metrics_gauge(b, "callrouted_journal_bytes", "Bytes of journal segments on disk.", "gauge",
		(double)js.bytes_on_disk);
	metrics_gauge(b, "callrouted_journal_writable",
		"0 after a failed journal write until one succeeds.", "gauge", js.writable ? 1 : 0);
	metrics_counter_u64(b, "callrouted_journal_appends_total",
		"Call events made durable in the journal.", js.appends);
	metrics_counter_u64(b, "callrouted_journal_append_failures_total",
		"Call events that could not be made durable (answered 503).", js.append_failures);
	metrics_counter_u64(b, "callrouted_journal_fsyncs_total",
		"Group commits (one write and fdatasync each).", js.fsyncs);
	metrics_counter_u64(b, "callrouted_journal_torn_records_total",
		"Torn tails (a write a crash cut short) found when replaying the journal.",
		js.torn_records);
	metrics_counter_u64(b, "callrouted_journal_corrupt_records_total",
		"Journal records lost to damage (checksum or framing), each skipped by itself.",
		js.corrupt_records);
	metrics_counter_u64(b, "callrouted_journal_quarantined_segments_total",
		"Damaged journal segments set aside in quarantine/ (moved once drained).",
		js.quarantined_segments);
	metrics_counter_u64(b, "callrouted_journal_quarantine_failures_total",
		"Moves of a damaged segment to quarantine/ that failed (retried).",
		js.quarantine_failures);
	metrics_counter_u64(b, "callrouted_journal_checkpoint_resets_total",
		"Journal checkpoints unreadable or ahead of the journal: drained from the start.",
		js.checkpoint_resets);
	metrics_counter_u64(b, "callrouted_journal_checkpoint_failures_total",
		"Journal checkpoint writes that failed.", js.checkpoint_failures);

	ledger_get_stats(&ls);
	metrics_head(b, "callrouted_ledger_rows_total",
		"Rows inserted into usage_ledger by this instance, by provider.", "counter");
	for (int p = 0; p < PROVIDER_COUNT; p++)
		evbuffer_add_printf(b, "callrouted_ledger_rows_total{provider=\"%s\"} %" PRIu64 "\n",
			provider_name((enum provider_id)p), ls.rows[p]);
	metrics_head(b, "callrouted_ledger_billed_seconds_total",
		"Billed seconds of the rows inserted into usage_ledger, by provider.", "counter");
	for (int p = 0; p < PROVIDER_COUNT; p++)
		evbuffer_add_printf(b,
			"callrouted_ledger_billed_seconds_total{provider=\"%s\"} %" PRIu64 "\n",
			provider_name((enum provider_id)p), ls.billed_seconds[p]);
	metrics_head(b, "callrouted_ledger_amount_micros_total",
		"Amount in micro-dollars of the rows inserted into usage_ledger, by provider.",
		"counter");
	for (int p = 0; p < PROVIDER_COUNT; p++)
		evbuffer_add_printf(b,
			"callrouted_ledger_amount_micros_total{provider=\"%s\"} %" PRIu64 "\n",
			provider_name((enum provider_id)p), ls.amount_micros[p]);
	metrics_counter_u64(b, "callrouted_ledger_calls_written_total",
		"Rows inserted or updated in calls.", ls.calls_written);
	metrics_counter_u64(b, "callrouted_ledger_batches_total",
		"Batches of journal records committed to PostgreSQL.", ls.batches);
	metrics_counter_u64(b, "callrouted_ledger_batch_failures_total",
		"Batches PostgreSQL refused or failed (retried).", ls.batch_failures);
	metrics_counter_u64(b, "callrouted_ledger_unattributed_total",
		"Call events on numbers the platform does not know (recorded, billed to no one).",
		ls.unattributed);
	metrics_counter_u64(b, "callrouted_ledger_agent_mismatches_total",
		"Call events whose provider agent is not the number's assigned agent.",
		ls.agent_mismatches);
	metrics_counter_u64(b, "callrouted_ledger_rejected_total",
		"Call events refused at the webhook or kept in ledger_rejects (refused by the "
		"database).", ls.events_rejected);
	metrics_head(b, "callrouted_ledger_events_invalid_total",
		"Call events refused with 400/413 before they were journaled, by provider and reason.",
		"counter");
	for (int p = 0; p < PROVIDER_COUNT; p++)
		for (int r = 0; r < LEDGER_INVALID_COUNT; r++)
			evbuffer_add_printf(b,
				"callrouted_ledger_events_invalid_total{provider=\"%s\",reason=\"%s\"} "
				"%" PRIu64 "\n", provider_name((enum provider_id)p),
				ledger_invalid_name((enum ledger_invalid)r), ls.invalid[p][r]);
	metrics_head(b, "callrouted_ledger_unpriced_total",
		"Connected calls that ended with no duration (recorded in calls, not billed), by "
		"provider.", "counter");
	for (int p = 0; p < PROVIDER_COUNT; p++)
		evbuffer_add_printf(b, "callrouted_ledger_unpriced_total{provider=\"%s\"} %" PRIu64
			"\n", provider_name((enum provider_id)p), ls.unpriced[p]);
	metrics_counter_u64(b, "callrouted_ledger_rejects_total",
		"Journal records PostgreSQL refused (SQLSTATE class 22/23), kept in ledger_rejects.",
		ls.rejects);
	metrics_counter_u64(b, "callrouted_ledger_reject_failures_total",
		"Refused journal records that could not be kept in ledger_rejects (retried).",
		ls.reject_failures);
	metrics_counter_u64(b, "callrouted_ledger_duration_disagreements_total",
		"Later end events whose duration differs from the one billed (the first is kept).",
		ls.duration_disagreements);
	active = atomic_load(&metrics_active_calls);
	metrics_gauge(b, "callrouted_active_calls",
		"Calls in progress (started, not ended) in the calls table, all instances.", "gauge",
		active < 0 ? 0 : (double)active);

	metrics_head(b, "callrouted_build_info", "Version of this build.", "gauge");
	evbuffer_add_printf(b, "callrouted_build_info{version=\"%s\"} 1\n", CALLROUTED_VERSION);
	metrics_process(b);
}
