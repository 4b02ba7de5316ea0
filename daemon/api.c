/* api.c: the admin API (/v1/numbers, /v1/calls): tokens, scoping, provider calls, database. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "callrouted/text.h"
#include "api.h"
#include "api_numbers.h"
#include "api_reads.h"
#include "api_tokens.h"
#include "callrouted/config.h"
#include "db.h"
#include "callrouted/e164.h"
#include "httpc.h"
#include "callrouted/log.h"
#include "callrouted/admin_api.h"
#include "number_changes.h"
#include "provider_api.h"
#include "route_api.h"
#include "sync.h"
#include "wire.h"

/*
 * Each request is a chain of steps: authenticate (api_tokens), read what it needs (scoped to
 * the token's agency in SQL, so another agency's rows are absent, not forbidden), call the
 * provider if the action changes something there, then write the database.  A provider that
 * refuses leaves the database untouched.  The database connection runs one query at a time;
 * requests queue for it (the admin API is not the hot path).
 */

#define API_MAX_PARAMS 16
#define API_LIST_DEFAULT 50
#define API_LIST_MAX ADMIN_API_LIST_MAX

enum api_op {
	OP_LIST,
	OP_SHOW,
	OP_BUY,
	OP_PATCH,
	OP_RELEASE,
	OP_CALL,
	OP_READ,
	OP_EVENTS,
	OP_EXPIRE,
	OP_SYNC,
	OP_ROUTE
};

struct api_req;
typedef void (*api_db_fn)(struct api_req *r, PGresult *res);
typedef void (*api_http_fn)(struct api_req *r, const struct httpc_response *resp);
typedef void (*api_step_fn)(struct api_req *r);

/* What the steps load. */
struct api_account {
	uint64_t id;
	enum provider_id provider;
	char slug[80];
	char *api_key, *webhook_secret, *base_url;
	char *credential_id; /* Vapi's webhook credential (server.credentialId) */
};

struct api_req {
	struct wire_req *req; /* wire.c keeps it (and its connection) until answered */
	bool www_auth;        /* the answer asks for a Bearer token */
	enum api_op op;
	bool read_only; /* the route changes nothing (portal tokens may use it) */
	json_t *body;
	char token_sha256[65];         /* admin_token_sha256_hex of the bearer token */
	uint64_t agency_id, client_id; /* client_id: a portal token */
	uint64_t id;                   /* the number of /v1/numbers/{id} */

	/* the query in flight or queued */
	const char *sql;
	const char *stmt;   /* or this statement of API_PREPARE, once prepared on the connection */
	unsigned tok_epoch; /* api_tokens_epoch() when the token's look-up was sent */
	struct evbuffer *page; /* GET /v1/numbers: the answer, written from the result (no copy) */
	bool page_ok;
	char *params[API_MAX_PARAMS];
	int nparams;
	api_db_fn next;
	PGresult *res;
	STAILQ_ENTRY(api_req) link;

	api_http_fn pnext;
	api_step_fn then; /* after a shared step (loading the agent) */
	struct papi_request preq;

	/* list filters */
	char *f_client, *f_agent, *f_provider, *f_status, *f_e164, *f_e164_hi;
	struct route_explain_q explain; /* GET /v1/route (route_api.c) */
	long limit;
	uint64_t after;

	/* loaded state */
	struct api_account acct;
	char e164[E164_BUFSIZE];
	char *provider_number_id;
	uint64_t cur_agent_id;
	uint64_t agent_id; /* the agent asked for (0: none / unassign) */
	char *agent_pid;   /* its provider_agent_id */
	bool has_nickname, has_agent, unbind_only;
	char *nickname;
	char area_code[8];
	char to[E164_BUFSIZE], from[E164_BUFSIZE];
	struct papi_number bought;

	/* OP_READ: the read (api_reads.c) and its arguments */
	const struct api_read *read;
	struct api_read_args rargs;

	/* a change at the provider, one request per step (provider_api.h, update) */
	struct papi_change change;
	unsigned step;
	api_step_fn changed; /* after the last step */
	bool preq_last;      /* the request in flight is the change's last */

	/* provider sync (sync.c): POST /v1/accounts/{slug}/sync; DELETE ...?force=true */
	struct sync_opts sync;
	bool force;
	char *buy_note; /* a purchase of unknown outcome: why it is recorded pending */

	/* serialised, idempotent and recorded changes (number_changes.h) */
	uint64_t token_id;
	char lease[NC_HOLDER_LEN + 1]; /* our lease of number r->id ("": none held) */
	double lease_deadline;         /* nc_now() by which its provider requests end */
	char idem_key[NC_KEY_MAX + 1]; /* the Idempotency-Key ("": none) */
	char idem_digest[65];
	bool idem_held;     /* our claim of the key: the answer is kept there */
	bool provider_sent; /* a request went to the provider */
	bool replayed;      /* the answer is a kept one */
	bool finishing;     /* the answer waits for the key's record and the lease (api_finish) */
	const char *ev_detail; /* number_events.detail of the change (a static string) */
	int fin_status;
	json_t *fin_body;
};

/* One of the admin API's database connections (admin_db_connections of them). */
struct api_dbc {
	struct db_conn *conn;
	struct api_req *in_flight;
	bool prepared, preparing; /* api_prepare_sql() on the connection now up */
	bool prepare_tried;       /* once a connection: refused, its queries go as text */
};

#define API_DB_MAX 16 /* admin_db_connections' bound (config.c) */

static struct {
	struct event_base *base;
	struct api_dbc dbc[API_DB_MAX];
	int ndbc;
	STAILQ_HEAD(, api_req) queue;
	char *public_url;
	int timeout_s;
	char *instance;
	struct event *expire_ev; /* idempotency keys past their 24 h */
} api;

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                     */

static void
api_free(struct api_req *r)
{
	db_params_free(r->params, &r->nparams);
	PQclear(r->res);
	papi_request_clear(&r->preq);
	json_decref(r->body);
	free(r->f_client);
	free(r->f_agent);
	free(r->f_provider);
	free(r->f_status);
	free(r->f_e164);
	free(r->f_e164_hi);
	api_read_args_clear(&r->rargs);
	free(r->acct.api_key);
	free(r->acct.webhook_secret);
	free(r->acct.base_url);
	free(r->acct.credential_id);
	free(r->provider_number_id);
	free(r->agent_pid);
	free(r->nickname);
	free(r->buy_note);
	json_decref(r->fin_body);
	if (r->page)
		evbuffer_free(r->page);
	free(r);
}

static void api_finish(struct api_req *r);

static void
api_send(struct api_req *r, int status, json_t *o)
{
	char *s;

	if (!r->req) { /* our own job (api_expire): nobody to answer */
		json_decref(o);
		api_free(r);
		return;
	}
	if (!r->finishing && (r->idem_held || r->lease[0])) {
		/* the answer is kept for its Idempotency-Key and the lease given back first */
		r->finishing = true;
		r->fin_status = status;
		r->fin_body = o;
		api_finish(r);
		return;
	}
	if (r->finishing && o != r->fin_body) {
		/* that failed (api_fail logged it): the answer is the one we had */
		json_decref(o);
		o = r->fin_body;
		status = r->fin_status;
	}
	r->fin_body = NULL;
	s = json_dumps(o, JSON_COMPACT);
	wire_reply(r->req, status, "application/json", s, s ? strlen(s) : 0,
		r->www_auth ? "Cache-Control: no-store\r\nWWW-Authenticate: Bearer\r\n" :
		r->replayed ? "Cache-Control: no-store\r\nIdempotent-Replayed: true\r\n" :
			      "Cache-Control: no-store\r\n");
	free(s);
	json_decref(o);
	api_free(r);
}

