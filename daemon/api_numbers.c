/* api_numbers.c: GET /v1/numbers' page written as JSON straight from its query's result. */
#include <stdio.h>
#include <string.h>

#include "callrouted/text.h"
#include "api_numbers.h"

/* A JSON string as jansson's json_dumps writes it (no ASCII-only, no escaped '/'). */
static int
num_str(struct evbuffer *out, const char *s)
{
	const char *run = s;
	int rc = evbuffer_add(out, "\"", 1);

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[6];
		size_t n = text_json_escape_byte(c, e);

		if (n == 0)
			continue;
		rc |= evbuffer_add(out, run, (size_t)(s - run));
		rc |= evbuffer_add(out, e, n);
		run = s + 1;
	}
	rc |= evbuffer_add(out, run, (size_t)(s - run));
	rc |= evbuffer_add(out, "\"", 1);
	return rc;
}

/* "key": then a column as a string, or null. */
static int
num_col(struct evbuffer *out, const char *key, PGresult *res, int row, int c)
{
	int rc = evbuffer_add(out, key, strlen(key));

	if (PQgetisnull(res, row, c))
		return rc | evbuffer_add(out, "null", 4);
	return rc | num_str(out, PQgetvalue(res, row, c));
}

/* "key": then a bigint column as a number (the server's text of it: canonical), or null. */
static int
num_int(struct evbuffer *out, const char *key, PGresult *res, int row, int c)
{
	int rc = evbuffer_add(out, key, strlen(key));

	if (PQgetisnull(res, row, c))
		return rc | evbuffer_add(out, "null", 4);
	return rc | evbuffer_add(out, PQgetvalue(res, row, c), (size_t)PQgetlength(res, row, c));
}

/*
 * "key": then a time column: to_char's "2026-12-02T04:34:26.129Z" as is, or a UTC timestamp's
 * text in DateStyle ISO, "2026-12-02 04:34:26.129" (1 to 6 fraction digits, or none), written
 * the same way (milliseconds truncated, as to_char's MS); anything else as a string.
 */
static int
num_time(struct evbuffer *out, const char *key, PGresult *res, int row, int c)
{
	const char *v;
	char iso[32];
	size_t n, f = 0;
	int rc;

	if (PQgetisnull(res, row, c))
		return num_col(out, key, res, row, c);
	v = PQgetvalue(res, row, c);
	n = strlen(v);
	if (n < 19 || v[10] != ' ' || v[4] != '-' || v[13] != ':' ||
		strspn(v, "0123456789-: .") != n)
		return num_col(out, key, res, row, c);
	memcpy(iso, v, 19);
	iso[10] = 'T';
	iso[19] = '.';
	if (v[19] == '.')
		for (; f < 3 && v[20 + f] >= '0' && v[20 + f] <= '9'; f++)
			iso[20 + f] = v[20 + f];
	for (; f < 3; f++)
		iso[20 + f] = '0';
	memcpy(iso + 23, "Z\"", 3);
	rc = evbuffer_add(out, key, strlen(key));
	rc |= evbuffer_add(out, "\"", 1);
	return rc | evbuffer_add(out, iso, 25);
}

/* "key": {"id":..,"name":..} of columns c and c + 1, or null without an id. */
static int
num_ref(struct evbuffer *out, const char *key, PGresult *res, int row, int c)
{
	int rc;

	if (PQgetisnull(res, row, c)) {
		rc = evbuffer_add(out, key, strlen(key));
		return rc | evbuffer_add(out, "null", 4);
	}
	rc = evbuffer_add(out, key, strlen(key));
	rc |= num_int(out, "{\"id\":", res, row, c);
	rc |= num_col(out, ",\"name\":", res, row, c + 1);
	return rc | evbuffer_add(out, "}", 1);
}

bool
api_numbers_page_json(PGresult *res, long limit, struct evbuffer *out)
{
	int n = PQntuples(res), rc = evbuffer_add(out, "{\"numbers\":[", 12);

	for (int i = 0; i < n; i++) {
		rc |= num_int(out, i ? ",{\"id\":" : "{\"id\":", res, i, 0);
		rc |= num_col(out, ",\"e164\":", res, i, 1);
		rc |= num_col(out, ",\"provider\":", res, i, 2);
		rc |= num_col(out, ",\"account\":", res, i, 3);
		rc |= num_col(out, ",\"nickname\":", res, i, 4);
		rc |= num_ref(out, ",\"agent\":", res, i, 5);
		rc |= num_ref(out, ",\"client\":", res, i, 7);
		rc |= num_col(out, ",\"status\":", res, i, 9);
		rc |= num_time(out, ",\"created_at\":", res, i, 10);
		rc |= num_time(out, ",\"released_at\":", res, i, 11);
		/* migration 007's note wins over the unbound release's, as in api_number_json */
		if (!PQgetisnull(res, i, 13))
			rc |= num_col(out, ",\"provider_note\":", res, i, 13);
		else if (!PQgetisnull(res, i, 12) && strcmp(PQgetvalue(res, i, 12), "f") == 0)
			rc |= evbuffer_add_printf(out, ",\"provider_note\":\"%s\"",
				      API_NUMBER_UNBOUND_NOTE) < 0;
		rc |= evbuffer_add(out, "}", 1);
	}
	if (n == limit && n > 0)
		rc |= num_int(out, "],\"next_after\":", res, n - 1, 0);
	else
		rc |= evbuffer_add(out, "],\"next_after\":null", 19);
	rc |= evbuffer_add(out, "}", 1);
	return rc == 0;
}
