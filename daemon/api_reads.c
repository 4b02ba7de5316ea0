/* api_reads.c: the admin API's reads (agents, accounts, clients, calls, usage): params, SQL. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callrouted/admin_api.h"
#include "callrouted/text.h"
#include "api_reads.h"
#include "callrouted/rating.h"

/*
 * Every read is one query, scoped in SQL: $1 the token's agency, $2 a portal token's client
 * (NULL for an agency token), so another agency's rows are absent, not forbidden.  A portal
 * token sees its client's rows only, and only while the client's portal_agent_visibility is on:
 * the rule GET /v1/numbers applies.  Lists are ordered by id and paged as GET /v1/numbers is:
 * ?limit (1 to 500, default 50) and ?after (the previous page's next_after).  The parameters
 * that follow are each read's own (its table below), in order, NULL when absent.
 */

#define READ_LIST_DEFAULT 50
#define READ_LIST_MAX 500

#define SQL_TS(x) "to_char(" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

enum read_kind {
	RK_ID,    /* a positive integer */
	RK_ENUM,  /* one of values */
	RK_TEXT,  /* 1 to 64 printable characters */
	RK_PID,   /* a provider's id: 1 to 128 printable characters */
	RK_TIME,  /* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.fff]Z (UTC) */
	RK_DATE,  /* YYYY-MM-DD (UTC) */
	RK_GROUP, /* one of values; chooses the SQL, not one of its parameters */
	RK_LIMIT,
	RK_AFTER,
};

struct read_param {
	const char *name;
	enum read_kind kind;
	const char *const *values; /* RK_ENUM, RK_GROUP */
};

struct api_read {
	const struct read_param *params; /* ends with a NULL name */
	const char *list_key;            /* a list: its member; NULL: one object */
	const char *sql;                 /* NULL: build_sql */
	void (*build_sql)(struct api_read_args *a);
	json_t *(*row)(PGresult *res, int row);
	json_t *(*answer)(const struct api_read_args *a, PGresult *res); /* NULL: list or show */
	const char *not_found;                                           /* a show's 404 */
};

static const char *const read_providers[] = { "retell", "vapi", "bland", NULL };
static const char *const read_directions[] = { "inbound", "outbound", "unknown", NULL };
static const char *const read_call_status[] = { "in_progress", "ended", NULL };

/* ------------------------------------------------------------------------------------------ */
/* Parameters                                                                                  */

void
api_read_args_init(struct api_read_args *a)
{
	memset(a, 0, sizeof(*a));
	a->limit = READ_LIST_DEFAULT;
}

void
api_read_args_clear(struct api_read_args *a)
{
	for (int i = 0; i < API_READ_MAX_VALUES; i++) {
		free(a->value[i]);
		a->value[i] = NULL;
	}
}

static bool
read_digits(const char *s, int n, int lo, int hi, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return v >= lo && v <= hi;
}

/* YYYY-MM-DD, a day that exists, at s; the length read (10) or 0. */
static size_t
read_date(const char *s)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d;

	if (strlen(s) < 10 || s[4] != '-' || s[7] != '-' || !read_digits(s, 4, 1970, 9999, &y) ||
		!read_digits(s + 5, 2, 1, 12, &m) || !read_digits(s + 8, 2, 1, mdays[m - 1], &d))
		return 0;
	if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return 0;
	return 10;
}

/* YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS, an optional fraction (1 to 6 digits), then Z. */
static bool
read_time(const char *s)
{
	const char *t;
	int v;

	if (!read_date(s))
		return false;
	if (s[10] == '\0')
		return true;
	t = s + 10;
	if (*t != 'T' || strlen(t) < 10 || !read_digits(t + 1, 2, 0, 23, &v) || t[3] != ':' ||
		!read_digits(t + 4, 2, 0, 59, &v) || t[6] != ':' ||
		!read_digits(t + 7, 2, 0, 59, &v))
		return false;
	t += 9;
	if (*t == '.') {
		size_t n = strspn(t + 1, "0123456789");

		if (n < 1 || n > 6)
			return false;
		t += 1 + n;
	}
	return strcmp(t, "Z") == 0;
}

