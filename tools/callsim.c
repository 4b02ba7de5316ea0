/* callsim.c: webhook simulator: fires signed call lifecycles at callrouted, reports the figures. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/rand.h>

#include "callrouted/e164.h"
#include "callrouted/provider.h"
#include "callrouted/signature.h"

/*
 * Model: --concurrency slots, each one keep-alive evhttp connection on one event_base.  A slot
 * takes the next call, sends its events one after the other (start, end, the end again
 * --retries times), each when the previous answer has arrived (closed loop), then takes the
 * next call.  A request that gets no HTTP answer (connection refused or reset, timeout) is
 * counted and not resent; the slot waits a backoff (50 ms doubling to 1 s) before its next
 * request, so a dead server is never hammered, and the connection reconnects by itself.
 * --timeout bounds the whole run.  With --database the ledger is polled after the run.
 */

#define SIM_VERSION "0.1"
#define SIM_MAX_CALLS 1000000L
#define SIM_MAX_CONCURRENCY 4096
#define SIM_MAX_RETRIES 10
#define SIM_MAX_DURATION_MS (24LL * 3600 * 1000)
#define SIM_MAX_PREFIX 64
#define SIM_BACKOFF_MIN_MS 50
#define SIM_BACKOFF_MAX_MS 1000
#define SIM_POLL_MS 100
#define SIM_SAMPLE_MAX 160
#define SIM_ID_MAX (SIM_MAX_PREFIX + 24)

/* why a request got no HTTP answer */
enum sim_err { SIM_ERR_CONNECT, SIM_ERR_TIMEOUT, SIM_ERR_EOF, SIM_ERR_OTHER, SIM_ERRS };

static const char *const sim_err_names[SIM_ERRS] = { "connect", "timeout", "eof", "other" };

struct sim_opts {
	const char *url, *account, *secret, *number, *prefix, *database, *json_path, *agent;
	enum provider_id provider;
	bool outbound, full, vapi_bearer;
	long calls;
	int concurrency, retries, wait_s, timeout_s, request_timeout_s;
	int64_t duration_ms;
};

struct sim_call {
	int64_t start_ms, end_ms; /* the call's times (wall clock ms), set with its first event */
	int64_t end_ok_us;   /* wall clock when the first 2xx to an end event arrived; 0: none */
	int64_t recorded_us; /* usage_ledger.recorded_at of its row */
	int rows;            /* its rows in usage_ledger */
};

struct sim;

struct sim_slot {
	struct sim *sim;
	struct evhttp_connection *conn;
	struct event *backoff_ev;
	long call; /* the call in hand, -1: none yet */
	int step;  /* its event being sent: see sim_step_is_end() */
	bool in_flight, done, err_seen;
	enum sim_err err;
	int backoff_ms;
	struct timespec sent;
};

struct sim_db {
	bool used, reached;
	long expected; /* billable calls: end event answered 2xx and duration > 0 */
	long long rows, distinct, duplicates, calls_rows, calls_ended;
	long missing, unexpected, unconfirmed, multi;
	double waited_s;
	int64_t bs_min, bs_max, bs_total, amt_min, amt_max, amt_total, dur_min, dur_max;
	double *delay_ms;
	size_t n_delay;
	char error[256];
};

struct sim {
	struct sim_opts o;
	char prefix[SIM_MAX_PREFIX + 1];
	char *host, *host_header, *uri;
	int port;
	struct event_base *base;
	struct event *stop_ev, *sigint_ev;
	struct sim_call *calls;
	struct sim_slot *slots;
	int n_slots, active;
	long next_call;
	int nsteps;          /* events per call */
	bool has_start;      /* step 0 is a start event */
	const char *stopped; /* why the run was cut short, NULL: it was not */
	/* figures */
	int64_t *lat_us;
	size_t n_lat;
	uint64_t status[600], status_other;
	uint64_t sent, answered, answered_2xx, errors, err[SIM_ERRS];
	uint64_t start_sent, start_2xx, end_sent, end_2xx;
	struct timespec t_first, t_last;
	bool any_sent, any_answer;
	char sample[SIM_SAMPLE_MAX + 64];
	PGconn *pg;
	struct sim_db db;
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */

static void
die_usage(const char *fmt_msg, const char *arg)
{
	fprintf(stderr, "callsim: %s", fmt_msg);
	if (arg)
		fprintf(stderr, ": '%s'", arg);
	fputs(" (see callsim --help)\n", stderr);
	exit(2);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		fputs("callsim: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p) {
		fputs("callsim: out of memory\n", stderr);
		exit(1);
	}
	return p;
}

static int64_t
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
mono_diff_us(const struct timespec *a, const struct timespec *b)
{
	return ((int64_t)b->tv_sec - a->tv_sec) * 1000000 + (b->tv_nsec - a->tv_nsec) / 1000;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* nearest-rank percentile of a sorted array, q in (0, 1] */
static size_t
rank(size_t n, double q)
{
	size_t r = (size_t)(q * (double)n);

	if ((double)r < q * (double)n)
		r++;
	return r ? r - 1 : 0;
}

/* strtol over the whole string, within [lo, hi] */
static bool
parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static long
opt_long(const char *name, const char *s, long lo, long hi)
{
	long v;
	char msg[160];

	if (!parse_long(s, lo, hi, &v)) {
		snprintf(msg, sizeof(msg), "--%s must be an integer from %ld to %ld", name, lo, hi);
		die_usage(msg, s);
	}
	return v;
}

/* ^[a-z0-9_-]{1,64}$ (the schema's provider_accounts.slug check) */
static bool
valid_slug(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
			    *s == '-'))
			return false;
	return true;
}

/* call id prefixes: [A-Za-z0-9._:-]{1,64} */
static bool
valid_prefix(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > SIM_MAX_PREFIX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			    (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == ':' ||
			    *s == '-'))
			return false;
	return true;
}

/* printable, no quotes: safe in JSON and in logs */
static bool
valid_agent(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 128)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s == '"' || *s == '\\' || *s == 0x7f)
			return false;
	return true;
}

