/* callroutectl.c: the command-line client: the admin API over HTTP, some work on the database. */
/*
 * Numbers and calls go through the daemon's admin API
 * (HTTP on the admin listener, a bearer token); tokens, migrate and usage work on the database
 * directly.  Exit codes: 0 done, 1 error (the reason on stderr), 2 usage error.
 */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "callrouted/admin_api.h"
#include "callrouted/config.h"
#include "callrouted/e164.h"
#include "callrouted/log.h"
#include "callrouted/migrate.h"
#include "callrouted/provider.h"
#include "callrouted/rating.h"
#include "callrouted/text.h"
#include "ctl_progress.h"

#define CTL_OK 0
#define CTL_ERROR 1
#define CTL_USAGE 2

#define CTL_DEFAULT_URL "http://127.0.0.1:9090"
#define CTL_TIMEOUT_S 30
#define CTL_LIST_MAX ADMIN_API_LIST_MAX /* the API's largest page */

/* ctl_getopt's answers besides an option's value */
#define CTL_HELP_SHOWN (-2)
#define CTL_BAD_OPTION (-3)

enum {
	OPT_JSON = 1000,
	OPT_URL,
	OPT_TOKEN,
	OPT_CLIENT,
	OPT_AGENT,
	OPT_PROVIDER,
	OPT_STATUS,
	OPT_LIMIT,
	OPT_AFTER,
	OPT_ALL,
	OPT_ACCOUNT,
	OPT_AREA_CODE,
	OPT_NICKNAME,
	OPT_TO,
	OPT_FROM,
	OPT_AGENCY,
	OPT_NAME,
	OPT_BY,
	OPT_FORMAT,
	OPT_DRY_RUN,
	OPT_REPAIR,
	OPT_FORCE,
	OPT_E164,
	OPT_VARIABLES,
	OPT_METADATA,
	OPT_AT,
};

/* Every command takes these (--url and --token only matter to those that call the API). */
#define CTL_COMMON_OPTS                                                                            \
	{ "help", no_argument, NULL, 'h' }, { "json", no_argument, NULL, OPT_JSON },               \
		{ "url", required_argument, NULL, OPT_URL },                                       \
		{ "token", required_argument, NULL, OPT_TOKEN },                                   \
	{                                                                                          \
		NULL, 0, NULL, 0                                                                   \
	}

struct ctl_cmd;
typedef int (*ctl_run_fn)(const struct ctl_cmd *cmd, int argc, char **argv);

struct ctl_cmd {
	const char *group; /* "numbers", "calls", "tokens"; NULL: a command of its own */
	const char *name;
	const char *synopsis; /* what follows the command's name */
	const char *help;     /* what it does, then its options */
	ctl_run_fn run;
};

static const char *ctl_config = "/etc/callrouted/callrouted.conf";
static bool ctl_config_given;
static const char *ctl_database;
static const char *ctl_url;
static const char *ctl_token;
static bool ctl_json;

/* ------------------------------------------------------------------------------------------ */
/* Messages, options, arguments                                                                */

static void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
ctl_error(const char *fmt, ...)
{
	va_list ap;

	fputs("callroutectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char *
ctl_cmd_name(const struct ctl_cmd *cmd, char *buf, size_t size)
{
	if (cmd->group)
		snprintf(buf, size, "%s %s", cmd->group, cmd->name);
	else
		snprintf(buf, size, "%s", cmd->name);
	return buf;
}

static void
ctl_cmd_help(FILE *f, const struct ctl_cmd *cmd)
{
	char name[64];

	fprintf(f, "usage: callroutectl [GLOBAL OPTIONS] %s%s%s\n\n%s\n",
		ctl_cmd_name(cmd, name, sizeof(name)), *cmd->synopsis ? " " : "", cmd->synopsis,
		cmd->help);
	fprintf(f, "\n  --json                  machine-readable output (JSON on stdout)\n"
		   "  -h, --help              this help\n");
}

static int ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A usage error of cmd: the reason, the synopsis; returns CTL_USAGE. */
static int
ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	char name[64];
	va_list ap;

	ctl_cmd_name(cmd, name, sizeof(name));
	fprintf(stderr, "callroutectl %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: callroutectl %s %s\n(callroutectl %s --help tells more)\n", name,
		cmd->synopsis, name);
	return CTL_USAGE;
}

/* The --url value: http://HOST[:PORT][/PATH], no query or fragment; false with *why. */
static bool
ctl_url_ok(const char *url, const char **why)
{
	struct evhttp_uri *uri = evhttp_uri_parse(url);
	const char *scheme = uri ? evhttp_uri_get_scheme(uri) : NULL;
	const char *host = uri ? evhttp_uri_get_host(uri) : NULL;
	bool ok = false;

	if (!uri || !scheme || !host || !*host || evhttp_uri_get_query(uri) ||
		evhttp_uri_get_fragment(uri))
		*why = "want http://HOST:PORT";
	else if (strcasecmp(scheme, "http") != 0)
		*why = "only http:// (the admin listener is plain HTTP, keep it on loopback)";
	else
		ok = true;
	if (uri)
		evhttp_uri_free(uri);
	return ok;
}

/* The --token value: what ctl_bearer() accepts. */
static bool
ctl_token_ok(const char *t)
{
	return admin_token_ok(t);
}

/* --url, --token and --json, before the command (cmd NULL) or in it: each once, of its form;
 * false (reported) when not. */
static bool
ctl_common_value(const struct ctl_cmd *cmd, int opt, const char *value)
{
	const char *why;

	switch (opt) {
	case OPT_JSON:
		if (ctl_json)
			goto twice;
		ctl_json = true;
		return true;
	case OPT_URL:
		if (ctl_url)
			goto twice;
		if (!ctl_url_ok(value, &why))
			goto bad_url;
		ctl_url = value;
		return true;
	case OPT_TOKEN:
		if (ctl_token)
			goto twice;
		if (!ctl_token_ok(value))
			goto bad_token;
		ctl_token = value;
		return true;
	default:
		return false;
	}
twice:
	if (cmd)
		ctl_usage_error(cmd, "option --%s given twice",
			opt == OPT_JSON ? "json" :
			opt == OPT_URL  ? "url" :
					  "token");
	else
		ctl_error("option --%s given twice", opt == OPT_JSON ? "json" :
						     opt == OPT_URL  ? "url" :
								       "token");
	return false;
bad_url:
	if (cmd)
		ctl_usage_error(cmd, "bad --url \"%s\": %s", value, why);
	else
		ctl_error("bad --url \"%s\": %s", value, why);
	return false;
bad_token:
	if (cmd)
		ctl_usage_error(cmd, "bad --token: printable characters, no spaces, at most 256");
	else
		ctl_error("bad --token: printable characters, no spaces, at most 256");
	return false;
}

#define CTL_MAX_OPTS 32

/*
 * getopt_long, with the common options handled here; CTL_HELP_SHOWN or CTL_BAD_OPTION (reported)
 * end the command.  Strict: an option given twice, an abbreviated one (getopt_long takes --acc
 * for --account), a value given to an option that takes none: a usage error naming it.
 */
static int
ctl_getopt(const struct ctl_cmd *cmd, int argc, char **argv, const struct option *opts)
{
	static const struct option *seen_for;
	static bool seen[CTL_MAX_OPTS];
	const char *elem;
	size_t n;
	int c, li;

	if (seen_for != opts) {
		seen_for = opts;
		memset(seen, 0, sizeof(seen));
	}
	opterr = 0;
	for (;;) {
		li = -1;
		c = getopt_long(argc, argv, ":h", opts, &li);
		if (li >= 0 && li < CTL_MAX_OPTS) {
			/* the element naming it: "--name", "--name=VALUE", "--name" before VALUE */
			elem = argv[optind - 1];
			if (opts[li].has_arg == required_argument && optarg == argv[optind - 1] &&
				optind >= 2)
				elem = argv[optind - 2];
			n = strlen(opts[li].name);
			if (strncmp(elem, "--", 2) != 0 ||
				strncmp(elem + 2, opts[li].name, n) != 0 ||
				(elem[2 + n] != '\0' && elem[2 + n] != '=')) {
				ctl_usage_error(cmd, "unknown option %.*s (did you mean --%s?)",
					(int)strcspn(elem, "="), elem, opts[li].name);
				return CTL_BAD_OPTION;
			}
			if (c != OPT_JSON && c != OPT_URL && c != OPT_TOKEN) {
				if (seen[li]) {
					ctl_usage_error(cmd, "option --%s given twice",
						opts[li].name);
					return CTL_BAD_OPTION;
				}
				seen[li] = true;
			}
		}
		switch (c) {
		case 'h':
			ctl_cmd_help(stdout, cmd);
			return CTL_HELP_SHOWN;
		case OPT_JSON:
		case OPT_URL:
		case OPT_TOKEN:
			if (!ctl_common_value(cmd, c, optarg))
				return CTL_BAD_OPTION;
			continue;
		case ':':
			ctl_usage_error(cmd, "%s needs a value", argv[optind - 1]);
			return CTL_BAD_OPTION;
		case '?':
			elem = argv[optind - 1];
			if (optopt && strncmp(elem, "--", 2) == 0)
				ctl_usage_error(cmd, "option %.*s takes no value",
					(int)strcspn(elem, "="), elem);
			else if (optopt)
				ctl_usage_error(cmd, "unknown option -%c", optopt);
			else
				ctl_usage_error(cmd, "unknown option %s", elem);
			return CTL_BAD_OPTION;
		default:
			return c;
		}
	}
}

/* The positional arguments left after the options: exactly n of them. */
static bool
ctl_args(const struct ctl_cmd *cmd, int argc, char **argv, int n, int *rc)
{
	int have = argc - optind;

	if (have == n)
		return true;
	if (have < n)
		*rc = ctl_usage_error(cmd, "missing argument");
	else
		*rc = ctl_usage_error(cmd, "unexpected argument \"%s\"", argv[optind + n]);
	return false;
}

/* A positive integer id (what the API and the database take: at most 18 digits). */
static bool
ctl_parse_id(const char *s, uint64_t *out)
{
	return admin_api_parse_id(s, out);
}

/* An E.164 number in canonical form, or false. */
static bool
ctl_parse_e164(const char *s, char *out, size_t size)
{
	uint64_t key;

	return e164_parse(s, strlen(s), &key) && e164_format(key, out, size) > 0;
}

static void
ctl_print_json(json_t *o)
{
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

/* ------------------------------------------------------------------------------------------ */
/* Tables                                                                                      */

#define CTL_TABLE_MAX_COLS 12

struct ctl_table {
	size_t ncols, nrows, cap; /* ncols <= CTL_TABLE_MAX_COLS */
	char **cells;             /* row-major; row 0 is the heading */
};

static void
ctl_table_add(struct ctl_table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		char **cells = realloc(t->cells, cap * t->ncols * sizeof(*cells));

		if (!cells) {
			ctl_error("out of memory");
			exit(CTL_ERROR);
		}
		t->cells = cells;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char *s = strdup(row[i] ? row[i] : "");

		if (!s) {
			ctl_error("out of memory");
			exit(CTL_ERROR);
		}
		t->cells[t->nrows * t->ncols + i] = s;
	}
	t->nrows++;
}

/* Width on a terminal: UTF-8 characters, not bytes. */
static size_t
ctl_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Print and free. */
static void
ctl_table_print(struct ctl_table *t)
{
	size_t w[CTL_TABLE_MAX_COLS] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t n = ctl_width(t->cells[r * t->ncols + c]);

			if (n > w[c])
				w[c] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];

			fputs(s, stdout);
			if (c + 1 < t->ncols)
				for (size_t k = ctl_width(s); k < w[c] + 2; k++)
					fputc(' ', stdout);
		}
		fputc('\n', stdout);
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The admin API: one blocking request on a private event_base                                 */

struct ctl_http {
	struct event_base *base;
	int status; /* 0: no answer */
	enum evhttp_request_error err;
	bool failed; /* err is set */
	struct evbuffer *body;
};

static void
ctl_http_done(struct evhttp_request *req, void *arg)
{
	struct ctl_http *h = arg;

	/* req is NULL, or has no response code, when the request failed */
	if (req && evhttp_request_get_response_code(req) > 0) {
		h->status = evhttp_request_get_response_code(req);
		evbuffer_add_buffer(h->body, evhttp_request_get_input_buffer(req));
	}
	event_base_loopbreak(h->base);
}

static void
ctl_http_error(enum evhttp_request_error err, void *arg)
{
	struct ctl_http *h = arg;

	h->err = err;
	h->failed = true;
}

/* The admin API's base URL (malloc'd): --url, $CALLROUTED_URL, the admin_listen of an explicit
 * -c FILE, or the default. */
static char *
ctl_base_url(void)
{
	const char *env = getenv("CALLROUTED_URL");
	struct config *cfg;
	char *url = NULL;
	int n = -1;

	if (ctl_url)
		return strdup(ctl_url);
	if (env && *env)
		return strdup(env);
	if (!ctl_config_given)
		return strdup(CTL_DEFAULT_URL);
	cfg = config_load(ctl_config);
	if (cfg && cfg->admin_listen && *cfg->admin_listen) {
		const char *l = cfg->admin_listen;

		/* a wildcard listener is reached on loopback */
		if (strncmp(l, "0.0.0.0:", 8) == 0)
			n = asprintf(&url, "http://127.0.0.1:%s", l + 8);
		else if (strncmp(l, "[::]:", 5) == 0)
			n = asprintf(&url, "http://[::1]:%s", l + 5);
		else
			n = asprintf(&url, "http://%s", l);
	}
	config_free(cfg);
	return n < 0 ? strdup(CTL_DEFAULT_URL) : url;
}

