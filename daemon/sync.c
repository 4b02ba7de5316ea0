/* sync.c: the provider sync: list, import, drift, repair; the periodic drift check, its metrics. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <jansson.h>

#include "callrouted/config.h"
#include "callrouted/e164.h"
#include "callrouted/log.h"
#include "bland_blocks.h"
#include "db.h"
#include "httpc.h"
#include "number_changes.h"
#include "provider_api.h"
#include "sync.h"

/*
 * One sync of one account, on the admin thread, a chain of steps like the admin API's (never
 * blocking: libpq async on the sync's own connection, the provider through httpc.c):
 *
 *   1. the account (by slug, in the caller's agency), our numbers of it (active and pending)
 *      and our agents of its agency and provider;
 *   2. every page of the provider's numbers, then of its agents (provider_api.h, list_*);
 *   3. the plan: what the provider has that we do not (imported: numbers unassigned, or
 *      assigned where the provider binds the number to one agent we know; agents by id and
 *      name), pending purchases it now lists (adopted) or does not have (failed), agents it
 *      no longer has (inactive: they take no calls) or has again, and every drift (below);
 *   4. unless dry_run (the periodic check: dry_run, but pending purchases are still adopted
 *      or failed), the plan's database writes one at a time, and with repair the
 *      provider updates that make the provider match us (the assign path's update requests,
 *      provider_api.h update), one request at a time;
 *   5. the report (the answer), and the drift gauges of the account.
 *
 * Drift, per listed number that is active here:
 *   webhook         the URL the provider calls for it is not ours (all three);
 *   vapi_owner      an assistantId, squadId or workflowId is set at Vapi: Vapi then never
 *                   asks us (not repairable through Vapi's API: its dashboard);
 *   credential      Vapi: its server.credentialId is not the account's webhook credential
 *                   (or there is none at all: Vapi's requests are unsigned, we refuse them);
 *   retell_agents   Retell: its inbound_agents is not [our agent] (or [] when unassigned);
 *   bland_pathway   Bland: its pathway_id is not our agent's pathway (or set when
 *                   unassigned);
 *   released        active here, but the provider does not list it (released there:
 *                   DELETE /v1/numbers/{id}?force=true releases it here);
 * and untracked (a number the provider has and we do not: imported unless dry_run) and
 * agent_missing (an agent of ours the provider does not list: inactive unless dry_run, or,
 * when the agency has other accounts of that provider, which may hold it, reported only, and
 * only for agents this account's numbers are assigned to; or reported only
 * when the provider lists no agent at all, which looks more like a wrong key than a purge).
 *
 * A sync holds no transaction and no lock across provider calls: each write is one statement
 * that checks the row is still as read (a pending row still pending, an agent's flag), so a
 * concurrent change wins and the next sync sees it.
 */

#define SYNC_MAX_PARAMS 10
#define SYNC_MAX_PAGES 1000
#define SYNC_PENDING_GRACE_S 600 /* a pending purchase without an id: failed after this */

enum sync_kind {
	K_WEBHOOK,
	K_VAPI_OWNER,
	K_CREDENTIAL,
	K_RETELL_AGENTS,
	K_BLAND_PATHWAY,
	K_RELEASED,
	K_UNTRACKED,
	K_AGENT_MISSING,
	K_COUNT
};

static const char *const sync_kind_names[K_COUNT] = { "webhook", "vapi_owner", "credential",
	"retell_agents", "bland_pathway", "released", "untracked", "agent_missing" };

struct sync_job;
typedef void (*sync_db_fn)(struct sync_job *j, PGresult *res);

enum act_kind { ACT_SQL, ACT_REPAIR };

struct sync_action {
	enum act_kind kind;
	const char *sql;
	char *params[SYNC_MAX_PARAMS];
	int nparams;
	json_t *item; /* its report entry (borrowed from the report) */
	/* ACT_REPAIR */
	char e164[E164_BUFSIZE];
	char *pnid, *agent_pid;
	json_t *id_from;    /* a number imported by this sync: its import's entry (its number_id) */
	uint64_t number_id; /* once known */
	bool leased;        /* the number's lease (number_changes.h) is ours */
};

struct sync_job {
	uint64_t agency_id; /* 0: the periodic check (any agency) */
	char slug[80];
	struct sync_opts o;
	bool periodic;
	sync_done_fn done;
	void *arg;

	/* the account */
	uint64_t acct_id, acct_agency;
	enum provider_id provider;
	char *api_key, *secret, *base_url, *cred;
	long other_accounts;
	char webhook[600]; /* ours; "" without public_url */

	PGresult *ours, *our_agents;
	json_t *p_numbers, *p_agents;
	char cursor[512];
	unsigned pages;
	bool listing_agents;

	json_t *report, *drift, *changes;
	json_t *last_take; /* the entry of the last import or adoption planned */
	char holder[NC_HOLDER_LEN + 1];
	unsigned counts[K_COUNT];
	struct sync_action *acts;
	size_t n_acts, cap_acts, next_act;

	/* the query in flight */
	const char *sql;
	char *params[SYNC_MAX_PARAMS];
	int nparams;
	sync_db_fn next;
	PGresult *res;

	/* the provider request in flight */
	struct papi_request preq;
	void (*pnext)(struct sync_job *j, const struct httpc_response *resp);
	struct papi_change change;
	unsigned step;
	bool preq_last;

	STAILQ_ENTRY(sync_job) link;
};

struct sync_gauge {
	char slug[80];
	enum provider_id provider;
	unsigned counts[K_COUNT];
};

static struct {
	struct event_base *base;
	struct db_conn *conn;
	STAILQ_HEAD(, sync_job) queue;
	struct sync_job *running; /* the job whose steps run (one at a time) */
	bool in_flight;           /* its query is on the connection */
	struct event *timer, *kick;
	int64_t interval_ms;
	char *public_url, *instance;
	int timeout_s;
	bool round; /* the periodic round's account list is being read */
	struct sync_gauge *gauges;
	size_t n_gauges;
	uint64_t runs, errors;
} sy;

static void sync_next_job(void);

/* ------------------------------------------------------------------------------------------ */
/* Jobs and answers                                                                            */

static void
sync_job_free(struct sync_job *j)
{
	db_params_free(j->params, &j->nparams);
	PQclear(j->res);
	PQclear(j->ours);
	PQclear(j->our_agents);
	json_decref(j->p_numbers);
	json_decref(j->p_agents);
	json_decref(j->report);
	for (size_t i = 0; i < j->n_acts; i++) {
		db_params_free(j->acts[i].params, &j->acts[i].nparams);
		free(j->acts[i].pnid);
		free(j->acts[i].agent_pid);
	}
	free(j->acts);
	papi_request_clear(&j->preq);
	free(j->api_key);
	free(j->secret);
	free(j->base_url);
	free(j->cred);
	free(j);
}

/* The job is over: answer (body stolen), then the next job. */
static void
sync_finish(struct sync_job *j, int status, json_t *body)
{
	if (j->done)
		j->done(j->arg, status, body);
	else
		json_decref(body);
	if (sy.running == j)
		sy.running = NULL;
	sync_job_free(j);
	sync_next_job();
}

