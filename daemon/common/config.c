/* common/config.c: the key table; parse -> validate -> publish a new configuration block. */
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callrouted/config.h"
#include "callrouted/log.h"

enum config_type {
	CF_STRING,
	CF_ADDR,
	CF_INT,
	CF_DURATION,
	CF_SIZE,
	CF_LOGLEVEL,
	CF_WORKERS,
	CF_FILE
};

/* Row flags (pgbouncer's CF_NO_RELOAD): a restart-only key keeps its old value on SIGHUP. */
enum { CF_NO_RELOAD = 1 };

struct config_key {
	const char *name;
	enum config_type type;
	unsigned flags;   /* CF_NO_RELOAD */
	const char *def;  /* default as written in the file; NULL = none */
	size_t offset;    /* into struct config; for CF_FILE the string it fills */
	int64_t min, max; /* bounds for numbers (ms for durations) */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct config_key config_keys[] = {
	{ "database_url", CF_STRING, CF_NO_RELOAD, NULL, OFF(database_url), 0, 0,
		"libpq connection string or URI of the PostgreSQL database" },
	{ "database_url_file", CF_FILE, CF_NO_RELOAD, NULL, OFF(database_url), 0, 0,
		"file whose first line is database_url (keeps the secret out of this file)" },
	{ "listen", CF_ADDR, CF_NO_RELOAD, "0.0.0.0:8080", OFF(listen), 0, 0,
		"address:port of the webhook listener" },
	{ "admin_listen", CF_ADDR, CF_NO_RELOAD, "127.0.0.1:9090", OFF(admin_listen), 0, 0,
		"address:port of the admin listener (health, readiness, admin API)" },
	{ "state_dir", CF_STRING, CF_NO_RELOAD, "/var/lib/callrouted", OFF(state_dir), 0, 0,
		"directory for the route snapshot and the journal" },
	{ "log_level", CF_LOGLEVEL, 0, "info", OFF(log_level), 0, 0,
		"error, warning, info or debug" },
	{ "refresh_interval", CF_DURATION, CF_NO_RELOAD, "300s", OFF(refresh_interval_ms), 1000,
		86400000,
		"period of the full reload of the route table (safety net under LISTEN/NOTIFY)" },
	{ "reconnect_interval", CF_DURATION, CF_NO_RELOAD, "1s", OFF(reconnect_interval_ms), 10,
		3600000, "delay before reconnecting to PostgreSQL after a failure" },
	{ "signature_tolerance", CF_DURATION, 0, "300s", OFF(signature_tolerance_ms), 1000,
		86400000, "replay window for signed webhooks that carry a timestamp" },
	{ "max_body_bytes", CF_SIZE, 0, "1048576", OFF(max_body_bytes), 256, 64 << 20,
		"largest webhook body accepted (413 above)" },
	{ "max_header_bytes", CF_SIZE, 0, "65536", OFF(max_header_bytes), 1024, 1 << 20,
		"largest request head (request line and headers) accepted (431 above)" },
	{ "request_timeout", CF_DURATION, 0, "10s", OFF(request_timeout_ms), 100, 600000,
		"a webhook request's head and body must arrive within this (408 after: slow clients)" },
	{ "keepalive_timeout", CF_DURATION, 0, "60s", OFF(keepalive_timeout_ms), 100, 3600000,
		"an idle keep-alive webhook connection is closed after this" },
	{ "max_connections", CF_INT, CF_NO_RELOAD, "10000", OFF(max_connections), 1, 1000000,
		"webhook connections open at once, all workers together (more are refused)" },
	{ "admin_max_connections", CF_INT, CF_NO_RELOAD, "64", OFF(admin_max_connections), 1,
		100000, "admin listener connections open at once (more are refused: 503)" },
	{ "admin_db_connections", CF_INT, CF_NO_RELOAD, "4", OFF(admin_db_connections), 1, 16,
		"database connections of the admin API (its queries run on them side by side)" },
	{ "admin_token_cache", CF_DURATION, CF_NO_RELOAD, "0", OFF(admin_token_cache_ms), 0, 60000,
		"how long the admin API keeps a checked token (0: it checks each request's); a "
		"revocation empties it when PostgreSQL's notification arrives" },
	{ "admin_max_header_bytes", CF_SIZE, CF_NO_RELOAD, "16384", OFF(admin_max_header_bytes),
		1024, 1 << 20, "largest admin request head accepted (431 above)" },
	{ "admin_max_body_bytes", CF_SIZE, CF_NO_RELOAD, "65536", OFF(admin_max_body_bytes), 256,
		16 << 20, "largest admin request body accepted (413 above)" },
	{ "admin_request_timeout", CF_DURATION, CF_NO_RELOAD, "10s", OFF(admin_request_timeout_ms),
		100, 600000,
		"an admin request's head and body must arrive within this, however slowly it drips "
		"(408 after)" },
	{ "admin_keepalive_timeout", CF_DURATION, CF_NO_RELOAD, "30s",
		OFF(admin_keepalive_timeout_ms), 100, 3600000,
		"an idle keep-alive admin connection is closed after this" },
	{ "tls_cert_file", CF_STRING, 0, "", OFF(tls_cert_file), 0, 0,
		"PEM certificate chain of the webhook listener (with tls_key_file: TLS 1.2+; reloaded on "
		"SIGHUP)" },
	{ "tls_key_file", CF_STRING, 0, "", OFF(tls_key_file), 0, 0,
		"PEM private key of tls_cert_file" },
	{ "workers", CF_WORKERS, CF_NO_RELOAD, "auto", OFF(workers), 0, 256,
		"webhook worker threads: auto (one per core) or a number" },
	{ "instance_name", CF_STRING, CF_NO_RELOAD, "", OFF(instance_name), 0, 0,
		"name of this instance in logs and records (empty: the host name)" },
	{ "vapi_no_agent_message", CF_STRING, 0, "Sorry, this number is not in service.",
		OFF(vapi_no_agent_message), 0, 0,
		"what Vapi says to a caller of a number with no agent" },
	{ "public_url", CF_STRING, CF_NO_RELOAD, "", OFF(public_url), 0, 0,
		"base URL providers use to reach the webhook listener, e.g. https://calls.example.com "
		"(needed to buy and assign numbers)" },
	{ "provider_ca_file", CF_STRING, CF_NO_RELOAD, "", OFF(provider_ca_file), 0, 0,
		"CA bundle that signs the provider APIs' certificates (empty: the system's)" },
	{ "provider_timeout", CF_DURATION, CF_NO_RELOAD, "10s", OFF(provider_timeout_ms), 1000,
		120000, "how long a provider API call may take (504 after)" },
	{ "provider_sync_interval", CF_DURATION, CF_NO_RELOAD, "15min",
		OFF(provider_sync_interval_ms), 0, 86400000,
		"how often the provider drift check lists every account's numbers and agents at its "
		"provider (a dry-run sync; 0: never)" },
	{ "shutdown_delay", CF_DURATION, 0, "5s", OFF(shutdown_delay_ms), 0, 300000,
		"on SIGTERM, /readyz answers 503 at once and the webhook listener keeps serving this "
		"long before it closes (longer than the load balancer's fall x inter)" },
	/* PostgreSQL primary and hot standby (issue 14) */
	{ "routes_database_url", CF_STRING, CF_NO_RELOAD, "", OFF(routes_database_url), 0, 0,
		"libpq connection string the route loader reads the route table from, e.g. a hot "
		"standby (empty: database_url)" },
	{ "change_poll_interval", CF_DURATION, CF_NO_RELOAD, "2s", OFF(change_poll_interval_ms),
		100, 3600000,
		"with routes_database_url: how often the loader looks for changes on it without a "
		"notification" },
	{ "replication_wait", CF_STRING, CF_NO_RELOAD, "auto", OFF(replication_wait), 0, 0,
		"auto: keep drained journal records until every standby has flushed them; off: "
		"recycle them at commit" },
	{ "replication_wait_timeout", CF_DURATION, CF_NO_RELOAD, "60s",
		OFF(replication_wait_timeout_ms), 1000, 86400000,
		"longest wait for the standbys before drained records are recycled anyway" },
};

#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const char *const *config_names_cache;

static _Atomic(struct config *) config_cur;
static struct config *config_old[64]; /* replaced blocks (main thread only) */
static size_t config_nold;

const struct config *
config_current(void)
{
	return atomic_load(&config_cur);
}

void
config_publish(struct config *c)
{
	struct config *old = atomic_exchange(&config_cur, c);

	if (!old)
		return;
	if (config_nold == sizeof(config_old) / sizeof(config_old[0])) {
		/* 64 reloads in one life: let the newest kept block go (a few hundred bytes)
		 * rather than free it under a reader */
		config_old[config_nold - 1] = old;
		return;
	}
	config_old[config_nold++] = old;
}

void
config_free_all(void)
{
	config_free(atomic_exchange(&config_cur, NULL));
	for (size_t i = 0; i < config_nold; i++)
		config_free(config_old[i]);
	config_nold = 0;
}

static bool
config_str_changed(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* A key's value in c, as a string (CF_STRING, CF_ADDR) or a number (the others). */
static bool
config_is_string(const struct config_key *k)
{
	return k->type == CF_STRING || k->type == CF_ADDR;
}

static int64_t
config_number(const struct config *c, const struct config_key *k)
{
	const char *base = (const char *)c + k->offset;

	switch (k->type) {
	case CF_DURATION:
		return *(const int64_t *)base;
	case CF_SIZE:
		return (int64_t) * (const size_t *)base;
	case CF_INT:
	case CF_LOGLEVEL:
	case CF_WORKERS:
		return *(const int *)base;
	default:
		return 0;
	}
}

/* Give new the old value of a restart-only key k; false if the string could not be copied. */
static bool
config_keep(const struct config *old, struct config *new, const struct config_key *k)
{
	const char *from = (const char *)old + k->offset;
	char *to = (char *)new + k->offset;

	if (config_is_string(k)) {
		const char *s = *(char *const *)from;

		free(*(char **)to);
		*(char **)to = s ? strdup(s) : NULL;
		return !s || *(char **)to;
	}
	memcpy(to, from,
		k->type == CF_DURATION ? sizeof(int64_t) :
		k->type == CF_SIZE     ? sizeof(size_t) :
					 sizeof(int));
	return true;
}

bool
config_reconcile(const struct config *old, struct config *new)
{
	bool ok = true;

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];
		bool changed;

		/* a CF_FILE row fills the field of another row, compared there */
		if (!(k->flags & CF_NO_RELOAD) || k->type == CF_FILE)
			continue;
		changed =
			config_is_string(k) ?
				config_str_changed(*(char *const *)((const char *)old + k->offset),
					*(char *const *)((const char *)new + k->offset)) :
				config_number(old, k) != config_number(new, k);
		if (!changed)
			continue;
		log_warning("config: %s changed: it takes effect at the next restart", k->name);
		if (!config_keep(old, new, k))
			log_error("config: out of memory keeping the old %s", k->name);
		ok = false;
	}
	if (old->log_level != new->log_level)
		log_info("config: log_level is now %d", new->log_level);
	if (old->signature_tolerance_ms != new->signature_tolerance_ms)
		log_info("config: signature_tolerance is now %lld ms",
			(long long)new->signature_tolerance_ms);
	if (old->max_body_bytes != new->max_body_bytes)
		log_info("config: max_body_bytes is now %zu", new->max_body_bytes);
	if (config_str_changed(old->vapi_no_agent_message, new->vapi_no_agent_message))
		log_info("config: vapi_no_agent_message changed");
	return ok;
}

