/* fuzz_signature.c: libFuzzer target for the signature parsers, verifiers and signers. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"
#include "callrouted/signature.h"

/*
 * Input: one selector byte, then '\n'-separated header1, header2 (and the secret when bit 5 is
 * set), then the body (the rest, any bytes).
 *   selector % 8: 0 retell (x-retell-signature), 1 vapi hmac (x-signature, x-timestamp),
 *                 2 vapi bearer (Authorization, X-Vapi-Secret), 3 bland (X-Webhook-Signature),
 *                 4 bland dynamic (Authorization, header2 = the account slug), 5..7 as 0..2
 *   bit 3: header1 absent; bit 4: header2 absent; bit 5: secret from the input;
 *   bit 6: "now" is 1 ms past the replay window of the vectors' time.
 * Without bit 5 the secrets are those of tests/unit/test_signature.c, so its vectors pass.
 */

#define FZ_NOW 1700000000000LL
#define FZ_TOLERANCE 300000LL

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

static void
fz_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void
fz_hmac(const char *key, const void *p1, size_t l1, const void *p2, size_t l2, char out[65])
{
	if (!sig_hmac_sha256_hex(key, strlen(key), p1, l1, p2, l2, out))
		fuzz_fail("sig_hmac_sha256_hex failed");
}

/* The reference of sig_verify_vapi_bearer's acceptance. */
static bool
fz_bearer_ok(const char *secret, const char *auth, const char *xv)
{
	if (!*secret)
		return false;
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		const char *t = auth + 7;

		while (*t == ' ')
			t++;
		if (*t && strcmp(t, secret) == 0)
			return true;
	}
	return xv && strcmp(xv, secret) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const secrets[] = { "test-api-key", "vapi-test-secret",
		"vapi-bearer-secret", "bland-test-secret", "bland-test-secret" };
	const uint8_t *f;
	size_t fl, blen;
	uint8_t sel;
	char *h1, *h2, *secret, *body, want[65], buf[128];
	const char *a1, *a2;
	int64_t now;
	enum sig_result r = SIG_OK;
	int which;

	if (size == 0)
		return 0;
	sel = data[0];
	data++, size--;
	which = (sel & 7) % 5;
	fuzz_take(&data, &size, '\n', &f, &fl);
	h1 = fuzz_strndup(f, fl);
	fuzz_take(&data, &size, '\n', &f, &fl);
	h2 = fuzz_strndup(f, fl);
	if (sel & 0x20) {
		fuzz_take(&data, &size, '\n', &f, &fl);
		secret = fuzz_strndup(f, fl);
	} else {
		secret = strdup(secrets[which]);
	}
	body = fuzz_strndup(data, size); /* exactly size bytes plus a NUL ASan knows about */
	blen = size;
	a1 = sel & 0x08 ? NULL : h1;
	a2 = sel & 0x10 ? NULL : h2;
	now = sel & 0x40 ? FZ_NOW + FZ_TOLERANCE + 1 : FZ_NOW;

	switch (which) {
	case 0:
		r = sig_verify_retell(secret, a1, body, blen, now, FZ_TOLERANCE);
		if (r == SIG_OK) {
			/* accepted: header is exactly "v=<ts>,d=<hmac(body || ts)>" */
			const char *ts = a1 + 2;
			size_t nts = strcspn(ts, ",");

			fz_hmac(secret, body, blen, ts, nts, want);
			snprintf(buf, sizeof(buf), "v=%.*s,d=%s", (int)nts, ts, want);
			if (strcmp(buf, a1) != 0)
				fuzz_fail("retell accepted \"%s\", want \"%s\"", a1, buf);
		}
		break;
	case 1:
		r = sig_verify_vapi_hmac(secret, a1, a2, body, blen, now, FZ_TOLERANCE);
		if (r == SIG_OK) {
			const char *sig = strncasecmp(a1, "sha256=", 7) == 0 ? a1 + 7 : a1;

			snprintf(buf, sizeof(buf), "%s.", a2);
			fz_hmac(secret, buf, strlen(buf), body, blen, want);
			snprintf(buf, sizeof(buf), "%s", sig);
			fz_lower(buf);
			if (strcmp(buf, want) != 0)
				fuzz_fail("vapi accepted \"%s\", want \"%s\"", a1, want);
		}
		break;
	case 2:
		r = sig_verify_vapi_bearer(secret, a1, a2);
		if ((r == SIG_OK) != fz_bearer_ok(secret, a1, a2))
			fuzz_fail("vapi bearer: \"%s\" / \"%s\" gave %s", a1 ? a1 : "(none)",
				a2 ? a2 : "(none)", sig_result_name(r));
		break;
	case 3:
		r = sig_verify_bland(secret, a1, body, blen);
		if (*secret && a1) {
			fz_hmac(secret, body, blen, NULL, 0, want);
			snprintf(buf, sizeof(buf), "%s", a1);
			fz_lower(buf);
			if ((r == SIG_OK) != (strlen(a1) == 64 && strcmp(buf, want) == 0))
				fuzz_fail("bland: \"%s\" gave %s, want %s", a1, sig_result_name(r),
					want);
		}
		break;
	case 4:
		r = sig_verify_bland_dynamic(secret, a2, a1);
		if (r == SIG_OK) {
			const char *t = a1 + 7;

			while (*t == ' ')
				t++;
			if (!sig_bland_dynamic_token(secret, a2, want))
				fuzz_fail("sig_bland_dynamic_token failed");
			snprintf(buf, sizeof(buf), "%s", t);
			fz_lower(buf);
			if (strcmp(buf, want) != 0)
				fuzz_fail("bland dynamic accepted \"%s\", want %s", a1, want);
		}
		break;
	}
	if (r < SIG_OK || r > SIG_MISMATCH || strcmp(sig_result_name(r), "unknown") == 0)
		fuzz_fail("result %d out of range", (int)r);
	/* what callsim signs (sig_sign_*), the checks accept: any secret, any body */
	if (*secret) {
		char hdr[SIG_RETELL_HEADER_SIZE], sig[65];

		if (!sig_sign_retell(secret, body, blen, now, hdr, sizeof(hdr)) ||
			sig_verify_retell(secret, hdr, body, blen, now, FZ_TOLERANCE) != SIG_OK)
			fuzz_fail("retell: its own signature \"%s\" refused", hdr);
		if (!sig_sign_vapi_hmac(secret, "1700000000", body, blen, sig) ||
			sig_verify_vapi_hmac(secret, sig, "1700000000", body, blen, FZ_NOW,
				FZ_TOLERANCE) != SIG_OK)
			fuzz_fail("vapi: its own signature %s refused", sig);
		if (!sig_sign_bland(secret, body, blen, sig) ||
			sig_verify_bland(secret, sig, body, blen) != SIG_OK)
			fuzz_fail("bland: its own signature %s refused", sig);
	}
	free(h1);
	free(h2);
	free(secret);
	free(body);
	return 0;
}
