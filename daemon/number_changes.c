/* number_changes.c: leases, Idempotency-Key and number_events: SQL, checks, counters. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "number_changes.h"

/* ------------------------------------------------------------------------------------------ */
/* Leases                                                                                      */

unsigned
nc_lease_seconds(int provider_timeout_s)
{
	return 2u * (unsigned)(provider_timeout_s > 0 ? provider_timeout_s : 1) + NC_LEASE_MARGIN_S;
}

unsigned
nc_idem_seconds(int provider_timeout_s)
{
	return 3u * (unsigned)(provider_timeout_s > 0 ? provider_timeout_s : 1) + NC_LEASE_MARGIN_S;
}

bool
nc_holder_new(char out[NC_HOLDER_LEN + 1])
{
	unsigned char b[NC_HOLDER_LEN / 2];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return false;
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return true;
}

double
nc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool
nc_lease_room(double deadline, int timeout_s)
{
	return nc_now() + (double)timeout_s <= deadline;
}

#define NC_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

const char nc_lease_sql[] =
	"WITH n AS (SELECT id, agency_id, e164, agent_id, nickname FROM phone_numbers "
	"WHERE id = $1 AND agency_id = $2), "
	"old AS (SELECT instance, action, token_id, expires_at <= now() AS stale, " NC_ISO(
		"expires_at") " AS until FROM number_change_leases WHERE number_id = $1), "
			      "got AS (INSERT INTO number_change_leases AS l (number_id, holder, instance, "
			      "action, token_id, acquired_at, expires_at) "
			      "SELECT n.id, $3, $4, $5, $7::bigint, now(), now() + make_interval(secs => "
			      "$6::int) FROM n "
			      "ON CONFLICT (number_id) DO UPDATE SET holder = EXCLUDED.holder, instance = "
			      "EXCLUDED.instance, action = EXCLUDED.action, token_id = EXCLUDED.token_id, "
			      "acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at "
			      "WHERE l.expires_at <= now() RETURNING l.number_id), "
			      "ev AS (INSERT INTO number_events (number_id, agency_id, e164, action, "
			      "before_agent_id, after_agent_id, before_nickname, after_nickname, actor, "
			      "token_id, instance, detail) "
			      "SELECT n.id, n.agency_id, n.e164, 'interrupted', n.agent_id, n.agent_id, "
			      "n.nickname, n.nickname, CASE WHEN old.token_id IS NULL THEN 'sync' ELSE "
			      "'token' END, old.token_id, old.instance, "
			      "format('a %s by instance %s did not finish (its lease expired at %s): the "
			      "provider may hold its change; a provider sync compares', "
			      "old.action, old.instance, old.until) "
			      "FROM n, old, got WHERE old.stale RETURNING id) "
			      "SELECT (SELECT count(*) FROM n), (SELECT count(*) FROM got), old.instance, "
			      "old.action, old.stale, old.until, (SELECT count(*) FROM ev) "
			      "FROM (SELECT 1) one LEFT JOIN old ON true";

const char nc_lease_release_sql[] =
	"DELETE FROM number_change_leases WHERE number_id = $1 AND holder = $2";

/* ------------------------------------------------------------------------------------------ */
/* Idempotency keys                                                                            */

static bool
nc_key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       strchr("._:~+/=-", c) != NULL;
}

bool
nc_key_parse(const char *value, char *out, size_t outlen, char *err, size_t errlen)
{
	static const char form[] = "1 to 255 characters of A-Z a-z 0-9 . _ : ~ + / = - "
				   "(a UUID, say), bare or in double quotes";
	size_t n = strlen(value);

	if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
		value++;
		n -= 2;
	}
	if (n == 0 || n > NC_KEY_MAX || n >= outlen) {
		snprintf(err, errlen, "Idempotency-Key: %s (this one has %zu)", form, n);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (!nc_key_char(value[i])) {
			snprintf(err, errlen, "Idempotency-Key: %s (character %zu is not)", form,
				i + 1);
			return false;
		}
	memcpy(out, value, n);
	out[n] = '\0';
	return true;
}

