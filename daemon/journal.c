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
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "journal.h"
#include "log.h"
#include "metrics.h"

#define JOURNAL_DIR "journal"
#define JOURNAL_SEGMENT_BYTES (64u << 20)
#define JOURNAL_HDR 16
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
	uint64_t last_seq;    /* last durable record (0: none yet) */
	uint64_t end;         /* bytes of durable, valid records */
	bool closed;          /* no more appends */
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
	bool writing;        /* the writer holds a group */

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

	/* reader (db thread) */
	size_t r_idx;        /* segment being read */
	uint64_t r_off;
	int r_fd;
	uint64_t r_fd_seq;   /* first_seq of the segment r_fd is open on */
	unsigned char *rbuf;

	void (*hook)(void *);
	void *hook_arg;

	atomic_uint_fast64_t appends, append_failures, fsyncs, torn, bytes;
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

static bool
journal_open_segment(void)
{
	char path[PATH_MAX + 32];
	struct journal_segment *s;
	int dfd;

	journal_seg_path(path, sizeof(path), jn.next_seq);
	jn.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (jn.fd < 0) {
		log_error("journal: could not create \"%s\": %s", path, strerror(errno));
		return false;
	}
	dfd = open(jn.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
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
			log_error("journal: could not write: %s", w < 0 ? strerror(errno) : "no progress");
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

	if (jn.fd < 0 && !journal_open_segment())
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
	/* what reached the disk of this group is not counted durable; start a new segment */
	journal_close_segment();
fail:
	atomic_store(&jn.failing, true);
	for (it = list; it; it = it->next)
		atomic_fetch_add(&jn.append_failures, 1);
	journal_complete(list, false);
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

		while (!jn.qhead && !jn.stop)
			pthread_cond_wait(&jn.qcond, &jn.qlock);
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

static int
journal_cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct journal_segment *)a)->first_seq;
	uint64_t y = ((const struct journal_segment *)b)->first_seq;

	return x < y ? -1 : x > y;
}

/* Validate one segment; set its end and last_seq to the last good record; count the records
 * after the checkpoint. */
static bool
journal_scan_segment(struct journal_segment *s, uint64_t *max_seq)
{
	char path[PATH_MAX + 32];
	unsigned char hdr[JOURNAL_HDR];
	uint64_t off = 0, prev = s->first_seq - 1;
	struct stat st;
	int fd;

	journal_seg_path(path, sizeof(path), s->first_seq);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		log_error("journal: could not open \"%s\": %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	for (;;) {
		uint32_t len, crc;
		uint64_t seq;
		ssize_t n = pread(fd, hdr, JOURNAL_HDR, (off_t)off);

		if (n == 0)
			break;
		if (n != JOURNAL_HDR)
			goto torn;
		memcpy(&len, hdr, 4);
		memcpy(&crc, hdr + 4, 4);
		memcpy(&seq, hdr + 8, 8);
		if (len == 0 || len > JOURNAL_MAX_RECORD || seq <= prev || seq >= JOURNAL_SEQ_MAX)
			goto torn;
		if (pread(fd, jn.rbuf, len, (off_t)(off + JOURNAL_HDR)) != (ssize_t)len ||
		    journal_crc(seq, jn.rbuf, len) != crc)
			goto torn;
		prev = seq;
		off += JOURNAL_HDR + len;
		if (seq > jn.checkpoint)
			jn.pending++;
	}
	goto done;
torn:
	atomic_fetch_add(&jn.torn, 1);
	log_warning("journal: \"%s\": torn or corrupt record at offset %" PRIu64 " (%" PRIu64
		    " bytes after it skipped)",
		path, off, (uint64_t)st.st_size - off);
done:
	close(fd);
	s->end = off;
	s->last_seq = prev >= s->first_seq ? prev : 0;
	s->closed = true;
	if (prev >= s->first_seq && prev > *max_seq)
		*max_seq = prev;
	atomic_fetch_add(&jn.bytes, (uint64_t)st.st_size);
	return true;
}

static uint64_t
journal_read_checkpoint(void)
{
	char path[PATH_MAX + 32], buf[64], *end;
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/checkpoint", jn.dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	/* digits only: sscanf would read "-1" as the largest number and every record after it
	 * would count as drained */
	if (!fgets(buf, sizeof(buf), f) || buf[0] < '0' || buf[0] > '9' ||
	    (errno = 0, v = strtoull(buf, &end, 10), errno != 0) ||
	    (*end != '\n' && *end != 0) || v >= JOURNAL_SEQ_MAX) {
		log_warning("journal: ignoring unreadable \"%s\" (every record is drained again: "
			    "they are idempotent)", path);
		v = 0;
	}
	fclose(f);
	return (uint64_t)v;
}

