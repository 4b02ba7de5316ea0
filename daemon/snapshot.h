/* snapshot.h: the last good route snapshot on disk (state_dir/routes.snapshot). */
#ifndef CALLROUTED_SNAPSHOT_H
#define CALLROUTED_SNAPSHOT_H

#include <stdbool.h>

#include "routes.h"

#define SNAPSHOT_FILE "routes.snapshot"

/* Start the writer thread that saves snapshots into dir (created if missing). */
bool snapshot_setup(const char *dir) __attribute__((warn_unused_result));
/* Serialise s now (on the caller's thread) and hand the bytes to the writer thread, which
 * writes, fsyncs and renames; a newer save replaces one not yet written. */
void snapshot_save(const struct routes_snapshot *s);
/* Wait for pending writes and stop the writer thread. */
void snapshot_cleanup(void);
/* Load dir's snapshot file, fully validated; NULL (logged) if absent or invalid. */
struct routes_snapshot *snapshot_load(const char *dir);
/* Serialise / parse in memory (used by the above and by tests and fuzzers). */
bool snapshot_encode(const struct routes_snapshot *s, unsigned char **buf, size_t *len);
struct routes_snapshot *snapshot_decode(const unsigned char *buf, size_t len, const char **why);
/* The same; *policy_why: why the file brought no policies although it could have (a file of
 * the version before them, or a refused policy section: the numbers are returned), else NULL. */
struct routes_snapshot *snapshot_decode_policy(const unsigned char *buf, size_t len,
	const char **why, const char **policy_why);
/* The same policies with their zones' offsets read again for a window centred on now_s (the
 * daily rebuild while PostgreSQL is out of reach); NULL on failure. */
struct route_policy *snapshot_policy_rebuild(const struct route_policy *p, int64_t now_s);

#endif