bool
nc_request_digest(const char *route, const json_t *body, char hex[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char *canon = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : strdup("");
	char *text = NULL;

	if (!canon || asprintf(&text, "%s\n%s", route, canon) < 0) {
		free(canon);
		return false;
	}
	SHA256((const unsigned char *)text, strlen(text), md);
	free(text);
	free(canon);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return true;
}

const char nc_idem_claim_sql[] =
	"WITH got AS (INSERT INTO idempotency_keys AS k (agency_id, key, route, request_sha256, "
	"token_id, instance, state, created_at, locked_until, expires_at) "
	"VALUES ($1, $2, $3, decode($4, 'hex'), $5, $6, 'in_flight', now(), "
	"now() + make_interval(secs => $7::int), now() + interval '24 hours') "
	"ON CONFLICT (agency_id, key) DO UPDATE SET route = EXCLUDED.route, "
	"request_sha256 = EXCLUDED.request_sha256, token_id = EXCLUDED.token_id, "
	"instance = EXCLUDED.instance, state = 'in_flight', status = NULL, body = NULL, "
	"created_at = now(), locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at "
	"WHERE k.expires_at <= now() RETURNING 1) "
	"SELECT (SELECT count(*) FROM got), k.route, k.request_sha256 = decode($4, 'hex'), "
	"k.state, k.locked_until > now(), k.status, k.body "
	"FROM (SELECT 1) one LEFT JOIN idempotency_keys k ON k.agency_id = $1 AND k.key = $2 "
	"AND k.expires_at > now() AND NOT EXISTS (SELECT 1 FROM got)";

const char nc_idem_store_sql[] =
	"UPDATE idempotency_keys SET state = 'done', status = $3::int, body = $4 "
	"WHERE agency_id = $1 AND key = $2 AND state = 'in_flight'";

const char nc_idem_drop_sql[] =
	"DELETE FROM idempotency_keys WHERE agency_id = $1 AND key = $2 AND state = 'in_flight'";

const char nc_idem_expire_sql[] = "WITH d AS (DELETE FROM idempotency_keys "
				  "WHERE expires_at <= now() RETURNING 1) "
				  "SELECT count(*) FROM d";

/* ------------------------------------------------------------------------------------------ */
/* Events                                                                                      */

const char nc_event_sql[] =
	"SELECT number_event_add($1::bigint, $2, $3::bigint, $4::bigint, $5, $6, $7::bigint, $8, "
	"$9, $10)";

static char *
nc_id_param(uint64_t v)
{
	char buf[24];

	if (!v)
		return NULL;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return strdup(buf);
}

bool
nc_event_params(const struct nc_event *e, const char *instance, char *params[NC_EVENT_NPARAMS])
{
	const char *strs[NC_EVENT_NPARAMS] = { NULL };
	bool ok = true;

	memset(params, 0, sizeof(char *) * NC_EVENT_NPARAMS);
	params[0] = nc_id_param(e->number_id);
	params[2] = nc_id_param(e->before_agent_id);
	params[3] = nc_id_param(e->after_agent_id);
	params[6] = nc_id_param(e->token_id);
	strs[1] = e->action;
	strs[4] = e->before_nickname;
	strs[5] = e->after_nickname;
	strs[7] = instance;
	strs[8] = e->provider_request_id;
	strs[9] = e->detail;
	for (int i = 0; i < NC_EVENT_NPARAMS; i++)
		if (strs[i] && !(params[i] = strdup(strs[i])))
			ok = false;
	if (!params[0] || (e->before_agent_id && !params[2]) || (e->after_agent_id && !params[3]) ||
		(e->token_id && !params[6]))
		ok = false;
	if (!ok)
		nc_event_params_free(params);
	return ok;
}

void
nc_event_params_free(char *params[NC_EVENT_NPARAMS])
{
	for (int i = 0; i < NC_EVENT_NPARAMS; i++) {
		free(params[i]);
		params[i] = NULL;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Counters                                                                                    */

static _Atomic uint64_t nc_counters[NC_COUNTERS];

void
nc_count(enum nc_counter c, uint64_t n)
{
	atomic_fetch_add_explicit(&nc_counters[c], n, memory_order_relaxed);
}

uint64_t
nc_counter_get(enum nc_counter c)
{
	return atomic_load_explicit(&nc_counters[c], memory_order_relaxed);
}

void
number_changes_stats(stat_fn add, void *ctx)
{
	static const struct {
		const char *reason;
		enum nc_counter c;
	} refusals[] = {
		{ "invalid", NC_IDEM_INVALID },
		{ "mismatch", NC_IDEM_MISMATCH },
		{ "in_flight", NC_IDEM_IN_FLIGHT },
		{ "unknown", NC_IDEM_UNKNOWN },
	};
	char labels[64];

	STAT_COUNTER(add, ctx, "callrouted_api_number_change_conflicts_total",
		"Changes to a number refused (409) while another change held it.",
		nc_counter_get(NC_LEASE_CONFLICTS));
	STAT_COUNTER(add, ctx, "callrouted_api_number_change_takeovers_total",
		"Expired number leases taken over: a change that did not finish (its daemon died).",
		nc_counter_get(NC_LEASE_TAKEOVERS));
	STAT_COUNTER(add, ctx, "callrouted_api_number_change_lease_lost_total",
		"Changes that ran out of their lease (nothing more sent, nothing written).",
		nc_counter_get(NC_LEASE_LOST));
	STAT_COUNTER(add, ctx, "callrouted_api_idempotent_replays_total",
		"Answers given again for an Idempotency-Key seen before.",
		nc_counter_get(NC_IDEM_REPLAYS));
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		snprintf(labels, sizeof(labels), "reason=\"%s\"", refusals[i].reason);
		stat_u64(add, ctx, "callrouted_api_idempotency_refusals_total",
			"Requests refused for their Idempotency-Key.", "counter", labels,
			nc_counter_get(refusals[i].c));
	}
	STAT_COUNTER(add, ctx, "callrouted_api_change_record_failures_total",
		"Idempotent answers or lease releases that could not be written.",
		nc_counter_get(NC_IDEM_RECORD_FAILURES));
	STAT_COUNTER(add, ctx, "callrouted_api_number_events_total",
		"number_events rows written by the admin API.", nc_counter_get(NC_EVENTS));
	STAT_COUNTER(add, ctx, "callrouted_api_idempotency_keys_expired_total",
		"Idempotency keys deleted after their 24 hours.", nc_counter_get(NC_IDEM_EXPIRED));
}
