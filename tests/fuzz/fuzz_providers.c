/* fuzz_providers.c: libFuzzer target for each provider's payload handling (its event table). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "webhook.h"
#include "wire.h"

/*
 * Input: one selector byte, then the JSON body.  selector % 3 picks the provider (retell,
 * vapi, bland); bit 2: the Vapi account is the bearer one; bit 3: the Bland request was
 * authorised by the dynamic_data token (w->token_auth).  Signatures are not checked:
 * webhook_dispatch is called as webhook.c calls it after a good signature, on a body that
 * parsed as an object.  No journal waiter: call events that get as far as the journal answer 503.
 */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	fuzz_snapshot(PROVIDER_RETELL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_req req = { .method = WIRE_POST,
		.path = "/v1/webhooks/fuzz/fuzz",
		.keep_alive = true };
	struct webhook_out out = { .cap = sizeof(out.stack) };
	struct webhook_req w = { .req = &req,
		.cfg = fuzz_config(),
		.status = 500,
		.out = &out,
		.now_ms = 1714608500000LL };
	enum provider_id pid;
	json_error_t jerr;
	json_t *answer;
	char *body;
	int fast_status = 0;

	if (size == 0)
		return 0;
	pid = (enum provider_id)(data[0] % PROVIDER_COUNT);
	out.p = out.stack;
	w.snap = fuzz_snapshot(pid);
	w.acct = fuzz_account(pid, data[0] & 4);
	w.token_auth = pid == PROVIDER_BLAND && (data[0] & 8);
	w.provider_idx = pid;
	body = fuzz_strndup(data + 1, size - 1);
	w.body = (const unsigned char *)body;
	w.len = size - 1;
	req.body = body;
	req.body_len = w.len;
	/* the provider's tree-less path (webhook.c tries it first): what it answers, jansson must
	 * read as an object, and the tree's path must answer with the same status */
	if (provider_ops_get(pid)->fast) {
		struct webhook_out fout = { .cap = sizeof(fout.stack) };
		struct webhook_req fw = w;

		fout.p = fout.stack;
		fw.out = &fout;
		if (provider_ops_get(pid)->fast(&fw)) {
			json_t *j = json_loadb(body, w.len, JSON_REJECT_DUPLICATES, &jerr);

			if (!json_is_object(j))
				fuzz_fail("the fast path answered a body jansson refuses (%s)",
					jerr.text);
			json_decref(j);
			fast_status = fw.status;
			answer = json_loadb(fout.p, fout.len, JSON_REJECT_DUPLICATES, &jerr);
			if (!json_is_object(answer))
				fuzz_fail("fast answer is not a JSON object: %.*s", (int)fout.len,
					fout.p);
			json_decref(answer);
		}
		if (fout.p != fout.stack)
			free(fout.p);
	}
	w.json = json_loadb(body, w.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!w.json || !json_is_object(w.json)) {
		json_decref(w.json);
		free(body);
		return 0;
	}
	webhook_dispatch(&w);
	if (fast_status && fast_status != w.status)
		fuzz_fail("fast path status %d, tree path %d", fast_status, w.status);

	/* the answer: a known status, never deferred without a waiter, a JSON object */
	if (w.deferred || req.deferred)
		fuzz_fail("deferred without a journal waiter");
	if (w.status != 200 && w.status != 400 && w.status != 401 && w.status != 404 &&
		w.status != 503)
		fuzz_fail("status %d", w.status);
	if (out.failed)
		fuzz_fail("answer builder failed");
	answer = json_loadb(out.p, out.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(answer))
		fuzz_fail("answer is not a JSON object: %.*s (%s)", (int)out.len, out.p, jerr.text);
	if (w.status != 200 && !json_is_string(json_object_get(answer, "error")))
		fuzz_fail("status %d without an error: %.*s", w.status, (int)out.len, out.p);
	json_decref(answer);
	json_decref(w.json);
	if (out.p != out.stack)
		free(out.p);
	free(body);
	return 0;
}