static bool
read_in(const char *const *values, const char *v)
{
	for (; *values; values++)
		if (strcmp(*values, v) == 0)
			return true;
	return false;
}

static void
read_join(const char *const *values, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (; *values && n < len; values++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ", " : "", *values);
}

/* What a parameter takes, for the 400's message. */
static void
read_want(const struct read_param *p, char *out, size_t len)
{
	char vals[160];

	switch (p->kind) {
	case RK_ID:
		snprintf(out, len, "an id (a positive integer)");
		return;
	case RK_ENUM:
	case RK_GROUP:
		read_join(p->values, vals, sizeof(vals));
		snprintf(out, len, "one of %s", vals);
		return;
	case RK_TEXT:
		snprintf(out, len, "1 to 64 printable characters");
		return;
	case RK_PID:
		snprintf(out, len, "the provider's call id, 1 to 128 printable characters");
		return;
	case RK_TIME:
		snprintf(out, len, "a UTC time, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.fff]Z");
		return;
	case RK_DATE:
		snprintf(out, len, "a UTC date, YYYY-MM-DD");
		return;
	case RK_LIMIT:
		snprintf(out, len, "1 to %d", READ_LIST_MAX);
		return;
	case RK_AFTER:
		snprintf(out, len, "an id, the previous page's next_after");
		return;
	}
}

bool
api_read_param(const struct api_read *rd, struct api_read_args *a, const char *key,
	const char *value, char *err, size_t errlen)
{
	const struct read_param *p;
	char want[200], names[200];
	size_t n = 0;
	int slot = 0;
	uint64_t id;
	bool ok = false;

	for (p = rd->params; p->name && strcmp(p->name, key) != 0; p++)
		if (p->kind != RK_LIMIT && p->kind != RK_AFTER)
			slot++;
	if (!p->name) {
		names[0] = '\0';
		for (p = rd->params; p->name && n < sizeof(names); p++)
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "",
				p->name);
		if (rd->params[0].name)
			snprintf(err, errlen, "unknown query parameter \"%s\" (%s)", key, names);
		else
			snprintf(err, errlen,
				"unknown query parameter \"%s\" (this endpoint takes none)", key);
		return false;
	}
	switch (p->kind) {
	case RK_ID:
		ok = admin_api_parse_id(value, &id);
		break;
	case RK_ENUM:
	case RK_GROUP:
		ok = read_in(p->values, value);
		break;
	case RK_TEXT:
		ok = text_ok(value, 64);
		break;
	case RK_PID:
		ok = text_ok(value, 128);
		break;
	case RK_TIME:
		ok = read_time(value);
		break;
	case RK_DATE:
		ok = read_date(value) && value[10] == '\0';
		break;
	case RK_LIMIT:
		ok = admin_api_parse_id(value, &id) && id <= READ_LIST_MAX;
		if (ok)
			a->limit = (long)id;
		break;
	case RK_AFTER:
		ok = admin_api_parse_id(value, &a->after);
		break;
	}
	if (!ok) {
		read_want(p, want, sizeof(want));
		snprintf(err, errlen, "bad query parameter \"%s\": %s", key, want);
		return false;
	}
	if (p->kind != RK_LIMIT && p->kind != RK_AFTER) {
		free(a->value[slot]);
		a->value[slot] = strdup(value);
		if (!a->value[slot]) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
	}
	return true;
}

