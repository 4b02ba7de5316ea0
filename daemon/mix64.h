/* mix64.h: the splitmix64 finaliser, the hash of the daemon's tables' integer keys. */
#ifndef CALLROUTED_MIX64_H
#define CALLROUTED_MIX64_H

#include <stdint.h>

/* Every bit of k reaches every bit of the result: E.164 and id keys are dense in their low
 * digits, and the tables take the low bits. */
static inline uint64_t
mix64(uint64_t k)
{
	k ^= k >> 30;
	k *= 0xbf58476d1ce4e5b9ULL;
	k ^= k >> 27;
	k *= 0x94d049bb133111ebULL;
	k ^= k >> 31;
	return k;
}

#endif
