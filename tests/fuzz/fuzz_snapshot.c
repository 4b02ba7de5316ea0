/* fuzz_snapshot.c: libFuzzer target for snapshot_decode (the route snapshot file). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "fuzz_common.h"
#include "snapshot.h"

/*
 * Input: one flags byte, then the file.  Bit 0: replace the file's trailing SHA-256 with the
 * right one (else almost every mutation stops at "checksum mismatch").
 * CALLROUTED_FUZZ_WRITE_SEED=FILE writes a seed (flags 1 + the snapshot of fuzz_common.c for
 * Retell) to FILE and exits: how tests/fuzz/corpus/fuzz_snapshot/ was made.
 */

static void
fz_write_seed(const char *path)
{
	unsigned char *buf, flags = 1;
	size_t len;
	FILE *f;

	if (!snapshot_encode(fuzz_snapshot(PROVIDER_RETELL), &buf, &len))
		abort();
	f = fopen(path, "we");
	if (!f || fwrite(&flags, 1, 1, f) != 1 || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		abort();
	free(buf);
	exit(0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seed = getenv("CALLROUTED_FUZZ_WRITE_SEED");

	fuzz_setup();
	if (seed)
		fz_write_seed(seed);
	return 0;
}

/* Everything a decoded snapshot says can be looked up, and survives encoding again. */
static void
fz_check(const struct routes_snapshot *s)
{
	const struct routes_catalog *c = s->catalog;
	struct routes_snapshot *again;
	unsigned char *buf;
	const char *why;
	size_t len;

	for (uint32_t i = 0; i < c->n_accounts; i++) {
		const struct route_account *a = &c->accounts[i], *b;

		b = routes_catalog_account(c, a->slug, strlen(a->slug));
		if (b != a)
			fuzz_fail("account \"%s\" not found by its slug", a->slug);
		if (routes_catalog_account_idx(c, a->id) != i)
			fuzz_fail("account %llu not found by its id", (unsigned long long)a->id);
	}
	for (uint32_t i = 0; i < c->n_agents; i++) {
		const struct route_agent *a = &c->agents[i], *b;

		b = routes_catalog_agent_by_pid(c, a->provider, a->provider_agent_id);
		if (!b || b->provider != a->provider ||
			strcmp(b->provider_agent_id, a->provider_agent_id) != 0)
			fuzz_fail("agent \"%s\" not found by its provider id",
				a->provider_agent_id);
		if (routes_catalog_agent_idx(c, a->id) != i)
			fuzz_fail("agent %llu not found by its id", (unsigned long long)a->id);
	}
	for (size_t i = 0; s->numbers.slots && i <= s->numbers.mask; i++) {
		const struct route_slot *sl = &s->numbers.slots[i];
		struct route_answer ans;

		if (!sl->key)
			continue;
		if (route_table_get(&s->numbers, sl->key) != sl || routes_number(s, sl->key) != sl)
			fuzz_fail("number %llu not found", (unsigned long long)sl->key);
		routes_lookup(s, &c->accounts[sl->account_idx], sl->key, &ans);
		if (ans.result == ROUTE_HIT &&
			(!ans.agent || ans.agent != &c->agents[sl->agent_idx]))
			fuzz_fail("number %llu: a hit on the wrong agent",
				(unsigned long long)sl->key);
	}
	if (!snapshot_encode(s, &buf, &len))
		fuzz_fail("a decoded snapshot does not encode");
	again = snapshot_decode(buf, len, &why);
	if (!again)
		fuzz_fail("a re-encoded snapshot does not decode: %s", why);
	if (again->numbers.count != s->numbers.count ||
		again->catalog->n_accounts != c->n_accounts ||
		again->catalog->n_agents != c->n_agents ||
		again->catalog->n_agencies != c->n_agencies || again->generation != s->generation)
		fuzz_fail("the round trip changed the counts");
	for (size_t i = 0; s->numbers.slots && i <= s->numbers.mask; i++) {
		const struct route_slot *a = &s->numbers.slots[i], *b;

		if (!a->key)
			continue;
		b = route_table_get(&again->numbers, a->key);
		if (!b || memcmp(a, b, sizeof(*a)) != 0)
			fuzz_fail("the round trip changed number %llu", (unsigned long long)a->key);
	}
	routes_snapshot_free(again);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct routes_snapshot *s;
	const char *why = NULL;
	unsigned char *buf;

	if (size == 0)
		return 0;
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		abort();
	memcpy(buf, data + 1, size - 1);
	if ((data[0] & 1) && size - 1 >= SHA256_DIGEST_LENGTH)
		SHA256(buf, size - 1 - SHA256_DIGEST_LENGTH, buf + size - 1 - SHA256_DIGEST_LENGTH);
	s = snapshot_decode(buf, size - 1, &why);
	if (s) {
		fz_check(s);
		routes_snapshot_free(s);
	} else if (!why) {
		fuzz_fail("refused without a reason");
	}
	free(buf);
	return 0;
}