int
api_read_query(const struct api_read *rd, struct api_read_args *a, const char **sql,
	const char *params[API_READ_MAX_PARAMS])
{
	int n = 0, slot = 0;

	snprintf(a->num[0], sizeof(a->num[0]), "%" PRIu64, a->agency_id);
	snprintf(a->num[1], sizeof(a->num[1]), "%" PRIu64, a->client_id);
	params[n++] = a->num[0];
	params[n++] = a->client_id ? a->num[1] : NULL;
	if (!rd->list_key && !rd->answer) {
		snprintf(a->num[2], sizeof(a->num[2]), "%" PRIu64, a->id);
		params[n++] = a->num[2];
	} else if (rd->list_key) {
		snprintf(a->num[2], sizeof(a->num[2]), "%ld", a->limit);
		snprintf(a->num[3], sizeof(a->num[3]), "%" PRIu64, a->after);
		params[n++] = a->num[2];
		params[n++] = a->num[3];
	}
	for (const struct read_param *p = rd->params; p->name; p++) {
		if (p->kind == RK_LIMIT || p->kind == RK_AFTER)
			continue;
		if (p->kind != RK_GROUP)
			params[n++] = a->value[slot];
		slot++;
	}
	if (rd->build_sql) {
		rd->build_sql(a);
		*sql = a->sql;
	} else {
		*sql = rd->sql;
	}
	return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Rows to JSON                                                                                */

static json_t *
col(PGresult *res, int row, int c)
{
	return PQgetisnull(res, row, c) ? json_null() : json_string(PQgetvalue(res, row, c));
}

static json_t *
col_int(PGresult *res, int row, int c)
{
	return PQgetisnull(res, row, c) ? json_null() :
					  json_integer(strtoll(PQgetvalue(res, row, c), NULL, 10));
}

static json_t *
col_bool(PGresult *res, int row, int c)
{
	return PQgetisnull(res, row, c) ? json_null() :
					  json_boolean(strcmp(PQgetvalue(res, row, c), "t") == 0);
}

/* {id, name} of columns c (the id) and c + 1, or null without an id. */
static json_t *
col_ref(PGresult *res, int row, int c, const char *name_key)
{
	if (PQgetisnull(res, row, c))
		return json_null();
	return json_pack("{s:o,s:o}", "id", col_int(res, row, c), name_key, col(res, row, c + 1));
}

json_t *
api_read_answer(const struct api_read *rd, const struct api_read_args *a, PGresult *res,
	const char **not_found)
{
	int n = PQntuples(res);
	json_t *arr;

	if (rd->answer)
		return rd->answer(a, res);
	if (!rd->list_key) {
		if (n != 1) {
			*not_found = rd->not_found;
			return NULL;
		}
		return rd->row(res, 0);
	}
	arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, rd->row(res, i));
	/* the first column is the id */
	return json_pack("{s:o,s:o}", rd->list_key, arr, "next_after",
		n == a->limit && n > 0 ? col_int(res, n - 1, 0) : json_null());
}

/* ------------------------------------------------------------------------------------------ */
/* GET /v1/agents ?client ?provider ?name (a part of it, any case)                             */

static const struct read_param agents_params[] = {
	{ "client", RK_ID, NULL },
	{ "provider", RK_ENUM, read_providers },
	{ "name", RK_TEXT, NULL },
	{ "limit", RK_LIMIT, NULL },
	{ "after", RK_AFTER, NULL },
	{ NULL, 0, NULL },
};

static json_t *
agents_row(PGresult *res, int row)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "id", col_int(res, row, 0), "name",
		col(res, row, 1), "provider", col(res, row, 2), "provider_agent_id",
		col(res, row, 3), "client", col_ref(res, row, 4, "name"), "active_numbers",
		col_int(res, row, 6));
}

const struct api_read api_read_agents = {
	.params = agents_params,
	.list_key = "agents",
	.sql = "SELECT ag.id, ag.name, ag.provider, ag.provider_agent_id, ag.client_id, c.name, "
	       "(SELECT count(*) FROM phone_numbers n WHERE n.agent_id = ag.id "
	       "AND n.status = 'active') "
	       "FROM agents ag LEFT JOIN clients c ON c.id = ag.client_id "
	       "WHERE ag.agency_id = $1 "
	       "AND ($2::bigint IS NULL OR (ag.client_id = $2 AND c.portal_agent_visibility)) "
	       "AND ag.id > $4 AND ($5::bigint IS NULL OR ag.client_id = $5) "
	       "AND ($6::text IS NULL OR ag.provider = $6) "
	       "AND ($7::text IS NULL OR strpos(lower(ag.name), lower($7)) > 0) "
	       "ORDER BY ag.id LIMIT $3",
	.row = agents_row,
};

