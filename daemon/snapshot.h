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

#endif
