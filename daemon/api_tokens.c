/* api_tokens.c: the admin API's cache of checked tokens, emptied by NOTIFY on any change. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api_tokens.h"
#include "db.h"
#include "callrouted/log.h"

#define API_TOKENS_SLOTS 1024 /* direct-mapped by the hash's first bits */
#define API_TOKENS_CHANNEL "callrouted_api_tokens"

struct api_token_slot {
	char hex[65];
	struct api_token t;
	int64_t expires_ms;
	unsigned epoch; /* valid while it is the cache's */
};

static struct {
	struct db_conn *conn; /* LISTEN only: never a query of the API */
	bool listening;       /* LISTEN confirmed on the connection now up */
	int64_t ttl_ms;
	unsigned epoch;
	struct api_token_slot slots[API_TOKENS_SLOTS];
} tok;

static int64_t
tok_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
tok_forget(void)
{
	tok.epoch++;
}

static struct api_token_slot *
tok_slot(const char *hex)
{
	unsigned v = 0;

	for (int i = 0; i < 8; i++) {
		char c = hex[i];

		v = v * 16 + (unsigned)(c >= 'a' ? c - 'a' + 10 :
					c >= 'A' ? c - 'A' + 10 :
						   c - '0');
	}
	return &tok.slots[v % API_TOKENS_SLOTS];
}

bool
api_tokens_get(const char *hex, struct api_token *t)
{
	struct api_token_slot *s;

	if (!tok.listening || strlen(hex) != 64)
		return false;
	db_conn_poll(tok.conn); /* a notification already here is read before the answer */
	if (!tok.listening)
		return false;
	s = tok_slot(hex);
	if (s->epoch != tok.epoch || memcmp(s->hex, hex, 64) != 0 || s->expires_ms < tok_now_ms())
		return false;
	*t = s->t;
	return true;
}

unsigned
api_tokens_epoch(void)
{
	return tok.epoch;
}

void
api_tokens_put(const char *hex, const struct api_token *t, unsigned epoch)
{
	struct api_token_slot *s;

	if (!tok.listening || epoch != tok.epoch || strlen(hex) != 64)
		return;
	s = tok_slot(hex);
	memcpy(s->hex, hex, 65);
	s->t = *t;
	s->expires_ms = tok_now_ms() + tok.ttl_ms;
	s->epoch = epoch;
}

static void
tok_connected(struct db_conn *c)
{
	tok_forget();
	if (!db_send(c, "LISTEN " API_TOKENS_CHANNEL, 0, NULL))
		log_warning("api: could not LISTEN " API_TOKENS_CHANNEL
			    ": tokens are checked in the database each time");
}

static void
tok_disconnected(struct db_conn *c)
{
	tok.listening = false;
	tok_forget();
}

static void
tok_notify(struct db_conn *c, const char *channel, const char *payload)
{
	if (strcmp(channel, API_TOKENS_CHANNEL) == 0)
		tok_forget();
}

static void
tok_result(struct db_conn *c, PGresult *res)
{
}

static void
tok_done(struct db_conn *c, bool ok)
{
	/* LISTEN refused (db.c logged it): no token is kept */
	tok.listening = ok;
	tok_forget();
}

static void
tok_pump(struct db_conn *c)
{
}

static const struct db_conn_ops tok_ops = {
	.needs_primary = true, /* the revocations' notifications come from the primary */
	.name = "admin tokens",
	.connected = tok_connected,
	.disconnected = tok_disconnected,
	.notify = tok_notify,
	.result = tok_result,
	.done = tok_done,
	.pump = tok_pump,
};

bool
api_tokens_setup(struct event_base *base, int64_t ttl_ms)
{
	memset(&tok, 0, sizeof(tok));
	tok.epoch = 1; /* slots start at 0: none valid */
	tok.ttl_ms = ttl_ms;
	if (ttl_ms <= 0)
		return true; /* off: every request's token is checked in the database */
	tok.conn = db_conn_new_on(base, &tok_ops);
	return tok.conn != NULL;
}

void
api_tokens_start(void)
{
	if (tok.conn)
		db_conn_start(tok.conn);
}

void
api_tokens_cleanup(void)
{
	db_conn_release(tok.conn);
	tok.conn = NULL;
	tok.listening = false;
}
