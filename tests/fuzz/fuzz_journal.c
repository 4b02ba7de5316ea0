/* fuzz_journal.c: libFuzzer target: journal replay (journal_setup + journal_read) over damage. */
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
 *   bit 4: a checkpoint in the current format ("checkpoint <seq> <CRC-32C>"): its seq is
 *          the next byte (taken before bit 3's; it replaces bit 1's text)
 *   bit 5: ... with a wrong CRC (it must be ignored: everything is drained)
 *   bit 6: drain: a checkpoint at the last record read; then no file may be gone unless it
 *          was clean (every byte in valid records from its first, named for it, in order,
 *          or with a torn tail where a crash leaves one)
 *   bit 7: the segment bytes are a program, not the file: per record one byte of payload
 *          length, one byte of damage (0 intact, 1 bad CRC, 2 garbage length, 3 zeroed
 *          header, 4 half the payload missing, 5 the seq of the record before), the payload
 *          (mapped to letters); records are numbered from 1.  Then every intact record (0)
 *          must be read, once, and nothing that was not written
 * Always: records are read in sequence order, each once, none below the checkpoint, as many
 * as the replay counted; no non-empty file is gone after the replay (it is in journal/ or in
 * journal/quarantine/, byte for byte); an append is numbered above every record read, the
 * checkpoint and every file name.
 * CALLROUTED_FUZZ_JOURNAL_APPEND=0 ignores bit 2 (to fuzz the replay alone while a known
 * append bug would stop every run at once).
 * The state dir is /dev/shm/callrouted-fuzz-journal-<pid> (tmpfs: fsync costs nothing),
 * emptied after each input and removed at exit; a crash leaves it behind, so start-up
 * removes those of processes that are gone.  journal.c keeps its state in globals:
 * journal_cleanup() frees them and journal_rewind() resets the read cursor, which journal_stop
 * leaves behind.
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
	char q[160];

	snprintf(q, sizeof(q), "%s/quarantine", fz_jdir);
	fz_empty_dir(q);
	rmdir(q);
	fz_empty_dir(fz_jdir);
}

static void
fz_remove_state(const char *state)
{
	char jdir[512];

	snprintf(jdir, sizeof(jdir), "%s/journal/quarantine", state);
	fz_empty_dir(jdir);
	rmdir(jdir);
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
		if (*end || pid <= 0 ||
			(pid != getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)))
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

#define FZ_PROG_MAX 512

struct fz_read {
	uint64_t last, checkpoint;
	size_t count;
	bool ordered;     /* sequence numbers only go up */
	const void *want; /* the appended record, when reading it back */
	size_t want_len;
	uint64_t want_above; /* ... numbered above this */
	/* bit 7: what was written, and how often each was read */
	size_t nprog;
	unsigned char prog_op[FZ_PROG_MAX];
	uint64_t prog_seq[FZ_PROG_MAX];
	size_t prog_off[FZ_PROG_MAX];
	unsigned char *prog_payload[FZ_PROG_MAX];
	size_t prog_len[FZ_PROG_MAX];
	unsigned prog_seen[FZ_PROG_MAX];
	const unsigned char *file; /* the program's bytes as written, cut in two at cut */
	size_t file_len, cut;
};

/* Damage that happens to leave a valid record: "half the payload missing" pulls the next
 * record's header into the payload, and those bytes may be exactly the missing ones (a
 * 1-byte payload 'R' followed by a length of 82). The bytes on disk are then a record like
 * any other and reading it is right. */
static bool
fz_intact_on_disk(const struct fz_read *r, size_t i)
{
	size_t off = r->prog_off[i], len = r->prog_len[i];
	size_t end = off < r->cut ? r->cut : r->file_len;
	uint64_t seq = r->prog_seq[i];
	uint32_t n, crc;
	uint64_t s;

	if (off + FZ_HDR + len > end)
		return false;
	memcpy(&n, r->file + off, 4);
	memcpy(&crc, r->file + off + 4, 4);
	memcpy(&s, r->file + off + 8, 8);
	return n == len && s == seq &&
	       memcmp(r->file + off + FZ_HDR, r->prog_payload[i], len) == 0 &&
	       fz_crc32c(fz_crc32c(0, &seq, 8), r->file + off + FZ_HDR, len) == crc;
}

