/* snapshot.c: saving the last good route snapshot to state_dir and loading it at start-up. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "callrouted/log.h"
#include "metrics.h"
#include "callrouted/rating.h"
#include "route_counts.h"
#include "route_policy.h"
#include "snapshot.h"
#include "tzif.h"

/*
 * File format (little endian as written by this host; the magic names the byte order):
 *   "CRSNAP02"  u64 generation  i64 loaded_at_ms  u32 n_accounts  u32 n_agents  u64 n_numbers
 *   u32 n_agencies
 *   accounts: u64 id, u64 agency_id, u8 provider, u8 auth, str slug, str api_key, str secret
 *   agencies: u64 id, i64 rate_micros_per_min, i32 billing_initial_s, i32 billing_increment_s
 *   agents:   u64 id, u64 agency_id, u64 client_id, u8 provider, str agent_id, str name, str client
 *   numbers:  u64 key, u64 number_id, u32 agent_idx, u32 account_idx
 *   u8 has_policy (CRSNAP03 only; "CRSNAP02" files end here and load without policies), then
 *   when 1 the policy section, the inputs the policies were built from (decoding rebuilds them
 *   through route_policy.c's add functions, which check every value again, and re-reads the
 *   zones' TZif files so the offsets' window is centred on the load):
 *     u32 n_zones      zones:    str name (IANA)
 *     u32 n_accounts   accounts: u64 id, str refusal agent
 *     u32 n_agencies   agencies: u64 id (increasing), u32 zone, i64 cap (-1: none)
 *     u32 n_clients    clients:  u64 id (increasing), u64 agency_id, u32 zone, i32 max_concurrent,
 *                                i32 reserved_inbound, i64 cap
 *     u32 n_rows       rows:     u8 kind, u8 scope, u64 owner, u64 id, then by kind: hours u8
 *                                weekday u32 opens u32 closes; closed i32 day; blocked str
 *                                "+digits"; split (id = agent) u32 weight, 0 = overflow agent
 *     u32 n_figures    figures:  u8 agency, u64 id, i32 in_progress, 2 x (i32 month, i64 micros)
 *   SHA-256 of all the above
 * str = u32 length (UINT32_MAX = NULL) + bytes.  Indices refer to the catalog in its sorted
 * order, which decoding rebuilds.  The file holds provider secrets: mode 0600.
 */
#define SNAP_MAGIC "CRSNAP03"
#define SNAP_MAGIC_V2 "CRSNAP02" /* before the policy section */
#define SNAP_STR_MAX 4096
#define SNAP_NICE 10 /* the writer runs below the webhook workers */

struct snap_buf {
	unsigned char *p;
	size_t len, cap;
	bool failed;
};