static void api_fail(struct api_req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
api_fail(struct api_req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->finishing) {
		nc_count(NC_IDEM_RECORD_FAILURES, 1);
		log_warning(
			"api: %s: the answer %d was sent, but its Idempotency-Key record or the "
			"number's lease could not be written: %s",
			r->req ? r->req->path : "-", r->fin_status, msg);
	} else if (!r->req) {
		nc_count(NC_IDEM_RECORD_FAILURES, 1);
		log_warning("api: idempotency keys past 24 h not deleted: %s", msg);
	} else if (status >= 500)
		log_warning("api: %s %s%s%s: %d %s", code, r->req->path, r->req->query ? "?" : "",
			r->req->query ? r->req->query : "", status, msg);
	api_send(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* ------------------------------------------------------------------------------------------ */
/* Database steps                                                                              */

static void api_pump(struct db_conn *c);

static void api_param(struct api_req *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
api_param(struct api_req *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	db_param_v(r->params, &r->nparams, fmt, ap); /* NULL on failure: the query fails cleanly */
	va_end(ap);
}

/* A NULL parameter (SQL NULL) or a copy of s. */
static void
api_param_str(struct api_req *r, const char *s)
{
	db_param_str(r->params, &r->nparams, s);
}

/* A portal token's client, or NULL (SQL NULL) for an agency token. */
static void
api_param_client(struct api_req *r)
{
	if (r->client_id)
		api_param(r, "%" PRIu64, r->client_id);
	else
		api_param_str(r, NULL);
}

/* The connection of c in api.dbc (every callback of api_db_ops names one of them). */
static struct api_dbc *
api_dbc_of(struct db_conn *c)
{
	for (int i = 0; i < api.ndbc; i++)
		if (api.dbc[i].conn == c)
			return &api.dbc[i];
	return NULL;
}

static bool
api_db_up(void)
{
	for (int i = 0; i < api.ndbc; i++)
		if (db_conn_up(api.dbc[i].conn))
			return true;
	return false;
}

static void api_query_stmt(struct api_req *r, const char *stmt, const char *sql, api_db_fn next);

static void
api_query(struct api_req *r, const char *sql, api_db_fn next)
{
	api_query_stmt(r, NULL, sql, next);
}

/* api_query with a statement of api_prepare_sql() (or NULL), sql being the same query: sent as
 * text until the statement is prepared on the connection that takes it. */
static void
api_query_stmt(struct api_req *r, const char *stmt, const char *sql, api_db_fn next)
{
	r->stmt = stmt;
	r->sql = sql;
	r->next = next;
	if (!api_db_up()) {
		api_fail(r, 503, "database_unavailable",
			"the database is not reachable; try again");
		return;
	}
	STAILQ_INSERT_TAIL(&api.queue, r, link);
	/* the first idle connection takes it (each request's own queries stay in order: it
	 * sends the next one when the last is done) */
	for (int i = 0; i < api.ndbc && STAILQ_FIRST(&api.queue); i++)
		api_pump(api.dbc[i].conn);
}

static const char *api_prepare_sql(void);

static void
api_pump(struct db_conn *c)
{
	struct api_dbc *d = api_dbc_of(c);
	struct api_req *r;

	if (!d)
		return;
	if (!d->prepare_tried && !d->in_flight && db_idle(c)) {
		d->prepare_tried = true;
		/* the hot reads' statements, once per connection: planned once, not per request */
		d->preparing = db_send(c, api_prepare_sql(), 0, NULL);
		if (d->preparing)
			return;
	}
	while (!d->in_flight && !d->preparing && db_idle(c) &&
		(r = STAILQ_FIRST(&api.queue)) != NULL) {
		bool sent;

		STAILQ_REMOVE_HEAD(&api.queue, link);
		d->in_flight = r;
		if (r->stmt && d->prepared)
			sent = db_send_prepared(c, r->stmt, r->nparams,
				(const char *const *)r->params);
		else
			sent = db_send(c, r->sql, r->nparams, (const char *const *)r->params);
		if (!sent) {
			if (d->in_flight == r) /* not failed by api_db_disconnected meanwhile */
				api_fail(r, 503, "database_unavailable",
					"the database is not reachable");
			d->in_flight = NULL;
		}
	}
}

static void
api_db_result(struct db_conn *c, PGresult *res)
{
	struct api_dbc *d = api_dbc_of(c);
	struct api_req *r = d ? d->in_flight : NULL;

	if (!r)
		return;
	if (r->page) {
		r->page_ok = api_numbers_page_json(res, r->limit, r->page);
		return;
	}
	PQclear(r->res);
	r->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
}

static void
api_db_done(struct db_conn *c, bool ok)
{
	struct api_dbc *d = api_dbc_of(c);
	struct api_req *r = d ? d->in_flight : NULL;
	const char *st = db_sqlstate(c);

	if (!d)
		return;
	if (d->preparing) {
		/* refused (db.c logged it): the queries are sent as text on this connection */
		d->preparing = false;
		d->prepared = ok;
		api_pump(c);
		return;
	}
	d->in_flight = NULL;
	if (r) {
		db_params_free(r->params, &r->nparams);
		if (!ok) {
			if (strcmp(st, "25006") == 0) /* a standby: db.c finds the primary */
				api_fail(r, 503, "database_unavailable",
					"the database is read-only (failover): retry");
			else if (strcmp(st, "23505") == 0)
				api_fail(r, 409, "conflict", "that number is already active");
			else if (st[0] == '2' && st[1] == '3')
				api_fail(r, 409, "conflict",
					"the database refused the change (SQLSTATE %s)", st);
			else
				api_fail(r, 500, "internal", "database error (SQLSTATE %s)", st);
		} else {
			PGresult *res = r->res;

			r->res = NULL;
			r->next(r, res);
			PQclear(res);
		}
	}
	api_pump(c);
}

static void
api_db_connected(struct db_conn *c)
{
}

static void
api_db_disconnected(struct db_conn *c)
{
	struct api_dbc *d = api_dbc_of(c);
	struct api_req *r = d ? d->in_flight : NULL;

	if (!d)
		return;
	d->in_flight = NULL;
	d->prepared = d->preparing = d->prepare_tried = false;
	if (r)
		api_fail(r, 503, "database_unavailable", "the database connection was lost");
	if (api_db_up())
		return; /* the queue waits for the connections still up */
	while ((r = STAILQ_FIRST(&api.queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&api.queue, link);
		api_fail(r, 503, "database_unavailable", "the database connection was lost");
	}
}

static const struct db_conn_ops api_db_ops = {
	.needs_primary = true,
	.name = "admin",
	.connected = api_db_connected,
	.disconnected = api_db_disconnected,
	.notify = NULL,
	.result = api_db_result,
	.done = api_db_done,
	.pump = api_pump,
};

/* ------------------------------------------------------------------------------------------ */
/* Provider steps                                                                              */

static void
api_provider_done(void *arg, const struct httpc_response *resp)
{
	struct api_req *r = arg;

	r->pnext(r, resp);
}

/* Call the provider with r->preq; on anything but 2xx answer the client and stop here. */
static void
api_provider(struct api_req *r, api_http_fn next)
{
	const struct provider_api *pa = provider_api_get(r->acct.provider);
	const char *base =
		r->acct.base_url && *r->acct.base_url ? r->acct.base_url : pa->default_base_url;

	r->pnext = next;
	if (r->lease[0] && !nc_lease_room(r->lease_deadline, api.timeout_s)) {
		/* it could end after another change took the number over: not sent */
		nc_count(NC_LEASE_LOST, 1);
		log_warning("api: number %" PRIu64 ": the change ran out of its lease before its "
			    "next request to %s; nothing more sent",
			r->id, provider_name(r->acct.provider));
		api_fail(r, 409, "conflict",
			"number %" PRIu64 ": this change ran out of its %us lease before its next "
			"request to %s, which was not sent; read the number and try again",
			r->id, nc_lease_seconds(api.timeout_s), provider_name(r->acct.provider));
		return;
	}
	if (!httpc_request(base, &r->preq, api.timeout_s, api_provider_done, r))
		api_fail(r, 500, "internal", "could not send the request to %s",
			provider_name(r->acct.provider));
	else
		r->provider_sent = true;
}

/* Check a provider answer; false (answered) when it is not a success. */
static bool
api_provider_ok(struct api_req *r, const struct httpc_response *resp)
{
	const struct provider_api *pa = provider_api_get(r->acct.provider);
	char msg[400] = "";

	switch (resp->failure) {
	case HTTPC_OK:
		break;
	case HTTPC_TIMEOUT:
		api_fail(r, 504, "provider_timeout", "%s: %s", provider_name(r->acct.provider),
			resp->detail);
		return false;
	default:
		api_fail(r, 502, "provider_unreachable", "%s: %s", provider_name(r->acct.provider),
			resp->detail);
		return false;
	}
	if (resp->status >= 200 && resp->status < 300)
		return true;
	pa->error_message(resp->body, resp->len, msg, sizeof(msg));
	if (resp->status >= 400 && resp->status < 500)
		api_fail(r, resp->status == 404 ? 404 : 422, "provider_refused",
			"%s answered %d: %s", provider_name(r->acct.provider), resp->status,
			*msg ? msg : "(no message)");
	else
		api_fail(r, 502, "provider_error", "%s answered %d: %s",
			provider_name(r->acct.provider), resp->status, *msg ? msg : "(no message)");
	return false;
}

/* The account's context without our webhook URL (a rename needs none). */
static void
api_ctx_account(struct api_req *r, struct papi_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->api_key = r->acct.api_key;
	ctx->webhook_secret = r->acct.webhook_secret;
	ctx->slug = r->acct.slug;
	ctx->webhook_credential_id = r->acct.credential_id;
}

static bool
api_ctx(struct api_req *r, struct papi_ctx *ctx, char *url, size_t len)
{
	if (!*api.public_url) {
		api_fail(r, 500, "not_configured",
			"public_url is not configured: the provider could not reach our webhook");
		return false;
	}
	snprintf(url, len, "%s/v1/webhooks/%s/%s", api.public_url, provider_name(r->acct.provider),
		r->acct.slug);
	ctx->api_key = r->acct.api_key;
	ctx->webhook_url = url;
	ctx->webhook_secret = r->acct.webhook_secret;
	ctx->slug = r->acct.slug;
	ctx->webhook_credential_id = r->acct.credential_id;
	return true;
}

/*
 * A change to a number at the provider (r->change), one request per step: each 2xx answer
 * builds the next request; after the last, r->changed(r).  A provider answer other than 2xx
 * is answered to the client here, except while buying (OP_BUY): then the number, bought but
 * not bound, is recorded unassigned rather than lost.
 */
static void api_change_step(struct api_req *r, const char *prev, size_t prev_len);

static void
api_change_answer(struct api_req *r, const struct httpc_response *resp)
{
	bool ok = resp->failure == HTTPC_OK && resp->status >= 200 && resp->status < 300;

	if (!ok && r->op == OP_BUY) {
		log_warning("api: %s bought but the agent could not be bound at %s (step %u); "
			    "recorded unassigned",
			r->bought.e164, provider_name(r->acct.provider), r->step);
		r->agent_id = 0;
		r->ev_detail =
			"bought, but the agent asked for could not be bound at the provider: "
			"recorded unassigned";
		r->changed(r);
		return;
	}
	if (!api_provider_ok(r, resp))
		return;
	r->step++;
	api_change_step(r, resp->body, resp->len);
}

static void
api_change_step(struct api_req *r, const char *prev, size_t prev_len)
{
	const struct provider_api *pa = provider_api_get(r->acct.provider);
	struct papi_ctx ctx;
	char err[256], url[512];
	bool last = true;

	papi_request_clear(&r->preq);
	if (r->step > 0 && r->preq_last) {
		r->changed(r);
		return;
	}
	if (!r->change.agent)
		api_ctx_account(r, &ctx);
	else if (!api_ctx(r, &ctx, url, sizeof(url)))
		return;
	if (!pa->update(&ctx, r->e164, r->provider_number_id, &r->change, r->step, prev, prev_len,
		    &r->preq, &last, err, sizeof(err))) {
		if (r->op == OP_BUY) {
			log_warning("api: %s bought but its change at %s could not be built: %s; "
				    "recorded unassigned",
				r->bought.e164, provider_name(r->acct.provider), err);
			r->agent_id = 0;
			r->ev_detail = "bought, but the agent asked for could not be bound at the "
				       "provider: recorded unassigned";
			r->changed(r);
			return;
		}
		api_fail(r, r->step > 0 ? 409 : 422, r->step > 0 ? "provider_conflict" : "invalid",
			"%s", err);
		return;
	}
	r->preq_last = last;
	if (r->preq.method == NULL) {
		r->changed(r); /* nothing to send at this provider */
		return;
	}
	api_provider(r, api_change_answer);
}

static void
api_change(struct api_req *r, api_step_fn changed)
{
	r->changed = changed;
	r->step = 0;
	r->preq_last = false;
	api_change_step(r, NULL, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Rows to JSON                                                                                */

#define SQL_NUMBER_COLS                                                                             \
	"n.id, n.e164, n.provider, a.slug, n.nickname, n.agent_id, ag.name, ag.client_id, c.name, " \
	"n.status, to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), " \
	"to_char(n.released_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "          \
	"n.provider_released, n.provider_note "
#define SQL_NUMBER_FROM                                                                            \
	"FROM phone_numbers n JOIN provider_accounts a ON a.id = n.account_id "                    \
	"LEFT JOIN agents ag ON ag.id = n.agent_id LEFT JOIN clients c ON c.id = ag.client_id "

static json_t *
api_col(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static json_t *
api_col_int(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ?
		       json_null() :
		       json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *
api_number_json(PGresult *res, int row)
{
	json_t *agent = PQgetisnull(res, row, 5) ?
				json_null() :
				json_pack("{s:o,s:o}", "id", api_col_int(res, row, 5), "name",
					api_col(res, row, 6));
	json_t *client = PQgetisnull(res, row, 7) ?
				 json_null() :
				 json_pack("{s:o,s:o}", "id", api_col_int(res, row, 7), "name",
					 api_col(res, row, 8));
	json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
		api_col_int(res, row, 0), "e164", api_col(res, row, 1), "provider",
		api_col(res, row, 2), "account", api_col(res, row, 3), "nickname",
		api_col(res, row, 4), "agent", agent, "client", client, "status",
		api_col(res, row, 9), "created_at", api_col(res, row, 10), "released_at",
		api_col(res, row, 11));

	if (!PQgetisnull(res, row, 12) && strcmp(PQgetvalue(res, row, 12), "f") == 0)
		json_object_set_new(o, "provider_note", json_string(API_NUMBER_UNBOUND_NOTE));
	/* what the sync or a forced release noted (migration 007) */
	if (!PQgetisnull(res, row, 13))
		json_object_set_new(o, "provider_note", api_col(res, row, 13));
	return o;
}

/* Answer with the number r->id as it is now. */
static void
api_reply_number_cb(struct api_req *r, PGresult *res)
{
	int status = r->op == OP_BUY ? 201 : 200;

	/* a purchase of unknown outcome: recorded pending, for the sync to adopt or fail */
	if (r->op == OP_BUY && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 9), "pending") == 0)
		status = 202;
	if (PQntuples(res) != 1) {
		api_fail(r, 404, "not_found", "no such number");
		return;
	}
	api_send(r, status, api_number_json(res, 0));
}

static void
api_reply_number(struct api_req *r)
{
	api_param(r, "%" PRIu64, r->id);
	api_param(r, "%" PRIu64, r->agency_id);
	api_query(r,
		"SELECT " SQL_NUMBER_COLS SQL_NUMBER_FROM "WHERE n.id = $1 AND n.agency_id = $2",
		api_reply_number_cb);
}

/* ------------------------------------------------------------------------------------------ */
/* GET /v1/numbers, GET /v1/numbers/{id}                                                       */

static void
api_list_cb(struct api_req *r, PGresult *res)
{
	json_t *arr;
	int n;

	if (r->page) { /* written as the result came (api_db_result) */
		if (!r->page_ok || !evbuffer_get_length(r->page)) {
			api_fail(r, 503, "unavailable", "out of memory");
			return;
		}
		wire_reply(r->req, 200, "application/json", evbuffer_pullup(r->page, -1),
			evbuffer_get_length(r->page), "Cache-Control: no-store\r\n");
		api_free(r);
		return;
	}
	arr = json_array();
	n = PQntuples(res);

	for (int i = 0; i < n; i++)
		json_array_append_new(arr, api_number_json(res, i));
	api_send(r, 200,
		json_pack("{s:o,s:o}", "numbers", arr, "next_after",
			n == r->limit && n > 0 ? api_col_int(res, n - 1, 0) : json_null()));
}

/* The statements of the hot reads, prepared on the connection before its first query: an agency
 * token's token check, and its pages of numbers, plain or searched by an e164 prefix (the
 * phone_numbers_agency_id index of migration 011, or phone_numbers_e164 for a prefix). */
#define SQL_TOKEN                                                                                  \
	"SELECT agency_id, client_id, id FROM api_tokens "                                         \
	"WHERE token_sha256 = decode($1, 'hex') AND revoked_at IS NULL"
/* SQL_NUMBER_COLS with the times as the server's text of a UTC timestamp (DateStyle ISO, set
 * with the statements: "2026-12-02 04:34:26.129"), which api_numbers.c writes as ISO 8601:
 * to_char() cost PostgreSQL ~2 us a call, a third of a page's time. */
#define SQL_NUMBER_COLS_FAST                                                                        \
	"n.id, n.e164, n.provider, a.slug, n.nickname, n.agent_id, ag.name, ag.client_id, c.name, " \
	"n.status, n.created_at AT TIME ZONE 'UTC', n.released_at AT TIME ZONE 'UTC', "             \
	"n.provider_released, n.provider_note "
/* the same query, in a function planned once per session (migration 011) */
#define SQL_LIST_PLAIN "SELECT * FROM callrouted_numbers_page($1, $2, $3)"
#define SQL_LIST_NARROW "SELECT * FROM callrouted_numbers_prefix($1, $2, $3, $4, $5)"
#define API_NARROW_PREFIX 7 /* "+" and 6 digits: a few of an agency's numbers */
#define SQL_LIST_PREFIX                                                                            \
	"SELECT " SQL_NUMBER_COLS_FAST SQL_NUMBER_FROM "WHERE n.agency_id = $1 AND n.id > $2 "     \
	"AND n.e164 >= $4 AND ($5::text IS NULL OR n.e164 < $5) ORDER BY n.id LIMIT $3"

static const char *
api_prepare_sql(void)
{
	return "SET DateStyle = ISO;"
	       "PREPARE api_token (text) AS " SQL_TOKEN ";"
	       "PREPARE api_list_narrow (bigint, bigint, bigint, text, text) AS " SQL_LIST_NARROW
	       ";"
	       "PREPARE api_list (bigint, bigint, bigint) AS " SQL_LIST_PLAIN ";"
	       "PREPARE api_list_prefix (bigint, bigint, bigint, text, text) AS " SQL_LIST_PREFIX;
}

static void
api_list(struct api_req *r)
{
	r->page = evbuffer_new(); /* NULL: the answer is built with jansson */
	if (!r->client_id && !r->f_client && !r->f_agent && !r->f_provider && !r->f_status &&
		(!r->f_e164 || r->f_e164[0] == '+')) {
		/* an agency token's pages, perhaps of a prefix: prepared statements */
		api_param(r, "%" PRIu64, r->agency_id);
		api_param(r, "%" PRIu64, r->after);
		api_param(r, "%ld", r->limit);
		if (!r->f_e164) {
			api_query_stmt(r, "api_list", SQL_LIST_PLAIN, api_list_cb);
			return;
		}
		api_param_str(r, r->f_e164);
		api_param_str(r, r->f_e164_hi);
		if (r->f_e164_hi && strlen(r->f_e164) >= API_NARROW_PREFIX)
			api_query_stmt(r, "api_list_narrow", SQL_LIST_NARROW, api_list_cb);
		else
			api_query_stmt(r, "api_list_prefix", SQL_LIST_PREFIX, api_list_cb);
		return;
	}
	api_param(r, "%" PRIu64, r->agency_id);
	api_param_str(r, r->f_client);
	api_param_str(r, r->f_agent);
	api_param_str(r, r->f_provider);
	api_param_str(r, r->f_status);
	api_param(r, "%" PRIu64, r->after);
	api_param(r, "%ld", r->limit);
	api_param_client(r);
	api_param_str(r, r->f_e164);
	api_param_str(r, r->f_e164_hi);
	/*
	 * A portal token sees its client's numbers, and only with agent visibility on.  e164:
	 * "+1415" is a prefix, searched as the range ["+1415", "+1416"), which the
	 * phone_numbers_e164 btree serves whatever the database's collation (every e164 is '+' and
	 * digits: ordered by its digits under C and the usual locales alike; LIKE 'x%' would need C
	 * or text_pattern_ops); digits alone are a part of the number (the agency's numbers
	 * scanned).
	 */
	api_query(r,
		"SELECT " SQL_NUMBER_COLS SQL_NUMBER_FROM
		"WHERE n.agency_id = $1 AND ($2::bigint IS NULL OR ag.client_id = $2) "
		"AND ($3::bigint IS NULL OR n.agent_id = $3) AND ($4::text IS NULL OR n.provider = $4) "
		"AND ($5::text IS NULL OR n.status = $5) AND n.id > $6 "
		"AND ($8::bigint IS NULL OR (ag.client_id = $8 AND c.portal_agent_visibility)) "
		"AND ($9::text IS NULL OR (left($9, 1) = '+' AND n.e164 >= $9 "
		"AND ($10::text IS NULL OR n.e164 < $10)) "
		"OR (left($9, 1) <> '+' AND strpos(n.e164, $9) > 0)) "
		"ORDER BY n.id LIMIT $7",
		api_list_cb);
}

static void
api_show_cb(struct api_req *r, PGresult *res)
{
	/* a portal token: its client's number with visibility on, else absent */
	if (PQntuples(res) != 1) {
		api_fail(r, 404, "not_found", "no such number");
		return;
	}
	api_send(r, 200, api_number_json(res, 0));
}

static void
api_show(struct api_req *r)
{
	api_param(r, "%" PRIu64, r->id);
	api_param(r, "%" PRIu64, r->agency_id);
	api_param_client(r);
	api_query(r,
		"SELECT " SQL_NUMBER_COLS SQL_NUMBER_FROM "WHERE n.id = $1 AND n.agency_id = $2 "
		"AND ($3::bigint IS NULL OR (ag.client_id = $3 AND c.portal_agent_visibility))",
		api_show_cb);
}

/* ------------------------------------------------------------------------------------------ */
/* Loading an account, a number, an agent                                                      */

#define SQL_ACCOUNT_COLS                                                                           \
	"a.id, a.provider, a.slug, a.api_key, a.webhook_secret, a.api_base_url, "                  \
	"a.webhook_credential_id"

/* Columns c..c+6 of row of an SQL_ACCOUNT_COLS result into r->acct. */
static bool
api_take_account(struct api_req *r, PGresult *res, int row, int c)
{
	const char *prov = PQgetvalue(res, row, c + 1);

	r->acct.id = strtoull(PQgetvalue(res, row, c), NULL, 10);
	if (!provider_from_name(prov, strlen(prov), &r->acct.provider))
		return false;
	snprintf(r->acct.slug, sizeof(r->acct.slug), "%s", PQgetvalue(res, row, c + 2));
	r->acct.api_key = strdup(PQgetvalue(res, row, c + 3));
	r->acct.webhook_secret =
		PQgetisnull(res, row, c + 4) ? NULL : strdup(PQgetvalue(res, row, c + 4));
	r->acct.base_url =
		PQgetisnull(res, row, c + 5) ? NULL : strdup(PQgetvalue(res, row, c + 5));
	r->acct.credential_id =
		PQgetisnull(res, row, c + 6) ? NULL : strdup(PQgetvalue(res, row, c + 6));
	return r->acct.api_key != NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* POST /v1/numbers {account, area_code, nickname?, agent_id?}                                 */

/* The agent r->agent_id of this agency and of the account's provider, then next(r). */
static void
api_agent_cb(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_fail(r, 422, "invalid", "agent %" PRIu64 " is not an agent of this agency",
			r->agent_id);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), provider_name(r->acct.provider)) != 0) {
		api_fail(r, 422, "provider_mismatch",
			"agent %" PRIu64 " is a %s agent; the number is a %s number", r->agent_id,
			PQgetvalue(res, 0, 0), provider_name(r->acct.provider));
		return;
	}
	r->agent_pid = strdup(PQgetvalue(res, 0, 1));
	r->then(r);
}

static void
api_load_agent(struct api_req *r, api_step_fn next)
{
	r->then = next;
	api_param(r, "%" PRIu64, r->agent_id);
	api_param(r, "%" PRIu64, r->agency_id);
	api_query(r,
		"SELECT provider, provider_agent_id FROM agents WHERE id = $1 AND agency_id = $2",
		api_agent_cb);
}

static void
api_buy_inserted(struct api_req *r, PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_fail(r, 500, "internal", "the number was bought but could not be recorded");
		return;
	}
	r->id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	if (PQnfields(res) > 1) /* the events written with it */
		nc_count(NC_EVENTS, strtoull(PQgetvalue(res, 0, 1), NULL, 10));
	log_info("api: agency %" PRIu64 " bought %s through %s/%s (number %" PRIu64 "%s)",
		r->agency_id, *r->bought.e164 ? r->bought.e164 : "(digits unknown)",
		provider_name(r->acct.provider), r->acct.slug, r->id,
		r->buy_note ? ", pending" : "");
	api_reply_number(r);
}

static void
api_buy_record(struct api_req *r)
{
	api_param(r, "%" PRIu64, r->agency_id);
	api_param(r, "%" PRIu64, r->acct.id);
	api_param_str(r, provider_name(r->acct.provider));
	api_param_str(r, r->bought.e164);
	api_param_str(r, r->bought.provider_number_id);
	api_param_str(r, r->nickname);
	if (r->agent_id)
		api_param(r, "%" PRIu64, r->agent_id);
	else
		api_param_str(r, NULL);
	api_param(r, "%" PRIu64, r->token_id);
	api_param_str(r, api.instance);
	api_param_str(r, r->ev_detail);
	/* the number and its 'buy' event (number_changes.h), one statement */
	api_query(r,
		"WITH n AS (INSERT INTO phone_numbers (agency_id, account_id, provider, e164, "
		"provider_number_id, nickname, agent_id) VALUES ($1, $2, $3, $4, $5, $6, $7) "
		"RETURNING id, agency_id, e164, agent_id, nickname), "
		"e AS (INSERT INTO number_events (number_id, agency_id, e164, action, "
		"after_agent_id, after_nickname, actor, token_id, instance, detail) "
		"SELECT id, agency_id, e164, 'buy', agent_id, nickname, 'token', $8, $9, $10 "
		"FROM n RETURNING id) "
		"SELECT id, (SELECT count(*) FROM e) FROM n",
		api_buy_inserted);
}

/*
 * A purchase whose outcome is unknown (no answer in time, a 5xx after the provider may have
 * acted, a number without digits yet): recorded pending with whatever id the provider gave, and
 * answered 202 with that row; the provider sync (sync.c) adopts it when the provider lists the
 * number, or marks it failed.  Nothing bought goes untracked.
 */
static void api_buy_pending(struct api_req *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
api_buy_pending(struct api_req *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&r->buy_note, fmt, ap) < 0)
		r->buy_note = NULL;
	va_end(ap);
	log_warning("api: agency %" PRIu64 ": purchase at %s/%s of unknown outcome (%s): recorded "
		    "pending%s%s",
		r->agency_id, provider_name(r->acct.provider), r->acct.slug,
		r->buy_note ? log_esc(r->buy_note) : "?",
		*r->bought.provider_number_id ? ", provider id " : "",
		log_esc(r->bought.provider_number_id));
	api_param(r, "%" PRIu64, r->agency_id);
	api_param(r, "%" PRIu64, r->acct.id);
	api_param_str(r, provider_name(r->acct.provider));
	api_param_str(r, *r->bought.provider_number_id ? r->bought.provider_number_id : NULL);
	api_param_str(r, r->nickname);
	api_param_str(r, r->buy_note);
	/* the agent asked for: the sync assigns the number to it when it adopts the purchase */
	if (r->agent_id)
		api_param(r, "%" PRIu64, r->agent_id);
	else
		api_param_str(r, NULL);
	r->agent_id = 0;
	api_param(r, "%" PRIu64, r->token_id);
	api_param_str(r, api.instance);
	/* the pending number and its 'buy_pending' event (number_changes.h), one statement */
	api_query(r,
		"WITH n AS (INSERT INTO phone_numbers (agency_id, account_id, provider, e164, "
		"provider_number_id, nickname, status, provider_note, requested_agent_id) "
		"VALUES ($1, $2, $3, NULL, $4, $5, 'pending', left($6, 500), $7) "
		"RETURNING id, agency_id, e164, nickname), "
		"e AS (INSERT INTO number_events (number_id, agency_id, e164, action, "
		"after_agent_id, after_nickname, actor, token_id, instance, detail) "
		"SELECT id, agency_id, e164, 'buy_pending', $7::bigint, nickname, 'token', $8, $9, "
		"left($6, 1000) FROM n RETURNING id) "
		"SELECT id, (SELECT count(*) FROM e) FROM n",
		api_buy_inserted);
}

static void
api_buy_bought(struct api_req *r, const struct httpc_response *resp)
{
	const struct provider_api *pa = provider_api_get(r->acct.provider);
	char err[256], msg[300] = "";

	memset(&r->bought, 0, sizeof(r->bought));
	if (resp->failure == HTTPC_TIMEOUT) {
		api_buy_pending(r,
			"%s did not answer the purchase within provider_timeout (%s): "
			"whether it bought a number is unknown until the next sync",
			provider_name(r->acct.provider), resp->detail);
		return;
	}
	if (resp->failure == HTTPC_OK && resp->status >= 500) {
		pa->error_message(resp->body, resp->len, msg, sizeof(msg));
		api_buy_pending(r,
			"%s answered %d to the purchase (%s): whether it bought a number is "
			"unknown until the next sync",
			provider_name(r->acct.provider), resp->status, *msg ? msg : "no message");
		return;
	}
	if (!api_provider_ok(r, resp))
		return;
	if (!pa->parse_number(resp->body, resp->len, &r->bought, err, sizeof(err))) {
		if (*r->bought.provider_number_id) {
			api_buy_pending(r, "%s bought it but gave no digits yet (%s)",
				provider_name(r->acct.provider), err);
			return;
		}
		api_fail(r, 502, "provider_error", "%s: unexpected purchase answer: %s",
			provider_name(r->acct.provider), err);
		return;
	}
	if (!r->agent_id) {
		api_buy_record(r);
		return;
	}
	/* bound in a change of its own (the name went with the purchase) */
	snprintf(r->e164, sizeof(r->e164), "%s", r->bought.e164);
	free(r->provider_number_id);
	r->provider_number_id = strdup(r->bought.provider_number_id);
	r->change = (struct papi_change){ .agent = true, .agent_id = r->agent_pid };
	api_change(r, api_buy_record);
}

static void
api_buy_start(struct api_req *r)
{
	const struct provider_api *pa = provider_api_get(r->acct.provider);
	struct papi_ctx ctx;
	char err[256], url[512];

	if (!api_ctx(r, &ctx, url, sizeof(url)))
		return;
	if (!pa->purchase(&ctx, r->area_code, r->nickname, &r->preq, err, sizeof(err))) {
		api_fail(r, 400, "invalid", "%s", err);
		return;
	}
	if (r->acct.provider == PROVIDER_VAPI &&
		(r->acct.credential_id == NULL || *r->acct.credential_id == '\0'))
		log_warning("api: vapi account %s has no webhook_credential_id: the number bought "
			    "sends unsigned requests, refused here, until a credential is attached "
			    "at vapi",
			r->acct.slug);
	api_provider(r, api_buy_bought);
}

static void
api_buy_account_cb(struct api_req *r, PGresult *res)
{
	char err[256];

	if (PQntuples(res) != 1) {
		api_fail(r, 404, "not_found", "no such account");
		return;
	}
	if (!api_take_account(r, res, 0, 0)) {
		api_fail(r, 500, "internal", "unreadable account");
		return;
	}
	if (!papi_check_name(provider_api_get(r->acct.provider), r->nickname, err, sizeof(err))) {
		api_fail(r, 400, "invalid", "%s", err);
		return;
	}
	if (!r->agent_id) {
		api_buy_start(r);
		return;
	}
	api_load_agent(r, api_buy_start);
}

/* ------------------------------------------------------------------------------------------ */
/* PATCH /v1/numbers/{id} {nickname?, agent_id?}; DELETE /v1/numbers/{id}                      */

/* The final write of a change: (lease ours, number updated, events written). */
static void
api_updated_cb(struct api_req *r, PGresult *res)
{
	bool lease_ours = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	bool updated = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "1") == 0;

	r->lease[0] = '\0'; /* given back by that statement, or not ours any more */
	if (!lease_ours) {
		/* it outlived its lease and another change may have taken the number over */
		nc_count(NC_LEASE_LOST, 1);
		log_warning("api: number %" PRIu64 " (%s): the change outlived its lease; the "
			    "provider has it but it was not recorded",
			r->id, r->e164);
		api_fail(r, 409, "conflict",
			"number %" PRIu64 ": this change took longer than its lease and was not "
			"recorded (another change may have followed); read the number again: a "
			"provider sync shows what the provider has",
			r->id);
		return;
	}
	if (!updated) {
		/* it changed under us (released meanwhile, outside the API) */
		api_fail(r, 409, "conflict", "the number changed meanwhile; read it again");
		return;
	}
	nc_count(NC_EVENTS, strtoull(PQgetvalue(res, 0, 2), NULL, 10));
	api_reply_number(r);
}