bool
config_key_reloadable(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return !(config_keys[i].flags & CF_NO_RELOAD);
	return false;
}

const char *const *
config_key_names(void)
{
	static const char *names[N_KEYS + 1];

	if (!config_names_cache) {
		for (size_t i = 0; i < N_KEYS; i++)
			names[i] = config_keys[i].name;
		names[N_KEYS] = NULL;
		config_names_cache = names;
	}
	return config_names_cache;
}

void
config_print_keys(FILE *f)
{
	for (size_t i = 0; i < N_KEYS; i++)
		fprintf(f, "  %-22s %-10s %s%s\n", config_keys[i].name,
			config_keys[i].def ? (*config_keys[i].def ? config_keys[i].def : "\"\"") :
					     "-",
			config_keys[i].help,
			config_keys[i].flags & CF_NO_RELOAD ? " (needs a restart)" : "");
}

/* s as roff text: a backslash is \e, a quote \(dq; a leading . or ' is guarded with \&.  With
 * wrap, a space starts a new line where the next word would pass column 78 (mandoc's style:
 * text lines within 80 bytes). */
static void
config_man_text(FILE *f, const char *s, bool wrap)
{
	size_t col = 0;

	for (; *s; s++, col++) {
		if (wrap && *s == ' ' && col + 1 + strcspn(s + 1, " ") > 78) {
			fputc('\n', f);
			col = (size_t)-1;
			continue;
		}
		if (col == 0 && (*s == '.' || *s == '\''))
			fputs("\\&", f);
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '"')
			fputs("\\(dq", f);
		else
			fputc(*s, f);
	}
}

