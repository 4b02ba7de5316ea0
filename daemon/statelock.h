/* statelock.h: one daemon per state directory (an exclusive flock on state_dir/lock). */
#ifndef CALLROUTED_STATELOCK_H
#define CALLROUTED_STATELOCK_H

#include <stdbool.h>

#define STATELOCK_FILE "lock"

/*
 * Take the lock of state_dir (created 0700 if missing): open state_dir/lock (0600, close on
 * exec), flock(LOCK_EX | LOCK_NB) it and write this process's pid into it.  Held until the
 * process exits (the kernel drops it with the descriptor, even after SIGKILL).  False, logged
 * with the holder's pid, when another process holds it.  Before the journal or the snapshot.
 */
bool statelock_take(const char *state_dir) __attribute__((warn_unused_result));
/* Close the lock file (at exit; the next daemon may start). */
void statelock_release(void);

#endif