static void
api_patch_write(struct api_req *r)
{
	api_param(r, "%" PRIu64, r->id);
	api_param(r, "%" PRIu64, r->agency_id);
	api_param_str(r, r->has_nickname ? "t" : "f");
	api_param_str(r, r->nickname);
	api_param_str(r, r->has_agent ? "t" : "f");
	if (r->agent_id)
		api_param(r, "%" PRIu64, r->agent_id);
	else
		api_param_str(r, NULL);
	api_param_str(r, r->lease);
	api_param(r, "%" PRIu64, r->token_id);
	api_param_str(r, api.instance);
	/* only while the lease is ours (compare-and-set), which it gives back; an event per
	 * change made (an assign or unassign, a rename), one statement */
	api_query(r,
		"WITH l AS (DELETE FROM number_change_leases WHERE number_id = $1 AND holder = $7 "
		"RETURNING number_id), "
		"old AS (SELECT agent_id, nickname FROM phone_numbers WHERE id = $1), "
		"u AS (UPDATE phone_numbers n SET "
		"nickname = CASE WHEN $3::boolean THEN $4 ELSE n.nickname END, "
		"agent_id = CASE WHEN $5::boolean THEN $6::bigint ELSE n.agent_id END "
		"FROM l WHERE n.id = l.number_id AND n.agency_id = $2 AND n.status = 'active' "
		"RETURNING n.id, n.agency_id, n.e164, n.agent_id, n.nickname), "
		"e AS (INSERT INTO number_events (number_id, agency_id, e164, action, "
		"before_agent_id, after_agent_id, before_nickname, after_nickname, actor, token_id, "
		"instance) "
		"SELECT u.id, u.agency_id, u.e164, CASE WHEN k.kind = 'name' THEN 'rename' "
		"WHEN u.agent_id IS NULL THEN 'unassign' ELSE 'assign' END, old.agent_id, "
		"u.agent_id, old.nickname, u.nickname, 'token', $8, $9 "
		"FROM u, old, (VALUES (1, 'agent'), (2, 'name')) k (ord, kind) "
		"WHERE (k.kind = 'agent' AND $5::boolean AND u.agent_id IS DISTINCT FROM "
		"old.agent_id) OR (k.kind = 'name' AND $3::boolean AND u.nickname IS DISTINCT FROM "
		"old.nickname) ORDER BY k.ord RETURNING id) "
		"SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM u), (SELECT count(*) FROM e)",
		api_updated_cb);
}

