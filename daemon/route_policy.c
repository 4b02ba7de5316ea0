/* route_policy.c: the routing policies of a snapshot: building, zones' offsets, look-ups. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "callrouted/rating.h"
#include "mix64.h"
#include "route_policy.h"

#define POLICY_WINDOW_S (2LL * 366 * 86400) /* offsets exact from 2 years before to 2 after */
#define POLICY_NONE UINT32_MAX

const char *
policy_scope_name(enum policy_scope s)
{
	switch (s) {
	case PS_NUMBER:
		return "number";
	case PS_CLIENT:
		return "client";
	case PS_AGENCY:
		return "agency";
	default:
		return "none";
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Building                                                                                    */

enum row_kind { ROW_HOURS, ROW_CLOSED, ROW_BLOCKED, ROW_SPLIT };

struct policy_row {
	uint8_t kind;  /* enum row_kind */
	uint8_t scope; /* enum policy_scope */
	uint64_t owner;
	union {
		struct policy_hours h;
		struct policy_closed c;
		struct policy_block b;
		struct policy_split s;
	} u;
};

struct route_policy *
policy_new(int64_t now_s)
{
	struct route_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	atomic_init(&p->refs, 1);
	p->window_from = now_s - POLICY_WINDOW_S;
	p->window_to = now_s + POLICY_WINDOW_S;
	return p;
}

void
policy_ref(struct route_policy *p)
{
	atomic_fetch_add(&p->refs, 1);
}

void
policy_unref(struct route_policy *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	free(p->trs);
	free(p->zones);
	free(p->names);
	free(p->accounts);
	free(p->agencies);
	free(p->clients);
	free(p->numbers);
	free(p->number_hash);
	free(p->hours);
	free(p->closed);
	free(p->blocked);
	free(p->splits);
	free(p->rows);
	free(p->restored);
	free(p);
}

static bool
policy_grow(void **arr, uint32_t *cap, uint32_t n, size_t size)
{
	void *q;
	uint32_t c;

	if (n < *cap)
		return true;
	if (*cap >= UINT32_MAX / 4)
		return false;
	c = *cap ? *cap * 2 : 16;
	q = realloc(*arr, (size_t)c * size);
	if (!q)
		return false;
	*arr = q;
	*cap = c;
	return true;
}

/* Copy s into the names arena: its offset, or UINT32_MAX on allocation failure. */
static uint32_t
policy_name(struct route_policy *p, const char *s)
{
	size_t len = strlen(s) + 1;
	uint32_t off;

	if (p->names_len + len > p->names_cap) {
		size_t cap = p->names_cap ? p->names_cap * 2 : 1024;
		char *q;

		while (cap < p->names_len + len)
			cap *= 2;
		q = realloc(p->names, cap);
		if (!q)
			return UINT32_MAX;
		p->names = q;
		p->names_cap = cap;
	}
	memcpy(p->names + p->names_len, s, len);
	off = (uint32_t)p->names_len;
	p->names_len += len;
	return off;
}

bool
policy_add_refusal_agent(struct route_policy *p, uint64_t account_id, const char *agent)
{
	uint32_t off;

	if (!agent || !*agent || strlen(agent) > 128 ||
		!policy_grow((void **)&p->accounts, &p->cap_accounts, p->n_accounts,
			sizeof(*p->accounts)))
		return false;
	off = policy_name(p, agent);
	if (off == UINT32_MAX)
		return false;
	p->accounts[p->n_accounts].id = account_id;
	p->accounts[p->n_accounts].refusal = off;
	p->n_accounts++;
	return true;
}

/* The element whose id is id in an array of n elements of size bytes sorted by id, each
 * starting with its uint64_t id (the accounts, agencies and clients); NULL if none. */
static const void *
policy_find_id(const void *base, uint32_t n, size_t size, uint64_t id)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *e = (const char *)base + (size_t)mid * size;
		uint64_t v;

		memcpy(&v, e, sizeof(v));
		if (v == id)
			return e;
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

_Static_assert(offsetof(struct policy_account, id) == 0, "policy_find_id: id first");
_Static_assert(offsetof(struct policy_agency, id) == 0, "policy_find_id: id first");
_Static_assert(offsetof(struct policy_client, id) == 0, "policy_find_id: id first");

const char *
policy_refusal_agent(const struct route_policy *p, uint64_t account_id)
{
	const struct policy_account *a =
		policy_find_id(p->accounts, p->n_accounts, sizeof(*p->accounts), account_id);

	return a ? p->names + a->refusal : NULL;
}

/* The zone named tz (added with its offsets on first use). */
static bool
policy_zone_idx(struct route_policy *p, const char *tz, uint32_t *out)
{
	struct tz_transition tr[TZIF_MAX_TRANSITIONS];
	struct policy_zone *z;
	size_t n = 0;
	uint32_t name;
	int32_t off0 = 0;

	if (!tz || !*tz)
		tz = "UTC";
	for (uint32_t i = 0; i < p->n_zones; i++)
		if (strcmp(p->names + p->zones[i].name, tz) == 0) {
			*out = i;
			return true;
		}
	if (!tzif_name_valid(tz))
		return false;
	if (!tzif_load(tz, p->window_from, p->window_to, &off0, tr, TZIF_MAX_TRANSITIONS, &n)) {
		/* the database knows it (its CHECK) but this machine's tzdata does not: UTC */
		p->zone_failures++;
		off0 = 0;
		n = 0;
	}
	if (!policy_grow((void **)&p->zones, &p->cap_zones, p->n_zones, sizeof(*p->zones)))
		return false;
	while (p->n_trs + n > p->cap_trs)
		if (!policy_grow((void **)&p->trs, &p->cap_trs, p->cap_trs, sizeof(*p->trs)))
			return false;
	name = policy_name(p, tz);
	if (name == UINT32_MAX)
		return false;
	z = &p->zones[p->n_zones];
	z->name = name;
	z->first = p->n_trs;
	z->n = (uint32_t)n;
	z->off0 = off0;
	if (n) /* UTC and fixed zones have none (and p->trs may still be NULL) */
		memcpy(p->trs + p->n_trs, tr, n * sizeof(*tr));
	p->n_trs += (uint32_t)n;
	*out = p->n_zones++;
	return true;
}

bool
policy_add_agency(struct route_policy *p, uint64_t id, const char *tz, int64_t cap)
{
	struct policy_agency *a;
	uint32_t zone;

	if (!policy_zone_idx(p, tz, &zone) || !policy_grow((void **)&p->agencies, &p->cap_agencies,
						      p->n_agencies, sizeof(*p->agencies)))
		return false;
	a = &p->agencies[p->n_agencies++];
	memset(a, 0, sizeof(*a));
	a->id = id;
	a->zone = zone;
	a->cap_micros = cap < 0 ? POLICY_NO_CAP : cap;
	return true;
}

bool
policy_add_client(struct route_policy *p, uint64_t id, uint64_t agency_id, const char *tz,
	int32_t max_concurrent, int32_t reserved_inbound, int64_t cap)
{
	struct policy_client *c;
	uint32_t zone;

	if (!policy_zone_idx(p, tz, &zone) || !policy_grow((void **)&p->clients, &p->cap_clients,
						      p->n_clients, sizeof(*p->clients)))
		return false;
	c = &p->clients[p->n_clients++];
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->agency_id = agency_id;
	c->zone = zone;
	c->max_concurrent = max_concurrent > 0 ? max_concurrent : 0;
	c->reserved_inbound = reserved_inbound > 0 ? reserved_inbound : 0;
	c->cap_micros = cap < 0 ? POLICY_NO_CAP : cap;
	return true;
}

static struct policy_row *
policy_row(struct route_policy *p, enum row_kind kind, enum policy_scope scope, uint64_t owner)
{
	struct policy_row *r;

	if (p->n_rows == p->cap_rows) {
		size_t cap = p->cap_rows ? p->cap_rows * 2 : 256;
		struct policy_row *q = realloc(p->rows, cap * sizeof(*q));

		if (!q)
			return NULL;
		p->rows = q;
		p->cap_rows = cap;
	}
	r = &p->rows[p->n_rows++];
	memset(r, 0, sizeof(*r));
	r->kind = (uint8_t)kind;
	r->scope = (uint8_t)scope;
	r->owner = owner;
	return r;
}

bool
policy_add_overflow(struct route_policy *p, uint64_t number_id, uint64_t agent_id)
{
	/* a split row of weight 0 carries the overflow agent to finish() */
	struct policy_row *r = policy_row(p, ROW_SPLIT, PS_NUMBER, number_id);

	if (!r)
		return false;
	r->u.s.agent_id = agent_id;
	r->u.s.weight = 0;
	return true;
}

bool
policy_add_hours(struct route_policy *p, enum policy_scope scope, uint64_t owner, uint64_t id,
	int weekday, uint32_t opens_s, uint32_t closes_s)
{
	struct policy_row *r;

	if (weekday < 1 || weekday > 7 || opens_s >= closes_s || closes_s > 86400 ||
		(scope != PS_NUMBER && scope != PS_CLIENT))
		return false;
	r = policy_row(p, ROW_HOURS, scope, owner);
	if (!r)
		return false;
	r->u.h.id = id;
	r->u.h.weekday = (uint8_t)weekday;
	r->u.h.opens = opens_s;
	r->u.h.closes = closes_s;
	return true;
}

bool
policy_add_closed(struct route_policy *p, enum policy_scope scope, uint64_t owner, uint64_t id,
	int32_t day)
{
	struct policy_row *r = policy_row(p, ROW_CLOSED, scope, owner);

	if (!r)
		return false;
	r->u.c.id = id;
	r->u.c.day = day;
	return true;
}

bool
policy_add_blocked(struct route_policy *p, enum policy_scope scope, uint64_t owner, uint64_t id,
	const char *prefix)
{
	size_t n = prefix ? strlen(prefix) : 0;
	struct policy_row *r;

	if (n < 2 || n > 16 || prefix[0] != '+')
		return false;
	for (size_t i = 1; i < n; i++)
		if (prefix[i] < '0' || prefix[i] > '9')
			return false;
	r = policy_row(p, ROW_BLOCKED, scope, owner);
	if (!r)
		return false;
	r->u.b.id = id;
	r->u.b.len = (uint8_t)(n - 1);
	memcpy(r->u.b.digits, prefix + 1, n - 1);
	return true;
}

bool
policy_add_split(struct route_policy *p, uint64_t number_id, uint64_t agent_id, uint32_t weight)
{
	struct policy_row *r;

	if (weight < 1 || weight > 1000 || agent_id == 0)
		return false;
	r = policy_row(p, ROW_SPLIT, PS_NUMBER, number_id);
	if (!r)
		return false;
	r->u.s.agent_id = agent_id;
	r->u.s.weight = weight;
	return true;
}

static uint64_t
row_id(const struct policy_row *r)
{
	switch (r->kind) {
	case ROW_HOURS:
		return r->u.h.id;
	case ROW_CLOSED:
		return r->u.c.id;
	case ROW_BLOCKED:
		return r->u.b.id;
	default:
		return r->u.s.agent_id;
	}
}

/* by scope, owner, kind, then a stable order (hours by weekday and time, days by day) */
static int
row_cmp(const void *a, const void *b)
{
	const struct policy_row *x = a, *y = b;
	uint64_t u, v;

	if (x->scope != y->scope)
		return x->scope < y->scope ? -1 : 1;
	if (x->owner != y->owner)
		return x->owner < y->owner ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->kind == ROW_HOURS) {
		u = (uint64_t)x->u.h.weekday << 40 | (uint64_t)x->u.h.opens << 20 | x->u.h.closes;
		v = (uint64_t)y->u.h.weekday << 40 | (uint64_t)y->u.h.opens << 20 | y->u.h.closes;
		if (u != v)
			return u < v ? -1 : 1;
	} else if (x->kind == ROW_CLOSED && x->u.c.day != y->u.c.day) {
		return x->u.c.day < y->u.c.day ? -1 : 1;
	}
	u = row_id(x);
	v = row_id(y);
	return u < v ? -1 : u > v;
}

static int
agency_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct policy_agency *)a)->id,
		 y = ((const struct policy_agency *)b)->id;

	return x < y ? -1 : x > y;
}

