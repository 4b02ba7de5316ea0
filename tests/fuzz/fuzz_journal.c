/* fuzz_journal.c: libFuzzer target for journal replay (journal_setup + journal_read). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "fuzz_common.h"
#include "journal.h"

/*
 * Input: one flags byte, then the segment file state_dir/journal/0000000000000001.jnl.
 *   bit 0: fix up each record's CRC-32C (else mutations rarely get past the first record)
 *   bit 1: a checkpoint file: its text is the input up to the next '\n' (taken first)
 *   bit 2: after the replay, start the writer and append a record: it must become durable
 *          and be read back (the journal must keep working on whatever it replayed)
 *   bit 3: two segments: 8 bytes (the second's first seq) and 2 bytes (where the file is
 *          cut in two) come next
 * CALLROUTED_FUZZ_JOURNAL_APPEND=0 ignores bit 2 (to fuzz the replay alone while a known
 * append bug would stop every run at once).
 * The state dir is /dev/shm/callrouted-fuzz-journal-<pid> (tmpfs: fsync costs nothing),
 * emptied after each input and removed at exit; a crash leaves it behind, so start-up
 * removes those of processes that are gone.  journal.c keeps its state in globals: journal_cleanup() frees them and
 * journal_rewind() resets the read cursor, which journal_stop leaves behind.
 */

#define FZ_HDR 16

static char fz_state[64], fz_jdir[96];
static uint32_t fz_crc_table[256];
static struct event_base *fz_base;
static bool fz_no_append;

static uint32_t
fz_crc32c(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;

	crc = ~crc;
	while (n--)
		crc = fz_crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* Remove the files of dir (flat). */
static void
fz_empty_dir(const char *dir)
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
fz_clean(void)
{
	fz_empty_dir(fz_jdir);
}

static void
fz_remove_state(const char *state)
{
	char jdir[512];

	snprintf(jdir, sizeof(jdir), "%s/journal", state);
	fz_empty_dir(jdir);
	rmdir(jdir);
	fz_empty_dir(state);
	rmdir(state);
}

static void
fz_remove_all(void)
{
	fz_remove_state(fz_state);
}

/* State dirs left by crashed runs: those whose process is gone. */
static void
fz_sweep(const char *parent, const char *prefix)
{
	DIR *d = opendir(parent);
	struct dirent *de;
	size_t n = strlen(prefix);
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid;

		if (strncmp(de->d_name, prefix, n) != 0)
			continue;
		pid = strtol(de->d_name + n, &end, 10);
		if (*end || pid <= 0 || (pid != getpid() && (kill((pid_t)pid, 0) == 0 ||
							     errno != ESRCH)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", parent, de->d_name);
		fz_remove_state(path);
	}
	closedir(d);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		fz_crc_table[i] = c;
	}
	fz_sweep(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", "callrouted-fuzz-journal-");
	snprintf(fz_state, sizeof(fz_state), "%s/callrouted-fuzz-journal-%d",
		access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
	if (mkdir(fz_state, 0700) != 0)
		abort();
	snprintf(fz_jdir, sizeof(fz_jdir), "%s/journal", fz_state);
	atexit(fz_remove_all);
	if (evthread_use_pthreads() != 0)
		abort();
	fz_base = event_base_new();
	if (!fz_base)
		abort();
	fz_no_append = getenv("CALLROUTED_FUZZ_JOURNAL_APPEND") &&
		       strcmp(getenv("CALLROUTED_FUZZ_JOURNAL_APPEND"), "0") == 0;
	return 0;
}

/* Give each whole record in buf the CRC it should have. */
static void
fz_fix_crcs(unsigned char *buf, size_t len)
{
	size_t off = 0;

	while (off + FZ_HDR <= len) {
		uint32_t n, crc;
		uint64_t seq;

		memcpy(&n, buf + off, 4);
		memcpy(&seq, buf + off + 8, 8);
		if (n == 0 || n > JOURNAL_MAX_RECORD || n > len - off - FZ_HDR)
			break;
		crc = fz_crc32c(fz_crc32c(0, &seq, 8), buf + off + FZ_HDR, n);
		memcpy(buf + off + 4, &crc, 4);
		off += FZ_HDR + n;
	}
}

static void
fz_write(const char *name, const void *p, size_t n)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fz_jdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n) || close(fd) != 0)
		abort();
}

struct fz_read {
	uint64_t last, checkpoint;
	size_t count;
	bool ordered;         /* one segment: sequence numbers only go up */
	const void *want;     /* the appended record, when reading it back */
	size_t want_len;
	uint64_t want_seq;
};