/* ... and such a record covers the start of the next one, which the scan then cannot see:
 * it resumes after the valid record (a real disk overwrites or zeroes, it does not delete
 * bytes, so only this model's damage 4 makes two records overlap). */
static bool
fz_shadowed(const struct fz_read *r, size_t i)
{
	return i > 0 && r->prog_op[i - 1] == 4 && fz_intact_on_disk(r, i - 1) &&
	       r->prog_off[i - 1] + FZ_HDR + r->prog_len[i - 1] > r->prog_off[i];
}

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
		fuzz_fail("record %" PRIu64 " after %" PRIu64, seq, r->last);
	if (r->want &&
		(seq <= r->want_above || len != r->want_len || memcmp(payload, r->want, len)))
		fuzz_fail("read back record %" PRIu64 " (%zu bytes), want one above %" PRIu64, seq,
			len, r->want_above);
	if (!r->want && r->nprog) {
		size_t i, match = SIZE_MAX, damaged = SIZE_MAX;

		/* two records can be the same bytes: one intact is enough */
		for (i = 0; i < r->nprog && match == SIZE_MAX; i++) {
			if (r->prog_seq[i] != seq || r->prog_len[i] != len ||
				memcmp(r->prog_payload[i], payload, len) != 0)
				continue;
			if (r->prog_op[i] == 0 || r->prog_op[i] == 5 || fz_intact_on_disk(r, i))
				match = i;
			else
				damaged = i;
		}
		if (match == SIZE_MAX && damaged != SIZE_MAX)
			fuzz_fail("record %" PRIu64 " read, but it was damaged (%d)", seq,
				r->prog_op[damaged]);
		if (match == SIZE_MAX)
			fuzz_fail("record %" PRIu64 " (%zu bytes) read: never written so", seq,
				len);
		r->prog_seen[match]++;
	}
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
fz_append(struct fz_read *rd, uint64_t above)
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
		fuzz_fail("an append after this replay is not durable (above %" PRIu64 ")", above);
	rd->want = payload;
	rd->want_len = sizeof(payload) - 1;
	rd->want_above = above;
	rd->count = 0;
	rd->ordered = false;
	if (journal_read(SIZE_MAX, fz_record, rd) != 1)
		fuzz_fail("the appended record was not read back");
	journal_cleanup();
	journal_waiter_free(w);
}

/* Bit 7: build the segment from a program; remember what each record is. */
static size_t
fz_program(const uint8_t *data, size_t size, unsigned char *out, struct fz_read *rd)
{
	size_t o = 0, i = 0;

	while (i + 2 <= size && rd->nprog < FZ_PROG_MAX) {
		size_t plen = (size_t)data[i] + 1, n = rd->nprog;
		unsigned op = data[i + 1] % 6;
		uint64_t seq = n + 1;
		uint32_t len = (uint32_t)plen, crc;
		unsigned char *p;

		i += 2;
		if (plen > size - i)
			break;
		p = malloc(plen);
		if (!p)
			abort();
		/* letters: no header can hide in a payload (its length would be far too large) */
		for (size_t k = 0; k < plen; k++)
			p[k] = (unsigned char)(0x41 + data[i + k] % 26);
		i += plen;
		if (op == 5 && n > 0)
			seq = n; /* the number of the record before: a second, different record */
		else if (op == 5)
			op = 0;
		crc = fz_crc32c(fz_crc32c(0, &seq, 8), p, plen);
		if (op == 1)
			crc ^= 0x5a5a;
		if (op == 2)
			len = 0xfffffff0u;
		memcpy(out + o, &len, 4);
		memcpy(out + o + 4, &crc, 4);
		memcpy(out + o + 8, &seq, 8);
		if (op == 3)
			memset(out + o, 0, FZ_HDR);
		memcpy(out + o + FZ_HDR, p, plen);
		o += FZ_HDR + (op == 4 ? plen / 2 : plen);
		rd->prog_op[n] = (unsigned char)op;
		rd->prog_seq[n] = seq;
		rd->prog_off[n] = o - FZ_HDR - (op == 4 ? plen / 2 : plen);
		rd->prog_payload[n] = p;
		rd->prog_len[n] = plen;
		rd->nprog++;
	}
	return o;
}

