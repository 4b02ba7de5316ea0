/* callrouted/admin_api.h: the admin API's contract: paths, error shape, ids, tokens. */
#ifndef CALLROUTED_ADMIN_API_H
#define CALLROUTED_ADMIN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Paths (README "Admin API"): everything under ADMIN_API_PREFIX needs a bearer token. */
#define ADMIN_API_PREFIX "/v1/"
#define ADMIN_API_NUMBERS                                                                          \
	"/v1/numbers"               /* GET, POST; ADMIN_API_NUMBERS "/{id}": GET, PATCH, DELETE */
#define ADMIN_API_CALLS "/v1/calls" /* POST */
#define ADMIN_API_LIST_MAX 500      /* the largest page of GET /v1/numbers (?limit=) */

/*
 * The one error shape of the admin listener: {"error":{"code":CODE,"message":MESSAGE}}, CODE a
 * short word ("unauthorized", "invalid", ...), MESSAGE a sentence.  ADMIN_API_ERROR_FMT is it as
 * a printf format for two strings that need no JSON escaping.
 */
#define ADMIN_API_ERROR_KEY "error"
#define ADMIN_API_ERROR_CODE "code"
#define ADMIN_API_ERROR_MESSAGE "message"
#define ADMIN_API_ERROR_FMT "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}"

/* A positive integer id as the API and the database take it: 1 to 18 digits, not 0. */
bool admin_api_parse_id(const char *s, uint64_t *out) __attribute__((warn_unused_result));

/*
 * Tokens: "crt_" then the base64url (no padding) of ADMIN_TOKEN_BYTES random bytes; what an
 * "Authorization: Bearer <token>" carries is 1..ADMIN_TOKEN_MAX bytes without control
 * characters; the database keeps only the SHA-256 of the whole text (api_tokens.token_sha256).
 */
#define ADMIN_TOKEN_PREFIX "crt_"
#define ADMIN_TOKEN_BYTES 32
#define ADMIN_TOKEN_MAX 256
#define ADMIN_TOKEN_SIZE (sizeof(ADMIN_TOKEN_PREFIX) + (ADMIN_TOKEN_BYTES * 4 + 2) / 3)
/* A new token into out; false if OpenSSL has no random bytes. */
bool admin_token_new(char out[ADMIN_TOKEN_SIZE]) __attribute__((warn_unused_result));
/* What a client may send as its token: the server's rule, and no spaces. */
bool admin_token_ok(const char *token);
/* The lowercase hex SHA-256 of token (65 bytes with the NUL): how it is stored and looked up. */
void admin_token_sha256_hex(const char *token, char hex[65]);

#endif
