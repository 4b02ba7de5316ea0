/* providers/bland.c: Bland webhooks: X-Webhook-Signature, the dynamic_data look-up, post-call. */
#include <string.h>

#include "config.h"
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
		return sig_verify_bland(w->acct->webhook_secret, sig, w->body, w->len);
	w->token_auth = true;
	return sig_verify_bland_dynamic(w->acct->webhook_secret, w->acct->slug,
		webhook_header(w, "Authorization"));
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
	evbuffer_add_printf(w->out, "{\"agent_id\":");
	webhook_json_str(w->out, ans.agent->provider_agent_id);
	evbuffer_add_printf(w->out, ",\"agent_name\":");
	webhook_json_str(w->out, ans.agent->name);
	if (ans.agent->client_name) {
		evbuffer_add_printf(w->out, ",\"client_name\":");
		webhook_json_str(w->out, ans.agent->client_name);
	}
	evbuffer_add_printf(w->out, ",\"metadata\":");
	webhook_json_meta(w->out, ans.agent, ans.number_id);
	evbuffer_add(w->out, "}", 1);
}

static void
bland_handle(struct webhook_req *w)
{
	json_t *ev = json_object_get(w->json, "event");

	if (json_is_string(ev) && strcmp(json_string_value(ev), "dynamic_data") == 0) {
		w->event = "dynamic_data";
		bland_dynamic_data(w);
		return;
	}
	/* the look-up token authorises the look-up only */
	if (w->token_auth) {
		webhook_error(w, 401, "unauthorized");
		return;
	}
	/* post-call webhooks and live events: acknowledged (ledger: later) */
	w->event = json_object_get(w->json, "category") ? "live-event" : "post-call";
	webhook_empty(w);
}

const struct provider_ops provider_bland = {
	.name = "bland",
	.verify = bland_verify,
	.handle = bland_handle,
};