struct fz_file {
	char name[32];
	uint64_t first;
	unsigned char *buf;
	size_t len;
};

/* The file's bytes are in dir/name (or dir/name.N). */
static bool
fz_kept(const char *dir, const struct fz_file *f)
{
	char path[512];

	for (int i = 0; i < 4; i++) {
		unsigned char *b;
		struct stat st;
		bool same;
		int fd;

		if (i)
			snprintf(path, sizeof(path), "%s/%s.%d", dir, f->name, i);
		else
			snprintf(path, sizeof(path), "%s/%s", dir, f->name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) != 0 || (size_t)st.st_size != f->len) {
			close(fd);
			continue;
		}
		b = malloc(f->len ? f->len : 1);
		if (!b)
			abort();
		same = read(fd, b, f->len) == (ssize_t)f->len && memcmp(b, f->buf, f->len) == 0;
		free(b);
		close(fd);
		if (same)
			return true;
	}
	return false;
}

/* Clean: valid records from the first byte, named for the first, in order; a tail (bytes
 * after the last valid record) only where a crash leaves one: the newest file, or the one
 * whose next starts right after its last record. */
static bool
fz_clean_file(const struct fz_file *f, const struct fz_file *next)
{
	uint64_t last = 0;
	size_t off = 0;

	while (off + FZ_HDR <= f->len) {
		uint32_t n, crc;
		uint64_t seq;

		memcpy(&n, f->buf + off, 4);
		memcpy(&crc, f->buf + off + 4, 4);
		memcpy(&seq, f->buf + off + 8, 8);
		if (n == 0 || n > JOURNAL_MAX_RECORD || n > f->len - off - FZ_HDR || seq == 0 ||
			seq >= (1ULL << 62) ||
			fz_crc32c(fz_crc32c(0, &seq, 8), f->buf + off + FZ_HDR, n) != crc)
			break;
		if (off == 0 ? seq != f->first : seq <= last)
			return false;
		last = seq;
		off += FZ_HDR + n;
	}
	if (off == f->len)
		return true;
	return last != 0 && (!next || next->first == last + 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal_stats before, after;
	struct fz_read rd = { 0 };
	struct fz_file files[2];
	size_t nfiles = 0;
	unsigned char *buf;
	uint8_t flags;
	uint64_t seq2 = 0, cp_seq = 0, above;
	size_t cut = 0;
	char qdir[160];

	if (size == 0)
		return 0;
	flags = data[0];
	data++, size--;
	memset(files, 0, sizeof(files));
	snprintf(qdir, sizeof(qdir), "%s/quarantine", fz_jdir);
	if (mkdir(fz_jdir, 0700) != 0 && errno != EEXIST)
		abort();
	if ((flags & 16) && size >= 1) {
		char text[64];
		uint64_t seq = data[0];
		uint32_t crc = fz_crc32c(0, &seq, 8) ^ (flags & 32 ? 0x100u : 0);

		data++, size--;
		snprintf(text, sizeof(text), "checkpoint %" PRIu64 " %08" PRIx32 "\n", seq, crc);
		fz_write("checkpoint", text, strlen(text));
		cp_seq = seq;
	} else if (flags & 2) {
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
	}
	if (flags & 128) {
		/* a program: at most FZ_HDR + 1 bytes of file per 3 bytes of it, and more */
		buf = malloc(size * (FZ_HDR + 1) + 1);
		if (!buf)
			abort();
		size = fz_program(data, size, buf, &rd);
	} else {
		buf = malloc(size ? size : 1);
		if (!buf)
			abort();
		if (size)
			memcpy(buf, data, size);
	}
	/* a program is cut between records: a record cut in two is damaged in both halves */
	if (rd.nprog)
		cut = rd.prog_off[cut % rd.nprog];
	else
		cut = size ? cut % (size + 1) : 0;
	rd.file = buf;
	rd.file_len = size;
	rd.cut = seq2 > 1 && seq2 < (1ULL << 62) ? cut : size;
	if (seq2 > 1 && seq2 < (1ULL << 62)) {
		if ((flags & 1) && !(flags & 128)) {
			fz_fix_crcs(buf, cut);
			fz_fix_crcs(buf + cut, size - cut);
		}
		files[0] = (struct fz_file){ "0000000000000001.jnl", 1, buf, cut };
		files[1].first = seq2;
		snprintf(files[1].name, sizeof(files[1].name), "%016" PRIx64 ".jnl", seq2);
		files[1].buf = buf + cut;
		files[1].len = size - cut;
		nfiles = 2;
	} else {
		if ((flags & 1) && !(flags & 128))
			fz_fix_crcs(buf, size);
		files[0] = (struct fz_file){ "0000000000000001.jnl", 1, buf, size };
		nfiles = 1;
	}
	for (size_t i = 0; i < nfiles; i++)
		fz_write(files[i].name, files[i].buf, files[i].len);

	journal_get_stats(&before);
	if (!journal_setup(fz_state))
		fuzz_fail("journal_setup failed");
	journal_get_stats(&after);
	/* nothing deleted: every non-empty file is where it was, or in quarantine */
	for (size_t i = 0; i < nfiles; i++)
		if (files[i].len && !fz_kept(fz_jdir, &files[i]) && !fz_kept(qdir, &files[i]))
			fuzz_fail("%s (%zu bytes) is gone after the replay", files[i].name,
				files[i].len);
	rd.checkpoint = after.checkpoint_seq;
	rd.ordered = true;
	if ((flags & 32) && (flags & 16) && rd.checkpoint != 0)
		fuzz_fail("a checkpoint with a wrong CRC was taken (%" PRIu64 ")", rd.checkpoint);
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
	/* a program's intact records are all read (when no checkpoint skips some) */
	for (size_t i = 0; i < rd.nprog; i++) {
		if (rd.prog_op[i] == 0 && rd.checkpoint == 0 && rd.prog_seen[i] != 1 &&
			!(rd.prog_seen[i] == 0 && fz_shadowed(&rd, i)))
			fuzz_fail("intact record %zu read %u times", i + 1, rd.prog_seen[i]);
	}
	for (size_t i = 0; i < rd.nprog; i++)
		free(rd.prog_payload[i]);
	above = rd.last > rd.checkpoint ? rd.last : rd.checkpoint;
	if (after.durable_seq > above)
		above = after.durable_seq;
	if (cp_seq > above && !(flags & 32))
		above = cp_seq;
	for (size_t i = 0; i < nfiles; i++)
		if (files[i].first > above)
			above = files[i].first;
	if (flags & 64) {
		if (rd.count)
			journal_checkpoint(rd.last, rd.count);
		for (size_t i = 0; i < nfiles; i++)
			if (files[i].len && !fz_kept(fz_jdir, &files[i]) &&
				!fz_kept(qdir, &files[i]) &&
				!fz_clean_file(&files[i], i + 1 < nfiles ? &files[i + 1] : NULL))
				fuzz_fail("%s (%zu bytes, damaged) removed by the drain",
					files[i].name, files[i].len);
	}
	if ((flags & 4) && !fz_no_append)
		fz_append(&rd, above);
	else
		journal_cleanup();
	free(buf);
	fz_clean();
	return 0;
}
