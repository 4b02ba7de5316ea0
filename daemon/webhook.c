/* webhook.c: /v1/webhooks/{provider}/{account}: checks, dispatch, journal hand-off, answers. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "callrouted/config.h"
#include "callrouted/e164.h"
#include "journal.h"
#include "json_arena.h"
#include "ledger.h"
#include "callrouted/log.h"
#include "metrics.h"
#include "replay.h"
#include "route_counts.h"
#include "webhook.h"

#define WEBHOOK_PREFIX "/v1/webhooks/"

const char *
webhook_header(const struct webhook_req *w, const char *name)
{
	return wire_header(w->req, name);
}

void
webhook_out_add(struct webhook_out *o, const char *s, size_t n)
{
	if (o->len + n > o->cap) {
		size_t cap = o->cap * 2;
		char *p;

		while (cap < o->len + n)
			cap *= 2;
		p = o->p == o->stack ? malloc(cap) : realloc(o->p, cap);
		if (!p) {
			o->failed = true;
			return;
		}
		if (o->p == o->stack)
			memcpy(p, o->stack, o->len);
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

void
webhook_out_u64(struct webhook_out *o, uint64_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	webhook_out_add(o, p, (size_t)(buf + sizeof(buf) - p));
}

static void
webhook_out_reset(struct webhook_out *o)
{
	o->len = 0;
}

void
webhook_json_str(struct webhook_out *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;

	webhook_out_lit(b, "\"");
	for (; *p; p++) {
		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		webhook_out_add(b, (const char *)run, (size_t)(p - run));
		if (*p == '"' || *p == '\\') {
			char e[2] = { '\\', (char)*p };

			webhook_out_add(b, e, 2);
		} else {
			char e[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };

			webhook_out_add(b, e, 6);
		}
		run = p + 1;
	}
	webhook_out_add(b, (const char *)run, (size_t)(p - run));
	webhook_out_lit(b, "\"");
}

void
webhook_json_vars(struct webhook_out *b, const struct route_agent *a)
{
	webhook_out_lit(b, "{\"agent_name\":");
	webhook_json_str(b, a->name);
	if (a->client_name) {
		webhook_out_lit(b, ",\"client_name\":");
		webhook_json_str(b, a->client_name);
	}
	webhook_out_lit(b, "}");
}

/* The agent's metadata members: "callrouted_agency_id":"N"[,"callrouted_client_id":"N"],
 * "callrouted_agent_id":"N" (ids as strings). */
static void
webhook_json_agent_ids(struct webhook_out *b, const struct route_agent *a)
{
	webhook_out_lit(b, "\"callrouted_agency_id\":\"");
	webhook_out_u64(b, a->agency_id);
	if (a->client_id) {
		webhook_out_lit(b, "\",\"callrouted_client_id\":\"");
		webhook_out_u64(b, a->client_id);
	}
	webhook_out_lit(b, "\",\"callrouted_agent_id\":\"");
	webhook_out_u64(b, a->id);
	webhook_out_lit(b, "\"");
}

void
webhook_json_meta(struct webhook_out *b, const struct route_agent *a, uint64_t number_id)
{
	webhook_out_lit(b, "{");
	webhook_json_agent_ids(b, a);
	webhook_out_lit(b, ",\"callrouted_number_id\":\"");
	webhook_out_u64(b, number_id);
	webhook_out_lit(b, "\"}");
}

void
webhook_error(struct webhook_req *w, int status, const char *reason)
{
	w->status = status;
	webhook_out_reset(w->out);
	webhook_out_lit(w->out, "{\"error\":");
	webhook_json_str(w->out, reason);
	webhook_out_lit(w->out, "}");
}

void
webhook_empty(struct webhook_req *w)
{
	w->status = 200;
	webhook_out_reset(w->out);
	webhook_out_lit(w->out, "{}");
}

bool
webhook_route(struct webhook_req *w, const char *number, struct route_answer *ans)
{
	uint64_t key;

	if (!number) {
		webhook_error(w, 400, "missing called number");
		return false;
	}
	if (!e164_parse(number, strlen(number), &key)) {
		webhook_error(w, 400, "number is not E.164");
		return false;
	}
	routes_lookup(w->snap, w->acct, key, ans);
	METRICS_INC(route_lookups, ans->result);
	log_debug("webhook: %s/%s %s %s -> %s", provider_name(w->acct->provider), w->acct->slug,
		webhook_event_name(w->event), log_esc(number), route_result_name(ans->result));
	return true;
}

uint64_t
webhook_call_key(const struct webhook_req *w, const char *id, size_t n)
{
	return route_counts_call_key(w->acct->provider, id, n);
}

