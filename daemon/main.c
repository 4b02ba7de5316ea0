/* main.c: command line, start-up order, signals, reload, graceful stop and the main loop. */
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "admin.h"
#include "loader.h"
#include "callrouted/config.h"
#include "db.h"
#include "workers.h"
#include "instances.h"
#include "journal.h"
#include "ledger.h"
#include "callrouted/log.h"
#include "metrics.h"
#include "callrouted/migrate.h"
#include "notify.h"
#include "policy_db.h"
#include "routes.h"
#include "snapshot.h"
#include "statelock.h"
#include "tls.h"

#define MAIN_STOP_GRACE_MS 5000 /* at most this long for in-flight events on SIGTERM */
#define MAIN_FLUSH_MS 200       /* then this long for their answers to leave */

static struct event_base *main_base;
static struct event *main_fatal_ev, *main_stop_ev;
static struct event *main_delay_ev; /* shutdown_delay: not ready, still serving */
static bool main_stopping;          /* a graceful stop began: no READY=1, no reload */
static atomic_int main_exit_code;
static bool main_notified_ready;
static const char *main_conf_path;
static int main_stop_waited_ms;
static struct event *main_reload_ev;   /* waits for the route reload of a SIGHUP */
static unsigned long main_reload_mark; /* full reloads finished when it was asked */
static int main_reload_waited_ms;

#define MAIN_RELOAD_WAIT_MS 30000

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: callrouted -c FILE [--check-config | --migrate]\n"
		"       callrouted --version | --help\n"
		"\n"
		"  -c, --config FILE   configuration file (key = value lines)\n"
		"      --check-config  validate the configuration and exit\n"
		"      --migrate       apply pending database migrations and exit\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"signals: SIGHUP reloads the configuration and the route table; SIGTERM stops\n"
		"gracefully (/readyz 503, listeners closed after shutdown_delay, events answered)\n"
		"\n"
		"configuration keys (default, meaning):\n");
	config_print_keys(f);
}

/* Called from the db thread. */
static void
main_fatal(int code)
{
	atomic_store(&main_exit_code, code);
	event_active(main_fatal_ev, EV_TIMEOUT, 0);
}

static void
main_fatal_cb(evutil_socket_t fd, short what, void *arg)
{
	log_error("main: stopping after a fatal error");
	event_base_loopbreak(main_base);
}

/* Graceful stop: listeners closed; wait (bounded) until the journal holds nothing. */
static void
main_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, 20000 };

	if (journal_idle() || main_stop_waited_ms >= MAIN_STOP_GRACE_MS) {
		if (!journal_idle())
			log_warning("main: journal still busy after %d ms; stopping anyway",
				main_stop_waited_ms);
		event_base_loopbreak(main_base);
		return;
	}
	main_stop_waited_ms += 20;
	evtimer_add(main_stop_ev, &tv);
}

/* READY=1 once the route reload a SIGHUP asked for has finished (or cannot: database down,
 * or 30 s passed), as systemd's reload protocol means "reload done". */
static void
main_reload_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, 50000 };

	if (loader_full_reloads_finished() != main_reload_mark || !loader_db_up() ||
		main_reload_waited_ms >= MAIN_RELOAD_WAIT_MS) {
		if (main_reload_waited_ms >= MAIN_RELOAD_WAIT_MS)
			log_warning("main: route reload still running after %d ms",
				MAIN_RELOAD_WAIT_MS);
		if (!main_stopping) /* STOPPING=1 was said: no READY=1 after it */
			notify_ready();
		return;
	}
	main_reload_waited_ms += 50;
	evtimer_add(main_reload_ev, &tv);
}

static void
main_reload(void)
{
	const struct config *old = config_current();
	struct timeval now = { 0, 0 };
	struct config *cfg;

	notify_reloading();
	cfg = config_load(main_conf_path);
	if (!cfg) {
		METRICS_INC(config_reloads, 1);
		log_error("main: configuration \"%s\" is invalid; keeping the one in force",
			main_conf_path);
	} else {
		METRICS_INC(config_reloads, 0);
		config_reconcile(old, cfg);
		tls_reload(cfg->tls_cert_file, cfg->tls_key_file);
		log_set_level(cfg->log_level);
		config_publish(cfg);
		workers_apply_config();
		log_info("main: configuration reloaded");
	}
	main_reload_mark = loader_full_reloads_finished();
	main_reload_waited_ms = 0;
	loader_request_reload();
	evtimer_del(main_reload_ev);
	evtimer_add(main_reload_ev, &now);
}