static int
account_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct policy_account *)a)->id,
		 y = ((const struct policy_account *)b)->id;

	return x < y ? -1 : x > y;
}

static int
client_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct policy_client *)a)->id,
		 y = ((const struct policy_client *)b)->id;

	return x < y ? -1 : x > y;
}

static struct policy_rules *
policy_owner_rules(struct route_policy *p, enum policy_scope scope, uint64_t owner,
	struct policy_number **num)
{
	*num = NULL;
	if (scope == PS_AGENCY) {
		struct policy_agency *a = (struct policy_agency *)policy_agency(p, owner);

		return a ? &a->rules : NULL;
	}
	if (scope == PS_CLIENT) {
		struct policy_client *c = (struct policy_client *)policy_client(p, owner);

		return c ? &c->rules : NULL;
	}
	if (p->n_numbers == 0 || p->numbers[p->n_numbers - 1].number_id != owner) {
		struct policy_number *n;

		if (!policy_grow((void **)&p->numbers, &p->cap_numbers, p->n_numbers,
			    sizeof(*p->numbers)))
			return NULL;
		n = &p->numbers[p->n_numbers++];
		memset(n, 0, sizeof(*n));
		n->number_id = owner;
	}
	*num = &p->numbers[p->n_numbers - 1];
	return &(*num)->rules;
}

