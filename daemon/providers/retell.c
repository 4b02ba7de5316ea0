/* providers/retell.c: Retell webhooks: x-retell-signature, call_inbound routing, call events. */
#include <string.h>

#include "callrouted/config.h"
#include "json_scan.h"
#include "ledger.h"
#include "provider_api.h"
#include "providers/registry.h"
#include "webhook.h"

static enum sig_result
retell_verify(struct webhook_req *w)
{
	return sig_verify_retell_key(w->acct->api_key_hmac, webhook_header(w, "x-retell-signature"),
		w->body, w->len, w->now_ms, w->cfg->signature_tolerance_ms);
}

/* The signature covers the body and a timestamp: it names one request. */
static void
retell_replay_sig(const struct webhook_req *w, const char **sig, const char **ts)
{
	*sig = webhook_header(w, "x-retell-signature");
	*ts = NULL;
}

static const char *
retell_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * call_inbound: the number's decision (policy.h).  The answer's fields are the ones Retell
 * documents for the inbound webhook's response, all optional, under call_inbound:
 * override_agent_id, dynamic_variables, metadata, agent_override (its "agent" group holds
 * max_call_duration_ms, the per-call bound of a spend cap)
 * [https://docs.retellai.com/features/inbound-call-webhook].
 * Turned away with no agent to take the call: the account's refusal agent
 * (provider_accounts.refusal_agent_id) if it has one, else no override — on which Retell
 * connects a number's bound inbound agent if it has one (README "Routing policy").
 * call_key: of call_inbound.call_id, which Retell's SDK documents "for deduplication across HTTP
 * retries" (retell-sdk 5.66, inbound_webhook_url; older payloads have none: 0).
 */
static void
retell_inbound_answer(struct webhook_req *w, const char *to, const char *from, uint64_t call_key)
{
	struct policy_result res;

	if (!webhook_decide(w, to, from, call_key, &res))
		return;
	w->status = 200;
	if (!res.agent) {
		if (res.decision == PD_UNASSIGNED) {
			/* no override: Retell has no fallback agent on a number without one */
			webhook_out_lit(w->out, "{\"call_inbound\":{}}");
			return;
		}
		const char *refusal =
			w->snap->policy ? policy_refusal_agent(w->snap->policy, w->acct->id) : NULL;

		webhook_out_lit(w->out, "{\"call_inbound\":{");
		if (refusal) {
			webhook_out_lit(w->out, "\"override_agent_id\":");
			webhook_json_str(w->out, refusal);
			webhook_out_lit(w->out, ",");
		}
		webhook_out_lit(w->out, "\"metadata\":");
		webhook_json_meta_decision(w->out, &res);
		webhook_out_lit(w->out, "}}");
		return;
	}
	webhook_out_lit(w->out, "{\"call_inbound\":{\"override_agent_id\":");
	webhook_json_str(w->out, res.agent->provider_agent_id);
	webhook_out_lit(w->out, ",\"dynamic_variables\":");
	webhook_json_vars(w->out, res.agent);
	webhook_out_lit(w->out, ",\"metadata\":");
	webhook_json_meta_decision(w->out, &res);
	if (res.max_duration_s > 0) {
		webhook_out_lit(w->out,
			",\"agent_override\":{\"agent\":{\"max_call_duration_ms\":");
		webhook_out_u64(w->out, (uint64_t)res.max_duration_s * 1000);
		webhook_out_lit(w->out, "}}");
	}
	webhook_out_lit(w->out, "}}");
}

static void
retell_inbound(struct webhook_req *w)
{
	json_t *ci = json_object_get(w->json, "call_inbound");

	if (!json_is_object(ci)) {
		webhook_error(w, 400, "missing call_inbound");
		return;
	}
	json_t *id = json_object_get(ci, "call_id");

	retell_inbound_answer(w, retell_str(ci, "to_number"), retell_str(ci, "from_number"),
		json_is_string(id) ?
			webhook_call_key(w, json_string_value(id), json_string_length(id)) :
			0);
}

/* A number's text longer than this is no E.164 number: left to the tree's path. */
#define RETELL_FAST_MAX 64

static void retell_event(struct webhook_req *w, struct call_event *ev, enum call_kind kind,
	const char *dir);

/* call_started / call_ended / call_analyzed without the tree: the same event as
 * retell_call_event reads (strings too long for the buffers are left to the tree's path). */
enum {
	F_EVENT,
	F_CI,
	F_TO,
	F_FROM,
	F_CI_ID, /* call_inbound.call_id: the slot's key (route_counts_call_key) */
	F_CALL,
	F_ID,
	F_DIR,
	F_CFROM,
	F_CTO,
	F_AGENT,
	F_ST,
	F_EN,
	F_WHY,
	F_DUR,
	F_N
};

static void
retell_fast_ms(const struct jscan_field *f, int64_t *out, struct call_event *ev, const char *bad)
{
	int64_t v;

	*out = -1;
	if (f->type == JSCAN_ABSENT || jscan_is_null(f))
		return;
	if (jscan_int(f, &v) && v >= 0)
		*out = v;
	else
		ev->invalid = bad; /* as retell_ms: the last field found bad names the fault */
}

static bool
retell_fast_event(struct webhook_req *w, const struct jscan_field *f, enum call_kind kind)
{
	char id[LEDGER_MAX_CALL_ID + 2], dir[16], from[LEDGER_MAX_NUMBER + 2],
		to[LEDGER_MAX_NUMBER + 2], agent[LEDGER_MAX_AGENT_ID + 2],
		why[LEDGER_MAX_END_REASON + 2];
	struct call_event ev = { .kind = kind,
		.started_ms = -1,
		.ended_ms = -1,
		.duration_ms = -1 };
	const char *d;
	int64_t st, en, dur = -1;

	if (f[F_CALL].type != JSCAN_OBJECT) {
		webhook_replay_check(w, provider_ops_get(w->acct->provider));
		webhook_error(w, 400, "missing call");
		return true;
	}
	if (!jscan_cstr(&f[F_ID], id, sizeof(id), &ev.call_id) ||
		!jscan_cstr(&f[F_DIR], dir, sizeof(dir), &d) ||
		!jscan_cstr(&f[F_CFROM], from, sizeof(from), &ev.from) ||
		!jscan_cstr(&f[F_CTO], to, sizeof(to), &ev.to) ||
		!jscan_cstr(&f[F_AGENT], agent, sizeof(agent), &ev.provider_agent_id) ||
		!jscan_cstr(&f[F_WHY], why, sizeof(why), &ev.end_reason))
		return false;
	/* in the tree's order */
	retell_fast_ms(&f[F_ST], &st, &ev, "start_timestamp is not a time in ms");
	retell_fast_ms(&f[F_EN], &en, &ev, "end_timestamp is not a time in ms");
	if (kind == CALL_ENDED)
		retell_fast_ms(&f[F_DUR], &dur, &ev, "duration_ms is not a non-negative integer");
	ev.started_ms = st;
	ev.ended_ms = en;
	ev.duration_ms = dur;
	webhook_replay_check(w, provider_ops_get(w->acct->provider));
	retell_event(w, &ev, kind, d);
	return true;
}

/* call_inbound, and the call events, without the tree: the same answers as
 * retell_event_name + the events' handlers. */
static bool
retell_fast(struct webhook_req *w)
{
	struct jscan_field f[F_N] = {
		[F_EVENT] = { .path = { "event" } },
		[F_CI] = { .path = { "call_inbound" } },
		[F_TO] = { .path = { "call_inbound", "to_number" } },
		[F_FROM] = { .path = { "call_inbound", "from_number" } },
		[F_CI_ID] = { .path = { "call_inbound", "call_id" } },
		[F_CALL] = { .path = { "call" } },
		[F_ID] = { .path = { "call", "call_id" } },
		[F_DIR] = { .path = { "call", "direction" } },
		[F_CFROM] = { .path = { "call", "from_number" } },
		[F_CTO] = { .path = { "call", "to_number" } },
		[F_AGENT] = { .path = { "call", "agent_id" } },
		[F_ST] = { .path = { "call", "start_timestamp" } },
		[F_EN] = { .path = { "call", "end_timestamp" } },
		[F_WHY] = { .path = { "call", "disconnection_reason" } },
		[F_DUR] = { .path = { "call", "duration_ms" } },
	};
	char tobuf[RETELL_FAST_MAX], frombuf[RETELL_FAST_MAX];
	const char *to, *from;
	uint64_t key;
	/* a body that names call_inbound (a routing request's event is that text: the scanner
	 * takes no escapes) is read for the routing fields alone: they cost routing nothing */
	size_t nf = memmem(w->body, w->len, "call_inbound", 12) ? F_CALL : F_N;

	if (!json_scan((const char *)w->body, w->len, f, nf))
		return false;
	/* with the call's fields read (nf == F_N) a call event is handled here */
	if (nf == F_N &&
		(jscan_is(&f[F_EVENT], "call_ended") || jscan_is(&f[F_EVENT], "call_analyzed"))) {
		w->event = jscan_is(&f[F_EVENT], "call_ended") ? WE_CALL_ENDED : WE_CALL_ANALYZED;
		return retell_fast_event(w, f, CALL_ENDED);
	}
	if (nf == F_N && jscan_is(&f[F_EVENT], "call_started")) {
		w->event = WE_CALL_STARTED;
		return retell_fast_event(w, f, CALL_STARTED);
	}
	if (!jscan_is(&f[F_EVENT], "call_inbound") ||
		!jscan_cstr(&f[F_TO], tobuf, sizeof(tobuf), &to) ||
		!jscan_cstr(&f[F_FROM], frombuf, sizeof(frombuf), &from))
		return false;
	w->event = WE_CALL_INBOUND;
	key = f[F_CI_ID].type == JSCAN_STRING ? webhook_call_key(w, f[F_CI_ID].s, f[F_CI_ID].n) : 0;
	if (f[F_CI].type != JSCAN_OBJECT)
		webhook_error(w, 400, "missing call_inbound");
	else
		retell_inbound_answer(w, to, from, key);
	return true;
}

/* Disconnection reasons of calls that never connected (Retell's call object documents them
 * among disconnection_reason's values; such calls get no call_started, only call_ended). */
static const char *const retell_not_connected[] = {
	"dial_failed",
	"dial_no_answer",
	"dial_busy",
	"invalid_destination",
};

/* A time or duration in ms: -1 if absent (or null); present but not a non-negative integer
 * marks the event invalid (the ledger refuses it rather than billing it as unknown). */
static int64_t
retell_ms(json_t *o, const char *key, struct call_event *ev, const char *bad)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return -1;
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		return json_integer_value(v);
	ev->invalid = bad;
	return -1;
}