/* After shutdown_delay: close the listeners, then wait for the journal (main_stop_cb). */
static void
main_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval now = { 0, 0 };

	log_info("main: closing the listeners");
	workers_stop_accepting();
	evtimer_add(main_stop_ev, &now);
}

/*
 * A graceful stop, in the order a load balancer needs: STOPPING=1 and /readyz 503 first, the
 * webhook listener serving on for shutdown_delay (the balancer's health checks see the 503
 * and send nothing new here), then the listeners close and what is in flight drains.  No
 * delay for an instance that never had a route table (its /readyz never said 200).
 */
static void
main_begin_stop(void)
{
	int64_t delay = config_current()->shutdown_delay_ms;
	struct timeval tv;

	main_stopping = true;
	admin_set_stopping(); /* /readyz says 503 before STOPPING=1 tells anyone */
	notify_stopping();
	if (delay > 0 && !admin_ready(NULL))
		delay = 0;
	if (delay > 0)
		log_info("main: /readyz now answers 503; serving %lld ms more before closing the "
			 "listeners (shutdown_delay)",
			(long long)delay);
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(main_delay_ev, &tv);
}

static void
main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	static int terms;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		if (terms++ > 0) {
			log_warning("main: second %s, exiting at once", strsignal((int)sig));
			_exit(1);
		}
		log_info("main: %s, shutting down", strsignal((int)sig));
		main_begin_stop();
		break;
	case SIGHUP:
		if (main_stopping) {
			log_info("main: SIGHUP while stopping: ignored");
			break;
		}
		log_info("main: SIGHUP, reloading the configuration and the route table");
		main_reload();
		break;
	}
}