bool
policy_finish(struct route_policy *p)
{
	uint32_t nh = 0, nc = 0, nb = 0, ns = 0, cap;

	if (p->n_agencies)
		qsort(p->agencies, p->n_agencies, sizeof(*p->agencies), agency_cmp);
	if (p->n_clients)
		qsort(p->clients, p->n_clients, sizeof(*p->clients), client_cmp);
	if (p->n_accounts)
		qsort(p->accounts, p->n_accounts, sizeof(*p->accounts), account_cmp);
	if (p->n_rows)
		qsort(p->rows, p->n_rows, sizeof(*p->rows), row_cmp);
	for (size_t i = 0; i < p->n_rows; i++) {
		switch (p->rows[i].kind) {
		case ROW_HOURS:
			nh++;
			break;
		case ROW_CLOSED:
			nc++;
			break;
		case ROW_BLOCKED:
			nb++;
			break;
		default:
			ns++;
		}
	}
	p->hours = malloc(((size_t)nh + 1) * sizeof(*p->hours));
	p->closed = malloc(((size_t)nc + 1) * sizeof(*p->closed));
	p->blocked = malloc(((size_t)nb + 1) * sizeof(*p->blocked));
	p->splits = malloc(((size_t)ns + 1) * sizeof(*p->splits));
	if (!p->hours || !p->closed || !p->blocked || !p->splits)
		return false;
	/* rows are grouped by owner: each group is a range; number owners come in id order */
	for (size_t i = 0; i < p->n_rows; i++) {
		const struct policy_row *r = &p->rows[i];
		struct policy_number *num;
		struct policy_rules *rules = policy_owner_rules(p, r->scope, r->owner, &num);
		struct policy_range *rg;

		if (!rules) {
			if (r->scope != PS_NUMBER)
				continue; /* an owner we do not know (the row's client is gone) */
			return false;
		}
		switch (r->kind) {
		case ROW_HOURS:
			rg = &rules->hours;
			if (!rg->n)
				rg->first = p->n_hours;
			p->hours[p->n_hours++] = r->u.h;
			rg->n++;
			break;
		case ROW_CLOSED:
			rg = &rules->closed;
			if (!rg->n)
				rg->first = p->n_closed;
			p->closed[p->n_closed++] = r->u.c;
			rg->n++;
			break;
		case ROW_BLOCKED:
			rg = &rules->blocked;
			if (!rg->n)
				rg->first = p->n_blocked;
			p->blocked[p->n_blocked++] = r->u.b;
			rg->n++;
			break;
		default:
			if (!num)
				break;
			if (r->u.s.weight == 0) {
				num->overflow_agent_id = r->u.s.agent_id;
				break;
			}
			if (!num->splits.n)
				num->splits.first = p->n_splits;
			p->splits[p->n_splits++] = r->u.s;
			num->splits.n++;
			num->total_weight += r->u.s.weight;
		}
	}
	free(p->rows);
	p->rows = NULL;
	p->n_rows = p->cap_rows = 0;
	for (cap = 16; cap < p->n_numbers * 2u; cap *= 2)
		;
	p->number_hash = malloc((size_t)cap * sizeof(*p->number_hash));
	if (!p->number_hash)
		return false;
	memset(p->number_hash, 0xff, (size_t)cap * sizeof(*p->number_hash));
	p->number_mask = cap - 1;
	for (uint32_t i = 0; i < p->n_numbers; i++) {
		uint32_t h = (uint32_t)mix64(p->numbers[i].number_id) & p->number_mask;

		while (p->number_hash[h] != POLICY_NONE)
			h = (h + 1) & p->number_mask;
		p->number_hash[h] = i;
	}
	return true;
}