/* ------------------------------------------------------------------------------------------ */
/* GET /v1/accounts ?provider: never a secret (api_key, webhook_secret), only whether one is set */

static const struct read_param accounts_params[] = {
	{ "provider", RK_ENUM, read_providers },
	{ "limit", RK_LIMIT, NULL },
	{ "after", RK_AFTER, NULL },
	{ NULL, 0, NULL },
};

static json_t *
accounts_row(PGresult *res, int row)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id", col_int(res, row, 0), "slug",
		col(res, row, 1), "provider", col(res, row, 2), "api_base_url", col(res, row, 3),
		"webhook_auth", col(res, row, 4), "webhook_credential_id", col(res, row, 5),
		"webhook_secret_set", col_bool(res, row, 6), "active_numbers",
		col_int(res, row, 7));
}

const struct api_read api_read_accounts = {
	.params = accounts_params,
	.list_key = "accounts",
	/* a portal token never gets here (api.c: agency tokens only); $2 shuts it out anyway */
	.sql = "SELECT a.id, a.slug, a.provider, a.api_base_url, a.webhook_auth, "
	       "a.webhook_credential_id, a.webhook_secret IS NOT NULL, "
	       "(SELECT count(*) FROM phone_numbers n WHERE n.account_id = a.id "
	       "AND n.status = 'active') "
	       "FROM provider_accounts a WHERE a.agency_id = $1 AND $2::bigint IS NULL "
	       "AND a.id > $4 AND ($5::text IS NULL OR a.provider = $5) "
	       "ORDER BY a.id LIMIT $3",
	.row = accounts_row,
};

/* ------------------------------------------------------------------------------------------ */
/* GET /v1/clients ?name                                                                       */

static const struct read_param clients_params[] = {
	{ "name", RK_TEXT, NULL },
	{ "limit", RK_LIMIT, NULL },
	{ "after", RK_AFTER, NULL },
	{ NULL, 0, NULL },
};

static json_t *
clients_row(PGresult *res, int row)
{
	return json_pack("{s:o,s:o,s:o,s:o}", "id", col_int(res, row, 0), "name", col(res, row, 1),
		"portal_agent_visibility", col_bool(res, row, 2), "agents", col_int(res, row, 3));
}

const struct api_read api_read_clients = {
	.params = clients_params,
	.list_key = "clients",
	.sql = "SELECT c.id, c.name, c.portal_agent_visibility, "
	       "(SELECT count(*) FROM agents ag WHERE ag.client_id = c.id) "
	       "FROM clients c WHERE c.agency_id = $1 "
	       "AND ($2::bigint IS NULL OR (c.id = $2 AND c.portal_agent_visibility)) "
	       "AND c.id > $4 AND ($5::text IS NULL OR strpos(lower(c.name), lower($5)) > 0) "
	       "ORDER BY c.id LIMIT $3",
	.row = clients_row,
};

/* ------------------------------------------------------------------------------------------ */
/* GET /v1/calls, GET /v1/calls/{id}: the calls table, with what the ledger billed            */

static const struct read_param calls_params[] = {
	{ "number", RK_ID, NULL },
	{ "agent", RK_ID, NULL },
	{ "client", RK_ID, NULL },
	{ "direction", RK_ENUM, read_directions },
	{ "status", RK_ENUM, read_call_status },
	{ "provider", RK_ENUM, read_providers },
	{ "since", RK_TIME, NULL },
	{ "until", RK_TIME, NULL },
	{ "provider_call_id", RK_PID, NULL },
	{ "limit", RK_LIMIT, NULL },
	{ "after", RK_AFTER, NULL },
	{ NULL, 0, NULL },
};

static const struct read_param no_params[] = { { NULL, 0, NULL } };

#define SQL_CALL_COLS                                                                                 \
	"k.id, k.provider, k.provider_call_id, k.direction, k.status, k.number_id, k.e164, "          \
	"k.agent_id, ag.name, k.client_id, c.name, k.from_number, k.to_number, k.connected, " SQL_TS( \
		"k.started_at") ", " SQL_TS("k.ended_at") ", k.duration_ms, k.end_reason, "           \
							  "l.billed_seconds, l.rate_micros_per_min, l.amount_micros "
