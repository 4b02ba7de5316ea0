/* replay.h: recently seen webhook signatures, so a replayed signed request is recognised. */
#ifndef CALLROUTED_REPLAY_H
#define CALLROUTED_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLAY_KEY_LEN 16

/* The key of a signed request: a hash of what names it uniquely (account and signature). */
void replay_key(const char *account, const char *sig, const char *ts,
	unsigned char key[REPLAY_KEY_LEN]);
/* Seen within ttl_ms (the signature window)?  Any thread. */
bool replay_seen(const unsigned char key[REPLAY_KEY_LEN], int64_t now_ms);
/* Remember a request that acted (a call event made durable), until now_ms + ttl_ms. */
void replay_remember(const unsigned char key[REPLAY_KEY_LEN], int64_t now_ms, int64_t ttl_ms);

#endif