/* ISO 8601 UTC with milliseconds: 2024-05-02T00:07:55.945Z, or ...945+00:00 */
static void
iso_ms(int64_t ms, bool offset, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t k;

	gmtime_r(&t, &tm);
	k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%03d%s", (int)(ms % 1000), offset ? "+00:00" : "Z");
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                    */

static void
usage(FILE *f)
{
	fputs("usage: callsim --url http://HOST:PORT --provider retell|vapi|bland --account SLUG\n"
	      "               --secret SECRET --number +E164 [options]\n"
	      "       callsim sign --provider P --secret SECRET [...] < BODY  (callsim sign --help)\n"
	      "\n"
	      "Fires N signed call lifecycles at callrouted's webhook endpoint\n"
	      "(POST URL/v1/webhooks/PROVIDER/SLUG) and reports status codes, latency and throughput;\n"
	      "with --database, also checks the usage ledger and measures the end-to-ledger delay.\n"
	      "\n"
	      "  --url URL             base URL of the webhook listener (http only)\n"
	      "  --provider P          retell, vapi or bland\n"
	      "  --account SLUG        provider account slug (provider_accounts.slug)\n"
	      "  --secret SECRET       the key the provider signs with: Retell's API key; Vapi's and\n"
	      "                        Bland's webhook secret\n"
	      "  --number +E164        our number (to for inbound calls, from for outbound calls)\n"
	      "  --direction D         inbound (default) or outbound\n"
	      "  --agent ID            provider agent id put in the events (Retell agent_id, Vapi\n"
	      "                        assistantId, Bland pathway_id); default: Retell agent_callsim,\n"
	      "                        none for Vapi and Bland\n"
	      "  --vapi-auth A         hmac (default: x-timestamp + x-signature) or bearer\n"
	      "  --calls N             calls to simulate (default 1000)\n"
	      "  --concurrency C       parallel keep-alive connections (default 32)\n"
	      "  --duration-ms D       call duration, ending now (default 65000; 0: never connected)\n"
	      "  --lifecycle L         full (start and end events, default) or end (end events only);\n"
	      "                        Bland has no start event\n"
	      "  --retries R           send each end event R extra times (default 0)\n"
	      "  --prefix P            call ids are P-1 .. P-N (default: random per run)\n"
	      "  --timeout S           bound on the sending phase in seconds (default 120)\n"
	      "  --request-timeout S   per-request timeout in seconds (default 10)\n"
	      "  --database CONNINFO   PostgreSQL conninfo: poll usage_ledger after the run\n"
	      "  --wait S              how long to wait for the ledger, seconds (default 10)\n"
	      "  --json FILE           also write the figures as JSON to FILE (- for stdout)\n"
	      "  --help                this text\n"
	      "\n"
	      "Exit status: 0 if every end event got a 2xx and (with --database) the ledger has exactly\n"
	      "one row per billable call; 1 otherwise, with a one-line reason; 2 on usage errors.\n",
		f);
}

static void
parse_url(struct sim *s)
{
	struct evhttp_uri *u = evhttp_uri_parse_with_flags(s->o.url, 0);
	const char *scheme, *host, *path;
	struct addrinfo hints, *ai = NULL;
	char port[16], *p;
	size_t plen;
	int rc;

	if (!u)
		die_usage("--url is not a valid URL", s->o.url);
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	path = evhttp_uri_get_path(u);
	if (!scheme || strcasecmp(scheme, "http") != 0)
		die_usage(scheme && strcasecmp(scheme, "https") == 0 ?
				  "--url: https is not supported, use http://" :
				  "--url must be http://HOST[:PORT][/PATH]",
			s->o.url);
	if (!host || !*host)
		die_usage("--url has no host", s->o.url);
	if (evhttp_uri_get_query(u) || evhttp_uri_get_fragment(u) || evhttp_uri_get_userinfo(u))
		die_usage("--url must have no user, query or fragment", s->o.url);
	s->port = evhttp_uri_get_port(u);
	if (s->port == -1)
		s->port = 80;
	if (s->port <= 0 || s->port > 65535)
		die_usage("--url has a bad port", s->o.url);
	/* resolve once, up front: a bad host is a usage error, and no DNS during the run */
	s->host = xstrdup(host);
	if (s->host[0] == '[') {
		memmove(s->host, s->host + 1, strlen(s->host));
		if ((p = strchr(s->host, ']')))
			*p = 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", s->port);
	if ((rc = getaddrinfo(s->host, port, &hints, &ai)) != 0) {
		fprintf(stderr, "callsim: --url: cannot resolve host '%s': %s\n", s->host,
			gai_strerror(rc));
		exit(2);
	}
	{
		char numeric[NI_MAXHOST];

		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, numeric, sizeof(numeric), NULL, 0,
			    NI_NUMERICHOST) == 0) {
			free(s->host);
			s->host = xstrdup(numeric);
		}
	}
	freeaddrinfo(ai);
	s->host_header = xcalloc(1, strlen(host) + 16);
	sprintf(s->host_header, strchr(host, ':') && host[0] != '[' ? "[%s]:%d" : "%s:%d", host,
		s->port);
	/* URI: base path without trailing slashes + /v1/webhooks/P/SLUG */
	path = path ? path : "";
	plen = strlen(path);
	while (plen && path[plen - 1] == '/')
		plen--;
	s->uri = xcalloc(1, plen + 64 + strlen(s->o.account));
	memcpy(s->uri, path, plen);
	sprintf(s->uri + plen, "/v1/webhooks/%s/%s", provider_name(s->o.provider), s->o.account);
	evhttp_uri_free(u);
}

static void
parse_options(struct sim *s, int argc, char **argv)
{
	enum {
		O_URL = 1,
		O_PROVIDER,
		O_ACCOUNT,
		O_SECRET,
		O_NUMBER,
		O_DIRECTION,
		O_CALLS,
		O_CONCURRENCY,
		O_DURATION,
		O_LIFECYCLE,
		O_RETRIES,
		O_PREFIX,
		O_DATABASE,
		O_WAIT,
		O_JSON,
		O_TIMEOUT,
		O_REQ_TIMEOUT,
		O_AGENT,
		O_VAPI_AUTH,
		O_HELP
	};
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, O_URL },
		{ "provider", required_argument, NULL, O_PROVIDER },
		{ "account", required_argument, NULL, O_ACCOUNT },
		{ "secret", required_argument, NULL, O_SECRET },
		{ "number", required_argument, NULL, O_NUMBER },
		{ "direction", required_argument, NULL, O_DIRECTION },
		{ "calls", required_argument, NULL, O_CALLS },
		{ "concurrency", required_argument, NULL, O_CONCURRENCY },
		{ "duration-ms", required_argument, NULL, O_DURATION },
		{ "lifecycle", required_argument, NULL, O_LIFECYCLE },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "prefix", required_argument, NULL, O_PREFIX },
		{ "database", required_argument, NULL, O_DATABASE },
		{ "wait", required_argument, NULL, O_WAIT },
		{ "json", required_argument, NULL, O_JSON },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "request-timeout", required_argument, NULL, O_REQ_TIMEOUT },
		{ "agent", required_argument, NULL, O_AGENT },
		{ "vapi-auth", required_argument, NULL, O_VAPI_AUTH },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct sim_opts *o = &s->o;
	const char *provider = NULL, *vapi_auth = NULL;
	int c;

	o->calls = 1000;
	o->concurrency = 32;
	o->duration_ms = 65000;
	o->full = true;
	o->wait_s = 10;
	o->timeout_s = 120;
	o->request_timeout_s = 10;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_URL:
			o->url = optarg;
			break;
		case O_PROVIDER:
			provider = optarg;
			break;
		case O_ACCOUNT:
			o->account = optarg;
			break;
		case O_SECRET:
			o->secret = optarg;
			break;
		case O_NUMBER:
			o->number = optarg;
			break;
		case O_DIRECTION:
			if (strcmp(optarg, "inbound") == 0)
				o->outbound = false;
			else if (strcmp(optarg, "outbound") == 0)
				o->outbound = true;
			else
				die_usage("--direction must be inbound or outbound", optarg);
			break;
		case O_CALLS:
			o->calls = opt_long("calls", optarg, 1, SIM_MAX_CALLS);
			break;
		case O_CONCURRENCY:
			o->concurrency =
				(int)opt_long("concurrency", optarg, 1, SIM_MAX_CONCURRENCY);
			break;
		case O_DURATION:
			o->duration_ms =
				opt_long("duration-ms", optarg, 0, (long)SIM_MAX_DURATION_MS);
			break;
		case O_LIFECYCLE:
			if (strcmp(optarg, "full") == 0)
				o->full = true;
			else if (strcmp(optarg, "end") == 0)
				o->full = false;
			else
				die_usage("--lifecycle must be full or end", optarg);
			break;
		case O_RETRIES:
			o->retries = (int)opt_long("retries", optarg, 0, SIM_MAX_RETRIES);
			break;
		case O_PREFIX:
			o->prefix = optarg;
			break;
		case O_DATABASE:
			o->database = optarg;
			break;
		case O_WAIT:
			o->wait_s = (int)opt_long("wait", optarg, 0, 3600);
			break;
		case O_JSON:
			o->json_path = optarg;
			break;
		case O_TIMEOUT:
			o->timeout_s = (int)opt_long("timeout", optarg, 1, 86400);
			break;
		case O_REQ_TIMEOUT:
			o->request_timeout_s = (int)opt_long("request-timeout", optarg, 1, 600);
			break;
		case O_AGENT:
			o->agent = optarg;
			break;
		case O_VAPI_AUTH:
			vapi_auth = optarg;
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		default:
			die_usage("unknown option or missing value",
				optind > 0 && optind <= argc ? argv[optind - 1] : NULL);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument", argv[optind]);
	if (!o->url)
		die_usage("--url is required", NULL);
	if (!provider)
		die_usage("--provider is required", NULL);
	if (!provider_from_name(provider, strlen(provider), &o->provider))
		die_usage("unknown --provider (retell, vapi or bland)", provider);
	if (!o->account)
		die_usage("--account is required", NULL);
	if (!valid_slug(o->account))
		die_usage("--account must match [a-z0-9_-]{1,64}", o->account);
	if (!o->secret || !*o->secret)
		die_usage("--secret is required and must not be empty", NULL);
	if (!o->number)
		die_usage("--number is required", NULL);
	if (!e164_is_canonical(o->number))
		die_usage("--number is not E.164 (+ then 7 to 15 digits, no leading 0)", o->number);
	if (o->prefix && !valid_prefix(o->prefix))
		die_usage("--prefix must match [A-Za-z0-9._:-]{1,64}", o->prefix);
	if (o->agent && !valid_agent(o->agent))
		die_usage("--agent must be 1 to 128 printable characters without blanks or quotes",
			o->agent);
	if (vapi_auth) {
		if (o->provider != PROVIDER_VAPI)
			die_usage("--vapi-auth applies to --provider vapi only", vapi_auth);
		if (strcmp(vapi_auth, "bearer") == 0)
			o->vapi_bearer = true;
		else if (strcmp(vapi_auth, "hmac") != 0)
			die_usage("--vapi-auth must be hmac or bearer", vapi_auth);
	}
	if (o->database) {
		char *err = NULL;
		PQconninfoOption *ci = PQconninfoParse(o->database, &err);

		if (!ci) {
			fprintf(stderr, "callsim: --database is not a valid conninfo: %s",
				err ? err : "out of memory\n");
			PQfreemem(err);
			exit(2);
		}
		PQconninfoFree(ci);
	}
	if (o->json_path && !*o->json_path)
		die_usage("--json needs a file name", NULL);
	if (o->concurrency > o->calls)
		o->concurrency = (int)o->calls;
	parse_url(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Events                                                                                     */

static bool
sim_connected(const struct sim *s)
{
	return s->o.duration_ms > 0;
}

static bool
sim_step_is_end(const struct sim *s, int step)
{
	return !(s->has_start && step == 0);
}

static void
sim_call_id(const struct sim *s, long i, char *buf, size_t n)
{
	snprintf(buf, n, "%s-%ld", s->prefix, i + 1);
}

/* the other party: +1212555NNNN */
static void
sim_remote(long i, char *buf, size_t n)
{
	snprintf(buf, n, "+1212555%04ld", i % 10000);
}

static void
jstr(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, json_string(v));
}