static void
api_patch_changed(struct api_req *r)
{
	if (r->change.agent)
		log_info("api: number %" PRIu64 " (%s) %s agent %" PRIu64 " at %s", r->id, r->e164,
			r->agent_id ? "assigned to" : "unassigned from",
			r->agent_id ? r->agent_id : r->cur_agent_id,
			provider_name(r->acct.provider));
	api_patch_write(r);
}

/* The agent (when it changes) and the name (where the provider shows one) at the provider. */
static void
api_patch_provider(struct api_req *r)
{
	const struct provider_api *pa = provider_api_get(r->acct.provider);

	r->change = (struct papi_change){
		.agent = r->has_agent && r->agent_id != r->cur_agent_id,
		.agent_id = r->agent_id ? r->agent_pid : NULL,
		.name = r->has_nickname && pa->name_max > 0,
		.nickname = r->nickname,
	};
	if (!r->change.agent && !r->change.name) {
		api_patch_write(r); /* nothing changes at the provider */
		return;
	}
	api_change(r, api_patch_changed);
}

static void api_release_done(struct api_req *r, const struct httpc_response *resp);

static void
api_number_loaded_cb(struct api_req *r, PGresult *res)
{
	const struct provider_api *pa;
	struct papi_ctx ctx;
	char err[256], url[512];

	if (PQntuples(res) != 1) {
		api_fail(r, 404, "not_found", "no such number");
		return;
	}
	/* e164, provider_number_id, agent_id, status, then the account */
	snprintf(r->e164, sizeof(r->e164), "%s", PQgetvalue(res, 0, 0));
	r->provider_number_id = PQgetisnull(res, 0, 1) ? NULL : strdup(PQgetvalue(res, 0, 1));
	r->cur_agent_id = PQgetisnull(res, 0, 2) ? 0 : strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	if (!api_take_account(r, res, 0, 4)) {
		api_fail(r, 500, "internal", "unreadable account");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 3), "active") != 0) {
		if (strcmp(PQgetvalue(res, 0, 3), "released") == 0)
			api_fail(r, 409, "released", "number %" PRIu64 " is released", r->id);
		else /* pending, failed (migration 007): the sync resolves them */
			api_fail(r, 409, "conflict",
				"number %" PRIu64
				" is %s: POST /v1/accounts/{slug}/sync resolves it",
				r->id, PQgetvalue(res, 0, 3));
		return;
	}
	if (r->op == OP_PATCH) {
		pa = provider_api_get(r->acct.provider);
		if (r->has_nickname && !papi_check_name(pa, r->nickname, err, sizeof(err))) {
			api_fail(r, 400, "invalid", "%s", err);
			return;
		}
		if (r->has_agent && r->agent_id && r->agent_id != r->cur_agent_id) {
			api_load_agent(r, api_patch_provider);
			return;
		}
		api_patch_provider(r);
		return;
	}
	/* OP_RELEASE */
	pa = provider_api_get(r->acct.provider);
	if (!api_ctx(r, &ctx, url, sizeof(url)))
		return;
	if (!pa->release(&ctx, r->e164, r->provider_number_id, &r->preq, &r->unbind_only, err,
		    sizeof(err))) {
		api_fail(r, 422, "invalid", "%s", err);
		return;
	}
	api_provider(r, api_release_done);
}

static void
api_load_number(struct api_req *r)
{
	api_param(r, "%" PRIu64, r->id);
	api_param(r, "%" PRIu64, r->agency_id);
	api_query(r,
		"SELECT n.e164, n.provider_number_id, n.agent_id, n.status, " SQL_ACCOUNT_COLS
		" FROM phone_numbers n JOIN provider_accounts a ON a.id = n.account_id "
		"WHERE n.id = $1 AND n.agency_id = $2",
		api_number_loaded_cb);
}

