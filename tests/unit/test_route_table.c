/* test_route_table.c: the number table: put/get/del, backward-shift deletion, growth, 1M keys. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "route_table.h"

#define MILLION 1000000u

static uint64_t
splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/*
 * The i-th of a sequence of distinct pseudo-random keys in 10^10 .. 10^10 + 2^49 (< 10^15): a
 * bijection of the 49-bit integers (odd multiply, xor-shifts) keeps them distinct.
 */
static uint64_t
nth_key(uint64_t i, uint64_t seed)
{
	const uint64_t mask = (UINT64_C(1) << 49) - 1;
	uint64_t x = (i ^ seed) & mask;

	x = (x * UINT64_C(0x9e3779b97f4a7c15)) & mask;
	x ^= x >> 23;
	x = (x * UINT64_C(0xbf58476d1ce4e5b9)) & mask;
	x ^= x >> 29;
	return UINT64_C(10000000000) + x;
}

static struct route_slot
slot_for(uint64_t key, uint64_t n)
{
	struct route_slot s = {
		.key = key,
		.number_id = n,
		.agent_idx = (uint32_t)(n * 7),
		.account_idx = (uint32_t)(n % 13),
	};
	return s;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every key of keys[0..n) with present[i] is found with its values; every other one is not. */
static void
check_keys(const struct route_table *t, const uint64_t *keys, const bool *present, size_t n)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		const struct route_slot *s = route_table_get(t, keys[i]);

		if (present[i]) {
			if (s == NULL)
				fail_msg("key %llu (#%zu) not found", (unsigned long long)keys[i],
					i);
			assert_int_equal(s->key, keys[i]);
			assert_int_equal(s->number_id, i + 1);
			assert_int_equal(s->agent_idx, (uint32_t)((i + 1) * 7));
			assert_int_equal(s->account_idx, (uint32_t)((i + 1) % 13));
			count++;
		} else if (s != NULL) {
			fail_msg("deleted key %llu (#%zu) still found", (unsigned long long)keys[i],
				i);
		}
	}
	assert_int_equal(t->count, count);
}

/* The table's own slots agree with its count, and each occupied slot is reachable by get(). */
static void
check_slots(const struct route_table *t)
{
	size_t used = 0;

	if (t->slots == NULL) {
		assert_int_equal(t->count, 0);
		return;
	}
	for (size_t i = 0; i <= t->mask; i++) {
		if (t->slots[i].key == 0)
			continue;
		used++;
		assert_ptr_equal(route_table_get(t, t->slots[i].key), &t->slots[i]);
	}
	assert_int_equal(used, t->count);
}

static void
test_empty(void **state)
{
	struct route_table t;

	assert_true(route_table_init(&t, 0));
	assert_int_equal(t.count, 0);
	assert_null(route_table_get(&t, UINT64_C(14155550123)));
	assert_null(route_table_get(&t, 0)); /* 0 marks empty slots: never a key */
	assert_false(route_table_del(&t, UINT64_C(14155550123)));
	assert_false(route_table_del(&t, 0));
	check_slots(&t);
	route_table_free(&t);
}