/* Housekeeping every 100 ms: free retired snapshots, tell systemd once we are ready. */
static void
main_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	bool from_file = false;

	metrics_beat();
	routes_reclaim();
	if (!main_notified_ready && !main_stopping && admin_ready(&from_file)) {
		main_notified_ready = true;
		log_info("main: ready (routes from %s)",
			from_file ? "the snapshot file" : "the database");
		notify_ready();
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "migrate", no_argument, NULL, 'm' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		/* hidden: the key list of callrouted.conf(5), for the build (conf/man/gen.cmake) */
		{ "print-config-man", no_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	bool check = false, migrate = false;
	struct config *cfg = NULL;
	struct event *sig_ev[3] = { NULL }, *tick_ev = NULL;
	struct routes_snapshot *snap;
	struct timeval tick = { 0, 100000 };
	const char *step = "the event loop";
	int c, code = 1;

	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			main_conf_path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'm':
			migrate = true;
			break;
		case 'V':
			printf("callrouted %s\n", CALLROUTED_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'M':
			config_print_man(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!main_conf_path || optind != argc || (check && migrate)) {
		usage(stderr);
		return 2;
	}
	log_setup();
	cfg = config_load(main_conf_path);
	if (!cfg)
		return 1;
	log_set_level(cfg->log_level);
	if (check) {
		printf("%s: configuration is valid\n", main_conf_path);
		config_free(cfg);
		return 0;
	}
	if (migrate) {
		code = migrate_run(cfg->database_url) ? 0 : 1;
		config_free(cfg);
		return code;
	}
	config_publish(cfg);

	log_info("main: callrouted %s starting (instance %s)", CALLROUTED_VERSION,
		cfg->instance_name);
	signal(SIGPIPE, SIG_IGN);
	metrics_thread_register("main", false);
	if (evthread_use_pthreads() != 0) {
		log_error("main: libevent has no pthreads support");
		goto done;
	}
	OPENSSL_init_ssl(0, NULL);
	main_base = event_base_new();
	if (!main_base)
		goto fail_step;
	main_fatal_ev = event_new(main_base, -1, 0, main_fatal_cb, NULL);
	main_stop_ev = evtimer_new(main_base, main_stop_cb, NULL);
	main_delay_ev = evtimer_new(main_base, main_delay_cb, NULL);
	main_reload_ev = evtimer_new(main_base, main_reload_wait_cb, NULL);
	if (!main_fatal_ev || !main_stop_ev || !main_delay_ev || !main_reload_ev)
		goto fail_step;

	/* signals are caught before any thread starts: /readyz can answer 200 before the main
	 * loop runs, and a SIGTERM then must wait for it, not kill the process */
	sig_ev[0] = evsignal_new(main_base, SIGTERM, main_signal_cb, NULL);
	sig_ev[1] = evsignal_new(main_base, SIGINT, main_signal_cb, NULL);
	sig_ev[2] = evsignal_new(main_base, SIGHUP, main_signal_cb, NULL);
	for (int i = 0; i < 3; i++)
		if (!sig_ev[i] || event_add(sig_ev[i], NULL) != 0)
			goto fail_step;

	/* 0. one daemon per state directory: the journal and the snapshot are ours alone */
	step = "the state directory lock";
	if (!statelock_take(cfg->state_dir))
		goto fail_step;
	/* 1. the last good table, so a database outage at start still routes */
	snap = snapshot_load(cfg->state_dir);
	if (snap) {
		log_info("routes: loaded %u numbers from the snapshot file (generation %llu)",
			snap->numbers.count, (unsigned long long)snap->generation);
		routes_publish(snap);
	}
	step = "the snapshot writer";
	if (!snapshot_setup(cfg->state_dir))
		goto fail_step;
	/* 2. the journal: replay what was made durable before; the drain starts with the db */
	step = "the journal";
	if (!journal_setup(cfg->state_dir))
		goto fail_step;
	/* 3. the database thread: the transport, then its clients (the route loader: LISTEN,
	 *    version check, full reload; the ledger drain; the instances heartbeat), connected once
	 *    it starts */
	step = "the database thread";
	if (!db_setup(cfg, main_fatal) || !loader_setup(cfg) || !ledger_db_setup(cfg) ||
		!instances_setup(cfg) || !policy_db_setup(cfg) || !journal_start() || !db_start())
		goto fail_step;
	/* 4. listeners; READY=1 once a route table is loaded (main_tick_cb) */
	step = "TLS";
	if (!tls_setup(cfg->tls_cert_file, cfg->tls_key_file))
		goto fail_step;
	step = "the listeners";
	if (!workers_setup(cfg) || !admin_setup(cfg) || !workers_start() || !admin_start())
		goto fail_step;
	step = "the systemd notifications";
	if (!notify_setup(main_base))
		goto fail_step;

	tick_ev = event_new(main_base, -1, EV_PERSIST, main_tick_cb, NULL);
	step = "the housekeeping timer";
	if (!tick_ev || event_add(tick_ev, &tick) != 0)
		goto fail_step;

	event_base_dispatch(main_base);
	code = atomic_load(&main_exit_code);
	goto done;
fail_step:
	/* the step's own line (if it wrote one) says why; this one says where start-up stopped */
	log_error("main: start-up failed at %s", step);
done:
	/*
	 * Nothing is freed while another thread can still reach it:
	 * 1. the workers flush the answers on their way and stop; their loops are joined (their
	 *    waiters, servers and bases stay);
	 * 2. the journal writer completes every append still queued into its worker's waiter
	 *    (durable ones reach the ledger; workers_cleanup answers them);
	 * 3. the admin thread stops (it reads journal stats and, test hook, the worker list);
	 * 4. the workers' waiters (nothing completes into them any more), servers and bases go;
	 * 5. the db thread is joined (the ledger drain reads the journal until it stops), then
	 *    its clients (the route loader saves a change still pending; the drain) and the
	 *    transport, then the journal, the snapshot writer (fed by the db thread) and the
	 *    route table (read by all).
	 */
	workers_stop(code == 0 ? MAIN_FLUSH_MS : 0);
	journal_stop();
	admin_cleanup();
	workers_cleanup();
	notify_cleanup();
	db_stop();
	loader_cleanup();
	ledger_db_cleanup();
	instances_cleanup();
	policy_db_cleanup();
	db_free();
	journal_cleanup(); /* the drain (db thread) read it until db_stop */
	snapshot_cleanup();
	routes_shutdown();
	tls_cleanup();
	for (int i = 0; i < 3; i++)
		if (sig_ev[i])
			event_free(sig_ev[i]);
	if (tick_ev)
		event_free(tick_ev);
	if (main_fatal_ev)
		event_free(main_fatal_ev);
	if (main_stop_ev)
		event_free(main_stop_ev);
	if (main_delay_ev)
		event_free(main_delay_ev);
	if (main_reload_ev)
		event_free(main_reload_ev);
	if (main_base)
		event_base_free(main_base);
	log_info("main: exit %d", code);
	statelock_release(); /* last: the next daemon on this state_dir may start */
	config_free_all();   /* cfg was published: freed with every block since */
	libevent_global_shutdown();
	return code;
}
