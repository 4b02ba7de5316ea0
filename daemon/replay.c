/* replay.c: recently seen webhook signatures, so a replayed signed request is recognised. */
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "replay.h"

/*
 * A bounded cache shared by the workers: 16 shards, each an open-addressing table probed over
 * a short window; an entry expires with the signature window, and a full window gives up its
 * oldest entry (memory stays bounded whatever the request rate: 16 x 8192 x 24 bytes).  A
 * false "not seen" only lets an idempotent event through again; there are no false "seen".
 */
#define REPLAY_SHARDS 16
#define REPLAY_SLOTS 8192 /* per shard, a power of two */
#define REPLAY_PROBE 8

struct replay_entry {
	unsigned char key[REPLAY_KEY_LEN];
	int64_t expires_ms;
};

static struct replay_shard {
	pthread_mutex_t lock;
	struct replay_entry slots[REPLAY_SLOTS];
} replay_shards[REPLAY_SHARDS] = {
#define REPLAY_INIT                                                                                \
	{                                                                                          \
		.lock = PTHREAD_MUTEX_INITIALIZER                                                  \
	}
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
	REPLAY_INIT,
#undef REPLAY_INIT
};

/* SHA-256, fetched once (EVP_sha256() is fetched again by every EVP_DigestInit_ex), and one
 * digest context per thread, freed when its thread exits: no allocation per request. */
static EVP_MD *replay_md;
static pthread_once_t replay_md_once = PTHREAD_ONCE_INIT;
static pthread_key_t replay_ctx_key;

static void
replay_ctx_free(void *c)
{
	EVP_MD_CTX_free(c);
}

static void
replay_md_fetch(void)
{
	replay_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (replay_md && pthread_key_create(&replay_ctx_key, replay_ctx_free) != 0) {
		EVP_MD_free(replay_md);
		replay_md = NULL;
	}
}

static EVP_MD_CTX *
replay_md_ctx(void)
{
	EVP_MD_CTX *c;

	if (!replay_md)
		return NULL;
	c = pthread_getspecific(replay_ctx_key);
	if (c)
		return c;
	c = EVP_MD_CTX_new();
	if (c && pthread_setspecific(replay_ctx_key, c) != 0) {
		EVP_MD_CTX_free(c);
		return NULL;
	}
	return c;
}

void
replay_key(const char *account, const char *sig, const char *ts, unsigned char key[REPLAY_KEY_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c;

	memset(key, 0, REPLAY_KEY_LEN);
	pthread_once(&replay_md_once, replay_md_fetch);
	c = replay_md_ctx();
	if (c && EVP_DigestInit_ex(c, replay_md, NULL) &&
		EVP_DigestUpdate(c, account, strlen(account) + 1) &&
		EVP_DigestUpdate(c, sig ? sig : "", (sig ? strlen(sig) : 0) + 1) &&
		EVP_DigestUpdate(c, ts ? ts : "", ts ? strlen(ts) : 0) &&
		EVP_DigestFinal_ex(c, md, &mdlen) && mdlen >= REPLAY_KEY_LEN)
		memcpy(key, md, REPLAY_KEY_LEN);
}

static struct replay_shard *
replay_shard(const unsigned char *key, uint32_t *home)
{
	uint32_t h;

	memcpy(&h, key, sizeof(h));
	*home = (h >> 4) & (REPLAY_SLOTS - 1);
	return &replay_shards[h & (REPLAY_SHARDS - 1)];
}

bool
replay_seen(const unsigned char key[REPLAY_KEY_LEN], int64_t now_ms)
{
	uint32_t home;
	struct replay_shard *s = replay_shard(key, &home);
	bool seen = false;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < REPLAY_PROBE && !seen; i++) {
		struct replay_entry *e = &s->slots[(home + (uint32_t)i) & (REPLAY_SLOTS - 1)];

		seen = e->expires_ms > now_ms && memcmp(e->key, key, REPLAY_KEY_LEN) == 0;
	}
	pthread_mutex_unlock(&s->lock);
	return seen;
}

void
replay_remember(const unsigned char key[REPLAY_KEY_LEN], int64_t now_ms, int64_t ttl_ms)
{
	uint32_t home;
	struct replay_shard *s = replay_shard(key, &home);
	struct replay_entry *victim = NULL;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < REPLAY_PROBE; i++) {
		struct replay_entry *e = &s->slots[(home + (uint32_t)i) & (REPLAY_SLOTS - 1)];

		if (memcmp(e->key, key, REPLAY_KEY_LEN) == 0 || e->expires_ms <= now_ms) {
			victim = e;
			break;
		}
		if (!victim || e->expires_ms < victim->expires_ms)
			victim = e;
	}
	memcpy(victim->key, key, REPLAY_KEY_LEN);
	victim->expires_ms = now_ms + ttl_ms;
	pthread_mutex_unlock(&s->lock);
}