static void
test_put_get_replace_del(void **state)
{
	struct route_table t;
	struct route_slot s = slot_for(UINT64_C(14155550123), 1);
	const struct route_slot *got;

	assert_true(route_table_init(&t, 4));
	assert_true(route_table_put(&t, &s));
	assert_int_equal(t.count, 1);
	got = route_table_get(&t, UINT64_C(14155550123));
	assert_non_null(got);
	assert_int_equal(got->key, UINT64_C(14155550123));
	assert_int_equal(got->number_id, 1);
	assert_int_equal(got->agent_idx, 7);
	assert_int_equal(got->account_idx, 1);
	assert_null(route_table_get(&t, UINT64_C(14155550124)));
	assert_null(route_table_get(&t, 0));

	/* Replace: same key, new values, same count. */
	s.number_id = 99;
	s.agent_idx = ROUTE_NONE;
	s.account_idx = 5;
	assert_true(route_table_put(&t, &s));
	assert_int_equal(t.count, 1);
	got = route_table_get(&t, UINT64_C(14155550123));
	assert_non_null(got);
	assert_int_equal(got->number_id, 99);
	assert_int_equal(got->agent_idx, ROUTE_NONE);
	assert_int_equal(got->account_idx, 5);
	s.agent_idx = ROUTE_RELEASED;
	assert_true(route_table_put(&t, &s));
	assert_int_equal(route_table_get(&t, UINT64_C(14155550123))->agent_idx, ROUTE_RELEASED);

	/* A second key, then deletions. */
	s = slot_for(UINT64_C(442079460000), 2);
	assert_true(route_table_put(&t, &s));
	assert_int_equal(t.count, 2);
	assert_true(route_table_del(&t, UINT64_C(14155550123)));
	assert_int_equal(t.count, 1);
	assert_null(route_table_get(&t, UINT64_C(14155550123)));
	assert_false(route_table_del(&t, UINT64_C(14155550123)));
	assert_int_equal(t.count, 1);
	assert_non_null(route_table_get(&t, UINT64_C(442079460000)));
	assert_true(route_table_del(&t, UINT64_C(442079460000)));
	assert_int_equal(t.count, 0);
	assert_null(route_table_get(&t, UINT64_C(442079460000)));
	check_slots(&t);

	/* Deleted keys can come back. */
	s = slot_for(UINT64_C(14155550123), 3);
	assert_true(route_table_put(&t, &s));
	assert_int_equal(route_table_get(&t, UINT64_C(14155550123))->number_id, 3);
	assert_int_equal(t.count, 1);
	route_table_free(&t);
}

/* The extreme keys: the smallest and largest E.164 keys, and any non-zero 64-bit value. */
static void
test_extreme_keys(void **state)
{
	static const uint64_t keys[] = { 1, 2, UINT64_C(1000000), UINT64_C(999999999999999),
		UINT64_MAX, UINT64_MAX - 1, UINT64_C(1) << 63, UINT32_MAX,
		(uint64_t)UINT32_MAX + 1 };
	const size_t n = sizeof(keys) / sizeof(keys[0]);
	bool present[sizeof(keys) / sizeof(keys[0])];
	struct route_table t;

	assert_true(route_table_init(&t, 0));
	for (size_t i = 0; i < n; i++) {
		struct route_slot s = slot_for(keys[i], i + 1);

		assert_true(route_table_put(&t, &s));
		present[i] = true;
	}
	check_keys(&t, keys, present, n);
	for (size_t i = 0; i < n; i += 2) {
		assert_true(route_table_del(&t, keys[i]));
		present[i] = false;
	}
	check_keys(&t, keys, present, n);
	check_slots(&t);
	route_table_free(&t);
}

/*
 * Backward-shift deletion: in a table filled to just below its growth point, where long clusters
 * form, delete keys cluster by cluster (heads, middles, tails, whole runs, the run that wraps
 * around the end), checking after every deletion that every remaining key is still found.
 */