bool
webhook_decide(struct webhook_req *w, const char *number, const char *caller, uint64_t call_key,
	struct policy_result *res)
{
	struct policy_call call = { .snap = w->snap, .acct = w->acct, .at_s = w->now_ms / 1000 };
	struct policy_counts counts;
	struct route_counts_at at = { .now_ms = w->now_ms, .call = call_key };
	enum route_take took = ROUTE_TAKE_TAKEN;

	if (!number) {
		webhook_error(w, 400, "missing called number");
		return false;
	}
	if (!e164_parse(number, strlen(number), &call.to_key)) {
		webhook_error(w, 400, "number is not E.164");
		return false;
	}
	/* an anonymous or malformed caller is no caller: no block prefix matches it */
	if (!caller || !e164_parse(caller, strlen(caller), &call.from_key))
		call.from_key = 0;
	/* a retry of the same call counts without its own earlier slot, and takes none */
	route_counts_ops(&counts, &at);
	policy_decide(&call, &counts, res);
	if (res->take_slot)
		took = route_counts_take(res->client_id, res->limit, at.now_ms, call_key);
	if (took == ROUTE_TAKE_REFUSED) {
		/* the last slot went to another worker meanwhile */
		call.ignore_limit = true;
		policy_decide(&call, &counts, res);
	} else if (took == ROUTE_TAKE_REUSED) {
		METRICS_INC(route_slot_reuses, w->acct->provider);
	}
	METRICS_INC(route_lookups, res->route);
	METRICS_INC(route_decisions, (size_t)w->acct->provider * PD_COUNT + res->decision);
	if (res->overflow)
		METRICS_INC(route_overflows, w->acct->provider);
	log_debug("webhook: %s/%s %s %s -> %s (%s)", provider_name(w->acct->provider),
		w->acct->slug, webhook_event_name(w->event), log_esc(number),
		policy_decision_name(res->decision), route_result_name(res->route));
	return true;
}

void
webhook_json_meta_decision(struct webhook_out *b, const struct policy_result *r)
{
	const struct route_agent *a = r->agent;

	webhook_out_lit(b, "{");
	if (a) {
		webhook_json_agent_ids(b, a);
		webhook_out_lit(b, ",");
	}
	if (r->number_id) {
		webhook_out_lit(b, "\"callrouted_number_id\":\"");
		webhook_out_u64(b, r->number_id);
		webhook_out_lit(b, "\",");
	}
	webhook_out_lit(b, "\"callrouted_decision\":");
	webhook_json_str(b, policy_decision_name(r->decision));
	webhook_out_lit(b, ",\"callrouted_overflow\":");
	if (r->overflow)
		webhook_out_lit(b, "\"true\"}");
	else
		webhook_out_lit(b, "\"false\"}");
}

static bool
webhook_json_content_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

static int64_t
webhook_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------------------------ */
/* Call events: the journal hand-off and the deferred answer                                  */

#define WEBHOOK_NOT_DURABLE "{\"error\":\"event could not be made durable; retry\"}"

/* A request waiting for its event to be durable. */
struct webhook_wait {
	struct wire_req *req;
	uint64_t t0_ns, queued_ns;
	unsigned provider_idx;
	enum webhook_event event;
	bool has_replay_key;
	unsigned char replay_key[REPLAY_KEY_LEN];
	int64_t ttl_ms;
};

/* The one door every webhook answer leaves by (now or, for a call event, once durable). */
static void
webhook_send(struct wire_req *req, int status, const char *body, size_t len)
{
	wire_reply(req, status, "application/json", body, len,
		status == 405 ? "Allow: POST\r\n" : NULL);
}

void
webhook_journal_done(void *arg, bool durable)
{
	struct webhook_wait *ww = arg;
	int code = durable ? 200 : 503;

	METRICS_OBSERVE(journal_append_duration, 0, metrics_now_ns() - ww->queued_ns);
	/* a replay of this request from now on is recognised (and not journaled again) */
	if (durable && ww->has_replay_key)
		replay_remember(ww->replay_key, webhook_now_ms(), ww->ttl_ms);
	/* counted before the answer leaves: a client that scrapes after it sees the count */
	webhook_count(ww->provider_idx, ww->event, code, ww->t0_ns);
	/* wire.c keeps a connection whose client went away until we answer (and then frees it) */
	if (durable)
		webhook_send(ww->req, code, "{}", 2);
	else
		webhook_send(ww->req, code, WEBHOOK_NOT_DURABLE, strlen(WEBHOOK_NOT_DURABLE));
	free(ww);
}