static void
jint(json_t *o, const char *k, int64_t v)
{
	json_object_set_new(o, k, json_integer((json_int_t)v));
}

static json_t *
sim_retell(const struct sim *s, long i, bool start)
{
	const struct sim_call *c = &s->calls[i];
	bool in = !s->o.outbound, conn = sim_connected(s);
	char id[SIM_ID_MAX], remote[24];
	json_t *call = json_object();

	sim_call_id(s, i, id, sizeof(id));
	sim_remote(i, remote, sizeof(remote));
	jstr(call, "call_id", id);
	jstr(call, "agent_id", s->o.agent ? s->o.agent : "agent_callsim");
	jint(call, "agent_version", 1);
	jstr(call, "call_type", "phone_call");
	jstr(call, "call_status", start ? "ongoing" : conn ? "ended" : "not_connected");
	jstr(call, "direction", in ? "inbound" : "outbound");
	jstr(call, "from_number", in ? remote : s->o.number);
	jstr(call, "to_number", in ? s->o.number : remote);
	if (conn)
		jint(call, "start_timestamp", c->start_ms);
	if (!start) {
		if (conn) {
			jint(call, "end_timestamp", c->end_ms);
			jint(call, "duration_ms", s->o.duration_ms);
		}
		jstr(call, "disconnection_reason",
			!conn ? (in ? "dial_failed" : "dial_no_answer") :
			in    ? "user_hangup" :
				"agent_hangup");
	}
	return json_pack("{s:s, s:o}", "event", start ? "call_started" : "call_ended", "call",
		call);
}

static json_t *
sim_vapi(const struct sim *s, long i, bool start)
{
	const struct sim_call *c = &s->calls[i];
	bool in = !s->o.outbound, conn = sim_connected(s);
	char id[SIM_ID_MAX], remote[24], st[40], en[40];
	json_t *msg = json_object(), *call = json_object();
	const char *reason = !conn ? "customer-did-not-answer" :
			     in    ? "customer-ended-call" :
				     "assistant-ended-call";

	sim_call_id(s, i, id, sizeof(id));
	sim_remote(i, remote, sizeof(remote));
	iso_ms(c->start_ms, false, st, sizeof(st));
	iso_ms(c->end_ms, false, en, sizeof(en));
	jstr(msg, "type", start ? "status-update" : "end-of-call-report");
	if (start)
		jstr(msg, "status", "in-progress");
	else
		jstr(msg, "endedReason", reason);
	jint(msg, "timestamp", start ? c->start_ms : c->end_ms);
	if (!start) {
		if (conn)
			jstr(msg, "startedAt", st);
		jstr(msg, "endedAt", en);
		json_object_set_new(msg, "cost",
			json_real((double)s->o.duration_ms / 60000.0 * 0.10));
		json_object_set_new(msg, "artifact",
			json_pack("{s:s}", "transcript",
				conn ? "AI: Hello, this is a simulated call. User: Thanks, bye." :
				       ""));
		json_object_set_new(msg, "analysis",
			json_pack("{s:s}", "summary", conn ? "Simulated call." : "Not connected."));
	}
	json_object_set_new(msg, "phoneNumber",
		json_pack("{s:s, s:s, s:s}", "id", "pn_callsim", "number", s->o.number, "provider",
			"vapi"));
	json_object_set_new(msg, "customer", json_pack("{s:s}", "number", remote));
	jstr(call, "id", id);
	jstr(call, "orgId", "org_callsim");
	jstr(call, "type", in ? "inboundPhoneCall" : "outboundPhoneCall");
	jstr(call, "status", start ? "in-progress" : "ended");
	if (s->o.agent)
		jstr(call, "assistantId", s->o.agent);
	jstr(call, "phoneNumberId", "pn_callsim");
	json_object_set_new(call, "customer", json_pack("{s:s}", "number", remote));
	if (conn)
		jstr(call, "startedAt", st);
	if (!start) {
		jstr(call, "endedAt", en);
		jstr(call, "endedReason", reason);
	}
	json_object_set_new(msg, "call", call);
	return json_pack("{s:o}", "message", msg);
}

static json_t *
sim_bland(const struct sim *s, long i)
{
	const struct sim_call *c = &s->calls[i];
	bool in = !s->o.outbound, conn = sim_connected(s);
	int64_t d = s->o.duration_ms;
	char id[SIM_ID_MAX], remote[24], ts[40], cd[32];
	json_t *o = json_object();

	sim_call_id(s, i, id, sizeof(id));
	sim_remote(i, remote, sizeof(remote));
	/* seconds as a string, as Bland sends it; a fraction only when the duration needs one */
	if (d % 1000)
		snprintf(cd, sizeof(cd), "%" PRId64 ".%03d", d / 1000, (int)(d % 1000));
	else
		snprintf(cd, sizeof(cd), "%" PRId64, d / 1000);
	jstr(o, "call_id", id);
	jstr(o, "c_id", id);
	json_object_set_new(o, "call_length", json_real((double)d / 60000.0));
	jstr(o, "corrected_duration", cd);
	json_object_set_new(o, "inbound", json_boolean(in));
	jstr(o, "to", in ? s->o.number : remote);
	jstr(o, "from", in ? remote : s->o.number);
	json_object_set_new(o, "completed", json_boolean(conn));
	jstr(o, "status", conn ? "completed" : "failed");
	jstr(o, "queue_status", "complete");
	iso_ms(c->start_ms - 5000, true, ts, sizeof(ts));
	jstr(o, "created_at", ts);
	if (conn) {
		iso_ms(c->start_ms, false, ts, sizeof(ts));
		jstr(o, "started_at", ts);
		iso_ms(c->end_ms, false, ts, sizeof(ts));
		jstr(o, "end_at", ts);
	}
	if (s->o.agent) {
		jstr(o, "pathway_id", s->o.agent);
		jint(o, "pathway_version", 1);
	}
	json_object_set_new(o, "price", json_real((double)d / 60000.0 * 0.09));
	if (conn) {
		jstr(o, "call_ended_by", in ? "USER" : "ASSISTANT");
		json_object_set_new(o, "error_message", json_null());
	} else {
		json_object_set_new(o, "error_message",
			json_string("Call failed. The number you dialed is busy."));
	}
	json_object_set_new(o, "metadata", json_object());
	return o;
}

static char *
sim_body(struct sim *s, long i, bool start, size_t *len)
{
	json_t *j = s->o.provider == PROVIDER_RETELL ? sim_retell(s, i, start) :
		    s->o.provider == PROVIDER_VAPI   ? sim_vapi(s, i, start) :
						       sim_bland(s, i);
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!body) {
		fputs("callsim: cannot build an event body\n", stderr);
		exit(1);
	}
	*len = strlen(body);
	return body;
}