size_t
policy_bytes(const struct route_policy *p)
{
	if (!p)
		return 0;
	return sizeof(*p) + (size_t)p->n_trs * sizeof(*p->trs) +
	       (size_t)p->n_zones * sizeof(*p->zones) + p->names_len +
	       (size_t)p->n_accounts * sizeof(*p->accounts) +
	       (size_t)p->n_agencies * sizeof(*p->agencies) +
	       (size_t)p->n_clients * sizeof(*p->clients) +
	       (size_t)p->n_numbers * sizeof(*p->numbers) +
	       ((size_t)p->number_mask + 1) * sizeof(uint32_t) +
	       (size_t)p->n_hours * sizeof(*p->hours) + (size_t)p->n_closed * sizeof(*p->closed) +
	       (size_t)p->n_blocked * sizeof(*p->blocked) +
	       (size_t)p->n_splits * sizeof(*p->splits);
}

/* ------------------------------------------------------------------------------------------ */
/* Look-ups                                                                                    */

const struct policy_client *
policy_client(const struct route_policy *p, uint64_t id)
{
	return policy_find_id(p->clients, p->n_clients, sizeof(*p->clients), id);
}

const struct policy_agency *
policy_agency(const struct route_policy *p, uint64_t id)
{
	return policy_find_id(p->agencies, p->n_agencies, sizeof(*p->agencies), id);
}

