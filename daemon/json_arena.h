/* json_arena.h: a per-thread bump arena for jansson's allocations during one webhook request. */
#ifndef CALLROUTED_JSON_ARENA_H
#define CALLROUTED_JSON_ARENA_H

#include <stdbool.h>

/*
 * jansson's allocator is process-wide (json_set_alloc_funcs, installed once before main by
 * json_arena.c).  A thread that has begun an arena gets jansson's memory from it by bumping a
 * pointer; every other thread (and an arena that is full) gets malloc.  jansson's frees of
 * arena memory do nothing; the arena is emptied at once by json_arena_end.
 *
 * Rules: nothing jansson allocates between begin and end may be used after end, nor handed to
 * another thread (copy it); and no jansson pointer allocated then may be given to free().
 */

/* Start this thread's arena (allocated on first use); false if none could be had (then jansson
 * keeps using malloc, which is always correct). */
bool json_arena_begin(void);

/* True if every allocation since begin came from the arena (nothing to free: a caller may skip
 * json_decref of what it parsed). */
bool json_arena_all_inside(void);

/* Forget everything allocated since begin and stop using the arena on this thread. */
void json_arena_end(void);

#endif