/* the provider's authentication headers for this body, signed now */
static void
sim_sign(const struct sim *s, struct evkeyvalq *h, const char *body, size_t len)
{
	struct timespec ts;
	char hdr[SIG_RETELL_HEADER_SIZE], tsbuf[24], *hv;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &ts);
	switch (s->o.provider) {
	case PROVIDER_RETELL:
		ok = sig_sign_retell(s->o.secret, body, len,
			(int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, hdr, sizeof(hdr));
		if (ok)
			evhttp_add_header(h, "x-retell-signature", hdr);
		break;
	case PROVIDER_VAPI:
		if (s->o.vapi_bearer) {
			hv = xcalloc(1, strlen(s->o.secret) + 8);
			sprintf(hv, "Bearer %s", s->o.secret);
			evhttp_add_header(h, "Authorization", hv);
			free(hv);
			break;
		}
		/* x-timestamp in seconds */
		snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts.tv_sec);
		ok = sig_sign_vapi_hmac(s->o.secret, tsbuf, body, len, hdr);
		if (ok) {
			evhttp_add_header(h, "x-timestamp", tsbuf);
			evhttp_add_header(h, "x-signature", hdr);
		}
		break;
	default:
		ok = sig_sign_bland(s->o.secret, body, len, hdr);
		if (ok)
			evhttp_add_header(h, "X-Webhook-Signature", hdr);
		break;
	}
	if (!ok) {
		fputs("callsim: HMAC-SHA256 failed\n", stderr);
		exit(1);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* The run                                                                                    */

static void slot_send(struct sim_slot *sl);

static void
slot_finish(struct sim_slot *sl)
{
	struct sim *s = sl->sim;

	if (sl->done)
		return;
	sl->done = true;
	if (--s->active == 0)
		event_base_loopexit(s->base, NULL);
}

/* the slot's next event: the next step of its call, else the next call */
static void
slot_next(struct sim_slot *sl)
{
	struct sim *s = sl->sim;

	if (s->stopped) {
		slot_finish(sl);
		return;
	}
	if (sl->call >= 0 && sl->step + 1 < s->nsteps) {
		sl->step++;
		slot_send(sl);
		return;
	}
	if (s->next_call >= s->o.calls) {
		slot_finish(sl);
		return;
	}
	sl->call = s->next_call++;
	sl->step = 0;
	slot_send(sl);
}

static void
slot_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	slot_next(arg);
}

/* libevent says why a request failed (timeout, EOF, ...); connect failures come without */
static void
slot_error_cb(enum evhttp_request_error e, void *arg)
{
	struct sim_slot *sl = arg;

	sl->err_seen = true;
	sl->err = e == EVREQ_HTTP_TIMEOUT ? SIM_ERR_TIMEOUT :
		  e == EVREQ_HTTP_EOF     ? SIM_ERR_EOF :
					    SIM_ERR_OTHER;
}

static void
sim_keep_sample(struct sim *s, long call, int code, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = in ? evbuffer_get_length(in) : 0;
	char body[SIM_SAMPLE_MAX + 1];

	if (s->sample[0])
		return;
	if (n > SIM_SAMPLE_MAX)
		n = SIM_SAMPLE_MAX;
	if (n)
		evbuffer_copyout(in, body, n);
	body[n] = 0;
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)body[k] < ' ')
			body[k] = ' ';
	snprintf(s->sample, sizeof(s->sample), "call %ld: %d %s", call + 1, code, body);
}

static void
slot_answer_cb(struct evhttp_request *req, void *arg)
{
	struct sim_slot *sl = arg;
	struct sim *s = sl->sim;
	struct sim_call *c = &s->calls[sl->call];
	bool end = sim_step_is_end(s, sl->step);
	int code = req ? evhttp_request_get_response_code(req) : 0;
	struct timespec now;
	struct timeval tv;

	clock_gettime(CLOCK_MONOTONIC, &now);
	sl->in_flight = false;
	if (code <= 0) {
		/* no HTTP answer: count it, back off, the connection reconnects on the next send */
		s->errors++;
		s->err[sl->err_seen ? sl->err : SIM_ERR_CONNECT]++;
		sl->backoff_ms = sl->backoff_ms ? sl->backoff_ms * 2 : SIM_BACKOFF_MIN_MS;
		if (sl->backoff_ms > SIM_BACKOFF_MAX_MS)
			sl->backoff_ms = SIM_BACKOFF_MAX_MS;
		tv.tv_sec = sl->backoff_ms / 1000;
		tv.tv_usec = (sl->backoff_ms % 1000) * 1000;
		evtimer_add(sl->backoff_ev, &tv);
		return;
	}
	sl->backoff_ms = 0;
	s->answered++;
	s->t_last = now;
	s->any_answer = true;
	s->lat_us[s->n_lat++] = mono_diff_us(&sl->sent, &now);
	if (code < 600)
		s->status[code]++;
	else
		s->status_other++;
	if (code >= 200 && code < 300) {
		s->answered_2xx++;
		if (end) {
			s->end_2xx++;
			if (!c->end_ok_us)
				c->end_ok_us = wall_us();
		} else {
			s->start_2xx++;
		}
	} else {
		sim_keep_sample(s, sl->call, code, req);
	}
	slot_next(sl);
}

static void
slot_send(struct sim_slot *sl)
{
	struct sim *s = sl->sim;
	struct sim_call *c = &s->calls[sl->call];
	bool end = sim_step_is_end(s, sl->step);
	struct evhttp_request *req;
	struct evkeyvalq *h;
	size_t len;
	char *body;

	if (sl->step == 0) {
		/* the call ends now (its first event is sent at its end when only the end is sent)
		 */
		c->end_ms = wall_us() / 1000;
		c->start_ms = c->end_ms - s->o.duration_ms;
	}
	body = sim_body(s, sl->call, !end, &len);
	req = evhttp_request_new(slot_answer_cb, sl);
	if (!req) {
		fputs("callsim: out of memory\n", stderr);
		exit(1);
	}
	evhttp_request_set_error_cb(req, slot_error_cb);
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", s->host_header);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "User-Agent", "callsim/" SIM_VERSION);
	sim_sign(s, h, body, len);
	evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
	free(body);
	s->sent++;
	if (end)
		s->end_sent++;
	else
		s->start_sent++;
	sl->in_flight = true;
	sl->err_seen = false;
	clock_gettime(CLOCK_MONOTONIC, &sl->sent);
	if (!s->any_sent) {
		s->any_sent = true;
		s->t_first = sl->sent;
	}
	/*
	 * -1 only if the request could not even be queued (libevent has freed or dropped it);
	 * a failed connect is answered through the callback, possibly before this returns.
	 */
	if (evhttp_make_request(sl->conn, req, EVHTTP_REQ_POST, s->uri) != 0 && sl->in_flight) {
		struct timeval tv = { 1, 0 };

		sl->in_flight = false;
		s->errors++;
		s->err[SIM_ERR_OTHER]++;
		sl->backoff_ms = SIM_BACKOFF_MAX_MS;
		evtimer_add(sl->backoff_ev, &tv);
	}
}

static void
sim_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sim *s = arg;

	(void)fd;
	s->stopped = (what & EV_SIGNAL) ? "interrupted" : "--timeout reached";
	event_base_loopbreak(s->base);
}

static void
sim_run(struct sim *s)
{
	struct timeval tv = { s->o.timeout_s, 0 };

	s->base = event_base_new();
	if (!s->base) {
		fputs("callsim: cannot create an event base\n", stderr);
		exit(1);
	}
	s->stop_ev = evtimer_new(s->base, sim_stop_cb, s);
	s->sigint_ev = evsignal_new(s->base, SIGINT, sim_stop_cb, s);
	if (!s->stop_ev || !s->sigint_ev) {
		fputs("callsim: cannot create events\n", stderr);
		exit(1);
	}
	evtimer_add(s->stop_ev, &tv);
	evsignal_add(s->sigint_ev, NULL);
	s->n_slots = s->o.concurrency;
	s->slots = xcalloc((size_t)s->n_slots, sizeof(*s->slots));
	for (int i = 0; i < s->n_slots; i++) {
		struct sim_slot *sl = &s->slots[i];

		sl->sim = s;
		sl->call = -1;
		sl->conn = evhttp_connection_base_new(s->base, NULL, s->host, (uint16_t)s->port);
		sl->backoff_ev = evtimer_new(s->base, slot_backoff_cb, sl);
		if (!sl->conn || !sl->backoff_ev) {
			fputs("callsim: cannot create a connection\n", stderr);
			exit(1);
		}
		evhttp_connection_set_timeout(sl->conn, s->o.request_timeout_s);
		evhttp_connection_set_retries(sl->conn, 0);
	}
	s->active = s->n_slots;
	for (int i = 0; i < s->n_slots && !s->stopped; i++)
		slot_next(&s->slots[i]);
	if (s->active > 0)
		event_base_dispatch(s->base);
}

