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
#include <unistd.h>

#include <openssl/sha.h>

#include "callrouted/log.h"
#include "metrics.h"
#include "callrouted/rating.h"
#include "snapshot.h"

/*
 * File format (little endian as written by this host; the magic names the byte order):
 *   "CRSNAP02"  u64 generation  i64 loaded_at_ms  u32 n_accounts  u32 n_agents  u64 n_numbers
 *   u32 n_agencies
 *   accounts: u64 id, u64 agency_id, u8 provider, u8 auth, str slug, str api_key, str secret
 *   agencies: u64 id, i64 rate_micros_per_min, i32 billing_initial_s, i32 billing_increment_s
 *   agents:   u64 id, u64 agency_id, u64 client_id, u8 provider, str agent_id, str name, str client
 *   numbers:  u64 key, u64 number_id, u32 agent_idx, u32 account_idx
 *   SHA-256 of all the above
 * str = u32 length (UINT32_MAX = NULL) + bytes.  Indices refer to the catalog in its sorted
 * order, which decoding rebuilds.  The file holds provider secrets: mode 0600.
 */
#define SNAP_MAGIC "CRSNAP02"
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

struct routes_snapshot *
snapshot_decode(const unsigned char *buf, size_t len, const char **why)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	struct snap_rd r;
	struct routes_catalog *c = NULL;
	struct routes_snapshot *s = NULL;
	uint64_t gen, at, n_numbers;
	uint32_t n_accounts, n_agents, n_agencies;
	char *s1 = NULL, *s2 = NULL, *s3 = NULL;

	*why = "truncated";
	if (len < 8 + 32 + SHA256_DIGEST_LENGTH || memcmp(buf, SNAP_MAGIC, 8) != 0) {
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

		while (!snap_pending && !snap_stop)
			pthread_cond_wait(&snap_cond, &snap_lock);
		if (!snap_pending)
			break;
		buf = snap_pending;
		len = snap_pending_len;
		snap_pending = NULL;
		pthread_mutex_unlock(&snap_lock);
		if (snapshot_write_file(snap_dir, buf, len))
			log_debug("snapshot: wrote %zu bytes to %s/%s", len, snap_dir,
				SNAPSHOT_FILE);
		free(buf);
		pthread_mutex_lock(&snap_lock);
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
	unsigned char *buf;
	size_t len;

	if (!snap_running)
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
	unsigned char *buf = NULL;
	struct stat st;
	const char *why;
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
	s = snapshot_decode(buf, off, &why);
	free(buf);
	if (!s)
		log_error("snapshot: ignoring \"%s\": %s", path, why);
	return s;
}
