/* route_policy.h: the routing policies compiled for a snapshot: rows, zones, look-ups. */
#ifndef CALLROUTED_ROUTE_POLICY_H
#define CALLROUTED_ROUTE_POLICY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tzif.h"

/* Who a rule belongs to. */
enum policy_scope { PS_NONE = 0, PS_NUMBER, PS_CLIENT, PS_AGENCY };
const char *policy_scope_name(enum policy_scope s);

#define POLICY_NO_CAP INT64_C(-1)

struct policy_zone {
	uint32_t name;     /* offset in names */
	uint32_t first, n; /* transitions */
	int32_t off0;      /* offset before the first one */
};

/* A range of rows in one of the row arrays. */
struct policy_range {
	uint32_t first, n;
};

struct policy_rules {
	struct policy_range hours, closed, blocked;
};

struct policy_hours {
	uint64_t id;
	uint32_t opens, closes; /* seconds of the local day; closes may be 86400 */
	uint8_t weekday;        /* 1 = Monday .. 7 */
};

struct policy_closed {
	uint64_t id;
	int32_t day; /* local date as days since 1970-01-01 */
};

struct policy_block {
	uint64_t id;
	uint8_t len;     /* digits */
	char digits[16]; /* the prefix without '+' */
};

struct policy_split {
	uint64_t agent_id;
	uint32_t weight;
};

/* A provider account's refusal agent (Retell: provider_accounts.refusal_agent_id). */
struct policy_account {
	uint64_t id;
	uint32_t refusal; /* offset in names */
};

struct policy_agency {
	uint64_t id;
	uint32_t zone;
	int64_t cap_micros; /* POLICY_NO_CAP */
	struct policy_rules rules;
};

struct policy_client {
	uint64_t id;
	uint64_t agency_id;
	uint32_t zone;
	int32_t max_concurrent; /* 0: no limit */
	int32_t reserved_inbound;
	int64_t cap_micros;
	struct policy_rules rules;
};

struct policy_number {
	uint64_t number_id;
	uint64_t overflow_agent_id; /* 0: none */
	struct policy_range splits;
	uint32_t total_weight;
	struct policy_rules rules;
};

/* The month-to-date spend and calls-in-progress figures of a client or agency, as last read
 * from PostgreSQL: saved with the policies in the snapshot file (snapshot.c). */
struct policy_figure {
	uint64_t id;
	bool agency;
	int32_t in_progress;
	int32_t month[2];
	int64_t amount[2];
};

/* The policies of one snapshot: built whole on the db thread, read-only after, shared by
 * reference between snapshots. */
struct route_policy {
	atomic_int refs;
	int64_t window_from, window_to; /* the offsets are exact for times in this window */
	struct tz_transition *trs;
	uint32_t n_trs, cap_trs;
	struct policy_zone *zones;
	uint32_t n_zones, cap_zones;
	char *names;
	size_t names_len, names_cap;
	struct policy_account *accounts; /* sorted by id */
	uint32_t n_accounts, cap_accounts;
	struct policy_agency *agencies; /* sorted by id */
	uint32_t n_agencies, cap_agencies;
	struct policy_client *clients; /* sorted by id */
	uint32_t n_clients, cap_clients;
	struct policy_number *numbers; /* sorted by number_id */
	uint32_t n_numbers, cap_numbers;
	uint32_t *number_hash; /* number_id -> index into numbers, open addressing; UINT32_MAX */
	uint32_t number_mask;
	struct policy_hours *hours;
	struct policy_closed *closed;
	struct policy_block *blocked;
	struct policy_split *splits;
	uint32_t n_hours, n_closed, n_blocked, n_splits;
	/* rows before finish(): owner and payload */
	struct policy_row *rows;
	size_t n_rows, cap_rows;
	unsigned zone_failures; /* zones that could not be read (UTC used) */
	/* figures of the snapshot file it was loaded from (else NULL): policy_db restores them
	 * into route_counts at start */
	struct policy_figure *restored;
	uint32_t n_restored;
};

struct route_policy *policy_new(int64_t now_s);
void policy_ref(struct route_policy *p);
void policy_unref(struct route_policy *p);
/* Building (db thread): false on allocation failure or a bad value (the row is skipped when
 * the function says so). tz: an IANA name; NULL = UTC. cap < 0: none. */
bool policy_add_agency(struct route_policy *p, uint64_t id, const char *tz, int64_t cap);
bool policy_add_client(struct route_policy *p, uint64_t id, uint64_t agency_id, const char *tz,
	int32_t max_concurrent, int32_t reserved_inbound, int64_t cap);
/* The agent (the provider's id) that takes the account's refused calls. */
bool policy_add_refusal_agent(struct route_policy *p, uint64_t account_id, const char *agent);
/* It, or NULL. */
const char *policy_refusal_agent(const struct route_policy *p, uint64_t account_id);
bool policy_add_overflow(struct route_policy *p, uint64_t number_id, uint64_t agent_id);
/* owner_id: the number, client or agency id of scope */
bool policy_add_hours(struct route_policy *p, enum policy_scope scope, uint64_t owner_id,
	uint64_t id, int weekday, uint32_t opens_s, uint32_t closes_s);
bool policy_add_closed(struct route_policy *p, enum policy_scope scope, uint64_t owner_id,
	uint64_t id, int32_t day);
/* prefix "+digits"; false for one that is not */
bool policy_add_blocked(struct route_policy *p, enum policy_scope scope, uint64_t owner_id,
	uint64_t id, const char *prefix);
bool policy_add_split(struct route_policy *p, uint64_t number_id, uint64_t agent_id,
	uint32_t weight);
/* Sort, index, read the zones' offsets (tzdata files): call once, after the rows. */
bool policy_finish(struct route_policy *p);
size_t policy_bytes(const struct route_policy *p);

const struct policy_client *policy_client(const struct route_policy *p, uint64_t id);
const struct policy_agency *policy_agency(const struct route_policy *p, uint64_t id);
const struct policy_number *policy_number(const struct route_policy *p, uint64_t number_id);
const char *policy_zone_name(const struct route_policy *p, uint32_t zone);
/* UTC offset of zone at t (seconds); outside the window the nearest edge's offset. */
int32_t policy_zone_offset(const struct route_policy *p, uint32_t zone, int64_t t);

/* A month for the spend figures: year * 12 + month - 1 of the local date. */
int32_t policy_month_key(const struct route_policy *p, uint32_t zone, int64_t t);

/*
 * The longest call (seconds, in whole billing steps) that remaining micros buy on the plan,
 * never below one billing increment; -1 when the rate is 0 (no bound).
 */
int64_t policy_max_duration_s(int64_t remaining_micros, int64_t rate_micros_per_min,
	int32_t initial_s, int32_t increment_s);

#endif
