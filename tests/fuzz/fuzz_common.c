/* fuzz_common.c: what the fuzz targets share: quiet start-up, a route snapshot, a config. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "callrouted/log.h"

static struct routes_snapshot *fz_snap[PROVIDER_COUNT];
static struct config fz_cfg;

void
fuzz_setup(void)
{
	int fd;

	if (!getenv("CALLROUTED_FUZZ_LOG"))
		log_set_level(-1); /* below LOG_LEVEL_ERROR: nothing is printed */
	signal(SIGPIPE, SIG_IGN);
	/* a config's database_url_file = /dev/stdin must not wait for a terminal */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
	unsetenv("CREDENTIALS_DIRECTORY");
}

void
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz: property broken: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

char *
fuzz_strndup(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	if (n)
		memcpy(s, p, n);
	s[n] = 0;
	return s;
}

bool
fuzz_take(const uint8_t **data, size_t *size, uint8_t sep, const uint8_t **field, size_t *flen)
{
	const uint8_t *e = *size ? memchr(*data, sep, *size) : NULL;

	*field = *data;
	if (!e) {
		*flen = *size;
		*data += *size;
		*size = 0;
		return false;
	}
	*flen = (size_t)(e - *data);
	*size -= *flen + 1;
	*data = e + 1;
	return true;
}

/* ------------------------------------------------------------------------------------------ */

#define FZ_AGENCY 1
#define FZ_OTHER_AGENCY 2

static const struct route_account fz_accounts[] = {
	{ .id = 1,
		.agency_id = FZ_AGENCY,
		.provider = PROVIDER_RETELL,
		.slug = "acme-retell",
		.api_key = "test-api-key" },
	{ .id = 2,
		.agency_id = FZ_AGENCY,
		.provider = PROVIDER_VAPI,
		.slug = "acme-vapi",
		.api_key = "vapi-api-key",
		.webhook_secret = "vapi-test-secret" },
	{ .id = 3,
		.agency_id = FZ_AGENCY,
		.provider = PROVIDER_VAPI,
		.auth = WEBHOOK_AUTH_BEARER,
		.slug = "acme-vapi-bearer",
		.api_key = "vapi-api-key",
		.webhook_secret = "vapi-bearer-secret" },
	{ .id = 4,
		.agency_id = FZ_AGENCY,
		.provider = PROVIDER_BLAND,
		.slug = "acme",
		.api_key = "bland-api-key",
		.webhook_secret = "bland-test-secret" },
	{ .id = 5,
		.agency_id = FZ_OTHER_AGENCY,
		.provider = PROVIDER_RETELL,
		.slug = "other",
		.api_key = "other-key" },
};

/* agents 10.. are the providers' own (index = provider) */
static const struct route_agent fz_agents[] = {
	{ .id = 10,
		.agency_id = FZ_AGENCY,
		.client_id = 7,
		.provider = PROVIDER_RETELL,
		.provider_agent_id = "agent_abc123",
		.name = "Rita",
		.client_name = "Acme \"Dental\"" },
	{ .id = 11,
		.agency_id = FZ_AGENCY,
		.provider = PROVIDER_VAPI,
		.provider_agent_id = "asst_5c2b",
		.name = "Val\n" },
	{ .id = 12,
		.agency_id = FZ_AGENCY,
		.client_id = 8,
		.provider = PROVIDER_BLAND,
		.provider_agent_id = "b71c4c5c-33e3-496b-a5f4-91b7e8e6a931",
		.name = "Bea",
		.client_name = "Acme" },
	{ .id = 13,
		.agency_id = FZ_OTHER_AGENCY,
		.provider = PROVIDER_RETELL,
		.provider_agent_id = "agent_default01",
		.name = "Other" },
};

static const struct route_agency fz_agencies[] = {
	{ .id = FZ_AGENCY,
		.rate_micros_per_min = 150000,
		.billing_initial_s = 60,
		.billing_increment_s = 6 },
	{ .id = FZ_OTHER_AGENCY,
		.rate_micros_per_min = 100000000,
		.billing_initial_s = 1,
		.billing_increment_s = 1 },
};

static void
fz_put(struct routes_snapshot *s, uint64_t key, uint64_t account_id, uint32_t agent_idx)
{
	struct route_slot sl = { .key = key,
		.number_id = key % 100000,
		.account_idx = routes_catalog_account_idx(s->catalog, account_id),
		.agent_idx = agent_idx };

	if (!route_table_put(&s->numbers, &sl))
		abort();
}

static void
fz_build(void)
{
	struct routes_catalog *c = routes_catalog_new();
	static const uint64_t acct_of[PROVIDER_COUNT] = { 1, 2, 4 };

	if (!c)
		abort();
	for (size_t i = 0; i < sizeof(fz_accounts) / sizeof(fz_accounts[0]); i++)
		if (!routes_catalog_add_account(c, &fz_accounts[i]))
			abort();
	for (size_t i = 0; i < sizeof(fz_agents) / sizeof(fz_agents[0]); i++)
		if (!routes_catalog_add_agent(c, &fz_agents[i]))
			abort();
	for (size_t i = 0; i < sizeof(fz_agencies) / sizeof(fz_agencies[0]); i++)
		if (!routes_catalog_add_agency(c, &fz_agencies[i]))
			abort();
	if (!routes_catalog_finish(c))
		abort();
	for (int p = 0; p < PROVIDER_COUNT; p++) {
		struct routes_snapshot *s = routes_snapshot_new(c, 16);
		uint32_t agent = routes_catalog_agent_idx(c, 10 + (uint64_t)p);

		if (!s)
			abort();
		s->generation = 1 + (uint64_t)p;
		fz_put(s, 14155559876ULL, acct_of[p], agent);
		fz_put(s, 14155550199ULL, acct_of[p], agent);
		fz_put(s, 14155550188ULL, acct_of[p], ROUTE_NONE);
		fz_put(s, 14155550123ULL, acct_of[p], ROUTE_RELEASED);
		fz_put(s, 14155550100ULL, 5, routes_catalog_agent_idx(c, 13));
		fz_snap[p] = s;
	}
	routes_catalog_unref(c);
}

const struct routes_snapshot *
fuzz_snapshot(enum provider_id p)
{
	if (!fz_snap[0])
		fz_build();
	return fz_snap[p < PROVIDER_COUNT ? p : 0];
}

const struct route_account *
fuzz_account(enum provider_id p, bool bearer)
{
	static const char *const slugs[PROVIDER_COUNT] = { "acme-retell", "acme-vapi", "acme" };
	const struct routes_snapshot *s = fuzz_snapshot(p);
	const char *slug = p == PROVIDER_VAPI && bearer ? "acme-vapi-bearer" : slugs[p];

	return routes_catalog_account(s->catalog, slug, strlen(slug));
}

const struct config *
fuzz_config(void)
{
	static char msg[] = "Sorry, this number is not in service.";

	fz_cfg.max_body_bytes = 1 << 20;
	fz_cfg.max_header_bytes = 65536;
	fz_cfg.signature_tolerance_ms = 300000;
	fz_cfg.vapi_no_agent_message = msg;
	return &fz_cfg;
}