/* The bearer token: --token or $CALLROUTED_TOKEN.  Never printed. */
static const char *
ctl_bearer(void)
{
	const char *t = ctl_token ? ctl_token : getenv("CALLROUTED_TOKEN");

	if (!t || !*t) {
		ctl_error("no API token: give --token TOKEN or set CALLROUTED_TOKEN "
			  "(callroutectl tokens create makes one)");
		return NULL;
	}
	if (!admin_token_ok(t)) {
		ctl_error(
			"the API token is malformed (printable characters, no spaces, at most 256)");
		return NULL;
	}
	return t;
}

static const char *
ctl_http_failure(const struct ctl_http *h)
{
	if (!h->failed)
		return "no answer (is the daemon running, and is this its admin_listen?)";
	switch (h->err) {
	case EVREQ_HTTP_TIMEOUT:
		return "no answer within 30 s";
	case EVREQ_HTTP_EOF:
		return "the connection closed before an answer";
	case EVREQ_HTTP_INVALID_HEADER:
		return "the answer was not HTTP";
	case EVREQ_HTTP_BUFFER_ERROR:
		return "could not connect or read the answer";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "the answer was too long";
	default:
		return "the request failed";
	}
}

static const char *
ctl_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	default:
		return "?";
	}
}

/*
 * One request to the admin API: method, path (from /v1/...), an optional JSON body.  Returns
 * CTL_OK with the answer's JSON in *out, or CTL_ERROR / CTL_USAGE with the reason on stderr (an
 * API error: its status, code and message).
 */
static int
ctl_api(enum evhttp_cmd_type method, const char *path, json_t *body, json_t **out)
{
	struct ctl_http h = { 0 };
	struct evhttp_uri *uri = NULL;
	struct evhttp_connection *conn = NULL;
	struct evhttp_request *req;
	struct evkeyvalq *hdr;
	const char *token, *scheme, *host, *prefix;
	char *url, *full = NULL, *auth = NULL, *hosthdr = NULL, *addr = NULL, *text = NULL;
	int port, rc = CTL_ERROR;
	json_t *answer = NULL;
	json_error_t jerr;
	size_t plen;

	*out = NULL;
	token = ctl_bearer();
	if (!token)
		return CTL_USAGE;
	url = ctl_base_url();
	if (!url) {
		ctl_error("out of memory");
		return CTL_ERROR;
	}
	uri = evhttp_uri_parse(url);
	scheme = uri ? evhttp_uri_get_scheme(uri) : NULL;
	host = uri ? evhttp_uri_get_host(uri) : NULL;
	if (!uri || !scheme || !host || !*host || evhttp_uri_get_query(uri) ||
		evhttp_uri_get_fragment(uri)) {
		ctl_error("bad API URL \"%s\": want http://HOST:PORT", url);
		rc = CTL_USAGE;
		goto done;
	}
	if (strcasecmp(scheme, "http") != 0) {
		ctl_error("bad API URL \"%s\": only http:// (the admin listener is plain HTTP, "
			  "keep it on loopback)",
			url);
		rc = CTL_USAGE;
		goto done;
	}
	port = evhttp_uri_get_port(uri);
	if (port < 0)
		port = 80;
	/* a base path, if any, goes before /v1/... */
	prefix = evhttp_uri_get_path(uri);
	if (!prefix)
		prefix = "";
	plen = strlen(prefix);
	while (plen > 0 && prefix[plen - 1] == '/')
		plen--;
	if (asprintf(&full, "%.*s%s", (int)plen, prefix, path) < 0 ||
		asprintf(&auth, "Bearer %s", token) < 0 ||
		asprintf(&hosthdr, "%s:%d", host, port) < 0) {
		full = auth = hosthdr = NULL;
		ctl_error("out of memory");
		goto done;
	}
	/* an IPv6 literal comes in brackets: the Host header keeps them, the connection not */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		if (!(addr = strndup(host + 1, strlen(host) - 2))) {
			ctl_error("out of memory");
			goto done;
		}
		host = addr;
	}
	h.base = event_base_new();
	h.body = evbuffer_new();
	if (!h.base || !h.body) {
		ctl_error("could not set up the HTTP client");
		goto done;
	}
	conn = evhttp_connection_base_new(h.base, NULL, host, (unsigned short)port);
	req = conn ? evhttp_request_new(ctl_http_done, &h) : NULL;
	if (!req) {
		ctl_error("could not set up the HTTP client");
		goto done;
	}
	evhttp_connection_set_timeout(conn, CTL_TIMEOUT_S);
	evhttp_connection_set_retries(conn, 0);
	evhttp_request_set_error_cb(req, ctl_http_error);
	hdr = evhttp_request_get_output_headers(req);
	evhttp_add_header(hdr, "Host", hosthdr);
	evhttp_add_header(hdr, "Authorization", auth);
	evhttp_add_header(hdr, "Accept", "application/json");
	evhttp_add_header(hdr, "User-Agent", "callroutectl/" CALLROUTED_VERSION);
	evhttp_add_header(hdr, "Connection", "close");
	if (body) {
		char len[32];

		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			evhttp_request_free(req);
			ctl_error("out of memory");
			goto done;
		}
		snprintf(len, sizeof(len), "%zu", strlen(text));
		evhttp_add_header(hdr, "Content-Type", "application/json");
		evhttp_add_header(hdr, "Content-Length", len);
		evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
	}
	/* on failure evhttp_make_request frees req */
	if (evhttp_make_request(conn, req, method, full) != 0) {
		ctl_error("%s %s: could not send the request to %s", ctl_method_name(method), path,
			url);
		goto done;
	}
	event_base_dispatch(h.base);
	if (h.status == 0) {
		ctl_error("%s %s: %s: %s", ctl_method_name(method), path, url,
			ctl_http_failure(&h));
		goto done;
	}
	{
		size_t n = evbuffer_get_length(h.body);
		const char *p = n ? (const char *)evbuffer_pullup(h.body, -1) : "";

		answer = n ? json_loadb(p, n, 0, &jerr) : NULL;
		if (h.status >= 200 && h.status < 300) {
			if (!answer) {
				ctl_error("%s %s: HTTP %d with an answer that is not JSON",
					ctl_method_name(method), path, h.status);
				goto done;
			}
			*out = answer;
			answer = NULL;
			rc = CTL_OK;
		} else {
			json_t *e = json_object_get(answer, ADMIN_API_ERROR_KEY);
			const char *code =
				json_string_value(json_object_get(e, ADMIN_API_ERROR_CODE));
			const char *msg =
				json_string_value(json_object_get(e, ADMIN_API_ERROR_MESSAGE));

			if (code && msg)
				ctl_error("%s %s: %d %s: %s", ctl_method_name(method), path,
					h.status, code, msg);
			else
				ctl_error("%s %s: HTTP %d: %.*s", ctl_method_name(method), path,
					h.status, (int)(n > 200 ? 200 : n), p);
		}
	}
done:
	json_decref(answer);
	if (conn)
		evhttp_connection_free(conn);
	if (h.body)
		evbuffer_free(h.body);
	if (h.base)
		event_base_free(h.base);
	if (uri)
		evhttp_uri_free(uri);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(text);
	free(full);
	free(hosthdr);
	free(addr);
	free(url);
	return rc;
}

/* One page of a paged GET (numbers list, numbers events, the list commands): the answer into
 * *answer (the previous one freed), its list member key appended to items, *next its
 * next_after (0: the last page).  CTL_OK, or an error (said). */
static int
ctl_get_page(const char *path, const char *key, json_t **answer, json_t *items, uint64_t *next)
{
	json_t *page, *na;
	int rc;

	json_decref(*answer);
	rc = ctl_api(EVHTTP_REQ_GET, path, NULL, answer);
	if (rc != CTL_OK)
		return rc;
	page = json_object_get(*answer, key);
	na = json_object_get(*answer, "next_after");
	if (!json_is_array(page)) {
		ctl_error("GET %s: the answer has no \"%s\" list", path, key);
		return CTL_ERROR;
	}
	json_array_extend(items, page);
	*next = json_is_integer(na) && json_integer_value(na) > 0 ?
			(uint64_t)json_integer_value(na) :
			0;
	return CTL_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* numbers, calls                                                                              */

/* A string member, or "-" for null / absent. */
static const char *
ctl_jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && *s ? s : "-";
}

/* "{id, name}" as "name (#id)", or "-". */
static void
ctl_ref(json_t *o, char *buf, size_t size)
{
	if (!json_is_object(o)) {
		snprintf(buf, size, "-");
		return;
	}
	snprintf(buf, size, "%s (#%" JSON_INTEGER_FORMAT ")", ctl_jstr(o, "name"),
		json_integer_value(json_object_get(o, "id")));
}

static void
ctl_number_row(struct ctl_table *t, json_t *n)
{
	char id[32], agent[160], client[160];
	const char *row[9];

	snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT,
		json_integer_value(json_object_get(n, "id")));
	ctl_ref(json_object_get(n, "agent"), agent, sizeof(agent));
	ctl_ref(json_object_get(n, "client"), client, sizeof(client));
	row[0] = id;
	row[1] = ctl_jstr(n, "e164");
	row[2] = ctl_jstr(n, "provider");
	row[3] = ctl_jstr(n, "account");
	row[4] = ctl_jstr(n, "nickname");
	row[5] = agent;
	row[6] = client;
	row[7] = ctl_jstr(n, "status");
	row[8] = ctl_jstr(n, "created_at");
	ctl_table_add(t, row);
}

static const char *const ctl_number_heading[9] = {
	"ID",
	"E164",
	"PROVIDER",
	"ACCOUNT",
	"NICKNAME",
	"AGENT",
	"CLIENT",
	"STATUS",
	"CREATED",
};

/* One number, a field a line. */
static void
ctl_number_print(json_t *n)
{
	char agent[160], client[160];

	if (ctl_json) {
		ctl_print_json(n);
		return;
	}
	ctl_ref(json_object_get(n, "agent"), agent, sizeof(agent));
	ctl_ref(json_object_get(n, "client"), client, sizeof(client));
	printf("id:        %" JSON_INTEGER_FORMAT "\n",
		json_integer_value(json_object_get(n, "id")));
	printf("e164:      %s\n", ctl_jstr(n, "e164"));
	printf("provider:  %s\n", ctl_jstr(n, "provider"));
	printf("account:   %s\n", ctl_jstr(n, "account"));
	printf("nickname:  %s\n", ctl_jstr(n, "nickname"));
	printf("agent:     %s\n", agent);
	printf("client:    %s\n", client);
	printf("status:    %s\n", ctl_jstr(n, "status"));
	printf("created:   %s\n", ctl_jstr(n, "created_at"));
	printf("released:  %s\n", ctl_jstr(n, "released_at"));
	if (json_is_string(json_object_get(n, "provider_note")))
		printf("note:      %s\n", ctl_jstr(n, "provider_note"));
}

static int
ctl_numbers_list(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "client", required_argument, NULL, OPT_CLIENT },
		{ "agent", required_argument, NULL, OPT_AGENT },
		{ "provider", required_argument, NULL, OPT_PROVIDER },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "e164", required_argument, NULL, OPT_E164 },
		CTL_COMMON_OPTS,
	};
	const char *client = NULL, *agent = NULL, *provider = NULL, *status = NULL, *e164 = NULL;
	uint64_t id, limit = 0, after = 0;
	bool all = false;
	enum provider_id pid;
	json_t *numbers, *answer = NULL;
	struct ctl_progress progress;
	char path[512];
	int c, rc = CTL_OK;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_CLIENT:
			if (!ctl_parse_id(optarg, &id))
				return ctl_usage_error(cmd,
					"--client takes a client id (a positive integer)");
			client = optarg;
			break;
		case OPT_AGENT:
			if (!ctl_parse_id(optarg, &id))
				return ctl_usage_error(cmd,
					"--agent takes an agent id (a positive integer)");
			agent = optarg;
			break;
		case OPT_PROVIDER:
			if (!provider_from_name(optarg, strlen(optarg), &pid))
				return ctl_usage_error(cmd,
					"--provider takes retell, vapi or bland");
			provider = optarg;
			break;
		case OPT_STATUS:
			if (strcmp(optarg, "active") != 0 && strcmp(optarg, "released") != 0 &&
				strcmp(optarg, "pending") != 0 && strcmp(optarg, "failed") != 0)
				return ctl_usage_error(cmd,
					"--status takes active, released, pending or failed");
			status = optarg;
			break;
		case OPT_LIMIT:
			if (!ctl_parse_id(optarg, &limit) || limit > CTL_LIST_MAX)
				return ctl_usage_error(cmd, "--limit takes 1 to %d", CTL_LIST_MAX);
			break;
		case OPT_AFTER:
			if (!ctl_parse_id(optarg, &after))
				return ctl_usage_error(cmd,
					"--after takes a number id (a positive integer)");
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_E164: {
			size_t d = strlen(optarg + (*optarg == '+'));

			if (d < 1 || d > 15 || strspn(optarg + (*optarg == '+'), "0123456789") != d)
				return ctl_usage_error(cmd,
					"--e164 takes +digits (a prefix) or digits (a part of the "
					"number), at most 15");
			e164 = optarg;
			break;
		}
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	if (all && !limit)
		limit = CTL_LIST_MAX;
	numbers = json_array();
	ctl_progress_start(&progress, "numbers list", "numbers", 0, ctl_json);
	for (;;) {
		uint64_t next;
		int n = snprintf(path, sizeof(path), ADMIN_API_NUMBERS "?");

		/* every value was validated: digits or a fixed word, nothing to escape */
		if (client)
			n += snprintf(path + n, sizeof(path) - n, "client=%s&", client);
		if (agent)
			n += snprintf(path + n, sizeof(path) - n, "agent=%s&", agent);
		if (provider)
			n += snprintf(path + n, sizeof(path) - n, "provider=%s&", provider);
		if (status)
			n += snprintf(path + n, sizeof(path) - n, "status=%s&", status);
		if (limit)
			n += snprintf(path + n, sizeof(path) - n, "limit=%" PRIu64 "&", limit);
		if (after)
			n += snprintf(path + n, sizeof(path) - n, "after=%" PRIu64 "&", after);
		if (e164) /* digits, after a '+' escaped */
			n += snprintf(path + n, sizeof(path) - n, "e164=%s%s&",
				*e164 == '+' ? "%2B" : "", e164 + (*e164 == '+'));
		path[n - 1] = '\0'; /* the last '&' or the '?' */
		rc = ctl_get_page(path, "numbers", &answer, numbers, &next);
		if (rc != CTL_OK)
			goto done;
		ctl_progress_update(&progress, json_array_size(numbers));
		if (!all || !next)
			break;
		after = next;
	}
	ctl_progress_end(&progress);
	if (ctl_json) {
		if (all) {
			/* the pages as one: nothing follows */
			json_object_set(answer, "numbers", numbers);
			json_object_set_new(answer, "next_after", json_null());
		}
		ctl_print_json(answer);
	} else {
		struct ctl_table t = { .ncols = 9 };
		json_t *next = json_object_get(answer, "next_after");
		size_t i;
		json_t *num;

		ctl_table_add(&t, ctl_number_heading);
		json_array_foreach(numbers, i, num) ctl_number_row(&t, num);
		ctl_table_print(&t);
		if (json_is_integer(next))
			fprintf(stderr, "(more: --after %" JSON_INTEGER_FORMAT ", or --all)\n",
				json_integer_value(next));
	}
