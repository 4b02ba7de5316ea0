/* providers/vapi.c: Vapi server messages: hmac or bearer auth, assistant-request routing. */
#include <string.h>

#include "callrouted/config.h"
#include "json_scan.h"
#include "ledger.h"
#include "provider_api.h"
#include "providers/registry.h"
#include "callrouted/rating.h"
#include "webhook.h"

static enum sig_result
vapi_verify(struct webhook_req *w)
{
	if (w->acct->auth == WEBHOOK_AUTH_BEARER)
		return sig_verify_vapi_bearer(w->acct->webhook_secret,
			webhook_header(w, "Authorization"), webhook_header(w, "X-Vapi-Secret"));
	return sig_verify_vapi_hmac_key(w->acct->secret_hmac, webhook_header(w, "x-signature"),
		webhook_header(w, "x-timestamp"), w->body, w->len, w->now_ms,
		w->cfg->signature_tolerance_ms);
}

/* An hmac signature covers the body and a timestamp: it names one request (a bearer secret
 * names none). */
static void
vapi_replay_sig(const struct webhook_req *w, const char **sig, const char **ts)
{
	if (w->acct->auth == WEBHOOK_AUTH_HMAC) {
		*sig = webhook_header(w, "x-signature");
		*ts = webhook_header(w, "x-timestamp");
	}
}

/* The caller of an assistant-request: message.customer.number, else the call's customer. */
static const char *
vapi_caller(json_t *msg)
{
	json_t *cu = json_object_get(msg, "customer"), *n;

	if (!json_is_object(cu))
		cu = json_object_get(json_object_get(msg, "call"), "customer");
	n = json_is_object(cu) ? json_object_get(cu, "number") : NULL;
	return json_is_string(n) ? json_string_value(n) : NULL;
}

/* Vapi's range of assistant.maxDurationSeconds: 10 to 43,200 seconds
 * [https://docs.vapi.ai/documentation/assistants/conversation-behavior/call-timeout-settings] */
#define VAPI_MIN_DURATION_S 10
#define VAPI_MAX_DURATION_S 43200

/*
 * assistant-request: the decision (policy.h).  An assistant: assistantId with
 * assistantOverrides (variableValues, metadata, and maxDurationSeconds under a spend cap);
 * turned away with no agent: {"error": message}, which Vapi speaks to the caller before it
 * hangs up (the call is not taken).  call_key: of message.call.id, the call's id in every
 * message of it (a retry, e.g. HAProxy's, carries the same; none: 0).
 */
static void
vapi_assistant_answer(struct webhook_req *w, const char *number, const char *caller,
	uint64_t call_key)
{
	struct policy_result res;

	if (!webhook_decide(w, number, caller, call_key, &res))
		return;
	w->status = 200;
	if (!res.agent) {
		webhook_out_lit(w->out, "{\"error\":");
		webhook_json_str(w->out, w->cfg->vapi_no_agent_message);
		webhook_out_lit(w->out, "}");
		return;
	}
	webhook_out_lit(w->out, "{\"assistantId\":");
	webhook_json_str(w->out, res.agent->provider_agent_id);
	webhook_out_lit(w->out, ",\"assistantOverrides\":{\"variableValues\":");
	webhook_json_vars(w->out, res.agent);
	webhook_out_lit(w->out, ",\"metadata\":");
	webhook_json_meta_decision(w->out, &res);
	if (res.max_duration_s > 0) {
		int64_t s = res.max_duration_s;

		if (s < VAPI_MIN_DURATION_S)
			s = VAPI_MIN_DURATION_S;
		if (s > VAPI_MAX_DURATION_S)
			s = VAPI_MAX_DURATION_S;
		webhook_out_lit(w->out, ",\"maxDurationSeconds\":");
		webhook_out_u64(w->out, (uint64_t)s);
	}
	webhook_out_lit(w->out, "}}");
}

static void
vapi_assistant_request(struct webhook_req *w)
{
	json_t *msg = json_object_get(w->json, "message");
	json_t *pn = json_object_get(msg, "phoneNumber");
	json_t *num = json_is_object(pn) ? json_object_get(pn, "number") : NULL;
	json_t *call = json_object_get(msg, "call");
	json_t *id = json_is_object(call) ? json_object_get(call, "id") : NULL;

	vapi_assistant_answer(w, json_is_string(num) ? json_string_value(num) : NULL,
		vapi_caller(msg),
		json_is_string(id) ?
			webhook_call_key(w, json_string_value(id), json_string_length(id)) :
			0);
}

/* A number's text longer than this is no E.164 number: left to the tree's path. */
#define VAPI_FAST_MAX 64

/* assistant-request without the tree: the same answers as vapi_event_name +
 * vapi_assistant_request (the caller as vapi_caller finds it). */
