/* test_config_reload.c: reload keeps restart-only keys, takes the rest; the example marks them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "callrouted/config.h"
#include "config_fixture.h"

static char conf_path[] = "/tmp/callrouted-test-reload-XXXXXX";

static struct config *
load(const char *text)
{
	write_conf(conf_path, text);
	return config_load(conf_path);
}

/* A restart-only key (string and number) keeps the old value; a reloadable one changes. */
static void
test_reconcile_follows_the_flags(void **state)
{
	struct config *old, *new;

	(void)state;
	old = load("database_url = a\nlisten = 127.0.0.1:1\nworkers = 2\nrefresh_interval = 5s\n"
		   "max_body_bytes = 4096\nlog_level = info\ninstance_name = one\n");
	assert_non_null(old);
	new = load("database_url = a\nlisten = 127.0.0.1:1\nworkers = 2\nrefresh_interval = 5s\n"
		   "max_body_bytes = 8192\nlog_level = debug\ninstance_name = one\n");
	assert_non_null(new);
	assert_true(config_reconcile(old, new));
	assert_int_equal(new->max_body_bytes, 8192);
	config_free(new);

	new = load("database_url = b\nlisten = 127.0.0.1:2\nworkers = 3\nrefresh_interval = 7s\n"
		   "max_body_bytes = 8192\nlog_level = info\ninstance_name = two\n");
	assert_non_null(new);
	assert_false(config_reconcile(old, new));
	assert_string_equal(new->database_url, "a");
	assert_string_equal(new->listen, "127.0.0.1:1");
	assert_string_equal(new->instance_name, "one");
	assert_int_equal(new->workers, 2);
	assert_int_equal(new->refresh_interval_ms, 5000);
	assert_int_equal(new->max_body_bytes, 8192);
	config_free(new);
	config_free(old);
}

static void
test_flags_of_known_keys(void **state)
{
	(void)state;
	assert_false(config_key_reloadable("listen"));
	assert_false(config_key_reloadable("database_url_file"));
	assert_false(config_key_reloadable("admin_max_body_bytes"));
	assert_true(config_key_reloadable("log_level"));
	assert_true(config_key_reloadable("tls_cert_file"));
	assert_false(config_key_reloadable("no_such_key"));
}

/* In conf/callrouted.conf, the comment block of a key (from the blank line before it to its
 * "# key =" line) says "Needs a restart" exactly when the key is restart-only. */
static void
test_conf_file_marks_restart_only_keys(void **state)
{
	const char *const *names = config_key_names();
	char *text;

	(void)state;
	text = conf_file_text();
	for (size_t i = 0; names[i]; i++) {
		char pat[128];
		const char *at, *start;
		bool marked = false;

		snprintf(pat, sizeof(pat), "\n# %s =", names[i]);
		at = strstr(text, pat);
		if (!at) {
			snprintf(pat, sizeof(pat), "\n%s =", names[i]);
			at = strstr(text, pat);
		}
		assert_non_null(at);
		/* back to the blank line that opens the block */
		for (start = at; start > text && !(start[0] == '\n' && start[-1] == '\n'); start--)
			;
		for (const char *p = start; p < at; p++)
			if (strncmp(p, "Needs a restart", 15) == 0)
				marked = true;
		if (marked == config_key_reloadable(names[i]))
			fail_msg("conf/callrouted.conf: %s is %s but %s", names[i],
				config_key_reloadable(names[i]) ? "reloadable" : "restart-only",
				marked ? "marked \"Needs a restart\"" : "not marked");
	}
	free(text);
}

static int
setup(void **state)
{
	int fd = mkstemp(conf_path);

	(void)state;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(conf_path);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reconcile_follows_the_flags),
		cmocka_unit_test(test_flags_of_known_keys),
		cmocka_unit_test(test_conf_file_marks_restart_only_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