done:
	ctl_progress_end(&progress);
	json_decref(answer);
	json_decref(numbers);
	return rc;
}

/* The single positional NUMBER id of show, rename, assign, unassign and release. */
static bool
ctl_number_arg(const struct ctl_cmd *cmd, char **argv, uint64_t *id, int *rc)
{
	if (!ctl_parse_id(argv[optind], id)) {
		*rc = ctl_usage_error(cmd, "\"%s\" is not a number id (a positive integer)",
			argv[optind]);
		return false;
	}
	return true;
}

/* Options only (the common ones); false with *rc when the command ends here. */
static bool
ctl_common_only(const struct ctl_cmd *cmd, int argc, char **argv, int *rc)
{
	static const struct option opts[] = { CTL_COMMON_OPTS };
	int c = ctl_getopt(cmd, argc, argv, opts);

	if (c == -1)
		return true;
	*rc = c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
	return false;
}

/* A request that answers a number, printed. */
static int
ctl_number_request(enum evhttp_cmd_type method, uint64_t id, json_t *body)
{
	char path[64];
	json_t *answer = NULL;
	int rc;

	if (id)
		snprintf(path, sizeof(path), ADMIN_API_NUMBERS "/%" PRIu64, id);
	else
		snprintf(path, sizeof(path), ADMIN_API_NUMBERS);
	rc = ctl_api(method, path, body, &answer);
	json_decref(body);
	if (rc == CTL_OK)
		ctl_number_print(answer);
	json_decref(answer);
	return rc;
}

/* A command whose only argument is a number id: one request on it. */
static int
ctl_number_by_id(const struct ctl_cmd *cmd, int argc, char **argv, enum evhttp_cmd_type method,
	json_t *body)
{
	uint64_t id;
	int rc;

	if (!ctl_common_only(cmd, argc, argv, &rc) || !ctl_args(cmd, argc, argv, 1, &rc) ||
		!ctl_number_arg(cmd, argv, &id, &rc)) {
		json_decref(body);
		return rc;
	}
	return ctl_number_request(method, id, body);
}

static int
ctl_numbers_show(const struct ctl_cmd *cmd, int argc, char **argv)
{
	return ctl_number_by_id(cmd, argc, argv, EVHTTP_REQ_GET, NULL);
}

static int
ctl_numbers_buy(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "account", required_argument, NULL, OPT_ACCOUNT },
		{ "area-code", required_argument, NULL, OPT_AREA_CODE },
		{ "nickname", required_argument, NULL, OPT_NICKNAME },
		{ "agent", required_argument, NULL, OPT_AGENT },
		CTL_COMMON_OPTS,
	};
	const char *account = NULL, *area = NULL, *nickname = NULL;
	uint64_t agent = 0;
	json_t *body;
	int c, rc = CTL_OK;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_ACCOUNT:
			account = optarg;
			break;
		case OPT_AREA_CODE:
			area = optarg;
			break;
		case OPT_NICKNAME:
			nickname = optarg;
			break;
		case OPT_AGENT:
			if (!ctl_parse_id(optarg, &agent))
				return ctl_usage_error(cmd,
					"--agent takes an agent id (a positive integer)");
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	if (!account || !text_ok(account, 64))
		return ctl_usage_error(cmd,
			"--account SLUG (the provider account's slug) is required");
	if (!area || strlen(area) != 3 || area[0] < '2' || area[0] > '9' ||
		!isdigit((unsigned char)area[1]) || !isdigit((unsigned char)area[2]))
		return ctl_usage_error(cmd,
			"--area-code takes three digits, the first 2-9 (e.g. 415)");
	if (nickname && !text_ok(nickname, 64))
		return ctl_usage_error(cmd, "--nickname takes 1 to 64 printable characters");
	body = json_pack("{s:s,s:s}", "account", account, "area_code", area);
	if (nickname)
		json_object_set_new(body, "nickname", json_string(nickname));
	if (agent)
		json_object_set_new(body, "agent_id", json_integer((json_int_t)agent));
	return ctl_number_request(EVHTTP_REQ_POST, 0, body);
}

static int
ctl_numbers_assign(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agent", required_argument, NULL, OPT_AGENT },
		CTL_COMMON_OPTS,
	};
	uint64_t id, agent = 0;
	int c, rc = CTL_OK;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_AGENT:
			if (!ctl_parse_id(optarg, &agent))
				return ctl_usage_error(cmd,
					"--agent takes an agent id (a positive integer)");
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 1, &rc) || !ctl_number_arg(cmd, argv, &id, &rc))
		return rc;
	if (!agent)
		return ctl_usage_error(cmd, "--agent ID is required");
	return ctl_number_request(EVHTTP_REQ_PATCH, id,
		json_pack("{s:I}", "agent_id", (json_int_t)agent));
}

static int
ctl_numbers_unassign(const struct ctl_cmd *cmd, int argc, char **argv)
{
	return ctl_number_by_id(cmd, argc, argv, EVHTTP_REQ_PATCH, json_pack("{s:n}", "agent_id"));
}

static int
ctl_numbers_rename(const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *nick;
	uint64_t id;
	int rc;

	if (!ctl_common_only(cmd, argc, argv, &rc) || !ctl_args(cmd, argc, argv, 2, &rc) ||
		!ctl_number_arg(cmd, argv, &id, &rc))
		return rc;
	nick = argv[optind + 1];
	/* "" clears the nickname */
	if (*nick && !text_ok(nick, 64))
		return ctl_usage_error(cmd,
			"a nickname is 1 to 64 printable characters (\"\" clears it)");
	return ctl_number_request(EVHTTP_REQ_PATCH, id,
		*nick ? json_pack("{s:s}", "nickname", nick) : json_pack("{s:n}", "nickname"));
}

static int
ctl_numbers_release(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, OPT_FORCE },
		CTL_COMMON_OPTS,
	};
	json_t *answer = NULL;
	bool force = false;
	char path[96];
	uint64_t id;
	int c, rc = CTL_OK;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_FORCE:
			force = true;
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 1, &rc) || !ctl_number_arg(cmd, argv, &id, &rc))
		return rc;
	if (!force)
		return ctl_number_request(EVHTTP_REQ_DELETE, id, NULL);
	/* released here even when the provider no longer has it (its 404) */
	snprintf(path, sizeof(path), "/v1/numbers/%" PRIu64 "?force=true", id);
	rc = ctl_api(EVHTTP_REQ_DELETE, path, NULL, &answer);
	if (rc == CTL_OK)
		ctl_number_print(answer);
	json_decref(answer);
	return rc;
}

/* A Bland account's block rules in the sync report ("blocked_numbers"), for people. */
static void
ctl_sync_print_blocks(json_t *b)
{
	static const char *const lists[] = { "added", "removed", "missing", "extra" };
	json_t *v;
	size_t i;

	if (!json_is_object(b))
		return;
	if (json_is_object(json_object_get(b, "error"))) {
		printf("blocked numbers at Bland: not compared: %s\n",
			ctl_jstr(json_object_get(b, "error"), "message"));
		return;
	}
	printf("blocked numbers at Bland: %" JSON_INTEGER_FORMAT
	       " rules wanted on %" JSON_INTEGER_FORMAT " numbers, %" JSON_INTEGER_FORMAT
	       " rules not ours left alone%s\n",
		json_integer_value(json_object_get(b, "rules_wanted")),
		json_integer_value(json_object_get(b, "numbers")),
		json_integer_value(json_object_get(b, "foreign")),
		json_is_true(json_object_get(b, "in_sync")) ? " (in sync)" : "");
	for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++)
		json_array_foreach(json_object_get(b, lists[k]), i, v)
		{
			json_t *id = json_object_get(v, "id");

			printf("  %-8s %s on %s", lists[k],
				json_is_integer(id) ? "rule" : ctl_jstr(v, "blocked_number"),
				ctl_jstr(v, "inbound_number"));
			if (json_is_integer(id))
				printf(" (%" JSON_INTEGER_FORMAT ")", json_integer_value(id));
			printf("\n");
		}
	json_array_foreach(json_object_get(b, "unpushable"), i, v)
	{
		printf("  not pushed: blocked_callers %" JSON_INTEGER_FORMAT
		       " prefix %s (%s) on %s: not a whole number\n",
			json_integer_value(json_object_get(v, "id")), ctl_jstr(v, "prefix"),
			ctl_jstr(v, "scope"), ctl_jstr(v, "inbound_number"));
	}
	json_array_foreach(json_object_get(b, "errors"), i, v)
	{
		printf("  error: %s\n", json_string_value(v) ? json_string_value(v) : "");
	}
}

/* The report of POST /v1/accounts/{slug}/sync, for people. */
static void
ctl_sync_print(json_t *r)
{
	json_t *v;
	size_t i, n = json_array_size(json_object_get(r, "drift"));
	unsigned left = 0;

	json_array_foreach(json_object_get(r, "drift"), i, v)
	{
		if (!json_is_true(json_object_get(v, "repaired")))
			left++;
	}
	printf("account %s (%s): %" JSON_INTEGER_FORMAT " numbers and %" JSON_INTEGER_FORMAT
	       " agents at the provider%s\n",
		ctl_jstr(r, "account"), ctl_jstr(r, "provider"),
		json_integer_value(json_object_get(r, "numbers_at_provider")),
		json_integer_value(json_object_get(r, "agents_at_provider")),
		json_is_true(json_object_get(r, "dry_run")) ? " (dry run: nothing changed)" : "");
	if (json_is_string(json_object_get(r, "note")))
		printf("note: %s\n", ctl_jstr(r, "note"));
	printf("changes:%s\n", json_array_size(json_object_get(r, "changes")) ? "" : " none");
	json_array_foreach(json_object_get(r, "changes"), i, v)
	{
		json_t *id = json_object_get(v, "number_id"), *ag = json_object_get(v, "agent_id");
		const char *what = json_is_string(json_object_get(v, "e164")) ?
					   ctl_jstr(v, "e164") :
					   ctl_jstr(v, "provider_agent_id");

		printf("  %-16s %s", ctl_jstr(v, "action"), what);
		if (json_is_integer(id))
			printf(" (number %" JSON_INTEGER_FORMAT ")", json_integer_value(id));
		else if (json_is_integer(ag))
			printf(" (agent %" JSON_INTEGER_FORMAT ")", json_integer_value(ag));
		if (json_is_string(json_object_get(v, "error")))
			printf(": not applied: %s", ctl_jstr(v, "error"));
		else if (!json_is_true(json_object_get(v, "applied")))
			printf(": not applied");
		printf("\n");
	}
	printf("drift:%s\n", n ? "" : " none");
	json_array_foreach(json_object_get(r, "drift"), i, v)
	{
		json_t *id = json_object_get(v, "number_id");

		printf("  %-14s %s", ctl_jstr(v, "kind"), ctl_jstr(v, "e164"));
		if (json_is_integer(id))
			printf(" (number %" JSON_INTEGER_FORMAT ")", json_integer_value(id));
		printf(": %s%s\n", ctl_jstr(v, "detail"),
			json_is_true(json_object_get(v, "repaired"))   ? " [repaired]" :
			json_is_true(json_object_get(v, "repairable")) ? " [--repair fixes it]" :
									 "");
	}
	ctl_sync_print_blocks(json_object_get(r, "blocked_numbers"));
	printf("%s\n", left ? "the provider and we differ (see drift)" : "in sync");
}