static void
api_release_done(struct api_req *r, const struct httpc_response *resp)
{
	/* ?force=true: the provider no longer has it (released in its dashboard) */
	bool forced = r->force && resp->failure == HTTPC_OK && resp->status == 404;
	char note[200] = "";

	if (forced) {
		snprintf(note, sizeof(note),
			"%s answered 404 to the release: the number was already gone there; released "
			"here by force",
			provider_name(r->acct.provider));
		r->unbind_only = false;
		log_info("api: number %" PRIu64 " (%s) not found at %s: released here (force)",
			r->id, r->e164, provider_name(r->acct.provider));
	} else if (!api_provider_ok(r, resp)) {
		return;
	} else {
		log_info("api: number %" PRIu64 " (%s) released%s at %s", r->id, r->e164,
			r->unbind_only ? " (unbound only: no release API)" : "",
			provider_name(r->acct.provider));
	}
	api_param(r, "%" PRIu64, r->id);
	api_param(r, "%" PRIu64, r->agency_id);
	api_param_str(r, r->unbind_only ? "f" : "t");
	api_param_str(r, r->lease);
	api_param(r, "%" PRIu64, r->token_id);
	api_param_str(r, api.instance);
	api_param_str(r, forced         ? note :
			 r->unbind_only ? "the provider has no API to release a number: unbound "
					  "there only; release it in the provider's dashboard" :
					  NULL);
	api_param_str(r, forced ? note : NULL);
	/* as api_patch_write: while the lease is ours, with its 'release' event */
	api_query(r,
		"WITH l AS (DELETE FROM number_change_leases WHERE number_id = $1 AND holder = $4 "
		"RETURNING number_id), "
		"old AS (SELECT agent_id, nickname FROM phone_numbers WHERE id = $1), "
		"u AS (UPDATE phone_numbers n SET status = 'released', released_at = now(), "
		"agent_id = NULL, provider_released = $3::boolean, provider_note = $8 FROM l "
		"WHERE n.id = l.number_id AND n.agency_id = $2 AND n.status = 'active' "
		"RETURNING n.id, n.agency_id, n.e164, n.nickname), "
		"e AS (INSERT INTO number_events (number_id, agency_id, e164, action, "
		"before_agent_id, before_nickname, after_nickname, actor, token_id, instance, detail) "
		"SELECT u.id, u.agency_id, u.e164, 'release', old.agent_id, old.nickname, "
		"u.nickname, 'token', $5, $6, $7 FROM u, old RETURNING id) "
		"SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM u), (SELECT count(*) FROM e)",
		api_updated_cb);
}

/* ------------------------------------------------------------------------------------------ */
/* POST /v1/calls {agent_id, to, from?, variables?, metadata?}                                */

static void
api_call_done(struct api_req *r, const struct httpc_response *resp)
{
	const struct provider_api *pa = provider_api_get(r->acct.provider);
	struct papi_call call;
	char err[256];

	if (!api_provider_ok(r, resp))
		return;
	if (!pa->parse_call(resp->body, resp->len, &call, err, sizeof(err))) {
		api_fail(r, 502, "provider_error", "%s: unexpected answer: %s",
			provider_name(r->acct.provider), err);
		return;
	}
	log_info("api: agency %" PRIu64 " placed call %s from %s to %s (agent %" PRIu64 ")",
		r->agency_id, call.call_id, r->from, r->to, r->agent_id);
	api_send(r, 201,
		json_pack("{s:s,s:s,s:I,s:s,s:s}", "call_id", call.call_id, "provider",
			provider_name(r->acct.provider), "agent_id", (json_int_t)r->agent_id,
			"from", r->from, "to", r->to));
}

static void
api_call_agent_cb(struct api_req *r, PGresult *res)
{
	const struct provider_api *pa;
	struct papi_ctx ctx;
	char err[256], url[512];
	int row = -1;

	if (PQntuples(res) == 0) {
		api_fail(r, 404, "not_found", "no such agent");
		return;
	}
	/* agent.provider, provider_agent_id, then one row per active number (or one NULL row) */
	if (PQgetisnull(res, 0, 2)) {
		api_fail(r, 409, "no_number",
			"agent %" PRIu64 " has no phone number to call from: assign one first",
			r->agent_id);
		return;
	}
	for (int i = 0; i < PQntuples(res) && row < 0; i++)
		if (!*r->from || strcmp(PQgetvalue(res, i, 3), r->from) == 0)
			row = i;
	if (row < 0) {
		api_fail(r, 422, "invalid", "%s is not a number of agent %" PRIu64, r->from,
			r->agent_id);
		return;
	}
	snprintf(r->from, sizeof(r->from), "%s", PQgetvalue(res, row, 3));
	r->provider_number_id = PQgetisnull(res, row, 4) ? NULL : strdup(PQgetvalue(res, row, 4));
	r->agent_pid = strdup(PQgetvalue(res, 0, 1));
	/* the account of the number calling (an agent's numbers may be of several accounts) */
	if (!api_take_account(r, res, row, 5)) {
		api_fail(r, 500, "internal", "unreadable account");
		return;
	}
	pa = provider_api_get(r->acct.provider);
	if (!api_ctx(r, &ctx, url, sizeof(url)))
		return;
	if (!pa->call(&ctx, r->from, r->provider_number_id, r->to, r->agent_pid, &r->preq, err,
		    sizeof(err))) {
		api_fail(r, 422, "invalid", "%s", err);
		return;
	}
	/* variables and metadata (checked in api_parse_body), where this provider takes them */
	{
		json_t *vars = json_object_get(r->body, "variables");
		json_t *meta = json_object_get(r->body, "metadata");

		if (!pa->call_context(r->preq.body, json_is_object(vars) ? vars : NULL,
			    json_is_object(meta) ? meta : NULL, err, sizeof(err))) {
			api_fail(r, 500, "internal", "could not add the call's variables");
			return;
		}
	}
	api_provider(r, api_call_done);
}

/* ------------------------------------------------------------------------------------------ */
/* GET /v1/numbers/{id}/events: the number's audit trail (number_events)                       */

#define API_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* An event's agent: {id, name}, null for none; to a portal token, an agent of another client
 * (or the agency's own) is {id: null, name: null}: that it existed, not what it is. */
static json_t *
api_event_agent(struct api_req *r, PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	if (r->client_id &&
		(PQgetisnull(res, row, col + 2) ||
			strtoull(PQgetvalue(res, row, col + 2), NULL, 10) != r->client_id))
		return json_pack("{s:n,s:n}", "id", "name");
	return json_pack("{s:o,s:o}", "id", api_col_int(res, row, col), "name",
		api_col(res, row, col + 1));
}

static void
api_events_cb(struct api_req *r, PGresult *res)
{
	json_t *arr;
	int n = PQntuples(res), got = 0;

	/* one row with no number: not this token's (or no such number) */
	if (n < 1 || PQgetisnull(res, 0, 0)) {
		api_fail(r, 404, "not_found", "no such number");
		return;
	}
	arr = json_array();
	for (int i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 1))
			continue; /* the number has no event (after this one) */
		got++;
		json_array_append_new(arr,
			json_pack("{s:o,s:o,s:o,s:o,s:{s:o,s:o},s:{s:o,s:o},s:o,s:o,s:o,s:o,s:o,"
				  "s:o}",
				"id", api_col_int(res, i, 1), "number_id", api_col_int(res, i, 0),
				"e164", api_col(res, i, 2), "action", api_col(res, i, 3), "before",
				"agent", api_event_agent(r, res, i, 4), "nickname",
				api_col(res, i, 10), "after", "agent",
				api_event_agent(r, res, i, 7), "nickname", api_col(res, i, 11),
				"actor", api_col(res, i, 12), "token_id",
				r->client_id ? json_null() : api_col_int(res, i, 13), "instance",
				api_col(res, i, 14), "provider_request_id", api_col(res, i, 15),
				"detail", api_col(res, i, 16), "created_at", api_col(res, i, 17)));
	}
	api_send(r, 200,
		json_pack("{s:o,s:o}", "events", arr, "next_after",
			got == r->limit && got > 0 ? api_col_int(res, n - 1, 1) : json_null()));
}

static void
api_events(struct api_req *r)
{
	api_param(r, "%" PRIu64, r->id);
	api_param(r, "%" PRIu64, r->agency_id);
	api_param_client(r);
	api_param(r, "%" PRIu64, r->after);
	api_param(r, "%ld", r->limit);
	/* the number under GET /v1/numbers/{id}'s visibility rule, then its events */
	api_query(r,
		"WITH v AS (SELECT n.id FROM phone_numbers n LEFT JOIN agents ag ON ag.id = "
		"n.agent_id LEFT JOIN clients c ON c.id = ag.client_id WHERE n.id = $1 AND "
		"n.agency_id = $2 AND ($3::bigint IS NULL OR (ag.client_id = $3 AND "
		"c.portal_agent_visibility))), "
		"ev AS (SELECT e.* FROM number_events e JOIN v ON e.number_id = v.id "
		"WHERE e.agency_id = $2 AND e.id > $4 ORDER BY e.id LIMIT $5) "
		"SELECT v.id, ev.id, ev.e164, ev.action, ev.before_agent_id, ba.name, ba.client_id, "
		"ev.after_agent_id, aa.name, aa.client_id, ev.before_nickname, ev.after_nickname, "
		"ev.actor, ev.token_id, ev.instance, ev.provider_request_id, ev.detail, " API_ISO(
			"ev.created_at") " FROM (SELECT 1) one LEFT JOIN v ON true "
					 "LEFT JOIN ev ON true "
					 "LEFT JOIN agents ba ON ba.id = ev.before_agent_id "
					 "LEFT JOIN agents aa ON aa.id = ev.after_agent_id "
					 "ORDER BY ev.id",
		api_events_cb);
}

/* ------------------------------------------------------------------------------------------ */
/* One change per number at a time: the lease (number_changes.h)                               */

static void
api_lease_cb(struct api_req *r, PGresult *res)
{
	bool found = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	bool got = found && strcmp(PQgetvalue(res, 0, 1), "1") == 0;

	if (!got)
		r->lease[0] = '\0'; /* not ours: nothing to give back */
	if (!found) {
		api_fail(r, 404, "not_found", "no such number");
		return;
	}
	if (!got) {
		/* the holder as this statement saw it; an expired one was just taken over by
		 * another change, which this statement could not see */
		bool known = !PQgetisnull(res, 0, 2) && strcmp(PQgetvalue(res, 0, 4), "f") == 0;

		nc_count(NC_LEASE_CONFLICTS, 1);
		log_info("api: number %" PRIu64
			 ": change refused: another change (%s, instance %s) "
			 "holds it",
			r->id, known ? PQgetvalue(res, 0, 3) : "?",
			known ? log_esc(PQgetvalue(res, 0, 2)) : "?");
		if (known)
			api_fail(r, 409, "conflict",
				"number %" PRIu64 " is being changed by another request (a %s on "
				"instance %s, its lease until %s): try again when it is done",
				r->id, PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 2),
				PQgetvalue(res, 0, 5));
		else
			api_fail(r, 409, "conflict",
				"number %" PRIu64 " is being changed by another request: try again "
				"when it is done",
				r->id);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 6), "0") != 0) {
		nc_count(NC_LEASE_TAKEOVERS, 1);
		nc_count(NC_EVENTS, 1);
		log_warning("api: number %" PRIu64 ": took over the expired lease of a %s by "
			    "instance %s that did not finish (recorded as an 'interrupted' event); "
			    "the provider may hold its change",
			r->id, PQgetvalue(res, 0, 3), log_esc(PQgetvalue(res, 0, 2)));
	}
	api_load_number(r);
}

/* Take number r->id's lease, then load it (PATCH, DELETE). */
static void
api_lease(struct api_req *r)
{
	unsigned secs = nc_lease_seconds(api.timeout_s);

	if (!nc_holder_new(r->lease)) {
		r->lease[0] = '\0';
		api_fail(r, 500, "internal", "no random bytes for the number's lease");
		return;
	}
	/* counted from before the query: the database's expiry is no earlier */
	r->lease_deadline = nc_now() + secs;
	api_param(r, "%" PRIu64, r->id);
	api_param(r, "%" PRIu64, r->agency_id);
	api_param_str(r, r->lease);
	api_param_str(r, api.instance);
	api_param_str(r, r->op == OP_RELEASE ? "release" : "change");
	api_param(r, "%u", secs);
	api_param(r, "%" PRIu64, r->token_id);
	api_query(r, nc_lease_sql, api_lease_cb);
}

/* ------------------------------------------------------------------------------------------ */
/* Idempotency-Key (POST /v1/numbers, POST /v1/calls; number_changes.h)                        */

static void api_dispatch(struct api_req *r);

static void
api_finish_cb(struct api_req *r, PGresult *res)
{
	api_finish(r);
}

/* The answer is r->fin_status/fin_body: keep it for its key (or free the key), give the lease
 * back, then send it. */
