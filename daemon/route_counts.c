/* route_counts.c: per-client concurrency and month-to-date spend figures, lock-free for workers. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "route_counts.h"

#define RC_CLIENT (UINT64_C(1) << 60)
#define RC_AGENCY (UINT64_C(2) << 60)

/*
 * A slot: taken (its until_ms in the future) or free, and the key of the call whose routing took
 * it (route_counts_call_key; 0: none).  Two words, not written at once, so each is bound to the
 * other: word is until_ms << RC_GEN_BITS | a generation that every change of the slot (a claim,
 * a retry's new life, a release) steps, and call holds the key xor rc_tag(word), of the word it
 * was stored for.  A reader loads word, then call, and reads the key as call ^ rc_tag(word): a
 * call stored for another word (late: the slot was released and claimed again meanwhile; or
 * before its new word) reads as no call's.  A writer acts by a compare-exchange of the word it
 * loaded, and stores call after its new word.  A race can lose a slot's key (the retry then takes
 * another slot, as a request without an id does), never give a call another call's slot (the
 * same word again needs the same until_ms and 2^20 changes of the slot in between).
 */
#define RC_GEN_BITS 20
#define RC_GEN_MASK ((UINT64_C(1) << RC_GEN_BITS) - 1)
#define RC_UNTIL_MAX ((INT64_C(1) << (63 - RC_GEN_BITS)) - 1) /* ms: the year 2248 */
/* The word of a slot of an array replaced by a bigger one (route_counts_client): never a slot's
 * own (until_ms is never RC_UNTIL_MAX with every generation bit); whoever meets it looks the
 * client's array up again, at most this many times (then it counts as taken: conservative). */
#define RC_MOVED UINT64_MAX
#define RC_MOVED_TRIES 8

struct rc_slot {
	_Atomic uint64_t word; /* until_ms << RC_GEN_BITS | generation; until_ms 0: free */
	_Atomic uint64_t call; /* key ^ rc_tag(word) */
};

/* Between a slot's two words (its word changed, its call not yet stored): nothing, but in
 * tests/unit/test_route_counts_race.c, which runs other threads' steps there. */
#ifndef RC_BETWEEN_WORDS
#define RC_BETWEEN_WORDS() ((void)0)
#endif
/* Likewise before a take over the limit gives its slot back. */
#ifndef RC_BEFORE_GIVE_BACK
#define RC_BEFORE_GIVE_BACK() ((void)0)
#endif
/* Likewise before a take claims a free slot, and before a release frees the slot it chose. */
#ifndef RC_BEFORE_CLAIM
#define RC_BEFORE_CLAIM() ((void)0)
#endif
#ifndef RC_BEFORE_RELEASE
#define RC_BEFORE_RELEASE() ((void)0)
#endif

struct rc_slots {
	uint32_t n;
	struct rc_slot slot[];
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
static _Atomic uint64_t rc_changes;

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
	struct rc_old_slots *o;
	uint32_t want;