/* free the connections (pending requests go with them, without callbacks) and the base */
static void
sim_close(struct sim *s)
{
	for (int i = 0; i < s->n_slots; i++) {
		if (s->slots[i].conn)
			evhttp_connection_free(s->slots[i].conn);
		if (s->slots[i].backoff_ev)
			event_free(s->slots[i].backoff_ev);
	}
	if (s->stop_ev)
		event_free(s->stop_ev);
	if (s->sigint_ev)
		event_free(s->sigint_ev);
	if (s->base)
		event_base_free(s->base);
	s->base = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The ledger                                                                                 */

static const char sim_sql_counts[] =
	"SELECT (SELECT count(*) FROM usage_ledger WHERE provider = $1 AND provider_call_id LIKE $2),"
	" (SELECT count(DISTINCT provider_call_id) FROM usage_ledger"
	"   WHERE provider = $1 AND provider_call_id LIKE $2),"
	" (SELECT count(*) FROM calls WHERE provider = $1 AND provider_call_id LIKE $2),"
	" (SELECT count(*) FROM calls WHERE provider = $1 AND provider_call_id LIKE $2"
	"   AND status = 'ended')";

static const char sim_sql_rows[] =
	"SELECT provider_call_id, (extract(epoch FROM recorded_at) * 1000000)::bigint,"
	" billed_seconds, amount_micros, duration_ms"
	" FROM usage_ledger WHERE provider = $1 AND provider_call_id LIKE $2";

/* LIKE pattern matching "<prefix>-..." (the prefix's _ escaped) */
static void
sim_like(const struct sim *s, char *buf, size_t n)
{
	size_t k = 0;

	for (const char *p = s->prefix; *p && k + 4 < n; p++) {
		if (*p == '_' || *p == '%' || *p == '\\')
			buf[k++] = '\\';
		buf[k++] = *p;
	}
	buf[k++] = '-';
	buf[k++] = '%';
	buf[k] = 0;
}

static PGresult *
sim_query(struct sim *s, const char *sql)
{
	char like[2 * SIM_MAX_PREFIX + 8];
	const char *params[2] = { provider_name(s->o.provider), like };
	PGresult *r;

	sim_like(s, like, sizeof(like));
	r = PQexecParams(s->pg, sql, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(s->db.error, sizeof(s->db.error), "%s", PQresultErrorMessage(r));
		s->db.error[strcspn(s->db.error, "\n")] = 0;
		PQclear(r);
		return NULL;
	}
	return r;
}

static bool
sim_counts(struct sim *s, long long v[4])
{
	PGresult *r = sim_query(s, sim_sql_counts);

	if (!r)
		return false;
	for (int k = 0; k < 4; k++)
		v[k] = strtoll(PQgetvalue(r, 0, k), NULL, 10);
	PQclear(r);
	return true;
}

/* before the run: connect, and refuse a prefix that already has rows */
static void
sim_db_open(struct sim *s)
{
	long long v[4];

	s->pg = PQconnectdb(s->o.database);
	if (PQstatus(s->pg) != CONNECTION_OK) {
		char *m = PQerrorMessage(s->pg);

		fprintf(stderr, "callsim: FAIL: database: cannot connect: %.*s\n",
			(int)strcspn(m, "\n"), m);
		exit(1);
	}
	if (!sim_counts(s, v)) {
		fprintf(stderr, "callsim: FAIL: database: %s\n", s->db.error);
		exit(1);
	}
	if (v[0] || v[2]) {
		fprintf(stderr,
			"callsim: prefix '%s' already has %lld ledger rows and %lld calls "
			"for %s: choose another --prefix\n",
			s->prefix, v[0], v[2], provider_name(s->o.provider));
		exit(2);
	}
}

/* which call a provider_call_id is: "<prefix>-<n>", n in 1..calls; -1 if none of ours */
static long
sim_call_index(const struct sim *s, const char *id)
{
	size_t pl = strlen(s->prefix);
	long n;

	if (strncmp(id, s->prefix, pl) != 0 || id[pl] != '-' || id[pl + 1] == '0')
		return -1;
	if (!parse_long(id + pl + 1, 1, s->o.calls, &n))
		return -1;
	return n - 1;
}

static bool
sim_exec(struct sim *s, const char *sql)
{
	PGresult *r = PQexec(s->pg, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok) {
		snprintf(s->db.error, sizeof(s->db.error), "%s", PQresultErrorMessage(r));
		s->db.error[strcspn(s->db.error, "\n")] = 0;
	}
	PQclear(r);
	return ok;
}

/* match the rows of usage_ledger to the calls */
static void
sim_db_rows(struct sim *s, PGresult *r)
{
	struct sim_db *d = &s->db;
	int n = PQntuples(r);

	for (long i = 0; i < s->o.calls; i++)
		s->calls[i].rows = 0;
	d->missing = d->unexpected = d->unconfirmed = d->multi = 0;
	d->bs_min = d->bs_max = d->bs_total = d->amt_min = d->amt_max = d->amt_total = 0;
	d->dur_min = d->dur_max = 0;
	d->n_delay = 0;
	free(d->delay_ms);
	d->delay_ms = xcalloc((size_t)n + 1, sizeof(double));
	for (int k = 0; k < n; k++) {
		long i = sim_call_index(s, PQgetvalue(r, k, 0));
		int64_t rec = strtoll(PQgetvalue(r, k, 1), NULL, 10);
		int64_t bs = strtoll(PQgetvalue(r, k, 2), NULL, 10);
		int64_t amt = strtoll(PQgetvalue(r, k, 3), NULL, 10);
		int64_t dur = strtoll(PQgetvalue(r, k, 4), NULL, 10);
		struct sim_call *c = i >= 0 ? &s->calls[i] : NULL;

		if (k == 0) {
			d->bs_min = d->bs_max = bs;
			d->amt_min = d->amt_max = amt;
			d->dur_min = d->dur_max = dur;
		}
		d->bs_min = bs < d->bs_min ? bs : d->bs_min;
		d->bs_max = bs > d->bs_max ? bs : d->bs_max;
		d->amt_min = amt < d->amt_min ? amt : d->amt_min;
		d->amt_max = amt > d->amt_max ? amt : d->amt_max;
		d->dur_min = dur < d->dur_min ? dur : d->dur_min;
		d->dur_max = dur > d->dur_max ? dur : d->dur_max;
		d->bs_total += bs;
		d->amt_total += amt;
		if (!c || !sim_connected(s) || !c->end_ms) {
			d->unexpected++; /* not one of our ids, or a call that is not billable */
			continue;
		}
		if (!c->end_ok_us) {
			/* sent, no 2xx seen (lost answer): the daemon may well have kept it */
			d->unconfirmed++;
			continue;
		}
		if (c->rows++ == 0) {
			c->recorded_us = rec;
			d->delay_ms[d->n_delay++] = (double)(rec - c->end_ok_us) / 1000.0;
		}
	}
	for (long i = 0; i < s->o.calls; i++) {
		if (!s->calls[i].end_ok_us || !sim_connected(s))
			continue;
		if (s->calls[i].rows == 0)
			d->missing++;
		else if (s->calls[i].rows > 1)
			d->multi++;
	}
	qsort(d->delay_ms, d->n_delay, sizeof(double), cmp_double);
}

/* counts and rows from one snapshot */
static bool
sim_db_measure(struct sim *s)
{
	struct sim_db *d = &s->db;
	long long v[4];
	PGresult *r;

	if (!sim_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
		return false;
	if (!sim_counts(s, v) || !(r = sim_query(s, sim_sql_rows))) {
		sim_exec(s, "ROLLBACK");
		return false;
	}
	d->rows = v[0];
	d->distinct = v[1];
	d->duplicates = v[0] - v[1];
	d->calls_rows = v[2];
	d->calls_ended = v[3];
	sim_db_rows(s, r);
	PQclear(r);
	return sim_exec(s, "COMMIT");
}

/*
 * Poll until every billable call has its ledger row and every ended call its calls row, or
 * --wait expires; a cheap count first, the rows only when the count says they may be there.
 */
static void
sim_db_check(struct sim *s)
{
	struct sim_db *d = &s->db;
	struct timespec t0, t;
	long long v[4];
	long ended = 0;

	d->used = true;
	for (long i = 0; i < s->o.calls; i++) {
		if (s->calls[i].end_ok_us) {
			ended++;
			if (sim_connected(s))
				d->expected++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		d->waited_s = (double)mono_diff_us(&t0, &t) / 1e6;
		if (d->waited_s >= s->o.wait_s) {
			sim_db_measure(s);
			return;
		}
		if (!sim_counts(s, v))
			return;
		if (v[0] >= d->expected && v[3] >= ended) {
			if (!sim_db_measure(s))
				return;
			if (d->missing == 0 && d->calls_ended >= ended) {
				d->reached = true;
				return;
			}
		}
		nanosleep(&(struct timespec){ 0, SIM_POLL_MS * 1000000L }, NULL);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Report                                                                                     */

struct sim_report {
	double elapsed_s, eps, lat_p50, lat_p99, lat_max, lat_mean;
	double d_p50, d_p99, d_max, d_min;
	uint64_t not_sent, unanswered, end_expected;
	bool ok;
	char reason[256];
};

static void
sim_figures(struct sim *s, struct sim_report *r)
{
	struct sim_db *d = &s->db;
	uint64_t end_bad;
	double sum = 0;

	memset(r, 0, sizeof(*r));
	if (s->any_sent && s->any_answer)
		r->elapsed_s = (double)mono_diff_us(&s->t_first, &s->t_last) / 1e6;
	r->eps = r->elapsed_s > 0 ? (double)s->answered / r->elapsed_s : 0;
	qsort(s->lat_us, s->n_lat, sizeof(int64_t), cmp_i64);
	if (s->n_lat) {
		for (size_t k = 0; k < s->n_lat; k++)
			sum += (double)s->lat_us[k];
		r->lat_mean = sum / (double)s->n_lat / 1000.0;
		r->lat_p50 = (double)s->lat_us[rank(s->n_lat, 0.50)] / 1000.0;
		r->lat_p99 = (double)s->lat_us[rank(s->n_lat, 0.99)] / 1000.0;
		r->lat_max = (double)s->lat_us[s->n_lat - 1] / 1000.0;
	}
	if (d->n_delay) {
		r->d_p50 = d->delay_ms[rank(d->n_delay, 0.50)];
		r->d_p99 = d->delay_ms[rank(d->n_delay, 0.99)];
		r->d_max = d->delay_ms[d->n_delay - 1];
		r->d_min = d->delay_ms[0];
	}
	for (int i = 0; i < s->n_slots; i++)
		if (s->slots[i].in_flight)
			r->unanswered++;
	r->not_sent = (uint64_t)s->o.calls * (uint64_t)s->nsteps - s->sent;
	r->end_expected = (uint64_t)s->o.calls * (uint64_t)(1 + s->o.retries);
	end_bad = r->end_expected - s->end_2xx;
	r->ok = true;
	if (end_bad) {
		r->ok = false;
		snprintf(r->reason, sizeof(r->reason),
			"%" PRIu64 " of %" PRIu64 " end events got no 2xx (%" PRIu64
			" errors, %" PRIu64 " not sent, %" PRIu64 " unanswered%s%s)",
			end_bad, r->end_expected, s->errors, r->not_sent, r->unanswered,
			s->stopped ? ", " : "", s->stopped ? s->stopped : "");
	} else if (d->used && d->error[0]) {
		r->ok = false;
		snprintf(r->reason, sizeof(r->reason), "database: %.200s", d->error);
	} else if (d->used && (d->missing || d->unexpected || d->multi || d->duplicates)) {
		r->ok = false;
		snprintf(r->reason, sizeof(r->reason),
			"ledger has %lld rows for %ld billable calls (%ld missing, %lld duplicate, "
			"%ld unexpected) after %.1f s",
			d->rows, d->expected, d->missing, d->duplicates, d->unexpected,
			d->waited_s);
	}
}

static void
sim_print(const struct sim *s, const struct sim_report *r)
{
	const struct sim_db *d = &s->db;
	bool first = true;

	printf("callsim %s/%s  prefix %s  %ld calls (%s lifecycle, %s, %" PRId64
	       " ms, retries %d)  concurrency %d\n",
		provider_name(s->o.provider), s->o.account, s->prefix, s->o.calls,
		s->o.full ? "full" : "end", s->o.outbound ? "outbound" : "inbound",
		s->o.duration_ms, s->o.retries, s->o.concurrency);
	printf("  %-13s %" PRIu64 " sent, %" PRIu64 " answered in %.3f s = %.1f events/s\n",
		"requests", s->sent, s->answered, r->elapsed_s, r->eps);
	printf("  %-13s", "status");
	for (int c = 0; c < 600; c++) {
		if (s->status[c]) {
			printf("%s%d: %" PRIu64, first ? " " : ", ", c, s->status[c]);
			first = false;
		}
	}
	if (s->status_other)
		printf("%sother: %" PRIu64, first ? " " : ", ", s->status_other);
	else if (first)
		printf(" none");
	printf("\n");
	printf("  %-13s %" PRIu64 " (connect %" PRIu64 ", timeout %" PRIu64 ", eof %" PRIu64
	       ", other %" PRIu64 "); not sent %" PRIu64 ", unanswered %" PRIu64 "\n",
		"no answer", s->errors, s->err[SIM_ERR_CONNECT], s->err[SIM_ERR_TIMEOUT],
		s->err[SIM_ERR_EOF], s->err[SIM_ERR_OTHER], r->not_sent, r->unanswered);
	if (s->sample[0])
		printf("  %-13s %s\n", "first non-2xx", s->sample);
	printf("  %-13s p50 %.2f ms  p99 %.2f ms  max %.2f ms  (mean %.2f, %zu answers)\n",
		"latency", r->lat_p50, r->lat_p99, r->lat_max, r->lat_mean, s->n_lat);
	if (s->has_start)
		printf("  %-13s %" PRIu64 "/%" PRIu64 " got 2xx\n", "start events", s->start_2xx,
			s->start_sent);
	printf("  %-13s %" PRIu64 "/%" PRIu64 " got 2xx\n", "end events", s->end_2xx,
		r->end_expected);
	if (d->used) {
		if (d->error[0])
			printf("  %-13s error: %s\n", "ledger", d->error);
		printf("  %-13s %lld rows for %ld billable calls: %lld distinct, %lld duplicate, "
		       "%ld missing, %ld unexpected (%s after %.1f s)\n",
			"ledger", d->rows, d->expected, d->distinct, d->duplicates, d->missing,
			d->unexpected, d->reached ? "complete" : "gave up", d->waited_s);
		if (d->unconfirmed)
			printf("  %-13s %ld more rows for calls whose end event got no 2xx "
			       "(answer lost after the event was kept)\n",
				"", d->unconfirmed);
		if (d->rows)
			printf("  %-13s billed_seconds %" PRId64 "..%" PRId64 " (total %" PRId64
			       "), amount_micros %" PRId64 "..%" PRId64 " (total %" PRId64
			       "), duration_ms %" PRId64 "..%" PRId64 "\n",
				"billing", d->bs_min, d->bs_max, d->bs_total, d->amt_min,
				d->amt_max, d->amt_total, d->dur_min, d->dur_max);
		if (d->n_delay)
			printf("  %-13s p50 %.1f ms  p99 %.1f ms  max %.1f ms  (min %.1f, %zu calls)\n",
				"end->ledger", r->d_p50, r->d_p99, r->d_max, r->d_min, d->n_delay);
		printf("  %-13s %lld rows, %lld ended\n", "calls table", d->calls_rows,
			d->calls_ended);
	}
	printf("  %-13s %s%s%s\n", "result", r->ok ? "OK" : "FAIL", r->ok ? "" : ": ",
		r->ok ? "" : r->reason);
	fflush(stdout);
}

static json_t *
jreal3(double v)
{
	/* three decimals are plenty and keep the file readable */
	return json_real((double)(long long)(v * 1000.0 + (v < 0 ? -0.5 : 0.5)) / 1000.0);
}

static int
sim_write_json(const struct sim *s, const struct sim_report *r)
{
	const struct sim_db *d = &s->db;
	json_t *j = json_object(), *st = json_object(), *o;
	char code[16];
	int rc;

	jstr(j, "provider", provider_name(s->o.provider));
	jstr(j, "account", s->o.account);
	jstr(j, "prefix", s->prefix);
	jstr(j, "url", s->o.url);
	jint(j, "calls", s->o.calls);
	jstr(j, "lifecycle", s->o.full ? "full" : "end");
	jstr(j, "direction", s->o.outbound ? "outbound" : "inbound");
	jint(j, "duration_ms", s->o.duration_ms);
	jint(j, "concurrency", s->o.concurrency);
	jint(j, "retries", s->o.retries);
	o = json_object();
	jint(o, "sent", (int64_t)s->sent);
	jint(o, "answered", (int64_t)s->answered);
	jint(o, "answered_2xx", (int64_t)s->answered_2xx);
	jint(o, "no_answer", (int64_t)s->errors);
	for (int k = 0; k < SIM_ERRS; k++) {
		char name[32];

		snprintf(name, sizeof(name), "no_answer_%s", sim_err_names[k]);
		jint(o, name, (int64_t)s->err[k]);
	}
	jint(o, "not_sent", (int64_t)r->not_sent);
	jint(o, "unanswered", (int64_t)r->unanswered);
	jint(o, "start_sent", (int64_t)s->start_sent);
	jint(o, "start_2xx", (int64_t)s->start_2xx);
	jint(o, "end_sent", (int64_t)s->end_sent);
	jint(o, "end_2xx", (int64_t)s->end_2xx);
	jint(o, "end_expected", (int64_t)r->end_expected);
	json_object_set_new(j, "requests", o);
	for (int c = 0; c < 600; c++) {
		if (s->status[c]) {
			snprintf(code, sizeof(code), "%d", c);
			jint(st, code, (int64_t)s->status[c]);
		}
	}
	if (s->status_other)
		jint(st, "other", (int64_t)s->status_other);
	json_object_set_new(j, "status", st);
	json_object_set_new(j, "elapsed_s", jreal3(r->elapsed_s));
	json_object_set_new(j, "events_per_s", jreal3(r->eps));
	json_object_set_new(j, "latency_ms",
		json_pack("{s:o, s:o, s:o, s:o, s:I}", "p50", jreal3(r->lat_p50), "p99",
			jreal3(r->lat_p99), "max", jreal3(r->lat_max), "mean", jreal3(r->lat_mean),
			"count", (json_int_t)s->n_lat));
	if (s->sample[0])
		jstr(j, "first_non_2xx", s->sample);
	if (s->stopped)
		jstr(j, "stopped", s->stopped);
	if (d->used) {
		o = json_object();
		jint(o, "billable_calls", d->expected);
		jint(o, "rows", d->rows);
		jint(o, "distinct", d->distinct);
		jint(o, "duplicates", d->duplicates);
		jint(o, "missing", d->missing);
		jint(o, "unexpected", d->unexpected);
		jint(o, "unconfirmed", d->unconfirmed);
		json_object_set_new(o, "complete", json_boolean(d->reached));
		json_object_set_new(o, "waited_s", jreal3(d->waited_s));
		json_object_set_new(o, "billed_seconds",
			json_pack("{s:I, s:I, s:I}", "min", (json_int_t)d->bs_min, "max",
				(json_int_t)d->bs_max, "total", (json_int_t)d->bs_total));
		json_object_set_new(o, "amount_micros",
			json_pack("{s:I, s:I, s:I}", "min", (json_int_t)d->amt_min, "max",
				(json_int_t)d->amt_max, "total", (json_int_t)d->amt_total));
		json_object_set_new(o, "duration_ms",
			json_pack("{s:I, s:I}", "min", (json_int_t)d->dur_min, "max",
				(json_int_t)d->dur_max));
		json_object_set_new(o, "end_to_ledger_ms",
			json_pack("{s:o, s:o, s:o, s:o, s:I}", "p50", jreal3(r->d_p50), "p99",
				jreal3(r->d_p99), "max", jreal3(r->d_max), "min", jreal3(r->d_min),
				"count", (json_int_t)d->n_delay));
		jint(o, "calls_rows", d->calls_rows);
		jint(o, "calls_ended", d->calls_ended);
		if (d->error[0])
			jstr(o, "error", d->error);
		json_object_set_new(j, "ledger", o);
	}
	json_object_set_new(j, "ok", json_boolean(r->ok));
	if (!r->ok)
		jstr(j, "reason", r->reason);
	if (strcmp(s->o.json_path, "-") == 0) {
		rc = json_dumpf(j, stdout,
			JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
		fputc('\n', stdout);
	} else {
		rc = json_dump_file(j, s->o.json_path,
			JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
	}
	json_decref(j);
	if (rc != 0) {
		fprintf(stderr, "callsim: cannot write %s: %s\n", s->o.json_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* callsim sign: a body's authentication headers (what tools/send-webhook signs with)          */

#define SIM_SIGN_MAX_BODY (64 << 20)

static void
sign_usage(FILE *f)
{
	fputs("usage: callsim sign --provider retell|vapi|bland --secret SECRET [--timestamp T]\n"
	      "                    [--vapi-auth hmac|bearer] [--bland-dynamic SLUG] < BODY\n"
	      "       callsim sign --stdio\n"
	      "\n"
	      "Prints the authentication headers the provider sends with the body read from stdin,\n"
	      "one \"Name: value\" line each, signed with the daemon's own code (callrouted/signature.h):\n"
	      "  retell  x-retell-signature: v=<ms>,d=<hex HMAC-SHA256(key, body || ms)>\n"
	      "  vapi    x-timestamp: <s> and x-signature: <hex HMAC-SHA256(secret, \"<s>.\" || body)>,\n"
	      "          or with --vapi-auth bearer: Authorization: Bearer <secret>\n"
	      "  bland   X-Webhook-Signature: <hex HMAC-SHA256(secret, body)>, or with\n"
	      "          --bland-dynamic SLUG the dynamic_data token: Authorization: Bearer <token>\n"
	      "\n"
	      "  --timestamp T   Retell: milliseconds, Vapi: the x-timestamp text (default: now, Vapi\n"
	      "                  in seconds)\n"
	      "  --stdio         many requests, one a line: \"PROVIDER SECRET_HEX TIMESTAMP|- MODE\n"
	      "                  BODY_HEX\" (MODE hmac, bearer or dynamic=SLUG; hex may be empty for\n"
	      "                  the body); answers one line each, the headers separated by tabs, or\n"
	      "                  \"error\"; until end of input\n"
	      "Exit status: 0 done, 1 signing failed, 2 usage error.\n",
		f);
}

static char *
sign_read_body(size_t *len)
{
	size_t cap = 65536, n = 0, r;
	char *buf = xcalloc(1, cap);

	while ((r = fread(buf + n, 1, cap - n, stdin)) > 0) {
		n += r;
		if (n == cap) {
			if (cap >= SIM_SIGN_MAX_BODY)
				die_usage("the body is larger than 64 MiB", NULL);
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf) {
				fputs("callsim: out of memory\n", stderr);
				exit(1);
			}
		}
	}
	if (ferror(stdin)) {
		fprintf(stderr, "callsim: could not read the body: %s\n", strerror(errno));
		exit(1);
	}
	*len = n;
	return buf;
}

/* 1 to 18 digits (a Retell ms or a Vapi x-timestamp) */
static bool
sign_valid_ts(const char *ts)
{
	size_t n = strlen(ts);

	return n >= 1 && n <= 18 && strspn(ts, "0123456789") == n;
}

/*
 * The headers of one body, each followed by sep.  vapi_bearer: Vapi's bearer form; slug: Bland's
 * dynamic_data token for that account.  False if signing failed.
 */
static bool
sign_one(enum provider_id pid, const char *secret, const char *ts, bool vapi_bearer,
	const char *slug, const char *body, size_t len, char sep)
{
	char hdr[SIG_RETELL_HEADER_SIZE], tsbuf[24];
	struct timespec now;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &now);
	switch (pid) {
	case PROVIDER_RETELL:
		ok = sig_sign_retell(secret, body, len,
			ts ? strtoll(ts, NULL, 10) :
			     (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
			hdr, sizeof(hdr));
		if (ok)
			printf("x-retell-signature: %s%c", hdr, sep);
		return ok;
	case PROVIDER_VAPI:
		if (vapi_bearer) {
			printf("Authorization: Bearer %s%c", secret, sep);
			return true;
		}
		if (!ts) {
			snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)now.tv_sec);
			ts = tsbuf;
		}
		ok = sig_sign_vapi_hmac(secret, ts, body, len, hdr);
		if (ok)
			printf("x-timestamp: %s%cx-signature: %s%c", ts, sep, hdr, sep);
		return ok;
	default:
		if (slug) {
			ok = sig_bland_dynamic_token(secret, slug, hdr);
			if (ok)
				printf("Authorization: Bearer %s%c", hdr, sep);
		} else {
			ok = sig_sign_bland(secret, body, len, hdr);
			if (ok)
				printf("X-Webhook-Signature: %s%c", hdr, sep);
		}
		return ok;
	}
}

/* hex text (even length, either case) into bytes at out, in place; false if not hex. */
static bool
sign_unhex(char *s, size_t *len)
{
	size_t n = strlen(s);

	if (n % 2)
		return false;
	for (size_t i = 0; i < n; i += 2) {
		int hi = 0, lo = 0;

		for (int k = 0; k < 2; k++) {
			char c = s[i + (size_t)k];
			int v = c >= '0' && c <= '9' ? c - '0' :
				c >= 'a' && c <= 'f' ? c - 'a' + 10 :
				c >= 'A' && c <= 'F' ? c - 'A' + 10 :
						       -1;

			if (v < 0)
				return false;
			*(k ? &lo : &hi) = v;
		}
		s[i / 2] = (char)(hi << 4 | lo);
	}
	s[n / 2] = 0;
	*len = n / 2;
	return true;
}

/* One --stdio request line (its newline removed): answer it on stdout. */
static void
sign_request(char *line)
{
	char *f[5], *save = NULL;
	enum provider_id pid;
	size_t slen, blen;
	int n = 0;
	bool ok = false;

	/* strtok_r drops empty fields: an empty body may be its missing fifth field */
	for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n == 4)
		f[n++] = line + strlen(line); /* "" */
	if (n == 5 && provider_from_name(f[0], strlen(f[0]), &pid) && sign_unhex(f[1], &slen) &&
		slen == strlen(f[1]) && (strcmp(f[2], "-") == 0 || sign_valid_ts(f[2])) &&
		sign_unhex(f[4], &blen)) {
		const char *ts = strcmp(f[2], "-") == 0 ? NULL : f[2];
		bool bearer = strcmp(f[3], "bearer") == 0;
		const char *slug = strncmp(f[3], "dynamic=", 8) == 0 ? f[3] + 8 : NULL;

		if ((bearer && pid == PROVIDER_VAPI) || (slug && pid == PROVIDER_BLAND) ||
			strcmp(f[3], "hmac") == 0)
			ok = sign_one(pid, f[1], ts, bearer, slug, f[4], blen, '\t');
	}
	fputs(ok ? "\n" : "error\n", stdout);
	fflush(stdout);
}

static int
sign_stdio(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = 0;
		sign_request(line);
	}
	free(line);
	return 0;
}

static int
sign_main(int argc, char **argv)
{
	enum {
		O_PROVIDER = 1,
		O_SECRET,
		O_TIMESTAMP,
		O_VAPI_AUTH,
		O_BLAND_DYNAMIC,
		O_STDIO,
		O_HELP
	};
	static const struct option longopts[] = {
		{ "provider", required_argument, NULL, O_PROVIDER },
		{ "secret", required_argument, NULL, O_SECRET },
		{ "timestamp", required_argument, NULL, O_TIMESTAMP },
		{ "vapi-auth", required_argument, NULL, O_VAPI_AUTH },
		{ "bland-dynamic", required_argument, NULL, O_BLAND_DYNAMIC },
		{ "stdio", no_argument, NULL, O_STDIO },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *provider = NULL, *secret = NULL, *ts = NULL, *vapi_auth = "hmac";
	const char *slug = NULL;
	enum provider_id pid;
	bool stdio = false, ok;
	size_t len = 0;
	char *body;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_PROVIDER:
			provider = optarg;
			break;
		case O_SECRET:
			secret = optarg;
			break;
		case O_TIMESTAMP:
			ts = optarg;
			break;
		case O_VAPI_AUTH:
			vapi_auth = optarg;
			break;
		case O_BLAND_DYNAMIC:
			slug = optarg;
			break;
		case O_STDIO:
			stdio = true;
			break;
		case O_HELP:
			sign_usage(stdout);
			return 0;
		default:
			die_usage("unknown option or missing value",
				optind > 0 && optind <= argc ? argv[optind - 1] : NULL);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument", argv[optind]);
	if (stdio) {
		if (provider || secret || ts || slug || strcmp(vapi_auth, "hmac") != 0)
			die_usage("--stdio takes no other option", NULL);
		return sign_stdio();
	}
	if (!provider || !provider_from_name(provider, strlen(provider), &pid))
		die_usage("--provider retell, vapi or bland is required", provider);
	if (!secret || !*secret)
		die_usage("--secret is required and must not be empty", NULL);
	if (strcmp(vapi_auth, "hmac") != 0 && strcmp(vapi_auth, "bearer") != 0)
		die_usage("--vapi-auth must be hmac or bearer", vapi_auth);
	if (strcmp(vapi_auth, "hmac") != 0 && pid != PROVIDER_VAPI)
		die_usage("--vapi-auth applies to --provider vapi only", vapi_auth);
	if (slug && (pid != PROVIDER_BLAND || !valid_slug(slug)))
		die_usage("--bland-dynamic takes a Bland account slug ([a-z0-9_-]{1,64})", slug);
	if (ts && (pid == PROVIDER_BLAND || !sign_valid_ts(ts)))
		die_usage("--timestamp takes 1 to 18 digits (Retell ms, Vapi x-timestamp)", ts);

	body = sign_read_body(&len);
	ok = sign_one(pid, secret, ts, strcmp(vapi_auth, "bearer") == 0, slug, body, len, '\n');
	free(body);
	if (!ok) {
		fputs("callsim: HMAC-SHA256 failed\n", stderr);
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
	struct sim *s = xcalloc(1, sizeof(*s));
	struct sim_report r;
	size_t steps;
	int rc;

	if (argc > 1 && strcmp(argv[1], "sign") == 0) {
		free(s);
		return sign_main(argc - 1, argv + 1);
	}

	parse_options(s, argc, argv);
	if (s->o.prefix) {
		snprintf(s->prefix, sizeof(s->prefix), "%s", s->o.prefix);
	} else {
		unsigned char rnd[5];

		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			fputs("callsim: no random bytes for the prefix\n", stderr);
			return 1;
		}
		snprintf(s->prefix, sizeof(s->prefix), "sim-%02x%02x%02x%02x%02x", rnd[0], rnd[1],
			rnd[2], rnd[3], rnd[4]);
	}
	signal(SIGPIPE, SIG_IGN);
	s->has_start = s->o.full && s->o.provider != PROVIDER_BLAND && sim_connected(s);
	s->nsteps = (s->has_start ? 1 : 0) + 1 + s->o.retries;
	steps = (size_t)s->o.calls * (size_t)s->nsteps;
	s->calls = xcalloc((size_t)s->o.calls, sizeof(*s->calls));
	s->lat_us = xcalloc(steps, sizeof(int64_t));
	if (s->o.database)
		sim_db_open(s);

	sim_run(s);
	sim_close(s);
	if (s->pg) {
		sim_db_check(s);
		PQfinish(s->pg);
		s->pg = NULL;
	}
	sim_figures(s, &r);
	sim_print(s, &r);
	rc = r.ok ? 0 : 1;
	if (s->o.json_path && sim_write_json(s, &r) != 0)
		rc = 1;
	if (!r.ok)
		fprintf(stderr, "callsim: FAIL: %s\n", r.reason);
	free(s->db.delay_ms);
	free(s->lat_us);
	free(s->calls);
	free(s->slots);
	free(s->host);
	free(s->host_header);
	free(s->uri);
	free(s);
	return rc;
}