/* A call's start or end event frees the concurrency slot its routing took here (the
 * database's count has, or soon has, the call): the one of its call id if the routing request
 * carried the same id, else the oldest. */
static void
webhook_release_slot(struct webhook_req *w, const struct call_event *ev)
{
	const struct route_agent *a = routes_catalog_agent_by_pid(w->snap->catalog,
		w->acct->provider, ev->provider_agent_id);

	if (ev->kind != CALL_STARTED && ev->kind != CALL_ENDED)
		return;
	if (!a && ev->dir == CALL_DIR_INBOUND && ev->to) {
		uint64_t key;
		const struct route_slot *sl;

		if (e164_parse(ev->to, strlen(ev->to), &key) &&
			(sl = routes_number(w->snap, key)) != NULL &&
			sl->agent_idx < w->snap->catalog->n_agents)
			a = &w->snap->catalog->agents[sl->agent_idx];
	}
	if (a && a->client_id)
		route_counts_release(a->client_id, ev->kind == CALL_STARTED, w->now_ms,
			webhook_call_key(w, ev->call_id, ev->call_id ? strlen(ev->call_id) : 0));
}

void
webhook_call_event(struct webhook_req *w, const struct call_event *ev)
{
	/* one record at a time per worker thread; journal_append copies it */
	static _Thread_local char rec[JOURNAL_MAX_RECORD];
	struct ledger_result res;
	struct webhook_wait *ww;

	if (!ledger_validate(w->acct, ev, &res)) {
		webhook_error(w, res.status, res.reason);
		return;
	}
	if (w->replayed) {
		/* made durable before under this very signature: nothing to do again */
		webhook_empty(w);
		return;
	}
	if (!ledger_encode(w->snap, w->acct, ev, w->now_ms, rec, sizeof(rec), &res)) {
		webhook_error(w, res.status, res.reason);
		return;
	}
	webhook_release_slot(w, ev);
	ww = malloc(sizeof(*ww));
	if (ww) {
		ww->req = w->req;
		ww->t0_ns = w->t0_ns;
		ww->queued_ns = metrics_now_ns();
		ww->provider_idx = w->provider_idx;
		ww->event = w->event;
		ww->has_replay_key = w->has_replay_key;
		memcpy(ww->replay_key, w->replay_key, REPLAY_KEY_LEN);
		ww->ttl_ms = w->cfg->signature_tolerance_ms;
	}
	if (!ww || !w->waiter || !journal_append(w->waiter, rec, res.len, ww)) {
		free(ww);
		webhook_error(w, 503, "event could not be made durable; retry");
		return;
	}
	w->deferred = true;
	w->req->deferred = true;
}

static void
webhook_reply(struct webhook_req *w)
{
	if (w->out->failed) {
		w->status = 503;
		webhook_out_reset(w->out);
		w->out->failed = false;
		webhook_out_lit(w->out, "{\"error\":\"out of memory\"}");
	}
	/* counted before the answer leaves: a client that scrapes after it sees the count */
	webhook_count(w->provider_idx, w->event, w->status, w->t0_ns);
	webhook_send(w->req, w->status, w->out->p, w->out->len);
}

/*
 * Replays: a signature that names one request (Retell's and Vapi's carry a timestamp, Bland's
 * covers the body) seen acting before within the signature window.  A routing answer is
 * harmless to repeat and is given again; a call event that was made durable is answered 200
 * without journaling it again.  Bearer tokens and the Bland look-up token name no request.
 */
void
webhook_replay_check(struct webhook_req *w, const struct provider_ops *ops)
{
	const char *sig = NULL, *ts = NULL;

	ops->replay_sig(w, &sig, &ts);
	if (!sig)
		return;
	replay_key(w->acct->slug, sig, ts, w->replay_key);
	w->has_replay_key = true;
	w->replayed = replay_seen(w->replay_key, w->now_ms);
	if (w->replayed)
		METRICS_INC(webhook_replays, w->acct->provider);
}

void
webhook_dispatch(struct webhook_req *w)
{
	const struct provider_ops *ops = provider_ops_get(w->acct->provider);
	const struct provider_event *e;
	const char *name = ops->event_name(w);

	if (!name)
		return;
	e = provider_event_find(ops, name);
	if (!e) {
		/* what may come (transcripts, transfers, the chatty rest): acknowledged, ignored */
		w->event = WE_OTHER;
		webhook_empty(w);
		return;
	}
	w->event = e->event;
	e->handle(w);
}