const struct policy_number *
policy_number(const struct route_policy *p, uint64_t number_id)
{
	uint32_t h;

	if (!p->number_hash || p->n_numbers == 0)
		return NULL;
	h = (uint32_t)mix64(number_id) & p->number_mask;
	for (;;) {
		uint32_t i = p->number_hash[h];

		if (i == POLICY_NONE)
			return NULL;
		if (p->numbers[i].number_id == number_id)
			return &p->numbers[i];
		h = (h + 1) & p->number_mask;
	}
}

const char *
policy_zone_name(const struct route_policy *p, uint32_t zone)
{
	return zone < p->n_zones ? p->names + p->zones[zone].name : "UTC";
}

int32_t
policy_zone_offset(const struct route_policy *p, uint32_t zone, int64_t t)
{
	const struct policy_zone *z;
	int32_t off;

	if (zone >= p->n_zones)
		return 0;
	z = &p->zones[zone];
	off = z->off0;
	for (uint32_t i = 0; i < z->n && p->trs[z->first + i].at <= t; i++)
		off = p->trs[z->first + i].off;
	return off;
}

static int64_t
policy_floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int32_t
policy_month_key(const struct route_policy *p, uint32_t zone, int64_t t)
{
	int32_t y, m, d;

	tzif_civil(policy_floor_div(t + policy_zone_offset(p, zone, t), 86400), &y, &m, &d);
	return y * 12 + m - 1;
}

int64_t
policy_max_duration_s(int64_t remaining, int64_t rate, int32_t initial, int32_t inc)
{
	int64_t b, amt;

	if (rate <= 0)
		return -1;
	if (initial < 1)
		initial = 1;
	if (inc < 1)
		inc = 1;
	if (remaining < 0)
		remaining = 0;
	/* amount(b) = ceil(b * rate / 60) <= remaining  <=>  b * rate <= remaining * 60 */
	if (remaining > INT64_MAX / 60)
		remaining = INT64_MAX / 60;
	b = remaining * 60 / rate;
	if (b > RATING_MAX_DURATION_MS / 1000)
		b = RATING_MAX_DURATION_MS / 1000;
	/* whole billing steps: a call longer than b would be billed past it */
	if (b < initial)
		b = 0;
	else
		b = initial + (b - initial) / inc * inc;
	while (b > 0 && (!rating_amount_micros(b, rate, &amt) || amt > remaining))
		b = b - inc >= initial ? b - inc : 0;
	return b < inc ? inc : b;
}
