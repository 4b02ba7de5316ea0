/* route_table.c: the number table: open addressing, linear probing, backward-shift deletion. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mix64.h"
#include "route_table.h"

/* A table of millions of numbers: every look-up misses the TLB with 4 KiB pages; ask for
 * transparent huge pages (THP "madvise" mode) on the whole 2 MiB pages inside it. */
static void
route_table_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
	const uintptr_t huge = (uintptr_t)2 << 20;
	uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1),
		  hi = ((uintptr_t)p + bytes) & ~(huge - 1);

	if (bytes >= 4 * huge && hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#endif
}

/* Slots for cap entries (zeroed, or to be filled by the caller) and a count of one holder. */
static bool
route_table_alloc(struct route_table *t, size_t cap, bool zero)
{
	t->slots = zero ? calloc(cap, sizeof(*t->slots)) : malloc(cap * sizeof(*t->slots));
	t->refs = malloc(sizeof(*t->refs));
	if (!t->slots || !t->refs) {
		free(t->slots);
		free((void *)t->refs);
		t->slots = NULL;
		t->refs = NULL;
		return false;
	}
	atomic_init(t->refs, 1);
	route_table_huge(t->slots, cap * sizeof(*t->slots));
	return true;
}

bool
route_table_init(struct route_table *t, size_t n)
{
	size_t cap = 16;

	/* n at a load of at most 3/4: at most 64 bytes of table per number for any n (24-byte
	 * slots, a power of two of them: 24 / (3/8) just above a doubling), 40 at 10M */
	while (cap * 3 < n * 4)
		cap <<= 1;
	if (cap > (size_t)1 << 31)
		return false;
	if (!route_table_alloc(t, cap, true))
		return false;
	t->mask = (uint32_t)(cap - 1);
	t->count = 0;
	return true;
}

bool
route_table_copy(struct route_table *dst, const struct route_table *src)
{
	size_t cap = (size_t)src->mask + 1;

	if (!route_table_alloc(dst, cap, false))
		return false;
	memcpy(dst->slots, src->slots, cap * sizeof(*src->slots));
	dst->mask = src->mask;
	dst->count = src->count;
	return true;
}

void
route_table_share(struct route_table *dst, const struct route_table *src)
{
	*dst = *src;
	if (dst->refs)
		atomic_fetch_add_explicit(dst->refs, 1, memory_order_relaxed);
}

static bool
route_table_shared(const struct route_table *t)
{
	return t->refs && atomic_load_explicit(t->refs, memory_order_acquire) > 1;
}

void
route_table_free(struct route_table *t)
{
	if (!t->refs || atomic_fetch_sub_explicit(t->refs, 1, memory_order_acq_rel) == 1) {
		free(t->slots);
		free((void *)t->refs);
	}
	t->slots = NULL;
	t->refs = NULL;
	t->mask = 0;
	t->count = 0;
}

size_t
route_table_bytes(const struct route_table *t)
{
	return t->slots ? ((size_t)t->mask + 1) * sizeof(*t->slots) : 0;
}

static void
route_table_insert_new(struct route_table *t, const struct route_slot *s)
{
	uint32_t i = (uint32_t)mix64(s->key) & t->mask;

	while (t->slots[i].key != 0)
		i = (i + 1) & t->mask;
	t->slots[i] = *s;
	t->count++;
}

static bool
route_table_grow(struct route_table *t)
{
	struct route_table n;

	if (!route_table_init(&n, ((size_t)t->mask + 1)))
		return false;
	for (size_t i = 0; i <= t->mask; i++)
		if (t->slots[i].key != 0)
			route_table_insert_new(&n, &t->slots[i]);
	route_table_free(t);
	*t = n;
	return true;
}

bool
route_table_put(struct route_table *t, const struct route_slot *s)
{
	uint32_t i;

	if (s->key == 0 || !t->slots || route_table_shared(t))
		return false;
	for (i = (uint32_t)mix64(s->key) & t->mask; t->slots[i].key != 0; i = (i + 1) & t->mask)
		if (t->slots[i].key == s->key) {
			t->slots[i] = *s;
			return true;
		}
	/* grown above 0.85 (from a full reload's 3/4 at most: room for changes), to 0.425 */
	if (((uint64_t)t->count + 1) * 20 > ((uint64_t)t->mask + 1) * 17) {
		if (!route_table_grow(t))
			return false;
		route_table_insert_new(t, s);
		return true;
	}
	t->slots[i] = *s;
	t->count++;
	return true;
}

bool
route_table_put_many(struct route_table *t, const struct route_slot *s, size_t n)
{
	/* homes are random in a table far larger than the caches: fetch a window ahead */
	enum { AHEAD = 16 };

	for (size_t i = 0; i < n && i < AHEAD; i++)
		__builtin_prefetch(&t->slots[mix64(s[i].key) & t->mask], 1);
	for (size_t i = 0; i < n; i++) {
		if (i + AHEAD < n)
			__builtin_prefetch(&t->slots[mix64(s[i + AHEAD].key) & t->mask], 1);
		if (!route_table_put(t, &s[i]))
			return false;
	}
	return true;
}

const struct route_slot *
route_table_get(const struct route_table *t, uint64_t key)
{
	if (key == 0 || !t->slots)
		return NULL;
	for (uint32_t i = (uint32_t)mix64(key) & t->mask; t->slots[i].key != 0;
		i = (i + 1) & t->mask)
		if (t->slots[i].key == key)
			return &t->slots[i];
	return NULL;
}

bool
route_table_del(struct route_table *t, uint64_t key)
{
	struct route_slot *sl = t->slots;
	uint32_t i, j;

	if (key == 0 || !sl || route_table_shared(t))
		return false;
	for (i = (uint32_t)mix64(key) & t->mask;; i = (i + 1) & t->mask) {
		if (sl[i].key == 0)
			return false;
		if (sl[i].key == key)
			break;
	}
	/* backward-shift deletion: pull later members of the cluster into the hole */
	for (j = i;;) {
		uint32_t home;

		sl[i].key = 0;
		for (;;) {
			j = (j + 1) & t->mask;
			if (sl[j].key == 0) {
				t->count--;
				return true;
			}
			home = (uint32_t)mix64(sl[j].key) & t->mask;
			/* j's entry may move to i only if its home is not cyclically in (i, j] */
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
				break;
		}
		sl[i] = sl[j];
		i = j;
	}
}