static void
api_finish(struct api_req *r)
{
	if (r->idem_held) {
		r->idem_held = false;
		api_param(r, "%" PRIu64, r->agency_id);
		api_param_str(r, r->idem_key);
		if (r->provider_sent) {
			/* the provider may have acted: this answer is the key's for 24 h */
			api_param(r, "%d", r->fin_status);
			r->params[r->nparams++] = json_dumps(r->fin_body, JSON_COMPACT);
			api_query(r, nc_idem_store_sql, api_finish_cb);
		} else {
			api_query(r, nc_idem_drop_sql, api_finish_cb);
		}
		return;
	}
	if (r->lease[0]) {
		api_param(r, "%" PRIu64, r->id);
		api_param_str(r, r->lease);
		r->lease[0] = '\0';
		api_query(r, nc_lease_release_sql, api_finish_cb);
		return;
	}
	api_send(r, r->fin_status, r->fin_body);
}

static void
api_idem_cb(struct api_req *r, PGresult *res)
{
	const char *route = r->op == OP_BUY ? "POST /v1/numbers" : "POST /v1/calls";
	json_t *kept;

	if (PQntuples(res) != 1) {
		api_fail(r, 500, "internal", "unexpected answer to the Idempotency-Key claim");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "1") == 0) {
		r->idem_held = true;
		api_dispatch(r);
		return;
	}
	if (PQgetisnull(res, 0, 1)) {
		/* claimed by a request whose claim this statement could not see yet */
		nc_count(NC_IDEM_IN_FLIGHT, 1);
		log_info("api: Idempotency-Key %s: refused, its first request is in flight",
			r->idem_key);
		api_fail(r, 409, "conflict",
			"a request with this Idempotency-Key is in progress: try again later");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 1), route) != 0 || strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
		nc_count(NC_IDEM_MISMATCH, 1);
		log_info("api: Idempotency-Key %s: refused, first used with another request (%s)",
			r->idem_key, PQgetvalue(res, 0, 1));
		api_fail(r, 422, "idempotency_mismatch",
			"this Idempotency-Key was used with another request (%s, another body) "
			"within 24 h: use a new key for a new request",
			PQgetvalue(res, 0, 1));
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 3), "in_flight") == 0) {
		bool locked = strcmp(PQgetvalue(res, 0, 4), "t") == 0;

		nc_count(locked ? NC_IDEM_IN_FLIGHT : NC_IDEM_UNKNOWN, 1);
		log_info("api: Idempotency-Key %s: refused, its first request %s", r->idem_key,
			locked ? "is in flight" : "never finished");
		if (locked)
			api_fail(r, 409, "conflict",
				"a request with this Idempotency-Key is in progress: try again "
				"later");
		else
			api_fail(r, 409, "idempotency_unknown",
				"the first request with this Idempotency-Key did not finish (its "
				"daemon stopped or lost the database): what it did at the provider is "
				"unknown, so it is not repeated; look the number or call up, and use "
				"a new key to try again");
		return;
	}
	kept = json_loads(PQgetvalue(res, 0, 6), 0, NULL);
	if (!kept) {
		api_fail(r, 500, "internal",
			"the answer kept for this Idempotency-Key is unreadable");
		return;
	}
	nc_count(NC_IDEM_REPLAYS, 1);
	log_info("api: Idempotency-Key %s: the first answer (%s) given again", r->idem_key,
		PQgetvalue(res, 0, 5));
	r->replayed = true;
	api_send(r, atoi(PQgetvalue(res, 0, 5)), kept);
}

static void
api_idem_claim(struct api_req *r)
{
	api_param(r, "%" PRIu64, r->agency_id);
	api_param_str(r, r->idem_key);
	api_param_str(r, r->op == OP_BUY ? "POST /v1/numbers" : "POST /v1/calls");
	api_param_str(r, r->idem_digest);
	api_param(r, "%" PRIu64, r->token_id);
	api_param_str(r, api.instance);
	api_param(r, "%u", nc_idem_seconds(api.timeout_s));
	api_query(r, nc_idem_claim_sql, api_idem_cb);
}

/* Keys past their 24 h, deleted every NC_IDEM_EXPIRE_INTERVAL_S (a job without a client). */
static void
api_expire_cb(struct api_req *r, PGresult *res)
{
	uint64_t n = PQntuples(res) == 1 ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;

	nc_count(NC_IDEM_EXPIRED, n);
	if (n)
		log_info("api: %" PRIu64 " idempotency keys past 24 h deleted", n);
	api_free(r);
}

static void
api_expire(evutil_socket_t fd, short what, void *arg)
{
	struct api_req *r = calloc(1, sizeof(*r));
	struct timeval tv = { NC_IDEM_EXPIRE_INTERVAL_S, 0 };

	if (!api_db_up())
		tv.tv_sec = 5; /* soon after it is up */
	evtimer_add(api.expire_ev, &tv);
	if (!api_db_up()) {
		free(r);
		return;
	}
	if (!r) {
		nc_count(NC_IDEM_RECORD_FAILURES, 1);
		log_warning("api: out of memory for the expiry of idempotency keys");
		return;
	}
	r->op = OP_EXPIRE;
	api_query(r, nc_idem_expire_sql, api_expire_cb);
}

/* ------------------------------------------------------------------------------------------ */
/* Request parsing and dispatch                                                                */

/* A positive integer id (callrouted/admin_api.h: the rule callroutectl applies too). */
static bool
api_parse_id(const char *s, uint64_t *out)
{
	return admin_api_parse_id(s, out);
}

/* An integer id from JSON (a number or a numeric string). */
static bool
api_json_id(json_t *v, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = (uint64_t)json_integer_value(v);
		return true;
	}
	return json_is_string(v) && api_parse_id(json_string_value(v), out);
}

/*
 * Strict input: every key of a body is one of its endpoint's fields (below), of a type the field
 * takes; a duplicate key, an unknown field or a wrong type is 400 invalid naming the field,
 * before anything is read or sent.  A new body field is a row here.
 */
#define API_T(t) (1u << (t))

struct api_field {
	const char *name;
	unsigned types;   /* API_T(JSON_...) of each JSON type it takes */
	const char *want; /* what it takes, in the error message */
};

static const struct api_field api_buy_fields[] = {
	{ "account", API_T(JSON_STRING), "the account's slug (a string) is required" },
	{ "area_code", API_T(JSON_STRING) | API_T(JSON_INTEGER), "three digits, the first 2-9" },
	{ "nickname", API_T(JSON_STRING) | API_T(JSON_NULL),
		"1 to 64 printable characters, or null" },
	{ "agent_id", API_T(JSON_INTEGER) | API_T(JSON_STRING) | API_T(JSON_NULL),
		"a positive integer, or null" },
	{ NULL, 0, NULL },
};

static const struct api_field api_patch_fields[] = {
	{ "nickname", API_T(JSON_STRING) | API_T(JSON_NULL),
		"1 to 64 printable characters, or null" },
	{ "agent_id", API_T(JSON_INTEGER) | API_T(JSON_STRING) | API_T(JSON_NULL),
		"a positive integer, or null to unassign" },
	{ NULL, 0, NULL },
};

static const struct api_field api_call_fields[] = {
	{ "agent_id", API_T(JSON_INTEGER) | API_T(JSON_STRING), "a positive integer is required" },
	{ "to", API_T(JSON_STRING), "an E.164 number is required" },
	{ "from", API_T(JSON_STRING) | API_T(JSON_NULL), "an E.164 number, or null" },
	{ "variables", API_T(JSON_OBJECT) | API_T(JSON_NULL),
		"an object of string values (the agent's {{variables}}), or null" },
	{ "metadata", API_T(JSON_OBJECT) | API_T(JSON_NULL), "an object, or null" },
	{ NULL, 0, NULL },
};

static const char *
api_json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction or exponent";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

/* Every key of r->body a field of fields, of a type it takes; false when answered. */
static bool
api_check_fields(struct api_req *r, const struct api_field *fields)
{
	const char *key;
	json_t *v;

	json_object_foreach(r->body, key, v)
	{
		const struct api_field *f = fields;

		while (f->name && strcmp(f->name, key) != 0)
			f++;
		if (!f->name) {
			api_fail(r, 400, "invalid", "unknown field \"%s\"", key);
			return false;
		}
		if (!(f->types & API_T(json_typeof(v)))) {
			api_fail(r, 400, "invalid", "%s: %s (not %s)", f->name, f->want,
				api_json_type_name(v));
			return false;
		}
	}
	return true;
}

/* A body that is not a JSON object (r->body NULL or not an object; jerr from json_loadb when
 * there was a body): answer 400 invalid saying why, naming a duplicate key. */
