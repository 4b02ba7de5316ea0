/* providers/retell.c: Retell webhooks: x-retell-signature, call_inbound routing, call events. */
#include <string.h>

#include "callrouted/config.h"
#include "ledger.h"
#include "provider_api.h"
#include "providers/registry.h"
#include "webhook.h"

static enum sig_result
retell_verify(struct webhook_req *w)
{
	return sig_verify_retell(w->acct->api_key, webhook_header(w, "x-retell-signature"), w->body,
		w->len, w->now_ms, w->cfg->signature_tolerance_ms);
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
 */
static void
retell_inbound(struct webhook_req *w)
{
	json_t *ci = json_object_get(w->json, "call_inbound");
	struct policy_result res;

	if (!json_is_object(ci)) {
		webhook_error(w, 400, "missing call_inbound");
		return;
	}
	if (!webhook_decide(w, retell_str(ci, "to_number"), retell_str(ci, "from_number"), &res))
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
	ev.dir = !dir                         ? CALL_DIR_UNKNOWN :
		 strcmp(dir, "inbound") == 0  ? CALL_DIR_INBOUND :
		 strcmp(dir, "outbound") == 0 ? CALL_DIR_OUTBOUND :
						CALL_DIR_UNKNOWN;
	ev.from = retell_str(call, "from_number");
	ev.to = retell_str(call, "to_number");
	ev.provider_agent_id = retell_str(call, "agent_id");
	ev.started_ms =
		retell_ms(call, "start_timestamp", &ev, "start_timestamp is not a time in ms");
	ev.ended_ms = retell_ms(call, "end_timestamp", &ev, "end_timestamp is not a time in ms");
	ev.end_reason = retell_str(call, "disconnection_reason");
	ev.connected = ev.started_ms >= 0;
	for (size_t i = 0; ev.end_reason && i < sizeof(retell_not_connected) / sizeof(char *); i++)
		if (strcmp(ev.end_reason, retell_not_connected[i]) == 0)
			ev.connected = false;
	if (kind == CALL_ENDED) {
		ev.duration_ms = retell_ms(call, "duration_ms", &ev,
			"duration_ms is not a non-negative integer");
		if (ev.duration_ms < 0 && ev.started_ms >= 0 && ev.ended_ms >= ev.started_ms)
			ev.duration_ms = ev.ended_ms - ev.started_ms;
		/* connected with no duration anywhere: we cannot bill what we cannot measure */
		ev.rated = !ev.connected || ev.duration_ms >= 0;
	}
	webhook_call_event(w, &ev);
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
	.api = &provider_api_retell,
};