/* A bound of key k as written in the file: durations in s (or ms), sizes and counts bare. */
static void
config_man_bound(FILE *f, const struct config_key *k, int64_t v)
{
	if (k->type == CF_DURATION && v % 1000 == 0)
		fprintf(f, "%llds", (long long)(v / 1000));
	else if (k->type == CF_DURATION)
		fprintf(f, "%lldms", (long long)v);
	else
		fprintf(f, "%lld", (long long)v);
}

void
config_print_man(FILE *f)
{
	static const char *const type_names[] = {
		[CF_STRING] = "string",
		[CF_ADDR] = "address:port",
		[CF_INT] = "integer",
		[CF_DURATION] = "duration",
		[CF_SIZE] = "size",
		[CF_LOGLEVEL] = "level",
		[CF_WORKERS] = "auto | number",
		[CF_FILE] = "path",
	};

	fputs(".Bl -tag -width Ds\n", f);
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct config_key *k = &config_keys[i];

		fprintf(f, ".It Cm %s No = Ar \"%s\"\n", k->name, type_names[k->type]);
		config_man_text(f, k->help, true);
		fputs(".\n", f);
		if (!k->def)
			fputs("No default.\n", f);
		else if (!*k->def)
			fputs("Default: empty.\n", f);
		else {
			fputs("Default:\n.Ql \"", f);
			config_man_text(f, k->def, false);
			/* a value ending in a period is not the sentence's end */
			fputs(strchr(".,;:", k->def[strlen(k->def) - 1]) ? "\\&\" .\n" : "\" .\n",
				f);
		}
		if (k->max > 0 && k->type == CF_WORKERS) {
			fputs("Range: auto or 1 to ", f);
			config_man_bound(f, k, k->max);
			fputs(".\n", f);
		} else if (k->max > 0) {
			fputs("Range: ", f);
			config_man_bound(f, k, k->min);
			fputs(" to ", f);
			config_man_bound(f, k, k->max);
			fputs(".\n", f);
		}
		if (k->flags & CF_NO_RELOAD)
			fputs("Needs a restart: a change is ignored by\n.Dv SIGHUP\n"
			      "until the next start.\n",
				f);
		else
			fputs("Applied by\n.Dv SIGHUP .\n", f);
	}
	fputs(".El\n", f);
}