static bool
vapi_fast(struct webhook_req *w)
{
	enum { F_MSG, F_TYPE, F_NUM, F_CU, F_CU_NUM, F_CALL_CU, F_CALL_CU_NUM, F_CALL_ID, F_N };
	struct jscan_field f[F_N] = {
		[F_MSG] = { .path = { "message" } },
		[F_TYPE] = { .path = { "message", "type" } },
		[F_NUM] = { .path = { "message", "phoneNumber", "number" } },
		[F_CU] = { .path = { "message", "customer" } },
		[F_CU_NUM] = { .path = { "message", "customer", "number" } },
		[F_CALL_CU] = { .path = { "message", "call", "customer" } },
		[F_CALL_CU_NUM] = { .path = { "message", "call", "customer", "number" } },
		[F_CALL_ID] = { .path = { "message", "call", "id" } },
	};
	char numbuf[VAPI_FAST_MAX], callerbuf[VAPI_FAST_MAX];
	const char *num, *caller;
	const struct jscan_field *cn, *id;

	if (!json_scan((const char *)w->body, w->len, f, F_N) || f[F_MSG].type != JSCAN_OBJECT ||
		!jscan_is(&f[F_TYPE], "assistant-request") ||
		!jscan_cstr(&f[F_NUM], numbuf, sizeof(numbuf), &num))
		return false;
	cn = f[F_CU].type == JSCAN_OBJECT      ? &f[F_CU_NUM] :
	     f[F_CALL_CU].type == JSCAN_OBJECT ? &f[F_CALL_CU_NUM] :
						 NULL;
	caller = NULL;
	if (cn && !jscan_cstr(cn, callerbuf, sizeof(callerbuf), &caller))
		return false;
	w->event = WE_ASSISTANT_REQUEST;
	id = &f[F_CALL_ID];
	vapi_assistant_answer(w, num, caller,
		id->type == JSCAN_STRING ? webhook_call_key(w, id->s, id->n) : 0);
	return true;
}

static const char *
vapi_str(json_t *o, const char *key)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* startedAt / endedAt: message level, else the call object's; -1 if absent.  Present but
 * not an ISO 8601 time after 1970 marks the event invalid (refused, not billed as unknown). */
static int64_t
vapi_time(json_t *msg, json_t *call, const char *key, struct call_event *ev)
{
	const char *s = vapi_str(msg, key);
	int64_t ms;

	if (!s)
		s = vapi_str(call, key);
	if (!s)
		return -1;
	if (rating_parse_iso8601_ms(s, &ms) && ms >= 0)
		return ms;
	ev->invalid =
		strcmp(key, "startedAt") == 0 ? "startedAt is not a time" : "endedAt is not a time";
	return -1;
}

/*
 * status-update (in-progress: started; ended: ended) and end-of-call-report (ended).  Vapi has
 * no duration field: duration = endedAt - startedAt.  No startedAt: never connected.  A
 * status-update "ended" without endedAt marks the call ended but is not rated: the
 * end-of-call-report that follows is.
 */
static void
vapi_call_event(struct webhook_req *w, json_t *msg, enum call_kind kind)
{
	json_t *call = json_object_get(msg, "call");
	struct call_event ev = { .kind = kind, .duration_ms = -1 };
	const char *type = vapi_str(call, "type");
	const char *ours = vapi_str(json_object_get(msg, "phoneNumber"), "number");
	const char *customer = vapi_str(json_object_get(call, "customer"), "number");

	if (!json_is_object(call)) {
		webhook_error(w, 400, "missing message.call");
		return;
	}
	if (!customer)
		customer = vapi_str(json_object_get(msg, "customer"), "number");
	ev.call_id = vapi_str(call, "id");
	if (type && strcmp(type, "inboundPhoneCall") == 0) {
		ev.dir = CALL_DIR_INBOUND;
		ev.from = customer;
		ev.to = ours;
	} else if (type && strcmp(type, "outboundPhoneCall") == 0) {
		ev.dir = CALL_DIR_OUTBOUND;
		ev.from = ours;
		ev.to = customer;
	}
	ev.provider_agent_id = vapi_str(call, "assistantId");
	ev.started_ms = vapi_time(msg, call, "startedAt", &ev);
	ev.ended_ms = vapi_time(msg, call, "endedAt", &ev);
	ev.end_reason = vapi_str(msg, "endedReason");
	ev.connected = ev.started_ms >= 0;
	if (kind == CALL_ENDED) {
		/* a status-update "ended" is priced by the end-of-call-report that follows */
		ev.priced_later = w->event == WE_STATUS_UPDATE;
		if (ev.connected && ev.ended_ms >= ev.started_ms)
			ev.duration_ms = ev.ended_ms - ev.started_ms;
		ev.rated = !ev.connected || ev.duration_ms >= 0;
	}
	webhook_call_event(w, &ev);
}

static void
vapi_end_of_call_report(struct webhook_req *w)
{
	vapi_call_event(w, json_object_get(w->json, "message"), CALL_ENDED);
}

/* in-progress starts the call, ended ends it; the other statuses are acknowledged */
static void
vapi_status_update(struct webhook_req *w)
{
	json_t *msg = json_object_get(w->json, "message");
	const char *st = vapi_str(msg, "status");

	if (st && strcmp(st, "in-progress") == 0)
		vapi_call_event(w, msg, CALL_STARTED);
	else if (st && strcmp(st, "ended") == 0)
		vapi_call_event(w, msg, CALL_ENDED);
	else
		webhook_empty(w);
}

static const char *
vapi_event_name(struct webhook_req *w)
{
	json_t *msg = json_object_get(w->json, "message"), *type;

	if (!json_is_object(msg)) {
		webhook_error(w, 400, "missing message");
		return NULL;
	}
	type = json_object_get(msg, "type");
	if (!json_is_string(type)) {
		webhook_error(w, 400, "missing message.type");
		return NULL;
	}
	return json_string_value(type);
}

/* conversation-update, speech-update and the chatty rest are not listed: acknowledged */
static const struct provider_event vapi_events[] = {
	{ "assistant-request", WE_ASSISTANT_REQUEST, vapi_assistant_request },
	{ "end-of-call-report", WE_END_OF_CALL_REPORT, vapi_end_of_call_report },
	{ "status-update", WE_STATUS_UPDATE, vapi_status_update },
	{ NULL, WE_NONE, NULL },
};

const struct provider_ops provider_vapi = {
	.id = PROVIDER_VAPI,
	.verify = vapi_verify,
	.replay_sig = vapi_replay_sig,
	.event_name = vapi_event_name,
	.events = vapi_events,
	.fast = vapi_fast,
	.api = &provider_api_vapi,
};
