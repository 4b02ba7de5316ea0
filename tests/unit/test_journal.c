/* test_journal.c: replay under damage: flipped bytes, cuts, bad segments, bad checkpoints. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "journal.h"

/*
 * A journal of NSEG segments of PER_SEG records each is built once through the public API
 * (journal_setup, journal_start, journal_append with a waiter on a private event_base; one
 * restart per segment), and its files kept in memory.  Each shape of damage is then written
 * to a fresh state directory, replayed (journal_setup + journal_read), drained (a checkpoint
 * at the last record read) and appended to, and checked against a model of what is intact:
 *   - every intact record above the checkpoint is read exactly once, in sequence order, and
 *     nothing else is (a record read is byte for byte one that was written);
 *   - the segments the model calls damaged are in journal/quarantine/ with their bytes
 *     (nothing deleted), and no other;
 *   - a new append gets a sequence number above every one seen in any file.
 * Set TEST_JOURNAL_VERBOSE=1 to see the daemon's log lines (they go to /dev/null otherwise).
 */

#define NSEG 3
#define PER_SEG 4
#define NREC (NSEG * PER_SEG)
#define HDR 16

struct rec {
	int seg;
	size_t off, size; /* header included */
	uint64_t seq;
	char payload[96];
	size_t len;
};

struct seg {
	uint64_t name;
	unsigned char *buf;
	size_t size;
};

static struct rec recs[NREC];
static struct seg segs[NSEG];
static char state[128], jdir[160], qdir[192];
static struct event_base *base;
static uint32_t crc_table[256];
static int quiet_fd = -1, saved_stderr = -1;

struct shape {
	char what[96];
	unsigned char *buf[NSEG];
	size_t size[NSEG];
	uint64_t name[NSEG];
	bool intact[NREC];
	bool quarantined[NSEG];
	const char *checkpoint; /* the checkpoint file's text, or NULL for none */
	uint64_t cp_seq;        /* the checkpoint replay must take */
	bool cp_reset;          /* ... after finding this one unusable */
	int torn;               /* torn tails expected (a crash's, not damage) */
	bool misnamed;          /* quarantined for their names: no record lost */
};

static uint32_t
crc32c(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;

	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void
quiet(bool on)
{
	if (getenv("TEST_JOURNAL_VERBOSE"))
		return;
	fflush(stderr);
	if (on) {
		saved_stderr = dup(2);
		dup2(quiet_fd, 2);
	} else if (saved_stderr >= 0) {
		dup2(saved_stderr, 2);
		close(saved_stderr);
		saved_stderr = -1;
	}
}

static void
shape_fail(const struct shape *sh, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	journal_cleanup(); /* the next shape starts from nothing */
	quiet(false);
	fail_msg("%s: %s", sh->what, msg);
}

static void
empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static void
wipe(void)
{
	empty_dir(qdir);
	rmdir(qdir);
	empty_dir(jdir);
}

static void
write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	if (n)
		assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

static unsigned char *
read_file(const char *path, size_t *n)
{
	unsigned char *buf = NULL;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0) {
		buf = malloc((size_t)st.st_size + 1);
		assert_non_null(buf);
		assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
		*n = (size_t)st.st_size;
	}
	close(fd);
	return buf;
}

static void
done_cb(void *arg, bool durable)
{
	*(int *)arg = durable ? 1 : 0;
}