static void
api_body_refused(struct api_req *r, const json_error_t *jerr)
{
	const char *near;
	json_t *any = NULL;

	/* a scalar is no JSON text to json_loadb without JSON_DECODE_ANY: say what it is */
	if (r->req->body_len > 0 && !r->body)
		any = json_loadb(r->req->body, r->req->body_len,
			JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (r->req->body_len == 0)
		api_fail(r, 400, "invalid", "the body is empty: a JSON object is required");
	else if (r->body || any)
		api_fail(r, 400, "invalid", "the body must be a JSON object, not %s",
			api_json_type_name(r->body ? r->body : any));
	else if (json_error_code(jerr) == json_error_duplicate_key &&
		 (near = strstr(jerr->text, "near '")) != NULL)
		/* near '"key"': the key as it was written */
		api_fail(r, 400, "invalid", "duplicate field %.*s", (int)strlen(near + 6) - 1,
			near + 6);
	else
		api_fail(r, 400, "invalid", "the body is not JSON: %s (line %d, column %d)",
			jerr->text, jerr->line, jerr->column);
	json_decref(any);
}

/* Validate the body of a write; false when answered. */
static bool
api_parse_body(struct api_req *r)
{
	json_t *v;
	uint64_t key;

	switch (r->op) {
	case OP_BUY:
		if (!api_check_fields(r, api_buy_fields))
			return false;
		v = json_object_get(r->body, "account");
		if (!json_is_string(v) || !text_ok(json_string_value(v), 64)) {
			api_fail(r, 400, "invalid", "account: the account's slug is required");
			return false;
		}
		snprintf(r->acct.slug, sizeof(r->acct.slug), "%s", json_string_value(v));
		v = json_object_get(r->body, "area_code");
		if (json_is_integer(v) && json_integer_value(v) >= 200 &&
			json_integer_value(v) <= 999)
			snprintf(r->area_code, sizeof(r->area_code), "%d",
				(int)json_integer_value(v));
		else if (json_is_string(v) && strlen(json_string_value(v)) == 3)
			snprintf(r->area_code, sizeof(r->area_code), "%s", json_string_value(v));
		if (strlen(r->area_code) != 3 || !isdigit((unsigned char)r->area_code[0]) ||
			!isdigit((unsigned char)r->area_code[1]) ||
			!isdigit((unsigned char)r->area_code[2]) || r->area_code[0] < '2') {
			api_fail(r, 400, "invalid", "area_code: three digits, the first 2-9");
			return false;
		}
		break;
	case OP_PATCH:
		if (!api_check_fields(r, api_patch_fields))
			return false;
		if (!json_object_get(r->body, "nickname") &&
			!json_object_get(r->body, "agent_id")) {
			api_fail(r, 400, "invalid",
				"nothing to change: give nickname and/or agent_id");
			return false;
		}
		break;
	case OP_CALL:
		if (!api_check_fields(r, api_call_fields))
			return false;
		if (!api_json_id(json_object_get(r->body, "agent_id"), &r->agent_id)) {
			api_fail(r, 400, "invalid", "agent_id: a positive integer is required");
			return false;
		}
		v = json_object_get(r->body, "to");
		if (!json_is_string(v) ||
			!e164_parse(json_string_value(v), json_string_length(v), &key)) {
			api_fail(r, 400, "invalid", "to: an E.164 number is required");
			return false;
		}
		e164_format(key, r->to, sizeof(r->to));
		v = json_object_get(r->body, "from");
		if (v && !json_is_null(v)) {
			if (!json_is_string(v) ||
				!e164_parse(json_string_value(v), json_string_length(v), &key)) {
				api_fail(r, 400, "invalid", "from: an E.164 number");
				return false;
			}
			e164_format(key, r->from, sizeof(r->from));
		}
		{
			json_t *vars = json_object_get(r->body, "variables");
			json_t *meta = json_object_get(r->body, "metadata");
			char err[256];

			if (!papi_check_call_context(json_is_object(vars) ? vars : NULL,
				    json_is_object(meta) ? meta : NULL, err, sizeof(err))) {
				api_fail(r, 400, "invalid", "%s", err);
				return false;
			}
		}
		return true;
	default:
		return true;
	}
	/* nickname and agent_id, shared by POST and PATCH /v1/numbers */
	v = json_object_get(r->body, "nickname");
	if (v) {
		r->has_nickname = true;
		if (!json_is_null(v)) {
			if (!json_is_string(v) || !text_ok(json_string_value(v), 64)) {
				api_fail(r, 400, "invalid",
					"nickname: 1 to 64 printable characters, or null");
				return false;
			}
			r->nickname = strdup(json_string_value(v));
		}
	}
	v = json_object_get(r->body, "agent_id");
	if (v) {
		r->has_agent = true;
		if (!json_is_null(v) && !api_json_id(v, &r->agent_id)) {
			api_fail(r, 400, "invalid",
				"agent_id: a positive integer, or null to unassign");
			return false;
		}
		if (r->op == OP_BUY && json_is_null(v))
			r->has_agent = false;
	}
	return true;
}

/* A read of api_reads.c: its one query, its answer. */
static void
api_read_cb(struct api_req *r, PGresult *res)
{
	const char *not_found = "not found";
	json_t *o = api_read_answer(r->read, &r->rargs, res, &not_found);

	if (!o) {
		api_fail(r, 404, "not_found", "%s", not_found);
		return;
	}
	api_send(r, 200, o);
}

static void
api_read(struct api_req *r)
{
	const char *params[API_READ_MAX_PARAMS], *sql;
	int n;

	r->rargs.agency_id = r->agency_id;
	r->rargs.client_id = r->client_id;
	r->rargs.id = r->id;
	n = api_read_query(r->read, &r->rargs, &sql, params);
	for (int i = 0; i < n; i++)
		api_param_str(r, params[i]);
	api_query(r, sql, api_read_cb);
}

/*
 * The API's own request headers: each given at most once, and only on the routes that take it
 * (400 invalid naming it otherwise); other headers are HTTP's and are not ours to refuse.
 * A new header is a row here.
 */
static const struct api_header {
	const char *name;
	unsigned ops; /* 1u << op of each route that takes it */
	const char *routes;
} api_headers[] = {
	{ "Idempotency-Key", (1u << OP_BUY) | (1u << OP_CALL),
		"POST /v1/numbers and POST /v1/calls" },
	{ NULL, 0, NULL },
};

/* Check the API's headers of r; false when answered. */
static bool
api_parse_headers(struct api_req *r)
{
	const char *value = NULL;
	char err[256];

	for (const struct api_header *h = api_headers; h->name; h++) {
		int seen = 0;

		for (int i = 0; i < r->req->nhdr; i++)
			if (strcasecmp(r->req->hdr_name[i], h->name) == 0)
				seen++;
		if (seen > 1 || (seen && !(h->ops & (1u << r->op)))) {
			if (strcasecmp(h->name, "Idempotency-Key") == 0)
				nc_count(NC_IDEM_INVALID, 1);
			log_info("api: %s: header %s refused (%s)", r->req->path, h->name,
				seen > 1 ? "given twice" : "not taken here");
			if (seen > 1)
				api_fail(r, 400, "invalid", "header %s given %d times", h->name,
					seen);
			else
				api_fail(r, 400, "invalid", "header %s is taken only by %s",
					h->name, h->routes);
			return false;
		}
	}
	value = wire_header(r->req, "Idempotency-Key");
	if (!value)
		return true;
	if (!nc_key_parse(value, r->idem_key, sizeof(r->idem_key), err, sizeof(err))) {
		r->idem_key[0] = '\0';
		nc_count(NC_IDEM_INVALID, 1);
		log_info("api: %s: Idempotency-Key refused: %s", r->req->path, err);
		api_fail(r, 400, "invalid", "%s", err);
		return false;
	}
	if (!nc_request_digest(r->op == OP_BUY ? "POST /v1/numbers" : "POST /v1/calls", r->body,
		    r->idem_digest)) {
		r->idem_key[0] = '\0';
		api_fail(r, 500, "internal", "out of memory");
		return false;
	}
	return true;
}

static void
api_sync_done(void *arg, int status, json_t *body)
{
	api_send(arg, status, body);
}

static void
api_dispatch(struct api_req *r)
{
	switch (r->op) {
	case OP_SYNC:
		sync_account(r->agency_id, r->acct.slug, &r->sync, api_sync_done, r);
		return;
	case OP_READ:
		api_read(r);
		return;
	case OP_LIST:
		api_list(r);
		return;
	case OP_SHOW:
		api_show(r);
		return;
	case OP_BUY:
		api_param_str(r, r->acct.slug);
		api_param(r, "%" PRIu64, r->agency_id);
		api_query(r,
			"SELECT " SQL_ACCOUNT_COLS " FROM provider_accounts a "
			"WHERE a.slug = $1 AND a.agency_id = $2",
			api_buy_account_cb);
		return;
	case OP_PATCH:
	case OP_RELEASE:
		api_lease(r); /* then api_load_number */
		return;
	case OP_EVENTS:
		api_events(r);
		return;
	case OP_EXPIRE:
		return;
	case OP_ROUTE: {
		int status = 500;
		json_t *o = route_explain(&r->explain, r->agency_id, &status);

		api_send(r, status, o);
		return;
	}
	case OP_CALL: {
		char why[256];

		if (!route_outbound_allowed(r->agent_id, r->agency_id, why, sizeof(why))) {
			api_fail(r, 409, "conflict", "%s", why);
			return;
		}
	}
		api_param(r, "%" PRIu64, r->agent_id);
		api_param(r, "%" PRIu64, r->agency_id);
		api_query(r,
			"SELECT ag.provider, ag.provider_agent_id, n.id, n.e164, n.provider_number_id, " SQL_ACCOUNT_COLS
			" FROM agents ag "
			"LEFT JOIN phone_numbers n ON n.agent_id = ag.id AND n.status = 'active' "
			"LEFT JOIN provider_accounts a ON a.id = n.account_id "
			"WHERE ag.id = $1 AND ag.agency_id = $2 ORDER BY n.id",
			api_call_agent_cb);
		return;
	}
}

static void api_authed(struct api_req *r);

static void
api_auth_cb(struct api_req *r, PGresult *res)
{
	struct api_token t;

	if (PQntuples(res) != 1) {
		api_fail(r, 401, "unauthorized", "unknown or revoked token");
		return;
	}
	r->agency_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	r->client_id = PQgetisnull(res, 0, 1) ? 0 : strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	r->token_id = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	t = (struct api_token){ r->agency_id, r->client_id, r->token_id };
	api_tokens_put(r->token_sha256, &t, r->tok_epoch);
	api_authed(r);
}

/* The token is good (r->agency_id, client_id, token_id): the route's steps. */
static void
api_authed(struct api_req *r)
{
	if (r->client_id && !r->read_only) {
		api_fail(r, 403, "forbidden",
			r->req->method == WIRE_GET ?
				"client portal tokens cannot read this (agency tokens only)" :
				"client portal tokens are read-only");
		return;
	}
	if (r->idem_key[0]) {
		api_idem_claim(r); /* then api_dispatch, or the kept answer */
		return;
	}
	api_dispatch(r);
}

/* A query parameter of GET /v1/numbers: its value into r; false (nothing answered) when the
 * value is not of its form. */
static bool
api_list_param(struct api_req *r, const char *key, const char *value)
{
	uint64_t id;

	if (strcmp(key, "client") == 0)
		return api_parse_id(value, &id) && (r->f_client = strdup(value)) != NULL;
	if (strcmp(key, "agent") == 0)
		return api_parse_id(value, &id) && (r->f_agent = strdup(value)) != NULL;
	if (strcmp(key, "provider") == 0)
		return provider_from_name(value, strlen(value), &(enum provider_id){ 0 }) &&
		       (r->f_provider = strdup(value)) != NULL;
	if (strcmp(key, "status") == 0)
		return (strcmp(value, "active") == 0 || strcmp(value, "released") == 0 ||
			       strcmp(value, "pending") == 0 || strcmp(value, "failed") == 0) &&
		       (r->f_status = strdup(value)) != NULL;
	if (strcmp(key, "after") == 0 && api_parse_id(value, &id)) {
		r->after = id;
		return true;
	}
	if (strcmp(key, "limit") == 0 && api_parse_id(value, &id) && id <= API_LIST_MAX) {
		r->limit = (long)id;
		return true;
	}
	if (strcmp(key, "e164") == 0) {
		/* "+1415" (an unescaped '+' arrives as a space: taken as '+'), or digits */
		size_t plus = value[0] == '+' || value[0] == ' ', n = strlen(value + plus);

		if (n < 1 || n > 15 || strspn(value + plus, "0123456789") != n)
			return false;
		if (asprintf(&r->f_e164, "%s%s", plus ? "+" : "", value + plus) < 0) {
			r->f_e164 = NULL;
			return false;
		}
		if (plus) {
			/* the range's end: the prefix's digits + 1 ("+1419" -> "+142"); none for 9s
			 */
			char *hi = strdup(r->f_e164);
			size_t k = strlen(hi);

			if (!hi)
				return false;
			while (k > 1 && hi[k - 1] == '9')
				hi[--k] = '\0';
			if (k > 1) {
				hi[k - 1]++;
				r->f_e164_hi = hi;
			} else {
				free(hi);
			}
		}
		return true;
	}
	return false;
}

static const char *const api_list_params[] = { "client", "agent", "provider", "status", "after",
	"limit", "e164", NULL };

/* Where in q a key (as written, before any %-decoding) repeats an earlier one, or NULL: what
 * wire_query_parse refused, named. */
static const char *
api_query_repeated(const char *q)
{
	for (const char *k = q; k && *k; k = strchr(k, '&'), k = k ? k + 1 : NULL) {
		size_t n = strcspn(k, "=&");

		for (const char *p = q; p < k; p = strchr(p, '&') + 1)
			if (strcspn(p, "=&") == n && strncmp(p, k, n) == 0)
				return n ? k : NULL;
	}
	return NULL;
}

/* A flag of the provider sync's routes: POST /v1/accounts/{slug}/sync takes dry_run and
 * repair, DELETE /v1/numbers/{id} takes force (true or false); false when answered. */
static bool
api_sync_param(struct api_req *r, const char *key, const char *value)
{
	bool *flag = NULL, v;

	if (r->op == OP_SYNC && strcmp(key, "dry_run") == 0)
		flag = &r->sync.dry_run;
	else if (r->op == OP_SYNC && strcmp(key, "repair") == 0)
		flag = &r->sync.repair;
	else if (r->op == OP_RELEASE && strcmp(key, "force") == 0)
		flag = &r->force;
	if (!flag) {
		api_fail(r, 400, "invalid", "unknown query parameter \"%s\" (%s)", key,
			r->op == OP_SYNC ? "dry_run, repair" : "force");
		return false;
	}
	if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
		api_fail(r, 400, "invalid", "bad query parameter \"%s\" (true or false)", key);
		return false;
	}
	v = strcmp(value, "true") == 0;
	*flag = v;
	return true;
}

/* The body of POST /v1/accounts/{slug}/sync: none, or {"dry_run"?: bool, "repair"?: bool}
 * (the query's flags win where both give one); false when answered. */
static bool
api_sync_body(struct api_req *r)
{
	static const struct api_field fields[] = {
		{ "dry_run", API_T(JSON_TRUE) | API_T(JSON_FALSE), "true or false" },
		{ "repair", API_T(JSON_TRUE) | API_T(JSON_FALSE), "true or false" },
		{ NULL, 0, NULL },
	};
	json_error_t jerr;

	if (r->req->body_len == 0)
		return true;
	r->body = json_loadb(r->req->body, r->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(r->body)) {
		api_body_refused(r, &jerr);
		return false;
	}
	if (!api_check_fields(r, fields))
		return false;
	r->sync.dry_run = json_is_true(json_object_get(r->body, "dry_run"));
	r->sync.repair = json_is_true(json_object_get(r->body, "repair"));
	return true;
}