/* Dispatch; the answer is in w->status and w->out. */
static void
webhook_process(struct webhook_req *w, const char *path)
{
	const struct provider_ops *ops;
	const char *prov, *slash, *slug;
	enum provider_id pid;
	enum sig_result sr;
	json_error_t jerr;

	prov = path + strlen(WEBHOOK_PREFIX);
	slash = strchr(prov, '/');
	if (!slash || !provider_from_name(prov, (size_t)(slash - prov), &pid)) {
		webhook_error(w, 404, "not found");
		return;
	}
	w->provider_idx = pid;
	slug = slash + 1;
	if (!*slug || strchr(slug, '/')) {
		webhook_error(w, 404, "not found");
		return;
	}
	if (w->req->method != WIRE_POST) {
		webhook_error(w, 405, "method not allowed");
		return;
	}
	if (!w->snap) {
		webhook_error(w, 503, "not ready");
		return;
	}
	w->acct = routes_catalog_account(w->snap->catalog, slug, strlen(slug));
	if (!w->acct || w->acct->provider != pid) {
		webhook_error(w, 404, "not found");
		return;
	}
	if (!webhook_json_content_type(webhook_header(w, "Content-Type"))) {
		webhook_error(w, 415, "content type must be application/json");
		return;
	}
	w->len = w->req->body_len;
	if (w->len > w->cfg->max_body_bytes) {
		webhook_error(w, 413, "body too large");
		return;
	}
	w->body = w->len ? (const unsigned char *)w->req->body : (const unsigned char *)"";
	w->now_ms = webhook_now_ms();
	ops = provider_ops_get(pid);
	sr = ops->verify(w);
	if (sr != SIG_OK) {
		static _Thread_local int64_t last_log_ms;
		static _Thread_local unsigned long quiet;

		METRICS_INC(signature_failures, pid);
		/* a flood of forgeries must not flood the log: one line a second per worker */
		if (w->now_ms - last_log_ms >= 1000) {
			log_info("webhook: %s/%s: signature check failed (%s)%s",
				provider_name(pid), w->acct->slug, sig_result_name(sr),
				quiet ? " (more failures since the last line: see "
					"callrouted_webhook_signature_failures_total)" :
					"");
			last_log_ms = w->now_ms;
			quiet = 0;
		} else {
			quiet++;
		}
		webhook_error(w, 401, "unauthorized");
		return;
	}
	/* a routing answer never acts, so a replay of one is neither looked for nor counted (only
	 * a durable call event is remembered, and its signature names a call event's body) */
	if (ops->fast && ops->fast(w))
		return;
	webhook_replay_check(w, ops);
	/* the body's tree lives in this thread's arena until webhook_handle is done with it */
	w->arena = json_arena_begin();
	w->json = json_loadb((const char *)w->body, w->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!w->json || !json_is_object(w->json)) {
		webhook_error(w, 400, "malformed JSON");
		return;
	}
	webhook_dispatch(w);
}

void
webhook_count(unsigned provider_idx, enum webhook_event ev, int status, uint64_t t0_ns)
{
	if (provider_idx > MP_UNKNOWN)
		provider_idx = MP_UNKNOWN;
	if ((unsigned)ev >= WE_COUNT)
		ev = WE_OTHER;
	METRICS_INC(webhook_requests,
		((size_t)provider_idx * WE_COUNT + ev) * MC_CODES + metrics_code_idx(status));
	if (provider_idx < PROVIDER_COUNT && ev != WE_NONE)
		METRICS_OBSERVE(webhook_duration, provider_idx * 2 + !webhook_event_is_inbound(ev),
			metrics_now_ns() - t0_ns);
}

void
webhook_handle(struct wire_req *req, const struct config *cfg, const struct routes_snapshot *snap,
	struct journal_waiter *waiter)
{
	struct webhook_out out = { .cap = sizeof(out.stack) };
	struct webhook_req w = { .req = req,
		.cfg = cfg,
		.snap = snap,
		.status = 500,
		.waiter = waiter,
		.provider_idx = MP_UNKNOWN,
		.t0_ns = metrics_now_ns(),
		.out = &out };
	const char *path = req->path;

	out.p = out.stack;
	if (!path || strncmp(path, WEBHOOK_PREFIX, strlen(WEBHOOK_PREFIX)) != 0)
		webhook_error(&w, 404, "not found");
	else
		webhook_process(&w, path);
	if (!w.deferred) {
		webhook_reply(&w);
	}
	/* a tree wholly in the arena needs no walk to free it: the arena forgets it at once */
	if (!w.arena || !json_arena_all_inside())
		json_decref(w.json);
	if (w.arena)
		json_arena_end();
	if (out.p != out.stack)
		free(out.p);
}
