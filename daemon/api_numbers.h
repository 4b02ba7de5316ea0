/* api_numbers.h: GET /v1/numbers' page written as JSON straight from its query's result. */
#ifndef CALLROUTED_API_NUMBERS_H
#define CALLROUTED_API_NUMBERS_H

#include <stdbool.h>

#include <event2/buffer.h>
#include <libpq-fe.h>

/* The message of a number whose provider could not release it (provider_released false). */
#define API_NUMBER_UNBOUND_NOTE                                                                    \
	"the provider has no API to release this number: it was unbound there and must be "        \
	"released in the provider's dashboard"

/*
 * {"numbers":[number...],"next_after":id|null} of res, whose rows are api.c's SQL_NUMBER_COLS
 * (id, e164, provider, account slug, nickname, agent id, agent name, client id, client name,
 * status, created_at, released_at, provider_released, provider_note), into out: the bytes
 * api.c's api_number_json and json_dumps(JSON_COMPACT) make of it, without building the tree
 * (its allocations were most of the page's cost).  next_after: the last id when the page is
 * full (limit rows).  False when out of memory.
 */
bool api_numbers_page_json(PGresult *res, long limit, struct evbuffer *out);

#endif
