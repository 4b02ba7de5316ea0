# build: the binary under test, the build's mode (sanitizers, valgrind, TSan) and its timeouts.
"""Where the binary is, how it is run (environment, mode) and how much slower that makes it."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PG_BIN = Path(os.environ.get("CALLROUTED_PG_BIN", "/usr/lib/postgresql/15/bin"))
SANITIZE = os.environ.get("CALLROUTED_SANITIZE") == "1"
VALGRIND = os.environ.get("CALLROUTED_VALGRIND") == "1"
TSAN = os.environ.get("CALLROUTED_TSAN") == "1"
# Slow builds get more time for start-up and shutdown.
SLOW = 6.0 if VALGRIND else (3.0 if SANITIZE or TSAN else 1.0)
BAD_LOG_TEXT = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                "UndefinedBehaviorSanitizer", "ThreadSanitizer")
# ThreadSanitizer: stop at the first report (the exit code and the log then say so); the
# suppressions file, if any, holds proven third-party false positives only.
TSAN_SUPP = REPO / "tests" / "tsan.supp"
TSAN_OPTIONS = "halt_on_error=1:second_deadlock_stack=1" + (
    ":suppressions=%s" % TSAN_SUPP if TSAN_SUPP.exists() else "")


def callrouted_bin():
    b = os.environ.get("CALLROUTED_BIN")
    return Path(b) if b else REPO / "build" / "bin" / "callrouted"


def run_cli(*args, timeout=60):
    """Run the binary to completion; returns CompletedProcess with text stdout/stderr."""
    env = daemon_env()
    return subprocess.run([str(callrouted_bin())] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, timeout=timeout * SLOW)


def daemon_env():
    env = dict(os.environ)
    if SANITIZE:
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    if TSAN:
        env["TSAN_OPTIONS"] = TSAN_OPTIONS
    return env