static void
test_delete_clusters(void **state)
{
	for (uint64_t seed = 1; seed <= 40; seed++) {
		struct route_table t;
		uint64_t *keys;
		bool *present;
		size_t n = 0, cap, max = 0;
		uint32_t mask;

		assert_true(route_table_init(&t, 64));
		mask = t.mask;
		cap = (size_t)mask + 1;
		keys = calloc(cap, sizeof(*keys));
		present = calloc(cap, sizeof(*present));
		assert_non_null(keys);
		assert_non_null(present);

		/* Fill until the table would grow: stop at the last put that kept its size. */
		for (;;) {
			struct route_table probe;
			struct route_slot s = slot_for(nth_key(n, seed * 7919), n + 1);

			assert_true(route_table_copy(&probe, &t));
			assert_true(route_table_put(&probe, &s));
			if (probe.mask != mask) {
				route_table_free(&probe);
				break;
			}
			route_table_free(&probe);
			assert_true(route_table_put(&t, &s));
			keys[n] = s.key;
			present[n] = true;
			n++;
			assert_true(n < cap);
		}
		assert_true(n >= cap / 2);
		check_keys(&t, keys, present, n);
		check_slots(&t);

		/* Find the longest run of occupied slots, following it around the end. */
		for (size_t start = 0; start < cap; start++) {
			size_t len = 0;

			if (t.slots[(start - 1) & mask].key != 0 || t.slots[start].key == 0)
				continue;
			while (len < cap && t.slots[(start + len) & mask].key != 0)
				len++;
			if (len > max)
				max = len;
		}
		assert_true(max >= 3); /* a load of 1/2 or more always clusters */

		/* Delete in an order that hits every position of every cluster: head, then middle,
		 * then tail, repeatedly, following the table's own slots. */
		for (int pass = 0; t.count > 0; pass++) {
			size_t start, len = 0;
			uint64_t victim;

			/* The first cluster head from a rotating offset on, wrapping around. */
			for (start = (size_t)pass * 11 % cap;; start = (start + 1) & mask)
				if (t.slots[start].key != 0 && t.slots[(start - 1) & mask].key == 0)
					break;
			while (t.slots[(start + len) & mask].key != 0)
				len++;
			switch (pass % 3) {
			case 0:
				victim = t.slots[start].key;
				break;
			case 1:
				victim = t.slots[(start + len / 2) & mask].key;
				break;
			default:
				victim = t.slots[(start + len - 1) & mask].key;
				break;
			}
			assert_true(route_table_del(&t, victim));
			assert_null(route_table_get(&t, victim));
			for (size_t i = 0; i < n; i++)
				if (keys[i] == victim)
					present[i] = false;
			check_keys(&t, keys, present, n);
			check_slots(&t);
			assert_int_equal(t.mask, mask);
		}
		for (size_t i = 0; i < cap; i++)
			assert_int_equal(t.slots[i].key, 0);
		free(keys);
		free(present);
		route_table_free(&t);
	}
}

/* A cluster that wraps from the last slot to the first, then deleted from its head. */
static void
test_delete_wrap_around(void **state)
{
	unsigned found = 0;

	for (uint64_t seed = 100; seed < 400 && found < 20; seed++) {
		struct route_table t;
		uint64_t keys[48];
		bool present[48];
		size_t n = 0, head;
		uint32_t mask;

		assert_true(route_table_init(&t, 16));
		mask = t.mask;
		/* Half full: enough for clusters, below any growth point. */
		while (n < sizeof(keys) / sizeof(keys[0]) && n < ((size_t)mask + 1) / 2) {
			struct route_slot s = slot_for(nth_key(n, seed), n + 1);

			assert_true(route_table_put(&t, &s));
			keys[n] = s.key;
			present[n] = true;
			n++;
		}
		assert_int_equal(t.mask, mask);
		if (t.slots[mask].key == 0 || t.slots[0].key == 0) {
			route_table_free(&t);
			continue;
		}
		found++;
		/* The head of the wrapping cluster. */
		for (head = mask; t.slots[(head - 1) & mask].key != 0 && head > 0; head--)
			;
		while (t.count > 0) {
			uint64_t victim = t.slots[head].key;

			if (victim == 0) {
				/* The cluster is gone: take any key left. */
				for (size_t i = 0; i < n; i++)
					if (present[i])
						victim = keys[i];
			}
			assert_true(route_table_del(&t, victim));
			for (size_t i = 0; i < n; i++)
				if (keys[i] == victim)
					present[i] = false;
			check_keys(&t, keys, present, n);
			check_slots(&t);
		}
		route_table_free(&t);
	}
	assert_true(found > 0);
}

