/* test_config.c: the config parser: values, units, errors naming file/line/key, the example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "callrouted/config.h"
#include "config_fixture.h"
#include "callrouted/log.h"

static char conf_path[] = "/tmp/callrouted-test-config-XXXXXX";
static char err_path[] = "/tmp/callrouted-test-stderr-XXXXXX";

/* Write text as the config file, load it, capture what was logged into errbuf. */
static struct config *
load(const char *text, char *errbuf, size_t errlen)
{
	int saved = dup(2), efd;
	struct config *c;
	ssize_t n;

	write_conf(conf_path, text);
	efd = open(err_path, O_RDWR | O_TRUNC);
	assert_true(efd >= 0);
	dup2(efd, 2);
	c = config_load(conf_path);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(efd, 0, SEEK_SET);
	n = read(efd, errbuf, errlen - 1);
	errbuf[n > 0 ? n : 0] = 0;
	close(efd);
	return c;
}

static void
test_defaults_and_values(void **state)
{
	char err[4096];
	struct config *c;

	(void)state;
	c = load("database_url = host=/tmp dbname=x\n", err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->database_url, "host=/tmp dbname=x");
	assert_string_equal(c->listen, "0.0.0.0:8080");
	assert_string_equal(c->admin_listen, "127.0.0.1:9090");
	assert_int_equal(c->refresh_interval_ms, 300000);
	assert_int_equal(c->signature_tolerance_ms, 300000);
	assert_int_equal(c->max_body_bytes, 1048576);
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->log_level, LOG_LEVEL_INFO);
	assert_true(strlen(c->instance_name) > 0);
	assert_string_equal(c->routes_database_url, "");
	assert_string_equal(c->replication_wait, "auto");
	assert_int_equal(c->replication_wait_timeout_ms, 60000);
	assert_int_equal(c->change_poll_interval_ms, 2000);
	config_free(c);

	c = load("database_url = host=a,b target_session_attrs=read-write\n"
		 "routes_database_url = host=b\nreplication_wait = off\n"
		 "replication_wait_timeout = 5m\nchange_poll_interval = 500ms\n",
		err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->database_url, "host=a,b target_session_attrs=read-write");
	assert_string_equal(c->routes_database_url, "host=b");
	assert_string_equal(c->replication_wait, "off");
	assert_int_equal(c->replication_wait_timeout_ms, 300000);
	assert_int_equal(c->change_poll_interval_ms, 500);
	config_free(c);

	c = load("# comment\n\n  database_url = \"postgres://u@h/db # not a comment\"  # comment\n"
		 "listen = [::1]:8081\nrefresh_interval = 5m\nreconnect_interval = 250ms\n"
		 "signature_tolerance = 1h\nmax_body_bytes = 64K\nworkers = 3\nlog_level = debug\n"
		 "vapi_no_agent_message = \"Say \\\"hi\\\"\"\ninstance_name = a1\n",
		err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->database_url, "postgres://u@h/db # not a comment");
	assert_string_equal(c->listen, "[::1]:8081");
	assert_int_equal(c->refresh_interval_ms, 300000);
	assert_int_equal(c->reconnect_interval_ms, 250);
	assert_int_equal(c->signature_tolerance_ms, 3600000);
	assert_int_equal(c->max_body_bytes, 65536);
	assert_int_equal(c->workers, 3);
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(c->vapi_no_agent_message, "Say \"hi\"");
	assert_string_equal(c->instance_name, "a1");
	config_free(c);
	log_set_level(LOG_LEVEL_INFO);
}

static void
test_errors_name_file_line_key(void **state)
{
	static const struct {
		const char *text;
		const char *expect; /* in the error text, after the file name */
	} cases[] = {
		{ "database_url = x\nbogus = 1\n", ":2: unknown key \"bogus\"" },
		{ "database_url = x\nlog_level = loud\n", ":2: log_level: \"loud\"" },
		{ "database_url = x\n\nrefresh_interval = soon\n", ":3: refresh_interval:" },
		{ "database_url = x\nrefresh_interval = 0\n", ":2: refresh_interval:" },
		{ "database_url = x\nmax_body_bytes = 1G\n", ":2: max_body_bytes:" },
		{ "database_url = x\nworkers = 0\n", ":2: workers:" },
		{ "database_url = x\nworkers = many\n", ":2: workers:" },
		{ "database_url = x\nlisten = 8080\n", ":2: listen:" },
		{ "database_url = x\nadmin_listen = 127.0.0.1:99999\n", ":2: admin_listen:" },
		{ "database_url = x\nlisten\n", ":2: expected \"key = value\"" },
		{ "database_url = x\nlisten = \"1.2.3.4:5\n", ":2: unterminated quoted value" },
		{ "database_url = x\ndatabase_url = y\n", ":2: database_url: set twice" },
		{ "database_url_file = /nonexistent/file\n", ":1: database_url_file:" },
		{ "listen = 127.0.0.1:1\n", "database_url is not set" },
		{ "database_url = x\nreplication_wait = sometimes\n",
			"replication_wait: \"sometimes\" is not auto or off" },
		{ "database_url = x\nreplication_wait_timeout = 0\n",
			":2: replication_wait_timeout:" },
		{ "database_url = x\nchange_poll_interval = 1ms\n", ":2: change_poll_interval:" },
	};
	char err[4096];

	(void)state;
	unsetenv("CREDENTIALS_DIRECTORY");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *c = load(cases[i].text, err, sizeof(err));

		if (c || !strstr(err, cases[i].expect) || !strstr(err, conf_path))
			fail_msg("case %zu: expected an error with \"%s\", got: %s", i,
				cases[i].expect, err);
	}
}

static void
test_secret_file_and_credentials(void **state)
{
	char dir[] = "/tmp/callrouted-test-cred-XXXXXX", p[512], text[600], err[4096];
	struct config *c;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/database_url", dir);
	f = fopen(p, "w");
	fputs("host=/secret dbname=s\n", f);
	fclose(f);
	snprintf(text, sizeof(text), "database_url_file = %s\n", p);
	c = load(text, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->database_url, "host=/secret dbname=s");
	config_free(c);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	c = load("listen = 127.0.0.1:8080\n", err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->database_url, "host=/secret dbname=s");
	config_free(c);
	unsetenv("CREDENTIALS_DIRECTORY");
	unlink(p);
	rmdir(dir);
}

/* Every key of the table is documented in conf/callrouted.conf as "key =" or "# key =". */
static void
test_conf_file_documents_every_key(void **state)
{
	const char *const *names = config_key_names();
	char *text;

	(void)state;
	text = conf_file_text();
	for (size_t i = 0; names[i]; i++) {
		char a[128], b[128];

		snprintf(a, sizeof(a), "\n%s =", names[i]);
		snprintf(b, sizeof(b), "\n# %s =", names[i]);
		if (!strstr(text, a) && !strstr(text, b))
			fail_msg("conf/callrouted.conf does not document \"%s\"", names[i]);
	}
	free(text);
}

static int
setup(void **state)
{
	int a = mkstemp(conf_path), b = mkstemp(err_path);

	(void)state;
	close(a);
	close(b);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(conf_path);
	unlink(err_path);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_errors_name_file_line_key),
		cmocka_unit_test(test_secret_file_and_credentials),
		cmocka_unit_test(test_conf_file_documents_every_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
