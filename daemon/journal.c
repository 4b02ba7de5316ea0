/* journal.c: the durable local journal: group-commit writer thread, replay, drain cursor. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "journal.h"
#include "callrouted/progress_log.h"
#include "callrouted/log.h"
#include "metrics.h"

#define JOURNAL_DIR "journal"
#define JOURNAL_QUARANTINE "quarantine"
#define JOURNAL_SEGMENT_BYTES (64u << 20)
#define JOURNAL_HDR 16
#define JOURNAL_PROBE_S 1            /* seconds between writability probes while failing */
#define JOURNAL_PROBE_BYTES 4096     /* space a probe reserves (FALLOC_FL_KEEP_SIZE) */
#define JOURNAL_SEQ_MAX (1ULL << 62) /* far beyond any real journal; no overflow near it */

/* ------------------------------------------------------------------------------------------ */
/* CRC-32C (Castagnoli), table driven                                                         */

static uint32_t crc_table[256];

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t
crc32c(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;

	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint32_t
journal_crc(uint64_t seq, const void *payload, size_t len)
{
	return crc32c(crc32c(0, &seq, 8), payload, len);
}

/* ------------------------------------------------------------------------------------------ */

struct journal_item {
	struct journal_item *next;
	struct journal_waiter *w;
	void *arg;
	bool ok;
	size_t len;
	unsigned char payload[];
};

struct journal_waiter {
	pthread_mutex_t lock;
	struct journal_item *head, *tail;
	struct event *ev;
	journal_done_fn done;
};

struct journal_segment {
	uint64_t first_seq;
	uint64_t last_seq; /* last durable record (0: none yet) */
	uint64_t end;      /* bytes of durable, valid records */
	bool closed;       /* no more appends */
};

/* A segment found at replay: read through the index of its valid records (jn.rrecs). */
struct journal_rseg {
	uint64_t name;             /* the first sequence number its file name says */
	uint64_t min_seq, max_seq; /* of its valid records (0: none) */
	uint64_t size;
	bool damaged; /* moved to quarantine/ (not removed) once drained */
	bool gone;    /* removed or moved */
	bool stuck;   /* a move failed (logged): tried again at the next start */
};

/* A valid record found at replay; jn.rrecs is sorted by seq, one entry per seq. */
struct journal_rrec {
	uint64_t seq;
	uint32_t seg; /* index in jn.rsegs */
	uint64_t off;
};

static struct {
	char dir[PATH_MAX];
	bool running;
	pthread_t thread;

	/* the append queue */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct journal_item *qhead, *qtail;
	bool stop;
	bool writing; /* the writer holds a group */

	/* writer thread only */
	int fd;
	uint64_t next_seq;
	unsigned char *wbuf;
	size_t wcap;

	/* segments: writer appends and extends, reader reads and recycles */
	pthread_mutex_t slock;
	struct journal_segment *segs;
	size_t nsegs, capsegs;
	uint64_t durable_seq;
	uint64_t pending;    /* durable records after the checkpoint */
	uint64_t checkpoint; /* written by the reader under slock */

	/* replayed segments, read first (reader and checkpoint: db thread; stats under slock) */
	struct journal_rseg *rsegs;
	size_t nrsegs;
	struct journal_rrec *rrecs;
	size_t nrrecs, caprrecs;
	size_t r_pos;        /* next entry of rrecs to read */
	uint64_t replay_max; /* the last valid record found at replay */

	/* reader (db thread) */
	size_t r_idx; /* segment (of segs, written since the start) being read */
	uint64_t r_off;
	int r_fd;
	uint64_t r_fd_seq; /* name of the segment r_fd is open on */
	bool cp_failing;   /* the last checkpoint write failed (logged once) */
	unsigned char *rbuf;

	void (*hook)(void *);
	void *hook_arg;

	atomic_uint_fast64_t appends, append_failures, fsyncs, torn, bytes;
	atomic_uint_fast64_t corrupt, quarantined, quarantine_failures;
	atomic_uint_fast64_t checkpoint_resets, checkpoint_failures;
	atomic_bool failing;
} jn = { .fd = -1, .r_fd = -1 };

static pthread_mutex_t jn_init_lock = PTHREAD_MUTEX_INITIALIZER;

static void
journal_seg_path(char *buf, size_t size, uint64_t first_seq)
{
	snprintf(buf, size, "%s/%016" PRIx64 ".jnl", jn.dir, first_seq);
}

/* ------------------------------------------------------------------------------------------ */
/* Waiters                                                                                     */

static void
journal_waiter_cb(evutil_socket_t fd, short what, void *arg)
{
	struct journal_waiter *w = arg;
	struct journal_item *it, *next;

	pthread_mutex_lock(&w->lock);
	it = w->head;
	w->head = w->tail = NULL;
	pthread_mutex_unlock(&w->lock);
	for (; it; it = next) {
		next = it->next;
		w->done(it->arg, it->ok);
		free(it);
	}
}

struct journal_waiter *
journal_waiter_new(struct event_base *base, journal_done_fn done)
{
	struct journal_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	w->done = done;
	w->ev = event_new(base, -1, 0, journal_waiter_cb, w);
	if (!w->ev) {
		free(w);
		return NULL;
	}
	return w;
}

void
journal_waiter_free(struct journal_waiter *w)
{
	if (!w)
		return;
	/* complete what is left so no caller waits forever */
	journal_waiter_cb(-1, 0, w);
	event_free(w->ev);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static void
journal_complete(struct journal_item *list, bool ok)
{
	struct journal_item *it, *next;

	for (it = list; it; it = next) {
		struct journal_waiter *w = it->w;

		next = it->next;
		it->ok = ok;
		it->next = NULL;
		pthread_mutex_lock(&w->lock);
		if (w->tail)
			w->tail->next = it;
		else
			w->head = it;
		w->tail = it;
		pthread_mutex_unlock(&w->lock);
		event_active(w->ev, EV_TIMEOUT, 0);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Writer thread                                                                               */

/* quiet: the writability probe's attempts (logged by the probe, not each time) */
static bool
journal_open_segment(bool quiet)
{
	char path[PATH_MAX + 32];
	struct journal_segment *s;
	int dfd;

	journal_seg_path(path, sizeof(path), jn.next_seq);
	jn.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (jn.fd < 0) {
		if (!quiet)
			log_error("journal: could not create \"%s\": %s", path, strerror(errno));
		return false;
	}
	dfd = open(jn.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		if (!quiet)
			log_error("journal: could not fsync \"%s\": %s", jn.dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		close(jn.fd);
		jn.fd = -1;
		unlink(path);
		return false;
	}
	close(dfd);
	pthread_mutex_lock(&jn.slock);
	if (jn.nsegs == jn.capsegs) {
		size_t cap = jn.capsegs ? jn.capsegs * 2 : 16;
		struct journal_segment *p = realloc(jn.segs, cap * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&jn.slock);
			close(jn.fd);
			jn.fd = -1;
			unlink(path);
			return false;
		}
		jn.segs = p;
		jn.capsegs = cap;
	}
	s = &jn.segs[jn.nsegs++];
	memset(s, 0, sizeof(*s));
	s->first_seq = jn.next_seq;
	pthread_mutex_unlock(&jn.slock);
	log_debug("journal: new segment \"%s\"", path);
	return true;
}

/* Close the segment being written; the reader moves past it once read. */
static void
journal_close_segment(void)
{
	if (jn.fd >= 0)
		close(jn.fd);
	jn.fd = -1;
	pthread_mutex_lock(&jn.slock);
	if (jn.nsegs)
		jn.segs[jn.nsegs - 1].closed = true;
	pthread_mutex_unlock(&jn.slock);
}

static bool
journal_write_all(const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(jn.fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("journal: could not write: %s",
				w < 0 ? strerror(errno) : "no progress");
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void
journal_write_group(struct journal_item *list)
{
	size_t need = 0, off = 0, n = 0;
	uint64_t first = jn.next_seq;
	struct journal_item *it;
	bool roll;

	uint64_t t0 = metrics_now_ns();

	if (jn.fd < 0 && !journal_open_segment(false))
		goto fail;
	for (it = list; it; it = it->next)
		need += JOURNAL_HDR + it->len;
	if (need > jn.wcap) {
		unsigned char *p = realloc(jn.wbuf, need);

		if (!p)
			goto fail;
		jn.wbuf = p;
		jn.wcap = need;
	}
	for (it = list; it; it = it->next, n++) {
		uint64_t seq = first + n;
		uint32_t len = (uint32_t)it->len, crc = journal_crc(seq, it->payload, it->len);

		memcpy(jn.wbuf + off, &len, 4);
		memcpy(jn.wbuf + off + 4, &crc, 4);
		memcpy(jn.wbuf + off + 8, &seq, 8);
		memcpy(jn.wbuf + off + JOURNAL_HDR, it->payload, it->len);
		off += JOURNAL_HDR + it->len;
	}
	/* the sequence numbers are spent even on failure: a retry gets new ones */
	jn.next_seq = first + n;
	if (!journal_write_all(jn.wbuf, off))
		goto fail_close;
	if (fdatasync(jn.fd) != 0) {
		log_error("journal: could not fdatasync: %s", strerror(errno));
		goto fail_close;
	}
	METRICS_OBSERVE(journal_fsync_duration, 0, metrics_now_ns() - t0);
	if (atomic_exchange(&jn.failing, false))
		log_info("journal: writing again after failures");
	atomic_fetch_add(&jn.fsyncs, 1);
	atomic_fetch_add(&jn.appends, n);
	atomic_fetch_add(&jn.bytes, off);
	pthread_mutex_lock(&jn.slock);
	jn.segs[jn.nsegs - 1].end += off;
	jn.segs[jn.nsegs - 1].last_seq = first + n - 1;
	jn.durable_seq = first + n - 1;
	jn.pending += n;
	roll = jn.segs[jn.nsegs - 1].end >= JOURNAL_SEGMENT_BYTES;
	pthread_mutex_unlock(&jn.slock);
	if (roll)
		journal_close_segment();
	journal_complete(list, true);
	if (jn.hook)
		jn.hook(jn.hook_arg);
	return;
fail_close:
	/* what reached the disk of this group is not counted durable (and was not acknowledged):
	 * cut it off if the disk lets us, so the next replay finds no torn tail here; start a
	 * new segment */
	pthread_mutex_lock(&jn.slock);
	off = jn.segs[jn.nsegs - 1].end;
	pthread_mutex_unlock(&jn.slock);
	if (ftruncate(jn.fd, (off_t)off) != 0)
		log_warning("journal: could not cut the failed write off: %s", strerror(errno));
	journal_close_segment();
fail:
	atomic_store(&jn.failing, true);
	for (it = list; it; it = it->next)
		atomic_fetch_add(&jn.append_failures, 1);
	journal_complete(list, false);
}

/*
 * Is the journal writable again?  A segment can be created (if none is open), space for a
 * group can be reserved in it without changing its size, and it can be synced.  Only the
 * writer thread calls it (it owns jn.fd), and only while appends are failing.
 */
static void
journal_probe(void)
{
	static unsigned long tries;

	tries++;
	if (jn.fd < 0 && !journal_open_segment(true))
		goto still;
	if (fallocate(jn.fd, FALLOC_FL_KEEP_SIZE, 0, JOURNAL_PROBE_BYTES) != 0 &&
		errno != EOPNOTSUPP && errno != ENOSYS)
		goto still;
	if (fdatasync(jn.fd) != 0)
		goto still;
	atomic_store(&jn.failing, false);
	log_info("journal: writable again (found by the probe after %lu attempt%s)", tries,
		tries == 1 ? "" : "s");
	tries = 0;
	return;
still:
	/* once a minute at most: the append failures were logged as they happened */
	if (tries % 60 == 1)
		log_warning("journal: still not writable: %s (probing every %d s)", strerror(errno),
			JOURNAL_PROBE_S);
}

static void *
journal_thread(void *arg)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	metrics_thread_register("journal", false);
	pthread_mutex_lock(&jn.qlock);
	for (;;) {
		struct journal_item *list;

		while (!jn.qhead && !jn.stop) {
			struct timespec ts;

			if (!atomic_load(&jn.failing)) {
				pthread_cond_wait(&jn.qcond, &jn.qlock);
				continue;
			}
			/* not writable: probe every second, so the journal (and /readyz) comes
			 * back by itself once the disk does, even with no event arriving (a load
			 * balancer sends none to an instance that is not ready) */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += JOURNAL_PROBE_S;
			if (pthread_cond_timedwait(&jn.qcond, &jn.qlock, &ts) == ETIMEDOUT &&
				!jn.qhead && !jn.stop) {
				pthread_mutex_unlock(&jn.qlock);
				journal_probe();
				pthread_mutex_lock(&jn.qlock);
			}
		}
		list = jn.qhead;
		jn.qhead = jn.qtail = NULL;
		if (!list)
			break;
		jn.writing = true;
		pthread_mutex_unlock(&jn.qlock);
		journal_write_group(list);
		pthread_mutex_lock(&jn.qlock);
		jn.writing = false;
	}
	pthread_mutex_unlock(&jn.qlock);
	return NULL;
}

bool
journal_idle(void)
{
	bool idle;

	pthread_mutex_lock(&jn.qlock);
	idle = !jn.qhead && !jn.writing;
	pthread_mutex_unlock(&jn.qlock);
	return idle;
}

bool
journal_append(struct journal_waiter *w, const void *payload, size_t len, void *arg)
{
	struct journal_item *it;

	if (len == 0 || len > JOURNAL_MAX_RECORD)
		return false;
	it = malloc(sizeof(*it) + len);
	if (!it)
		return false;
	it->next = NULL;
	it->w = w;
	it->arg = arg;
	it->ok = false;
	it->len = len;
	memcpy(it->payload, payload, len);
	pthread_mutex_lock(&jn.qlock);
	if (jn.stop || !jn.running) {
		pthread_mutex_unlock(&jn.qlock);
		free(it);
		return false;
	}
	if (jn.qtail)
		jn.qtail->next = it;
	else
		jn.qhead = it;
	jn.qtail = it;
	pthread_cond_signal(&jn.qcond);
	pthread_mutex_unlock(&jn.qlock);
	return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Replay                                                                                      */

/*
 * A segment is scanned as a storage engine reads its log: a record is valid when its length
 * is in range and fits in the file, its sequence number is in range and its CRC matches.  At
 * a record that is not valid, the scan looks for the next position where a record validates
 * (and is above every valid one before it) and goes on from there: a record whose CRC fails
 * but whose length still frames it is skipped by itself, and where the framing is lost
 * (a garbage length, a zeroed region) every intact record after the damage is still found.
 * What follows the last valid record of a segment is its tail: the torn end of a write that
 * never completed (a crash), or damage.
 */
struct journal_scan {
	uint64_t nvalid;
	uint64_t min_seq, max_seq;    /* of the valid records */
	uint64_t first_seq, last_seq; /* the first and the last valid one, in file order */
	uint64_t first_off;           /* offset of the first valid record */
	uint64_t corrupt;             /* records lost before the last valid one */
	uint64_t regions;             /* damaged stretches before the last valid one */
	uint64_t bad_off;             /* offset of the first of them */
	uint64_t tail_off, tail;      /* bytes after the last valid record that frame nothing */
	uint64_t tail_records;        /* records the tail seems to hold (at least 1) */
	bool disorder;                /* a valid record not above the one before it */
};

typedef bool (*journal_scan_fn)(uint64_t seq, uint64_t off, void *arg);

/* A record at off validates: its length, its sequence number (above min_seq) and its CRC. */
static bool
journal_valid_at(const unsigned char *p, uint64_t n, uint64_t off, uint64_t min_seq, uint32_t *lenp,
	uint64_t *seqp)
{
	uint32_t len, crc;
	uint64_t seq;

	if (n - off < JOURNAL_HDR)
		return false;
	memcpy(&len, p + off, 4);
	if (len == 0 || len > JOURNAL_MAX_RECORD || n - off - JOURNAL_HDR < len)
		return false;
	memcpy(&seq, p + off + 8, 8);
	if (seq == 0 || seq <= min_seq || seq >= JOURNAL_SEQ_MAX)
		return false;
	memcpy(&crc, p + off + 4, 4);
	if (journal_crc(seq, p + off + JOURNAL_HDR, len) != crc)
		return false;
	*lenp = len;
	*seqp = seq;
	return true;
}

/* How many records [off, end) seems to hold, following its length fields (at least 1). */
static uint64_t
journal_count_framed(const unsigned char *p, uint64_t off, uint64_t end)
{
	uint64_t count = 0;

	while (off < end) {
		uint32_t len;

		count++;
		if (end - off < JOURNAL_HDR)
			break;
		memcpy(&len, p + off, 4);
		if (len == 0 || len > JOURNAL_MAX_RECORD || end - off - JOURNAL_HDR < len)
			break;
		off += JOURNAL_HDR + len;
	}
	return count ? count : 1;
}

static bool
journal_scan_buf(const unsigned char *p, uint64_t n, struct journal_scan *sc, journal_scan_fn fn,
	void *arg)
{
	uint64_t off = 0, top = 0;

	memset(sc, 0, sizeof(*sc));
	while (off < n) {
		uint64_t seq, q;
		uint32_t len;

		if (journal_valid_at(p, n, off, 0, &len, &seq)) {
			if (fn && !fn(seq, off, arg))
				return false;
			if (sc->nvalid == 0) {
				sc->first_seq = seq;
				sc->first_off = off;
				sc->min_seq = seq;
			} else if (seq <= sc->last_seq) {
				sc->disorder = true;
			}
			if (seq < sc->min_seq)
				sc->min_seq = seq;
			if (seq > sc->max_seq)
				sc->max_seq = seq;
			if (seq > top)
				top = seq;
			sc->last_seq = seq;
			sc->nvalid++;
			off += JOURNAL_HDR + len;
			continue;
		}
		/* damage at off: resynchronise on the next record that validates */
		for (q = off + 1; q < n; q++)
			if (journal_valid_at(p, n, q, top, &len, &seq))
				break;
		if (q >= n) {
			sc->tail_off = off;
			sc->tail = n - off;
			sc->tail_records = journal_count_framed(p, off, n);
			break;
		}
		if (sc->regions++ == 0)
			sc->bad_off = off;
		sc->corrupt += journal_count_framed(p, off, q);
		off = q;
	}
	return true;
}

/* Map path and scan it; false if it cannot be read (logged). */
static bool
journal_scan_file(const char *path, uint64_t *sizep, struct journal_scan *sc, journal_scan_fn fn,
	void *arg)
{
	struct stat st;
	void *map = NULL;
	bool ok = true;
	int fd;

	memset(sc, 0, sizeof(*sc));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		log_error("journal: could not open \"%s\": %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	*sizep = (uint64_t)st.st_size;
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			log_error("journal: could not map \"%s\": %s", path, strerror(errno));
			close(fd);
			return false;
		}
		ok = journal_scan_buf(map, (uint64_t)st.st_size, sc, fn, arg);
		munmap(map, (size_t)st.st_size);
	}
	close(fd);
	return ok;
}

/* "<16 hex digits>.jnl", optionally followed by a suffix (quarantined copies: ".1", ...). */
static bool
journal_parse_name(const char *name, uint64_t *first, bool exact)
{
	char *end;

	if (strlen(name) < 20 || strncmp(name + 16, ".jnl", 4) != 0 || (exact && name[20]))
		return false;
	for (int i = 0; i < 16; i++)
		if (!strchr("0123456789abcdefABCDEF", name[i]))
			return false;
	*first = strtoull(name, &end, 16);
	return end == name + 16;
}

/* Move dir/name to the quarantine directory under a name not taken there; never remove it. */
static bool
journal_quarantine(const char *name)
{
	char src[PATH_MAX + 32], qdir[PATH_MAX + 32], dst[PATH_MAX + 64];
	int dfd;

	snprintf(src, sizeof(src), "%s/%s", jn.dir, name);
	snprintf(qdir, sizeof(qdir), "%s/%s", jn.dir, JOURNAL_QUARANTINE);
	if (mkdir(qdir, 0700) != 0 && errno != EEXIST) {
		log_error("journal: could not create \"%s\": %s", qdir, strerror(errno));
		goto fail;
	}
	for (int i = 0;; i++) {
		struct stat st;

		if (i == 1000) {
			log_error("journal: could not find a free name for \"%s\" in \"%s\"", name,
				qdir);
			goto fail;
		}
		if (i)
			snprintf(dst, sizeof(dst), "%s/%s.%d", qdir, name, i);
		else
			snprintf(dst, sizeof(dst), "%s/%s", qdir, name);
		if (lstat(dst, &st) == 0)
			continue;
		if (errno != ENOENT) {
			log_error("journal: could not stat \"%s\": %s", dst, strerror(errno));
			goto fail;
		}
		if (rename(src, dst) != 0) {
			log_error("journal: could not move \"%s\" to \"%s\": %s", src, dst,
				strerror(errno));
			goto fail;
		}
		break;
	}
	/* both directories: the move is durable before the journal goes on */
	dfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	dfd = open(jn.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	log_info("journal: moved \"%s\" to \"%s\"", src, dst);
	return true;
fail:
	atomic_fetch_add(&jn.quarantine_failures, 1);
	return false;
}

struct journal_scan_ctx {
	uint32_t seg;
	uint64_t *max_seen;
	struct progress *pg; /* the replay's progress lines, or NULL */
};

static bool
journal_collect(uint64_t seq, uint64_t off, void *arg)
{
	struct journal_scan_ctx *c = arg;

	if (seq > *c->max_seen)
		*c->max_seen = seq;
	if (c->pg)
		progress_log_tick(c->pg, c->pg->done + 1);
	if (c->seg == UINT32_MAX)
		return true;
	if (jn.nrrecs == jn.caprrecs) {
		size_t cap = jn.caprrecs ? jn.caprrecs * 2 : 1024;
		struct journal_rrec *p = realloc(jn.rrecs, cap * sizeof(*p));

		if (!p) {
			log_error("journal: out of memory indexing the journal");
			return false;
		}
		jn.rrecs = p;
		jn.caprrecs = cap;
	}
	jn.rrecs[jn.nrrecs].seq = seq;
	jn.rrecs[jn.nrrecs].seg = c->seg;
	jn.rrecs[jn.nrrecs].off = off;
	jn.nrrecs++;
	return true;
}

static int
journal_cmp_rseg(const void *a, const void *b)
{
	uint64_t x = ((const struct journal_rseg *)a)->name;
	uint64_t y = ((const struct journal_rseg *)b)->name;

	return x < y ? -1 : x > y;
}

static int
journal_cmp_rrec(const void *a, const void *b)
{
	const struct journal_rrec *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	if (x->seg != y->seg)
		return x->seg < y->seg ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* The quarantine directory: only the highest sequence number in it matters (never reused). */
static void
journal_scan_quarantine(uint64_t *max_seen)
{
	char qdir[PATH_MAX + 32], path[PATH_MAX + 300];
	struct journal_scan_ctx c = { UINT32_MAX, max_seen, NULL };
	struct dirent *de;
	DIR *d;

	snprintf(qdir, sizeof(qdir), "%s/%s", jn.dir, JOURNAL_QUARANTINE);
	d = opendir(qdir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		struct journal_scan sc;
		uint64_t first, size;

		if (de->d_name[0] == '.')
			continue;
		if (journal_parse_name(de->d_name, &first, false) && first < JOURNAL_SEQ_MAX &&
			first > *max_seen)
			*max_seen = first;
		snprintf(path, sizeof(path), "%s/%s", qdir, de->d_name);
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		(void)journal_scan_file(path, &size, &sc, journal_collect, &c);
	}
	closedir(d);
}

/* The checkpoint file: "checkpoint <seq> <CRC-32C of seq, 8 hex digits>\n" (or, written by
 * older versions, "<seq>\n").  0 and *valid false if there is none or it cannot be read. */
static uint64_t
journal_read_checkpoint(bool *present, bool *valid)
{
	char path[PATH_MAX + 32], buf[96], *end;
	unsigned long long v = 0;
	unsigned int crc = 0;
	uint64_t seq;
	size_t n;
	FILE *f;

	*present = *valid = false;
	snprintf(path, sizeof(path), "%s/checkpoint", jn.dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	*present = true;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (strlen(buf) != n)
		return 0;
	if (strncmp(buf, "checkpoint ", 11) == 0) {
		char *p = buf + 11;

		/* digits only: strtoull would read "-1" as the largest number */
		if (*p < '0' || *p > '9')
			return 0;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (errno || *end != ' ' || v >= JOURNAL_SEQ_MAX)
			return 0;
		p = end + 1;
		if (strlen(p) != 9 || p[8] != '\n' || strspn(p, "0123456789abcdef") != 8 ||
			sscanf(p, "%8x", &crc) != 1)
			return 0;
		seq = (uint64_t)v;
		if (crc32c(0, &seq, 8) != (uint32_t)crc)
			return 0;
	} else {
		/* the plain-text format of older versions */
		if (buf[0] < '0' || buf[0] > '9')
			return 0;
		errno = 0;
		v = strtoull(buf, &end, 10);
		if (errno || (*end != '\n' && *end != 0) || (*end == '\n' && end[1]) ||
			v >= JOURNAL_SEQ_MAX)
			return 0;
	}
	*valid = true;
	return (uint64_t)v;
}

/* What is wrong with a segment, for its one log line. */
static void
journal_describe(char *buf, size_t size, const struct journal_scan *sc,
	const struct journal_rseg *r, bool tail_bad)
{
	size_t len = 0;

	buf[0] = 0;
#define JN_ADD(...)                                                                                \
	do {                                                                                       \
		if (len < size)                                                                    \
			len += (size_t)snprintf(buf + len, size - len, "%s", len ? "; " : "");     \
		if (len < size)                                                                    \
			len += (size_t)snprintf(buf + len, size - len, __VA_ARGS__);               \
	} while (0)
	if (sc->regions)
		JN_ADD("%" PRIu64 " corrupt record%s in %" PRIu64
		       " place%s, the first at offset %" PRIu64,
			sc->corrupt, sc->corrupt == 1 ? "" : "s", sc->regions,
			sc->regions == 1 ? "" : "s", sc->bad_off);
	if (tail_bad)
		JN_ADD("%" PRIu64 " byte%s at offset %" PRIu64 " after its last valid record frame "
		       "no record",
			sc->tail, sc->tail == 1 ? "" : "s", sc->tail_off);
	if (sc->disorder)
		JN_ADD("its records are out of sequence order");
	if (sc->nvalid && sc->first_off == 0 && sc->first_seq != r->name)
		JN_ADD("its first record is %" PRIu64 ", its name says %" PRIu64, sc->first_seq,
			r->name);
#undef JN_ADD
}

/* Scan every segment, build the index of valid records, classify the damage. */
static bool
journal_replay(uint64_t *max_seen, uint64_t *max_valid)
{
	char path[PATH_MAX + 32], what[512];
	struct journal_scan *scans;
	struct progress pg;
	size_t keep = 0;

	scans = calloc(jn.nrsegs ? jn.nrsegs : 1, sizeof(*scans));
	if (!scans)
		return false;
	progress_init(&pg, "journal: replay", "records", 0, 4096);
	for (size_t i = 0; i < jn.nrsegs; i++) {
		struct journal_scan_ctx c = { (uint32_t)i, max_seen, &pg };

		journal_seg_path(path, sizeof(path), jn.rsegs[i].name);
		if (!journal_scan_file(path, &jn.rsegs[i].size, &scans[i], journal_collect, &c))
			goto fail;
		jn.rsegs[i].min_seq = scans[i].min_seq;
		jn.rsegs[i].max_seq = scans[i].max_seq;
		if (scans[i].max_seq > *max_valid)
			*max_valid = scans[i].max_seq;
		if (jn.rsegs[i].name > *max_seen)
			*max_seen = jn.rsegs[i].name;
		atomic_fetch_add(&jn.bytes, jn.rsegs[i].size);
	}
	progress_log_end(&pg);
	for (size_t i = 0; i < jn.nrsegs; i++) {
		struct journal_rseg *r = &jn.rsegs[i];
		struct journal_scan *sc = &scans[i];
		bool tail_bad = false;

		if (r->size == 0) {
			/* created, then a crash before its first write: nothing in it; its name
			 * would block a new segment of the same number */
			journal_seg_path(path, sizeof(path), r->name);
			if (unlink(path) != 0 && errno != ENOENT) {
				log_error("journal: could not remove empty segment \"%s\": %s",
					path, strerror(errno));
				goto fail;
			}
			log_info("journal: removed \"%s\" (empty)", path);
			r->gone = true;
			continue;
		}
		if (sc->nvalid == 0) {
			journal_seg_path(path, sizeof(path), r->name);
			atomic_fetch_add(&jn.quarantined, 1);
			atomic_fetch_add(&jn.corrupt, sc->tail_records);
			log_error("journal: \"%s\" (records from %" PRIu64
				  ") holds no valid record in "
				  "%" PRIu64
				  " byte%s (zeroed, garbage or a truncated header); moved to "
				  "\"%s/%s\"",
				path, r->name, r->size, r->size == 1 ? "" : "s", jn.dir,
				JOURNAL_QUARANTINE);
			r->damaged = true;
			if (journal_quarantine(path + strlen(jn.dir) + 1))
				r->gone = true;
			else
				r->stuck = true;
			continue;
		}
		if (sc->tail) {
			/* a torn tail is the normal end of a crash mid-write: of the newest
			 * segment, or of one the restart after that crash followed (the next
			 * segment then starts right after its last valid record); anywhere else it
			 * is damage */
			bool newest = i + 1 == jn.nrsegs;

			if (newest || jn.rsegs[i + 1].name == sc->last_seq + 1) {
				atomic_fetch_add(&jn.torn, 1);
				journal_seg_path(path, sizeof(path), r->name);
				log_warning("journal: \"%s\": torn write at offset %" PRIu64
					    " (%" PRIu64 " bytes after its last record skipped)",
					path, sc->tail_off, sc->tail);
			} else {
				tail_bad = true;
			}
		}
		journal_describe(what, sizeof(what), sc, r, tail_bad);
		if (what[0]) {
			r->damaged = true;
			atomic_fetch_add(&jn.quarantined, 1);
			atomic_fetch_add(&jn.corrupt,
				sc->corrupt + (tail_bad ? sc->tail_records : 0));
			journal_seg_path(path, sizeof(path), r->name);
			log_error("journal: \"%s\" is damaged: %s; its %" PRIu64 " intact record%s "
				  "(sequence numbers %" PRIu64 " to %" PRIu64
				  ") are drained, then it "
				  "is moved to \"%s/%s\"",
				path, what, sc->nvalid, sc->nvalid == 1 ? "" : "s", sc->min_seq,
				sc->max_seq, jn.dir, JOURNAL_QUARANTINE);
		}
	}
	free(scans);
	scans = NULL;
	/* one entry per sequence number, in order: a record copied into two files is read once */
	if (jn.nrrecs)
		qsort(jn.rrecs, jn.nrrecs, sizeof(*jn.rrecs), journal_cmp_rrec);
	for (size_t i = 0; i < jn.nrrecs; i++)
		if (keep == 0 || jn.rrecs[i].seq != jn.rrecs[keep - 1].seq)
			jn.rrecs[keep++] = jn.rrecs[i];
	jn.nrrecs = keep;
	return true;
fail:
	free(scans);
	return false;
}

bool
journal_setup(const char *state_dir)
{
	DIR *d;
	struct dirent *de;
	uint64_t max_seen = 0, max_valid = 0, cp;
	bool cp_present, cp_valid;

	pthread_mutex_lock(&jn_init_lock);
	crc_init();
	pthread_mutex_unlock(&jn_init_lock);
	pthread_mutex_init(&jn.qlock, NULL);
	pthread_cond_init(&jn.qcond, NULL);
	pthread_mutex_init(&jn.slock, NULL);
	jn.fd = -1;
	jn.r_fd = -1;
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		log_error("journal: could not create \"%s\": %s", state_dir, strerror(errno));
		return false;
	}
	snprintf(jn.dir, sizeof(jn.dir), "%s/%s", state_dir, JOURNAL_DIR);
	if (mkdir(jn.dir, 0700) != 0 && errno != EEXIST) {
		log_error("journal: could not create \"%s\": %s", jn.dir, strerror(errno));
		return false;
	}
	jn.rbuf = malloc(JOURNAL_MAX_RECORD);
	if (!jn.rbuf)
		return false;
	d = opendir(jn.dir);
	if (!d) {
		log_error("journal: could not open \"%s\": %s", jn.dir, strerror(errno));
		return false;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t first;

		if (!journal_parse_name(de->d_name, &first, true) || first == 0)
			continue;
		if (first >= JOURNAL_SEQ_MAX) {
			/* not one of ours: its number would overflow the sequence */
			log_warning("journal: ignoring \"%s/%s\" (sequence number out of range)",
				jn.dir, de->d_name);
			continue;
		}
		if (jn.nrsegs % 16 == 0) {
			struct journal_rseg *p = realloc(jn.rsegs, (jn.nrsegs + 16) * sizeof(*p));

			if (!p) {
				closedir(d);
				return false;
			}
			jn.rsegs = p;
		}
		memset(&jn.rsegs[jn.nrsegs], 0, sizeof(jn.rsegs[0]));
		jn.rsegs[jn.nrsegs++].name = first;
	}
	closedir(d);
	if (jn.nrsegs)
		qsort(jn.rsegs, jn.nrsegs, sizeof(*jn.rsegs), journal_cmp_rseg);
	if (!journal_replay(&max_seen, &max_valid))
		return false;
	journal_scan_quarantine(&max_seen);
	if (max_valid > max_seen)
		max_seen = max_valid;

	/* the checkpoint: a hint to skip what is in PostgreSQL already; when it cannot be
	 * trusted, every record is drained again (the ledger's unique key makes that harmless),
	 * never skipped */
	cp = journal_read_checkpoint(&cp_present, &cp_valid);
	if (cp_present && !cp_valid) {
		atomic_fetch_add(&jn.checkpoint_resets, 1);
		log_warning(
			"journal: ignoring unreadable \"%s/checkpoint\" (every record is drained "
			"again: they are idempotent)",
			jn.dir);
	} else if (cp_valid && cp > max_seen) {
		atomic_fetch_add(&jn.checkpoint_resets, 1);
		log_warning("journal: \"%s/checkpoint\" (%" PRIu64 ") is ahead of the last record "
			    "found (%" PRIu64 "); draining from the oldest segment",
			jn.dir, cp, max_seen);
	}
	jn.checkpoint = cp_valid && cp <= max_seen ? cp : 0;
	for (size_t i = 0; i < jn.nrrecs; i++)
		if (jn.rrecs[i].seq > jn.checkpoint)
			jn.pending++;
	journal_rewind();
	jn.durable_seq = max_valid;
	jn.replay_max = max_valid;
	/* never reuse a sequence number: above every one seen (file names, valid records here
	 * and in quarantine, the checkpoint) */
	if (cp_valid && cp > max_seen)
		max_seen = cp;
	jn.next_seq = max_seen + 1;
	log_info("journal: replayed %zu segment%s in \"%s\": last record %" PRIu64
		 ", checkpoint %" PRIu64 ", %" PRIu64 " record%s to drain",
		jn.nrsegs, jn.nrsegs == 1 ? "" : "s", jn.dir, max_valid, jn.checkpoint, jn.pending,
		jn.pending == 1 ? "" : "s");
	return true;
}

bool
journal_start(void)
{
	jn.stop = false;
	jn.running = true;
	if (pthread_create(&jn.thread, NULL, journal_thread, NULL) != 0) {
		jn.running = false;
		log_error("journal: could not start the writer thread");
		return false;
	}
	return true;
}

void
journal_stop(void)
{
	if (jn.running) {
		pthread_mutex_lock(&jn.qlock);
		jn.stop = true;
		pthread_cond_signal(&jn.qcond);
		pthread_mutex_unlock(&jn.qlock);
		pthread_join(jn.thread, NULL);
		jn.running = false;
	}
	if (jn.fd >= 0)
		close(jn.fd);
	jn.fd = -1;
}

void
journal_cleanup(void)
{
	journal_stop();
	if (jn.r_fd >= 0)
		close(jn.r_fd);
	free(jn.wbuf);
	free(jn.rbuf);
	free(jn.segs);
	free(jn.rsegs);
	free(jn.rrecs);
	jn.wbuf = jn.rbuf = NULL;
	jn.segs = NULL;
	jn.rsegs = NULL;
	jn.rrecs = NULL;
	jn.nsegs = jn.capsegs = jn.wcap = 0;
	jn.nrsegs = jn.nrrecs = jn.caprrecs = jn.r_pos = 0;
	jn.replay_max = 0;
	jn.fd = jn.r_fd = -1;
	jn.r_idx = 0;
	jn.r_off = 0;
	jn.pending = 0;
	jn.checkpoint = 0;
	jn.durable_seq = 0;
	jn.cp_failing = false;
}

/* ------------------------------------------------------------------------------------------ */
/* Reader (db thread)                                                                          */

void
journal_set_durable_hook(void (*hook)(void *), void *arg)
{
	jn.hook_arg = arg;
	jn.hook = hook;
}

/* Open the segment named name for reading (cached); a missing file is logged by the caller
 * when it asks (gone_ok), errno kept. */
static bool
journal_reader_open(uint64_t name, bool gone_ok)
{
	char path[PATH_MAX + 32];
	int err;

	if (jn.r_fd >= 0 && jn.r_fd_seq == name)
		return true;
	if (jn.r_fd >= 0)
		close(jn.r_fd);
	journal_seg_path(path, sizeof(path), name);
	jn.r_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (jn.r_fd < 0) {
		err = errno;
		if (!gone_ok || err != ENOENT)
			log_error("journal: could not open \"%s\": %s", path, strerror(err));
		errno = err;
		return false;
	}
	jn.r_fd_seq = name;
	return true;
}

/* The next replayed record: 1 read, 0 none left, -1 stop (cb said so or the file is gone). */
static int
journal_read_replayed(journal_record_fn cb, void *arg)
{
	while (jn.r_pos < jn.nrrecs) {
		const struct journal_rrec *e = &jn.rrecs[jn.r_pos];
		unsigned char hdr[JOURNAL_HDR];
		uint32_t len, crc;
		uint64_t seq;

		if (e->seq <= jn.checkpoint) {
			jn.r_pos++;
			continue;
		}
		if (jn.rsegs[e->seg].gone) {
			/* its file vanished under us (logged when found): nothing to read */
			atomic_fetch_add(&jn.corrupt, 1);
			pthread_mutex_lock(&jn.slock);
			if (jn.pending)
				jn.pending--;
			pthread_mutex_unlock(&jn.slock);
			jn.r_pos++;
			continue;
		}
		if (!journal_reader_open(jn.rsegs[e->seg].name, true)) {
			if (errno != ENOENT)
				return -1; /* tried again at the next read */
			log_error("journal: segment %016" PRIx64
				  " was removed by someone else: its "
				  "records above %" PRIu64 " are lost",
				jn.rsegs[e->seg].name, jn.checkpoint);
			pthread_mutex_lock(&jn.slock);
			jn.rsegs[e->seg].gone = true;
			pthread_mutex_unlock(&jn.slock);
			continue;
		}
		if (pread(jn.r_fd, hdr, JOURNAL_HDR, (off_t)e->off) != JOURNAL_HDR)
			goto bad;
		memcpy(&len, hdr, 4);
		memcpy(&crc, hdr + 4, 4);
		memcpy(&seq, hdr + 8, 8);
		if (len == 0 || len > JOURNAL_MAX_RECORD || seq != e->seq ||
			pread(jn.r_fd, jn.rbuf, len, (off_t)(e->off + JOURNAL_HDR)) !=
				(ssize_t)len ||
			journal_crc(seq, jn.rbuf, len) != crc)
			goto bad;
		if (!cb(seq, jn.rbuf, len, arg))
			return -1;
		jn.r_pos++;
		return 1;
	bad:
		/* valid at replay: the disk changed under us */
		atomic_fetch_add(&jn.corrupt, 1);
		log_error("journal: record %" PRIu64 " of segment %016" PRIx64 " (offset %" PRIu64
			  ") no longer reads back; skipped",
			e->seq, jn.rsegs[e->seg].name, e->off);
		pthread_mutex_lock(&jn.slock);
		jn.rsegs[e->seg].damaged = true;
		if (jn.pending)
			jn.pending--;
		pthread_mutex_unlock(&jn.slock);
		jn.r_pos++;
	}
	return 0;
}

size_t
journal_read(size_t max, journal_record_fn cb, void *arg)
{
	size_t count = 0;

	while (count < max) {
		int r = journal_read_replayed(cb, arg);

		if (r < 0)
			return count;
		if (r == 0)
			break;
		count++;
	}
	while (count < max) {
		struct journal_segment s;
		unsigned char hdr[JOURNAL_HDR];
		uint32_t len, crc;
		uint64_t seq;
		bool more_segs;

		pthread_mutex_lock(&jn.slock);
		if (jn.r_idx >= jn.nsegs) {
			pthread_mutex_unlock(&jn.slock);
			break;
		}
		s = jn.segs[jn.r_idx];
		more_segs = jn.r_idx + 1 < jn.nsegs;
		pthread_mutex_unlock(&jn.slock);

		if (jn.r_off + JOURNAL_HDR > s.end) {
			/* read all that is durable here; move on only once no more can come */
			if (more_segs) {
				jn.r_idx++;
				jn.r_off = 0;
				continue;
			}
			break;
		}
		if (!journal_reader_open(s.first_seq, false))
			break;
		if (pread(jn.r_fd, hdr, JOURNAL_HDR, (off_t)jn.r_off) != JOURNAL_HDR)
			goto bad;
		memcpy(&len, hdr, 4);
		memcpy(&crc, hdr + 4, 4);
		memcpy(&seq, hdr + 8, 8);
		if (len == 0 || len > JOURNAL_MAX_RECORD || jn.r_off + JOURNAL_HDR + len > s.end ||
			pread(jn.r_fd, jn.rbuf, len, (off_t)(jn.r_off + JOURNAL_HDR)) !=
				(ssize_t)len ||
			journal_crc(seq, jn.rbuf, len) != crc)
			goto bad;
		if (seq > jn.checkpoint) {
			if (!cb(seq, jn.rbuf, len, arg))
				break;
			count++;
		}
		jn.r_off += JOURNAL_HDR + len;
		continue;
	bad:
		/* durable records were checked when written: this is the disk */
		atomic_fetch_add(&jn.corrupt, 1);
		log_error("journal: segment %016" PRIx64 " unreadable at offset %" PRIu64
			  "; skipping the rest of it",
			s.first_seq, jn.r_off);
		pthread_mutex_lock(&jn.slock);
		jn.segs[jn.r_idx].end = jn.r_off;
		pthread_mutex_unlock(&jn.slock);
		if (!more_segs)
			break;
		jn.r_idx++;
		jn.r_off = 0;
	}
	return count;
}

void
journal_rewind(void)
{
	size_t lo = 0, hi = jn.nrrecs;

	/* the first replayed record after the checkpoint */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (jn.rrecs[mid].seq <= jn.checkpoint)
			lo = mid + 1;
		else
			hi = mid;
	}
	jn.r_pos = lo;
	jn.r_idx = 0;
	jn.r_off = 0;
}

/* Write the checkpoint durably: a temporary file, fsync, rename, fsync of the directory. */
static bool
journal_write_checkpoint(uint64_t seq)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 32], line[64];
	int fd, dfd, n;

	snprintf(path, sizeof(path), "%s/checkpoint", jn.dir);
	snprintf(tmp, sizeof(tmp), "%s/checkpoint.tmp", jn.dir);
	n = snprintf(line, sizeof(line), "checkpoint %" PRIu64 " %08" PRIx32 "\n", seq,
		crc32c(0, &seq, 8));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (!jn.cp_failing)
			log_error("journal: could not create \"%s\": %s", tmp, strerror(errno));
		return false;
	}
	if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
		if (!jn.cp_failing)
			log_error("journal: could not write \"%s\": %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return false;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		if (!jn.cp_failing)
			log_error("journal: could not rename \"%s\": %s", tmp, strerror(errno));
		unlink(tmp);
		return false;
	}
	dfd = open(jn.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		if (!jn.cp_failing)
			log_error("journal: could not fsync \"%s\": %s", jn.dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return false;
	}
	close(dfd);
	return true;
}

void
journal_checkpoint(uint64_t seq, uint64_t records)
{
	char path[PATH_MAX + 32];
	size_t drop = 0;
	bool live;

	if (seq <= jn.checkpoint)
		return;
	pthread_mutex_lock(&jn.slock);
	jn.checkpoint = seq;
	jn.pending = jn.pending > records ? jn.pending - records : 0;
	pthread_mutex_unlock(&jn.slock);
	/* a hint only: a lost checkpoint replays committed records, which are idempotent */
	if (journal_write_checkpoint(seq)) {
		if (jn.cp_failing)
			log_info("journal: writing the checkpoint again");
		jn.cp_failing = false;
	} else {
		atomic_fetch_add(&jn.checkpoint_failures, 1);
		jn.cp_failing = true;
	}
	/* replayed segments whose valid records are all covered: removed, or, if damaged,
	 * moved to quarantine (their bytes are never deleted).  The one holding the last record
	 * stays until a record is written after it: a restart then finds the record the
	 * checkpoint names (or the checkpoint would look ahead of the journal) */
	pthread_mutex_lock(&jn.slock);
	live = false;
	for (size_t i = 0; i < jn.nsegs; i++)
		live = live || jn.segs[i].last_seq != 0;
	pthread_mutex_unlock(&jn.slock);
	for (size_t i = 0; i < jn.nrsegs; i++) {
		struct journal_rseg *r = &jn.rsegs[i];
		bool gone;

		if (r->gone || r->stuck || r->max_seq > seq ||
			(!r->damaged && !live && r->max_seq == jn.replay_max))
			continue;
		journal_seg_path(path, sizeof(path), r->name);
		if (r->damaged) {
			gone = journal_quarantine(path + strlen(jn.dir) + 1);
		} else {
			gone = unlink(path) == 0 || errno == ENOENT;
			if (!gone)
				log_error("journal: could not remove \"%s\": %s", path,
					strerror(errno));
		}
		if (!gone) {
			r->stuck = true;
			continue;
		}
		pthread_mutex_lock(&jn.slock);
		r->gone = true;
		pthread_mutex_unlock(&jn.slock);
	}
	/* recycle whole segments that are closed, read and covered */
	pthread_mutex_lock(&jn.slock);
	while (drop < jn.nsegs && drop < jn.r_idx && jn.segs[drop].closed &&
		jn.segs[drop].last_seq <= seq) {
		journal_seg_path(path, sizeof(path), jn.segs[drop].first_seq);
		if (unlink(path) != 0 && errno != ENOENT) {
			log_error("journal: could not remove \"%s\": %s", path, strerror(errno));
			break;
		}
		drop++;
	}
	if (drop) {
		memmove(jn.segs, jn.segs + drop, (jn.nsegs - drop) * sizeof(*jn.segs));
		jn.nsegs -= drop;
		jn.r_idx -= drop;
	}
	pthread_mutex_unlock(&jn.slock);
}

void
journal_get_stats(struct journal_stats *s)
{
	uint64_t bytes = 0;

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&jn.slock);
	s->durable_seq = jn.durable_seq;
	for (size_t i = 0; i < jn.nsegs; i++)
		bytes += jn.segs[i].end;
	for (size_t i = 0; i < jn.nrsegs; i++)
		if (!jn.rsegs[i].gone)
			bytes += jn.rsegs[i].size;
	s->checkpoint_seq = jn.checkpoint;
	s->pending = jn.pending;
	pthread_mutex_unlock(&jn.slock);
	s->bytes_on_disk = bytes;
	s->appends = atomic_load(&jn.appends);
	s->append_failures = atomic_load(&jn.append_failures);
	s->fsyncs = atomic_load(&jn.fsyncs);
	s->torn_records = atomic_load(&jn.torn);
	s->corrupt_records = atomic_load(&jn.corrupt);
	s->quarantined_segments = atomic_load(&jn.quarantined);
	s->quarantine_failures = atomic_load(&jn.quarantine_failures);
	s->checkpoint_resets = atomic_load(&jn.checkpoint_resets);
	s->checkpoint_failures = atomic_load(&jn.checkpoint_failures);
	s->writable = !atomic_load(&jn.failing);
}

void
journal_stats(stat_fn add, void *ctx)
{
	struct journal_stats js;

	journal_get_stats(&js);
	STAT_GAUGE(add, ctx, "callrouted_journal_records_pending",
		"Durable call events not yet in PostgreSQL.", (double)js.pending);
	STAT_GAUGE(add, ctx, "callrouted_journal_bytes", "Bytes of journal segments on disk.",
		(double)js.bytes_on_disk);
	STAT_GAUGE(add, ctx, "callrouted_journal_writable",
		"0 after a failed journal write until one succeeds.", js.writable ? 1 : 0);
	STAT_COUNTER(add, ctx, "callrouted_journal_appends_total",
		"Call events made durable in the journal.", js.appends);
	STAT_COUNTER(add, ctx, "callrouted_journal_append_failures_total",
		"Call events that could not be made durable (answered 503).", js.append_failures);
	STAT_COUNTER(add, ctx, "callrouted_journal_fsyncs_total",
		"Group commits (one write and fdatasync each).", js.fsyncs);
	STAT_COUNTER(add, ctx, "callrouted_journal_torn_records_total",
		"Torn tails (a write a crash cut short) found when replaying the journal.",
		js.torn_records);
	STAT_COUNTER(add, ctx, "callrouted_journal_corrupt_records_total",
		"Journal records lost to damage (checksum or framing), each skipped by itself.",
		js.corrupt_records);
	STAT_COUNTER(add, ctx, "callrouted_journal_quarantined_segments_total",
		"Damaged journal segments set aside in quarantine/ (moved once drained).",
		js.quarantined_segments);
	STAT_COUNTER(add, ctx, "callrouted_journal_quarantine_failures_total",
		"Moves of a damaged segment to quarantine/ that failed (retried).",
		js.quarantine_failures);
	STAT_COUNTER(add, ctx, "callrouted_journal_checkpoint_resets_total",
		"Journal checkpoints unreadable or ahead of the journal: drained from the start.",
		js.checkpoint_resets);
	STAT_COUNTER(add, ctx, "callrouted_journal_checkpoint_failures_total",
		"Journal checkpoint writes that failed.", js.checkpoint_failures);
}