/* "300", "300s", "250ms", "5m", "1h" -> milliseconds */
static bool
config_parse_duration(const char *v, int64_t *out)
{
	char *end;
	long long n;

	errno = 0;
	if (!isdigit((unsigned char)*v))
		return false;
	n = strtoll(v, &end, 10);
	if (errno || n < 0 || n > 1000000000LL)
		return false;
	if (*end == 0 || strcmp(end, "s") == 0)
		*out = n * 1000;
	else if (strcmp(end, "ms") == 0)
		*out = n;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		*out = n * 60000;
	else if (strcmp(end, "h") == 0)
		*out = n * 3600000;
	else
		return false;
	return true;
}

/* "1048576", "64K", "1M" -> bytes */
static bool
config_parse_size(const char *v, int64_t *out)
{
	char *end;
	long long n;

	errno = 0;
	if (!isdigit((unsigned char)*v))
		return false;
	n = strtoll(v, &end, 10);
	if (errno || n < 0 || n > (1LL << 40))
		return false;
	if (*end == 0 || strcmp(end, "B") == 0)
		*out = n;
	else if (strcmp(end, "K") == 0 || strcmp(end, "k") == 0 || strcmp(end, "KiB") == 0)
		*out = n << 10;
	else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
		*out = n << 20;
	else
		return false;
	return true;
}

