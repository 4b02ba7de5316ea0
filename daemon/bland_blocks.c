/* bland_blocks.c: blocked_callers pushed to Bland's blocked-numbers API (list, add, remove). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <jansson.h>

#include "callrouted/config.h"
#include "callrouted/e164.h"
#include "callrouted/log.h"
#include "bland_blocks.h"
#include "db.h"
#include "httpc.h"
#include "provider_api.h"

/*
 * Bland's blocked-numbers API (docs.bland.ai, "authorization: <api key>"):
 *   list    GET /v1/blocked_numbers?inbound_number=E164  "If omitted, returns only global
 *           block rules"; active_only "Default is true".  Answer {"data": {"blocks": [{id,
 *           blocked_number, is_global, inbound_number, org_id, reason, is_active, ...}],
 *           "total_count", "filters"}, "errors": null}
 *           (https://docs.bland.ai/api-v1/get/blocked-numbers)
 *   create  POST /v1/blocked_numbers {numbers: E.164 strings, "Maximum 10 numbers per request",
 *           is_global (required; "You cannot enable both is_global and inbound_number"),
 *           inbound_number ("Required when is_global is false"), reason ("Optional text")}.
 *           Answer {"data": {"created_count", "blocks": [...]}, "errors": null}; "Blocked
 *           numbers will be rejected before reaching any agent."
 *           (https://docs.bland.ai/api-v1/post/blocked-numbers)
 *   delete  DELETE /v1/blocked_numbers/{block_id}  "Permanently delete a block rule."  Answer
 *           {"data": {"message", "deleted_block_id"}, "errors": null}
 *           (https://docs.bland.ai/api-v1/delete/blocked-numbers-id)
 * We create rules per inbound number (is_global false), never global ones: a global rule would
 * also block the account's numbers that are not ours.  Ours are tagged by their reason
 * (BB_REASON_TAG): a rule whose reason does not start with it is never removed.
 */

#define BB_DEBOUNCE_MS 200
#define BB_LOGGED_MAX 64 /* rows logged one by one; past it, one line (a bulk load stays quiet) */
#define BB_REASON                                                                                  \
	BB_REASON_TAG " blocked_callers (managed by callrouted: edit the rows, not this rule)"

struct bb_job {
	uint64_t acct_id; /* 0: every Bland account */
	bool apply;
	bool every; /* every number (a sync); else those with rules and those marked */
	bb_done_fn done;
	void *arg;

	PGresult *rows;
	int row, end; /* the current number's rows [row, end) */
	uint64_t cur_acct;
	bool acct_down;  /* the provider failed: the account's other numbers wait for next time */
	json_t *reports; /* account id (text) -> report */
	json_t *rep;     /* the current account's (borrowed) */
	char e164[E164_BUFSIZE];
	json_t *want, *to_add, *to_remove; /* strings; strings; block ids */
	size_t pos, rpos;                  /* the next add (index into to_add), the next removal */
	struct papi_request preq;
	void (*pnext)(struct bb_job *j, const struct httpc_response *resp);

	STAILQ_ENTRY(bb_job) link;
};

struct bb_gauge {
	uint64_t acct_id;
	char slug[80];
	unsigned unpushable, drift;
};

static struct {
	struct event_base *base;
	struct db_conn *conn;
	struct event *debounce, *kick;
	bool listening, in_flight, query_listen;
	int timeout_s;
	STAILQ_HEAD(, bb_job) queue;
	struct bb_job *running;
	uint64_t *logged; /* blocked_callers ids logged as not pushable */
	size_t n_logged;
	uint64_t *marked; /* E.164 keys of numbers that may hold rules of ours (sorted) */
	size_t n_marked, cap_marked;
	struct bb_gauge *gauges;
	size_t n_gauges;
	uint64_t added, removed, errors, runs, unpushable_logged;
} bb;

static const struct timeval bb_debounce_tv = { 0, BB_DEBOUNCE_MS * 1000 };

static void bb_next_job(void);
static void bb_next_number(struct bb_job *j);

/* ------------------------------------------------------------------------------------------ */

bool
bland_blocks_pushable(const char *prefix)
{
	if (!prefix || !e164_is_canonical(prefix))
		return false;
	/* NANP (+1): every number has 10 digits after the country code */
	if (prefix[1] == '1')
		return strlen(prefix) == 12;
	return true;
}

