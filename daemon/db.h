/* db.h: the database thread: libpq connections driven asynchronously on its own event_base. */
#ifndef CALLROUTED_DB_H
#define CALLROUTED_DB_H

#include <stdarg.h>
#include <stdbool.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "stats.h"

struct config;

/* Called on the db thread when the process must stop (e.g. the schema does not match). */
typedef void (*db_fatal_fn)(int exit_code);

bool db_setup(const struct config *cfg, db_fatal_fn fatal) __attribute__((warn_unused_result));
bool db_start(void) __attribute__((warn_unused_result)); /* starts the thread */
void db_stop(void);                                      /* stops and joins the thread */
/* Frees the connections and the loop: after db_stop and after each owner's cleanup (their
 * events live on db_base()). */
void db_free(void);

/* Any thread. */
unsigned long db_reconnects(void);
/* Connections dropped because they found a read-only server where they need a primary. */
unsigned long db_read_only_drops(void);
/* callrouted_db_reconnects_total, through add (scrape.c). */
void db_stats(stat_fn add, void *ctx);

/*
 * ---- for the connection owners, on the db thread only ----
 * db.c knows no owner: after db_setup each owner takes its connections (db_conn_new) and
 * puts its events on db_base(); db_start connects them in that order.  What an owner's
 * state means (e.g. "the database is up") the owner says.
 */

struct db_conn;

/* What a connection's owner is told; every callback runs on the db thread. */
struct db_conn_ops {
	const char *name;
	void (*connected)(struct db_conn *c);
	void (*disconnected)(struct db_conn *c);
	void (*notify)(struct db_conn *c, const char *channel, const char *payload);
	void (*result)(struct db_conn *c,
		PGresult *r);                     /* each result of the query; caller clears */
	void (*done)(struct db_conn *c, bool ok); /* the query finished (ok: no error result) */
	/* A statement of the query is a COPY ... TO STDOUT: result() gets its PGRES_COPY_OUT
	 * result, then this each CopyData message (one row; buf is libpq's, valid during the
	 * call) as it arrives, between turns of the loop, then result() the COPY's own result.
	 * NULL: the data is read and dropped. */
	void (*copy_data)(struct db_conn *c, const char *buf, int len);
	void (*pump)(struct db_conn *c); /* idle: send the next piece of work */
	/* The owner writes (or LISTENs): a connection that lands on a read-only server (a hot
	 * standby: in_hot_standby on, or a query refused with SQLSTATE 25006) is dropped and
	 * made again, so a multi-host database_url finds the primary after a failover. */
	bool needs_primary;
};

struct event_base *db_base(void);
struct db_conn *db_conn_new(const struct db_conn_ops *ops);
/* A connection driven by another thread's loop (the admin API's); call db_conn_start from
 * that thread, and db_conn_release once it has stopped. */
struct db_conn *db_conn_new_on(struct event_base *base, const struct db_conn_ops *ops);
void db_conn_start(struct db_conn *c);
/* Connect this connection to conninfo instead of database_url (before it starts; copied). */
bool db_conn_set_conninfo(struct db_conn *c, const char *conninfo)
	__attribute__((warn_unused_result));
/* The server of this connection is a hot standby (in_hot_standby on; false if unknown). */
bool db_conn_on_standby(const struct db_conn *c);
/* Free a connection of another thread's loop (that thread has stopped). */
void db_conn_release(struct db_conn *c);
/* Send a query (several statements, or one with text params) on the idle connection;
 * results come to ops->result() then ops->done().  False if not idle or it failed. */
bool db_send(struct db_conn *c, const char *sql, int nparams, const char *const *params);
bool db_idle(const struct db_conn *c);
/* db_send of a statement prepared on this connection (PREPARE name AS ...: the owner's). */
bool db_send_prepared(struct db_conn *c, const char *stmt, int nparams, const char *const *params);
/* Read what has arrived on c now, as its socket's callback would (its owner's callbacks run from
 * here): e.g. notifications a request must not overtake. */
void db_conn_poll(struct db_conn *c);
/* db_send's text parameters, in an array of the caller's: each appends p[*n] and counts it in
 * *n (the caller keeps *n below the array's size).  db_param: a printf-formatted value (NULL,
 * SQL NULL, when it cannot be made: the query fails cleanly); db_param_str: NULL or a copy of
 * s; db_params_free frees them and sets *n to 0. */
void db_param(char **p, int *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void db_param_v(char **p, int *n, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
void db_param_str(char **p, int *n, const char *s);
void db_params_free(char **p, int *n);
bool db_conn_up(const struct db_conn *c);
/* SQLSTATE of the last error result of the connection's last query ("" if none). */
const char *db_sqlstate(const struct db_conn *c);
/* Its primary message (the server's text: escape it before logging; "" if none). */
const char *db_error_message(const struct db_conn *c);
/* Drop the connection; it reconnects after reconnect_interval. */
void db_disconnect(struct db_conn *c, const char *why);
/* Ask for a pump on the next loop pass (from the db thread or, with care, any thread). */
void db_wake(struct db_conn *c);
/* Stop the process with this exit code (logged by the caller). */
void db_fatal(int code);
/* The schema version was checked on this process's first connection and matches. */
void db_set_schema_ok(bool ok);
bool db_schema_ok(void);

#endif
