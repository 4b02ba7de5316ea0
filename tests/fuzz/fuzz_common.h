/* fuzz_common.h: what the fuzz targets share: quiet start-up, a route snapshot, a config. */
#ifndef CALLROUTED_FUZZ_COMMON_H
#define CALLROUTED_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "callrouted/config.h"
#include "routes.h"

/* libFuzzer's entry points (it declares none in a header). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Silence the daemon's log (CALLROUTED_FUZZ_LOG=1 keeps it), ignore SIGPIPE, stdin from
 * /dev/null. */
void fuzz_setup(void);

/* Stop the run with a message: a broken property is a crash for libFuzzer. */
void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/*
 * One catalog, one snapshot per provider.  Accounts: "acme-retell" (api_key "test-api-key"),
 * "acme-vapi" (hmac, "vapi-test-secret"), "acme-vapi-bearer" (bearer, "vapi-bearer-secret"),
 * "acme" (Bland, "bland-test-secret").  In the snapshot of provider p, the fixtures' numbers
 * belong to p's account: +14155559876 and +14155550199 assigned to p's agent (agent_abc123,
 * asst_5c2b, the Bland pathway), +14155550188 unassigned, +14155550123 released, and
 * +14155550100 belongs to another provider's account.
 */
const struct routes_snapshot *fuzz_snapshot(enum provider_id p);
const struct route_account *fuzz_account(enum provider_id p, bool bearer);
const struct config *fuzz_config(void);

/* A NUL-terminated heap copy of n bytes (ASan sees reads past it). */
char *fuzz_strndup(const uint8_t *p, size_t n);

/* Split data at the first byte sep: *field (len *flen) before it, the rest after it. */
bool fuzz_take(const uint8_t **data, size_t *size, uint8_t sep, const uint8_t **field,
	size_t *flen);

#endif