static int
ctl_sync(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "repair", no_argument, NULL, OPT_REPAIR },
		CTL_COMMON_OPTS,
	};
	bool dry = false, repair = false;
	json_t *answer = NULL;
	char path[160];
	int c, rc = CTL_OK;
	const char *slug;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_DRY_RUN:
			dry = true;
			break;
		case OPT_REPAIR:
			repair = true;
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 1, &rc))
		return rc;
	slug = argv[optind];
	if (!*slug || strlen(slug) > 64 ||
		strspn(slug, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(slug))
		return ctl_usage_error(cmd,
			"\"%s\" is not an account slug (1 to 64 of a-z, 0-9, _ and -)", slug);
	if (dry && repair)
		return ctl_usage_error(cmd, "--dry-run and --repair exclude each other");
	snprintf(path, sizeof(path), "/v1/accounts/%s/sync%s", slug,
		dry    ? "?dry_run=true" :
		repair ? "?repair=true" :
			 "");
	rc = ctl_api(EVHTTP_REQ_POST, path, NULL, &answer);
	if (rc == CTL_OK) {
		if (ctl_json)
			ctl_print_json(answer);
		else
			ctl_sync_print(answer);
	}
	json_decref(answer);
	return rc;
}

/* An event's agent ({id, name}, null, or {id: null}: hidden from a portal token). */
static void
ctl_event_agent(json_t *side, char *buf, size_t size)
{
	json_t *a = json_object_get(side, "agent");

	if (json_is_object(a) && json_is_null(json_object_get(a, "id")))
		snprintf(buf, size, "(hidden)");
	else
		ctl_ref(a, buf, size);
}

/* "before -> after", or the one value when they are the same. */
static void
ctl_change(const char *before, const char *after, char *buf, size_t size)
{
	if (strcmp(before, after) == 0)
		snprintf(buf, size, "%s", after);
	else
		snprintf(buf, size, "%s -> %s", before, after);
}

/* numbers events ID: every page of GET /v1/numbers/{id}/events, oldest first. */
static int
ctl_numbers_events(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const char *const heading[8] = { "ID", "WHEN", "ACTION", "AGENT", "NICKNAME", "BY",
		"INSTANCE", "DETAIL" };
	json_t *events, *answer = NULL;
	uint64_t id, after = 0;
	char path[128];
	int rc;

	if (!ctl_common_only(cmd, argc, argv, &rc) || !ctl_args(cmd, argc, argv, 1, &rc) ||
		!ctl_number_arg(cmd, argv, &id, &rc))
		return rc;
	events = json_array();
	for (;;) {
		uint64_t next;

		snprintf(path, sizeof(path), "/v1/numbers/%" PRIu64 "/events?limit=%d", id,
			CTL_LIST_MAX);
		if (after)
			snprintf(path + strlen(path), sizeof(path) - strlen(path),
				"&after=%" PRIu64, after);
		rc = ctl_get_page(path, "events", &answer, events, &next);
		if (rc != CTL_OK)
			goto done;
		if (!next)
			break;
		after = next;
	}
	if (ctl_json) {
		json_t *all = json_pack("{s:O,s:n}", "events", events, "next_after");

		ctl_print_json(all);
		json_decref(all);
	} else {
		struct ctl_table t = { .ncols = 8 };
		size_t i;
		json_t *e;

		ctl_table_add(&t, heading);
		json_array_foreach(events, i, e)
		{
			json_t *b = json_object_get(e, "before"), *a = json_object_get(e, "after");
			char eid[32], ba[160], aa[160], agent[330], nick[330], by[48];
			const char *row[8];

			snprintf(eid, sizeof(eid), "%" JSON_INTEGER_FORMAT,
				json_integer_value(json_object_get(e, "id")));
			ctl_event_agent(b, ba, sizeof(ba));
			ctl_event_agent(a, aa, sizeof(aa));
			ctl_change(ba, aa, agent, sizeof(agent));
			ctl_change(ctl_jstr(b, "nickname"), ctl_jstr(a, "nickname"), nick,
				sizeof(nick));
			if (json_is_integer(json_object_get(e, "token_id")))
				snprintf(by, sizeof(by), "token #%" JSON_INTEGER_FORMAT,
					json_integer_value(json_object_get(e, "token_id")));
			else
				snprintf(by, sizeof(by), "%s", ctl_jstr(e, "actor"));
			row[0] = eid;
			row[1] = ctl_jstr(e, "created_at");
			row[2] = ctl_jstr(e, "action");
			row[3] = agent;
			row[4] = nick;
			row[5] = by;
			row[6] = ctl_jstr(e, "instance");
			row[7] = ctl_jstr(e, "detail");
			ctl_table_add(&t, row);
		}
		ctl_table_print(&t);
	}
done:
	json_decref(answer);
	json_decref(events);
	return rc;
}

static int
ctl_calls_place(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agent", required_argument, NULL, OPT_AGENT },
		{ "to", required_argument, NULL, OPT_TO },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "variables", required_argument, NULL, OPT_VARIABLES },
		{ "metadata", required_argument, NULL, OPT_METADATA },
		CTL_COMMON_OPTS,
	};
	char to[E164_BUFSIZE] = "", from[E164_BUFSIZE] = "";
	uint64_t agent = 0;
	json_t *body, *answer = NULL, *vars = NULL, *meta = NULL;
	int c, rc = CTL_OK;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_AGENT:
			if (!ctl_parse_id(optarg, &agent))
				return ctl_usage_error(cmd,
					"--agent takes an agent id (a positive integer)");
			break;
		case OPT_TO:
			if (!ctl_parse_e164(optarg, to, sizeof(to)))
				return ctl_usage_error(cmd,
					"--to \"%s\" is not an E.164 number "
					"(+ country code and number, e.g. +14155550123)",
					optarg);
			break;
		case OPT_FROM:
			if (!ctl_parse_e164(optarg, from, sizeof(from)))
				return ctl_usage_error(cmd,
					"--from \"%s\" is not an E.164 number "
					"(+ country code and number, e.g. +14155550123)",
					optarg);
			break;
		case OPT_VARIABLES:
		case OPT_METADATA: {
			/* a JSON object (the API checks its limits and names the one broken) */
			json_t *o = json_loads(optarg, JSON_REJECT_DUPLICATES, NULL);

			if (!json_is_object(o)) {
				json_decref(o);
				json_decref(vars);
				json_decref(meta);
				return ctl_usage_error(cmd,
					"--%s takes a JSON object, e.g. '{\"name\": \"Ana\"}'",
					c == OPT_VARIABLES ? "variables" : "metadata");
			}
			if (c == OPT_VARIABLES)
				vars = o;
			else
				meta = o;
			break;
		}
		default:
			json_decref(vars);
			json_decref(meta);
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 0, &rc) || !agent || !*to) {
		json_decref(vars);
		json_decref(meta);
		if (rc != CTL_OK)
			return rc;
		return ctl_usage_error(cmd,
			!agent ? "--agent ID is required" : "--to E164 is required");
	}
	body = json_pack("{s:I,s:s}", "agent_id", (json_int_t)agent, "to", to);
	if (*from)
		json_object_set_new(body, "from", json_string(from));
	if (vars)
		json_object_set_new(body, "variables", vars);
	if (meta)
		json_object_set_new(body, "metadata", meta);
	rc = ctl_api(EVHTTP_REQ_POST, "/v1/calls", body, &answer);
	json_decref(body);
	if (rc == CTL_OK) {
		if (ctl_json) {
			ctl_print_json(answer);
		} else {
			printf("call_id:   %s\n", ctl_jstr(answer, "call_id"));
			printf("provider:  %s\n", ctl_jstr(answer, "provider"));
			printf("agent:     %" JSON_INTEGER_FORMAT "\n",
				json_integer_value(json_object_get(answer, "agent_id")));
			printf("from:      %s\n", ctl_jstr(answer, "from"));
			printf("to:        %s\n", ctl_jstr(answer, "to"));
		}
	}
	json_decref(answer);
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* agents, accounts, clients, calls list/show: the API's reads (api_reads.c)                   */

/* A filter option of a list command: --opt VALUE becomes ?param=VALUE. */
enum ctl_filter_kind { CF_ID, CF_ENUM, CF_TEXT, CF_TIME, CF_DIGITS, CF_PID };

struct ctl_filter {
	const char *opt; /* the option's name */
	enum ctl_filter_kind kind;
	const char *const *values; /* CF_ENUM */
	const char *param;         /* the query parameter's name; NULL: opt */
};

struct ctl_list {
	const char *path; /* "/v1/agents" */
	const char *key;  /* the answer's list member */
	const struct ctl_filter *filters;
	size_t ncols;
	const char *const *heading;
	void (*row)(const char **cells, char (*buf)[160], json_t *o);
};

static const char *const ctl_providers[] = { "retell", "vapi", "bland", NULL };
static const char *const ctl_directions[] = { "inbound", "outbound", "unknown", NULL };
static const char *const ctl_call_status[] = { "in_progress", "ended", NULL };

/* What the API takes (api_reads.c checks it again and says so, naming the parameter). */
static bool
ctl_filter_ok(const struct ctl_filter *f, const char *v)
{
	uint64_t id;
	size_t n;

	switch (f->kind) {
	case CF_ID:
		return ctl_parse_id(v, &id);
	case CF_ENUM:
		for (const char *const *p = f->values; *p; p++)
			if (strcmp(*p, v) == 0)
				return true;
		return false;
	case CF_TEXT:
		return text_ok(v, 64);
	case CF_PID:
		return text_ok(v, 128);
	case CF_TIME:
		return strlen(v) >= 10 && strlen(v) <= 30 &&
		       strspn(v, "0123456789-T:.Z") == strlen(v);
	case CF_DIGITS:
		n = strlen(v + (*v == '+'));
		return n >= 1 && n <= 15 && strspn(v + (*v == '+'), "0123456789") == n;
	}
	return false;
}

static void
ctl_filter_want(const struct ctl_filter *f, char *out, size_t len)
{
	size_t n = 0;

	switch (f->kind) {
	case CF_ID:
		snprintf(out, len, "an id (a positive integer)");
		return;
	case CF_ENUM:
		n = (size_t)snprintf(out, len, "one of");
		for (const char *const *p = f->values; *p && n < len; p++)
			n += (size_t)snprintf(out + n, len - n, " %s", *p);
		return;
	case CF_TEXT:
		snprintf(out, len, "1 to 64 printable characters");
		return;
	case CF_PID:
		snprintf(out, len, "the provider's call id (1 to 128 printable characters)");
		return;
	case CF_TIME:
		snprintf(out, len, "a UTC date or time, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
		return;
	case CF_DIGITS:
		snprintf(out, len,
			"+digits (a prefix) or digits (a part of the number), at most 15");
		return;
	}
}

/* value, %-escaped for a query string, appended at path[*n]; false when it does not fit. */
static bool
ctl_query_add(char *path, size_t size, size_t *n, const char *key, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	int w = snprintf(path + *n, size - *n, "%c%s=", strchr(path, '?') ? '&' : '?', key);

	if (w < 0 || (size_t)w >= size - *n)
		return false;
	*n += (size_t)w;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*n + 4 >= size)
			return false;
		if (isalnum(*p) || strchr("-._~:", *p)) {
			path[(*n)++] = (char)*p;
		} else {
			path[(*n)++] = '%';
			path[(*n)++] = hex[*p >> 4];
			path[(*n)++] = hex[*p & 15];
		}
	}
	path[*n] = '\0';
	return true;
}

/* A list command: its filters, --limit, --after, --all; a table or --json (as numbers list). */
static int
ctl_list_run(const struct ctl_cmd *cmd, int argc, char **argv, const struct ctl_list *l)
{
	struct option opts[CTL_MAX_OPTS] = { { NULL, 0, NULL, 0 } };
	static const struct option common[] = { CTL_COMMON_OPTS };
	const char *given[16] = { NULL };
	size_t nf = 0, k = 0;
	uint64_t limit = 0, after = 0;
	bool all = false;
	json_t *items, *answer = NULL;
	char path[2048], want[160];
	int c, rc = CTL_OK;

	while (l->filters[nf].opt)
		nf++;
	for (size_t i = 0; i < nf; i++)
		opts[k++] = (struct option){ l->filters[i].opt, required_argument, NULL,
			(int)(3000 + i) };
	opts[k++] = (struct option){ "limit", required_argument, NULL, OPT_LIMIT };
	opts[k++] = (struct option){ "after", required_argument, NULL, OPT_AFTER };
	opts[k++] = (struct option){ "all", no_argument, NULL, OPT_ALL };
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		opts[k++] = common[i];
	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		if (c >= 3000 && c < 3000 + (int)nf) {
			const struct ctl_filter *f = &l->filters[c - 3000];

			if (!ctl_filter_ok(f, optarg)) {
				ctl_filter_want(f, want, sizeof(want));
				return ctl_usage_error(cmd, "--%s takes %s", f->opt, want);
			}
			given[c - 3000] = optarg;
			continue;
		}
		switch (c) {
		case OPT_LIMIT:
			if (!ctl_parse_id(optarg, &limit) || limit > CTL_LIST_MAX)
				return ctl_usage_error(cmd, "--limit takes 1 to %d", CTL_LIST_MAX);
			break;
		case OPT_AFTER:
			if (!ctl_parse_id(optarg, &after))
				return ctl_usage_error(cmd,
					"--after takes an id (the answer's next_after)");
			break;
		case OPT_ALL:
			all = true;
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	if (all && !limit)
		limit = CTL_LIST_MAX;
	items = json_array();
	for (;;) {
		uint64_t next;
		size_t n = (size_t)snprintf(path, sizeof(path), "%s", l->path);
		char num[24];
		bool fits = true;

		for (size_t i = 0; i < nf; i++)
			if (given[i])
				fits = fits && ctl_query_add(path, sizeof(path), &n,
						       l->filters[i].param ? l->filters[i].param :
									     l->filters[i].opt,
						       given[i]);
		snprintf(num, sizeof(num), "%" PRIu64, limit);
		if (limit)
			fits = fits && ctl_query_add(path, sizeof(path), &n, "limit", num);
		snprintf(num, sizeof(num), "%" PRIu64, after);
		if (after)
			fits = fits && ctl_query_add(path, sizeof(path), &n, "after", num);
		if (!fits) {
			rc = ctl_usage_error(cmd, "the filters are too long");
			goto done;
		}
		rc = ctl_get_page(path, l->key, &answer, items, &next);
		if (rc != CTL_OK)
			goto done;
		if (!all || !next)
			break;
		after = next;
	}
	if (ctl_json) {
		if (all) {
			json_object_set(answer, l->key, items);
			json_object_set_new(answer, "next_after", json_null());
		}
		ctl_print_json(answer);
	} else {
		struct ctl_table t = { .ncols = l->ncols };
		json_t *next = json_object_get(answer, "next_after"), *o;
		const char *cells[CTL_TABLE_MAX_COLS];
		char buf[CTL_TABLE_MAX_COLS][160];
		size_t i;

		ctl_table_add(&t, l->heading);
		json_array_foreach(items, i, o)
		{
			l->row(cells, buf, o);
			ctl_table_add(&t, cells);
		}
		ctl_table_print(&t);
		if (json_is_integer(next))
			fprintf(stderr, "(more: --after %" JSON_INTEGER_FORMAT ", or --all)\n",
				json_integer_value(next));
	}
done:
	json_decref(answer);
	json_decref(items);
	return rc;
}

/* An integer member as text into buf, or "-". */
static const char *
ctl_jint(json_t *o, const char *key, char *buf, size_t size)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return "-";
	snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return buf;
}