/* Start the writer, append payload, wait until it is durable. */
static void
append_one(const char *payload)
{
	struct journal_waiter *w = journal_waiter_new(base, done_cb);
	int durable = -1;

	assert_non_null(w);
	assert_true(journal_start());
	assert_true(journal_append(w, payload, strlen(payload), &durable));
	while (!journal_idle())
		sched_yield();
	while (durable < 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	assert_int_equal(durable, 1);
	journal_stop();
	journal_waiter_free(w);
}

struct reading {
	const struct shape *sh;
	uint64_t last;
	int count;
	int seen[NREC];
	const char *want; /* reading back an append */
	uint64_t want_seq;
};

static bool
read_cb(uint64_t seq, const void *payload, size_t len, void *arg)
{
	struct reading *r = arg;

	if (r->count && seq <= r->last)
		shape_fail(r->sh, "record %" PRIu64 " read after %" PRIu64, seq, r->last);
	r->last = seq;
	r->count++;
	if (r->want) {
		if (len != strlen(r->want) || memcmp(payload, r->want, len) != 0)
			shape_fail(r->sh, "the appended record reads back wrong");
		r->want_seq = seq;
		return true;
	}
	for (int i = 0; i < NREC; i++) {
		if (recs[i].seq != seq)
			continue;
		if (len != recs[i].len || memcmp(payload, recs[i].payload, len) != 0)
			shape_fail(r->sh, "record %" PRIu64 " read with other bytes than written",
				seq);
		r->seen[i]++;
		return true;
	}
	shape_fail(r->sh, "record %" PRIu64 " read, never written", seq);
	return true;
}

/* Build the journal once through the public API; keep its files. */
static int
setup_journal(void **st)
{
	const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	int n = 0;

	(void)st;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
	quiet_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	snprintf(state, sizeof(state), "%s/callrouted-test-journal-XXXXXX", tmp);
	if (!mkdtemp(state) || evthread_use_pthreads() != 0)
		return -1;
	snprintf(jdir, sizeof(jdir), "%s/journal", state);
	snprintf(qdir, sizeof(qdir), "%s/quarantine", jdir);
	base = event_base_new();
	if (!base)
		return -1;
	quiet(true);
	for (int s = 0; s < NSEG; s++) {
		struct journal_waiter *w;
		int durable[PER_SEG];

		if (!journal_setup(state) || !journal_start())
			return -1;
		w = journal_waiter_new(base, done_cb);
		for (int k = 0; k < PER_SEG; k++, n++) {
			/* lengths differ, so a cut or a flip is never at the same place twice */
			snprintf(recs[n].payload, sizeof(recs[n].payload),
				"{\"p\":\"retell\",\"id\":\"call-%03d%.*s\",\"k\":\"end\",\"dur\":%d}",
				n, n % 5, "xxxxx", 1000 * n);
			recs[n].len = strlen(recs[n].payload);
			durable[k] = -1;
			if (!journal_append(w, recs[n].payload, recs[n].len, &durable[k]))
				return -1;
			/* one record per group commit, so a segment's records are in order */
			while (!journal_idle())
				sched_yield();
			while (durable[k] < 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
				;
			if (durable[k] != 1)
				return -1;
		}
		journal_cleanup();
		journal_waiter_free(w);
	}
	quiet(false);
	/* the files, and where each record is in them */
	n = 0;
	for (int s = 0; s < NSEG; s++) {
		char path[512];
		size_t off = 0;

		segs[s].name = (uint64_t)s * PER_SEG + 1;
		snprintf(path, sizeof(path), "%s/%016" PRIx64 ".jnl", jdir, segs[s].name);
		segs[s].buf = read_file(path, &segs[s].size);
		if (!segs[s].buf)
			return -1;
		for (int k = 0; k < PER_SEG; k++, n++) {
			uint32_t len;

			memcpy(&len, segs[s].buf + off, 4);
			memcpy(&recs[n].seq, segs[s].buf + off + 8, 8);
			if (len != recs[n].len || recs[n].seq != (uint64_t)n + 1 ||
				memcmp(segs[s].buf + off + HDR, recs[n].payload, len) != 0)
				return -1;
			recs[n].seg = s;
			recs[n].off = off;
			recs[n].size = HDR + len;
			off += HDR + len;
		}
		if (off != segs[s].size)
			return -1;
	}
	return 0;
}

static int
teardown_journal(void **st)
{
	(void)st;
	wipe();
	rmdir(jdir);
	empty_dir(state);
	rmdir(state);
	for (int s = 0; s < NSEG; s++)
		free(segs[s].buf);
	event_base_free(base);
	close(quiet_fd);
	return 0;
}

/* A pristine copy of the journal. */
static void
shape_init(struct shape *sh, const char *fmt, ...)
{
	va_list ap;

	memset(sh, 0, sizeof(*sh));
	va_start(ap, fmt);
	vsnprintf(sh->what, sizeof(sh->what), fmt, ap);
	va_end(ap);
	for (int s = 0; s < NSEG; s++) {
		sh->buf[s] = malloc(segs[s].size + 1);
		assert_non_null(sh->buf[s]);
		memcpy(sh->buf[s], segs[s].buf, segs[s].size);
		sh->size[s] = segs[s].size;
		sh->name[s] = segs[s].name;
	}
	for (int i = 0; i < NREC; i++)
		sh->intact[i] = true;
}

static void
shape_free(struct shape *sh)
{
	for (int s = 0; s < NSEG; s++)
		free(sh->buf[s]);
}

static bool
is_newest(const struct shape *sh, int s)
{
	for (int t = 0; t < NSEG; t++)
		if (sh->name[t] > sh->name[s])
			return false;
	return true;
}

/* The model: record r (of segment s) is damaged, the rest of s is intact and in place. */
static void
model_record_damaged(struct shape *sh, int r)
{
	int s = recs[r].seg;
	bool last = r % PER_SEG == PER_SEG - 1;

	sh->intact[r] = false;
	if (last && is_newest(sh, s) && PER_SEG > 1)
		sh->torn++; /* the newest segment's tail: what a crash mid-write leaves */
	else
		sh->quarantined[s] = true;
}

/* The model: segment s cut at t. */
static void
model_cut(struct shape *sh, int s, size_t t)
{
	bool any = false, boundary = t == 0;

	for (int r = s * PER_SEG; r < (s + 1) * PER_SEG; r++) {
		if (recs[r].off + recs[r].size <= t)
			any = true;
		else
			sh->intact[r] = false;
		if (recs[r].off + recs[r].size == t)
			boundary = true;
	}
	if (t == 0 || boundary)
		return; /* removed when empty; a cut between records leaves nothing to keep */
	if (any && is_newest(sh, s))
		sh->torn++;
	else
		sh->quarantined[s] = true;
}

static bool
in_quarantine(const unsigned char *buf, size_t size, int *files)
{
	DIR *d = opendir(qdir);
	struct dirent *de;
	bool found = false;

	*files = 0;
	if (!d)
		return false;
	while ((de = readdir(d)) != NULL) {
		char path[512];
		unsigned char *b;
		size_t n = 0;

		if (de->d_name[0] == '.')
			continue;
		(*files)++;
		snprintf(path, sizeof(path), "%s/%s", qdir, de->d_name);
		b = read_file(path, &n);
		if (b && n == size && memcmp(b, buf, n) == 0)
			found = true;
		free(b);
	}
	closedir(d);
	return found;
}

static void
run_shape(struct shape *sh)
{
	struct journal_stats before, after, st;
	struct reading rd = { .sh = sh };
	uint64_t bound = 0, drained = 0;
	char path[512], payload[64];
	int files = 0, want_q = 0;

	wipe();
	for (int s = 0; s < NSEG; s++) {
		snprintf(path, sizeof(path), "%s/%016" PRIx64 ".jnl", jdir, sh->name[s]);
		write_file(path, sh->buf[s], sh->size[s]);
		/* (an empty file is removed at replay: a restart after that no longer sees its
		 * name, and it held no record to confuse with a new one) */
		if (sh->size[s] && sh->name[s] > bound)
			bound = sh->name[s];
	}
	if (sh->checkpoint) {
		snprintf(path, sizeof(path), "%s/checkpoint", jdir);
		write_file(path, sh->checkpoint, strlen(sh->checkpoint));
	}
	quiet(true);
	journal_get_stats(&before);
	if (!journal_setup(state))
		shape_fail(sh, "journal_setup failed");
	journal_get_stats(&after);
	if (after.checkpoint_seq != sh->cp_seq)
		shape_fail(sh, "checkpoint %" PRIu64 ", want %" PRIu64, after.checkpoint_seq,
			sh->cp_seq);
	if ((after.checkpoint_resets - before.checkpoint_resets != 0) != sh->cp_reset)
		shape_fail(sh, "checkpoint reset counted %" PRIu64 " times",
			after.checkpoint_resets - before.checkpoint_resets);
	journal_read(SIZE_MAX, read_cb, &rd);
	if (journal_read(SIZE_MAX, read_cb, &rd) != 0)
		shape_fail(sh, "a second read found more");
	for (int i = 0; i < NREC; i++) {
		int want = sh->intact[i] && recs[i].seq > sh->cp_seq;

		if (rd.seen[i] != want)
			shape_fail(sh, "record %" PRIu64 " (%s) read %d times", recs[i].seq,
				sh->intact[i] ? "intact" : "damaged", rd.seen[i]);
		if (sh->intact[i] && recs[i].seq > bound)
			bound = recs[i].seq;
		if (want)
			drained++;
	}
	if (after.pending - before.pending != drained)
		shape_fail(sh, "%" PRIu64 " records counted to drain, %" PRIu64 " read",
			after.pending - before.pending, drained);
	if (sh->cp_seq > bound)
		bound = sh->cp_seq;
	/* what the model calls damaged is counted (and only that) */
	for (int s = 0; s < NSEG; s++)
		want_q += sh->quarantined[s];
	if (after.quarantined_segments - before.quarantined_segments != (uint64_t)want_q)
		shape_fail(sh, "%" PRIu64 " segments counted quarantined, want %d",
			after.quarantined_segments - before.quarantined_segments, want_q);
	if ((after.corrupt_records - before.corrupt_records != 0) != (want_q != 0 && !sh->misnamed))
		shape_fail(sh, "%" PRIu64 " corrupt records counted",
			after.corrupt_records - before.corrupt_records);
	if (after.torn_records - before.torn_records != (uint64_t)sh->torn)
		shape_fail(sh, "%" PRIu64 " torn tails counted, want %d",
			after.torn_records - before.torn_records, sh->torn);

	/* the drain: everything read is in the ledger */
	if (rd.count)
		journal_checkpoint(rd.last, (uint64_t)rd.count);
	journal_get_stats(&st);
	if (st.pending != after.pending - drained)
		shape_fail(sh, "%" PRIu64 " still pending after the drain", st.pending);
	for (int s = 0; s < NSEG; s++) {
		bool there = in_quarantine(sh->buf[s], sh->size[s], &files);

		if (there != sh->quarantined[s])
			shape_fail(sh, "segment %d (%016" PRIx64 ") %s quarantine", s, sh->name[s],
				there ? "in" : "not in");
	}
	if (files != want_q)
		shape_fail(sh, "%d files in quarantine, want %d", files, want_q);

	/* a restart after the drain: nothing more to drain, the checkpoint trusted */
	journal_cleanup();
	journal_get_stats(&before);
	if (!journal_setup(state))
		shape_fail(sh, "journal_setup failed after the drain");
	journal_get_stats(&after);
	if (rd.count && (after.checkpoint_seq != rd.last || after.pending != 0 ||
				after.checkpoint_resets != before.checkpoint_resets))
		shape_fail(sh,
			"after the drain and a restart: checkpoint %" PRIu64 " (want %" PRIu64
			"), %" PRIu64 " pending, %" PRIu64 " resets",
			after.checkpoint_seq, rd.last, after.pending,
			after.checkpoint_resets - before.checkpoint_resets);
	if (after.quarantined_segments != before.quarantined_segments)
		shape_fail(sh, "the restart after the drain quarantined more");
	rd.count = 0;
	if (journal_read(SIZE_MAX, read_cb, &rd) != 0 && rd.count)
		shape_fail(sh, "the restart after the drain reads %d records again", rd.count);

	/* a new record: numbered above everything seen, read back */
	snprintf(payload, sizeof(payload), "{\"p\":\"vapi\",\"id\":\"after\"}");
	append_one(payload);
	rd.want = payload;
	rd.count = 0;
	if (journal_read(SIZE_MAX, read_cb, &rd) != 1)
		shape_fail(sh, "the appended record is not read back");
	if (rd.want_seq <= bound)
		shape_fail(sh, "appended record %" PRIu64 ", but %" PRIu64 " was seen", rd.want_seq,
			bound);
	journal_cleanup();
	quiet(false);
}

static void
test_intact(void **st)
{
	struct shape sh;

	(void)st;
	shape_init(&sh, "no damage");
	run_shape(&sh);
	shape_free(&sh);
}

static void
test_flip_every_byte(void **st)
{
	(void)st;
	for (int s = 0; s < NSEG; s++) {
		for (size_t o = 0; o < segs[s].size; o++) {
			struct shape sh;
			int r = s * PER_SEG;

			shape_init(&sh, "segment %d, byte %zu flipped", s, o);
			sh.buf[s][o] ^= (unsigned char)(o % 3 == 0 ? 0xff : 1u << (o % 8));
			while (recs[r].off + recs[r].size <= o)
				r++;
			model_record_damaged(&sh, r);
			run_shape(&sh);
			shape_free(&sh);
		}
	}
}

static void
test_cut_every_offset(void **st)
{
	(void)st;
	for (int s = 0; s < NSEG; s++) {
		for (size_t t = 0; t < segs[s].size; t++) {
			struct shape sh;

			shape_init(&sh, "segment %d cut at %zu", s, t);
			sh.size[s] = t;
			model_cut(&sh, s, t);
			run_shape(&sh);
			shape_free(&sh);
		}
	}
}

/* Each record zeroed, and bytes taken out of the middle of each (its framing lost). */
static void
test_zeroed_and_spliced_records(void **st)
{
	(void)st;
	for (int r = 0; r < NREC; r++) {
		struct shape sh;
		int s = recs[r].seg;
		size_t at = recs[r].off + 4;

		shape_init(&sh, "record %d zeroed", r);
		memset(sh.buf[s] + recs[r].off, 0, recs[r].size);
		model_record_damaged(&sh, r);
		run_shape(&sh);
		shape_free(&sh);

		shape_init(&sh, "6 bytes taken out of record %d", r);
		memmove(sh.buf[s] + at, sh.buf[s] + at + 6, sh.size[s] - at - 6);
		sh.size[s] -= 6;
		model_record_damaged(&sh, r);
		run_shape(&sh);
		shape_free(&sh);

		shape_init(&sh, "record %d with a garbage length", r);
		memset(sh.buf[s] + recs[r].off, 0x7f, 4);
		model_record_damaged(&sh, r);
		run_shape(&sh);
		shape_free(&sh);
	}
}

static void
test_zeroed_and_swapped_segments(void **st)
{
	(void)st;
	for (int s = 0; s < NSEG; s++) {
		struct shape sh;

		shape_init(&sh, "segment %d zeroed", s);
		memset(sh.buf[s], 0, sh.size[s]);
		for (int r = s * PER_SEG; r < (s + 1) * PER_SEG; r++)
			sh.intact[r] = false;
		sh.quarantined[s] = true;
		run_shape(&sh);
		shape_free(&sh);

		shape_init(&sh, "segment %d garbage", s);
		for (size_t o = 0; o < sh.size[s]; o++)
			sh.buf[s][o] = (unsigned char)(o * 131 + 7);
		for (int r = s * PER_SEG; r < (s + 1) * PER_SEG; r++)
			sh.intact[r] = false;
		sh.quarantined[s] = true;
		run_shape(&sh);
		shape_free(&sh);
	}
	for (int a = 0; a < NSEG; a++) {
		for (int b = a + 1; b < NSEG; b++) {
			struct shape sh;
			uint64_t t;

			shape_init(&sh, "segments %d and %d swapped", a, b);
			t = sh.name[a];
			sh.name[a] = sh.name[b];
			sh.name[b] = t;
			sh.quarantined[a] = sh.quarantined[b] = true;
			sh.misnamed = true;
			run_shape(&sh);
			shape_free(&sh);
		}
	}
	{
		struct shape sh;

		/* two damaged segments at once, and a record damaged in the third */
		shape_init(&sh, "segment 0 zeroed, segment 1 cut, record 9 flipped");
		memset(sh.buf[0], 0, sh.size[0]);
		for (int r = 0; r < PER_SEG; r++)
			sh.intact[r] = false;
		sh.quarantined[0] = true;
		sh.size[1] = recs[PER_SEG + 1].off + 3;
		model_cut(&sh, 1, sh.size[1]);
		sh.buf[2][recs[9].off + HDR + 2] ^= 0x20;
		model_record_damaged(&sh, 9);
		run_shape(&sh);
		shape_free(&sh);
	}
}

static void
test_checkpoints(void **st)
{
	char good[64], ahead[64], badcrc[64];
	uint64_t six = 6, far = 1000;
	struct {
		const char *text;
		uint64_t seq;
		bool reset;
	} cases[] = {
		{ good, 6, false },
		{ "6\n", 6, false }, /* the format of older versions */
		{ "6", 6, false },
		{ ahead, 0, true },
		{ "1000\n", 0, true },
		{ badcrc, 0, true },
		{ "hello\n", 0, true },
		{ "", 0, true },
		{ "-1\n", 0, true },
		{ "18446744073709551615\n", 0, true },
		{ "checkpoint 6 ", 0, true },
		{ "6\n7\n", 0, true },
	};

	(void)st;
	snprintf(good, sizeof(good), "checkpoint 6 %08" PRIx32 "\n", crc32c(0, &six, 8));
	snprintf(ahead, sizeof(ahead), "checkpoint 1000 %08" PRIx32 "\n", crc32c(0, &far, 8));
	snprintf(badcrc, sizeof(badcrc), "checkpoint 6 %08" PRIx32 "\n", crc32c(0, &six, 8) ^ 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct shape sh;

		shape_init(&sh, "checkpoint \"%s\"", cases[i].text);
		sh.checkpoint = cases[i].text;
		sh.cp_seq = cases[i].seq;
		sh.cp_reset = cases[i].reset;
		run_shape(&sh);
		shape_free(&sh);
	}
}

/* The checkpoint written is read back as written, and survives a restart. */
static void
test_checkpoint_round_trip(void **st)
{
	struct journal_stats js;
	struct shape sh;
	char path[512], want[64];
	unsigned char *text;
	uint64_t seq = 9;
	size_t n = 0;

	(void)st;
	shape_init(&sh, "checkpoint round trip");
	wipe();
	for (int s = 0; s < NSEG; s++) {
		snprintf(path, sizeof(path), "%s/%016" PRIx64 ".jnl", jdir, sh.name[s]);
		write_file(path, sh.buf[s], sh.size[s]);
	}
	quiet(true);
	assert_true(journal_setup(state));
	journal_checkpoint(9, 9);
	journal_cleanup();
	assert_true(journal_setup(state));
	journal_get_stats(&js);
	journal_cleanup();
	quiet(false);
	assert_int_equal(js.checkpoint_seq, 9);
	assert_int_equal(js.pending, NREC - 9);
	snprintf(path, sizeof(path), "%s/checkpoint", jdir);
	text = read_file(path, &n);
	assert_non_null(text);
	snprintf(want, sizeof(want), "checkpoint 9 %08" PRIx32 "\n", crc32c(0, &seq, 8));
	assert_int_equal(n, strlen(want));
	assert_memory_equal(text, want, n);
	free(text);
	shape_free(&sh);
}

/* A move to quarantine/ that fails leaves the segment where it is, counted, tried once. */
static void
test_quarantine_move_fails(void **st)
{
	struct journal_stats before, after;
	char path[512];
	unsigned char *b;
	size_t n = 0;

	(void)st;
	wipe();
	for (int s = 0; s < NSEG; s++) {
		snprintf(path, sizeof(path), "%s/%016" PRIx64 ".jnl", jdir, segs[s].name);
		if (s == 0) {
			unsigned char *z = calloc(1, segs[s].size);

			assert_non_null(z);
			write_file(path, z, segs[s].size);
			free(z);
		} else {
			write_file(path, segs[s].buf, segs[s].size);
		}
	}
	write_file(qdir, "not a directory", 15);
	quiet(true);
	journal_get_stats(&before);
	assert_true(journal_setup(state));
	journal_checkpoint(NREC, NREC - PER_SEG);
	journal_get_stats(&after);
	journal_cleanup();
	quiet(false);
	assert_int_equal(after.quarantine_failures - before.quarantine_failures, 1);
	assert_int_equal(after.quarantined_segments - before.quarantined_segments, 1);
	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".jnl", jdir, segs[0].name);
	b = read_file(path, &n);
	assert_non_null(b);
	assert_int_equal(n, segs[0].size);
	free(b);
	unlink(qdir);
}

/* A segment removed by someone else after the replay: its records are skipped, counted. */
static void
test_segment_removed_under_the_reader(void **st)
{
	struct journal_stats before, after;
	struct shape sh;
	struct reading rd = { .sh = &sh };
	char path[512];

	(void)st;
	shape_init(&sh, "segment 1 removed after the replay");
	wipe();
	for (int s = 0; s < NSEG; s++) {
		snprintf(path, sizeof(path), "%s/%016" PRIx64 ".jnl", jdir, sh.name[s]);
		write_file(path, sh.buf[s], sh.size[s]);
	}
	quiet(true);
	journal_get_stats(&before);
	assert_true(journal_setup(state));
	snprintf(path, sizeof(path), "%s/%016" PRIx64 ".jnl", jdir, sh.name[1]);
	assert_int_equal(unlink(path), 0);
	journal_read(SIZE_MAX, read_cb, &rd);
	journal_get_stats(&after);
	journal_cleanup();
	quiet(false);
	for (int i = 0; i < NREC; i++)
		assert_int_equal(rd.seen[i], recs[i].seg != 1);
	assert_int_equal(after.corrupt_records - before.corrupt_records, PER_SEG);
	assert_int_equal(after.pending, NREC - PER_SEG);
	shape_free(&sh);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intact),
		cmocka_unit_test(test_flip_every_byte),
		cmocka_unit_test(test_cut_every_offset),
		cmocka_unit_test(test_zeroed_and_spliced_records),
		cmocka_unit_test(test_zeroed_and_swapped_segments),
		cmocka_unit_test(test_checkpoints),
		cmocka_unit_test(test_checkpoint_round_trip),
		cmocka_unit_test(test_quarantine_move_fails),
		cmocka_unit_test(test_segment_removed_under_the_reader),
	};

	return cmocka_run_group_tests(tests, setup_journal, teardown_journal);
}