static void
sb_put(struct snap_buf *b, const void *d, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		unsigned char *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void
sb_u64(struct snap_buf *b, uint64_t v)
{
	sb_put(b, &v, 8);
}

static void
sb_u32(struct snap_buf *b, uint32_t v)
{
	sb_put(b, &v, 4);
}

static void
sb_u8(struct snap_buf *b, uint8_t v)
{
	sb_put(b, &v, 1);
}

static void
sb_str(struct snap_buf *b, const char *s)
{
	if (!s) {
		sb_u32(b, UINT32_MAX);
		return;
	}
	sb_u32(b, (uint32_t)strlen(s));
	sb_put(b, s, strlen(s));
}

enum snap_row { SR_HOURS = 0, SR_CLOSED, SR_BLOCKED, SR_SPLIT };

static void
sb_row_head(struct snap_buf *b, enum snap_row kind, enum policy_scope scope, uint64_t owner,
	uint64_t id)
{
	sb_u8(b, (uint8_t)kind);
	sb_u8(b, (uint8_t)scope);
	sb_u64(b, owner);
	sb_u64(b, id);
}

static uint32_t
sb_rules(struct snap_buf *b, const struct route_policy *p, enum policy_scope scope, uint64_t owner,
	const struct policy_rules *r)
{
	char prefix[18];

	for (uint32_t i = 0; i < r->hours.n; i++) {
		const struct policy_hours *h = &p->hours[r->hours.first + i];

		sb_row_head(b, SR_HOURS, scope, owner, h->id);
		sb_u8(b, h->weekday);
		sb_u32(b, h->opens);
		sb_u32(b, h->closes);
	}
	for (uint32_t i = 0; i < r->closed.n; i++) {
		const struct policy_closed *c = &p->closed[r->closed.first + i];

		sb_row_head(b, SR_CLOSED, scope, owner, c->id);
		sb_u32(b, (uint32_t)c->day);
	}
	for (uint32_t i = 0; i < r->blocked.n; i++) {
		const struct policy_block *k = &p->blocked[r->blocked.first + i];

		prefix[0] = '+';
		memcpy(prefix + 1, k->digits, k->len);
		prefix[k->len + 1] = 0;
		sb_row_head(b, SR_BLOCKED, scope, owner, k->id);
		sb_str(b, prefix);
	}
	return r->hours.n + r->closed.n + r->blocked.n;
}

static void
sb_figure(struct snap_buf *b, bool agency, uint64_t id, uint32_t *n)
{
	struct policy_figure f = { .id = id, .agency = agency };

	if (!route_counts_get(&f))
		return;
	sb_u8(b, agency);
	sb_u64(b, id);
	sb_u32(b, (uint32_t)f.in_progress);
	for (int m = 0; m < 2; m++) {
		sb_u32(b, (uint32_t)f.month[m]);
		sb_u64(b, (uint64_t)f.amount[m]);
	}
	(*n)++;
}

/* The policy section (see the format above); the counts patched in once known. */
static void
sb_policy(struct snap_buf *b, const struct route_policy *p)
{
	uint32_t n = 0;
	size_t at;

	sb_u32(b, p->n_zones);
	for (uint32_t i = 0; i < p->n_zones; i++)
		sb_str(b, policy_zone_name(p, i));
	sb_u32(b, p->n_accounts);
	for (uint32_t i = 0; i < p->n_accounts; i++) {
		sb_u64(b, p->accounts[i].id);
		sb_str(b, p->names + p->accounts[i].refusal);
	}
	sb_u32(b, p->n_agencies);
	for (uint32_t i = 0; i < p->n_agencies; i++) {
		sb_u64(b, p->agencies[i].id);
		sb_u32(b, p->agencies[i].zone);
		sb_u64(b, (uint64_t)p->agencies[i].cap_micros);
	}
	sb_u32(b, p->n_clients);
	for (uint32_t i = 0; i < p->n_clients; i++) {
		const struct policy_client *c = &p->clients[i];

		sb_u64(b, c->id);
		sb_u64(b, c->agency_id);
		sb_u32(b, c->zone);
		sb_u32(b, (uint32_t)c->max_concurrent);
		sb_u32(b, (uint32_t)c->reserved_inbound);
		sb_u64(b, (uint64_t)c->cap_micros);
	}
	at = b->len;
	sb_u32(b, 0);
	for (uint32_t i = 0; i < p->n_agencies; i++)
		n += sb_rules(b, p, PS_AGENCY, p->agencies[i].id, &p->agencies[i].rules);
	for (uint32_t i = 0; i < p->n_clients; i++)
		n += sb_rules(b, p, PS_CLIENT, p->clients[i].id, &p->clients[i].rules);
	for (uint32_t i = 0; i < p->n_numbers; i++) {
		const struct policy_number *num = &p->numbers[i];

		n += sb_rules(b, p, PS_NUMBER, num->number_id, &num->rules);
		if (num->overflow_agent_id) {
			sb_row_head(b, SR_SPLIT, PS_NUMBER, num->number_id, num->overflow_agent_id);
			sb_u32(b, 0);
			n++;
		}
		for (uint32_t k = 0; k < num->splits.n; k++) {
			const struct policy_split *sp = &p->splits[num->splits.first + k];

			sb_row_head(b, SR_SPLIT, PS_NUMBER, num->number_id, sp->agent_id);
			sb_u32(b, sp->weight);
			n++;
		}
	}
	if (!b->failed)
		memcpy(b->p + at, &n, 4);
	n = 0;
	at = b->len;
	sb_u32(b, 0);
	for (uint32_t i = 0; i < p->n_agencies; i++)
		sb_figure(b, true, p->agencies[i].id, &n);
	for (uint32_t i = 0; i < p->n_clients; i++)
		sb_figure(b, false, p->clients[i].id, &n);
	if (!b->failed)
		memcpy(b->p + at, &n, 4);
}

bool
snapshot_encode(const struct routes_snapshot *s, unsigned char **buf, size_t *len)
{
	const struct routes_catalog *c = s->catalog;
	struct snap_buf b = { 0 };
	unsigned char md[SHA256_DIGEST_LENGTH];

	sb_put(&b, SNAP_MAGIC, 8);
	sb_u64(&b, s->generation);
	sb_u64(&b, (uint64_t)s->loaded_at_ms);
	sb_u32(&b, c->n_accounts);
	sb_u32(&b, c->n_agents);
	sb_u64(&b, s->numbers.count);
	sb_u32(&b, c->n_agencies);
	for (uint32_t i = 0; i < c->n_accounts; i++) {
		const struct route_account *a = &c->accounts[i];

		sb_u64(&b, a->id);
		sb_u64(&b, a->agency_id);
		sb_u8(&b, (uint8_t)a->provider);
		sb_u8(&b, (uint8_t)a->auth);
		sb_str(&b, a->slug);
		sb_str(&b, a->api_key);
		sb_str(&b, a->webhook_secret);
	}
	for (uint32_t i = 0; i < c->n_agencies; i++) {
		const struct route_agency *a = &c->agencies[i];

		sb_u64(&b, a->id);
		sb_u64(&b, (uint64_t)a->rate_micros_per_min);
		sb_u32(&b, (uint32_t)a->billing_initial_s);
		sb_u32(&b, (uint32_t)a->billing_increment_s);
	}
	for (uint32_t i = 0; i < c->n_agents; i++) {
		const struct route_agent *a = &c->agents[i];

		sb_u64(&b, a->id);
		sb_u64(&b, a->agency_id);
		sb_u64(&b, a->client_id);
		sb_u8(&b, (uint8_t)a->provider);
		sb_str(&b, a->provider_agent_id);
		sb_str(&b, a->name);
		sb_str(&b, a->client_name);
	}
	for (size_t i = 0; s->numbers.slots && i <= s->numbers.mask; i++) {
		const struct route_slot *sl = &s->numbers.slots[i];

		if (sl->key == 0)
			continue;
		sb_u64(&b, sl->key);
		sb_u64(&b, sl->number_id);
		sb_u32(&b, sl->agent_idx);
		sb_u32(&b, sl->account_idx);
	}
	sb_u8(&b, s->policy ? 1 : 0);
	if (s->policy)
		sb_policy(&b, s->policy);
	if (!b.failed) {
		SHA256(b.p, b.len, md);
		sb_put(&b, md, sizeof(md));
	}
	if (b.failed) {
		free(b.p);
		return false;
	}
	*buf = b.p;
	*len = b.len;
	return true;
}

struct snap_rd {
	const unsigned char *p;
	size_t left;
};

static bool
rd_get(struct snap_rd *r, void *d, size_t n)
{
	if (r->left < n)
		return false;
	memcpy(d, r->p, n);
	r->p += n;
	r->left -= n;
	return true;
}

/* Reads a string into a malloc'd NUL-terminated copy; *s = NULL for a NULL string. */
static bool
rd_str(struct snap_rd *r, char **s)
{
	uint32_t n;

	*s = NULL;
	if (!rd_get(r, &n, 4))
		return false;
	if (n == UINT32_MAX)
		return true;
	if (n > SNAP_STR_MAX || r->left < n || memchr(r->p, 0, n))
		return false;
	*s = malloc((size_t)n + 1);
	if (!*s)
		return false;
	memcpy(*s, r->p, n);
	(*s)[n] = 0;
	r->p += n;
	r->left -= n;
	return true;
}

#define SNAP_POLICY_MAX (UINT32_C(1) << 26) /* rows, clients, ... per section */

/* The policy section into *out (NULL, and a reason, when refused). */
static const char *
rd_policy(struct snap_rd *r, int64_t now_s, struct route_policy **out)
{
	struct route_policy *p = policy_new(now_s);
	char **zones = NULL, *str = NULL;
	uint32_t n_zones = 0, n, nz = 0;
	const char *why = "truncated policy section";
	uint64_t last;

	*out = NULL;
	if (!p)
		return "out of memory";
	if (!rd_get(r, &n_zones, 4))
		goto fail;
	if (n_zones > 65536 || n_zones > r->left / 4) {
		why = "policy zone count out of range";
		goto fail;
	}
	zones = calloc((size_t)n_zones + 1, sizeof(*zones));
	if (!zones) {
		why = "out of memory";
		goto fail;
	}
	for (nz = 0; nz < n_zones; nz++) {
		if (!rd_str(r, &zones[nz]))
			goto fail;
		if (!zones[nz] || !tzif_name_valid(zones[nz])) {
			nz++;
			why = "bad policy zone name";
			goto fail;
		}
	}
	if (!rd_get(r, &n, 4))
		goto fail;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t id;

		if (i >= SNAP_POLICY_MAX || !rd_get(r, &id, 8) || !rd_str(r, &str))
			goto fail;
		if (!id || !str || !policy_add_refusal_agent(p, id, str)) {
			why = "bad policy account record";
			goto fail;
		}
		free(str);
		str = NULL;
	}
	if (!rd_get(r, &n, 4))
		goto fail;
	last = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t id;
		uint32_t zone;
		int64_t cap;

		if (i >= SNAP_POLICY_MAX || !rd_get(r, &id, 8) || !rd_get(r, &zone, 4) ||
			!rd_get(r, &cap, 8))
			goto fail;
		if (id <= last || zone >= n_zones || cap < POLICY_NO_CAP ||
			!policy_add_agency(p, id, zones[zone], cap)) {
			why = "bad policy agency record";
			goto fail;
		}
		last = id;
	}
	if (!rd_get(r, &n, 4))
		goto fail;
	last = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t id, agency;
		uint32_t zone;
		int32_t maxc, resv;
		int64_t cap;

		if (i >= SNAP_POLICY_MAX || !rd_get(r, &id, 8) || !rd_get(r, &agency, 8) ||
			!rd_get(r, &zone, 4) || !rd_get(r, &maxc, 4) || !rd_get(r, &resv, 4) ||
			!rd_get(r, &cap, 8))
			goto fail;
		if (id <= last || !agency || zone >= n_zones || maxc < 0 || resv < 0 ||
			cap < POLICY_NO_CAP ||
			!policy_add_client(p, id, agency, zones[zone], maxc, resv, cap)) {
			why = "bad policy client record";
			goto fail;
		}
		last = id;
	}
	if (!rd_get(r, &n, 4))
		goto fail;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t kind, scope, wd;
		uint64_t owner, id;
		uint32_t a, b;
		bool ok = false;

		if (i >= SNAP_POLICY_MAX || !rd_get(r, &kind, 1) || !rd_get(r, &scope, 1) ||
			!rd_get(r, &owner, 8) || !rd_get(r, &id, 8))
			goto fail;
		/* a client's or agency's rows name one of the section's */
		if (!owner || (scope == PS_AGENCY && !policy_agency(p, owner)) ||
			(scope == PS_CLIENT && !policy_client(p, owner)) ||
			(scope != PS_AGENCY && scope != PS_CLIENT && scope != PS_NUMBER)) {
			why = "bad policy row owner";
			goto fail;
		}
		switch (kind) {
		case SR_HOURS:
			if (!rd_get(r, &wd, 1) || !rd_get(r, &a, 4) || !rd_get(r, &b, 4))
				goto fail;
			ok = policy_add_hours(p, scope, owner, id, wd, a, b);
			break;
		case SR_CLOSED:
			if (!rd_get(r, &a, 4))
				goto fail;
			/* days since 1970: years 1900 .. 2400 */
			ok = (int32_t)a > -25567 && (int32_t)a < 157000 &&
			     policy_add_closed(p, scope, owner, id, (int32_t)a);
			break;
		case SR_BLOCKED:
			if (!rd_str(r, &str))
				goto fail;
			ok = policy_add_blocked(p, scope, owner, id, str);
			free(str);
			str = NULL;
			break;
		case SR_SPLIT:
			if (!rd_get(r, &a, 4))
				goto fail;
			ok = scope == PS_NUMBER && id &&
			     (a == 0 ? policy_add_overflow(p, owner, id) :
				       policy_add_split(p, owner, id, a));
			break;
		default:
			break;
		}
		if (!ok) {
			why = "bad policy row";
			goto fail;
		}
	}
	if (!rd_get(r, &n, 4))
		goto fail;
	if (n > r->left / 33) {
		why = "policy figure count out of range";
		goto fail;
	}
	if (n) {
		p->restored = calloc(n, sizeof(*p->restored));
		if (!p->restored) {
			why = "out of memory";
			goto fail;
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		struct policy_figure *f = &p->restored[i];
		uint8_t agency;
		bool ok;

		if (!rd_get(r, &agency, 1) || !rd_get(r, &f->id, 8) ||
			!rd_get(r, &f->in_progress, 4))
			goto fail;
		ok = agency <= 1 && f->id && f->in_progress >= 0;
		for (int m = 0; m < 2; m++) {
			if (!rd_get(r, &f->month[m], 4) || !rd_get(r, &f->amount[m], 8))
				goto fail;
			/* 0: no figure; else year * 12 + month - 1 of years 1970 .. 9999 */
			ok = ok && f->amount[m] >= 0 &&
			     (f->month[m] == 0 ||
				     (f->month[m] >= 1970 * 12 && f->month[m] < 120000));
		}
		f->agency = agency;
		if (!ok || (agency ? !policy_agency(p, f->id) : !policy_client(p, f->id))) {
			why = "bad policy figure";
			goto fail;
		}
		p->n_restored++;
	}
	if (!policy_finish(p)) {
		why = "out of memory";
		goto fail;
	}
	for (uint32_t i = 0; i < nz; i++)
		free(zones[i]);
	free(zones);
	*out = p;
	return NULL;
fail:
	for (uint32_t i = 0; zones && i < nz; i++)
		free(zones[i]);
	free(zones);
	free(str);
	policy_unref(p);
	return why;
}

