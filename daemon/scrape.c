/* scrape.c: the collector above every subsystem: /metrics, the STATUS= line, /readyz. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "loader.h"
#include "db.h"
#include "instances.h"
#include "journal.h"
#include "ledger.h"
#include "metrics.h"
#include "number_changes.h"
#include "policy_db.h"
#include "routes.h"
#include "scrape.h"
#include "sync.h"
#include "stats.h"
#include "wire.h"

/* The renderer behind every x_stats(): HELP and TYPE once per family, then its series. */
struct scrape_out {
	struct evbuffer *b;
	char family[128]; /* the family of the last series */
};

static void
scrape_add(void *ctx, const char *name, const char *help, const char *type, const char *labels,
	const char *value)
{
	struct scrape_out *o = ctx;

	if (strcmp(o->family, name) != 0) {
		evbuffer_add_printf(o->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
		snprintf(o->family, sizeof(o->family), "%s", name);
	}
	if (labels && *labels)
		evbuffer_add_printf(o->b, "%s{%s} %s\n", name, labels, value);
	else
		evbuffer_add_printf(o->b, "%s %s\n", name, value);
}

/* The process_* figures (the names every Prometheus client library uses). */
static void
scrape_process(stat_fn add, void *ctx)
{
	struct rusage ru;
	long pages = 0, rss = 0;
	int fds = 0;
	DIR *d;
	FILE *f;

	getrusage(RUSAGE_SELF, &ru);
	stat_f64(add, ctx, "process_cpu_seconds_total",
		"Total user and system CPU time spent in seconds.", "counter", NULL,
		(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	STAT_GAUGE(add, ctx, "process_resident_memory_bytes", "Resident memory size in bytes.",
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
	STAT_GAUGE(add, ctx, "process_open_fds", "Number of open file descriptors.", fds);
	STAT_GAUGE(add, ctx, "process_max_fds", "Maximum number of open file descriptors.",
		(double)sysconf(_SC_OPEN_MAX));
	STAT_GAUGE(add, ctx, "process_start_time_seconds",
		"Start time of the process since unix epoch in seconds.", metrics_started_at());
}

void
scrape_metrics(struct evbuffer *b, const struct routes_snapshot *s)
{
	struct scrape_out o = { .b = b };
	int64_t active = metrics_active_calls();

	metrics_render(b);
	routes_stats(s, scrape_add, &o);
	wire_stats(WIRE_WEBHOOK, scrape_add, &o);
	wire_stats(WIRE_ADMIN, scrape_add, &o);
	loader_stats(scrape_add, &o);
	policy_db_stats(s, scrape_add, &o);
	db_stats(scrape_add, &o);
	journal_stats(scrape_add, &o);
	ledger_stats(scrape_add, &o);
	number_changes_stats(scrape_add, &o);
	sync_stats(scrape_add, &o);
	instances_stats(scrape_add, &o);
	STAT_GAUGE(scrape_add, &o, "callrouted_active_calls",
		"Calls in progress (started, not ended) in the calls table, all instances.",
		active < 0 ? 0 : (double)active);
	scrape_add(&o, "callrouted_build_info", "Version of this build.", "gauge",
		"version=\"" CALLROUTED_VERSION "\"", "1");
	scrape_process(scrape_add, &o);
}

void
scrape_status(char *buf, size_t len, const struct routes_snapshot *s)
{
	static uint64_t last_requests, last_ns;
	uint64_t now = metrics_now_ns(), total = metrics_webhook_total();
	double rate = last_ns ? (double)(total - last_requests) * 1e9 / (double)(now - last_ns) : 0;
	struct journal_stats js;

	journal_get_stats(&js);
	last_requests = total;
	last_ns = now;
	snprintf(buf, len,
		"%u numbers (generation %" PRIu64 ", %s), %.0f req/s, journal backlog %" PRIu64
		", database %s",
		s ? s->numbers.count : 0, s ? s->generation : 0,
		!s                            ? "not loaded" :
		s->source == ROUTES_FROM_FILE ? "from snapshot" :
						"from database",
		rate, js.pending, loader_db_up() ? "up" : "down");
}

int
scrape_readyz(struct evbuffer *b, const struct routes_snapshot *s, bool stopping)
{
	const char *db = loader_db_up() ? "up" : "down";
	struct journal_stats js;

	journal_get_stats(&js);
	if (stopping) {
		/* shutting down: out of rotation first, while the listener still serves */
		evbuffer_add_printf(b, "{\"ready\":false,\"stopping\":true,\"database\":\"%s\"}",
			db);
		return 503;
	}
	if (!s) {
		evbuffer_add_printf(b, "{\"ready\":false,\"database\":\"%s\"}", db);
		return 503;
	}
	/* ready: routes loaded and the journal writable; a database outage is not a reason to
	 * take this instance out of rotation: it routes and journals */
	evbuffer_add_printf(b,
		"{\"ready\":%s,\"source\":\"%s\",\"generation\":%llu,\"numbers\":%u,"
		"\"loaded_at_ms\":%lld,\"database\":\"%s\",\"journal\":{\"writable\":%s,"
		"\"pending\":%llu,\"bytes\":%llu,\"durable_seq\":%llu,\"checkpoint_seq\":%llu}}",
		js.writable ? "true" : "false",
		s->source == ROUTES_FROM_DATABASE ? "database" : "snapshot",
		(unsigned long long)s->generation, s->numbers.count, (long long)s->loaded_at_ms, db,
		js.writable ? "true" : "false", (unsigned long long)js.pending,
		(unsigned long long)js.bytes_on_disk, (unsigned long long)js.durable_seq,
		(unsigned long long)js.checkpoint_seq);
	return js.writable ? 200 : 503;
}
