/* json_arena.c: jansson's allocator: a per-thread bump arena during a webhook request. */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "json_arena.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A routing body (a few hundred bytes) needs a few KiB of nodes; a call event with a long
 * transcript may not fit, and its overflow goes to malloc. */
#define ARENA_SIZE (128 * 1024)
#define ARENA_ALIGN 16

struct json_arena {
	char *base; /* ARENA_SIZE bytes, kept for the thread's life (or NULL) */
	size_t used;
	bool active;
	bool spilled; /* some allocation since begin went to malloc */
};

static _Thread_local struct json_arena arena;
/* Frees a thread's arena when the thread exits. */
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static bool arena_key_ok;

static void
arena_key_create(void)
{
	arena_key_ok = pthread_key_create(&arena_key, free) == 0;
}

static void *
arena_malloc(size_t n)
{
	struct json_arena *a = &arena;

	if (a->active) {
		/* never 0 bytes: each pointer handed out lies inside the arena, none at its end */
		size_t need = ((n ? n : 1) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

		if (need >= n && need <= ARENA_SIZE - a->used) {
			void *p = a->base + a->used;

			a->used += need;
			ARENA_UNPOISON(p, n);
			return p;
		}
		a->spilled = true;
	}
	return malloc(n);
}

static bool
arena_owns(const void *p)
{
	const struct json_arena *a = &arena;

	/* compared as integers: p need not point into the arena */
	return a->base != NULL && (uintptr_t)p >= (uintptr_t)a->base &&
	       (uintptr_t)p < (uintptr_t)a->base + ARENA_SIZE;
}

static void
arena_free(void *p)
{
	/* arena memory is given back all at once by json_arena_end */
	if (!arena_owns(p))
		free(p);
}

/* Before main, so before any thread or any jansson value exists. */
__attribute__((constructor)) static void
json_arena_install(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
}

bool
json_arena_begin(void)
{
	struct json_arena *a = &arena;

	if (!a->base) {
		char *base;

		pthread_once(&arena_once, arena_key_create);
		if (!arena_key_ok || !(base = malloc(ARENA_SIZE)))
			return false;
		if (pthread_setspecific(arena_key, base) != 0) {
			free(base);
			return false;
		}
		ARENA_POISON(base, ARENA_SIZE);
		a->base = base;
	}
	a->used = 0;
	a->spilled = false;
	a->active = true;
	return true;
}

bool
json_arena_all_inside(void)
{
	return arena.active && !arena.spilled;
}

void
json_arena_end(void)
{
	struct json_arena *a = &arena;

	if (!a->active)
		return;
	ARENA_POISON(a->base, a->used);
	a->used = 0;
	a->active = false;
	a->spilled = false;
}
