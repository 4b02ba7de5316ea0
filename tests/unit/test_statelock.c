/* test_statelock.c: the state directory's lock: created 0600 with the pid, exclusive, released. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "callrouted/log.h"
#include "statelock.h"

static char dir[64];

static int
make_dir(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/callrouted-statelock-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
remove_dir(void **state)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, STATELOCK_FILE);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub/%s", dir, STATELOCK_FILE);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
	return 0;
}

static void
read_lock_file(const char *d, char *buf, size_t size)
{
	char path[128];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", d, STATELOCK_FILE);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = 0;
	fclose(f);
}

/* Another process (the lock is per open file: a child's attempt is a second daemon's). */
static int
child_take(const char *d)
{
	pid_t pid = fork();
	int status;

	if (pid == 0)
		_exit(statelock_take(d) ? 0 : 1);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_exclusive(void **state)
{
	char path[128], buf[64], want[32];
	struct stat st;

	assert_true(statelock_take(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, STATELOCK_FILE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	read_lock_file(dir, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_string_equal(buf, want);

	/* a second daemon is refused and leaves the holder's pid in place */
	assert_int_equal(child_take(dir), 1);
	read_lock_file(dir, buf, sizeof(buf));
	assert_string_equal(buf, want);

	/* released: the next one takes it */
	statelock_release();
	assert_int_equal(child_take(dir), 0);
	assert_true(statelock_take(dir));
	statelock_release();
}

static void
test_creates_the_directory(void **state)
{
	char sub[96];
	struct stat st;

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_true(statelock_take(sub));
	assert_int_equal(stat(sub, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	statelock_release();
}

static void
test_missing_parent_fails(void **state)
{
	char bad[128];

	snprintf(bad, sizeof(bad), "%s/no/such/dir", dir);
	assert_false(statelock_take(bad));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exclusive),
		cmocka_unit_test(test_creates_the_directory),
		cmocka_unit_test(test_missing_parent_fails),
	};

	log_setup();
	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