static char *
config_read_secret_file(const char *path, char *why, size_t whylen)
{
	FILE *f = fopen(path, "re");
	char buf[4096];
	size_t n;

	if (!f) {
		snprintf(why, whylen, "could not open \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	if (!*buf) {
		snprintf(why, whylen, "\"%s\" is empty", path);
		return NULL;
	}
	return strdup(buf);
}

/* "host:port" or "[v6]:port" with a port from 1 to 65535 */
static bool
config_valid_addr(const char *v)
{
	const char *colon = strrchr(v, ':');
	char *end;
	long port;

	if (!colon || colon == v)
		return false;
	if (*v == '[' && colon[-1] != ']')
		return false;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return !errno && *end == 0 && end != colon + 1 && port >= 1 && port <= 65535;
}

/* Set one key; on failure fill why and return false. */
static bool
config_set(struct config *c, const struct config_key *k, const char *v, char *why, size_t whylen)
{
	char *base = (char *)c + k->offset;
	int64_t n;

	switch (k->type) {
	case CF_ADDR:
		if (!config_valid_addr(v)) {
			snprintf(why, whylen,
				"\"%s\" is not host:port (like 0.0.0.0:8080 or [::1]:9090)", v);
			return false;
		}
		/* fall through */
	case CF_STRING: {
		char *s = strdup(v);

		if (!s) {
			snprintf(why, whylen, "out of memory");
			return false;
		}
		free(*(char **)base);
		*(char **)base = s;
		return true;
	}
	case CF_FILE: {
		char *s = config_read_secret_file(v, why, whylen);

		if (!s)
			return false;
		free(*(char **)base);
		*(char **)base = s;
		return true;
	}
	case CF_DURATION:
		if (!config_parse_duration(v, &n)) {
			snprintf(why, whylen, "\"%s\" is not a duration (like 250ms, 30s, 5m, 1h)",
				v);
			return false;
		}
		if (n < k->min || n > k->max) {
			snprintf(why, whylen, "%s is out of range (%lldms..%lldms)", v,
				(long long)k->min, (long long)k->max);
			return false;
		}
		*(int64_t *)base = n;
		return true;
	case CF_SIZE:
		if (!config_parse_size(v, &n)) {
			snprintf(why, whylen, "\"%s\" is not a size in bytes (like 65536, 64K, 1M)",
				v);
			return false;
		}
		if (n < k->min || n > k->max) {
			snprintf(why, whylen, "%s is out of range (%lld..%lld bytes)", v,
				(long long)k->min, (long long)k->max);
			return false;
		}
		*(size_t *)base = (size_t)n;
		return true;
	case CF_INT: {
		char *end;
		long long iv;

		errno = 0;
		iv = strtoll(v, &end, 10);
		if (errno || *end || end == v || iv < k->min || iv > k->max) {
			snprintf(why, whylen, "\"%s\" is not a number from %lld to %lld", v,
				(long long)k->min, (long long)k->max);
			return false;
		}
		*(int *)base = (int)iv;
		return true;
	}
	case CF_LOGLEVEL: {
		int l = log_level_from_name(v);

		if (l < 0) {
			snprintf(why, whylen, "\"%s\" is not one of error, warning, info, debug",
				v);
			return false;
		}
		*(int *)base = l;
		return true;
	}
	case CF_WORKERS: {
		char *end;
		long w;

		if (strcmp(v, "auto") == 0) {
			*(int *)base = 0;
			return true;
		}
		errno = 0;
		w = strtol(v, &end, 10);
		if (errno || *end || end == v || w < 1 || w > k->max) {
			snprintf(why, whylen, "\"%s\" is not auto or a number from 1 to %lld", v,
				(long long)k->max);
			return false;
		}
		*(int *)base = (int)w;
		return true;
	}
	}
	return false;
}

static const struct config_key *
config_find(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

void
config_free(struct config *c)
{
	if (!c)
		return;
	/* every string row owns its field (a CF_FILE row fills another row's) */
	for (size_t i = 0; i < N_KEYS; i++)
		if (config_is_string(&config_keys[i]))
			free(*(char **)((char *)c + config_keys[i].offset));
	free(c);
}

static char *
config_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = 0;
	return s;
}

/* Split "key = value" (value optionally double-quoted, with \" and \\ escapes). */
static bool
config_split(char *line, char **key, char **val, char *why, size_t whylen)
{
	char *eq = strchr(line, '='), *v, *w;

	if (!eq) {
		snprintf(why, whylen, "expected \"key = value\"");
		return false;
	}
	*eq = 0;
	*key = config_trim(line);
	v = config_trim(eq + 1);
	if (*v == '"') {
		char *start = ++v, *rest;

		for (w = start;; v++) {
			if (*v == 0) {
				snprintf(why, whylen, "unterminated quoted value");
				return false;
			}
			if (*v == '"')
				break;
			if (*v == '\\' && (v[1] == '"' || v[1] == '\\'))
				v++;
			*w++ = *v;
		}
		rest = config_trim(v + 1);
		if (*rest != 0 && *rest != '#') {
			snprintf(why, whylen, "text after the closing quote");
			return false;
		}
		*w = 0;
		*val = start;
		return true;
	}
	/* unquoted: a '#' starts a comment */
	w = strchr(v, '#');
	if (w)
		*w = 0;
	*val = config_trim(v);
	return true;
}

struct config *
config_load(const char *path)
{
	struct config *c = calloc(1, sizeof(*c));
	bool seen[N_KEYS] = { false };
	char why[512], *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	FILE *f = NULL;
	bool ok = true;

	if (!c)
		return NULL;
	for (size_t i = 0; i < N_KEYS; i++)
		if (config_keys[i].def &&
			!config_set(c, &config_keys[i], config_keys[i].def, why, sizeof(why))) {
			log_error("config: default of %s: %s", config_keys[i].name, why);
			goto fail;
		}

	f = fopen(path, "re");
	if (!f) {
		log_error("config: could not open \"%s\": %s", path, strerror(errno));
		goto fail;
	}
	while (getline(&line, &cap, f) >= 0) {
		char *s, *key, *val;
		const struct config_key *k;

		lineno++;
		s = config_trim(line);
		if (*s == 0 || *s == '#')
			continue;
		if (!config_split(s, &key, &val, why, sizeof(why))) {
			log_error("config: %s:%u: %s", path, lineno, why);
			ok = false;
			continue;
		}
		k = config_find(key);
		if (!k) {
			log_error("config: %s:%u: unknown key \"%s\"", path, lineno, key);
			ok = false;
			continue;
		}
		if (seen[k - config_keys]) {
			log_error("config: %s:%u: %s: set twice", path, lineno, key);
			ok = false;
			continue;
		}
		seen[k - config_keys] = true;
		if (!config_set(c, k, val, why, sizeof(why))) {
			log_error("config: %s:%u: %s: %s", path, lineno, key, why);
			ok = false;
		}
	}
	if (ferror(f)) {
		log_error("config: could not read \"%s\": %s", path, strerror(errno));
		ok = false;
	}
	if (!ok)
		goto fail;

	if (seen[config_find("database_url") - config_keys] &&
		seen[config_find("database_url_file") - config_keys]) {
		log_error("config: %s: database_url and database_url_file are both set", path);
		goto fail;
	}
	if (!c->database_url) {
		/* systemd credentials (LoadCredential=database_url:...) */
		const char *cd = getenv("CREDENTIALS_DIRECTORY");

		if (cd) {
			char p[PATH_MAX];

			snprintf(p, sizeof(p), "%s/database_url", cd);
			if (access(p, R_OK) == 0)
				c->database_url = config_read_secret_file(p, why, sizeof(why));
		}
	}
	if (c->database_url && !*c->database_url) {
		log_error("config: %s: database_url is empty", path);
		goto fail;
	}
	if (!c->database_url) {
		log_error("config: %s: database_url is not set (nor database_url_file, nor a "
			  "database_url credential)",
			path);
		goto fail;
	}
	if (!*c->tls_cert_file != !*c->tls_key_file) {
		log_error("config: %s: tls_cert_file and tls_key_file go together", path);
		goto fail;
	}
	if (*c->public_url && strncmp(c->public_url, "https://", 8) != 0 &&
		strncmp(c->public_url, "http://", 7) != 0) {
		log_error("config: %s: public_url: \"%s\" is not an http(s):// URL", path,
			c->public_url);
		goto fail;
	}
	if (*c->public_url && c->public_url[strlen(c->public_url) - 1] == '/')
		c->public_url[strlen(c->public_url) - 1] = 0;
	if (strcmp(c->replication_wait, "auto") != 0 && strcmp(c->replication_wait, "off") != 0) {
		log_error("config: %s: replication_wait: \"%s\" is not auto or off", path,
			log_esc(c->replication_wait));
		goto fail;
	}
	if (!*c->state_dir) {
		log_error("config: %s: state_dir: must not be empty", path);
		goto fail;
	}
	if (!*c->instance_name) {
		char host[256];

		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "callrouted");
		host[sizeof(host) - 1] = 0;
		free(c->instance_name);
		c->instance_name = strdup(host);
		if (!c->instance_name)
			goto fail;
	}
	free(line);
	fclose(f);
	return c;
fail:
	free(line);
	if (f)
		fclose(f);
	config_free(c);
	return NULL;
}
