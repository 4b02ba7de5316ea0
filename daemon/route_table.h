/* route_table.h: the number table (E.164 key -> route slot): open addressing, linear probing. */
#ifndef CALLROUTED_ROUTE_TABLE_H
#define CALLROUTED_ROUTE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the number table: open addressing, linear probing, backward-shift deletion ---- */

#define ROUTE_NONE UINT32_MAX           /* agent_idx: number active but unassigned */
#define ROUTE_RELEASED (UINT32_MAX - 1) /* agent_idx: number released, no active row */

struct route_slot {
	uint64_t key;         /* E.164 key (e164.h); 0 = empty slot */
	uint64_t number_id;   /* phone_numbers.id */
	uint32_t agent_idx;   /* index into the catalog's agents, or ROUTE_NONE / ROUTE_RELEASED */
	uint32_t account_idx; /* index into the catalog's accounts */
};

struct route_table {
	struct route_slot *slots;
	uint32_t mask; /* capacity - 1; capacity is a power of two */
	uint32_t count;
	_Atomic unsigned *refs; /* tables sharing slots (route_table_share); NULL: none */
};

/* Sized for n entries at a load factor of at most 3/4. */
bool route_table_init(struct route_table *t, size_t n) __attribute__((warn_unused_result));
/* dst: a table of its own with src's entries (to be changed). */
bool route_table_copy(struct route_table *dst, const struct route_table *src)
	__attribute__((warn_unused_result));
/* dst: src's slots themselves, counted (a snapshot with new policies and the same numbers costs
 * no copy of millions of slots).  A shared table is read-only: put and del refuse it. */
void route_table_share(struct route_table *dst, const struct route_table *src);
/* The last of the tables sharing slots frees them; any thread. */
void route_table_free(struct route_table *t);
/* Insert or replace; doubles when above 0.85 full.  key must not be 0. */
bool route_table_put(struct route_table *t, const struct route_slot *s)
	__attribute__((warn_unused_result));
const struct route_slot *route_table_get(const struct route_table *t, uint64_t key);
bool route_table_del(struct route_table *t, uint64_t key);
size_t route_table_bytes(const struct route_table *t);
/* Bulk insert of n slots (prefetching their homes first): for loads of many rows. */
bool route_table_put_many(struct route_table *t, const struct route_slot *s, size_t n)
	__attribute__((warn_unused_result));

#endif