bool
journal_setup(const char *state_dir)
{
	DIR *d;
	struct dirent *de;
	uint64_t max_seq = 0;

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
		char tail[8];

		if (sscanf(de->d_name, "%16" SCNx64 "%7s", &first, tail) != 2 ||
		    strcmp(tail, ".jnl") != 0 || strlen(de->d_name) != 20 || first == 0)
			continue;
		if (first >= JOURNAL_SEQ_MAX) {
			/* not one of ours: its number would overflow the sequence */
			log_warning("journal: ignoring \"%s/%s\" (sequence number out of range)",
				jn.dir, de->d_name);
			continue;
		}
		if (jn.nsegs == jn.capsegs) {
			size_t cap = jn.capsegs ? jn.capsegs * 2 : 16;
			struct journal_segment *p = realloc(jn.segs, cap * sizeof(*p));

			if (!p) {
				closedir(d);
				return false;
			}
			jn.segs = p;
			jn.capsegs = cap;
		}
		memset(&jn.segs[jn.nsegs], 0, sizeof(jn.segs[0]));
		jn.segs[jn.nsegs++].first_seq = first;
	}
	closedir(d);
	if (jn.nsegs)
		qsort(jn.segs, jn.nsegs, sizeof(*jn.segs), journal_cmp_seg);
	jn.checkpoint = journal_read_checkpoint();
	for (size_t i = 0; i < jn.nsegs; i++)
		if (!journal_scan_segment(&jn.segs[i], &max_seq))
			return false;
	/* a segment with no valid record (a crash between its creation and its first fdatasync)
	 * holds nothing: remove it, or its name would block a new segment of the same number */
	for (size_t i = 0; i < jn.nsegs;) {
		char p[PATH_MAX + 32];

		if (jn.segs[i].last_seq != 0) {
			i++;
			continue;
		}
		journal_seg_path(p, sizeof(p), jn.segs[i].first_seq);
		if (unlink(p) != 0 && errno != ENOENT) {
			log_error("journal: could not remove empty segment \"%s\": %s", p,
				strerror(errno));
			return false;
		}
		log_info("journal: removed \"%s\" (no complete record)", p);
		if (jn.segs[i].first_seq > max_seq)
			max_seq = jn.segs[i].first_seq; /* never reuse its number */
		memmove(&jn.segs[i], &jn.segs[i + 1], (jn.nsegs - i - 1) * sizeof(*jn.segs));
		jn.nsegs--;
	}
	jn.durable_seq = max_seq;
	/* never reuse a sequence number the checkpoint could cover */
	jn.next_seq = (max_seq > jn.checkpoint ? max_seq : jn.checkpoint) + 1;
	log_info("journal: replayed %zu segment%s in \"%s\": last record %" PRIu64
		 ", checkpoint %" PRIu64 ", %" PRIu64 " record%s to drain",
		jn.nsegs, jn.nsegs == 1 ? "" : "s", jn.dir, max_seq, jn.checkpoint, jn.pending,
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
	jn.wbuf = jn.rbuf = NULL;
	jn.segs = NULL;
	jn.nsegs = jn.capsegs = jn.wcap = 0;
	jn.fd = jn.r_fd = -1;
	jn.r_idx = 0;
	jn.r_off = 0;
	jn.pending = 0;
	jn.checkpoint = 0;
	jn.durable_seq = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Reader (db thread)                                                                          */

void
journal_set_durable_hook(void (*hook)(void *), void *arg)
{
	jn.hook_arg = arg;
	jn.hook = hook;
}

size_t
journal_read(size_t max, journal_record_fn cb, void *arg)
{
	size_t count = 0;

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
		if (jn.r_fd < 0 || jn.r_fd_seq != s.first_seq) {
			char path[PATH_MAX + 32];

			if (jn.r_fd >= 0)
				close(jn.r_fd);
			journal_seg_path(path, sizeof(path), s.first_seq);
			jn.r_fd = open(path, O_RDONLY | O_CLOEXEC);
			if (jn.r_fd < 0) {
				log_error("journal: could not open \"%s\": %s", path, strerror(errno));
				break;
			}
			jn.r_fd_seq = s.first_seq;
		}
		if (pread(jn.r_fd, hdr, JOURNAL_HDR, (off_t)jn.r_off) != JOURNAL_HDR)
			goto bad;
		memcpy(&len, hdr, 4);
		memcpy(&crc, hdr + 4, 4);
		memcpy(&seq, hdr + 8, 8);
		if (len == 0 || len > JOURNAL_MAX_RECORD || jn.r_off + JOURNAL_HDR + len > s.end ||
		    pread(jn.r_fd, jn.rbuf, len, (off_t)(jn.r_off + JOURNAL_HDR)) != (ssize_t)len ||
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
		/* durable records were checked when written or replayed: this is the disk */
		log_error("journal: segment %016" PRIx64 " unreadable at offset %" PRIu64
			  "; skipping the rest of it", s.first_seq, jn.r_off);
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
	jn.r_idx = 0;
	jn.r_off = 0;
}

void
journal_checkpoint(uint64_t seq, uint64_t records)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
	size_t drop = 0;
	FILE *f;

	if (seq <= jn.checkpoint)
		return;
	pthread_mutex_lock(&jn.slock);
	jn.checkpoint = seq;
	jn.pending = jn.pending > records ? jn.pending - records : 0;
	pthread_mutex_unlock(&jn.slock);
	/* a hint only: a lost checkpoint replays committed records, which are idempotent */
	snprintf(path, sizeof(path), "%s/checkpoint", jn.dir);
	snprintf(tmp, sizeof(tmp), "%s/checkpoint.tmp", jn.dir);
	f = fopen(tmp, "we");
	if (f) {
		fprintf(f, "%" PRIu64 "\n", seq);
		if (fclose(f) == 0)
			rename(tmp, path);
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
	s->checkpoint_seq = jn.checkpoint;
	s->pending = jn.pending;
	pthread_mutex_unlock(&jn.slock);
	s->bytes_on_disk = bytes;
	s->appends = atomic_load(&jn.appends);
	s->append_failures = atomic_load(&jn.append_failures);
	s->fsyncs = atomic_load(&jn.fsyncs);
	s->torn_records = atomic_load(&jn.torn);
	s->writable = !atomic_load(&jn.failing);
}