struct route_policy *
snapshot_policy_rebuild(const struct route_policy *p, int64_t now_s)
{
	struct snap_buf b = { 0 };
	struct route_policy *q = NULL;
	struct snap_rd r;

	sb_policy(&b, p);
	if (!b.failed) {
		r.p = b.p;
		r.left = b.len;
		if (rd_policy(&r, now_s, &q) != NULL || r.left != 0) {
			policy_unref(q);
			q = NULL;
		}
	}
	free(b.p);
	if (q) {
		free(q->restored); /* the live figures stay as they are */
		q->restored = NULL;
		q->n_restored = 0;
	}
	return q;
}

struct routes_snapshot *
snapshot_decode(const unsigned char *buf, size_t len, const char **why)
{
	const char *policy_why;

	return snapshot_decode_policy(buf, len, why, &policy_why);
}

struct routes_snapshot *
snapshot_decode_policy(const unsigned char *buf, size_t len, const char **why,
	const char **policy_why)
{
	struct timespec now;
	bool v2;
	uint8_t has_policy = 0;
	unsigned char md[SHA256_DIGEST_LENGTH];
	struct snap_rd r;
	struct routes_catalog *c = NULL;
	struct routes_snapshot *s = NULL;
	uint64_t gen, at, n_numbers;
	uint32_t n_accounts, n_agents, n_agencies;
	char *s1 = NULL, *s2 = NULL, *s3 = NULL;

	*why = "truncated";
	*policy_why = NULL;
	v2 = len >= 8 && memcmp(buf, SNAP_MAGIC_V2, 8) == 0;
	if (len < 8 + 32 + SHA256_DIGEST_LENGTH || (memcmp(buf, SNAP_MAGIC, 8) != 0 && !v2)) {
		*why = "not a snapshot file of this version";
		return NULL;
	}
	SHA256(buf, len - SHA256_DIGEST_LENGTH, md);
	if (memcmp(md, buf + len - SHA256_DIGEST_LENGTH, SHA256_DIGEST_LENGTH) != 0) {
		*why = "checksum mismatch";
		return NULL;
	}
	r.p = buf + 8;
	r.left = len - 8 - SHA256_DIGEST_LENGTH;
	if (!rd_get(&r, &gen, 8) || !rd_get(&r, &at, 8) || !rd_get(&r, &n_accounts, 4) ||
		!rd_get(&r, &n_agents, 4) || !rd_get(&r, &n_numbers, 8) ||
		!rd_get(&r, &n_agencies, 4))
		return NULL;
	if (n_agencies > r.left / 24) {
		*why = "counts out of range";
		return NULL;
	}
	if (n_agents >= ROUTE_RELEASED || n_numbers > r.left / 24 || n_accounts > r.left / 22 ||
		n_agents > r.left / 37) {
		*why = "counts out of range";
		return NULL;
	}
	c = routes_catalog_new();
	if (!c)
		goto oom;
	for (uint32_t i = 0; i < n_accounts; i++) {
		struct route_account a = { 0 };
		uint8_t prov, auth;

		if (!rd_get(&r, &a.id, 8) || !rd_get(&r, &a.agency_id, 8) ||
			!rd_get(&r, &prov, 1) || !rd_get(&r, &auth, 1) || !rd_str(&r, &s1) ||
			!rd_str(&r, &s2) || !rd_str(&r, &s3))
			goto fail;
		if (prov >= PROVIDER_COUNT || auth > WEBHOOK_AUTH_BEARER || !s1 || !s2) {
			*why = "bad account record";
			goto fail;
		}
		a.provider = prov;
		a.auth = auth;
		a.slug = s1;
		a.api_key = s2;
		a.webhook_secret = s3;
		if (!routes_catalog_add_account(c, &a))
			goto oom;
		free(s1), free(s2), free(s3);
		s1 = s2 = s3 = NULL;
	}
	for (uint32_t i = 0; i < n_agencies; i++) {
		struct route_agency a = { 0 };
		uint32_t ini, inc;

		if (!rd_get(&r, &a.id, 8) || !rd_get(&r, &a.rate_micros_per_min, 8) ||
			!rd_get(&r, &ini, 4) || !rd_get(&r, &inc, 4))
			goto fail;
		if (a.rate_micros_per_min < 0 || ini < 1 || ini > RATING_MAX_INCREMENT_S ||
			inc < 1 || inc > RATING_MAX_INCREMENT_S) {
			*why = "bad agency record";
			goto fail;
		}
		a.billing_initial_s = (int32_t)ini;
		a.billing_increment_s = (int32_t)inc;
		if (!routes_catalog_add_agency(c, &a))
			goto oom;
	}
	for (uint32_t i = 0; i < n_agents; i++) {
		struct route_agent a = { 0 };
		uint8_t prov;

		if (!rd_get(&r, &a.id, 8) || !rd_get(&r, &a.agency_id, 8) ||
			!rd_get(&r, &a.client_id, 8) || !rd_get(&r, &prov, 1) || !rd_str(&r, &s1) ||
			!rd_str(&r, &s2) || !rd_str(&r, &s3))
			goto fail;
		if (prov >= PROVIDER_COUNT || !s1 || !s2) {
			*why = "bad agent record";
			goto fail;
		}
		a.provider = prov;
		a.provider_agent_id = s1;
		a.name = s2;
		a.client_name = s3;
		if (!routes_catalog_add_agent(c, &a))
			goto oom;
		free(s1), free(s2), free(s3);
		s1 = s2 = s3 = NULL;
	}
	if (!routes_catalog_finish(c)) {
		*why = "duplicate account or agent";
		goto fail;
	}
	s = routes_snapshot_new(c, n_numbers);
	if (!s)
		goto oom;
	for (uint64_t i = 0; i < n_numbers; i++) {
		struct route_slot sl;

		if (!rd_get(&r, &sl.key, 8) || !rd_get(&r, &sl.number_id, 8) ||
			!rd_get(&r, &sl.agent_idx, 4) || !rd_get(&r, &sl.account_idx, 4))
			goto fail;
		if (sl.key == 0 || sl.key > 999999999999999ULL || sl.account_idx >= n_accounts ||
			(sl.agent_idx >= n_agents && sl.agent_idx != ROUTE_NONE &&
				sl.agent_idx != ROUTE_RELEASED)) {
			*why = "bad number record";
			goto fail;
		}
		if (!route_table_put(&s->numbers, &sl))
			goto oom;
	}
	if (v2) {
		*policy_why = "a file of the version before policies (" SNAP_MAGIC_V2 ")";
	} else if (!rd_get(&r, &has_policy, 1) || has_policy > 1) {
		goto fail;
	} else if (has_policy) {
		clock_gettime(CLOCK_REALTIME, &now);
		*policy_why = rd_policy(&r, (int64_t)now.tv_sec, &s->policy);
		if (*policy_why)
			r.left = 0; /* the numbers stand; the rest of the section is not read */
	}
	if (r.left != 0) {
		*why = "trailing bytes";
		goto fail;
	}
	routes_catalog_unref(c);
	s->generation = gen;
	s->loaded_at_ms = (int64_t)at;
	s->source = ROUTES_FROM_FILE;
	return s;
oom:
	*why = "out of memory";
fail:
	free(s1), free(s2), free(s3);
	routes_snapshot_free(s);
	routes_catalog_unref(c);
	return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The writer thread: fsync never runs on an event loop.                                       */

static pthread_t snap_thread;
static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t snap_cond = PTHREAD_COND_INITIALIZER;
static unsigned char *snap_pending;
static size_t snap_pending_len;
/* the generation and route_counts_changes() of the last file handed to the writer (pending,
 * being written or written); snap_last false: none, or its write failed */
static uint64_t snap_last_gen, snap_last_changes;
static bool snap_last;
static bool snap_stop, snap_running;
static char *snap_dir;

static bool
snapshot_write_file(const char *dir, const unsigned char *buf, size_t len)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	size_t off = 0;
	int fd, dfd;

	snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_FILE);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, SNAPSHOT_FILE);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("snapshot: could not create \"%s\": %s", tmp, strerror(errno));
		return false;
	}
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("snapshot: could not write \"%s\": %s", tmp, strerror(errno));
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		log_error("snapshot: could not fsync \"%s\": %s", tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		log_error("snapshot: could not rename \"%s\": %s", tmp, strerror(errno));
		unlink(tmp);
		return false;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return true;
fail:
	close(fd);
	unlink(tmp);
	return false;
}