#define SQL_CALL_FROM                                                                              \
	"FROM calls k LEFT JOIN agents ag ON ag.id = k.agent_id "                                  \
	"LEFT JOIN clients c ON c.id = k.client_id "                                               \
	"LEFT JOIN usage_ledger l ON l.provider = k.provider "                                     \
	"AND l.provider_call_id = k.provider_call_id "                                             \
	"WHERE k.agency_id = $1 "                                                                  \
	"AND ($2::bigint IS NULL OR (k.client_id = $2 AND c.portal_agent_visibility)) "

static json_t *
calls_row(PGresult *res, int row)
{
	json_t *billed = json_null();

	if (!PQgetisnull(res, row, 20)) {
		char usd[RATING_DOLLARS_BUFSIZE];

		rating_format_dollars(strtoll(PQgetvalue(res, row, 20), NULL, 10), usd,
			sizeof(usd));
		billed = json_pack("{s:o,s:o,s:o,s:s}", "billed_seconds", col_int(res, row, 18),
			"rate_micros_per_min", col_int(res, row, 19), "amount_micros",
			col_int(res, row, 20), "amount_usd", usd);
	}
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
		col_int(res, row, 0), "provider", col(res, row, 1), "provider_call_id",
		col(res, row, 2), "direction", col(res, row, 3), "status", col(res, row, 4),
		"number", col_ref(res, row, 5, "e164"), "agent", col_ref(res, row, 7, "name"),
		"client", col_ref(res, row, 9, "name"), "from", col(res, row, 11), "to",
		col(res, row, 12), "connected", col_bool(res, row, 13), "started_at",
		col(res, row, 14), "ended_at", col(res, row, 15), "duration_ms",
		col_int(res, row, 16), "end_reason", col(res, row, 17), "billed", billed);
}

const struct api_read api_read_calls = {
	.params = calls_params,
	.list_key = "calls",
	/* since/until: [since, until) of the start (the first event's arrival if none) */
	.sql = "SELECT " SQL_CALL_COLS SQL_CALL_FROM "AND k.id > $4 "
	       "AND ($5::bigint IS NULL OR k.number_id = $5) "
	       "AND ($6::bigint IS NULL OR k.agent_id = $6) "
	       "AND ($7::bigint IS NULL OR k.client_id = $7) "
	       "AND ($8::text IS NULL OR k.direction = $8) "
	       "AND ($9::text IS NULL OR k.status = $9) "
	       "AND ($10::text IS NULL OR k.provider = $10) "
	       "AND ($11::text IS NULL OR coalesce(k.started_at, k.first_seen_at) >= "
	       "($11::text || CASE WHEN length($11) = 10 THEN 'T00:00:00Z' ELSE '' END)"
	       "::timestamptz) "
	       "AND ($12::text IS NULL OR coalesce(k.started_at, k.first_seen_at) < "
	       "($12::text || CASE WHEN length($12) = 10 THEN 'T00:00:00Z' ELSE '' END)"
	       "::timestamptz) "
	       "AND ($13::text IS NULL OR k.provider_call_id = $13) "
	       "ORDER BY k.id LIMIT $3",
	.row = calls_row,
};

const struct api_read api_read_call = {
	.params = no_params,
	.sql = "SELECT " SQL_CALL_COLS SQL_CALL_FROM "AND k.id = $3",
	.row = calls_row,
	.not_found = "no such call",
};

/* ------------------------------------------------------------------------------------------ */
/* GET /v1/usage ?by ?from ?to: the groups of `callroutectl usage` (tools/callroutectl.c)      */

static const char *const usage_groups[] = { "agency", "client", "agent", "number", "day", NULL };

static const struct read_param usage_params[] = {
	{ "by", RK_GROUP, usage_groups },
	{ "from", RK_DATE, NULL },
	{ "to", RK_DATE, NULL },
	{ NULL, 0, NULL },
};

