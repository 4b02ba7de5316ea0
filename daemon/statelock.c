/* statelock.c: the state directory's lock file: one daemon per journal and snapshot. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "callrouted/log.h"
#include "statelock.h"

static int statelock_fd = -1;

/* The pid written by the holder ("unknown" if it has not written it yet or the file is odd). */
static void
statelock_holder(int fd, char *buf, size_t size)
{
	char tmp[32];
	ssize_t n = pread(fd, tmp, sizeof(tmp) - 1, 0);
	size_t i;

	snprintf(buf, size, "unknown");
	if (n <= 0)
		return;
	tmp[n] = 0;
	for (i = 0; tmp[i] >= '0' && tmp[i] <= '9'; i++)
		;
	if (i == 0 || i > 10 || (tmp[i] != '\n' && tmp[i] != 0))
		return;
	tmp[i] = 0;
	snprintf(buf, size, "%.10s", tmp);
}

bool
statelock_take(const char *state_dir)
{
	char path[PATH_MAX], pid[24];
	int fd = -1, n;

	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		log_error("statelock: could not create \"%s\": %s", state_dir, strerror(errno));
		return false;
	}
	n = snprintf(path, sizeof(path), "%s/%s", state_dir, STATELOCK_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		log_error("statelock: state directory path \"%s\" is too long", state_dir);
		return false;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_error("statelock: could not open \"%s\": %s", path, strerror(errno));
		return false;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			statelock_holder(fd, pid, sizeof(pid));
			log_error(
				"statelock: state directory \"%s\" is in use by another callrouted "
				"(pid %s holds \"%s\"); one daemon per state_dir",
				state_dir, pid, path);
		} else {
			log_error("statelock: could not lock \"%s\": %s", path, strerror(errno));
		}
		goto fail;
	}
	/* ours now; the pid is for the message above and for the operator (the lock is what
	 * counts: a full disk that refuses these bytes does not stop the daemon) */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warning("statelock: could not write the pid into \"%s\": %s", path,
			strerror(errno));
	statelock_fd = fd;
	log_debug("statelock: holding \"%s\"", path);
	return true;
fail:
	close(fd);
	return false;
}

void
statelock_release(void)
{
	if (statelock_fd < 0)
		return;
	/* the pid goes with the lock; a daemon starting now writes its own */
	if (ftruncate(statelock_fd, 0) != 0)
		log_debug("statelock: could not truncate the lock file: %s", strerror(errno));
	close(statelock_fd);
	statelock_fd = -1;
}