/*
 * call_started / call_ended / call_analyzed.  Duration: call.duration_ms, else
 * end_timestamp - start_timestamp.  Never connected: no start_timestamp, or a dial_* /
 * invalid_destination disconnection reason.  call_analyzed repeats call_ended's facts: it is an
 * end event too, and the ledger's key makes them one row.
 */
static void
retell_call_event(struct webhook_req *w, enum call_kind kind)
{
	json_t *call = json_object_get(w->json, "call");
	struct call_event ev = { .kind = kind,
		.started_ms = -1,
		.ended_ms = -1,
		.duration_ms = -1 };
	const char *dir;

	if (!json_is_object(call)) {
		webhook_error(w, 400, "missing call");
		return;
	}
	ev.call_id = retell_str(call, "call_id");
	dir = retell_str(call, "direction");
	ev.from = retell_str(call, "from_number");
	ev.to = retell_str(call, "to_number");
	ev.provider_agent_id = retell_str(call, "agent_id");
	ev.started_ms =
		retell_ms(call, "start_timestamp", &ev, "start_timestamp is not a time in ms");
	ev.ended_ms = retell_ms(call, "end_timestamp", &ev, "end_timestamp is not a time in ms");
	ev.end_reason = retell_str(call, "disconnection_reason");
	if (kind == CALL_ENDED)
		ev.duration_ms = retell_ms(call, "duration_ms", &ev,
			"duration_ms is not a non-negative integer");
	retell_event(w, &ev, kind, dir);
}