/* Random operations against a plain array model. */
static void
test_random_model(void **state)
{
	enum { NKEYS = 3000, OPS = 200000 };
	uint64_t *keys = calloc(NKEYS, sizeof(*keys));
	uint64_t *ids = calloc(NKEYS, sizeof(*ids));
	struct route_table t;
	uint64_t rng = 42;
	size_t live = 0;

	assert_non_null(keys);
	assert_non_null(ids);
	for (size_t i = 0; i < NKEYS; i++)
		keys[i] = nth_key(i, 5);
	assert_true(route_table_init(&t, 0));
	for (int op = 0; op < OPS; op++) {
		uint64_t r = splitmix64(&rng);
		size_t i = (size_t)(r % NKEYS);
		const struct route_slot *s;

		switch ((r >> 32) % 4) {
		case 0:
		case 1: {
			struct route_slot put = { .key = keys[i], .number_id = r | 1 };

			assert_true(route_table_put(&t, &put));
			if (ids[i] == 0)
				live++;
			ids[i] = put.number_id;
			break;
		}
		case 2:
			assert_int_equal(route_table_del(&t, keys[i]), ids[i] != 0);
			if (ids[i] != 0)
				live--;
			ids[i] = 0;
			break;
		default:
			s = route_table_get(&t, keys[i]);
			if (ids[i] == 0) {
				assert_null(s);
			} else {
				assert_non_null(s);
				assert_int_equal(s->number_id, ids[i]);
			}
			break;
		}
		assert_int_equal(t.count, live);
	}
	for (size_t i = 0; i < NKEYS; i++) {
		const struct route_slot *s = route_table_get(&t, keys[i]);

		if (ids[i] == 0) {
			assert_null(s);
		} else {
			assert_non_null(s);
			assert_int_equal(s->number_id, ids[i]);
		}
	}
	check_slots(&t);
	route_table_free(&t);
	free(keys);
	free(ids);
}

static void
test_init_sizing(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 7, 100, 1000, 4096, 10000 };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		struct route_table t;
		uint32_t mask;

		assert_true(route_table_init(&t, n));
		mask = t.mask;
		/* A load factor of at most 3/4 for n entries, the smallest such power of two ... */
		assert_true(((size_t)mask + 1) * 3 >= 4 * n);
		assert_true(mask + 1 == 16 || ((size_t)mask + 1) * 3 < 8 * n);
		assert_int_equal(((size_t)mask + 1) & mask, 0); /* a power of two */
		/* ... so n puts never grow it. */
		for (size_t i = 0; i < n; i++) {
			struct route_slot s = slot_for(nth_key(i, n), i + 1);

			assert_true(route_table_put(&t, &s));
		}
		assert_int_equal(t.count, n);
		assert_int_equal(t.mask, mask);
		route_table_free(&t);
	}
}

static void
test_growth(void **state)
{
	enum { N = 100000 };
	uint64_t *keys = calloc(N, sizeof(*keys));
	bool *present = calloc(N, sizeof(*present));
	struct route_table t;
	unsigned grows = 0;

	assert_non_null(keys);
	assert_non_null(present);
	assert_true(route_table_init(&t, 0));
	for (size_t i = 0; i < N; i++) {
		struct route_slot s = slot_for(nth_key(i, 77), i + 1);
		uint32_t mask = t.mask;

		assert_true(route_table_put(&t, &s));
		keys[i] = s.key;
		present[i] = true;
		if (t.mask != mask) {
			grows++;
			assert_true(t.mask > mask);
			/* Grown only when above 0.85 full, doubled: to a load of at most 0.425. */
			assert_true((uint64_t)t.mask + 1 == ((uint64_t)mask + 1) * 2);
			assert_true((uint64_t)t.count * 40 <= ((uint64_t)t.mask + 1) * 17 + 40);
			assert_true((uint64_t)t.count * 20 > ((uint64_t)mask + 1) * 17);
		}
		/* Never left much above 0.85 full (one put of slack: grow before or after it). */
		assert_true((uint64_t)t.count * 20 <= ((uint64_t)t.mask + 1) * 17 + 20);
		/* Spot checks along the way: everything so far is still there. */
		if ((i & (i + 1)) == 0)
			check_keys(&t, keys, present, i + 1);
	}
	assert_true(grows > 5);
	check_keys(&t, keys, present, N);
	check_slots(&t);
	route_table_free(&t);
	free(keys);
	free(present);
}