	if (!e)
		return false;
	if (limit <= 0)
		return true;
	want = limit > ROUTE_COUNTS_MAX_SLOTS ? ROUTE_COUNTS_MAX_SLOTS : (uint32_t)limit;
	s = atomic_load(&e->slots);
	if (s && s->n >= want)
		return true;
	ns = calloc(1, sizeof(*ns) + want * sizeof(ns->slot[0]));
	if (!ns)
		return false;
	ns->n = want;
	if (!s) {
		atomic_store(&e->slots, ns);
		return true;
	}
	o = malloc(sizeof(*o));
	if (!o) {
		free(ns);
		return false;
	}
	/*
	 * The slots move to the bigger array while workers may still act on the old one (loaded
	 * before the swap): copied, the new array published, then each old slot swapped for
	 * RC_MOVED -- a worker that meets it looks the array up again -- and what changed in it
	 * since the copy carried over, unless the new slot changed too (then the new one's
	 * change stands; the old one's is lost, for at most a slot's life).
	 */
	for (uint32_t i = 0; i < s->n; i++) {
		atomic_store(&ns->slot[i].word, atomic_load(&s->slot[i].word));
		atomic_store(&ns->slot[i].call, atomic_load(&s->slot[i].call));
	}
	atomic_store(&e->slots, ns);
	for (uint32_t i = 0; i < s->n; i++) {
		uint64_t copied = atomic_load(&ns->slot[i].word);
		uint64_t w = atomic_exchange(&s->slot[i].word, RC_MOVED);

		if (w != copied && atomic_compare_exchange_strong(&ns->slot[i].word, &copied, w))
			atomic_store(&ns->slot[i].call, atomic_load(&s->slot[i].call));
	}
	o->s = s;
	o->next = rc_old;
	rc_old = o;
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
	if (atomic_load(&e->in_progress) != n)
		atomic_fetch_add(&rc_changes, 1);
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
	if (atomic_load(&e->month[m]) != month || atomic_load(&e->amount[m]) != micros)
		atomic_fetch_add(&rc_changes, 1);
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

bool
route_counts_get(struct policy_figure *f)
{
	struct rc_entry *e =
		rc_find(atomic_load(&rc_cur), (f->agency ? RC_AGENCY : RC_CLIENT) | f->id);
	uint32_t s0;

	if (!e)
		return false;
	do {
		s0 = atomic_load(&e->seq);
		for (int m = 0; m < 2; m++) {
			f->month[m] = atomic_load(&e->month[m]);
			f->amount[m] = atomic_load(&e->amount[m]);
		}
	} while ((s0 & 1) || atomic_load(&e->seq) != s0);
	f->in_progress = f->agency ? 0 : atomic_load(&e->in_progress);
	return true;
}

void
route_counts_restore(const struct policy_figure *f)
{
	struct rc_entry *e =
		rc_find(atomic_load(&rc_cur), (f->agency ? RC_AGENCY : RC_CLIENT) | f->id);

	if (!e)
		return;
	atomic_fetch_add(&e->seq, 1);
	for (int m = 0; m < 2; m++) {
		atomic_store(&e->month[m], f->month[m]);
		atomic_store(&e->amount[m], f->amount[m]);
	}
	atomic_fetch_add(&e->seq, 1);
	if (!f->agency)
		atomic_store(&e->in_progress, f->in_progress);
}

uint64_t
route_counts_changes(void)
{
	return atomic_load(&rc_changes);
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

uint64_t
route_counts_call_key(unsigned provider, const char *id, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ ((uint64_t)provider + 1); /* FNV-1a, then mixed */

	if (!id || n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)id[i];
		h *= 0x100000001b3ULL;
	}
	h = rc_hash(h ^ n);
	return h ? h : 1;
}

static struct rc_slots *
rc_slots_of(uint64_t client_id)
{
	struct rc_entry *e = rc_find(atomic_load(&rc_cur), RC_CLIENT | client_id);

	return e ? atomic_load(&e->slots) : NULL;
}

static int64_t
rc_until(uint64_t word)
{
	return (int64_t)(word >> RC_GEN_BITS);
}

/* The word that follows old: until_ms (clamped), the next generation. */
static uint64_t
rc_word(int64_t until_ms, uint64_t old)
{
	if (until_ms < 0)
		until_ms = 0;
	if (until_ms > RC_UNTIL_MAX)
		until_ms = RC_UNTIL_MAX;
	return (uint64_t)until_ms << RC_GEN_BITS | ((old + 1) & RC_GEN_MASK);
}

/* What a call key is stored xor: a mix of the word it is stored for. */
static uint64_t
rc_tag(uint64_t word)
{
	return rc_hash(word ^ UINT64_C(0x9e3779b97f4a7c15)) ^ UINT64_C(0x6a09e667f3bcc908);
}

/* The key of a slot whose word is word (loaded before): 0 or another's if stored for another. */
static uint64_t
rc_call_of(const struct rc_slot *sl, uint64_t word, memory_order mo)
{
	return atomic_load_explicit(&sl->call, mo) ^ rc_tag(word);
}

/*
 * After word nw is in place: the slot's call is key's, unless its call changed since it was
 * loaded (c, before the word's compare-exchange): a later claimer of the slot stored its own
 * (this store is late; the slot is that claimer's), which stays.
 */
static void
rc_set_call(struct rc_slot *sl, uint64_t c, uint64_t key, uint64_t nw)
{
	atomic_compare_exchange_strong(&sl->call, &c, key ^ rc_tag(nw));
}

/* The live slots of client_id; with a call key, less that call's own (one).  A slot moved to
 * a bigger array (RC_MOVED): counted in the new one. */
static int32_t
rc_taken(uint64_t client_id, int64_t now_ms, uint64_t call)
{
	for (int tries = 0;; tries++) {
		const struct rc_slots *s = rc_slots_of(client_id);
		uint64_t own = call;
		int32_t n = 0;
		bool moved = false;

		for (uint32_t i = 0; s && i < s->n; i++) {
			uint64_t w = atomic_load_explicit(&s->slot[i].word, memory_order_relaxed);

			if (w == RC_MOVED && tries < RC_MOVED_TRIES) {
				moved = true;
				break;
			}
			if (rc_until(w) <= now_ms)
				continue;
			if (own && rc_call_of(&s->slot[i], w, memory_order_relaxed) == own) {
				own = 0;
				continue;
			}
			n++;
		}
		if (!moved)
			return n;
	}
}

int32_t
route_counts_taken(uint64_t client_id, int64_t now_ms)
{
	return rc_taken(client_id, now_ms, 0);
}

static int32_t
rc_concurrent(void *ctx, uint64_t client_id)
{
	const struct route_counts_at *at = ctx;

	return route_counts_in_progress_db(client_id) + rc_taken(client_id, at->now_ms, at->call);
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
route_counts_ops(struct policy_counts *out, struct route_counts_at *at)
{
	out->concurrent = rc_concurrent;
	out->spend = rc_spend;
	out->ctx = at;
}

/* The call's live slot, if it has one: its life starts again (a retry is a new decision of the
 * same call, whose start event comes after the last answer). */
static int
rc_reuse(struct rc_slots *s, int64_t now_ms, uint64_t call)
{
	int64_t until = now_ms + ROUTE_COUNTS_SLOT_MS;

	for (uint32_t i = 0; i < s->n; i++) {
		struct rc_slot *sl = &s->slot[i];
		uint64_t w = atomic_load(&sl->word);

		/* the word first, then call (see struct rc_slot); a changed word: look again */
		for (;;) {
			uint64_t c = atomic_load(&sl->call), nw;

			if (w == RC_MOVED)
				return -1;
			if (rc_until(w) <= now_ms || (c ^ rc_tag(w)) != call)
				break;
			if (rc_until(w) >= until)
				return 1;
			nw = rc_word(until, w);
			if (atomic_compare_exchange_strong(&sl->word, &w, nw)) {
				RC_BETWEEN_WORDS();
				rc_set_call(sl, c, call, nw);
				return 1;
			}
		}
	}
	return 0;
}

enum route_take
route_counts_take(uint64_t client_id, int32_t limit, int64_t now_ms, uint64_t call)
{
	struct rc_slots *s;
	int32_t mine = -1;
	uint64_t mine_w = 0;
	int tries = 0;

again:
	s = rc_slots_of(client_id);
	if (!s)
		return ROUTE_TAKE_TAKEN; /* not tracked (no limit known yet) */
	if (call) {
		int k = rc_reuse(s, now_ms, call);

		if (k > 0)
			return ROUTE_TAKE_REUSED;
		if (k < 0 && tries++ < RC_MOVED_TRIES)
			goto again;
	}
	for (uint32_t i = 0; i < s->n; i++) {
		struct rc_slot *sl = &s->slot[i];
		uint64_t w = atomic_load(&sl->word), c, nw;

		if (w == RC_MOVED && tries++ < RC_MOVED_TRIES)
			goto again;
		if (rc_until(w) > now_ms)
			continue;
		c = atomic_load(&sl->call);
		nw = rc_word(now_ms + ROUTE_COUNTS_SLOT_MS, w);
		RC_BEFORE_CLAIM();
		if (atomic_compare_exchange_strong(&sl->word, &w, nw)) {
			RC_BETWEEN_WORDS();
			rc_set_call(sl, c, call, nw);
			mine = (int32_t)i;
			mine_w = nw;
			break;
		}
		if (w == RC_MOVED && tries++ < RC_MOVED_TRIES)
			goto again; /* moved meanwhile: claimed in the new array */
	}
	/* every slot is taken: at least the limit in flight here */
	if (mine < 0)
		return ROUTE_TAKE_REFUSED;
	/* taken, then counted: two takers racing for the last slot both see both (neither
	 * exceeds the limit; at worst both give up) */
	if (route_counts_in_progress_db(client_id) + rc_taken(client_id, now_ms, 0) > limit) {
		/* given back unless changed meanwhile: a retry of the same call that found it holds
		 * it now (ROUTE_TAKE_REUSED), or its event released it */
		RC_BEFORE_GIVE_BACK();
		atomic_compare_exchange_strong(&s->slot[mine].word, &mine_w, rc_word(0, mine_w));
		return ROUTE_TAKE_REFUSED;
	}
	return ROUTE_TAKE_TAKEN;
}

void
route_counts_release(uint64_t client_id, bool started, int64_t now_ms, uint64_t call)
{
	struct rc_slots *s;
	int64_t keep = started ? now_ms + ROUTE_COUNTS_STARTED_MS : 0;
	uint32_t best;
	uint64_t best_w;
	bool own;
	int tries = 0;

again:
	s = rc_slots_of(client_id);
	best = UINT32_MAX;
	best_w = 0;
	own = false;

	/*
	 * The call's own slot; else the slot taken first (the oldest decision) by a routing
	 * request without a call id, the one most likely this call's.  A slot another call's id
	 * names is that call's: its own events release it (or 10 s), never this one's -- an end
	 * event after the start event released the call's slot would otherwise free a live
	 * call's, and a burst could then exceed the limit by one.
	 */
	for (uint32_t i = 0; s && i < s->n; i++) {
		uint64_t w = atomic_load(&s->slot[i].word);
		int64_t v = rc_until(w);
		uint64_t c;
		bool is_own;

		if (w == RC_MOVED && tries++ < RC_MOVED_TRIES)
			goto again;
		if (v <= now_ms || v <= keep)
			continue;
		c = rc_call_of(&s->slot[i], w, memory_order_seq_cst);
		is_own = call && c == call;
		if (!is_own && call && c != 0)
			continue;
		if (best == UINT32_MAX || (is_own && !own) ||
			(is_own == own && v < rc_until(best_w))) {
			best = i;
			best_w = w;
			own = is_own;
		}
	}
	if (best == UINT32_MAX)
		return;
	/* a new word: the slot names no call any more (after a start the database's count has it);
	 * one that meets RC_MOVED fails: the slot is released in the new array */
	RC_BEFORE_RELEASE();
	if (!atomic_compare_exchange_strong(&s->slot[best].word, &best_w, rc_word(keep, best_w)) &&
		best_w == RC_MOVED && tries++ < RC_MOVED_TRIES)
		goto again;
}