/* What the tree's path and the fast path share: the event from the call's fields as read. */
static void
retell_event(struct webhook_req *w, struct call_event *ev, enum call_kind kind, const char *dir)
{
	ev->dir = !dir                         ? CALL_DIR_UNKNOWN :
		  strcmp(dir, "inbound") == 0  ? CALL_DIR_INBOUND :
		  strcmp(dir, "outbound") == 0 ? CALL_DIR_OUTBOUND :
						 CALL_DIR_UNKNOWN;
	ev->connected = ev->started_ms >= 0;
	for (size_t i = 0; ev->end_reason && i < sizeof(retell_not_connected) / sizeof(char *); i++)
		if (strcmp(ev->end_reason, retell_not_connected[i]) == 0)
			ev->connected = false;
	if (kind == CALL_ENDED) {
		if (ev->duration_ms < 0 && ev->started_ms >= 0 && ev->ended_ms >= ev->started_ms)
			ev->duration_ms = ev->ended_ms - ev->started_ms;
		/* connected with no duration anywhere: we cannot bill what we cannot measure */
		ev->rated = !ev->connected || ev->duration_ms >= 0;
	}
	webhook_call_event(w, ev);
}

static void
retell_started(struct webhook_req *w)
{
	retell_call_event(w, CALL_STARTED);
}

static void
retell_ended(struct webhook_req *w)
{
	retell_call_event(w, CALL_ENDED);
}

static const char *
retell_event_name(struct webhook_req *w)
{
	const char *ev = retell_str(w->json, "event");

	if (!ev)
		webhook_error(w, 400, "missing event");
	return ev;
}

/* transcript_updated, transfer_* and what may come are not listed: acknowledged, ignored */
static const struct provider_event retell_events[] = {
	{ "call_inbound", WE_CALL_INBOUND, retell_inbound },
	{ "call_started", WE_CALL_STARTED, retell_started },
	{ "call_ended", WE_CALL_ENDED, retell_ended },
	{ "call_analyzed", WE_CALL_ANALYZED, retell_ended },
	{ NULL, WE_NONE, NULL },
};

const struct provider_ops provider_retell = {
	.id = PROVIDER_RETELL,
	.verify = retell_verify,
	.replay_sig = retell_replay_sig,
	.event_name = retell_event_name,
	.events = retell_events,
	.fast = retell_fast,
	.api = &provider_api_retell,
};