static const char *
bb_col(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void
bb_job_free(struct bb_job *j)
{
	PQclear(j->rows);
	json_decref(j->reports);
	json_decref(j->want);
	json_decref(j->to_add);
	json_decref(j->to_remove);
	papi_request_clear(&j->preq);
	free(j);
}

static struct bb_gauge *
bb_gauge(uint64_t acct, const char *slug)
{
	for (size_t i = 0; i < bb.n_gauges; i++)
		if (bb.gauges[i].acct_id == acct)
			return &bb.gauges[i];
	struct bb_gauge *n = realloc(bb.gauges, (bb.n_gauges + 1) * sizeof(*n));

	if (!n)
		return NULL;
	bb.gauges = n;
	n = &bb.gauges[bb.n_gauges++];
	memset(n, 0, sizeof(*n));
	n->acct_id = acct;
	snprintf(n->slug, sizeof(n->slug), "%s", slug);
	return n;
}

static void
bb_finish(struct bb_job *j, json_t *answer)
{
	const char *k;
	json_t *rep;

	json_object_foreach(j->reports, k, rep)
	{
		struct bb_gauge *g = bb_gauge(strtoull(k, NULL, 10),
			json_string_value(json_object_get(rep, "account")));
		size_t drift = json_array_size(json_object_get(rep, "missing")) +
			       json_array_size(json_object_get(rep, "extra"));

		json_object_set_new(rep, "in_sync",
			json_boolean(drift == 0 &&
				     json_array_size(json_object_get(rep, "errors")) == 0));
		if (g && j->every) {
			g->unpushable =
				(unsigned)json_array_size(json_object_get(rep, "unpushable"));
			g->drift = (unsigned)drift;
		}
	}
	bb.runs++;
	if (j->done)
		j->done(j->arg, answer);
	else
		json_decref(answer);
	if (bb.running == j)
		bb.running = NULL;
	bb_job_free(j);
	event_active(bb.kick, EV_TIMEOUT, 0);
}

/* One line per failure; the account's report keeps it too. */
static void bb_error(struct bb_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
bb_error(struct bb_job *j, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bb.errors++;
	log_warning("bland blocks: %s: %s",
		j->rep ? log_esc(json_string_value(json_object_get(j->rep, "account"))) : "-",
		log_esc(msg));
	if (j->rep)
		json_array_append_new(json_object_get(j->rep, "errors"), json_string(msg));
}

/* ------------------------------------------------------------------------------------------ */
/* Database                                                                                    */

static bool
bb_marked_find(uint64_t key, size_t *at)
{
	size_t lo = 0, hi = bb.n_marked;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (bb.marked[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return lo < bb.n_marked && bb.marked[lo] == key;
}

/* A number that holds (or may hold) rules of ours: the passes after a change visit it, so
 * a rule no longer wanted goes even when no blocked_callers row applies to it any more. */
static void
bb_mark(const char *e164, bool on)
{
	uint64_t key;
	size_t at;

	if (!e164_parse(e164, strlen(e164), &key))
		return;
	if (bb_marked_find(key, &at) == on)
		return;
	if (!on) {
		memmove(bb.marked + at, bb.marked + at + 1, (bb.n_marked - at - 1) * sizeof(key));
		bb.n_marked--;
		return;
	}
	if (bb.n_marked == bb.cap_marked) {
		size_t cap = bb.cap_marked ? 2 * bb.cap_marked : 64;
		uint64_t *n = realloc(bb.marked, cap * sizeof(*n));

		if (!n)
			return; /* the next sync (every number) finds it */
		bb.marked = n;
		bb.cap_marked = cap;
	}
	memmove(bb.marked + at + 1, bb.marked + at, (bb.n_marked - at) * sizeof(key));
	bb.marked[at] = key;
	bb.n_marked++;
}

static bool
bb_marked(const char *e164)
{
	uint64_t key;
	size_t at;

	return e164_parse(e164, strlen(e164), &key) && bb_marked_find(key, &at);
}

/* The marked numbers as a PostgreSQL text[] literal (malloc'd; NULL: out of memory, and the
 * query fails cleanly). */
static char *
bb_marked_array(void)
{
	size_t len = 3 + bb.n_marked * (E164_BUFSIZE + 1), o = 0;
	char *out = malloc(len);

	if (!out)
		return NULL;
	out[o++] = '{';
	for (size_t i = 0; i < bb.n_marked; i++) {
		char e[E164_BUFSIZE];
		size_t n = e164_format(bb.marked[i], e, sizeof(e));

		if (!n)
			continue;
		if (o > 1)
			out[o++] = ',';
		memcpy(out + o, e, n);
		o += n;
	}
	out[o++] = '}';
	out[o] = '\0';
	return out;
}

/* The Bland numbers (active) of the account (or all), each with the blocked_callers rows that
 * apply to it: the agency's (both ids NULL), the client's of its agent, its own. */
static const char sql_desired[] =
	"SELECT a.id, a.slug, a.api_key, a.api_base_url, n.e164, b.id, b.prefix, "
	"CASE WHEN b.number_id IS NOT NULL THEN 'number' WHEN b.client_id IS NOT NULL "
	"THEN 'client' ELSE 'agency' END "
	"FROM provider_accounts a JOIN phone_numbers n ON n.account_id = a.id AND "
	"n.status = 'active' LEFT JOIN agents ag ON ag.id = n.agent_id "
	"LEFT JOIN blocked_callers b ON b.agency_id = n.agency_id AND (b.number_id = n.id OR "
	"(b.number_id IS NULL AND b.client_id IS NULL) OR b.client_id = ag.client_id) "
	"WHERE a.provider = 'bland' AND ($1::bigint IS NULL OR a.id = $1) "
	"AND ($2::bool OR b.id IS NOT NULL OR n.e164 = ANY ($3::text[])) "
	"ORDER BY a.id, n.e164, b.id";

static void
bb_pump(struct db_conn *c)
{
	struct bb_job *j = bb.running;
	char *params[3] = { NULL };
	int n = 0;

	if (bb.in_flight || !db_idle(c) || !db_conn_up(c))
		return;
	if (!bb.listening) {
		bb.in_flight = bb.query_listen = true;
		if (!db_send(c, "LISTEN callrouted_changes", 0, NULL))
			bb.in_flight = bb.query_listen = false;
		return;
	}
	if (!j || j->rows)
		return;
	if (j->acct_id)
		db_param(params, &n, "%" PRIu64, j->acct_id);
	else
		db_param_str(params, &n, NULL);
	db_param_str(params, &n, j->every ? "true" : "false");
	params[n++] = bb_marked_array();
	bb.in_flight = true;
	bb.query_listen = false;
	if (!db_send(c, sql_desired, n, (const char *const *)params)) {
		bb.in_flight = false;
		bb_finish(j, json_pack("{s:{s:s}}", "error", "message", "database unavailable"));
	}
	db_params_free(params, &n);
}

static void
bb_db_result(struct db_conn *c, PGresult *res)
{
	struct bb_job *j = bb.running;

	(void)c;
	if (bb.query_listen || !j || PQresultStatus(res) != PGRES_TUPLES_OK)
		return;
	PQclear(j->rows);
	j->rows = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
}

static void
bb_db_done(struct db_conn *c, bool ok)
{
	struct bb_job *j = bb.running;

	bb.in_flight = false;
	if (bb.query_listen) {
		bb.query_listen = false;
		if (!ok) {
			db_disconnect(c, "LISTEN failed");
			return;
		}
		bb.listening = true;
		/* whatever changed while we were not listening */
		evtimer_add(bb.debounce, &bb_debounce_tv);
		db_wake(c);
		return;
	}
	if (!j)
		return;
	if (!ok || !j->rows) {
		bb.errors++;
		log_warning("bland blocks: could not read blocked_callers (SQLSTATE %s)",
			db_sqlstate(c));
		bb_finish(j, json_pack("{s:{s:s}}", "error", "message", "database error"));
		return;
	}
	j->row = j->end = 0;
	bb_next_number(j);
}

static void
bb_db_connected(struct db_conn *c)
{
	(void)c;
	bb.listening = bb.in_flight = bb.query_listen = false;
}

static void
bb_db_disconnected(struct db_conn *c)
{
	struct bb_job *j = bb.running;
	bool was = bb.in_flight && !bb.query_listen;

	(void)c;
	bb.listening = bb.in_flight = bb.query_listen = false;
	if (j && was) /* its query never finished: the pass ends here */
		bb_finish(j,
			json_pack("{s:{s:s}}", "error", "message", "database connection lost"));
}

static bool
bb_table_wanted(const char *t)
{
	static const char *const tables[] = { "blocked_callers", "phone_numbers", "agents",
		"clients", "provider_accounts" };

	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		if (strcmp(t, tables[i]) == 0)
			return true;
	return false;
}

static void
bb_db_notify(struct db_conn *c, const char *channel, const char *payload)
{
	json_t *j, *t;

	(void)c;
	if (strcmp(channel, "callrouted_changes") != 0)
		return;
	j = json_loads(payload, 0, NULL);
	t = j ? json_object_get(j, "t") : NULL;
	if (!json_is_string(t) || bb_table_wanted(json_string_value(t))) {
		if (!evtimer_pending(bb.debounce, NULL))
			evtimer_add(bb.debounce, &bb_debounce_tv);
	}
	json_decref(j);
}

static const struct db_conn_ops bb_db_ops = {
	.name = "bland_blocks",
	.connected = bb_db_connected,
	.disconnected = bb_db_disconnected,
	.notify = bb_db_notify,
	.result = bb_db_result,
	.done = bb_db_done,
	.pump = bb_pump,
	.needs_primary = true, /* it LISTENs */
};

/* ------------------------------------------------------------------------------------------ */
/* Bland                                                                                       */

static bool
bb_start_req(struct bb_job *j, const char *method, const char *path)
{
	const char *key = PQgetvalue(j->rows, j->row, 2);

	papi_request_clear(&j->preq);
	memset(&j->preq, 0, sizeof(j->preq));
	if (snprintf(j->preq.path, sizeof(j->preq.path), "%s", path) >= (int)sizeof(j->preq.path) ||
		snprintf(j->preq.auth_value, sizeof(j->preq.auth_value), "%s", key) >=
			(int)sizeof(j->preq.auth_value))
		return false;
	j->preq.method = method;
	/* "authorization: <api key>", no scheme (as the rest of Bland's API) */
	snprintf(j->preq.auth_name, sizeof(j->preq.auth_name), "authorization");
	return true;
}

static void
bb_http_done(void *arg, const struct httpc_response *resp)
{
	struct bb_job *j = arg;

	j->pnext(j, resp);
}

static void
bb_send(struct bb_job *j, void (*next)(struct bb_job *, const struct httpc_response *))
{
	const char *base = bb_col(j->rows, j->row, 3);

	j->pnext = next;
	if (!base || !*base)
		base = provider_api_bland.default_base_url;
	if (!httpc_request(base, &j->preq, bb.timeout_s, bb_http_done, j)) {
		bb_error(j, "%s: could not send the request", j->e164);
		j->acct_down = true;
		bb_next_number(j);
	}
}

/* A 2xx answer's {"data": ...} object; else the failure in msg, *down when the provider (or
 * the account) is unusable right now rather than this one request being wrong. */
static json_t *
bb_answer(const struct httpc_response *resp, const char *what, char *msg, size_t len, bool *down)
{
	char pm[300] = "";
	json_t *root, *data;

	*down = false;
	if (resp->failure != HTTPC_OK) {
		*down = true;
		snprintf(msg, len, "%s: %s", what, resp->detail ? resp->detail : "no answer");
		return NULL;
	}
	if (resp->status < 200 || resp->status > 299) {
		provider_api_bland.error_message(resp->body, resp->len, pm, sizeof(pm));
		*down = resp->status == 401 || resp->status == 403 || resp->status == 429 ||
			resp->status >= 500;
		snprintf(msg, len, "%s: HTTP %d%s%s", what, resp->status, *pm ? ": " : "", pm);
		return NULL;
	}
	root = json_loadb(resp->body, resp->len, 0, NULL);
	data = json_is_object(root) ? json_object_get(root, "data") : NULL;
	if (!json_is_object(data)) {
		snprintf(msg, len, "%s: unexpected answer (no data object)", what);
		json_decref(root);
		return NULL;
	}
	json_incref(data);
	json_decref(root);
	return data;
}

static void
bb_fail_request(struct bb_job *j, const char *msg, bool down)
{
	bb_error(j, "%s", msg);
	if (down)
		j->acct_down = true;
	bb_next_number(j);
}

static void bb_step(struct bb_job *j);

static void
bb_removed(struct bb_job *j, const struct httpc_response *resp)
{
	char msg[500];
	bool down;
	json_t *data;

	/* already gone (another daemon's pass, or the dashboard): what we wanted */
	if (resp->failure == HTTPC_OK && resp->status == 404) {
		j->rpos++;
		bb_step(j);
		return;
	}
	data = bb_answer(resp, "removing a rule", msg, sizeof(msg), &down);
	if (!data) {
		bb_fail_request(j, msg, down);
		return;
	}
	json_decref(data);
	bb.removed++;
	json_array_append_new(json_object_get(j->rep, "removed"),
		json_pack("{s:s,s:O}", "inbound_number", j->e164, "id",
			json_array_get(j->to_remove, j->rpos)));
	j->rpos++;
	bb_step(j);
}

static void
bb_added(struct bb_job *j, const struct httpc_response *resp)
{
	char msg[500];
	bool down;
	json_t *data, *blocks, *b;
	size_t i;

	data = bb_answer(resp, "adding rules", msg, sizeof(msg), &down);
	if (!data) {
		bb_fail_request(j, msg, down);
		return;
	}
	blocks = json_object_get(data, "blocks");
	json_array_foreach(blocks, i, b)
	{
		json_t *num = json_object_get(b, "blocked_number");

		if (json_is_string(num)) {
			bb.added++;
			json_array_append_new(json_object_get(j->rep, "added"),
				json_pack("{s:s,s:O}", "inbound_number", j->e164, "blocked_number",
					num));
		}
	}
	json_decref(data);
	j->pos += BB_MAX_PER_REQUEST;
	bb_step(j);
}

/* The adds (in requests of at most ten numbers), then the removals, then the next number. */
static void
bb_step(struct bb_job *j)
{
	size_t na = json_array_size(j->to_add), nr = json_array_size(j->to_remove);

	if (j->pos < na) {
		json_t *nums = json_array();

		for (size_t i = j->pos; i < na && i < j->pos + BB_MAX_PER_REQUEST; i++)
			json_array_append(nums, json_array_get(j->to_add, i));
		if (!bb_start_req(j, "POST", "/v1/blocked_numbers")) {
			json_decref(nums);
			bb_fail_request(j, "request too long", false);
			return;
		}
		j->preq.body = json_pack("{s:o,s:b,s:s,s:s}", "numbers", nums, "is_global", 0,
			"inbound_number", j->e164, "reason", BB_REASON);
		bb_send(j, bb_added);
		return;
	}
	if (j->rpos < nr) {
		char path[96];

		snprintf(path, sizeof(path), "/v1/blocked_numbers/%" JSON_INTEGER_FORMAT,
			json_integer_value(json_array_get(j->to_remove, j->rpos)));
		if (!bb_start_req(j, "DELETE", path)) {
			bb_fail_request(j, "request too long", false);
			return;
		}
		bb_send(j, bb_removed);
		return;
	}
	bb_next_number(j);
}

static bool
bb_in(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

static void
bb_listed(struct bb_job *j, const struct httpc_response *resp)
{
	char msg[500];
	bool down;
	json_t *data, *blocks, *b, *kept = json_object(), *have = json_array();
	size_t i, foreign = 0;

	data = bb_answer(resp, "listing rules", msg, sizeof(msg), &down);
	blocks = data ? json_object_get(data, "blocks") : NULL;
	if (data && !json_is_array(blocks)) {
		snprintf(msg, sizeof(msg), "listing rules: unexpected answer (no data.blocks)");
		json_decref(data);
		data = NULL;
	}
	if (!data) {
		json_decref(kept);
		json_decref(have);
		bb_fail_request(j, msg, down);
		return;
	}
	json_decref(j->to_add);
	json_decref(j->to_remove);
	j->to_add = json_array();
	j->to_remove = json_array();
	json_array_foreach(blocks, i, b)
	{
		json_t *num = json_object_get(b, "blocked_number"), *id = json_object_get(b, "id"),
		       *reason = json_object_get(b, "reason");
		bool ours =
			json_is_string(reason) && strncmp(json_string_value(reason), BB_REASON_TAG,
							  strlen(BB_REASON_TAG)) == 0;

		if (!json_is_string(num) || json_is_false(json_object_get(b, "is_active")))
			continue;
		if (!ours) {
			foreign++;
			json_array_append(have, num);
			continue;
		}
		if (!json_is_integer(id))
			continue; /* cannot be named for deletion: left as it is */
		/* ours: kept while wanted, once per number: the lowest id, so that two daemons
		 * removing each other's duplicates keep the same one */
		if (bb_in(j->want, json_string_value(num))) {
			json_t *k = json_object_get(kept, json_string_value(num));

			if (!k) {
				json_object_set(kept, json_string_value(num), id);
				json_array_append(have, num);
			} else if (json_integer_value(id) < json_integer_value(k)) {
				json_array_append(j->to_remove, k);
				json_object_set(kept, json_string_value(num), id);
			} else {
				json_array_append(j->to_remove, id);
			}
		} else {
			json_array_append(j->to_remove, id);
		}
	}
	json_array_foreach(j->want, i, b)
	{
		if (!bb_in(have, json_string_value(b)))
			json_array_append(j->to_add, b);
	}
	/* ours there, or about to be: visited by the passes after a change */
	bb_mark(j->e164, json_object_size(kept) || json_array_size(j->to_remove) ||
				 (j->apply && json_array_size(j->to_add)));
	json_decref(kept);
	json_decref(have);
	json_decref(data);
	json_object_set_new(j->rep, "foreign",
		json_integer(json_integer_value(json_object_get(j->rep, "foreign")) +
			     (json_int_t)foreign));
	if (!j->apply) {
		json_array_foreach(j->to_add, i, b)
		{
			json_array_append_new(json_object_get(j->rep, "missing"),
				json_pack("{s:s,s:O}", "inbound_number", j->e164, "blocked_number",
					b));
		}
		json_array_foreach(j->to_remove, i, b)
		{
			json_array_append_new(json_object_get(j->rep, "extra"),
				json_pack("{s:s,s:O}", "inbound_number", j->e164, "id", b));
		}
		bb_next_number(j);
		return;
	}
	j->pos = j->rpos = 0;
	bb_step(j);
}

/* ------------------------------------------------------------------------------------------ */
/* The pass                                                                                    */

static bool
bb_logged(uint64_t id)
{
	for (size_t i = 0; i < bb.n_logged && i < BB_LOGGED_MAX; i++)
		if (bb.logged[i] == id)
			return true;
	if (bb.n_logged == BB_LOGGED_MAX) {
		bb.n_logged++; /* past the cap: one line, then counted only */
		log_warning(
			"bland blocks: more than %d blocked_callers rows are not whole numbers: "
			"not logged one by one (the sync report lists them)",
			BB_LOGGED_MAX);
	}
	if (bb.n_logged > BB_LOGGED_MAX)
		return true;
	{
		uint64_t *n = realloc(bb.logged, (bb.n_logged + 1) * sizeof(*n));

		if (n) {
			bb.logged = n;
			bb.logged[bb.n_logged++] = id;
		}
	}
	return false;
}

static json_t *
bb_report(struct bb_job *j)
{
	char key[24];
	uint64_t acct = strtoull(PQgetvalue(j->rows, j->row, 0), NULL, 10);
	json_t *rep;

	snprintf(key, sizeof(key), "%" PRIu64, acct);
	rep = json_object_get(j->reports, key);
	if (rep)
		return rep;
	rep = json_pack("{s:s,s:b,s:i,s:i,s:i,s:[],s:[],s:[],s:[],s:[],s:[]}", "account",
		PQgetvalue(j->rows, j->row, 1), "applied", j->apply, "numbers", 0, "rules_wanted",
		0, "foreign", 0, "added", "removed", "missing", "extra", "unpushable", "errors");
	json_object_set_new(j->reports, key, rep);
	return rep;
}

static void
bb_next_number(struct bb_job *j)
{
	int rows = PQntuples(j->rows);
	char path[128], esc[48];

	for (;;) {
		j->row = j->end;
		if (j->row >= rows) {
			json_t *answer;

			if (!j->acct_id) {
				answer = json_incref(j->reports);
			} else {
				char key[24];

				snprintf(key, sizeof(key), "%" PRIu64, j->acct_id);
				answer = json_object_get(j->reports, key);
				/* no active number: nothing to compare */
				answer =
					answer ?
						json_incref(answer) :
						json_pack(
							"{s:b,s:i,s:i,s:i,s:[],s:[],s:[],s:[],s:[],"
							"s:[],s:b}",
							"applied", j->apply, "numbers", 0,
							"rules_wanted", 0, "foreign", 0, "added",
							"removed", "missing", "extra", "unpushable",
							"errors", "in_sync", 1);
			}
			bb_finish(j, answer);
			return;
		}
		uint64_t acct = strtoull(PQgetvalue(j->rows, j->row, 0), NULL, 10);

		if (acct != j->cur_acct) {
			j->cur_acct = acct;
			j->acct_down = false;
		}
		j->rep = bb_report(j);
		snprintf(j->e164, sizeof(j->e164), "%s", PQgetvalue(j->rows, j->row, 4));
		json_decref(j->want);
		j->want = json_array();
		for (j->end = j->row; j->end < rows &&
				      strtoull(PQgetvalue(j->rows, j->end, 0), NULL, 10) == acct &&
				      strcmp(PQgetvalue(j->rows, j->end, 4), j->e164) == 0;
			j->end++) {
			const char *prefix = bb_col(j->rows, j->end, 6);
			uint64_t id;

			if (!prefix)
				continue;
			id = strtoull(PQgetvalue(j->rows, j->end, 5), NULL, 10);
			if (!bland_blocks_pushable(prefix)) {
				if (j->every)
					json_array_append_new(json_object_get(j->rep, "unpushable"),
						json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)id,
							"prefix", prefix, "scope",
							PQgetvalue(j->rows, j->end, 7),
							"inbound_number", j->e164));
				if (!bb_logged(id)) {
					bb.unpushable_logged++;
					log_warning(
						"bland blocks: blocked_callers %" PRIu64
						" (prefix %s) is not a whole number: Bland blocks "
						"exact numbers only, not pushed",
						id, log_esc(prefix));
				}
				continue;
			}
			if (!bb_in(j->want, prefix))
				json_array_append_new(j->want, json_string(prefix));
		}
		json_object_set_new(j->rep, "numbers",
			json_integer(json_integer_value(json_object_get(j->rep, "numbers")) + 1));
		json_object_set_new(j->rep, "rules_wanted",
			json_integer(json_integer_value(json_object_get(j->rep, "rules_wanted")) +
				     (json_int_t)json_array_size(j->want)));
		if (j->acct_down)
			continue; /* the provider failed for this account: next time */
		if (!j->every && !json_array_size(j->want) && !bb_marked(j->e164))
			continue; /* nothing wanted, nothing of ours known there */
		break;
	}
	if (!papi_path_escape(j->e164, esc, sizeof(esc)))
		esc[0] = '\0';
	snprintf(path, sizeof(path), "/v1/blocked_numbers?inbound_number=%s", esc);
	if (!bb_start_req(j, "GET", path)) {
		bb_fail_request(j, "request too long", false);
		return;
	}
	bb_send(j, bb_listed);
}

/* ------------------------------------------------------------------------------------------ */
/* Queue                                                                                       */

static void
bb_next_job(void)
{
	if (bb.running || !bb.base || STAILQ_EMPTY(&bb.queue))
		return;
	bb.running = STAILQ_FIRST(&bb.queue);
	STAILQ_REMOVE_HEAD(&bb.queue, link);
	if (!db_conn_up(bb.conn)) {
		struct bb_job *j = bb.running;

		bb.errors++;
		bb_finish(j, json_pack("{s:{s:s}}", "error", "message",
				     "the database is not reachable"));
		return;
	}
	db_wake(bb.conn);
}

static void
bb_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	bb_next_job();
}

static bool
bb_enqueue(uint64_t acct, bool apply, bb_done_fn done, void *arg)
{
	struct bb_job *j;

	if (!done && !acct)
		STAILQ_FOREACH(j, &bb.queue, link)
		{
			if (!j->done && !j->acct_id && j->apply)
				return true; /* one pass of everything is queued already */
		}
	j = calloc(1, sizeof(*j));
	if (!j || !(j->reports = json_object())) {
		free(j);
		return false;
	}
	j->acct_id = acct;
	j->apply = apply;
	j->every = acct != 0;
	j->done = done;
	j->arg = arg;
	STAILQ_INSERT_TAIL(&bb.queue, j, link);
	event_active(bb.kick, EV_TIMEOUT, 0);
	return true;
}

static void
bb_debounce_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!bb_enqueue(0, true, NULL, NULL))
		log_warning("bland blocks: out of memory: the next change or sync pushes");
}

