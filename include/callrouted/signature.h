/* callrouted/signature.h: webhook signatures of each provider: checks and signing (HMAC-SHA256). */
#ifndef CALLROUTED_SIGNATURE_H
#define CALLROUTED_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sig_result {
	SIG_OK = 0,
	SIG_MISSING,   /* no signature header / no secret configured */
	SIG_MALFORMED, /* header present but not of the scheme's form */
	SIG_STALE,     /* timestamp outside the tolerance window */
	SIG_MISMATCH,  /* well formed, wrong digest or token */
};

const char *sig_result_name(enum sig_result r);

/* Constant-time equality of two byte strings (length mismatch is not secret). */
bool sig_equal(const void *a, size_t alen, const void *b, size_t blen);

/* hex(HMAC-SHA256(key, part1 || part2)) into out (65 bytes, NUL-terminated, lowercase). */
bool sig_hmac_sha256_hex(const void *key, size_t keylen, const void *p1, size_t l1, const void *p2,
	size_t l2, char out[65]);

/*
 * A secret keyed once: its HMAC-SHA256 inner and outer pad blocks hashed (two SHA-256 states),
 * so a check under it hashes only the message -- no per-request key set-up or look-up.  Opaque
 * to its holder (the route catalog keeps one per account secret, built with the catalog).
 * sig_key_set: false (and the key unset) when secret is NULL or empty, or on failure;
 * sig_key_wipe clears it (the states are as secret as the key).
 */
#define SIG_KEY_BYTES 240
struct sig_key {
	_Alignas(8) unsigned char st[SIG_KEY_BYTES];
	bool set;
};

bool sig_key_set(struct sig_key *k, const char *secret);
void sig_key_wipe(struct sig_key *k);

/*
 * Retell: header "v=<ms>,d=<64 lowercase hex>"; digest = HMAC-SHA256(api_key, body || decimal ms);
 * |now_ms - v| <= tolerance_ms.
 */
enum sig_result sig_verify_retell(const char *api_key, const char *header, const void *body,
	size_t len, int64_t now_ms, int64_t tolerance_ms);

/*
 * Vapi HMAC: x-signature = hex HMAC-SHA256(secret, "<x-timestamp>.<body>"); the timestamp is
 * seconds or milliseconds (values >= 1e11 are taken as ms) and must be within tolerance_ms of
 * now_ms. An optional "sha256=" prefix on the signature is accepted.
 */
enum sig_result sig_verify_vapi_hmac(const char *secret, const char *sig_header,
	const char *ts_header, const void *body, size_t len, int64_t now_ms, int64_t tolerance_ms);

/* The checks above under a key set once (NULL or unset: SIG_MISSING, as a missing secret). */
enum sig_result sig_verify_retell_key(const struct sig_key *k, const char *header, const void *body,
	size_t len, int64_t now_ms, int64_t tolerance_ms);
enum sig_result sig_verify_vapi_hmac_key(const struct sig_key *k, const char *sig_header,
	const char *ts_header, const void *body, size_t len, int64_t now_ms, int64_t tolerance_ms);

/* Vapi bearer: "Authorization: Bearer <secret>" or legacy "X-Vapi-Secret: <secret>". */
enum sig_result sig_verify_vapi_bearer(const char *secret, const char *authorization,
	const char *x_vapi_secret);

/* Bland: X-Webhook-Signature = hex HMAC-SHA256(secret, body); no timestamp. */
enum sig_result sig_verify_bland(const char *secret, const char *header, const void *body,
	size_t len);

enum sig_result sig_verify_bland_key(const struct sig_key *k, const char *header, const void *body,
	size_t len);

/*
 * Bland dynamic_data requests cannot carry an HMAC of their body (Bland fills a template), so the
 * number is configured with "Authorization: Bearer <token>" where token =
 * hex(HMAC-SHA256(secret, "callrouted-dynamic-data:" || slug)): a token that does not reveal
 * the signing secret.
 */
bool sig_bland_dynamic_token(const char *secret, const char *slug, char out[65]);
enum sig_result sig_verify_bland_dynamic(const char *secret, const char *slug,
	const char *authorization);

/*
 * Signing: the headers each provider sends, as the checks above verify them (callsim signs with
 * these).  Each returns false (and out "") on a missing secret, a bad argument or a failed HMAC.
 *
 * sig_sign_retell: x-retell-signature "v=<now_ms>,d=<hex HMAC-SHA256(api_key, body || ms)>"
 * into out (SIG_RETELL_HEADER_SIZE bytes are always enough).
 */
#define SIG_RETELL_HEADER_SIZE 96
bool sig_sign_retell(const char *api_key, const void *body, size_t len, int64_t now_ms, char *out,
	size_t size);
/* Vapi: x-signature = hex HMAC-SHA256(secret, "<ts>.<body>") for the x-timestamp value ts. */
bool sig_sign_vapi_hmac(const char *secret, const char *ts, const void *body, size_t len,
	char out[65]);
/* Bland: X-Webhook-Signature = hex HMAC-SHA256(secret, body). */
bool sig_sign_bland(const char *secret, const void *body, size_t len, char out[65]);

#endif