static bool
fz_record(uint64_t seq, const void *payload, size_t len, void *arg)
{
	struct fz_read *r = arg;

	if (len == 0 || len > JOURNAL_MAX_RECORD)
		fuzz_fail("record %" PRIu64 " of %zu bytes", seq, len);
	if (seq <= r->checkpoint)
		fuzz_fail("record %" PRIu64 " at or below the checkpoint %" PRIu64, seq,
			r->checkpoint);
	if (r->ordered && r->count && seq <= r->last)
		fuzz_fail("record %" PRIu64 " after %" PRIu64 " in one segment", seq, r->last);
	if (r->want && (seq != r->want_seq || len != r->want_len || memcmp(payload, r->want, len)))
		fuzz_fail("read back record %" PRIu64 " (%zu bytes), appended %" PRIu64, seq, len,
			r->want_seq);
	r->last = seq;
	r->count++;
	return true;
}

static void
fz_done(void *arg, bool durable)
{
	*(int *)arg = durable ? 1 : 0;
}

/* Start the writer, append one record, wait until it is written, read it back. */
static void
fz_append(struct fz_read *rd, uint64_t next_seq)
{
	static const char payload[] = "{\"p\":\"retell\",\"id\":\"fuzz\"}";
	struct journal_waiter *w = journal_waiter_new(fz_base, fz_done);
	int durable = -1;

	if (!w || !journal_start())
		abort();
	if (!journal_append(w, payload, sizeof(payload) - 1, &durable))
		fuzz_fail("journal_append refused");
	while (!journal_idle())
		sched_yield();
	while (durable < 0 && event_base_loop(fz_base, EVLOOP_ONCE) == 0)
		;
	if (durable != 1)
		fuzz_fail("an append after this replay is not durable (next seq %" PRIu64 ")",
			next_seq);
	rd->want = payload;
	rd->want_len = sizeof(payload) - 1;
	rd->want_seq = next_seq;
	rd->count = 0;
	rd->ordered = false;
	if (journal_read(SIZE_MAX, fz_record, rd) != 1)
		fuzz_fail("the appended record was not read back");
	journal_cleanup();
	journal_waiter_free(w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal_stats before, after;
	struct fz_read rd = { 0 };
	unsigned char *buf;
	uint8_t flags;
	uint64_t seq2 = 0;
	size_t cut = 0;
	char name[32];

	if (size == 0)
		return 0;
	flags = data[0];
	data++, size--;
	if (mkdir(fz_jdir, 0700) != 0 && errno != EEXIST)
		abort();
	if (flags & 2) {
		const uint8_t *f;
		size_t fl;
		bool nl = fuzz_take(&data, &size, '\n', &f, &fl);
		char *text = fuzz_strndup(f, fl + nl);

		if (nl)
			text[fl] = '\n';
		fz_write("checkpoint", text, fl + nl);
		free(text);
	}
	if ((flags & 8) && size >= 10) {
		memcpy(&seq2, data, 8);
		cut = (size_t)data[8] | (size_t)data[9] << 8;
		data += 10, size -= 10;
		cut = size ? cut % (size + 1) : 0;
	}
	buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	if (size)
		memcpy(buf, data, size);
	if (seq2 > 1) {
		if (flags & 1) {
			fz_fix_crcs(buf, cut);
			fz_fix_crcs(buf + cut, size - cut);
		}
		fz_write("0000000000000001.jnl", buf, cut);
		snprintf(name, sizeof(name), "%016" PRIx64 ".jnl", seq2);
		fz_write(name, buf + cut, size - cut);
	} else {
		if (flags & 1)
			fz_fix_crcs(buf, size);
		fz_write("0000000000000001.jnl", buf, size);
	}
	free(buf);

	journal_get_stats(&before);
	if (!journal_setup(fz_state))
		fuzz_fail("journal_setup failed");
	journal_rewind();
	journal_get_stats(&after);
	rd.checkpoint = after.checkpoint_seq;
	rd.ordered = seq2 <= 1;
	/* what replay counted to drain is what the reader gets (pending is not reset by
	 * journal_stop, hence the difference) */
	if (journal_read(SIZE_MAX, fz_record, &rd) != after.pending - before.pending)
		fuzz_fail("replay counted %" PRIu64 " records to drain, the reader got %zu",
			after.pending - before.pending, rd.count);
	if (rd.count && rd.last > after.durable_seq)
		fuzz_fail("read record %" PRIu64 " above the durable %" PRIu64, rd.last,
			after.durable_seq);
	if (journal_read(SIZE_MAX, fz_record, &rd) != 0)
		fuzz_fail("a second read found more records");
	if ((flags & 4) && !fz_no_append)
		fz_append(&rd, (after.durable_seq > rd.checkpoint ? after.durable_seq :
								   rd.checkpoint) + 1);
	else
		journal_cleanup();
	fz_clean();
	return 0;
}