static const char *
ctl_jbool(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "-";
}

static const char *const ctl_agent_heading[] = { "ID", "NAME", "PROVIDER", "PROVIDER_AGENT_ID",
	"CLIENT", "NUMBERS" };

static void
ctl_agent_row(const char **cells, char (*buf)[160], json_t *o)
{
	cells[0] = ctl_jint(o, "id", buf[0], sizeof(buf[0]));
	cells[1] = ctl_jstr(o, "name");
	cells[2] = ctl_jstr(o, "provider");
	cells[3] = ctl_jstr(o, "provider_agent_id");
	ctl_ref(json_object_get(o, "client"), buf[4], sizeof(buf[4]));
	cells[4] = buf[4];
	cells[5] = ctl_jint(o, "active_numbers", buf[5], sizeof(buf[5]));
}

static const struct ctl_filter ctl_agent_filters[] = {
	{ "client", CF_ID, NULL, NULL },
	{ "provider", CF_ENUM, ctl_providers, NULL },
	{ "name", CF_TEXT, NULL, NULL },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_list ctl_agents_list = { "/v1/agents", "agents", ctl_agent_filters, 6,
	ctl_agent_heading, ctl_agent_row };

static const char *const ctl_account_heading[] = { "ID", "SLUG", "PROVIDER", "WEBHOOK_AUTH",
	"SECRET", "CREDENTIAL", "BASE_URL", "NUMBERS" };

static void
ctl_account_row(const char **cells, char (*buf)[160], json_t *o)
{
	cells[0] = ctl_jint(o, "id", buf[0], sizeof(buf[0]));
	cells[1] = ctl_jstr(o, "slug");
	cells[2] = ctl_jstr(o, "provider");
	cells[3] = ctl_jstr(o, "webhook_auth");
	cells[4] = json_is_true(json_object_get(o, "webhook_secret_set")) ? "set" : "-";
	cells[5] = ctl_jstr(o, "webhook_credential_id");
	cells[6] = ctl_jstr(o, "api_base_url");
	cells[7] = ctl_jint(o, "active_numbers", buf[7], sizeof(buf[7]));
}

static const struct ctl_filter ctl_account_filters[] = {
	{ "provider", CF_ENUM, ctl_providers, NULL },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_list ctl_accounts_list = { "/v1/accounts", "accounts", ctl_account_filters,
	8, ctl_account_heading, ctl_account_row };

static const char *const ctl_client_heading[] = { "ID", "NAME", "PORTAL_VISIBILITY", "AGENTS" };

static void
ctl_client_row(const char **cells, char (*buf)[160], json_t *o)
{
	cells[0] = ctl_jint(o, "id", buf[0], sizeof(buf[0]));
	cells[1] = ctl_jstr(o, "name");
	cells[2] = ctl_jbool(o, "portal_agent_visibility");
	cells[3] = ctl_jint(o, "agents", buf[3], sizeof(buf[3]));
}

static const struct ctl_filter ctl_client_filters[] = {
	{ "name", CF_TEXT, NULL, NULL },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_list ctl_clients_list = { "/v1/clients", "clients", ctl_client_filters, 4,
	ctl_client_heading, ctl_client_row };

static const char *const ctl_call_heading[] = { "ID", "PROVIDER", "DIRECTION", "STATUS", "NUMBER",
	"AGENT", "STARTED", "DURATION_S", "BILLED_USD" };

static void
ctl_call_row(const char **cells, char (*buf)[160], json_t *o)
{
	json_t *num = json_object_get(o, "number"), *billed = json_object_get(o, "billed");
	json_t *dur = json_object_get(o, "duration_ms");

	cells[0] = ctl_jint(o, "id", buf[0], sizeof(buf[0]));
	cells[1] = ctl_jstr(o, "provider");
	cells[2] = ctl_jstr(o, "direction");
	cells[3] = ctl_jstr(o, "status");
	cells[4] = json_is_object(num) ? ctl_jstr(num, "e164") : "-";
	ctl_ref(json_object_get(o, "agent"), buf[5], sizeof(buf[5]));
	cells[5] = buf[5];
	cells[6] = ctl_jstr(o, "started_at");
	if (json_is_integer(dur)) {
		snprintf(buf[7], sizeof(buf[7]), "%.1f", (double)json_integer_value(dur) / 1000.0);
		cells[7] = buf[7];
	} else {
		cells[7] = "-";
	}
	cells[8] = json_is_object(billed) ? ctl_jstr(billed, "amount_usd") : "-";
}

static const struct ctl_filter ctl_call_filters[] = {
	{ "number", CF_ID, NULL, NULL },
	{ "agent", CF_ID, NULL, NULL },
	{ "client", CF_ID, NULL, NULL },
	{ "direction", CF_ENUM, ctl_directions, NULL },
	{ "status", CF_ENUM, ctl_call_status, NULL },
	{ "provider", CF_ENUM, ctl_providers, NULL },
	{ "since", CF_TIME, NULL, NULL },
	{ "until", CF_TIME, NULL, NULL },
	{ "call-id", CF_PID, NULL, "provider_call_id" },
	{ NULL, 0, NULL, NULL },
};

static const struct ctl_list ctl_calls_list = { "/v1/calls", "calls", ctl_call_filters, 9,
	ctl_call_heading, ctl_call_row };

/* The list commands of ctl_list_run: each the list of its group (the list's answer member). */
static const struct ctl_list *const ctl_lists[] = { &ctl_agents_list, &ctl_accounts_list,
	&ctl_clients_list, &ctl_calls_list };

static int
ctl_list_cmd(const struct ctl_cmd *cmd, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(ctl_lists) / sizeof(ctl_lists[0]); i++)
		if (strcmp(ctl_lists[i]->key, cmd->group) == 0)
			return ctl_list_run(cmd, argc, argv, ctl_lists[i]);
	return CTL_ERROR; /* not reached: every ctl_list_cmd of ctl_cmds has its list */
}

static int
ctl_calls_show(const struct ctl_cmd *cmd, int argc, char **argv)
{
	char path[64], agent[160], client[160];
	json_t *answer = NULL, *num, *billed;
	uint64_t id;
	int rc;

	if (!ctl_common_only(cmd, argc, argv, &rc) || !ctl_args(cmd, argc, argv, 1, &rc))
		return rc;
	if (!ctl_parse_id(argv[optind], &id))
		return ctl_usage_error(cmd, "\"%s\" is not a call id (a positive integer)",
			argv[optind]);
	snprintf(path, sizeof(path), "/v1/calls/%" PRIu64, id);
	rc = ctl_api(EVHTTP_REQ_GET, path, NULL, &answer);
	if (rc != CTL_OK)
		return rc;
	if (ctl_json) {
		ctl_print_json(answer);
		json_decref(answer);
		return CTL_OK;
	}
	num = json_object_get(answer, "number");
	billed = json_object_get(answer, "billed");
	ctl_ref(json_object_get(answer, "agent"), agent, sizeof(agent));
	ctl_ref(json_object_get(answer, "client"), client, sizeof(client));
	printf("id:          %" JSON_INTEGER_FORMAT "\n",
		json_integer_value(json_object_get(answer, "id")));
	printf("provider:    %s (%s)\n", ctl_jstr(answer, "provider"),
		ctl_jstr(answer, "provider_call_id"));
	printf("direction:   %s\n", ctl_jstr(answer, "direction"));
	printf("status:      %s\n", ctl_jstr(answer, "status"));
	printf("number:      %s\n", json_is_object(num) ? ctl_jstr(num, "e164") : "-");
	printf("agent:       %s\n", agent);
	printf("client:      %s\n", client);
	printf("from:        %s\n", ctl_jstr(answer, "from"));
	printf("to:          %s\n", ctl_jstr(answer, "to"));
	printf("connected:   %s\n", ctl_jbool(answer, "connected"));
	printf("started:     %s\n", ctl_jstr(answer, "started_at"));
	printf("ended:       %s\n", ctl_jstr(answer, "ended_at"));
	printf("duration_ms: %s\n", ctl_jint(answer, "duration_ms", path, sizeof(path)));
	printf("end_reason:  %s\n", ctl_jstr(answer, "end_reason"));
	if (json_is_object(billed))
		printf("billed:      %s s, %s USD\n",
			ctl_jint(billed, "billed_seconds", path, sizeof(path)),
			ctl_jstr(billed, "amount_usd"));
	else
		printf("billed:      -\n");
	json_decref(answer);
	return CTL_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The database: tokens, migrate, usage                                                        */

/* The connection string (malloc'd): --database, else the configuration file's database_url. */
static char *
ctl_conninfo(void)
{
	struct config *cfg;
	char *s = NULL;

	if (ctl_database)
		return strdup(ctl_database);
	cfg = config_load(ctl_config);
	if (!cfg) {
		ctl_error("no database: give --database CONNINFO, or -c FILE with a database_url");
		return NULL;
	}
	s = strdup(cfg->database_url);
	config_free(cfg);
	return s;
}

static PGconn *
ctl_connect(void)
{
	char *conninfo = ctl_conninfo();
	PGconn *conn;

	if (!conninfo)
		return NULL;
	conn = PQconnectdb(conninfo);
	free(conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "callroutectl: could not connect to the database: %s",
			PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* A query that must return rows; NULL (reported) on failure. */
static PGresult *
ctl_query(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "callroutectl: %s", PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	return r;
}

static json_t *
ctl_pg_str(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

static json_t *
ctl_pg_int(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? json_null() :
					  json_integer(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

static const char *
ctl_pg_text(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) || !*PQgetvalue(r, row, col) ? "-" :
								       PQgetvalue(r, row, col);
}

#define CTL_SQL_TIME(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static int
ctl_tokens_create(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agency", required_argument, NULL, OPT_AGENCY },
		{ "client", required_argument, NULL, OPT_CLIENT },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "quiet", no_argument, NULL, 'q' },
		CTL_COMMON_OPTS,
	};
	const char *agency = NULL, *client = NULL, *name = "";
	/* only the token when it goes to a script: export CALLROUTED_TOKEN=$(... tokens create) */
	bool quiet = !isatty(STDOUT_FILENO);
	char token[ADMIN_TOKEN_SIZE], hex[65];
	const char *params[4];
	uint64_t id;
	PGconn *conn = NULL;
	PGresult *r = NULL;
	int c, rc = CTL_OK;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_AGENCY:
			if (!ctl_parse_id(optarg, &id))
				return ctl_usage_error(cmd,
					"--agency takes an agency id (a positive integer)");
			agency = optarg;
			break;
		case OPT_CLIENT:
			if (!ctl_parse_id(optarg, &id))
				return ctl_usage_error(cmd,
					"--client takes a client id (a positive integer)");
			client = optarg;
			break;
		case OPT_NAME:
			if (!text_ok(optarg, 200))
				return ctl_usage_error(cmd,
					"--name takes 1 to 200 printable characters");
			name = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	if (!agency)
		return ctl_usage_error(cmd, "--agency ID is required");
	conn = ctl_connect();
	if (!conn)
		return CTL_ERROR;
	rc = CTL_ERROR;
	/* clearer than a foreign key violation */
	params[0] = agency;
	params[1] = client;
	r = ctl_query(conn,
		"SELECT (SELECT name FROM agencies WHERE id = $1::bigint), "
		"(SELECT name FROM clients WHERE id = $2::bigint AND agency_id = $1::bigint)",
		2, params);
	if (!r)
		goto done;
	if (PQgetisnull(r, 0, 0)) {
		ctl_error("no agency %s", agency);
		goto done;
	}
	if (client && PQgetisnull(r, 0, 1)) {
		ctl_error("client %s is not a client of agency %s", client, agency);
		goto done;
	}
	PQclear(r);
	r = NULL;
	if (!admin_token_new(token)) {
		ctl_error("could not get random bytes from OpenSSL");
		goto done;
	}
	/* the API hashes the whole text after "Bearer " */
	admin_token_sha256_hex(token, hex);
	params[0] = hex;
	params[1] = agency;
	params[2] = client;
	params[3] = name;
	r = ctl_query(conn,
		"WITH t AS (INSERT INTO api_tokens (token_sha256, agency_id, client_id, name) "
		"VALUES (decode($1, 'hex'), $2, $3, $4) RETURNING id, agency_id, client_id, name, "
		"created_at) "
		"SELECT t.id, t.agency_id, t.client_id, t.name, " CTL_SQL_TIME(
			"t.created_at") ", "
					"ag.name, c.name FROM t JOIN agencies ag ON ag.id = t.agency_id "
					"LEFT JOIN clients c ON c.id = t.client_id",
		4, params);
	if (!r || PQntuples(r) != 1)
		goto done;
	if (ctl_json) {
		json_t *o = json_pack("{s:o,s:s,s:o,s:o,s:o,s:o,s:b}", "id", ctl_pg_int(r, 0, 0),
			"token", token, "agency_id", ctl_pg_int(r, 0, 1), "client_id",
			ctl_pg_int(r, 0, 2), "name", ctl_pg_str(r, 0, 3), "created_at",
			ctl_pg_str(r, 0, 4), "read_only", client != NULL);

		ctl_print_json(o);
		json_decref(o);
	} else if (quiet) {
		printf("%s\n", token);
	} else {
		printf("id:       %s\n", PQgetvalue(r, 0, 0));
		printf("agency:   %s (#%s)\n", PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 1));
		if (client)
			printf("client:   %s (#%s): a client-portal token, read-only\n",
				PQgetvalue(r, 0, 6), PQgetvalue(r, 0, 2));
		else
			printf("client:   - (an agency token)\n");
		printf("name:     %s\n", ctl_pg_text(r, 0, 3));
		printf("created:  %s\n", PQgetvalue(r, 0, 4));
		printf("token:    %s\n", token);
		fprintf(stderr, "callroutectl: keep the token now: only its SHA-256 is stored, "
				"it cannot be shown again\n");
	}
	rc = CTL_OK;
done:
	explicit_bzero(token, sizeof(token));
	PQclear(r);
	PQfinish(conn);
	return rc;
}

static int
ctl_tokens_revoke(const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *params[1];
	PGconn *conn;
	PGresult *r;
	uint64_t id;
	int rc;

	if (!ctl_common_only(cmd, argc, argv, &rc) || !ctl_args(cmd, argc, argv, 1, &rc))
		return rc;
	if (!ctl_parse_id(argv[optind], &id))
		return ctl_usage_error(cmd, "\"%s\" is not a token id (a positive integer)",
			argv[optind]);
	conn = ctl_connect();
	if (!conn)
		return CTL_ERROR;
	params[0] = argv[optind];
	/* revoking twice keeps the first time */
	r = ctl_query(conn,
		"WITH old AS (SELECT id, revoked_at FROM api_tokens WHERE id = $1 FOR UPDATE) "
		"UPDATE api_tokens t SET revoked_at = coalesce(old.revoked_at, now()) FROM old "
		"WHERE t.id = old.id RETURNING t.id, old.revoked_at IS NOT NULL, " CTL_SQL_TIME(
			"t.revoked_at"),
		1, params);
	rc = CTL_ERROR;
	if (r && PQntuples(r) == 0) {
		ctl_error("no token %s", argv[optind]);
	} else if (r) {
		bool already = strcmp(PQgetvalue(r, 0, 1), "t") == 0;

		if (ctl_json) {
			json_t *o = json_pack("{s:o,s:o,s:b}", "id", ctl_pg_int(r, 0, 0),
				"revoked_at", ctl_pg_str(r, 0, 2), "already_revoked", already);

			ctl_print_json(o);
			json_decref(o);
		} else if (already) {
			printf("token %s was already revoked at %s\n", PQgetvalue(r, 0, 0),
				PQgetvalue(r, 0, 2));
		} else {
			printf("token %s revoked at %s\n", PQgetvalue(r, 0, 0),
				PQgetvalue(r, 0, 2));
		}
		rc = CTL_OK;
	}
	PQclear(r);
	PQfinish(conn);
	return rc;
}

static int
ctl_tokens_list(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agency", required_argument, NULL, OPT_AGENCY },
		CTL_COMMON_OPTS,
	};
	const char *params[1] = { NULL };
	uint64_t id;
	PGconn *conn;
	PGresult *r;
	int c, rc = CTL_OK;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_AGENCY:
			if (!ctl_parse_id(optarg, &id))
				return ctl_usage_error(cmd,
					"--agency takes an agency id (a positive integer)");
			params[0] = optarg;
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	if (!params[0])
		return ctl_usage_error(cmd, "--agency ID is required");
	conn = ctl_connect();
	if (!conn)
		return CTL_ERROR;
	r = ctl_query(conn,
		"SELECT t.id, t.agency_id, t.name, t.client_id, c.name, " CTL_SQL_TIME("t.created_at") ", " CTL_SQL_TIME(
			"t.revoked_at") " FROM api_tokens t LEFT JOIN clients c ON c.id = t.client_id "
					"WHERE t.agency_id = $1 ORDER BY t.id",
		1, params);
	rc = r ? CTL_OK : CTL_ERROR;
	if (r && ctl_json) {
		json_t *arr = json_array(), *o;

		for (int i = 0; i < PQntuples(r); i++)
			json_array_append_new(arr,
				json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "id", ctl_pg_int(r, i, 0),
					"agency_id", ctl_pg_int(r, i, 1), "name",
					ctl_pg_str(r, i, 2), "client",
					PQgetisnull(r, i, 3) ?
						json_null() :
						json_pack("{s:o,s:o}", "id", ctl_pg_int(r, i, 3),
							"name", ctl_pg_str(r, i, 4)),
					"created_at", ctl_pg_str(r, i, 5), "revoked_at",
					ctl_pg_str(r, i, 6)));
		o = json_pack("{s:o}", "tokens", arr);
		ctl_print_json(o);
		json_decref(o);
	} else if (r) {
		static const char *const head[] = { "ID", "NAME", "CLIENT", "CREATED", "REVOKED" };
		struct ctl_table t = { .ncols = 5 };

		ctl_table_add(&t, head);
		for (int i = 0; i < PQntuples(r); i++) {
			char client[160];
			const char *row[5];

			if (PQgetisnull(r, i, 3))
				snprintf(client, sizeof(client), "- (agency)");
			else
				snprintf(client, sizeof(client), "%s (#%s)", PQgetvalue(r, i, 4),
					PQgetvalue(r, i, 3));
			row[0] = PQgetvalue(r, i, 0);
			row[1] = ctl_pg_text(r, i, 2);
			row[2] = client;
			row[3] = PQgetvalue(r, i, 5);
			row[4] = ctl_pg_text(r, i, 6);
			ctl_table_add(&t, row);
		}
		ctl_table_print(&t);
	}
	PQclear(r);
	PQfinish(conn);
	return rc;
}

static int
ctl_migrate(const struct ctl_cmd *cmd, int argc, char **argv)
{
	char *conninfo;
	bool ok;
	int rc;

	if (!ctl_common_only(cmd, argc, argv, &rc) || !ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	conninfo = ctl_conninfo();
	if (!conninfo)
		return CTL_ERROR;
	/* migrate_run reports on stderr through the log: each migration applied, or the error */
	ok = migrate_run(conninfo);
	free(conninfo);
	if (!ok) {
		ctl_error("migrate failed");
		return CTL_ERROR;
	}
	if (ctl_json) {
		json_t *o = json_pack("{s:i}", "schema_version", migrate_target_version());

		ctl_print_json(o);
		json_decref(o);
	} else {
		printf("schema at version %d\n", migrate_target_version());
	}
	return CTL_OK;
}

/* YYYY-MM-DD only: periods are whole UTC days, --to inclusive. */
static bool
ctl_valid_date(const char *s)
{
	int y, m, d;
	char tail;

	return s && strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 &&
	       y >= 1970 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/*
 * The time a ledger row counts at: its ended_at, which the daemon always sets (the provider's
 * end, else start + duration, else the event's arrival); rows written before it did may lack
 * one and count at recorded_at, so that every row is in some period.
 */
#define CTL_USAGE_AT "coalesce(l.ended_at, l.recorded_at)"

static const struct {
	const char *by;
	const char *key;   /* SQL expression of the group key */
	const char *label; /* SQL expression of its label */
	const char *join;
} ctl_groups[] = {
	{ "agency", "l.agency_id::text", "ag.name",
		"LEFT JOIN agencies ag ON ag.id = l.agency_id" },
	{ "client", "coalesce(l.client_id::text, '-')", "coalesce(c.name, '(no client)')",
		"LEFT JOIN clients c ON c.id = l.client_id" },
	{ "agent", "coalesce(l.agent_id::text, '-')", "coalesce(a.name, '(no agent)')",
		"LEFT JOIN agents a ON a.id = l.agent_id" },
	{ "number", "coalesce(l.number_id::text, '-')", "coalesce(n.e164, '(unknown)')",
		"LEFT JOIN phone_numbers n ON n.id = l.number_id" },
	{ "day", "to_char(" CTL_USAGE_AT " AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
		"to_char(" CTL_USAGE_AT " AT TIME ZONE 'UTC', 'YYYY-MM-DD')", "" },
};

static int
ctl_usage_cmd(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agency", required_argument, NULL, OPT_AGENCY },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "by", required_argument, NULL, OPT_BY },
		{ "format", required_argument, NULL, OPT_FORMAT },
		CTL_COMMON_OPTS,
	};
	const char *agency = NULL, *from = NULL, *to = NULL, *by = "agency", *format = NULL;
	const char *params[3];
	char sql[2048];
	int c, g = -1, rc = CTL_OK;
	uint64_t id;
	PGconn *conn;
	PGresult *r;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_AGENCY:
			agency = optarg;
			break;
		case OPT_FROM:
			from = optarg;
			break;
		case OPT_TO:
			to = optarg;
			break;
		case OPT_BY:
			by = optarg;
			break;
		case OPT_FORMAT:
			format = optarg;
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	/* --json is --format json, unless --format says otherwise */
	if (!format)
		format = ctl_json ? "json" : "table";
	if (!agency || !ctl_parse_id(agency, &id))
		return ctl_usage_error(cmd, "--agency ID (a positive integer) is required");
	if ((from && !ctl_valid_date(from)) || (to && !ctl_valid_date(to)))
		return ctl_usage_error(cmd, "--from and --to take dates as YYYY-MM-DD (UTC)");
	for (size_t i = 0; i < sizeof(ctl_groups) / sizeof(ctl_groups[0]); i++)
		if (strcmp(by, ctl_groups[i].by) == 0)
			g = (int)i;
	if (g < 0)
		return ctl_usage_error(cmd, "--by takes agency, client, agent, number or day");
	if (strcmp(format, "table") != 0 && strcmp(format, "csv") != 0 &&
		strcmp(format, "json") != 0)
		return ctl_usage_error(cmd, "--format takes table, csv or json");
	snprintf(sql, sizeof(sql),
		"SELECT %s AS key, %s AS label, count(*), sum(l.duration_ms)::bigint, "
		"sum(l.billed_seconds)::bigint, sum(l.amount_micros)::bigint "
		"FROM usage_ledger l %s WHERE l.agency_id = $1 "
		"AND ($2::date IS NULL OR " CTL_USAGE_AT " >= "
		"($2::date)::timestamp AT TIME ZONE 'UTC') "
		"AND ($3::date IS NULL OR " CTL_USAGE_AT " < "
		"($3::date + 1)::timestamp AT TIME ZONE 'UTC') "
		"GROUP BY 1, 2 ORDER BY 1",
		ctl_groups[g].key, ctl_groups[g].label, ctl_groups[g].join);
	params[0] = agency;
	params[1] = from;
	params[2] = to;
	conn = ctl_connect();
	if (!conn)
		return CTL_ERROR;
	rc = CTL_ERROR;
	r = ctl_progress_query("usage", ctl_json || strcmp(format, "json") == 0, conn, sql, 3,
		params);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "callroutectl: %s",
			r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
		goto done;
	}
	{
		json_t *arr = json_array();
		int64_t tcalls = 0, tbilled = 0, tamount = 0;
		char dollars[RATING_DOLLARS_BUFSIZE], minutes[32];

		if (strcmp(format, "table") == 0)
			printf("%-24s %-28s %8s %12s %16s\n", by, "name", "calls", "minutes",
				"amount_usd");
		else if (strcmp(format, "csv") == 0)
			printf("%s,name,calls,billed_seconds,minutes,amount_micros,amount_usd\n",
				by);
		for (int i = 0; i < PQntuples(r); i++) {
			int64_t calls = strtoll(PQgetvalue(r, i, 2), NULL, 10);
			int64_t billed = strtoll(PQgetvalue(r, i, 4), NULL, 10);
			int64_t amount = strtoll(PQgetvalue(r, i, 5), NULL, 10);
			const char *key = PQgetvalue(r, i, 0), *label = PQgetvalue(r, i, 1);

			tcalls += calls;
			tbilled += billed;
			tamount += amount;
			rating_format_dollars(amount, dollars, sizeof(dollars));
			/* billed minutes, exact to the second: "12.5" reads worse than "12:30" */
			snprintf(minutes, sizeof(minutes), "%lld:%02lld", (long long)(billed / 60),
				(long long)(billed % 60));
			if (strcmp(format, "table") == 0) {
				printf("%-24s %-28.28s %8lld %12s %16s\n", key, label,
					(long long)calls, minutes, dollars);
			} else if (strcmp(format, "csv") == 0) {
				printf("%s,\"", key);
				for (const char *p = label; *p; p++)
					printf(*p == '"' ? "\"\"" : "%c", *p);
				printf("\",%lld,%lld,%s,%lld,%s\n", (long long)calls,
					(long long)billed, minutes, (long long)amount, dollars);
			} else {
				json_array_append_new(arr,
					json_pack("{s:s,s:s,s:I,s:I,s:I,s:s}", by, key, "name",
						label, "calls", (json_int_t)calls, "billed_seconds",
						(json_int_t)billed, "amount_micros",
						(json_int_t)amount, "amount_usd", dollars));
			}
		}
		rating_format_dollars(tamount, dollars, sizeof(dollars));
		snprintf(minutes, sizeof(minutes), "%lld:%02lld", (long long)(tbilled / 60),
			(long long)(tbilled % 60));
		if (strcmp(format, "table") == 0) {
			printf("%-24s %-28s %8lld %12s %16s\n", "total", "", (long long)tcalls,
				minutes, dollars);
		} else if (strcmp(format, "json") == 0) {
			json_t *o = json_pack("{s:s,s:o,s:{s:I,s:I,s:I,s:s}}", "by", by, "rows",
				arr, "total", "calls", (json_int_t)tcalls, "billed_seconds",
				(json_int_t)tbilled, "amount_micros", (json_int_t)tamount,
				"amount_usd", dollars);

			arr = NULL;
			json_dumpf(o, stdout, JSON_INDENT(2));
			printf("\n");
			json_decref(o);
		}
		json_decref(arr);
	}
	rc = CTL_OK;
done:
	PQclear(r);
	PQfinish(conn);
	return rc;
}

/* Records PostgreSQL refused at drain, kept in ledger_rejects (004_billing_limits.sql). */
static int
ctl_rejects_list(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, OPT_ALL },
		CTL_COMMON_OPTS,
	};
	const char *params[1] = { "f" };
	PGconn *conn;
	PGresult *r;
	int c, rc = CTL_OK;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_ALL:
			params[0] = "t";
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	conn = ctl_connect();
	if (!conn)
		return CTL_ERROR;
	r = ctl_query(conn,
		"SELECT id, record::jsonb->>'p', record::jsonb->>'id', sqlstate, message, instance, " CTL_SQL_TIME(
			"rejected_at") ", " CTL_SQL_TIME("replayed_at") ", record "
									"FROM ledger_rejects WHERE $1::boolean OR replayed_at IS NULL ORDER BY id",
		1, params);
	rc = r ? CTL_OK : CTL_ERROR;
	if (r && ctl_json) {
		json_t *arr = json_array(), *o;

		for (int i = 0; i < PQntuples(r); i++)
			json_array_append_new(arr,
				json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
					ctl_pg_int(r, i, 0), "provider", ctl_pg_str(r, i, 1),
					"call_id", ctl_pg_str(r, i, 2), "sqlstate",
					ctl_pg_str(r, i, 3), "message", ctl_pg_str(r, i, 4),
					"instance", ctl_pg_str(r, i, 5), "rejected_at",
					ctl_pg_str(r, i, 6), "replayed_at", ctl_pg_str(r, i, 7),
					"record", ctl_pg_str(r, i, 8)));
		o = json_pack("{s:o}", "rejects", arr);
		ctl_print_json(o);
		json_decref(o);
	} else if (r) {
		static const char *const head[] = { "ID", "CALL", "SQLSTATE", "REJECTED",
			"REPLAYED", "MESSAGE" };
		struct ctl_table t = { .ncols = 6 };

		ctl_table_add(&t, head);
		for (int i = 0; i < PQntuples(r); i++) {
			char call[600], msg[200];
			const char *row[6];

			/* the call id and the message are outside text: one line each, escaped */
			snprintf(call, sizeof(call), "%s/%s", ctl_pg_text(r, i, 1),
				text_escape(ctl_pg_text(r, i, 2), msg, sizeof(msg)));
			row[0] = PQgetvalue(r, i, 0);
			row[1] = call;
			row[2] = PQgetvalue(r, i, 3);
			row[3] = PQgetvalue(r, i, 6);
			row[4] = ctl_pg_text(r, i, 7);
			row[5] = text_escape(PQgetvalue(r, i, 4), msg, sizeof(msg));
			ctl_table_add(&t, row);
		}
		ctl_table_print(&t);
	}
	PQclear(r);
	PQfinish(conn);
	return rc;
}