/* The time a ledger row counts at, as callroutectl usage counts it. */
#define SQL_USAGE_AT "coalesce(l.ended_at, l.recorded_at)"

static const struct {
	const char *key, *label, *join;
} usage_sql[] = {
	{ "l.agency_id::text", "ag.name", "LEFT JOIN agencies ag ON ag.id = l.agency_id" },
	{ "coalesce(l.client_id::text, '-')", "coalesce(c.name, '(no client)')",
		"LEFT JOIN clients c ON c.id = l.client_id" },
	{ "coalesce(l.agent_id::text, '-')", "coalesce(a.name, '(no agent)')",
		"LEFT JOIN agents a ON a.id = l.agent_id" },
	{ "coalesce(l.number_id::text, '-')", "coalesce(n.e164, '(unknown)')",
		"LEFT JOIN phone_numbers n ON n.id = l.number_id" },
	{ "to_char(" SQL_USAGE_AT " AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
		"to_char(" SQL_USAGE_AT " AT TIME ZONE 'UTC', 'YYYY-MM-DD')", "" },
};

static int
usage_group(const struct api_read_args *a)
{
	for (int i = 0; a->value[0] && usage_groups[i]; i++)
		if (strcmp(usage_groups[i], a->value[0]) == 0)
			return i;
	return 0;
}

static void
usage_build_sql(struct api_read_args *a)
{
	int g = usage_group(a);

	snprintf(a->sql, sizeof(a->sql),
		"SELECT %s AS key, %s AS label, count(*), sum(l.billed_seconds)::bigint, "
		"sum(l.amount_micros)::bigint FROM usage_ledger l %s WHERE l.agency_id = $1 "
		"AND ($2::bigint IS NULL OR (l.client_id = $2 AND EXISTS (SELECT 1 FROM clients pc "
		"WHERE pc.id = $2 AND pc.portal_agent_visibility))) "
		"AND ($3::date IS NULL OR " SQL_USAGE_AT " >= ($3::date)::timestamp AT TIME ZONE "
		"'UTC') "
		"AND ($4::date IS NULL OR " SQL_USAGE_AT
		" < ($4::date + 1)::timestamp AT TIME ZONE "
		"'UTC') "
		"GROUP BY 1, 2 ORDER BY 1",
		usage_sql[g].key, usage_sql[g].label, usage_sql[g].join);
}

static json_t *
usage_answer(const struct api_read_args *a, PGresult *res)
{
	const char *by = usage_groups[usage_group(a)];
	int64_t tcalls = 0, tbilled = 0, tamount = 0;
	char usd[RATING_DOLLARS_BUFSIZE];
	json_t *rows = json_array();

	for (int i = 0; i < PQntuples(res); i++) {
		int64_t calls = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		int64_t billed = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		int64_t amount = strtoll(PQgetvalue(res, i, 4), NULL, 10);

		tcalls += calls;
		tbilled += billed;
		tamount += amount;
		rating_format_dollars(amount, usd, sizeof(usd));
		json_array_append_new(rows,
			json_pack("{s:o,s:o,s:I,s:I,s:I,s:s}", by, col(res, i, 0), "name",
				col(res, i, 1), "calls", (json_int_t)calls, "billed_seconds",
				(json_int_t)billed, "amount_micros", (json_int_t)amount,
				"amount_usd", usd));
	}
	rating_format_dollars(tamount, usd, sizeof(usd));
	return json_pack("{s:s,s:o,s:o,s:o,s:{s:I,s:I,s:I,s:s}}", "by", by, "from",
		a->value[1] ? json_string(a->value[1]) : json_null(), "to",
		a->value[2] ? json_string(a->value[2]) : json_null(), "rows", rows, "total",
		"calls", (json_int_t)tcalls, "billed_seconds", (json_int_t)tbilled, "amount_micros",
		(json_int_t)tamount, "amount_usd", usd);
}

const struct api_read api_read_usage = {
	.params = usage_params,
	.build_sql = usage_build_sql,
	.answer = usage_answer,
};
