/* route_table.c: the number table: open addressing, linear probing, backward-shift deletion. */
#include <stdlib.h>
#include <string.h>

#include "mix64.h"
#include "route_table.h"

bool
route_table_init(struct route_table *t, size_t n)
{
	size_t cap = 16;

	while (cap < n * 2)
		cap <<= 1;
	if (cap > (size_t)1 << 31)
		return false;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots)
		return false;
	t->mask = (uint32_t)(cap - 1);
	t->count = 0;
	return true;
}

bool
route_table_copy(struct route_table *dst, const struct route_table *src)
{
	size_t bytes = ((size_t)src->mask + 1) * sizeof(*src->slots);

	dst->slots = malloc(bytes);
	if (!dst->slots)
		return false;
	memcpy(dst->slots, src->slots, bytes);
	dst->mask = src->mask;
	dst->count = src->count;
	return true;
}

void
route_table_free(struct route_table *t)
{
	free(t->slots);
	t->slots = NULL;
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
	free(t->slots);
	*t = n;
	return true;
}

bool
route_table_put(struct route_table *t, const struct route_slot *s)
{
	uint32_t i;

	if (s->key == 0 || !t->slots)
		return false;
	for (i = (uint32_t)mix64(s->key) & t->mask; t->slots[i].key != 0; i = (i + 1) & t->mask)
		if (t->slots[i].key == s->key) {
			t->slots[i] = *s;
			return true;
		}
	if (((uint64_t)t->count + 1) * 4 > ((uint64_t)t->mask + 1) * 3) {
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

	if (key == 0 || !sl)
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
