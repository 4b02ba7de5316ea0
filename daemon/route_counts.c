/* route_counts.c: per-client concurrency and month-to-date spend figures, lock-free for workers. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "route_counts.h"

#define RC_CLIENT (UINT64_C(1) << 60)
#define RC_AGENCY (UINT64_C(2) << 60)

struct rc_slots {
	uint32_t n;
	_Atomic int64_t until_ms[]; /* 0: free; else taken until then */
};

struct rc_entry {
	_Atomic uint64_t key; /* 0: empty */
	_Atomic uint32_t seq; /* odd while the db thread writes the figures below */
	_Atomic int32_t in_progress;
	_Atomic int32_t month[2];
	_Atomic int64_t amount[2];
	_Atomic(struct rc_slots *) slots;
	uint64_t gen, spend_gen; /* db thread: the refresh that last named its count, spend */
};

struct rc_table {
	uint32_t mask;
	uint32_t count;
	struct rc_table *older; /* kept until exit: a worker may still read it */
	struct rc_entry e[];
};

/* slot arrays replaced by larger ones, kept until exit */
struct rc_old_slots {
	struct rc_old_slots *next;
	struct rc_slots *s;
};

static _Atomic(struct rc_table *) rc_cur;
static struct rc_old_slots *rc_old;
static uint64_t rc_gen;
static _Atomic int64_t rc_refreshed_ms;

static uint64_t
rc_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

static struct rc_table *
rc_table_new(uint32_t cap)
{
	struct rc_table *t = calloc(1, sizeof(*t) + (size_t)cap * sizeof(struct rc_entry));

	if (t)
		t->mask = cap - 1;
	return t;
}

bool
route_counts_init(void)
{
	struct rc_table *t;

	if (atomic_load(&rc_cur))
		return true;
	t = rc_table_new(1024);
	if (!t)
		return false;
	atomic_store(&rc_cur, t);
	return true;
}

void
route_counts_free(void)
{
	struct rc_table *t = atomic_exchange(&rc_cur, NULL);

	/* the slot arrays in use are the newest table's (older copies share them) */
	for (uint32_t i = 0; t && i <= t->mask; i++)
		free(atomic_load(&t->e[i].slots));
	while (t) {
		struct rc_table *o = t->older;

		free(t);
		t = o;
	}
	while (rc_old) {
		struct rc_old_slots *n = rc_old->next;

		free(rc_old->s);
		free(rc_old);
		rc_old = n;
	}
	rc_gen = 0;
	atomic_store(&rc_refreshed_ms, 0);
}

static struct rc_entry *
rc_find(struct rc_table *t, uint64_t key)
{
	uint32_t h;

	if (!t)
		return NULL;
	h = (uint32_t)rc_hash(key) & t->mask;
	for (uint32_t n = 0; n <= t->mask; n++) {
		uint64_t k = atomic_load_explicit(&t->e[h].key, memory_order_acquire);

		if (k == key)
			return &t->e[h];
		if (k == 0)
			return NULL;
		h = (h + 1) & t->mask;
	}
	return NULL;
}

static struct rc_entry *
rc_put(struct rc_table *t, uint64_t key)
{
	uint32_t h = (uint32_t)rc_hash(key) & t->mask;

	for (;;) {
		uint64_t k = atomic_load(&t->e[h].key);

		if (k == key)
			return &t->e[h];
		if (k == 0) {
			t->count++;
			atomic_store_explicit(&t->e[h].key, key, memory_order_release);
			return &t->e[h];
		}
		h = (h + 1) & t->mask;
	}
}

