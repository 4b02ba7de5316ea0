/* replwait.h: replication-aware checkpoints: drained batches wait for the standbys (db thread). */
#ifndef CALLROUTED_REPLWAIT_H
#define CALLROUTED_REPLWAIT_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "stats.h"

struct config;

/*
 * The drain commits a batch on the primary; with an asynchronous standby that commit is lost
 * at a failover until the standby has the WAL.  So a committed batch is not checkpointed (its
 * journal records are kept) until every standby the primary knows has flushed past the
 * batch's commit LSN: pg_stat_replication's flush_lsn of each physical standby, and the
 * restart_lsn of each physical replication slot no standby is using (a standby that is away
 * but configured).  No standby: the checkpoint follows the commit.  A batch that waits longer
 * than replication_wait_timeout is checkpointed anyway (logged, counted).  After the
 * connection is lost (a failover) the drain rewinds to the last checkpoint, i.e. the last
 * replicated batch, and drains the rest again on the new primary (the ledger's unique key
 * folds the repeats).  replication_wait = off: checkpoint at commit.
 */

/* wake: asks the connection's owner for a pump (the poll timer fired). */
bool replwait_setup(const struct config *cfg, void (*wake)(void))
	__attribute__((warn_unused_result));
void replwait_cleanup(void);

/* Everything up to journal record seq (records of them since the last call) is committed on
 * the server of the drain's connection: checkpoint it, or queue it for the standbys. */
void replwait_committed(uint64_t seq, uint64_t records);
/* So many batches wait that the drain must not start another. */
bool replwait_full(void);
/* The pump should send replwait_sql() now (a batch committed, or the poll is due). */
bool replwait_due(void);
extern const char replwait_sql[];
/* The query's result and end (on the drain's connection). */
void replwait_result(const PGresult *r);
void replwait_done(bool ok);
/* The connection was lost: what waited is forgotten (the caller rewinds the journal). */
void replwait_reset(void);

/* callrouted_ledger_replication_* figures, through add. */
void replwait_stats(stat_fn add, void *ctx);

#endif
