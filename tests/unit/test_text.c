/* test_text.c: outside text: text_is_control, text_ok, the log escaper (log_esc, log_msg). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "callrouted/text.h"
#include "callrouted/log.h"

struct esc_case {
	const char *in;
	const char *out;
};

static const struct esc_case cases[] = {
	{ "", "" },
	{ "call_123", "call_123" },
	{ "a\nb", "a\\nb" },
	{ "a\r\nb\tc", "a\\r\\nb\\tc" },
	{ "q\"uote", "q\\\"uote" },
	{ "back\\slash", "back\\\\slash" },
	{ "\x01\x1f\x7f", "\\x01\\x1f\\x7f" },
	{ "\x1b[31mred", "\\x1b[31mred" },
	{ "caf\xc3\xa9", "caf\xc3\xa9" }, /* UTF-8 kept */
	{ "x\n2026-12-01T00:00:00.000Z error: forged",
		"x\\n2026-12-01T00:00:00.000Z error: forged" },
};

static void
test_escape_table(void **state)
{
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_ptr_equal(text_escape(cases[i].in, buf, sizeof(buf)), buf);
		assert_string_equal(buf, cases[i].out);
	}
	assert_string_equal(text_escape(NULL, buf, sizeof(buf)), "(null)");
}

static void
test_escape_nul_bytes(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(text_escape_n("a\0b", 3, buf, sizeof(buf)), "a\\x00b");
}

/* Whatever the size, the output is NUL-terminated, within buf, holds no control character,
 * and a cut one ends in "..." after a whole escape. */
static void
test_escape_truncation(void **state)
{
	const char *in = "ab\ncd\x01"
			 "efghij\"k";
	char full[64], buf[64];
	size_t flen;

	(void)state;
	text_escape(in, full, sizeof(full));
	flen = strlen(full);
	assert_string_equal(full, "ab\\ncd\\x01efghij\\\"k");
	for (size_t size = 0; size <= flen + 2; size++) {
		memset(buf, 'Z', sizeof(buf));
		text_escape(in, buf, size);
		if (size == 0) {
			assert_int_equal(buf[0], 'Z'); /* nothing written */
			continue;
		}
		assert_true(strlen(buf) < size);
		for (const char *p = buf; *p; p++)
			assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
		if (size > flen) {
			assert_string_equal(buf, full);
		} else if (size >= 4) {
			size_t n = strlen(buf);

			assert_true(n >= 3);
			assert_memory_equal(buf + n - 3, "...", 3);
			size_t at = 0;
			char e[4];

			/* a prefix of the full escape, cut between two escapes */
			assert_memory_equal(buf, full, n - 3);
			for (const char *q = in; at < n - 3; q++)
				at += text_escape_byte((unsigned char)*q, e);
			assert_int_equal(at, n - 3);
		} else {
			assert_string_equal(buf, "");
		}
	}
}

static void
test_log_esc_slots(void **state)
{
	const char *p[LOG_ESC_SLOTS];
	char big[LOG_ESC_MAX * 2];

	(void)state;
	/* LOG_ESC_SLOTS results live at once */
	for (int i = 0; i < LOG_ESC_SLOTS; i++) {
		char in[8];

		snprintf(in, sizeof(in), "%d\n", i * 7);
		p[i] = log_esc(in);
	}
	for (int i = 0; i < LOG_ESC_SLOTS; i++) {
		char want[8];

		/* the trailing newline (libpq's messages end in one) is dropped */
		snprintf(want, sizeof(want), "%d", i * 7);
		assert_string_equal(p[i], want);
	}
	assert_string_equal(log_esc("ERROR: x\nDETAIL: y\n"), "ERROR: x\\nDETAIL: y");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(strlen(log_esc(big)), LOG_ESC_MAX - 1);
}

/* log_msg writes one line whatever the message holds (a site that forgot log_esc). */
static void
test_log_msg_one_line(void **state)
{
	char path[] = "/tmp/test_text_XXXXXX", got[4096];
	int fd = mkstemp(path), saved = dup(2);
	FILE *f;
	size_t n;
	int lines = 0;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	assert_true(dup2(fd, 2) == 2);
	log_msg(LOG_LEVEL_ERROR, "ledger: call %s",
		"x\n2026-12-01T00:00:00.000Z error: forged\r\x1b");
	fflush(stderr);
	assert_true(dup2(saved, 2) == 2);
	close(saved);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	fclose(f);
	close(fd);
	unlink(path);
	got[n] = 0;
	for (size_t i = 0; i < n; i++)
		lines += got[i] == '\n';
	assert_int_equal(lines, 1);
	assert_non_null(strstr(got, "call x\\n2026-12-01T00:00:00.000Z error: forged\\r\\x1b\n"));
}

/* text_is_control: exactly 0x00-0x1f and 0x7f; text_ok on top of it */
static void
test_control_and_ok(void **state)
{
	for (int c = 0; c < 256; c++)
		assert_int_equal(text_is_control((unsigned char)c), c < 0x20 || c == 0x7f);
	assert_true(text_ok("caf\xc3\xa9 \"x\"", 64));
	assert_false(text_ok("", 64));
	assert_false(text_ok("abc", 2));
	assert_true(text_ok("abc", 3));
	assert_false(text_ok("a\x7f", 64));
	assert_false(text_ok("a\tb", 64));
}

/* JSON escapes as jansson's json_dumps writes them; every other byte as it is. */
static void
test_json_escape_byte(void **state)
{
	char e[6];

	(void)state;
	assert_int_equal(text_json_escape_byte('"', e), 2);
	assert_memory_equal(e, "\\\"", 2);
	assert_int_equal(text_json_escape_byte('\\', e), 2);
	assert_memory_equal(e, "\\\\", 2);
	assert_int_equal(text_json_escape_byte('\n', e), 2);
	assert_memory_equal(e, "\\n", 2);
	assert_int_equal(text_json_escape_byte('\t', e), 2);
	assert_memory_equal(e, "\\t", 2);
	assert_int_equal(text_json_escape_byte(0x00, e), 6);
	assert_memory_equal(e, "\\u0000", 6);
	assert_int_equal(text_json_escape_byte(0x1f, e), 6);
	assert_memory_equal(e, "\\u001F", 6);
	for (unsigned c = 0x20; c < 0x100; c++)
		if (c != '"' && c != '\\')
			assert_int_equal(text_json_escape_byte((unsigned char)c, e), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_escape_byte),
		cmocka_unit_test(test_escape_table),
		cmocka_unit_test(test_escape_nul_bytes),
		cmocka_unit_test(test_escape_truncation),
		cmocka_unit_test(test_log_esc_slots),
		cmocka_unit_test(test_log_msg_one_line),
		cmocka_unit_test(test_control_and_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
