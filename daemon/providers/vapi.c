/* providers/vapi.c: Vapi server messages: hmac or bearer auth, assistant-request routing. */
#include <string.h>

#include "config.h"
#include "webhook.h"

static enum sig_result
vapi_verify(struct webhook_req *w)
{
	if (w->acct->auth == WEBHOOK_AUTH_BEARER)
		return sig_verify_vapi_bearer(w->acct->webhook_secret,
			webhook_header(w, "Authorization"), webhook_header(w, "X-Vapi-Secret"));
	return sig_verify_vapi_hmac(w->acct->webhook_secret, webhook_header(w, "x-signature"),
		webhook_header(w, "x-timestamp"), w->body, w->len, w->now_ms,
		w->cfg->signature_tolerance_ms);
}

static void
vapi_assistant_request(struct webhook_req *w, json_t *msg)
{
	json_t *pn = json_object_get(msg, "phoneNumber");
	json_t *num = json_is_object(pn) ? json_object_get(pn, "number") : NULL;
	struct route_answer ans;

	if (!webhook_route(w, json_is_string(num) ? json_string_value(num) : NULL, &ans))
		return;
	w->status = 200;
	if (ans.result != ROUTE_HIT) {
		evbuffer_add_printf(w->out, "{\"error\":");
		webhook_json_str(w->out, w->cfg->vapi_no_agent_message);
		evbuffer_add(w->out, "}", 1);
		return;
	}
	evbuffer_add_printf(w->out, "{\"assistantId\":");
	webhook_json_str(w->out, ans.agent->provider_agent_id);
	evbuffer_add_printf(w->out, ",\"assistantOverrides\":{\"variableValues\":");
	webhook_json_vars(w->out, ans.agent);
	evbuffer_add_printf(w->out, ",\"metadata\":");
	webhook_json_meta(w->out, ans.agent, ans.number_id);
	evbuffer_add_printf(w->out, "}}");
}

static void
vapi_handle(struct webhook_req *w)
{
	json_t *msg = json_object_get(w->json, "message"), *type;

	if (!json_is_object(msg)) {
		webhook_error(w, 400, "missing message");
		return;
	}
	type = json_object_get(msg, "type");
	if (!json_is_string(type)) {
		webhook_error(w, 400, "missing message.type");
		return;
	}
	w->event = json_string_value(type);
	if (strcmp(w->event, "assistant-request") == 0) {
		vapi_assistant_request(w, msg);
		return;
	}
	/* status-update, end-of-call-report and the chatty rest: acknowledged (ledger: later) */
	webhook_empty(w);
}

const struct provider_ops provider_vapi = {
	.name = "vapi",
	.verify = vapi_verify,
	.handle = vapi_handle,
};