/* A shared table: the same slots, read-only while shared, freed by the last holder; a copy of
 * it is a table of its own again. */
static void
test_share(void **state)
{
	struct route_table a, b, c;
	struct route_slot s = slot_for(UINT64_C(14155550123), 1);
	struct route_slot t2 = slot_for(UINT64_C(14155550124), 2);

	(void)state;
	assert_true(route_table_init(&a, 4));
	assert_true(route_table_put(&a, &s));
	route_table_share(&b, &a);
	assert_ptr_equal(b.slots, a.slots);
	assert_int_equal(b.count, 1);
	assert_non_null(route_table_get(&b, s.key));
	/* neither holder may change slots the other reads */
	assert_false(route_table_put(&a, &t2));
	assert_false(route_table_put(&b, &t2));
	assert_false(route_table_del(&b, s.key));
	assert_int_equal(a.count, 1);
	/* a copy of a shared table is its own */
	assert_true(route_table_copy(&c, &b));
	assert_true(route_table_put(&c, &t2));
	assert_null(route_table_get(&b, t2.key));
	/* the first holder gone, the other still reads the slots, then may change them */
	route_table_free(&a);
	assert_null(a.slots);
	assert_non_null(route_table_get(&b, s.key));
	assert_true(route_table_put(&b, &t2));
	assert_true(route_table_del(&b, s.key));
	check_slots(&b);
	route_table_free(&b);
	route_table_free(&c);
}

static void
test_copy_independent(void **state)
{
	enum { N = 5000 };
	struct route_table a, b;
	uint64_t *keys = calloc(N, sizeof(*keys));
	bool *present = calloc(N, sizeof(*present));

	assert_non_null(keys);
	assert_non_null(present);
	assert_true(route_table_init(&a, 0));
	for (size_t i = 0; i < N; i++) {
		struct route_slot s = slot_for(nth_key(i, 9), i + 1);

		assert_true(route_table_put(&a, &s));
		keys[i] = s.key;
		present[i] = true;
	}
	assert_true(route_table_copy(&b, &a));
	assert_int_equal(b.count, a.count);
	assert_true(b.slots != a.slots);
	check_keys(&b, keys, present, N);
	check_slots(&b);

	/* Change the original: the copy does not see it. */
	for (size_t i = 0; i < N; i += 2)
		assert_true(route_table_del(&a, keys[i]));
	{
		struct route_slot s = slot_for(keys[1], 12345);
		struct route_slot extra = slot_for(UINT64_C(14155550123), 1);

		assert_true(route_table_put(&a, &s));
		assert_true(route_table_put(&a, &extra));
	}
	check_keys(&b, keys, present, N);
	assert_null(route_table_get(&b, UINT64_C(14155550123)));

	/* Change the copy: the original does not see it. */
	for (size_t i = 0; i < N; i++)
		assert_true(route_table_del(&b, keys[i]));
	assert_int_equal(b.count, 0);
	assert_int_equal(route_table_get(&a, keys[1])->number_id, 12345);
	assert_non_null(route_table_get(&a, UINT64_C(14155550123)));
	for (size_t i = 3; i < N; i += 2)
		assert_int_equal(route_table_get(&a, keys[i])->number_id, i + 1);
	for (size_t i = 0; i < N; i += 2)
		assert_null(route_table_get(&a, keys[i]));
	check_slots(&a);

	/* Free the original first: the copy stays usable. */
	route_table_free(&a);
	for (size_t i = 0; i < 100; i++) {
		struct route_slot s = slot_for(keys[i], i + 1);

		assert_true(route_table_put(&b, &s));
	}
	assert_int_equal(b.count, 100);
	route_table_free(&b);

	/* Copy of an empty table. */
	assert_true(route_table_init(&a, 0));
	assert_true(route_table_copy(&b, &a));
	assert_int_equal(b.count, 0);
	assert_null(route_table_get(&b, keys[0]));
	route_table_free(&a);
	route_table_free(&b);
	free(keys);
	free(present);
}