void
bland_blocks_account(uint64_t account_id, bool apply, bb_done_fn done, void *arg)
{
	if (!account_id || !bb_enqueue(account_id, apply, done, arg))
		done(arg, json_pack("{s:{s:s}}", "error", "message", "out of memory"));
}

bool
bland_blocks_setup(struct event_base *base, const struct config *cfg)
{
	bb.base = base;
	STAILQ_INIT(&bb.queue);
	bb.timeout_s = (int)((cfg->provider_timeout_ms + 999) / 1000);
	bb.conn = db_conn_new_on(base, &bb_db_ops);
	bb.kick = event_new(base, -1, 0, bb_kick_cb, NULL);
	bb.debounce = evtimer_new(base, bb_debounce_cb, NULL);
	return bb.conn && bb.kick && bb.debounce;
}

void
bland_blocks_start(void)
{
	db_conn_start(bb.conn);
}

void
bland_blocks_cleanup(void)
{
	struct bb_job *j;

	while ((j = STAILQ_FIRST(&bb.queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&bb.queue, link);
		bb_job_free(j);
	}
	if (bb.running)
		bb_job_free(bb.running);
	bb.running = NULL;
	if (bb.kick)
		event_free(bb.kick);
	if (bb.debounce)
		event_free(bb.debounce);
	bb.kick = bb.debounce = NULL;
	if (bb.conn)
		db_conn_release(bb.conn);
	bb.conn = NULL;
	free(bb.logged);
	bb.logged = NULL;
	bb.n_logged = 0;
	free(bb.marked);
	bb.marked = NULL;
	bb.n_marked = bb.cap_marked = 0;
	free(bb.gauges);
	bb.gauges = NULL;
	bb.n_gauges = 0;
	bb.base = NULL;
}

void
bland_blocks_stats(stat_fn add, void *ctx)
{
	char labels[128];

	for (size_t i = 0; i < bb.n_gauges; i++) {
		snprintf(labels, sizeof(labels), "account=\"%s\"", bb.gauges[i].slug);
		stat_u64(add, ctx, "callrouted_bland_blocks_unpushable",
			"blocked_callers rows (per Bland number) whose prefix is not a whole number: "
			"Bland blocks exact numbers only, so they are not pushed (last pass).",
			"gauge", labels, bb.gauges[i].unpushable);
		stat_u64(add, ctx, "callrouted_bland_blocks_drift",
			"Block rules missing at Bland or ours left over, found by the last compare-only "
			"pass (a sync with dry_run) of the account.",
			"gauge", labels, bb.gauges[i].drift);
	}
	STAT_COUNTER(add, ctx, "callrouted_bland_blocks_added_total",
		"Block rules created at Bland from blocked_callers.", bb.added);
	STAT_COUNTER(add, ctx, "callrouted_bland_blocks_removed_total",
		"Block rules of ours removed at Bland (no longer wanted).", bb.removed);
	STAT_COUNTER(add, ctx, "callrouted_bland_blocks_errors_total",
		"Failed blocked-numbers requests to Bland and failed passes (retried by the next "
		"change or sync).",
		bb.errors);
	STAT_COUNTER(add, ctx, "callrouted_bland_blocks_runs_total",
		"Passes comparing blocked_callers with Bland's block rules.", bb.runs);
	STAT_COUNTER(add, ctx, "callrouted_bland_blocks_unpushable_logged_total",
		"blocked_callers rows logged once as not pushable to Bland.", bb.unpushable_logged);
}
