/* providers/retell.c: Retell webhooks: x-retell-signature, call_inbound routing, call events. */
#include <string.h>

#include "config.h"
#include "webhook.h"

static enum sig_result
retell_verify(struct webhook_req *w)
{
	return sig_verify_retell(w->acct->api_key, webhook_header(w, "x-retell-signature"), w->body,
		w->len, w->now_ms, w->cfg->signature_tolerance_ms);
}

static const char *
retell_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
retell_inbound(struct webhook_req *w)
{
	json_t *ci = json_object_get(w->json, "call_inbound");
	struct route_answer ans;

	if (!json_is_object(ci)) {
		webhook_error(w, 400, "missing call_inbound");
		return;
	}
	if (!webhook_route(w, retell_str(ci, "to_number"), &ans))
		return;
	w->status = 200;
	if (ans.result != ROUTE_HIT) {
		/* no override: Retell has no fallback agent on our numbers, so the call is not taken */
		evbuffer_add_printf(w->out, "{\"call_inbound\":{}}");
		return;
	}
	evbuffer_add_printf(w->out, "{\"call_inbound\":{\"override_agent_id\":");
	webhook_json_str(w->out, ans.agent->provider_agent_id);
	evbuffer_add_printf(w->out, ",\"dynamic_variables\":");
	webhook_json_vars(w->out, ans.agent);
	evbuffer_add_printf(w->out, ",\"metadata\":");
	webhook_json_meta(w->out, ans.agent, ans.number_id);
	evbuffer_add_printf(w->out, "}}");
}

static void
retell_handle(struct webhook_req *w)
{
	const char *ev = retell_str(w->json, "event");

	w->event = ev;
	if (!ev) {
		webhook_error(w, 400, "missing event");
		return;
	}
	if (strcmp(ev, "call_inbound") == 0) {
		retell_inbound(w);
		return;
	}
	/* call_started, call_ended, call_analyzed and the rest: acknowledged (ledger: later) */
	webhook_empty(w);
}

const struct provider_ops provider_retell = {
	.name = "retell",
	.verify = retell_verify,
	.handle = retell_handle,
};