/* The query string of any route (only GET /v1/numbers takes one), and no body where the route
 * takes none; false when answered. */
static bool
api_parse_query(struct api_req *r)
{
	static const char forms[] =
		"client, agent: ids; provider: retell, vapi or bland; "
		"status: active, released, pending or failed; e164: +digits "
		"(a prefix) or digits (a part), at most 15; after: a number id; "
		"limit: 1 to";
	struct wire_query kv;
	bool ok = true;

	r->limit = API_LIST_DEFAULT;
	api_read_args_init(&r->rargs);
	route_explain_q_init(&r->explain);
	if (r->op != OP_BUY && r->op != OP_PATCH && r->op != OP_CALL && r->op != OP_SYNC &&
		r->req->body_len > 0) {
		api_fail(r, 400, "invalid", "%s takes no body",
			r->op == OP_RELEASE ? "DELETE" : "GET");
		return false;
	}
	if (!r->req->query)
		return true;
	if (!wire_query_parse(r->req->query, &kv)) {
		const char *q = r->req->query, *k = api_query_repeated(q);

		if (k)
			api_fail(r, 400, "invalid", "query parameter \"%.*s\" given twice",
				(int)strcspn(k, "=&"), k);
		else
			api_fail(r, 400, "invalid",
				"unreadable query string (key=value pairs, "
				"each key once, valid %%-escapes)");
		return false;
	}
	for (int i = 0; i < kv.n && ok && r->op == OP_READ; i++) {
		char err[400];

		if (!api_read_param(r->read, &r->rargs, kv.key[i], kv.value[i], err, sizeof(err))) {
			api_fail(r, 400, "invalid", "%s", err);
			ok = false;
		}
	}
	for (int i = 0; i < kv.n && ok && r->op != OP_READ; i++) {
		const char *key = kv.key[i];
		size_t k = 0;
		const char *why;

		if (r->op == OP_ROUTE) {
			if (!route_explain_param(&r->explain, key, kv.value[i], &why)) {
				api_fail(r, 400, "invalid", "%s", why);
				ok = false;
			}
			continue;
		}
		if (r->op == OP_SYNC || r->op == OP_RELEASE) {
			ok = api_sync_param(r, key, kv.value[i]);
			continue;
		}
		if (r->op == OP_EVENTS) { /* pages only: after (an event id), limit */
			if (strcmp(key, "after") != 0 && strcmp(key, "limit") != 0) {
				api_fail(r, 400, "invalid",
					"unknown query parameter \"%s\" (after, limit)", key);
				ok = false;
			} else if (!api_list_param(r, key, kv.value[i])) {
				api_fail(r, 400, "invalid",
					"bad query parameter \"%s\" (after: an event id; limit: 1 "
					"to %d)",
					key, API_LIST_MAX);
				ok = false;
			}
			continue;
		}
		while (r->op == OP_LIST && api_list_params[k] &&
			strcmp(api_list_params[k], key) != 0)
			k++;
		if (r->op != OP_LIST || !api_list_params[k]) {
			if (r->op == OP_LIST)
				api_fail(r, 400, "invalid",
					"unknown query parameter \"%s\" "
					"(client, agent, provider, status, after, limit, e164)",
					key);
			else
				api_fail(r, 400, "invalid",
					"unknown query parameter \"%s\" "
					"(this endpoint takes none)",
					key);
			ok = false;
		} else if (!api_list_param(r, key, kv.value[i])) {
			api_fail(r, 400, "invalid", "bad query parameter \"%s\" (%s %d)", key,
				forms, API_LIST_MAX);
			ok = false;
		}
	}
	wire_query_clear(&kv);
	return ok;
}

/* The /v1 routes: {method, path, op, needs_body, read_only, read}; a path ending in "{id}" takes
 * an id as its last segment (admin.c's table sends everything under /v1/ here); OP_READ rows
 * name their read (api_reads.c). */
static const struct api_route {
	enum wire_method method;
	const char *path;
	enum api_op op;  /* the step after authentication: api_dispatch */
	bool needs_body; /* a JSON object */
	bool read_only;  /* changes nothing: a client portal token may use it */
	const struct api_read *read;
} api_routes[] = {
	{ WIRE_GET, "/v1/numbers", OP_LIST, false, true, NULL },
	{ WIRE_POST, "/v1/numbers", OP_BUY, true, false, NULL },
	{ WIRE_GET, "/v1/numbers/{id}", OP_SHOW, false, true, NULL },
	{ WIRE_PATCH, "/v1/numbers/{id}", OP_PATCH, true, false, NULL },
	{ WIRE_DELETE, "/v1/numbers/{id}", OP_RELEASE, false, false, NULL },
	{ WIRE_POST, "/v1/calls", OP_CALL, true, false, NULL },
	{ WIRE_GET, "/v1/calls", OP_READ, false, true, &api_read_calls },
	{ WIRE_GET, "/v1/calls/{id}", OP_READ, false, true, &api_read_call },
	{ WIRE_GET, "/v1/agents", OP_READ, false, true, &api_read_agents },
	{ WIRE_GET, "/v1/clients", OP_READ, false, true, &api_read_clients },
	/* provider accounts are the agency's configuration: agency tokens only */
	{ WIRE_GET, "/v1/accounts", OP_READ, false, false, &api_read_accounts },
	{ WIRE_GET, "/v1/usage", OP_READ, false, true, &api_read_usage },
	{ WIRE_GET, "/v1/numbers/{id}/events", OP_EVENTS, false, true, NULL },
	{ WIRE_POST, "/v1/accounts/{slug}/sync", OP_SYNC, false, false, NULL },
	{ WIRE_GET, "/v1/route", OP_ROUTE, false, false, NULL },
};

#define API_NROUTES (sizeof(api_routes) / sizeof(api_routes[0]))

/* The row of r's method and path; NULL after answering 404 or 405. */
static const struct api_route *
api_route(struct api_req *r)
{
	const char *path = r->req->path;
	bool path_known = false;

	for (size_t i = 0; i < API_NROUTES; i++) {
		const struct api_route *rt = &api_routes[i];
		const char *id = strstr(rt->path, "{id}"), *slug = strstr(rt->path, "{slug}");

		if (slug) {
			/* /v1/accounts/{slug}/sync: an account's slug, then the rest of the path */
			size_t n = (size_t)(slug - rt->path), tail = strlen(slug + 6),
			       len = strlen(path);

			if (len <= n + tail || strncmp(path, rt->path, n) != 0 ||
				strcmp(path + len - tail, slug + 6) != 0)
				continue;
			if (len - n - tail >= sizeof(r->acct.slug) ||
				strspn(path + n, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
					len - n - tail) {
				api_fail(r, 404, "not_found", "no such account");
				return NULL;
			}
			snprintf(r->acct.slug, sizeof(r->acct.slug), "%.*s", (int)(len - n - tail),
				path + n);
		} else if (id) {
			size_t n = (size_t)(id - rt->path), len = strlen(path);
			const char *suffix = id + 4; /* after {id}: "" or "/events" */
			size_t sl = strlen(suffix), seg;
			char digits[24];

			if (strncmp(path, rt->path, n) != 0 || len < n + sl ||
				strcmp(path + len - sl, suffix) != 0)
				continue;
			seg = len - sl - n; /* the {id} segment */
			if (memchr(path + n, '/', seg))
				continue; /* another route's (a segment more) */
			snprintf(digits, sizeof(digits), "%.*s", (int)seg, path + n);
			if (seg >= sizeof(digits) || !api_parse_id(digits, &r->id)) {
				api_fail(r, 404, "not_found",
					strncmp(rt->path, "/v1/calls/", 10) == 0 ?
						"no such call" :
						"no such number");
				return NULL;
			}
		} else if (strcmp(path, rt->path) != 0) {
			continue;
		}
		path_known = true;
		if (rt->method == r->req->method)
			return rt;
	}
	if (path_known)
		api_fail(r, 405, "method_not_allowed", "method not allowed here");
	else
		api_fail(r, 404, "not_found", "no such endpoint");
	return NULL;
}

void
api_handle(struct wire_req *req)
{
	const char *auth = wire_header(req, "Authorization");
	struct api_req *r = calloc(1, sizeof(*r));
	const struct api_route *rt;

	if (!r) {
		static const char oom[] = "{\"error\":{\"code\":\"unavailable\",\"message\":"
					  "\"out of memory\"}}";

		wire_reply(req, 503, "application/json", oom, sizeof(oom) - 1,
			"Cache-Control: no-store\r\n");
		return;
	}
	r->req = req;
	rt = api_route(r);
	if (!rt)
		return;
	r->op = rt->op;
	r->read_only = rt->read_only;
	r->read = rt->read;
	/* authenticate: Bearer token, looked up by its SHA-256 */
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !text_ok(auth + 7, ADMIN_TOKEN_MAX)) {
		r->www_auth = true;
		api_fail(r, 401, "unauthorized", "Authorization: Bearer <token> is required");
		return;
	}
	admin_token_sha256_hex(auth + 7, r->token_sha256);
	/* body */
	if (rt->needs_body) {
		json_error_t jerr;

		r->body = req->body_len ? json_loadb(req->body, req->body_len,
						  JSON_REJECT_DUPLICATES, &jerr) :
					  NULL;
		if (!json_is_object(r->body)) {
			api_body_refused(r, &jerr);
			return;
		}
		if (!api_parse_body(r))
			return;
	}
	if (r->op == OP_SYNC && !api_sync_body(r))
		return;
	if (!api_parse_query(r) || !api_parse_headers(r))
		return;
	{
		/* a token checked a moment ago and not changed since (api_tokens.h) */
		struct api_token t;

		if (api_tokens_get(r->token_sha256, &t)) {
			r->agency_id = t.agency_id;
			r->client_id = t.client_id;
			r->token_id = t.token_id;
			api_authed(r);
			return;
		}
	}
	r->tok_epoch = api_tokens_epoch();
	api_param_str(r, r->token_sha256);
	api_query_stmt(r, "api_token", SQL_TOKEN, api_auth_cb);
}

bool
api_setup(struct event_base *base, const struct config *cfg)
{
	api.base = base;
	STAILQ_INIT(&api.queue);
	api.public_url = strdup(cfg->public_url);
	api.instance = strdup(cfg->instance_name);
	api.expire_ev = evtimer_new(base, api_expire, NULL);
	if (!api.instance || !api.expire_ev)
		return false;
	api.timeout_s = (int)((cfg->provider_timeout_ms + 999) / 1000);
	api.ndbc = cfg->admin_db_connections < 1          ? 1 :
		   cfg->admin_db_connections > API_DB_MAX ? API_DB_MAX :
							    cfg->admin_db_connections;
	for (int i = 0; i < api.ndbc; i++)
		if (!(api.dbc[i].conn = db_conn_new_on(base, &api_db_ops)))
			return false;
	if (!api.public_url || !api_tokens_setup(base, cfg->admin_token_cache_ms))
		return false;
	return httpc_setup(base, cfg->provider_ca_file) && sync_setup(base, cfg);
}

void
api_start(void)
{
	struct timeval tv = { 2, 0 }; /* the first expiry soon after start */

	for (int i = 0; i < api.ndbc; i++)
		db_conn_start(api.dbc[i].conn);
	api_tokens_start();
	evtimer_add(api.expire_ev, &tv);
	sync_start();
}

void
api_cleanup(void)
{
	struct api_req *r;

	while ((r = STAILQ_FIRST(&api.queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&api.queue, link);
		api_free(r);
	}
	for (int i = 0; i < api.ndbc; i++) {
		if (api.dbc[i].in_flight)
			api_free(api.dbc[i].in_flight);
		api.dbc[i].in_flight = NULL;
	}
	sync_cleanup();
	for (int i = 0; i < api.ndbc; i++) {
		db_conn_release(api.dbc[i].conn);
		api.dbc[i].conn = NULL;
	}
	api.ndbc = 0;
	api_tokens_cleanup();
	httpc_cleanup();
	free(api.public_url);
	api.public_url = NULL;
	free(api.instance);
	api.instance = NULL;
	if (api.expire_ev)
		event_free(api.expire_ev);
	api.expire_ev = NULL;
}
