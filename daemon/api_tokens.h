/* api_tokens.h: the admin API's cache of checked tokens, forgotten at each api_tokens change. */
#ifndef CALLROUTED_API_TOKENS_H
#define CALLROUTED_API_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

/* What a token's row says (api_tokens: agency_id, client_id or 0, id). */
struct api_token {
	uint64_t agency_id, client_id, token_id;
};

/*
 * A token checked against api_tokens is kept ttl_ms (admin_token_cache; 0: never, and no
 * listening connection is made); every change to api_tokens (a
 * revocation, a deletion: migration 011's trigger, NOTIFY callrouted_api_tokens) forgets them
 * all, and so does a lost listening connection (no token is kept while it is down).  Admin
 * thread only.
 */
bool api_tokens_setup(struct event_base *base, int64_t ttl_ms) __attribute__((warn_unused_result));
void api_tokens_start(void);
void api_tokens_cleanup(void);
/* A kept check of the token whose SHA-256 is hex (64 characters): true with *t.  It first reads
 * the notifications already arrived, so a revocation committed before the request is seen. */
bool api_tokens_get(const char *hex, struct api_token *t);
/* The cache's epoch: take it before the look-up query, give it to api_tokens_put. */
unsigned api_tokens_epoch(void);
/* Keep a check read at epoch (dropped if the cache was emptied since: the row may be stale). */
void api_tokens_put(const char *hex, const struct api_token *t, unsigned epoch);

#endif