static int
ctl_rejects_replay(const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *params[1];
	uint64_t id;
	PGconn *conn;
	PGresult *r;
	int rc;

	if (!ctl_common_only(cmd, argc, argv, &rc) || !ctl_args(cmd, argc, argv, 1, &rc))
		return rc;
	if (!ctl_parse_id(argv[optind], &id))
		return ctl_usage_error(cmd, "\"%s\" is not a reject id (a positive integer)",
			argv[optind]);
	params[0] = argv[optind];
	conn = ctl_connect();
	if (!conn)
		return CTL_ERROR;
	r = ctl_query(conn, "SELECT ledger_rejects_replay($1::bigint)", 1, params);
	rc = r ? CTL_OK : CTL_ERROR;
	if (r && ctl_json) {
		json_t *o =
			json_pack("{s:I,s:s}", "id", (json_int_t)id, "result", PQgetvalue(r, 0, 0));

		ctl_print_json(o);
		json_decref(o);
	} else if (r) {
		printf("reject %s: %s\n", params[0], PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	PQfinish(conn);
	return rc;
}

/* The daemons' own rows (009_instances.sql, daemon/instances.c): stale past 3 heartbeats. */
#define CTL_INSTANCE_STALE_S 15
#define CTL_INSTANCE_STALE_TEXT "15"

static int
ctl_instances(const struct ctl_cmd *cmd, int argc, char **argv)
{
	PGconn *conn;
	PGresult *r;
	int rc;

	if (!ctl_common_only(cmd, argc, argv, &rc) || !ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	conn = ctl_connect();
	if (!conn)
		return CTL_ERROR;
	r = ctl_query(conn,
		"SELECT instance_name, version, hostname, pid, listen, admin_listen, " CTL_SQL_TIME("started_at") ", " CTL_SQL_TIME(
			"heartbeat_at") ", "
					"floor(extract(epoch FROM now() - heartbeat_at))::bigint, "
					"route_generation, change_generation, route_source, numbers, "
					"journal_backlog, journal_bytes, journal_writable, "
					"now() - heartbeat_at > make_interval(secs => $1::int) "
					"FROM callrouted_instances ORDER BY instance_name",
		1, (const char *const[]){ CTL_INSTANCE_STALE_TEXT });
	rc = r ? CTL_OK : CTL_ERROR;
	if (r && ctl_json) {
		json_t *arr = json_array(), *o;

		for (int i = 0; i < PQntuples(r); i++)
			json_array_append_new(arr,
				json_pack(
					"{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,"
					"s:o,s:b,s:b}",
					"instance", ctl_pg_str(r, i, 0), "version",
					ctl_pg_str(r, i, 1), "hostname", ctl_pg_str(r, i, 2), "pid",
					ctl_pg_int(r, i, 3), "listen", ctl_pg_str(r, i, 4),
					"admin_listen", ctl_pg_str(r, i, 5), "started_at",
					ctl_pg_str(r, i, 6), "heartbeat_at", ctl_pg_str(r, i, 7),
					"heartbeat_age_s", ctl_pg_int(r, i, 8), "route_generation",
					ctl_pg_int(r, i, 9), "change_generation",
					ctl_pg_int(r, i, 10), "route_source", ctl_pg_str(r, i, 11),
					"numbers", ctl_pg_int(r, i, 12), "journal_backlog",
					ctl_pg_int(r, i, 13), "journal_bytes", ctl_pg_int(r, i, 14),
					"journal_writable", *PQgetvalue(r, i, 15) == 't', "stale",
					*PQgetvalue(r, i, 16) == 't'));
		o = json_pack("{s:o,s:i}", "instances", arr, "stale_after_s", CTL_INSTANCE_STALE_S);
		ctl_print_json(o);
		json_decref(o);
	} else if (r) {
		static const char *const head[] = { "INSTANCE", "VERSION", "HOST", "PID", "STARTED",
			"HEARTBEAT", "GENERATION", "CHANGE", "ROUTES", "NUMBERS", "BACKLOG",
			"STATE" };
		struct ctl_table t = { .ncols = 12 };
		int stale = 0;

		ctl_table_add(&t, head);
		for (int i = 0; i < PQntuples(r); i++) {
			char name[300], host[300], ago[32];
			bool is_stale = *PQgetvalue(r, i, 16) == 't';
			const char *row[12];

			stale += is_stale;
			/* names come from the daemons' configuration files: outside text */
			snprintf(ago, sizeof(ago), "%ss ago", PQgetvalue(r, i, 8));
			row[0] = text_escape(PQgetvalue(r, i, 0), name, sizeof(name));
			row[1] = PQgetvalue(r, i, 1);
			row[2] = text_escape(PQgetvalue(r, i, 2), host, sizeof(host));
			row[3] = PQgetvalue(r, i, 3);
			row[4] = PQgetvalue(r, i, 6);
			row[5] = ago;
			row[6] = PQgetvalue(r, i, 9);
			row[7] = ctl_pg_text(r, i, 10);
			row[8] = PQgetvalue(r, i, 11);
			row[9] = PQgetvalue(r, i, 12);
			row[10] = PQgetvalue(r, i, 13);
			row[11] = is_stale                     ? "STALE" :
				  *PQgetvalue(r, i, 15) != 't' ? "JOURNAL-NOT-WRITABLE" :
								 "ok";
			ctl_table_add(&t, row);
		}
		ctl_table_print(&t);
		if (stale)
			printf("%d stale: no heartbeat for more than %d s (stopped, crashed, or cut off "
			       "from the database)\n",
				stale, CTL_INSTANCE_STALE_S);
	}
	PQclear(r);
	PQfinish(conn);
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Commands                                                                                    */

#define CTL_API_NOTE                                                                               \
	"\nThrough the admin API: --url URL or $CALLROUTED_URL (default " CTL_DEFAULT_URL ", or\n" \
	"the admin_listen of -c FILE), --token TOKEN or $CALLROUTED_TOKEN."
#define CTL_DB_NOTE "\nOn the database: --database CONNINFO, or the database_url of -c FILE."

/* A query value with '+' and the reserved characters %-escaped. */
static void
ctl_route_q(char *out, size_t len, const char *v)
{
	size_t n = 0;

	for (; *v && n + 4 < len; v++) {
		if (isalnum((unsigned char)*v) || strchr("-._~:", *v))
			out[n++] = *v;
		else
			n += (size_t)snprintf(out + n, len - n, "%%%02X", (unsigned char)*v);
	}
	out[n] = 0;
}

static int
ctl_route_explain(const struct ctl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, OPT_TO },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "at", required_argument, NULL, OPT_AT },
		CTL_COMMON_OPTS,
	};
	char to[E164_BUFSIZE] = "", from[E164_BUFSIZE] = "", at[64] = "";
	char path[512], qto[64], qfrom[64], qat[160];
	json_t *answer = NULL;
	int c, rc = CTL_OK;

	while ((c = ctl_getopt(cmd, argc, argv, opts)) != -1) {
		switch (c) {
		case OPT_TO:
		case OPT_FROM:
			if (!ctl_parse_e164(optarg, c == OPT_TO ? to : from, sizeof(to)))
				return ctl_usage_error(cmd,
					"--%s \"%s\" is not an E.164 number "
					"(+ country code and number, e.g. +14155550123)",
					c == OPT_TO ? "to" : "from", optarg);
			break;
		case OPT_AT:
			if (!text_ok(optarg, 40))
				return ctl_usage_error(cmd,
					"--at takes an ISO 8601 time, e.g. 2026-03-08T14:30:00Z");
			snprintf(at, sizeof(at), "%s", optarg);
			break;
		default:
			return c == CTL_HELP_SHOWN ? CTL_OK : CTL_USAGE;
		}
	}
	if (!ctl_args(cmd, argc, argv, 0, &rc))
		return rc;
	if (!*to)
		return ctl_usage_error(cmd, "--to E164 is required");
	ctl_route_q(qto, sizeof(qto), to);
	ctl_route_q(qfrom, sizeof(qfrom), from);
	ctl_route_q(qat, sizeof(qat), at);
	snprintf(path, sizeof(path), "/v1/route?to=%s%s%s%s%s", qto, *from ? "&from=" : "", qfrom,
		*at ? "&at=" : "", qat);
	rc = ctl_api(EVHTTP_REQ_GET, path, NULL, &answer);
	if (rc == CTL_OK) {
		if (ctl_json) {
			ctl_print_json(answer);
		} else {
			json_t *ag = json_object_get(answer, "agent"),
			       *ru = json_object_get(answer, "rule");

			printf("decision:  %s%s\n", ctl_jstr(answer, "decision"),
				json_is_true(json_object_get(answer, "overflow")) ?
					" (overflow agent)" :
					"");
			printf("agent:     %s\n",
				json_is_object(ag) ? ctl_jstr(ag, "provider_agent_id") : "(none)");
			printf("rule:      %s (%s)\n", ctl_jstr(ru, "table"),
				ctl_jstr(ru, "scope"));
			printf("at:        %s (local %s, %s)\n", ctl_jstr(answer, "at"),
				ctl_jstr(answer, "local_time"), ctl_jstr(answer, "time_zone"));
			ctl_print_json(answer);
		}
	}
	json_decref(answer);
	return rc;
}

static const struct ctl_cmd ctl_cmds[] = {
	{ "numbers", "list",
		"[--client ID] [--agent ID] [--provider retell|vapi|bland]\n"
		"        [--status active|released|pending|failed] [--e164 DIGITS] [--limit N]\n"
		"        [--after ID] [--all]",
		"List the agency's phone numbers, ordered by id.\n\n"
		"  --client ID, --agent ID, --provider P, --status S   filters\n"
		"  --e164 +1415  numbers starting with +1415; --e164 5550123: numbers containing it\n"
		"  --limit N     page size, 1 to 500 (default 50)\n"
		"  --after ID    the page after this number id (the answer's next_after)\n"
		"  --all         every page, following next_after" CTL_API_NOTE,
		ctl_numbers_list },
	{ "numbers", "show", "ID", "Show one number." CTL_API_NOTE, ctl_numbers_show },
	{ "numbers", "buy", "--account SLUG --area-code NNN [--nickname X] [--agent ID]",
		"Buy a number with this area code through the provider account SLUG, pointed at our\n"
		"webhook, and assign it to agent ID if given." CTL_API_NOTE,
		ctl_numbers_buy },
	{ "numbers", "assign", "ID --agent ID",
		"Assign (or reassign) the number to an agent: the provider is updated first." CTL_API_NOTE,
		ctl_numbers_assign },
	{ "numbers", "unassign", "ID",
		"Take the number's agent away: calls to it answer \"no agent\"." CTL_API_NOTE,
		ctl_numbers_unassign },
	{ "numbers", "rename", "ID NICKNAME",
		"Set the number's nickname (1 to 64 characters; \"\" clears it)." CTL_API_NOTE,
		ctl_numbers_rename },
	{ "numbers", "release", "ID [--force]",
		"Release the number at the provider and mark it released: routing stops at once.\n"
		"(Bland has no release API: the number is only unbound there; the answer says so.)\n\n"
		"  --force   also when the provider no longer has it (released in its dashboard:\n"
		"            its 404): marked released here, with a note" CTL_API_NOTE,
		ctl_numbers_release },
	{ "numbers", "events", "ID",
		"The number's audit trail, oldest first: every buy, assign, unassign, rename and\n"
		"release made through the API (and by the provider sync), with the agent and nickname\n"
		"before and after, the token (or \"sync\"), the instance and the time." CTL_API_NOTE,
		ctl_numbers_events },
	{ "calls", "place",
		"--agent ID --to E164 [--from E164] [--variables JSON] [--metadata JSON]",
		"Place an outbound call from the agent, with its number as caller ID (--from: one of\n"
		"its numbers; default its lowest-id active number).\n\n"
		"  --variables '{\"name\":\"Ana\"}'  the agent's {{variables}}: string values (Retell\n"
		"                retell_llm_dynamic_variables, Vapi variableValues, Bland request_data)\n"
		"  --metadata '{...}'   kept with the call at the provider\n"
		"  limits: 32 keys each; keys 1-64 of A-Z a-z 0-9 _ (metadata also . -); a value at most\n"
		"  1024 bytes; both together at most 8192 bytes as JSON" CTL_API_NOTE,
		ctl_calls_place },
	{ "calls", "list",
		"[--number ID] [--agent ID] [--client ID] [--direction D] [--status S]\n"
		"        [--provider P] [--since T] [--until T] [--call-id X]\n"
		"        [--limit N] [--after ID] [--all]",
		"The agency's call history (the calls table, with what the ledger billed), by id.\n\n"
		"  --direction inbound|outbound|unknown, --status in_progress|ended   filters\n"
		"  --since T, --until T   [since, until) of the start: YYYY-MM-DD or\n"
		"                         YYYY-MM-DDTHH:MM:SSZ (UTC)\n"
		"  --call-id X   the call whose provider's call id is X\n"
		"  --limit N, --after ID, --all   pages, as numbers list" CTL_API_NOTE,
		ctl_list_cmd },
	{ "calls", "show", "ID", "Show one call of calls list." CTL_API_NOTE, ctl_calls_show },
	{ "agents", "list",
		"[--client ID] [--provider P] [--name TEXT] [--limit N] [--after ID] [--all]",
		"The agency's agents: id, name, provider and its agent id, client, active numbers\n"
		"(--name: a part of the name, any case)." CTL_API_NOTE,
		ctl_list_cmd },
	{ "accounts", "list", "[--provider P] [--limit N] [--after ID] [--all]",
		"The agency's provider accounts, without their secrets (whether a webhook secret is\n"
		"set, never the secret or the API key)." CTL_API_NOTE,
		ctl_list_cmd },
	{ "clients", "list", "[--name TEXT] [--limit N] [--after ID] [--all]",
		"The agency's clients: id, name, portal visibility, agents." CTL_API_NOTE,
		ctl_list_cmd },
	{ NULL, "sync", "SLUG [--dry-run] [--repair]",
		"Sync the provider account SLUG: list its numbers and agents at the provider, import\n"
		"those we do not have, adopt or fail pending purchases, mark agents the provider no\n"
		"longer has inactive, and report every drift between the provider and us.\n\n"
		"  --dry-run   report only: nothing changes here or at the provider\n"
		"  --repair    also make the provider match us where it drifted (the assign path's\n"
		"              provider update)\n"
		"Exit code 0 when the sync ran, whether or not it found drift (--json: .in_sync)." CTL_API_NOTE,
		ctl_sync },
	{ "route", "explain", "--to E164 [--from E164] [--at ISO8601]",
		"Why a call to --to from --from (at --at, default now) goes where it goes: the\n"
		"decision, the agent, the rule that decided, the figures (GET /v1/route, the\n"
		"webhooks' decision; an agency token)." CTL_API_NOTE,
		ctl_route_explain },
	{ "tokens", "create", "--agency ID [--client ID] [--name NAME] [--quiet]",
		"Make an admin API token for the agency (with --client: a read-only client-portal\n"
		"token).  The token is printed once; only its SHA-256 is stored.  On a terminal: a\n"
		"table; when the output is not a terminal, or with --quiet: the token alone, so\n"
		"export CALLROUTED_TOKEN=$(callroutectl tokens create ...) works." CTL_DB_NOTE,
		ctl_tokens_create },
	{ "tokens", "revoke", "ID", "Revoke token ID at once." CTL_DB_NOTE, ctl_tokens_revoke },
	{ "tokens", "list", "--agency ID",
		"The agency's tokens: id, name, client, created, revoked (never the token)." CTL_DB_NOTE,
		ctl_tokens_list },
	{ NULL, "usage",
		"--agency ID [--from YYYY-MM-DD] [--to YYYY-MM-DD]\n"
		"        [--by agency|client|agent|number|day] [--format table|csv|json]",
		"Totals of the usage ledger: calls, billed minutes, amount (UTC days of ended_at, or of\n"
		"recorded_at for rows without one; --to inclusive; --json is --format json).  An\n"
		"agency token gets the same totals from the admin API: GET /v1/usage." CTL_DB_NOTE,
		ctl_usage_cmd },
	{ "rejects", "list", "[--all]",
		"Journal records PostgreSQL refused at drain, kept in ledger_rejects (--all: the\n"
		"replayed ones too): id, call, SQLSTATE, when, and the database's message." CTL_DB_NOTE,
		ctl_rejects_list },
	{ "rejects", "replay", "ID",
		"Write reject ID to calls and usage_ledger, once its cause is fixed (a row already\n"
		"there stays); fails with the database's error while the cause remains." CTL_DB_NOTE,
		ctl_rejects_replay },
	{ NULL, "instances", "",
		"The daemons that record themselves in callrouted_instances: name, version, host, pid,\n"
		"start, last heartbeat, route generation (its own) and change generation (shared),\n"
		"where its routes come from, numbers, journal backlog; STALE when the heartbeat (every\n"
		"5 s) is older than 15 s." CTL_DB_NOTE,
		ctl_instances },
	{ NULL, "migrate", "",
		"Apply the daemon's SQL migrations that the database lacks (as callrouted --migrate)." CTL_DB_NOTE,
		ctl_migrate },
};

#define CTL_NCMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

static void
ctl_help(FILE *f)
{
	const char *group = NULL;

	fprintf(f,
		"usage: callroutectl [GLOBAL OPTIONS] COMMAND [ARGS]\n\n"
		"global options (also accepted after the command):\n"
		"  -c, --config FILE       the daemon's configuration (default %s)\n"
		"      --database CONNINFO the database (tokens, usage, migrate)\n"
		"      --url URL           the admin API (numbers, calls; default $CALLROUTED_URL,\n"
		"                          else the admin_listen of -c FILE, else %s)\n"
		"      --token TOKEN       the API token (default $CALLROUTED_TOKEN)\n"
		"      --json              machine-readable output\n"
		"  -h, --help, -V, --version\n\ncommands:\n",
		ctl_config, CTL_DEFAULT_URL);
	for (size_t i = 0; i < CTL_NCMDS; i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		bool same = i > 0 &&
			    (c->group && group ? strcmp(c->group, group) == 0 : c->group == group);

		if (i > 0 && !same)
			fputc('\n', f);
		group = c->group;
		fprintf(f, "  %s%s%s%s%s\n", c->group ? c->group : "", c->group ? " " : "", c->name,
			*c->synopsis ? " " : "", c->synopsis);
	}
	fprintf(f, "\n`callroutectl COMMAND --help` tells more.  Exit codes: 0 done, 1 error, "
		   "2 usage error.\n");
}

static void
ctl_group_help(FILE *f, const char *group)
{
	fprintf(f, "usage: callroutectl [GLOBAL OPTIONS] %s SUBCOMMAND [ARGS]\n\n", group);
	for (size_t i = 0; i < CTL_NCMDS; i++)
		if (ctl_cmds[i].group && strcmp(ctl_cmds[i].group, group) == 0)
			fprintf(f, "  %s %s %s\n", group, ctl_cmds[i].name, ctl_cmds[i].synopsis);
	fprintf(f, "\n`callroutectl %s SUBCOMMAND --help` tells more.\n", group);
}

static bool
ctl_is_group(const char *word)
{
	for (size_t i = 0; i < CTL_NCMDS; i++)
		if (ctl_cmds[i].group && strcmp(ctl_cmds[i].group, word) == 0)
			return true;
	return false;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past it. */
static bool
ctl_global_value(int argc, char **argv, int *i, const char *name, const char **out)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return false;
	if (a[n] == '=') {
		*out = a + n + 1;
		*i += 1;
		return true;
	}
	if (a[n] == '\0' && *i + 1 < argc) {
		*out = argv[*i + 1];
		*i += 2;
		return true;
	}
	return false;
}

int
main(int argc, char **argv)
{
	const char *word;
	int i = 1;

	log_setup();
	while (i < argc && argv[i][0] == '-') {
		const char *v = NULL;

		/* each once: which of two would count is anyone's guess */
		if (ctl_global_value(argc, argv, &i, "-c", &v) ||
			ctl_global_value(argc, argv, &i, "--config", &v)) {
			if (ctl_config_given) {
				ctl_error("option --config (-c) given twice");
				return CTL_USAGE;
			}
			ctl_config = v;
			ctl_config_given = true;
		} else if (ctl_global_value(argc, argv, &i, "--database", &v)) {
			if (ctl_database) {
				ctl_error("option --database given twice");
				return CTL_USAGE;
			}
			ctl_database = v;
		} else if (ctl_global_value(argc, argv, &i, "--url", &v)) {
			if (!ctl_common_value(NULL, OPT_URL, v))
				return CTL_USAGE;
		} else if (ctl_global_value(argc, argv, &i, "--token", &v)) {
			if (!ctl_common_value(NULL, OPT_TOKEN, v))
				return CTL_USAGE;
		} else if (strcmp(argv[i], "--json") == 0) {
			if (!ctl_common_value(NULL, OPT_JSON, NULL))
				return CTL_USAGE;
			i++;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			ctl_help(stdout);
			return CTL_OK;
		} else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			printf("callroutectl %s\n", CALLROUTED_VERSION);
			return CTL_OK;
		} else {
			ctl_error("unknown option %s (or its value is missing)", argv[i]);
			ctl_help(stderr);
			return CTL_USAGE;
		}
	}
	if (i >= argc) {
		ctl_help(stderr);
		return CTL_USAGE;
	}
	word = argv[i];
	if (strcmp(word, "help") == 0) {
		ctl_help(stdout);
		return CTL_OK;
	}
	if (ctl_is_group(word)) {
		const char *sub = i + 1 < argc ? argv[i + 1] : NULL;

		if (sub && (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0)) {
			ctl_group_help(stdout, word);
			return CTL_OK;
		}
		for (size_t k = 0; sub && k < CTL_NCMDS; k++)
			if (ctl_cmds[k].group && strcmp(ctl_cmds[k].group, word) == 0 &&
				strcmp(ctl_cmds[k].name, sub) == 0)
				return ctl_cmds[k].run(&ctl_cmds[k], argc - i - 1, argv + i + 1);
		if (sub)
			ctl_error("unknown subcommand \"%s %s\"", word, sub);
		else
			ctl_error("%s needs a subcommand", word);
		ctl_group_help(stderr, word);
		return CTL_USAGE;
	}
	for (size_t k = 0; k < CTL_NCMDS; k++)
		if (!ctl_cmds[k].group && strcmp(word, ctl_cmds[k].name) == 0)
			return ctl_cmds[k].run(&ctl_cmds[k], argc - i, argv + i);
	ctl_error("unknown command \"%s\"", word);
	ctl_help(stderr);
	return CTL_USAGE;
}