static void *
snapshot_writer(void *arg)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	/* background work: below the webhook workers (Linux: nice applies per thread) */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAP_NICE) != 0) {
		METRICS_INC(thread_priority_failures, 0);
		log_warning("snapshot: could not set the writer thread's nice value to %d: %s",
			SNAP_NICE, strerror(errno));
	}
	pthread_mutex_lock(&snap_lock);
	for (;;) {
		unsigned char *buf;
		size_t len;
		uint64_t gen, changes;
		bool ok;

		while (!snap_pending && !snap_stop)
			pthread_cond_wait(&snap_cond, &snap_lock);
		if (!snap_pending)
			break;
		gen = snap_last_gen;
		changes = snap_last_changes;
		buf = snap_pending;
		len = snap_pending_len;
		snap_pending = NULL;
		pthread_mutex_unlock(&snap_lock);
		ok = snapshot_write_file(snap_dir, buf, len);
		if (ok)
			log_debug("snapshot: wrote %zu bytes to %s/%s", len, snap_dir,
				SNAPSHOT_FILE);
		free(buf);
		pthread_mutex_lock(&snap_lock);
		/* a failed write left the file as it was: the same content is to be saved again */
		if (!ok && snap_last_gen == gen && snap_last_changes == changes)
			snap_last = false;
	}
	pthread_mutex_unlock(&snap_lock);
	return NULL;
}