static void sync_fail(struct sync_job *j, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
sync_fail(struct sync_job *j, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (status != 404) {
		sy.errors++;
		log_warning("sync: %s%s: %s: %s", j->periodic ? "periodic check of " : "",
			log_esc(j->slug), code, log_esc(msg));
	}
	sync_finish(j, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* ------------------------------------------------------------------------------------------ */
/* Database                                                                                    */

static void
sync_pump(struct db_conn *c)
{
	struct sync_job *j = sy.running;

	if (!j || sy.in_flight || !j->sql || !db_idle(c))
		return;
	sy.in_flight = true;
	if (!db_send(c, j->sql, j->nparams, (const char *const *)j->params)) {
		sy.in_flight = false;
		j->sql = NULL;
		sync_fail(j, 503, "database_unavailable", "the database is not reachable");
	}
}

static void
sync_query(struct sync_job *j, const char *sql, sync_db_fn next)
{
	if (!db_conn_up(sy.conn)) {
		db_params_free(j->params, &j->nparams);
		sync_fail(j, 503, "database_unavailable",
			"the database is not reachable; try again");
		return;
	}
	j->sql = sql;
	j->next = next;
	sync_pump(sy.conn);
}

static void
sync_db_result(struct db_conn *c, PGresult *res)
{
	struct sync_job *j = sy.running;

	if (!j || !sy.in_flight)
		return;
	PQclear(j->res);
	j->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
}

static void
sync_db_done(struct db_conn *c, bool ok)
{
	struct sync_job *j = sy.running;
	PGresult *res;
	sync_db_fn next;

	if (!j || !sy.in_flight)
		return;
	sy.in_flight = false;
	j->sql = NULL;
	db_params_free(j->params, &j->nparams);
	res = j->res;
	j->res = NULL;
	next = j->next;
	if (!ok) {
		/* NULL result: the step decides (an action's failure does not end the sync) */
		PQclear(res);
		res = NULL;
	}
	next(j, res);
	PQclear(res);
}

static void
sync_db_connected(struct db_conn *c)
{
}

static void
sync_db_disconnected(struct db_conn *c)
{
	struct sync_job *j = sy.running;

	if (j && sy.in_flight) {
		sy.in_flight = false;
		j->sql = NULL;
		sync_fail(j, 503, "database_unavailable", "the database connection was lost");
	}
}

static const struct db_conn_ops sync_db_ops = {
	.name = "sync",
	.connected = sync_db_connected,
	.disconnected = sync_db_disconnected,
	.notify = NULL,
	.result = sync_db_result,
	.done = sync_db_done,
	.pump = sync_pump,
};

/* ------------------------------------------------------------------------------------------ */
/* Provider                                                                                    */

static void
sync_ctx(struct sync_job *j, struct papi_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->api_key = j->api_key;
	ctx->webhook_secret = j->secret;
	ctx->slug = j->slug;
	ctx->webhook_credential_id = j->cred;
	ctx->webhook_url = *j->webhook ? j->webhook : NULL;
}

static void
sync_http_done(void *arg, const struct httpc_response *resp)
{
	struct sync_job *j = arg;

	j->pnext(j, resp);
}

static bool
sync_send(struct sync_job *j, void (*next)(struct sync_job *, const struct httpc_response *))
{
	const struct provider_api *pa = provider_api_get(j->provider);
	const char *base = j->base_url && *j->base_url ? j->base_url : pa->default_base_url;

	j->pnext = next;
	return httpc_request(base, &j->preq, sy.timeout_s, sync_http_done, j);
}

/* A provider answer as a message ("" when it is a 2xx); *status the HTTP status to answer. */
static bool
sync_http_ok(struct sync_job *j, const struct httpc_response *resp, char *msg, size_t len,
	int *status, const char **code)
{
	const struct provider_api *pa = provider_api_get(j->provider);
	char pm[300] = "";

	*msg = '\0';
	if (resp->failure == HTTPC_TIMEOUT) {
		snprintf(msg, len, "%s: %s", provider_name(j->provider), resp->detail);
		*status = 504;
		*code = "provider_timeout";
		return false;
	}
	if (resp->failure != HTTPC_OK) {
		snprintf(msg, len, "%s: %s", provider_name(j->provider), resp->detail);
		*status = 502;
		*code = "provider_unreachable";
		return false;
	}
	if (resp->status >= 200 && resp->status < 300)
		return true;
	pa->error_message(resp->body, resp->len, pm, sizeof(pm));
	snprintf(msg, len, "%s answered %d: %s", provider_name(j->provider), resp->status,
		*pm ? pm : "(no message)");
	*status = resp->status >= 400 && resp->status < 500 ? 422 : 502;
	*code = resp->status >= 400 && resp->status < 500 ? "provider_refused" : "provider_error";
	return false;
}

/* ------------------------------------------------------------------------------------------ */
/* The report                                                                                  */

static void
sync_drift(struct sync_job *j, enum sync_kind k, const char *nid, const char *e164,
	const char *detail, bool repairable)
{
	json_t *o = json_pack("{s:s,s:s*,s:s,s:b}", "kind", sync_kind_names[k], "e164", e164,
		"detail", detail, "repairable", repairable);

	if (!o)
		return;
	if (nid)
		json_object_set_new(o, "number_id", json_integer(strtoll(nid, NULL, 10)));
	json_array_append_new(j->drift, o);
	j->counts[k]++;
}

static struct sync_action *
sync_act(struct sync_job *j, enum act_kind kind, const char *sql, json_t *item)
{
	struct sync_action *a;

	if (j->n_acts == j->cap_acts) {
		size_t cap = j->cap_acts ? 2 * j->cap_acts : 16;
		struct sync_action *n = realloc(j->acts, cap * sizeof(*n));

		if (!n)
			return NULL;
		j->acts = n;
		j->cap_acts = cap;
	}
	a = &j->acts[j->n_acts++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->sql = sql;
	a->item = item;
	return a;
}

/* A change of the plan: reported always, applied (an action) unless dry_run. */
static json_t *
sync_change(struct sync_job *j, const char *action)
{
	json_t *o = json_pack("{s:s,s:b}", "action", action, "applied", false);

	if (o)
		json_array_append_new(j->changes, o);
	return o;
}

/* ------------------------------------------------------------------------------------------ */
/* The plan                                                                                    */

static const char *
sync_col(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static bool
sync_streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* our numbers: 0 id, 1 e164, 2 provider_number_id, 3 status, 4 agent pid, 5 agent_id,
 * 6 age in seconds, 7 nickname, 8 the pid of the agent a pending purchase asked for */
static int
sync_find_ours(struct sync_job *j, const char *id, const char *e164, bool *used)
{
	int n = PQntuples(j->ours);

	for (int i = 0; i < n; i++)
		if (!used[i] && ((id && sync_streq(sync_col(j->ours, i, 2), id)) ||
					(e164 && sync_streq(sync_col(j->ours, i, 1), e164))))
			return i;
	return -1;
}

/* The drift of one listed number that is active here (nid NULL: imported by this sync), bound
 * to our agent pid (NULL: unassigned). */
static void
sync_compare(struct sync_job *j, json_t *pn, const char *nid, const char *e164, const char *pnid,
	const char *pid)
{
	const char *hook = json_string_value(json_object_get(pn, "webhook"));
	const char *owner = json_string_value(json_object_get(pn, "owner"));
	const char *cred = json_string_value(json_object_get(pn, "credential"));
	json_t *agents = json_object_get(pn, "agents");
	bool repair = false;
	char d[700];

	if (*j->webhook && !sync_streq(hook, j->webhook)) {
		snprintf(d, sizeof(d), "the provider calls %s, not our %s", hook ? hook : "nothing",
			j->webhook);
		sync_drift(j, K_WEBHOOK, nid, e164, d, true);
		repair = true;
	}
	switch (j->provider) {
	case PROVIDER_VAPI:
		if (owner) {
			snprintf(d, sizeof(d),
				"%s is set at vapi: vapi never asks our webhook; remove it in Vapi's "
				"dashboard (the API cannot clear it)",
				owner);
			sync_drift(j, K_VAPI_OWNER, nid, e164, d, false);
		}
		if (j->cred && *j->cred && !sync_streq(cred, j->cred)) {
			snprintf(d, sizeof(d), "server.credentialId is %s, not the account's %s",
				cred ? cred : "missing", j->cred);
			sync_drift(j, K_CREDENTIAL, nid, e164, d, !owner);
			repair = true;
		} else if (!cred && !(j->cred && *j->cred)) {
			sync_drift(j, K_CREDENTIAL, nid, e164,
				"no server.credentialId: vapi's requests are unsigned and refused here; "
				"set the account's webhook_credential_id",
				false);
		}
		if (owner)
			repair = false; /* vapi_update refuses it: nothing the API can do */
		break;
	case PROVIDER_RETELL:
	case PROVIDER_BLAND: {
		size_t n = json_array_size(agents);
		const char *first = json_string_value(json_array_get(agents, 0));

		if ((pid && (n != 1 || !sync_streq(first, pid))) || (!pid && n > 0)) {
			snprintf(d, sizeof(d), "%s %s, ours %s",
				j->provider == PROVIDER_RETELL ? "inbound_agents is" :
								 "pathway_id is",
				n == 0 ? "empty" :
				n == 1 ? first :
					 "several agents",
				pid ? pid : "none (unassigned)");
			sync_drift(j,
				j->provider == PROVIDER_RETELL ? K_RETELL_AGENTS : K_BLAND_PATHWAY,
				nid, e164, d, true);
			repair = true;
		}
		break;
	}
	default:
		break;
	}
	if (repair && j->o.repair && !j->o.dry_run && *j->webhook) {
		json_t *item = sync_change(j, "repair");
		struct sync_action *a = item ? sync_act(j, ACT_REPAIR, NULL, item) : NULL;

		if (!a)
			return;
		if (nid)
			json_object_set_new(item, "number_id",
				json_integer(strtoll(nid, NULL, 10)));
		json_object_set_new(item, "e164", json_string(e164));
		snprintf(a->e164, sizeof(a->e164), "%s", e164);
		a->pnid = pnid ? strdup(pnid) : NULL;
		a->agent_pid = pid ? strdup(pid) : NULL;
		if (nid)
			a->number_id = strtoull(nid, NULL, 10);
		else
			a->id_from = j->last_take; /* imported by this sync, just before */
	}
}

#define SQL_AGENT_OF                                                                               \
	"(SELECT id FROM agents WHERE agency_id = $1 AND provider = $3 AND provider_agent_id = $7)"

static const char sql_import[] =
	"INSERT INTO phone_numbers (agency_id, account_id, provider, e164, provider_number_id, "
	"nickname, agent_id, status, provider_note) VALUES ($1, $2, $3, $4, $5, $6, " SQL_AGENT_OF
	", $8, $9) RETURNING id";
static const char sql_adopt[] =
	"UPDATE phone_numbers SET e164 = $4, provider_number_id = $5, "
	"nickname = coalesce(nickname, $6), agent_id = CASE WHEN $8 = 'active' THEN "
	"coalesce(requested_agent_id, " SQL_AGENT_OF ") END, "
	"requested_agent_id = CASE WHEN $8 = 'active' THEN NULL ELSE requested_agent_id END, "
	"status = $8, provider_note = $9 "
	"WHERE id = $10 AND agency_id = $1 AND account_id = $2 AND provider = $3 "
	"AND status = 'pending' RETURNING id";
static const char sql_fail_pending[] =
	"UPDATE phone_numbers SET status = 'failed', provider_note = $2 "
	"WHERE id = $1 AND status = 'pending' RETURNING id";
static const char sql_agent_import[] =
	"INSERT INTO agents (agency_id, provider, provider_agent_id, name) VALUES ($1, $2, $3, $4) "
	"ON CONFLICT (provider, provider_agent_id) DO NOTHING RETURNING id";
static const char sql_agent_active[] =
	"UPDATE agents SET active = $2::boolean WHERE id = $1 AND active <> $2::boolean RETURNING id";

/* Import or adopt a listed number we do not track (pending row prow, or -1: a new row). */
static void
sync_take(struct sync_job *j, json_t *pn, int prow)
{
	const char *e164 = json_string_value(json_object_get(pn, "e164"));
	const char *id = json_string_value(json_object_get(pn, "id"));
	const char *name = json_string_value(json_object_get(pn, "name"));
	json_t *agents = json_object_get(pn, "agents");
	const char *agent =
		json_array_size(agents) == 1 ? json_string_value(json_array_get(agents, 0)) : NULL;
	const char *action = prow >= 0 ? "adopt_pending" :
			     e164      ? "import_number" :
					 "import_pending";
	json_t *item = sync_change(j, action);
	struct sync_action *a;

	j->last_take = item;
	if (!item)
		return;
	json_object_set_new(item, "e164", e164 ? json_string(e164) : json_null());
	json_object_set_new(item, "provider_number_id", json_string(id));
	if (agent && e164)
		json_object_set_new(item, "provider_agent_id", json_string(agent));
	if (prow >= 0)
		json_object_set_new(item, "number_id",
			json_integer(strtoll(sync_col(j->ours, prow, 0), NULL, 10)));
	if (prow < 0 && e164)
		j->counts[K_UNTRACKED]++; /* until the import is applied */
	if (j->o.dry_run && !(prow >= 0 && j->o.resolve_pending))
		return;
	a = sync_act(j, ACT_SQL, prow >= 0 ? sql_adopt : sql_import, item);
	if (!a)
		return;
	db_param(a->params, &a->nparams, "%" PRIu64, j->acct_agency);
	db_param(a->params, &a->nparams, "%" PRIu64, j->acct_id);
	db_param_str(a->params, &a->nparams, provider_name(j->provider));
	db_param_str(a->params, &a->nparams, e164);
	db_param_str(a->params, &a->nparams, id);
	db_param_str(a->params, &a->nparams, prow < 0 ? name : NULL);
	db_param_str(a->params, &a->nparams, e164 ? agent : NULL);
	db_param_str(a->params, &a->nparams, e164 ? "active" : "pending");
	db_param_str(a->params, &a->nparams,
		e164 ? NULL : "listed by the provider without digits yet (activating)");
	if (prow >= 0)
		db_param_str(a->params, &a->nparams, sync_col(j->ours, prow, 0));
}

static void
sync_plan_numbers(struct sync_job *j)
{
	int n = PQntuples(j->ours);
	bool *used = calloc((size_t)n + 1, sizeof(*used));
	size_t i;
	json_t *pn;
	char d[300];

	if (!used)
		return;
	json_array_foreach(j->p_numbers, i, pn)
	{
		const char *id = json_string_value(json_object_get(pn, "id"));
		const char *e164 = json_string_value(json_object_get(pn, "e164"));
		int row = sync_find_ours(j, id, e164, used);

		if (row >= 0 && strcmp(PQgetvalue(j->ours, row, 3), "active") == 0) {
			used[row] = true;
			sync_compare(j, pn, sync_col(j->ours, row, 0), sync_col(j->ours, row, 1),
				sync_col(j->ours, row, 2), sync_col(j->ours, row, 4));
			continue;
		}
		if (row < 0 && (j->provider == PROVIDER_BLAND ||
				       (*j->webhook && sync_streq(json_string_value(json_object_get(
									  pn, "webhook")),
							       j->webhook)))) {
			/*
			 * A pending purchase the provider gave no id for: the oldest takes the
			 * first number we do not track that could be it: at Retell and Vapi one
			 * calling our webhook (our purchases set it), at Bland any (its purchase
			 * sets none).
			 */
			for (int k = 0; k < n && row < 0; k++)
				if (!used[k] && strcmp(PQgetvalue(j->ours, k, 3), "pending") == 0 &&
					PQgetisnull(j->ours, k, 2))
					row = k;
		}
		if (row >= 0) {
			used[row] = true;
			if (!e164 && sync_streq(sync_col(j->ours, row, 2), id))
				continue; /* still activating: stays pending */
		}
		sync_take(j, pn, row);
		/* what it will be here: compared as ours (its repair after its import); an adopted
		 * purchase gets the agent it asked for, if any */
		if (e164)
			sync_compare(j, pn, row >= 0 ? sync_col(j->ours, row, 0) : NULL, e164, id,
				row >= 0 && sync_col(j->ours, row, 8) ?
					sync_col(j->ours, row, 8) :
				json_array_size(json_object_get(pn, "agents")) == 1 ?
					json_string_value(
						json_array_get(json_object_get(pn, "agents"), 0)) :
					NULL);
	}
	for (int k = 0; k < n; k++) {
		const char *nid = PQgetvalue(j->ours, k, 0), *e164 = sync_col(j->ours, k, 1);
		const char *pnid = sync_col(j->ours, k, 2);
		long age = strtol(PQgetvalue(j->ours, k, 6), NULL, 10);
		json_t *item;
		struct sync_action *a;

		if (used[k])
			continue;
		if (strcmp(PQgetvalue(j->ours, k, 3), "active") == 0) {
			snprintf(d, sizeof(d),
				"active here, but %s does not list it (released there?): "
				"DELETE /v1/numbers/%s?force=true releases it here",
				provider_name(j->provider), nid);
			sync_drift(j, K_RELEASED, nid, e164, d, false);
			continue;
		}
		/* pending, and the provider lists nothing that could be it */
		if (!pnid && age < SYNC_PENDING_GRACE_S)
			continue;
		item = sync_change(j, "fail_pending");
		if (!item)
			continue;
		json_object_set_new(item, "number_id", json_integer(strtoll(nid, NULL, 10)));
		if ((j->o.dry_run && !j->o.resolve_pending) ||
			!(a = sync_act(j, ACT_SQL, sql_fail_pending, item)))
			continue;
		db_param_str(a->params, &a->nparams, nid);
		if (pnid)
			db_param(a->params, &a->nparams,
				"%s lists no number with id %s: the purchase did not go through",
				provider_name(j->provider), pnid);
		else
			db_param(a->params, &a->nparams,
				"%s listed no new number within %d s of the purchase",
				provider_name(j->provider), SYNC_PENDING_GRACE_S);
	}
	free(used);
}

/* Agent aid is assigned to a number of this account (active here). */
static bool
sync_agent_used(struct sync_job *j, const char *aid)
{
	for (int i = 0; i < PQntuples(j->ours); i++)
		if (sync_streq(sync_col(j->ours, i, 5), aid))
			return true;
	return false;
}

/* our agents: 0 id, 1 provider_agent_id, 2 active, 3 name */
static void
sync_plan_agents(struct sync_job *j)
{
	int n = PQntuples(j->our_agents);
	size_t i;
	json_t *pa;
	/* an empty list is more likely a wrong key than every agent deleted: nothing deactivated */
	bool none = json_array_size(j->p_agents) == 0;

	json_array_foreach(j->p_agents, i, pa)
	{
		const char *id = json_string_value(json_object_get(pa, "id"));
		const char *name = json_string_value(json_object_get(pa, "name"));
		int row = -1;
		json_t *item;
		struct sync_action *a;

		for (int k = 0; k < n && row < 0; k++)
			if (sync_streq(PQgetvalue(j->our_agents, k, 1), id))
				row = k;
		if (row >= 0 && strcmp(PQgetvalue(j->our_agents, row, 2), "t") == 0)
			continue;
		item = sync_change(j, row >= 0 ? "reactivate_agent" : "import_agent");
		if (!item)
			continue;
		json_object_set_new(item, "provider_agent_id", json_string(id));
		if (row >= 0)
			json_object_set_new(item, "agent_id",
				json_integer(strtoll(PQgetvalue(j->our_agents, row, 0), NULL, 10)));
		else
			json_object_set_new(item, "name", name ? json_string(name) : json_null());
		if (j->o.dry_run)
			continue;
		a = sync_act(j, ACT_SQL, row >= 0 ? sql_agent_active : sql_agent_import, item);
		if (!a)
			continue;
		if (row >= 0) {
			db_param_str(a->params, &a->nparams, PQgetvalue(j->our_agents, row, 0));
			db_param_str(a->params, &a->nparams, "t");
		} else {
			db_param(a->params, &a->nparams, "%" PRIu64, j->acct_agency);
			db_param_str(a->params, &a->nparams, provider_name(j->provider));
			db_param_str(a->params, &a->nparams, id);
			db_param_str(a->params, &a->nparams, name ? name : id);
		}
	}
	for (int k = 0; k < n; k++) {
		const char *aid = PQgetvalue(j->our_agents, k, 0),
			   *pid = PQgetvalue(j->our_agents, k, 1);
		json_t *item;
		struct sync_action *a;
		bool listed = false;
		char d[400];

		for (size_t i2 = 0; i2 < json_array_size(j->p_agents) && !listed; i2++)
			listed = sync_streq(json_string_value(json_object_get(
						    json_array_get(j->p_agents, i2), "id")),
				pid);
		if (listed || strcmp(PQgetvalue(j->our_agents, k, 2), "t") != 0)
			continue;
		/* with sibling accounts an agent may live at another one: only an agent this
		 * account's numbers are assigned to must be here */
		if (j->other_accounts && !sync_agent_used(j, aid))
			continue;
		snprintf(d, sizeof(d), "agent %s (%s) is not listed by %s%s", aid, pid,
			provider_name(j->provider),
			j->other_accounts ?
				", yet numbers of this account are assigned to it: kept active, another "
				"account of the agency may have it" :
			none ? ": kept active, the provider lists no agent at all (a wrong API key or "
			       "account?)" :
			       "");
		sync_drift(j, K_AGENT_MISSING, NULL, NULL, d, false);
		json_object_set_new(json_array_get(j->drift, json_array_size(j->drift) - 1),
			"agent_id", json_integer(strtoll(aid, NULL, 10)));
		if (j->other_accounts || none)
			continue;
		item = sync_change(j, "deactivate_agent");
		if (!item)
			continue;
		json_object_set_new(item, "agent_id", json_integer(strtoll(aid, NULL, 10)));
		json_object_set_new(item, "provider_agent_id", json_string(pid));
		if (j->o.dry_run || !(a = sync_act(j, ACT_SQL, sql_agent_active, item)))
			continue;
		db_param_str(a->params, &a->nparams, aid);
		db_param_str(a->params, &a->nparams, "f");
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Applying the plan                                                                           */

static void sync_apply_next(struct sync_job *j);
static void sync_apply_later(struct sync_job *j);

static void
sync_item_result(json_t *item, bool applied, const char *error)
{
	json_object_set_new(item, "applied", json_boolean(applied));
	if (error)
		json_object_set_new(item, "error", json_string(error));
}

/* number_events (migration 006): what the sync changed, actor 'sync' */
static void
sync_event_done(struct sync_job *j, PGresult *res)
{
	if (!res || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		sy.errors++;
		log_warning("sync: %s: an event could not be recorded (SQLSTATE %s)", j->slug,
			db_sqlstate(sy.conn));
	} else {
		nc_count(NC_EVENTS, 1);
	}
	sync_apply_next(j);
}

/* Record the event, then the next action; false (nothing sent) when there is none to write. */
static bool
sync_event(struct sync_job *j, uint64_t number_id, const char *action, const char *detail)
{
	struct nc_event e = { .number_id = number_id, .action = action, .detail = detail };
	char *p[NC_EVENT_NPARAMS];

	if (!number_id || !nc_event_params(&e, sy.instance, p))
		return false;
	for (int i = 0; i < NC_EVENT_NPARAMS; i++)
		j->params[i] = p[i];
	j->nparams = NC_EVENT_NPARAMS;
	sync_query(j, nc_event_sql, sync_event_done);
	return true;
}

/* The event action of a number's change of the plan; NULL: none (agents). */
static const char *
sync_event_action(const char *act)
{
	if (strcmp(act, "import_number") == 0 || strcmp(act, "import_pending") == 0)
		return "sync_import";
	if (strcmp(act, "adopt_pending") == 0)
		return "sync_adopt";
	if (strcmp(act, "fail_pending") == 0)
		return "sync_fail";
	return NULL;
}

static void
sync_sql_done(struct sync_job *j, PGresult *res)
{
	struct sync_action *a = &j->acts[j->next_act - 1];
	const char *act = json_string_value(json_object_get(a->item, "action"));
	const char *ev = NULL;
	uint64_t ev_id = 0;

	if (!res) {
		char e[300];

		snprintf(e, sizeof(e), "the database refused it (SQLSTATE %s%s)",
			db_sqlstate(sy.conn),
			strcmp(db_sqlstate(sy.conn), "23505") == 0 ? ": the number is active in "
								     "another account here" :
								     "");
		sy.errors++;
		sync_item_result(a->item, false, e);
		log_warning("sync: %s: %s failed: %s", j->slug, act, e);
	} else if (PQntuples(res) == 0) {
		sync_item_result(a->item, false,
			strcmp(act, "import_agent") == 0 ?
				"another agency has an agent with this provider id" :
				"the row changed meanwhile");
	} else {
		sync_item_result(a->item, true, NULL);
		if (strcmp(act, "import_number") == 0 || strcmp(act, "import_pending") == 0)
			json_object_set_new(a->item, "number_id",
				json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
		else if (strcmp(act, "import_agent") == 0)
			json_object_set_new(a->item, "agent_id",
				json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
		if (strcmp(act, "import_number") == 0 && j->counts[K_UNTRACKED] > 0)
			j->counts[K_UNTRACKED]--;
		if ((ev = sync_event_action(act)) != NULL) {
			ev_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
			if (!json_is_integer(json_object_get(a->item, "number_id")))
				json_object_set_new(a->item, "number_id",
					json_integer((json_int_t)ev_id));
		}
		log_info("sync: %s: %s%s%s", j->slug, act,
			json_is_string(json_object_get(a->item, "e164")) ? " " : "",
			json_is_string(json_object_get(a->item, "e164")) ?
				json_string_value(json_object_get(a->item, "e164")) :
				"");
	}
	if (ev && sync_event(j, ev_id, ev,
			  strcmp(ev, "sync_import") == 0 ?
				  "imported from the provider" :
			  strcmp(ev, "sync_adopt") == 0 ?
				  "the pending purchase found at the provider" :
				  "the provider has no such number: the purchase "
				  "did not go through"))
		return;
	sync_apply_next(j);
}

static void sync_repair_step(struct sync_job *j, const char *prev, size_t prev_len);
static void sync_repair_end(struct sync_job *j, bool ok);

static void
sync_repair_answer(struct sync_job *j, const struct httpc_response *resp)
{
	struct sync_action *a = &j->acts[j->next_act - 1];
	char msg[500];
	const char *code;
	int status;

	if (!sync_http_ok(j, resp, msg, sizeof(msg), &status, &code)) {
		sy.errors++;
		sync_item_result(a->item, false, msg);
		log_warning("sync: %s: repair of %s failed: %s", j->slug, a->e164, log_esc(msg));
		sync_repair_end(j, false);
		return;
	}
	j->step++;
	sync_repair_step(j, resp->body, resp->len);
}

static void
sync_repair_step(struct sync_job *j, const char *prev, size_t prev_len)
{
	const struct provider_api *pa = provider_api_get(j->provider);
	struct sync_action *a = &j->acts[j->next_act - 1];
	struct papi_ctx ctx;
	char err[300];
	bool last = true;

	papi_request_clear(&j->preq);
	if (j->step > 0 && j->preq_last) {
		sync_item_result(a->item, true, NULL);
		for (size_t k = 0; k < json_array_size(j->drift); k++) {
			json_t *d = json_array_get(j->drift, k);

			if (sync_streq(json_string_value(json_object_get(d, "e164")), a->e164) &&
				json_is_true(json_object_get(d, "repairable"))) {
				const char *kind = json_string_value(json_object_get(d, "kind"));

				json_object_set_new(d, "repaired", json_true());
				for (int i = 0; i < K_COUNT; i++)
					if (strcmp(kind, sync_kind_names[i]) == 0 &&
						j->counts[i] > 0)
						j->counts[i]--;
			}
		}
		log_info("sync: %s: repaired %s at %s", j->slug, a->e164,
			provider_name(j->provider));
		sync_repair_end(j, true);
		return;
	}
	sync_ctx(j, &ctx);
	if (!pa->update(&ctx, a->e164, a->pnid, &j->change, j->step, prev, prev_len, &j->preq,
		    &last, err, sizeof(err))) {
		sync_item_result(a->item, false, err);
		sync_repair_end(j, false);
		return;
	}
	j->preq_last = last;
	if (j->preq.method == NULL) {
		sync_item_result(a->item, true, NULL);
		sync_repair_end(j, false); /* nothing sent: nothing to record */
		return;
	}
	if (!sync_send(j, sync_repair_answer)) {
		sync_item_result(a->item, false, "could not send the request");
		sync_repair_end(j, false);
	}
}

static void sync_report(struct sync_job *j);

static void
sync_apply_later_cb(evutil_socket_t fd, short what, void *arg)
{
	sync_apply_next(arg);
}

/* The next action from the loop, not from within this one (no recursion over many repairs
 * refused before any request). */
static void
sync_apply_later(struct sync_job *j)
{
	static const struct timeval now = { 0, 0 };

	if (event_base_once(sy.base, -1, EV_TIMEOUT, sync_apply_later_cb, j, &now) != 0)
		sync_apply_next(j);
}

/*
 * A repair holds the number's lease (number_changes.h) from before its first provider request
 * until after its last, as an API change does, so a repair and an assign never interleave; a
 * number whose lease another change holds is not repaired (the next sync sees it again).
 */
static void
sync_repair_released(struct sync_job *j, PGresult *res)
{
	struct sync_action *a = &j->acts[j->next_act - 1];
	bool ok = json_is_true(json_object_get(a->item, "applied")) && a->kind == ACT_REPAIR &&
		  j->step > 0;

	if (!res)
		log_warning("sync: %s: the lease of number %" PRIu64 " could not be given back "
			    "(it expires by itself)",
			j->slug, a->number_id);
	if (ok && sync_event(j, a->number_id, "sync_repair",
			  "the provider made to match us (drift repaired)"))
		return;
	sync_apply_next(j);
}

static void
sync_repair_end(struct sync_job *j, bool ok)
{
	struct sync_action *a = &j->acts[j->next_act - 1];
	char id[24];

	if (!a->leased) {
		sync_apply_later(j);
		return;
	}
	if (!ok)
		j->step = 0; /* no event */
	a->leased = false;
	snprintf(id, sizeof(id), "%" PRIu64, a->number_id);
	db_param_str(j->params, &j->nparams, id);
	db_param_str(j->params, &j->nparams, j->holder);
	sync_query(j, nc_lease_release_sql, sync_repair_released);
}

static void
sync_lease_cb(struct sync_job *j, PGresult *res)
{
	struct sync_action *a = &j->acts[j->next_act - 1];

	if (!res || PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 1), "1") != 0) {
		sync_item_result(a->item, false,
			res && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "1") != 0 ?
				"the number is not in the database any more" :
				"another change holds the number: not repaired (the next sync sees it "
				"again)");
		sync_apply_next(j);
		return;
	}
	a->leased = true;
	sync_repair_step(j, NULL, 0);
}

static void
sync_apply_next(struct sync_job *j)
{
	struct sync_action *a;
	char buf[3][24];

	if (j->next_act == j->n_acts) {
		sync_report(j);
		return;
	}
	a = &j->acts[j->next_act++];
	if (a->kind == ACT_SQL) {
		for (int i = 0; i < a->nparams; i++)
			j->params[i] = a->params[i];
		j->nparams = a->nparams;
		a->nparams = 0; /* the job's now */
		sync_query(j, a->sql, sync_sql_done);
		return;
	}
	j->change = (struct papi_change){ .agent = true, .agent_id = a->agent_pid };
	j->step = 0;
	j->preq_last = false;
	if (!*j->webhook) {
		sync_item_result(a->item, false, "public_url is not configured");
		sync_apply_later(j);
		return;
	}
	if (!a->number_id && a->id_from)
		a->number_id =
			(uint64_t)json_integer_value(json_object_get(a->id_from, "number_id"));
	if (!a->number_id) {
		sync_item_result(a->item, false, "its import was not applied");
		sync_apply_later(j);
		return;
	}
	if (!*j->holder && !nc_holder_new(j->holder)) {
		sync_item_result(a->item, false, "no random lease holder");
		sync_apply_later(j);
		return;
	}
	/* $1 number, $2 agency, $3 holder, $4 instance, $5 action, $6 seconds, $7 token (sync) */
	snprintf(buf[0], sizeof(buf[0]), "%" PRIu64, a->number_id);
	snprintf(buf[1], sizeof(buf[1]), "%" PRIu64, j->acct_agency);
	snprintf(buf[2], sizeof(buf[2]), "%u", nc_lease_seconds(sy.timeout_s));
	db_param_str(j->params, &j->nparams, buf[0]);
	db_param_str(j->params, &j->nparams, buf[1]);
	db_param_str(j->params, &j->nparams, j->holder);
	db_param_str(j->params, &j->nparams, sy.instance);
	db_param_str(j->params, &j->nparams, "change");
	db_param_str(j->params, &j->nparams, buf[2]);
	db_param_str(j->params, &j->nparams, NULL);
	sync_query(j, nc_lease_sql, sync_lease_cb);
}

static void
sync_gauge_set(struct sync_job *j)
{
	struct sync_gauge *g = NULL;

	for (size_t i = 0; i < sy.n_gauges && !g; i++)
		if (strcmp(sy.gauges[i].slug, j->slug) == 0)
			g = &sy.gauges[i];
	if (!g) {
		struct sync_gauge *n = realloc(sy.gauges, (sy.n_gauges + 1) * sizeof(*n));

		if (!n)
			return;
		sy.gauges = n;
		g = &sy.gauges[sy.n_gauges++];
		snprintf(g->slug, sizeof(g->slug), "%s", j->slug);
	}
	g->provider = j->provider;
	memcpy(g->counts, j->counts, sizeof(g->counts));
}

/* The Bland account's block rules into the report ("blocked_numbers"), then the answer. */
static void
sync_blocks_done(void *arg, json_t *report)
{
	struct sync_job *j = arg;

	json_object_set_new(j->report, "blocked_numbers", report);
	sync_finish(j, 200, json_incref(j->report));
}

static void
sync_report(struct sync_job *j)
{
	json_t *counts = json_object();
	unsigned total = 0;

	for (int i = 0; i < K_COUNT; i++) {
		json_object_set_new(counts, sync_kind_names[i], json_integer(j->counts[i]));
		total += j->counts[i];
	}
	json_object_set_new(j->report, "drift_counts", counts);
	json_object_set_new(j->report, "in_sync", json_boolean(total == 0));
	sync_gauge_set(j);
	sy.runs++;
	if (total)
		log_info("sync: %s%s: %u drift(s) at %s", j->periodic ? "periodic check of " : "",
			j->slug, total, provider_name(j->provider));
	if (j->provider == PROVIDER_BLAND) {
		/* Bland's block rules (bland_blocks.c): pushed unless a dry run asked by hand; the
		 * periodic check pushes (it retries what a change could not push) */
		bland_blocks_account(j->acct_id, !j->o.dry_run || j->periodic, sync_blocks_done, j);
		return;
	}
	sync_finish(j, 200, json_incref(j->report));
}

/* ------------------------------------------------------------------------------------------ */
/* Listing                                                                                     */

static void sync_list_page(struct sync_job *j);

static void
sync_listed(struct sync_job *j, const struct httpc_response *resp)
{
	const struct provider_api *pa = provider_api_get(j->provider);
	char msg[500], err[300], next[sizeof(j->cursor)];
	const char *code;
	int status;
	bool ok;

	if (!sync_http_ok(j, resp, msg, sizeof(msg), &status, &code)) {
		sync_fail(j, status, code, "listing %s: %s",
			j->listing_agents ? "agents" : "numbers", msg);
		return;
	}
	ok = j->listing_agents ? pa->parse_agents(resp->body, resp->len, j->p_agents, next,
					 sizeof(next), err, sizeof(err)) :
				 pa->parse_numbers(resp->body, resp->len, j->p_numbers, next,
					 sizeof(next), err, sizeof(err));
	if (!ok) {
		sync_fail(j, 502, "provider_error", "%s: unexpected %s list: %s",
			provider_name(j->provider), j->listing_agents ? "agent" : "number", err);
		return;
	}
	if (*next && strcmp(next, j->cursor) != 0 && ++j->pages < SYNC_MAX_PAGES) {
		snprintf(j->cursor, sizeof(j->cursor), "%s", next);
		sync_list_page(j);
		return;
	}
	if (!j->listing_agents) {
		j->listing_agents = true;
		j->cursor[0] = '\0';
		j->pages = 0;
		sync_list_page(j);
		return;
	}
	/* both lists complete: plan, then apply */
	json_object_set_new(j->report, "numbers_at_provider",
		json_integer((json_int_t)json_array_size(j->p_numbers)));
	json_object_set_new(j->report, "agents_at_provider",
		json_integer((json_int_t)json_array_size(j->p_agents)));
	sync_plan_agents(j);
	sync_plan_numbers(j);
	j->next_act = 0;
	sync_apply_next(j);
}

static void
sync_list_page(struct sync_job *j)
{
	const struct provider_api *pa = provider_api_get(j->provider);
	struct papi_ctx ctx;
	char err[300];

	sync_ctx(j, &ctx);
	papi_request_clear(&j->preq);
	if (!(j->listing_agents ? pa->list_agents : pa->list_numbers)(&ctx, j->cursor, &j->preq,
		    err, sizeof(err))) {
		sync_fail(j, 422, "invalid", "%s", err);
		return;
	}
	if (!sync_send(j, sync_listed))
		sync_fail(j, 500, "internal", "could not send the request to %s",
			provider_name(j->provider));
}

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                     */

static void
sync_agents_cb(struct sync_job *j, PGresult *res)
{
	if (!res) {
		sync_fail(j, 500, "internal", "database error (SQLSTATE %s)", db_sqlstate(sy.conn));
		return;
	}
	j->our_agents = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	j->p_numbers = json_array();
	j->p_agents = json_array();
	sync_list_page(j);
}

static void
sync_numbers_cb(struct sync_job *j, PGresult *res)
{
	if (!res) {
		sync_fail(j, 500, "internal", "database error (SQLSTATE %s)", db_sqlstate(sy.conn));
		return;
	}
	j->ours = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	db_param(j->params, &j->nparams, "%" PRIu64, j->acct_agency);
	db_param_str(j->params, &j->nparams, provider_name(j->provider));
	sync_query(j,
		"SELECT id, provider_agent_id, active, name FROM agents "
		"WHERE agency_id = $1 AND provider = $2 ORDER BY id",
		sync_agents_cb);
}

static void
sync_account_cb(struct sync_job *j, PGresult *res)
{
	const char *prov;

	if (!res) {
		sync_fail(j, 500, "internal", "database error (SQLSTATE %s)", db_sqlstate(sy.conn));
		return;
	}
	if (PQntuples(res) != 1) {
		sync_fail(j, 404, "not_found", "no such account");
		return;
	}
	/* id, provider, api_key, webhook_secret, api_base_url, credential, agency, others */
	j->acct_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	prov = PQgetvalue(res, 0, 1);
	if (!provider_from_name(prov, strlen(prov), &j->provider)) {
		sync_fail(j, 500, "internal", "unreadable account");
		return;
	}
	j->api_key = strdup(PQgetvalue(res, 0, 2));
	j->secret = sync_col(res, 0, 3) ? strdup(sync_col(res, 0, 3)) : NULL;
	j->base_url = sync_col(res, 0, 4) ? strdup(sync_col(res, 0, 4)) : NULL;
	j->cred = sync_col(res, 0, 5) ? strdup(sync_col(res, 0, 5)) : NULL;
	j->acct_agency = strtoull(PQgetvalue(res, 0, 6), NULL, 10);
	j->other_accounts = strtol(PQgetvalue(res, 0, 7), NULL, 10);
	if (*sy.public_url)
		snprintf(j->webhook, sizeof(j->webhook), "%s/v1/webhooks/%s/%s", sy.public_url,
			provider_name(j->provider), j->slug);
	j->report = json_pack("{s:s,s:s,s:b,s:b,s:[],s:[]}", "account", j->slug, "provider",
		provider_name(j->provider), "dry_run", j->o.dry_run, "repair", j->o.repair,
		"changes", "drift");
	if (!j->report || !j->api_key) {
		sync_fail(j, 500, "internal", "out of memory");
		return;
	}
	j->changes = json_object_get(j->report, "changes");
	j->drift = json_object_get(j->report, "drift");
	if (!*j->webhook)
		json_object_set_new(j->report, "note",
			json_string("public_url is not configured: webhook URLs not compared, "
				    "nothing repaired"));
	db_param(j->params, &j->nparams, "%" PRIu64, j->acct_id);
	sync_query(j,
		"SELECT n.id, n.e164, n.provider_number_id, n.status, ag.provider_agent_id, "
		"n.agent_id, extract(epoch FROM now() - n.created_at)::bigint, n.nickname, "
		"rq.provider_agent_id FROM phone_numbers n LEFT JOIN agents ag ON ag.id = n.agent_id "
		"LEFT JOIN agents rq ON rq.id = n.requested_agent_id "
		"WHERE n.account_id = $1 AND n.status IN ('active', 'pending') ORDER BY n.id",
		sync_numbers_cb);
}

static void
sync_begin(struct sync_job *j)
{
	db_param_str(j->params, &j->nparams, j->slug);
	if (j->agency_id)
		db_param(j->params, &j->nparams, "%" PRIu64, j->agency_id);
	else
		db_param_str(j->params, &j->nparams, NULL);
	sync_query(j,
		"SELECT a.id, a.provider, a.api_key, a.webhook_secret, a.api_base_url, "
		"a.webhook_credential_id, a.agency_id, (SELECT count(*) FROM provider_accounts o "
		"WHERE o.agency_id = a.agency_id AND o.provider = a.provider AND o.id <> a.id) "
		"FROM provider_accounts a WHERE a.slug = $1 AND ($2::bigint IS NULL OR "
		"a.agency_id = $2)",
		sync_account_cb);
}

/* ------------------------------------------------------------------------------------------ */
/* The queue and the periodic check                                                            */

static void
sync_next_job(void)
{
	struct sync_job *j;

	if (sy.running || !sy.base)
		return;
	if ((j = STAILQ_FIRST(&sy.queue)) == NULL)
		return;
	STAILQ_REMOVE_HEAD(&sy.queue, link);
	sy.running = j;
	sync_begin(j);
}

static void
sync_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	sync_next_job();
}

static struct sync_job *
sync_enqueue(uint64_t agency_id, const char *slug, const struct sync_opts *o, bool periodic,
	sync_done_fn done, void *arg)
{
	struct sync_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->agency_id = agency_id;
	snprintf(j->slug, sizeof(j->slug), "%s", slug);
	j->o = *o;
	if (j->o.dry_run)
		j->o.repair = false;
	j->periodic = periodic;
	j->done = done;
	j->arg = arg;
	STAILQ_INSERT_TAIL(&sy.queue, j, link);
	event_active(sy.kick, EV_TIMEOUT, 0); /* never from within the caller */
	return j;
}

void
sync_account(uint64_t agency_id, const char *slug, const struct sync_opts *o, sync_done_fn done,
	void *arg)
{
	if (!sync_enqueue(agency_id, slug, o, false, done, arg))
		done(arg, 503,
			json_pack("{s:{s:s,s:s}}", "error", "code", "unavailable", "message",
				"out of memory"));
}

/* The periodic round: one dry-run sync per account, queued behind any running sync. */
static void
sync_round_done(void *arg, int status, json_t *body)
{
	json_decref(body);
}

/* The account list's query failed (its error answer): the next tick tries again. */
static void
sync_round_accounts(void *arg, int status, json_t *body)
{
	sy.round = false;
	json_decref(body);
}

static void
sync_round_cb(struct sync_job *j, PGresult *res)
{
	/* a dry run that still completes our own purchases: pending rows adopted or failed */
	static const struct sync_opts dry = { .dry_run = true, .resolve_pending = true };

	sy.round = false;
	if (!res) {
		sy.errors++;
		log_warning("sync: periodic check: could not list the accounts (SQLSTATE %s)",
			db_sqlstate(sy.conn));
	} else {
		for (int i = 0; i < PQntuples(res); i++)
			sync_enqueue(0, PQgetvalue(res, i, 0), &dry, true, sync_round_done, NULL);
	}
	/* this job only listed the accounts: no report */
	j->done = NULL;
	if (sy.running == j)
		sy.running = NULL;
	sync_job_free(j);
	sync_next_job();
}

static void
sync_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sync_job *j;

	if (sy.round || sy.running || !STAILQ_EMPTY(&sy.queue))
		return; /* the last round still runs: skip this one */
	if (!db_conn_up(sy.conn)) {
		sy.errors++;
		log_warning("sync: periodic check skipped: the database is not reachable");
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	snprintf(j->slug, sizeof(j->slug), "(accounts)");
	j->periodic = true;
	j->done = sync_round_accounts;
	sy.round = true;
	sy.running = j;
	sync_query(j, "SELECT slug FROM provider_accounts ORDER BY id", sync_round_cb);
}

bool
sync_setup(struct event_base *base, const struct config *cfg)
{
	sy.base = base;
	STAILQ_INIT(&sy.queue);
	sy.public_url = strdup(cfg->public_url);
	sy.instance = strdup(cfg->instance_name);
	sy.timeout_s = (int)((cfg->provider_timeout_ms + 999) / 1000);
	sy.interval_ms = cfg->provider_sync_interval_ms;
	sy.conn = db_conn_new_on(base, &sync_db_ops);
	sy.kick = event_new(base, -1, 0, sync_kick_cb, NULL);
	sy.timer = event_new(base, -1, EV_PERSIST, sync_timer_cb, NULL);
	return sy.public_url && sy.instance && sy.conn && sy.kick && sy.timer &&
	       bland_blocks_setup(base, cfg);
}

void
sync_start(void)
{
	db_conn_start(sy.conn);
	bland_blocks_start();
	if (sy.interval_ms > 0) {
		struct timeval tv = { .tv_sec = sy.interval_ms / 1000,
			.tv_usec = (sy.interval_ms % 1000) * 1000 };

		event_add(sy.timer, &tv);
	}
}

void
sync_cleanup(void)
{
	struct sync_job *j;

	bland_blocks_cleanup(); /* first: its pending answers name sync jobs (never called) */
	while ((j = STAILQ_FIRST(&sy.queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&sy.queue, link);
		sync_job_free(j);
	}
	if (sy.running)
		sync_job_free(sy.running);
	sy.running = NULL;
	if (sy.timer)
		event_free(sy.timer);
	if (sy.kick)
		event_free(sy.kick);
	sy.timer = sy.kick = NULL;
	if (sy.conn)
		db_conn_release(sy.conn);
	sy.conn = NULL;
	free(sy.public_url);
	sy.public_url = NULL;
	free(sy.instance);
	sy.instance = NULL;
	free(sy.gauges);
	sy.gauges = NULL;
	sy.n_gauges = 0;
	sy.base = NULL;
}

void
sync_stats(stat_fn add, void *ctx)
{
	char labels[256];

	for (size_t i = 0; i < sy.n_gauges; i++)
		for (int k = 0; k < K_COUNT; k++) {
			snprintf(labels, sizeof(labels),
				"provider=\"%s\",account=\"%s\",kind=\"%s\"",
				provider_name(sy.gauges[i].provider), sy.gauges[i].slug,
				sync_kind_names[k]);
			stat_u64(add, ctx, "callrouted_provider_drift",
				"Differences between the provider and us found by the last sync or drift "
				"check of the account, by kind (after its repairs).",
				"gauge", labels, sy.gauges[i].counts[k]);
		}
	STAT_COUNTER(add, ctx, "callrouted_provider_sync_errors_total",
		"Syncs and drift checks that failed (provider or database), and repairs the provider "
		"refused.",
		sy.errors);
	STAT_COUNTER(add, ctx, "callrouted_provider_syncs_total",
		"Syncs and drift checks completed.", sy.runs);
	bland_blocks_stats(add, ctx);
}