/* db thread: the entry for key, growing the table (a copy; the old one stays readable). */
static struct rc_entry *
rc_entry_for(uint64_t key)
{
	struct rc_table *t = atomic_load(&rc_cur), *n;
	struct rc_entry *e;

	if (!t)
		return NULL;
	e = rc_find(t, key);
	if (e)
		return e;
	if ((t->count + 1) * 2 > t->mask + 1) {
		n = rc_table_new((t->mask + 1) * 2);
		if (!n)
			return NULL;
		for (uint32_t i = 0; i <= t->mask; i++) {
			struct rc_entry *o = &t->e[i], *c;
			uint64_t k = atomic_load(&o->key);

			if (!k)
				continue;
			c = rc_put(n, k);
			atomic_store(&c->in_progress, atomic_load(&o->in_progress));
			for (int m = 0; m < 2; m++) {
				atomic_store(&c->month[m], atomic_load(&o->month[m]));
				atomic_store(&c->amount[m], atomic_load(&o->amount[m]));
			}
			atomic_store(&c->slots, atomic_load(&o->slots));
			c->gen = o->gen;
			c->spend_gen = o->spend_gen;
		}
		n->older = t;
		atomic_store(&rc_cur, n);
		t = n;
	}
	return rc_put(t, key);
}

bool
route_counts_client(uint64_t client_id, int32_t limit)
{
	struct rc_entry *e = rc_entry_for(RC_CLIENT | client_id);
	struct rc_slots *s, *ns;
	uint32_t want;

	if (!e)
		return false;
	if (limit <= 0)
		return true;
	want = limit > ROUTE_COUNTS_MAX_SLOTS ? ROUTE_COUNTS_MAX_SLOTS : (uint32_t)limit;
	s = atomic_load(&e->slots);
	if (s && s->n >= want)
		return true;
	ns = calloc(1, sizeof(*ns) + want * sizeof(ns->until_ms[0]));
	if (!ns)
		return false;
	ns->n = want;
	if (s) {
		struct rc_old_slots *o = malloc(sizeof(*o));

		if (!o) {
			free(ns);
			return false;
		}
		for (uint32_t i = 0; i < s->n; i++)
			atomic_store(&ns->until_ms[i], atomic_load(&s->until_ms[i]));
		o->s = s;
		o->next = rc_old;
		rc_old = o;
	}
	atomic_store(&e->slots, ns);
	return true;
}

bool
route_counts_agency(uint64_t agency_id)
{
	return rc_entry_for(RC_AGENCY | agency_id) != NULL;
}

void
route_counts_refresh_begin(void)
{
	rc_gen++;
}

void
route_counts_set_in_progress(uint64_t client_id, int32_t n)
{
	struct rc_entry *e = rc_find(atomic_load(&rc_cur), RC_CLIENT | client_id);

	/* only clients with a limit have an entry: the others' counts do not matter */
	if (!e)
		return;
	atomic_store(&e->in_progress, n);
	e->gen = rc_gen;
}

static void
rc_clear_spend(struct rc_entry *e)
{
	atomic_fetch_add(&e->seq, 1);
	for (int m = 0; m < 2; m++) {
		atomic_store(&e->month[m], 0);
		atomic_store(&e->amount[m], 0);
	}
	atomic_fetch_add(&e->seq, 1);
}

void
route_counts_set_spend(bool agency, uint64_t id, int32_t month, int64_t micros)
{
	struct rc_entry *e = rc_find(atomic_load(&rc_cur), (agency ? RC_AGENCY : RC_CLIENT) | id);
	int m;

	if (!e)
		return;
	if (e->spend_gen != rc_gen) {
		rc_clear_spend(e); /* its first figure of this refresh: forget the old months */
		e->spend_gen = rc_gen;
	}
	/* two months kept (a zone's month turns while others' have not): this one's, else the
	 * older of the two */
	if (atomic_load(&e->month[0]) == month)
		m = 0;
	else if (atomic_load(&e->month[1]) == month)
		m = 1;
	else
		m = atomic_load(&e->month[0]) <= atomic_load(&e->month[1]) ? 0 : 1;
	if (atomic_load(&e->month[m]) > month)
		return; /* older than both */
	atomic_fetch_add(&e->seq, 1);
	atomic_store(&e->month[m], month);
	atomic_store(&e->amount[m], micros);
	atomic_fetch_add(&e->seq, 1);
}

void
route_counts_refresh_end(int64_t now_ms)
{
	struct rc_table *t = atomic_load(&rc_cur);

	for (uint32_t i = 0; t && i <= t->mask; i++) {
		struct rc_entry *e = &t->e[i];

		if (!atomic_load(&e->key))
			continue;
		if (e->gen != rc_gen)
			atomic_store(&e->in_progress, 0);
		if (e->spend_gen != rc_gen)
			rc_clear_spend(e);
	}
	atomic_store(&rc_refreshed_ms, now_ms);
}