static void
test_million(void **state)
{
	const size_t n = MILLION;
	uint64_t *keys = malloc(n * sizeof(*keys));
	struct route_table t;
	size_t bytes, misses = 0;
	double t0, t1, t2;

	assert_non_null(keys);
	for (size_t i = 0; i < n; i++)
		keys[i] = nth_key(i, UINT64_C(0x5eed));

	/* Grown from empty, as a table fed by changes would be. */
	assert_true(route_table_init(&t, 0));
	t0 = now_s();
	for (size_t i = 0; i < n; i++) {
		struct route_slot s = { .key = keys[i], .number_id = i + 1 };

		s.agent_idx = (uint32_t)i;
		if (!route_table_put(&t, &s))
			fail_msg("put #%zu failed", i);
	}
	t1 = now_s();
	for (size_t i = 0; i < n; i++) {
		const struct route_slot *s = route_table_get(&t, keys[i]);

		if (s == NULL || s->number_id != i + 1 || s->agent_idx != (uint32_t)i)
			misses++;
	}
	t2 = now_s();
	assert_int_equal(misses, 0);
	assert_int_equal(t.count, n);

	bytes = route_table_bytes(&t);
	print_message(
		"route table: 1M inserts %.3f s, 1M lookups %.3f s, %zu bytes (%.1f per key)\n",
		t1 - t0, t2 - t1, bytes, (double)bytes / (double)n);
	assert_true(bytes >= (size_t)(t.mask + 1) * sizeof(struct route_slot));
	assert_true(bytes / t.count <= 64);

	/* Keys of the same range never put are absent. */
	for (size_t i = n; i < n + 100000; i++)
		if (route_table_get(&t, nth_key(i, UINT64_C(0x5eed))) != NULL)
			fail_msg("key #%zu never put but found", i);

	/* Delete every other key. */
	for (size_t i = 0; i < n; i += 2)
		if (!route_table_del(&t, keys[i]))
			fail_msg("del #%zu failed", i);
	assert_int_equal(t.count, n / 2);
	for (size_t i = 0; i < n; i++) {
		const struct route_slot *s = route_table_get(&t, keys[i]);

		if (i % 2 == 0) {
			if (s != NULL)
				fail_msg("deleted key #%zu still found", i);
		} else if (s == NULL || s->number_id != i + 1) {
			fail_msg("kept key #%zu not found", i);
		}
	}
	route_table_free(&t);

	/* Sized up front, as a full reload does: no growth on the way. */
	assert_true(route_table_init(&t, n));
	{
		uint32_t mask = t.mask;

		t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			struct route_slot s = { .key = keys[i], .number_id = i + 1 };

			if (!route_table_put(&t, &s))
				fail_msg("put #%zu failed", i);
		}
		t1 = now_s();
		assert_int_equal(t.mask, mask);
	}
	bytes = route_table_bytes(&t);
	print_message("route table: 1M inserts into a presized table %.3f s, %.1f bytes per key\n",
		t1 - t0, (double)bytes / (double)n);
	assert_true(bytes / t.count <= 64);
	route_table_free(&t);
	free(keys);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_put_get_replace_del),
		cmocka_unit_test(test_extreme_keys),
		cmocka_unit_test(test_delete_clusters),
		cmocka_unit_test(test_delete_wrap_around),
		cmocka_unit_test(test_random_model),
		cmocka_unit_test(test_init_sizing),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_copy_independent),
		cmocka_unit_test(test_share),
		cmocka_unit_test(test_million),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