bool
snapshot_setup(const char *dir)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_error("snapshot: could not create \"%s\": %s", dir, strerror(errno));
		return false;
	}
	snap_dir = strdup(dir);
	if (!snap_dir)
		return false;
	snap_stop = false;
	if (pthread_create(&snap_thread, NULL, snapshot_writer, NULL) != 0) {
		log_error("snapshot: could not start the writer thread");
		free(snap_dir);
		snap_dir = NULL;
		return false;
	}
	snap_running = true;
	return true;
}

void
snapshot_save(const struct routes_snapshot *s)
{
	uint64_t changes = route_counts_changes();
	unsigned char *buf;
	size_t len;
	bool same;

	if (!snap_running)
		return;
	/* the loader and the policy loader each save a while after their publish: a change that
	 * both see (an agency's) would encode and write the whole table twice; the same
	 * generation with the same figures is the same file */
	pthread_mutex_lock(&snap_lock);
	same = snap_last && snap_last_gen == s->generation && snap_last_changes == changes;
	pthread_mutex_unlock(&snap_lock);
	if (same)
		return;
	if (!snapshot_encode(s, &buf, &len)) {
		log_error("snapshot: out of memory encoding generation %llu",
			(unsigned long long)s->generation);
		return;
	}
	pthread_mutex_lock(&snap_lock);
	free(snap_pending); /* an older one nobody wrote yet */
	snap_pending = buf;
	snap_pending_len = len;
	snap_last = true;
	snap_last_gen = s->generation;
	snap_last_changes = changes;
	pthread_cond_signal(&snap_cond);
	pthread_mutex_unlock(&snap_lock);
}