int64_t
route_counts_refreshed_ms(void)
{
	return atomic_load(&rc_refreshed_ms);
}

int32_t
route_counts_in_progress_db(uint64_t client_id)
{
	struct rc_entry *e = rc_find(atomic_load(&rc_cur), RC_CLIENT | client_id);

	return e ? atomic_load_explicit(&e->in_progress, memory_order_relaxed) : 0;
}

int32_t
route_counts_taken(uint64_t client_id, int64_t now_ms)
{
	struct rc_entry *e = rc_find(atomic_load(&rc_cur), RC_CLIENT | client_id);
	struct rc_slots *s = e ? atomic_load(&e->slots) : NULL;
	int32_t n = 0;

	for (uint32_t i = 0; s && i < s->n; i++)
		if (atomic_load_explicit(&s->until_ms[i], memory_order_relaxed) > now_ms)
			n++;
	return n;
}

static int32_t
rc_concurrent(void *ctx, uint64_t client_id)
{
	int64_t now = *(const int64_t *)ctx;

	return route_counts_in_progress_db(client_id) + route_counts_taken(client_id, now);
}

static int64_t
rc_spend(void *ctx, bool agency, uint64_t id, int32_t month)
{
	struct rc_entry *e = rc_find(atomic_load(&rc_cur), (agency ? RC_AGENCY : RC_CLIENT) | id);
	int64_t v = 0;
	uint32_t s0;

	(void)ctx;
	if (!e)
		return 0;
	do {
		s0 = atomic_load(&e->seq);
		v = 0;
		for (int m = 0; m < 2; m++)
			if (atomic_load(&e->month[m]) == month)
				v = atomic_load(&e->amount[m]);
	} while ((s0 & 1) || atomic_load(&e->seq) != s0);
	return v;
}

void
route_counts_ops(struct policy_counts *out, int64_t *now_ms)
{
	out->concurrent = rc_concurrent;
	out->spend = rc_spend;
	out->ctx = now_ms;
}

bool
route_counts_take(uint64_t client_id, int32_t limit, int64_t now_ms)
{
	struct rc_entry *e = rc_find(atomic_load(&rc_cur), RC_CLIENT | client_id);
	struct rc_slots *s = e ? atomic_load(&e->slots) : NULL;
	int32_t mine = -1;

	if (!s)
		return true; /* not tracked (no limit known yet) */
	for (uint32_t i = 0; i < s->n; i++) {
		int64_t v = atomic_load(&s->until_ms[i]);

		if (v <= now_ms && atomic_compare_exchange_strong(&s->until_ms[i], &v,
					   now_ms + ROUTE_COUNTS_SLOT_MS)) {
			mine = (int32_t)i;
			break;
		}
	}
	if (mine < 0)
		return false; /* every slot is taken: at least the limit in flight here */
	/* taken, then counted: two takers racing for the last slot both see both (neither
	 * exceeds the limit; at worst both give up) */
	if (route_counts_in_progress_db(client_id) + route_counts_taken(client_id, now_ms) >
		limit) {
		atomic_store(&s->until_ms[mine], 0);
		return false;
	}
	return true;
}

void
route_counts_release(uint64_t client_id, bool started, int64_t now_ms)
{
	struct rc_entry *e = rc_find(atomic_load(&rc_cur), RC_CLIENT | client_id);
	struct rc_slots *s = e ? atomic_load(&e->slots) : NULL;
	int64_t keep = started ? now_ms + ROUTE_COUNTS_STARTED_MS : 0;
	uint32_t best = UINT32_MAX;
	int64_t best_v = 0;

	/* the slot taken first (the oldest decision) is the one most likely this call's */
	for (uint32_t i = 0; s && i < s->n; i++) {
		int64_t v = atomic_load(&s->until_ms[i]);

		if (v > now_ms && v > keep && (best == UINT32_MAX || v < best_v)) {
			best = i;
			best_v = v;
		}
	}
	if (best != UINT32_MAX)
		atomic_compare_exchange_strong(&s->until_ms[best], &best_v, keep);
}
