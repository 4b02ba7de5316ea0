/* providers/bland.c: Bland webhooks: X-Webhook-Signature, the dynamic_data look-up, post-call. */
#include <string.h>

#include "callrouted/config.h"
#include "ledger.h"
#include "provider_api.h"
#include "providers/registry.h"
#include "callrouted/rating.h"
#include "webhook.h"

/*
 * Bland has no per-call routing webhook: a number is bound to its agent's pathway when it is
 * assigned, and configured with a dynamic_data request to this endpoint:
 *   POST /v1/webhooks/bland/{slug}  {"event":"dynamic_data","to":"{{to}}","from":"{{from}}",
 *   "call_id":"{{call_id}}"}  with "Authorization: Bearer <sig_bland_dynamic_token()>".
 * Post-call webhooks are signed with X-Webhook-Signature over the raw body.
 */
static enum sig_result
bland_verify(struct webhook_req *w)
{
	const char *sig = webhook_header(w, "X-Webhook-Signature");

	if (sig)
		return sig_verify_bland_key(w->acct->secret_hmac, sig, w->body, w->len);
	w->token_auth = true;
	return sig_verify_bland_dynamic(w->acct->webhook_secret, w->acct->slug,
		webhook_header(w, "Authorization"));
}

/* The post-call signature covers the body: it names one request (the look-up token names
 * none). */
static void
bland_replay_sig(const struct webhook_req *w, const char **sig, const char **ts)
{
	if (!w->token_auth)
		*sig = webhook_header(w, "X-Webhook-Signature");
	*ts = NULL;
}

static void
bland_dynamic_data(struct webhook_req *w)
{
	json_t *to = json_object_get(w->json, "to");
	struct route_answer ans;

	if (!webhook_route(w, json_is_string(to) ? json_string_value(to) : NULL, &ans))
		return;
	if (ans.result != ROUTE_HIT) {
		webhook_error(w, 404, "no agent");
		return;
	}
	w->status = 200;
	webhook_out_lit(w->out, "{\"agent_id\":");
	webhook_json_str(w->out, ans.agent->provider_agent_id);
	webhook_out_lit(w->out, ",\"agent_name\":");
	webhook_json_str(w->out, ans.agent->name);
	if (ans.agent->client_name) {
		webhook_out_lit(w->out, ",\"client_name\":");
		webhook_json_str(w->out, ans.agent->client_name);
	}
	webhook_out_lit(w->out, ",\"metadata\":");
	webhook_json_meta(w->out, ans.agent, ans.number_id);
	webhook_out_lit(w->out, "}");
}

static const char *
bland_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * The post-call webhook (the call object).  Duration: corrected_duration (seconds, a string)
 * x 1000, else call_length (minutes) x 60000.  Never connected: completed false or duration 0.
 * The agent is the pathway the number is bound to (our agents' provider_agent_id for Bland).
 */
static void
bland_post_call(struct webhook_req *w)
{
	struct call_event ev = { .kind = CALL_ENDED,
		.duration_ms = -1,
		.started_ms = -1,
		.ended_ms = -1 };
	json_t *inbound = json_object_get(w->json, "inbound");
	json_t *len = json_object_get(w->json, "call_length");
	const char *cd = bland_str(w->json, "corrected_duration"), *t;
	int64_t ms;

	ev.call_id = bland_str(w->json, "call_id");
	if (!ev.call_id)
		ev.call_id = bland_str(w->json, "c_id");
	ev.dir = json_is_true(inbound)  ? CALL_DIR_INBOUND :
		 json_is_false(inbound) ? CALL_DIR_OUTBOUND :
					  CALL_DIR_UNKNOWN;
	ev.from = bland_str(w->json, "from");
	ev.to = bland_str(w->json, "to");
	ev.provider_agent_id = bland_str(w->json, "pathway_id");
	/* times are informative (the duration bills): one Bland does not give as ISO 8601 is
	 * unknown; one before 1970 is refused with the event */
	if ((t = bland_str(w->json, "started_at")) && rating_parse_iso8601_ms(t, &ms)) {
		ev.started_ms = ms >= 0 ? ms : -1;
		if (ms < 0)
			ev.invalid = "started_at before 1970";
	}
	if ((t = bland_str(w->json, "end_at")) && rating_parse_iso8601_ms(t, &ms)) {
		ev.ended_ms = ms >= 0 ? ms : -1;
		if (ms < 0)
			ev.invalid = "end_at before 1970";
	}
	if (cd && rating_parse_seconds_string_ms(cd, &ms))
		ev.duration_ms = ms;
	else if (json_is_number(len) && rating_minutes_to_ms(json_number_value(len), &ms))
		ev.duration_ms = ms;
	else if (cd || (len && !json_is_null(len)))
		/* a duration given that we cannot read: refused, never billed as nothing */
		ev.invalid = "unreadable corrected_duration or call_length";
	ev.end_reason = bland_str(w->json, "error_message");
	if (!ev.end_reason)
		ev.end_reason = bland_str(w->json, "call_ended_by");
	ev.connected = json_is_true(json_object_get(w->json, "completed")) && ev.duration_ms > 0;
	ev.rated = !ev.connected || ev.duration_ms >= 0;
	webhook_call_event(w, &ev);
}

/*
 * Bland's bodies carry no one event field: the look-up says "event":"dynamic_data", live
 * webhook_events bodies ({message, call_id, category, log_level}) and enrichment payloads
 * (citations, transcripts: event_type) are told by their keys, the rest is the post-call.
 */
static const char *
bland_event_name(struct webhook_req *w)
{
	json_t *ev = json_object_get(w->json, "event");

	if (json_is_string(ev) && strcmp(json_string_value(ev), "dynamic_data") == 0)
		return "dynamic_data";
	/* the look-up token authorises the look-up only */
	if (w->token_auth) {
		webhook_error(w, 401, "unauthorized");
		return NULL;
	}
	if (json_object_get(w->json, "category") && json_object_get(w->json, "log_level"))
		return "live-event";
	if (json_object_get(w->json, "event_type"))
		return "enrichment";
	return "post-call";
}

/* live events and enrichments: nothing to route or bill */
static const struct provider_event bland_events[] = {
	{ "dynamic_data", WE_DYNAMIC_DATA, bland_dynamic_data },
	{ "live-event", WE_LIVE_EVENT, webhook_empty },
	{ "enrichment", WE_OTHER, webhook_empty },
	{ "post-call", WE_POST_CALL, bland_post_call },
	{ NULL, WE_NONE, NULL },
};

const struct provider_ops provider_bland = {
	.id = PROVIDER_BLAND,
	.verify = bland_verify,
	.replay_sig = bland_replay_sig,
	.event_name = bland_event_name,
	.events = bland_events,
	.api = &provider_api_bland,
};
