/* routes.c: the route snapshot: catalog, lookup, publication and reclamation. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "callrouted/log.h"
#include "route_policy.h"
#include "routes.h"
/* ------------------------------------------------------------------------------------------ */
/* The catalog                                                                                 */

struct routes_catalog *
routes_catalog_new(void)
{
	struct routes_catalog *c = calloc(1, sizeof(*c));

	if (c)
		atomic_init(&c->refs, 1);
	return c;
}

void
routes_catalog_ref(struct routes_catalog *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void
routes_catalog_unref(struct routes_catalog *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (uint32_t i = 0; c->keys && i < 2 * c->n_accounts; i++)
		sig_key_wipe(&c->keys[i]);
	free(c->keys);
	free(c->accounts);
	free(c->account_by_id);
	free(c->agent_dense);
	free(c->account_dense);
	free(c->agent_by_pid);
	free(c->agencies);
	free(c->agents);
	free(c->strings);
	free(c);
}

/* Strings are stored as offsets (+1, 0 = NULL) until routes_catalog_finish fixes them up,
 * since the arena may move while it grows. */
static const char *
catalog_str(struct routes_catalog *c, const char *s, bool *ok)
{
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	if (c->strings_len + n > c->strings_cap) {
		size_t cap = c->strings_cap ? c->strings_cap : 4096;
		char *p;

		while (cap < c->strings_len + n)
			cap *= 2;
		p = realloc(c->strings, cap);
		if (!p) {
			*ok = false;
			return NULL;
		}
		c->strings = p;
		c->strings_cap = cap;
	}
	memcpy(c->strings + c->strings_len, s, n);
	c->strings_len += n;
	return (const char *)(uintptr_t)(c->strings_len - n + 1);
}

static const char *
catalog_fix(const struct routes_catalog *c, const char *off)
{
	return off ? c->strings + ((uintptr_t)off - 1) : NULL;
}

bool
routes_catalog_add_account(struct routes_catalog *c, const struct route_account *a)
{
	struct route_account *p;
	bool ok = true;

	if (c->n_accounts == c->cap_accounts) {
		uint32_t cap = c->cap_accounts ? c->cap_accounts * 2 : 8;

		p = realloc(c->accounts, (size_t)cap * sizeof(*p));
		if (!p)
			return false;
		c->accounts = p;
		c->cap_accounts = cap;
	}
	p = &c->accounts[c->n_accounts];
	*p = *a;
	p->slug = catalog_str(c, a->slug, &ok);
	p->api_key = catalog_str(c, a->api_key, &ok);
	p->webhook_secret = catalog_str(c, a->webhook_secret, &ok);
	if (!ok)
		return false;
	c->n_accounts++;
	return true;
}

bool
routes_catalog_add_agent(struct routes_catalog *c, const struct route_agent *a)
{
	struct route_agent *p;
	bool ok = true;

	if (c->n_agents == ROUTE_RELEASED)
		return false;
	if (c->n_agents == c->cap_agents) {
		uint32_t cap = c->cap_agents ? c->cap_agents * 2 : 8;

		if (cap > ROUTE_RELEASED)
			cap = ROUTE_RELEASED;
		p = realloc(c->agents, (size_t)cap * sizeof(*p));
		if (!p)
			return false;
		c->agents = p;
		c->cap_agents = cap;
	}
	p = &c->agents[c->n_agents];
	*p = *a;
	p->provider_agent_id = catalog_str(c, a->provider_agent_id, &ok);
	p->name = catalog_str(c, a->name, &ok);
	p->client_name = catalog_str(c, a->client_name, &ok);
	if (!ok)
		return false;
	c->n_agents++;
	return true;
}

bool
routes_catalog_add_agency(struct routes_catalog *c, const struct route_agency *a)
{
	if (c->n_agencies == c->cap_agencies) {
		uint32_t cap = c->cap_agencies ? c->cap_agencies * 2 : 8;
		struct route_agency *p = realloc(c->agencies, (size_t)cap * sizeof(*p));

		if (!p)
			return false;
		c->agencies = p;
		c->cap_agencies = cap;
	}
	c->agencies[c->n_agencies++] = *a;
	return true;
}

static int
catalog_cmp_agency(const void *a, const void *b)
{
	uint64_t x = ((const struct route_agency *)a)->id, y = ((const struct route_agency *)b)->id;

	return x < y ? -1 : x > y;
}

static _Thread_local const struct route_agent *catalog_sort_agents;

static int
catalog_cmp_agent_pid(const void *a, const void *b)
{
	const struct route_agent *x = &catalog_sort_agents[*(const uint32_t *)a];
	const struct route_agent *y = &catalog_sort_agents[*(const uint32_t *)b];

	if (x->provider != y->provider)
		return x->provider < y->provider ? -1 : 1;
	return strcmp(x->provider_agent_id, y->provider_agent_id);
}

const struct route_agency *
routes_catalog_agency(const struct routes_catalog *c, uint64_t id)
{
	uint32_t lo = 0, hi = c->n_agencies;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c->agencies[mid].id == id)
			return &c->agencies[mid];
		if (c->agencies[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct route_agent *
routes_catalog_agent_by_pid(const struct routes_catalog *c, enum provider_id p, const char *pid)
{
	uint32_t lo = 0, hi = c->n_agents;

	if (!pid || !c->agent_by_pid)
		return NULL;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct route_agent *a = &c->agents[c->agent_by_pid[mid]];
		int r = a->provider != p ? (a->provider < p ? -1 : 1) :
					   strcmp(a->provider_agent_id, pid);

		if (r == 0)
			return a;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct route_slot *
routes_number(const struct routes_snapshot *s, uint64_t key)
{
	return route_table_get(&s->numbers, key);
}

static int
catalog_cmp_account(const void *a, const void *b)
{
	return strcmp(((const struct route_account *)a)->slug,
		((const struct route_account *)b)->slug);
}

static int
catalog_cmp_agent(const void *a, const void *b)
{
	uint64_t x = ((const struct route_agent *)a)->id, y = ((const struct route_agent *)b)->id;

	return x < y ? -1 : x > y;
}

/* qsort has no context argument; finish() runs on one thread at a time per catalog, but
 * catalogs are built on the db thread and in tests: keep the pointer thread-local. */
static _Thread_local const struct route_account *catalog_sort_accounts;

#define CATALOG_DENSE_MAX (1u << 22) /* ids below this get a direct map (16 MiB at most) */

static int
catalog_cmp_account_id(const void *a, const void *b)
{
	uint64_t x = catalog_sort_accounts[*(const uint32_t *)a].id;
	uint64_t y = catalog_sort_accounts[*(const uint32_t *)b].id;

	return x < y ? -1 : x > y;
}

bool
routes_catalog_finish(struct routes_catalog *c)
{
	for (uint32_t i = 0; i < c->n_accounts; i++) {
		c->accounts[i].slug = catalog_fix(c, c->accounts[i].slug);
		c->accounts[i].api_key = catalog_fix(c, c->accounts[i].api_key);
		c->accounts[i].webhook_secret = catalog_fix(c, c->accounts[i].webhook_secret);
	}
	for (uint32_t i = 0; i < c->n_agents; i++) {
		c->agents[i].provider_agent_id = catalog_fix(c, c->agents[i].provider_agent_id);
		c->agents[i].name = catalog_fix(c, c->agents[i].name);
		c->agents[i].client_name = catalog_fix(c, c->agents[i].client_name);
	}
	if (c->n_accounts)
		qsort(c->accounts, c->n_accounts, sizeof(*c->accounts), catalog_cmp_account);
	/* each secret keyed once for the catalog's life (finish runs once per catalog) */
	free(c->keys);
	c->keys = calloc((size_t)c->n_accounts * 2 + 1, sizeof(*c->keys));
	if (!c->keys)
		return false;
	for (uint32_t i = 0; i < c->n_accounts; i++) {
		struct route_account *a = &c->accounts[i];

		sig_key_set(&c->keys[2 * i], a->api_key);
		sig_key_set(&c->keys[2 * i + 1], a->webhook_secret);
		a->api_key_hmac = &c->keys[2 * i];
		a->secret_hmac = &c->keys[2 * i + 1];
	}
	if (c->n_agents)
		qsort(c->agents, c->n_agents, sizeof(*c->agents), catalog_cmp_agent);
	for (uint32_t i = 1; i < c->n_accounts; i++)
		if (strcmp(c->accounts[i - 1].slug, c->accounts[i].slug) == 0)
			return false;
	free(c->account_by_id);
	c->account_by_id = malloc(((size_t)c->n_accounts + 1) * sizeof(*c->account_by_id));
	if (!c->account_by_id)
		return false;
	for (uint32_t i = 0; i < c->n_accounts; i++)
		c->account_by_id[i] = i;
	catalog_sort_accounts = c->accounts;
	if (c->n_accounts)
		qsort(c->account_by_id, c->n_accounts, sizeof(*c->account_by_id),
			catalog_cmp_account_id);
	for (uint32_t i = 1; i < c->n_accounts; i++)
		if (c->accounts[c->account_by_id[i - 1]].id == c->accounts[c->account_by_id[i]].id)
			return false;
	if (c->n_agencies)
		qsort(c->agencies, c->n_agencies, sizeof(*c->agencies), catalog_cmp_agency);
	for (uint32_t i = 1; i < c->n_agencies; i++)
		if (c->agencies[i - 1].id == c->agencies[i].id)
			return false;
	free(c->agent_by_pid);
	c->agent_by_pid = malloc(((size_t)c->n_agents + 1) * sizeof(*c->agent_by_pid));
	if (!c->agent_by_pid)
		return false;
	for (uint32_t i = 0; i < c->n_agents; i++)
		c->agent_by_pid[i] = i;
	catalog_sort_agents = c->agents;
	if (c->n_agents)
		qsort(c->agent_by_pid, c->n_agents, sizeof(*c->agent_by_pid),
			catalog_cmp_agent_pid);
	/* identity ids are dense: a direct map makes the 1M-row load cheap; sparse ids bsearch */
	free(c->agent_dense);
	free(c->account_dense);
	c->agent_dense = c->account_dense = NULL;
	c->agent_dense_n = c->account_dense_n = 0;
	if (c->n_agents && c->agents[c->n_agents - 1].id < CATALOG_DENSE_MAX) {
		uint64_t n = c->agents[c->n_agents - 1].id + 1;

		c->agent_dense = malloc(n * sizeof(uint32_t));
		if (c->agent_dense) {
			memset(c->agent_dense, 0xff, n * sizeof(uint32_t));
			for (uint32_t i = 0; i < c->n_agents; i++)
				c->agent_dense[c->agents[i].id] = i;
			c->agent_dense_n = n;
		}
	}
	if (c->n_accounts &&
		c->accounts[c->account_by_id[c->n_accounts - 1]].id < CATALOG_DENSE_MAX) {
		uint64_t n = c->accounts[c->account_by_id[c->n_accounts - 1]].id + 1;

		c->account_dense = malloc(n * sizeof(uint32_t));
		if (c->account_dense) {
			memset(c->account_dense, 0xff, n * sizeof(uint32_t));
			for (uint32_t i = 0; i < c->n_accounts; i++)
				c->account_dense[c->accounts[i].id] = i;
			c->account_dense_n = n;
		}
	}
	for (uint32_t i = 1; i < c->n_agents; i++)
		if (c->agents[i - 1].id == c->agents[i].id)
			return false;
	return true;
}

const struct route_account *
routes_catalog_account(const struct routes_catalog *c, const char *slug, size_t len)
{
	uint32_t lo = 0, hi = c->n_accounts;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *s = c->accounts[mid].slug;
		int r = strncmp(s, slug, len);

		if (r == 0)
			r = s[len] == 0 ? 0 : 1;
		if (r == 0)
			return &c->accounts[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

uint32_t
routes_catalog_agent_idx(const struct routes_catalog *c, uint64_t agent_id)
{
	uint32_t lo = 0, hi = c->n_agents;

	if (c->agent_dense_n)
		return agent_id < c->agent_dense_n ? c->agent_dense[agent_id] : ROUTE_NONE;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c->agents[mid].id == agent_id)
			return mid;
		if (c->agents[mid].id < agent_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return ROUTE_NONE;
}

uint32_t
routes_catalog_account_idx(const struct routes_catalog *c, uint64_t account_id)
{
	uint32_t lo = 0, hi = c->n_accounts;

	if (c->account_dense_n)
		return account_id < c->account_dense_n ? c->account_dense[account_id] : ROUTE_NONE;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint64_t id = c->accounts[c->account_by_id[mid]].id;

		if (id == account_id)
			return c->account_by_id[mid];
		if (id < account_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return ROUTE_NONE;
}

/* ------------------------------------------------------------------------------------------ */
/* Snapshots and lookups                                                                       */

struct routes_snapshot *
routes_snapshot_new(struct routes_catalog *cat, size_t n_numbers)
{
	struct routes_snapshot *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (!route_table_init(&s->numbers, n_numbers)) {
		free(s);
		return NULL;
	}
	s->catalog = cat;
	routes_catalog_ref(cat);
	return s;
}

void
routes_snapshot_free(struct routes_snapshot *s)
{
	if (!s)
		return;
	route_table_free(&s->numbers);
	routes_catalog_unref(s->catalog);
	policy_unref(s->policy);
	free(s);
}

static const char *const route_result_names[ROUTE_RESULT_COUNT] = {
	"hit",
	"unassigned",
	"unknown",
	"released",
};

const char *
route_result_name(enum route_result r)
{
	return (unsigned)r < ROUTE_RESULT_COUNT ? route_result_names[r] : "?";
}

enum route_result
routes_lookup(const struct routes_snapshot *s, const struct route_account *acct, uint64_t key,
	struct route_answer *out)
{
	const struct route_slot *sl = route_table_get(&s->numbers, key);
	const struct routes_catalog *c = s->catalog;

	memset(out, 0, sizeof(*out));
	if (!sl || sl->account_idx >= c->n_accounts || c->accounts[sl->account_idx].id != acct->id)
		return out->result = ROUTE_UNKNOWN;
	out->number_id = sl->number_id;
	if (sl->agent_idx == ROUTE_RELEASED)
		return out->result = ROUTE_RELEASED_NUM;
	if (sl->agent_idx >= c->n_agents)
		return out->result = ROUTE_UNASSIGNED;
	out->agent = &c->agents[sl->agent_idx];
	/* the database guarantees these; a corrupt snapshot file must not break the rule */
	if (out->agent->agency_id != acct->agency_id || out->agent->provider != acct->provider) {
		out->agent = NULL;
		return out->result = ROUTE_UNASSIGNED;
	}
	return out->result = ROUTE_HIT;
}

/* ------------------------------------------------------------------------------------------ */
/* Publication and reclamation.
 *
 * Quiescent-state reclamation: a reader announces the global epoch it saw when it entered a
 * read section and ROUTES_IDLE when it leaves.  Publishing swaps the pointer, then bumps the
 * epoch to E and retires the old snapshot with E.  A reader that can still hold the old
 * snapshot loaded the pointer before the swap, so it announced an epoch < E (all accesses are
 * sequentially consistent).  A retired snapshot is freed when every reader is idle or has
 * announced >= E.  Readers never lock; the publisher never waits.                             */

#define ROUTES_IDLE UINT64_MAX
#define ROUTES_MAX_READERS 512

struct routes_reader {
	_Alignas(64) _Atomic uint64_t epoch;
};

static _Atomic(struct routes_snapshot *) routes_cur;
static _Atomic uint64_t routes_epoch = 1;
static struct routes_reader routes_readers[ROUTES_MAX_READERS];
static _Atomic unsigned routes_nreaders;
static struct routes_snapshot *routes_retired; /* publisher-side only */
static pthread_mutex_t routes_pub_lock = PTHREAD_MUTEX_INITIALIZER;

struct routes_reader *
routes_reader_register(void)
{
	unsigned i = atomic_fetch_add(&routes_nreaders, 1);

	if (i >= ROUTES_MAX_READERS) {
		atomic_fetch_sub(&routes_nreaders, 1);
		return NULL;
	}
	atomic_store(&routes_readers[i].epoch, ROUTES_IDLE);
	return &routes_readers[i];
}

const struct routes_snapshot *
routes_read_begin(struct routes_reader *r)
{
	atomic_store(&r->epoch, atomic_load(&routes_epoch));
	return atomic_load(&routes_cur);
}

void
routes_read_end(struct routes_reader *r)
{
	atomic_store_explicit(&r->epoch, ROUTES_IDLE, memory_order_release);
}

const struct routes_snapshot *
routes_current(void)
{
	return atomic_load(&routes_cur);
}

void
routes_publish(struct routes_snapshot *s)
{
	struct routes_snapshot *old;

	pthread_mutex_lock(&routes_pub_lock);
	old = atomic_load(&routes_cur);
	if (s && !s->policy && old && old->policy) {
		s->policy = old->policy;
		policy_ref(s->policy);
	}
	old = atomic_exchange(&routes_cur, s);
	if (old) {
		old->retired_epoch = atomic_fetch_add(&routes_epoch, 1) + 1;
		old->retired_next = routes_retired;
		routes_retired = old;
	}
	pthread_mutex_unlock(&routes_pub_lock);
	routes_reclaim();
}

size_t
routes_reclaim(void)
{
	struct routes_snapshot **pp, *s;
	uint64_t min = ROUTES_IDLE;
	unsigned n = atomic_load(&routes_nreaders);
	size_t left = 0;

	pthread_mutex_lock(&routes_pub_lock);
	for (unsigned i = 0; i < n && i < ROUTES_MAX_READERS; i++) {
		uint64_t e = atomic_load(&routes_readers[i].epoch);

		if (e < min)
			min = e;
	}
	for (pp = &routes_retired; (s = *pp) != NULL;) {
		if (min >= s->retired_epoch) {
			*pp = s->retired_next;
			routes_snapshot_free(s);
		} else {
			pp = &s->retired_next;
			left++;
		}
	}
	pthread_mutex_unlock(&routes_pub_lock);
	return left;
}

void
routes_shutdown(void)
{
	struct routes_snapshot *s;

	pthread_mutex_lock(&routes_pub_lock);
	while ((s = routes_retired) != NULL) {
		routes_retired = s->retired_next;
		routes_snapshot_free(s);
	}
	routes_snapshot_free(atomic_exchange(&routes_cur, NULL));
	pthread_mutex_unlock(&routes_pub_lock);
}

void
routes_stats(const struct routes_snapshot *s, stat_fn add, void *ctx)
{
	STAT_GAUGE(add, ctx, "callrouted_routes_entries", "Numbers in the route table.",
		s ? s->numbers.count : 0);
	STAT_GAUGE(add, ctx, "callrouted_routes_generation", "Generation of the route table.",
		s ? (double)s->generation : 0);
	STAT_GAUGE(add, ctx, "callrouted_routes_last_reload_timestamp_seconds",
		"When the route table in use was built (unix time).",
		s ? (double)s->loaded_at_ms / 1000.0 : 0);
	STAT_GAUGE(add, ctx, "callrouted_routes_from_snapshot",
		"1 while routing from the snapshot file of an earlier run, 0 from the database.",
		s && s->source == ROUTES_FROM_FILE ? 1 : 0);
	STAT_GAUGE(add, ctx, "callrouted_routes_table_bytes", "Bytes of the number hash table.",
		s ? (double)route_table_bytes(&s->numbers) : 0);
}
