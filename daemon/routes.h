/* routes.h: the route snapshot (number -> agent): catalog, lookup, publish, reclaim. */
#ifndef CALLROUTED_ROUTES_H
#define CALLROUTED_ROUTES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "callrouted/signature.h"
#include "providers/provider.h"
#include "route_table.h"

enum webhook_auth { WEBHOOK_AUTH_HMAC = 0, WEBHOOK_AUTH_BEARER };

/* ---- the catalog: agencies' accounts and agents (small, rebuilt whole) ---- */

struct route_account {
	uint64_t id;
	uint64_t agency_id;
	enum provider_id provider;
	enum webhook_auth auth;
	const char *slug;
	const char *api_key;
	const char *webhook_secret; /* NULL when not set */
	/* the two secrets keyed for HMAC once per catalog (routes_catalog_finish; unset when the
	 * secret is): a webhook's check hashes only its message */
	const struct sig_key *api_key_hmac, *secret_hmac;
};

struct route_agent {
	uint64_t id;
	uint64_t agency_id;
	uint64_t client_id; /* 0 = none */
	enum provider_id provider;
	const char *provider_agent_id;
	const char *name;
	const char *client_name; /* NULL when no client */
};

struct route_agency {
	uint64_t id;
	int64_t rate_micros_per_min;
	int32_t billing_initial_s;
	int32_t billing_increment_s;
};

struct routes_catalog {
	atomic_int refs;
	struct route_account *accounts; /* sorted by slug */
	uint32_t n_accounts, cap_accounts;
	struct route_agent *agents; /* sorted by id */
	uint32_t n_agents, cap_agents;
	struct route_agency *agencies; /* sorted by id */
	uint32_t n_agencies, cap_agencies;
	uint32_t *agent_by_pid;  /* indices into agents, sorted by (provider, provider_agent_id) */
	uint32_t *account_by_id; /* indices into accounts, sorted by account id */
	uint32_t *agent_dense;   /* agent id -> index (ROUTE_NONE: no such agent) */
	uint32_t *account_dense; /* account id -> index */
	uint64_t agent_dense_n, account_dense_n; /* sizes of the dense maps (0: none, bsearch) */
	struct sig_key *keys;                    /* accounts' api_key_hmac, secret_hmac */
	char *strings;                           /* arena holding every string above */
	size_t strings_len, strings_cap;
};

struct routes_catalog *routes_catalog_new(void);
void routes_catalog_ref(struct routes_catalog *c);
void routes_catalog_unref(struct routes_catalog *c);
/* Copy a string into the catalog's arena; NULL on allocation failure.  Call
 * routes_catalog_finish() once all strings are in, to fix up pointers. */
bool routes_catalog_add_account(struct routes_catalog *c, const struct route_account *a);
bool routes_catalog_add_agent(struct routes_catalog *c, const struct route_agent *a);
bool routes_catalog_add_agency(struct routes_catalog *c, const struct route_agency *a);
bool routes_catalog_finish(struct routes_catalog *c);
const struct route_agency *routes_catalog_agency(const struct routes_catalog *c, uint64_t id);
/* The agent a provider calls provider_agent_id, or NULL. */
const struct route_agent *routes_catalog_agent_by_pid(const struct routes_catalog *c,
	enum provider_id p, const char *provider_agent_id);
const struct route_account *routes_catalog_account(const struct routes_catalog *c, const char *slug,
	size_t len);
/* Index of the agent with this id, or ROUTE_NONE. */
uint32_t routes_catalog_agent_idx(const struct routes_catalog *c, uint64_t agent_id);
uint32_t routes_catalog_account_idx(const struct routes_catalog *c, uint64_t account_id);

/* ---- snapshots ---- */

struct route_policy;

enum routes_source { ROUTES_FROM_DATABASE = 0, ROUTES_FROM_FILE };

struct routes_snapshot {
	uint64_t generation;
	enum routes_source source;
	int64_t loaded_at_ms; /* wall clock, ms since epoch */
	struct routes_catalog *catalog;
	struct route_table numbers;
	struct route_policy *policy; /* routing policies (route_policy.h); NULL: none loaded */
	struct routes_snapshot *retired_next; /* reclaim list */
	uint64_t retired_epoch;
};

struct routes_snapshot *routes_snapshot_new(struct routes_catalog *cat, size_t n_numbers);
void routes_snapshot_free(struct routes_snapshot *s);

/* What a lookup says about a number called through an account. */
enum route_result {
	ROUTE_HIT = 0,      /* assigned to an agent of this account */
	ROUTE_UNASSIGNED,   /* active number of this account, no agent */
	ROUTE_UNKNOWN,      /* not a number we know, or one of another account */
	ROUTE_RELEASED_NUM, /* released */
	ROUTE_RESULT_COUNT
};
const char *route_result_name(enum route_result r);

/* A lookup's answer, valid while the reader's read section lasts. */
struct route_answer {
	enum route_result result;
	uint64_t number_id;
	const struct route_agent *agent; /* set for ROUTE_HIT */
};

/* The number's slot whatever its account (for attributing call events): NULL if unknown. */
const struct route_slot *routes_number(const struct routes_snapshot *s, uint64_t key);

enum route_result routes_lookup(const struct routes_snapshot *s, const struct route_account *acct,
	uint64_t key, struct route_answer *out);

/* ---- publication and reclamation (quiescent-state based) ---- */

struct routes_reader;

/* Each worker thread registers one reader; read sections must be short (one request). */
struct routes_reader *routes_reader_register(void);
const struct routes_snapshot *routes_read_begin(struct routes_reader *r);
void routes_read_end(struct routes_reader *r);

/* Publish s (ownership passes); the previous snapshot is retired. Single publisher at a time.
 * A snapshot published without policies keeps the current one's (the loader of numbers and
 * the loader of policies publish independently). */
void routes_publish(struct routes_snapshot *s);
/* Free retired snapshots that no reader can still see. Returns how many remain retired. */
size_t routes_reclaim(void);
/* The current snapshot for the publisher's own use (db thread); NULL before the first. */
const struct routes_snapshot *routes_current(void);

/* The callrouted_routes_* gauges of s (NULL: none loaded), through add (scrape.c); here, not
 * with the other includes, to keep this change apart from the provider enum's move. */
#include "stats.h"
void routes_stats(const struct routes_snapshot *s, stat_fn add, void *ctx);

/* Free everything at exit (no reader may be active). */
void routes_shutdown(void);

#endif