void
snapshot_cleanup(void)
{
	if (!snap_running)
		return;
	pthread_mutex_lock(&snap_lock);
	snap_stop = true;
	pthread_cond_signal(&snap_cond);
	pthread_mutex_unlock(&snap_lock);
	pthread_join(snap_thread, NULL);
	snap_running = false;
	free(snap_dir);
	snap_dir = NULL;
}

struct routes_snapshot *
snapshot_load(const char *dir)
{
	char path[PATH_MAX];
	struct routes_snapshot *s;
	unsigned char *buf = NULL, buf_magic[8] = { 0 };
	struct stat st;
	const char *why, *policy_why;
	size_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			log_info("snapshot: no snapshot file \"%s\"", path);
		else
			log_error("snapshot: could not open \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > ((uint64_t)1 << 34)) {
		log_error("snapshot: \"%s\" has a bad size", path);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		close(fd);
		return NULL;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("snapshot: could not read \"%s\": %s", path,
				n < 0 ? strerror(errno) : "short read");
			close(fd);
			free(buf);
			return NULL;
		}
		off += (size_t)n;
	}
	close(fd);
	memcpy(buf_magic, buf, off < 8 ? off : 8);
	s = snapshot_decode_policy(buf, off, &why, &policy_why);
	free(buf);
	if (!s) {
		log_error("snapshot: ignoring \"%s\": %s", path, why);
	} else if (policy_why && memcmp(buf_magic, SNAP_MAGIC_V2, 8) == 0) {
		log_warning("snapshot: \"%s\" is %s: no routing policies until PostgreSQL is "
			    "reached",
			path, policy_why);
	} else if (policy_why) {
		METRICS_INC(snapshot_policy_refused, 0);
		log_error("snapshot: the policy section of \"%s\" is refused (%s): routing with "
			  "its numbers, without policies, until PostgreSQL is reached",
			path, policy_why);
	} else if (s->policy) {
		log_info(
			"snapshot: policies of %u numbers, %u clients, %u agencies and the figures "
			"of %u of them loaded (offsets re-read from %s)",
			s->policy->n_numbers, s->policy->n_clients, s->policy->n_agencies,
			s->policy->n_restored, TZIF_DIR);
	}
	return s;
}
