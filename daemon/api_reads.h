/* api_reads.h: the admin API's reads (agents, accounts, clients, calls, usage): params, SQL. */
/* api.c authenticates, runs the read's one query and sends its answer. */
#ifndef CALLROUTED_API_READS_H
#define CALLROUTED_API_READS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#define API_READ_MAX_VALUES 10
#define API_READ_MAX_PARAMS (4 + API_READ_MAX_VALUES)

struct api_read; /* one endpoint: api_read_agents, ... */

/* One request's arguments: who asks, the path's {id}, the query parameters. */
struct api_read_args {
	uint64_t agency_id;
	uint64_t client_id; /* a portal token's client; 0: an agency token */
	uint64_t id;        /* the path's {id}; 0: none */
	long limit;
	uint64_t after;
	char *value[API_READ_MAX_VALUES]; /* the read's parameters, in its table's order */
	char num[4][24];                  /* the formatted SQL parameters $1 to $4 */
	char sql[3072];                   /* a read whose SQL depends on its parameters */
};

void api_read_args_init(struct api_read_args *a);
void api_read_args_clear(struct api_read_args *a);

/* One query parameter; false with a message naming it in err (400 invalid). */
bool api_read_param(const struct api_read *rd, struct api_read_args *a, const char *key,
	const char *value, char *err, size_t errlen);

/* The SQL and its parameters (NULL: SQL NULL), pointers into a; returns their number. */
int api_read_query(const struct api_read *rd, struct api_read_args *a, const char **sql,
	const char *params[API_READ_MAX_PARAMS]);

/* The 200 answer, or NULL with *not_found (the 404 message) when a show found no row. */
json_t *api_read_answer(const struct api_read *rd, const struct api_read_args *a, PGresult *res,
	const char **not_found);

extern const struct api_read api_read_agents;
extern const struct api_read api_read_accounts;
extern const struct api_read api_read_clients;
extern const struct api_read api_read_calls;
extern const struct api_read api_read_call;
extern const struct api_read api_read_usage;

#endif
