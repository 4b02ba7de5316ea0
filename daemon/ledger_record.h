/* ledger_record.h: the journal record as text: written without a tree, read into columns. */
#ifndef CALLROUTED_LEDGER_RECORD_H
#define CALLROUTED_LEDGER_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A record is one compact JSON object of the keys below (ledger.c writes them, in this order;
 * "q" is not in the record: it is the journal sequence number).  The drain sends each column
 * of a batch as one PostgreSQL text[] literal, so one prepared statement serves every batch
 * size.
 */
#define LEDGER_COLS 24
#define LEDGER_COL_Q (LEDGER_COLS - 1)
extern const char *const ledger_col_keys[LEDGER_COLS];

/* ---- writing: into the caller's buffer; len counts what did not fit too ---- */

struct lrec_out {
	char *p;
	size_t cap, len; /* len > cap: the record needs len bytes */
};

void lrec_begin(struct lrec_out *o, char *buf, size_t cap);
/* A string (JSON-escaped as jansson dumps it); null if v is NULL or not valid UTF-8. */
void lrec_str(struct lrec_out *o, const char *key, const char *v);
/* The first n bytes of v (n bytes of valid UTF-8, else null). */
void lrec_strn(struct lrec_out *o, const char *key, const char *v, size_t n);
void lrec_int(struct lrec_out *o, const char *key, int64_t v);
/* v, or null when negative (unknown). */
void lrec_i64(struct lrec_out *o, const char *key, int64_t v);
void lrec_bool(struct lrec_out *o, const char *key, bool v);
/* Closes the object: the record's length (more than cap: it did not fit). */
size_t lrec_end(struct lrec_out *o);

/* ---- reading: a batch of records as LEDGER_COLS text[] literals ---- */

struct lrec_col {
	char *p;
	size_t len, cap;
};

struct lrec_cols {
	struct lrec_col col[LEDGER_COLS];
	size_t n;    /* rows added since the last reset */
	bool failed; /* out of memory since the last reset */
	size_t slow; /* records read through jansson (not the compact subset), ever */
};

enum lrec_read {
	LREC_OK = 0,
	LREC_NOT_EVENT, /* not an object with string "p" and "id": nothing added */
	LREC_NOMEM,
};

void lrec_cols_reset(struct lrec_cols *c);
void lrec_cols_free(struct lrec_cols *c);
/*
 * Add the record as a row: each column's text is what the record's value reads as — a string
 * itself, an integer in decimal, true/false as t/f, anything else (null, absent, a real, an
 * array or object) NULL — and q is seq.  The compact subset the daemon writes is read
 * directly; anything else (escapes \u, non-ASCII, whitespace, repeated keys) through jansson,
 * with the same result.
 */
enum lrec_read lrec_cols_add(struct lrec_cols *c, uint64_t seq, const char *payload, size_t len);
/* Closes each column's literal (NUL-terminated in col[i].p); false if out of memory. */
bool lrec_cols_finish(struct lrec_cols *c);

#endif
