/* webhook.c: /v1/webhooks/{provider}/{account}: checks, signature, dispatch, answers. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config.h"
#include "e164.h"
#include "log.h"
#include "metrics.h"
#include "webhook.h"

#define WEBHOOK_PREFIX "/v1/webhooks/"

static const struct provider_ops *const webhook_providers[PROVIDER_COUNT] = {
	[PROVIDER_RETELL] = &provider_retell,
	[PROVIDER_VAPI] = &provider_vapi,
	[PROVIDER_BLAND] = &provider_bland,
};

const char *
webhook_header(const struct webhook_req *w, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(w->req), name);
}

void
webhook_json_str(struct evbuffer *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;

	evbuffer_add(b, "\"", 1);
	for (; *p; p++) {
		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		evbuffer_add(b, run, (size_t)(p - run));
		if (*p == '"' || *p == '\\') {
			char e[2] = { '\\', (char)*p };

			evbuffer_add(b, e, 2);
		} else {
			char e[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };

			evbuffer_add(b, e, 6);
		}
		run = p + 1;
	}
	evbuffer_add(b, run, (size_t)(p - run));
	evbuffer_add(b, "\"", 1);
}

void
webhook_json_vars(struct evbuffer *b, const struct route_agent *a)
{
	evbuffer_add_printf(b, "{\"agent_name\":");
	webhook_json_str(b, a->name);
	if (a->client_name) {
		evbuffer_add_printf(b, ",\"client_name\":");
		webhook_json_str(b, a->client_name);
	}
	evbuffer_add(b, "}", 1);
}

void
webhook_json_meta(struct evbuffer *b, const struct route_agent *a, uint64_t number_id)
{
	evbuffer_add_printf(b, "{\"callrouted_agency_id\":\"%llu\"",
		(unsigned long long)a->agency_id);
	if (a->client_id)
		evbuffer_add_printf(b, ",\"callrouted_client_id\":\"%llu\"",
			(unsigned long long)a->client_id);
	evbuffer_add_printf(b, ",\"callrouted_agent_id\":\"%llu\",\"callrouted_number_id\":\"%llu\"}",
		(unsigned long long)a->id, (unsigned long long)number_id);
}

void
webhook_error(struct webhook_req *w, int status, const char *reason)
{
	w->status = status;
	evbuffer_drain(w->out, evbuffer_get_length(w->out));
	evbuffer_add_printf(w->out, "{\"error\":");
	webhook_json_str(w->out, reason);
	evbuffer_add(w->out, "}", 1);
}

void
webhook_empty(struct webhook_req *w)
{
	w->status = 200;
	evbuffer_drain(w->out, evbuffer_get_length(w->out));
	evbuffer_add(w->out, "{}", 2);
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
		w->event ? w->event : "?", number, route_result_name(ans->result));
	return true;
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

static void
webhook_reply(struct webhook_req *w)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(w->req);

	evhttp_add_header(h, "Content-Type", "application/json");
	if (w->status == 405)
		evhttp_add_header(h, "Allow", "POST");
	evhttp_send_reply(w->req, w->status, NULL, w->out);
}

/* Dispatch; the answer is in w->status and w->out. */
static void
webhook_process(struct webhook_req *w, const char *path)
{
	const struct provider_ops *ops;
	const char *prov, *slash, *slug;
	enum provider_id pid;
	struct evbuffer *in;
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
	if (evhttp_request_get_command(w->req) != EVHTTP_REQ_POST) {
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
	in = evhttp_request_get_input_buffer(w->req);
	w->len = evbuffer_get_length(in);
	if (w->len > w->cfg->max_body_bytes) {
		webhook_error(w, 413, "body too large");
		return;
	}
	w->body = w->len ? evbuffer_pullup(in, -1) : (const unsigned char *)"";
	w->now_ms = webhook_now_ms();
	ops = webhook_providers[pid];
	sr = ops->verify(w);
	if (sr != SIG_OK) {
		METRICS_INC(signature_failures, pid);
		log_info("webhook: %s/%s: signature check failed (%s)", ops->name, w->acct->slug,
			sig_result_name(sr));
		webhook_error(w, 401, "unauthorized");
		return;
	}
	w->json = json_loadb((const char *)w->body, w->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!w->json || !json_is_object(w->json)) {
		webhook_error(w, 400, "malformed JSON");
		return;
	}
	ops->handle(w);
}

void
webhook_count(unsigned provider_idx, const char *event, int status, uint64_t t0_ns)
{
	enum metrics_event ev = metrics_event_from_name(event);

	if (provider_idx > MP_UNKNOWN)
		provider_idx = MP_UNKNOWN;
	METRICS_INC(webhook_requests,
		((size_t)provider_idx * ME_COUNT + ev) * MC_CODES + metrics_code_idx(status));
	if (provider_idx < PROVIDER_COUNT && ev != ME_NONE)
		METRICS_OBSERVE(webhook_duration, provider_idx * 2 + !metrics_event_is_inbound(ev),
			metrics_now_ns() - t0_ns);
}

void
webhook_handle(struct evhttp_request *req, const struct config *cfg,
	const struct routes_snapshot *snap, struct journal_waiter *waiter)
{
	struct webhook_req w = { .req = req, .cfg = cfg, .snap = snap, .status = 500,
		.waiter = waiter, .provider_idx = MP_UNKNOWN, .t0_ns = metrics_now_ns() };
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	w.out = evbuffer_new();
	if (!w.out) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	if (!path || strncmp(path, WEBHOOK_PREFIX, strlen(WEBHOOK_PREFIX)) != 0)
		webhook_error(&w, 404, "not found");
	else
		webhook_process(&w, path);
	if (!w.deferred) {
		webhook_reply(&w);
		webhook_count(w.provider_idx, w.event, w.status, w.t0_ns);
	}
	json_decref(w.json);
	evbuffer_free(w.out);
}
