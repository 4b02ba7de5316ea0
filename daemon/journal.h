/* journal.h: the durable local journal of call events: append with group commit, replay, drain. */
#ifndef CALLROUTED_JOURNAL_H
#define CALLROUTED_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "stats.h"

#define JOURNAL_MAX_RECORD (64 * 1024)

/*
 * Records: u32 length, u32 CRC-32C over (seq, payload), u64 seq, payload.  Segments
 * state_dir/journal/<first seq, 16 hex digits>.jnl, never appended to after a restart or a
 * write error (a new segment starts).  A writer thread owns the file: it takes every append
 * queued since its last pass, writes them with one write(), fdatasync()s once (group commit)
 * and then completes each append on the thread that asked, through that thread's waiter.
 */

/* A thread that appends (a worker) owns one waiter: completions come back on its base. */
struct journal_waiter;
typedef void (*journal_done_fn)(void *arg, bool durable);

struct journal_waiter *journal_waiter_new(struct event_base *base, journal_done_fn done);
void journal_waiter_free(struct journal_waiter *w);

/* Open (creating) the journal in dir, replay it: index every valid record of every segment
 * (a damaged record is skipped by itself, the scan resynchronises after lost framing), read
 * the checkpoint (one that cannot be trusted means "drain from the oldest segment"); a
 * damaged segment is moved to state_dir/journal/quarantine/ once its intact records are
 * drained (at once if it has none), never deleted.  Before any thread starts. */
bool journal_setup(const char *state_dir) __attribute__((warn_unused_result));
bool journal_start(void) __attribute__((warn_unused_result));
/* Complete every queued append, then stop the writer thread (the reader side stays). */
void journal_stop(void);
/* Free everything, the reader side too: after the reader (the db thread) has stopped. */
void journal_cleanup(void);

/* Queue payload for appending; done(arg, durable) runs later on w's base.  False (nothing
 * queued) if the record is too large or the journal is stopped. */
bool journal_append(struct journal_waiter *w, const void *payload, size_t len, void *arg)
	__attribute__((warn_unused_result));

/* Nothing queued and no group being written (for a graceful stop). */
bool journal_idle(void);

/* ---- the drain side (one reader thread, the db thread) ---- */

/* Called (from the writer thread) after records become durable; set by the reader. */
void journal_set_durable_hook(void (*hook)(void *), void *arg);

typedef bool (*journal_record_fn)(uint64_t seq, const void *payload, size_t len, void *arg);
/* Read up to max durable records after the last one read (starting at the checkpoint), in
 * sequence order: the replayed ones (each once, only those the replay found valid), then
 * those written since; cb returns false to stop early (that record is read again next
 * time).  Returns count. */
size_t journal_read(size_t max, journal_record_fn cb, void *arg);
/* Rewind reading to just after the checkpoint (after a failed batch). */
void journal_rewind(void);
/* Everything up to seq (records of them read since the last checkpoint) is in PostgreSQL:
 * remember it (written durably, checksummed: blocking file I/O, on the db thread), recycle
 * whole segments below it (damaged ones go to quarantine/). */
void journal_checkpoint(uint64_t seq, uint64_t records);

struct journal_stats {
	uint64_t durable_seq, checkpoint_seq;
	uint64_t pending; /* durable, not yet checkpointed */
	uint64_t bytes_on_disk;
	uint64_t appends, append_failures, fsyncs, torn_records;
	uint64_t corrupt_records;      /* lost to damage (replay, or a read that failed later) */
	uint64_t quarantined_segments; /* found damaged: moved to quarantine/ (once drained) */
	uint64_t quarantine_failures;  /* moves to quarantine/ that failed (retried) */
	uint64_t checkpoint_resets;    /* checkpoints unreadable or ahead: drained from the start */
	uint64_t checkpoint_failures;  /* checkpoint writes that failed */
	bool writable;                 /* false after a failed write until one succeeds */
};
void journal_get_stats(struct journal_stats *s);
/* The callrouted_journal_* figures, through add (scrape.c). */
void journal_stats(stat_fn add, void *ctx);

#endif
