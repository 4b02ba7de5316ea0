# daemon: one callrouted process under test: its config file, ports, state dir, log and HTTP.
"""Daemon: writes its config, starts the binary (under valgrind if asked), waits for /readyz,
stops it with SIGTERM, and reads its log; config_text() renders a config file."""

import json
import signal
import subprocess
from pathlib import Path

from support.build import BAD_LOG_TEXT, SLOW, VALGRIND, callrouted_bin, daemon_env
from support.net import free_port, http_request
from support.openapi import check as openapi_check
from support.polling import wait_for
from support.signing import sw


def config_text(values):
    lines = ["# written by tests/integration"]
    for k, v in values.items():
        if v is None:
            continue
        lines.append('%s = "%s"' % (k, v) if isinstance(v, str) else "%s = %s" % (k, v))
    return "\n".join(lines) + "\n"


class Daemon:
    """One callrouted process with its own config, ports, state dir and log file."""

    def __init__(self, workdir, name, database_url, overrides=None, extra_env=None, unset=(),
                 valgrind=None):
        """extra_env: variables added to the process's environment, unset: names taken out of
        it; valgrind: run under valgrind (default: CALLROUTED_VALGRIND), which also makes every
        timeout of this daemon that of a valgrind build (self.slow)."""
        self.workdir = Path(workdir)
        self.name = name
        self.port = free_port()
        self.admin_port = free_port()
        self.state_dir = self.workdir / ("state-" + name)
        self.state_dir.mkdir(exist_ok=True)
        self.conf_path = self.workdir / (name + ".conf")
        self.log_path = self.workdir / (name + ".log")
        self.values = {
            "database_url": database_url,
            "listen": "127.0.0.1:%d" % self.port,
            "admin_listen": "127.0.0.1:%d" % self.admin_port,
            "state_dir": str(self.state_dir),
            "log_level": "debug",
            "refresh_interval": "300s",
            "reconnect_interval": "200ms",
            # no load balancer in front: SIGTERM closes the listeners at once, as before
            # issue 14 (test_cluster.py sets its own shutdown_delay)
            "shutdown_delay": "0",
        }
        self.values.update(overrides or {})
        self.extra_env = dict(extra_env or {})
        self.unset = tuple(unset)
        self.valgrind = VALGRIND if valgrind is None else valgrind
        self.slow = 6.0 if self.valgrind else SLOW
        self.proc = None
        self.returncode = None
        self.checked = False

    def environment(self):
        """The process's environment: daemon_env(), less self.unset, plus self.extra_env."""
        e = daemon_env()
        for k in self.unset:
            e.pop(k, None)
        e.update(self.extra_env)
        return e

    def write_config(self):
        self.conf_path.write_text(config_text(self.values))

    def start(self, wait_ready=True, timeout=15.0):
        self.write_config()
        cmd = [str(callrouted_bin()), "-c", str(self.conf_path)]
        if self.valgrind:
            cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "-q"] + cmd
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=self.environment(), cwd=str(self.workdir))
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15.0):
        """Poll /readyz until 200; fail early if the process dies."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("callrouted exited with %d before it was ready\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                r = self.admin("GET", "/readyz", timeout=1.0)
            except OSError:
                return None
            return r if r.status == 200 else None
        try:
            return wait_for(ready, timeout * self.slow, what="/readyz 200")[0]
        except AssertionError as e:
            if "exited" in str(e):
                raise
            raise AssertionError("%s\n%s" % (e, self.log_tail())) from None

    def wait_alive(self, timeout=15.0):
        """Poll /healthz until it answers 200."""
        def alive():
            if self.proc.poll() is not None:
                raise AssertionError("callrouted exited with %d\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                return self.admin("GET", "/healthz", timeout=1.0).status == 200
            except OSError:
                return False
        wait_for(alive, timeout * self.slow, what="/healthz 200")

    def stop(self, timeout=10.0):
        """SIGTERM, wait; returns the exit code (kills and returns None on timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * self.slow)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = None
                self._log.close()
                return None
        self.returncode = self.proc.returncode
        self._log.close()
        return self.returncode

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        lines = self.log().splitlines()
        return "---- %s log (last %d of %d lines) ----\n%s" % (
            self.name, min(n, len(lines)), len(lines), "\n".join(lines[-n:]))

    def bad_log_text(self):
        text = self.log()
        return [t for t in BAD_LOG_TEXT if t in text]

    # -- HTTP --

    def admin(self, method, path, timeout=5.0):
        r = http_request(self.admin_port, method, path, timeout=timeout)
        if not path.startswith("/debug/"):  # test hooks (CALLROUTED_TEST_HOOKS) are not API
            openapi_check(method, path, r.status, r.headers, r.body)
        return r

    def readyz(self):
        return self.admin("GET", "/readyz")

    def request(self, method, path, body=None, headers=None, timeout=5.0):
        return http_request(self.port, method, path, body, headers, timeout)

    def post(self, provider, slug, body, headers=None, content_type="application/json"):
        h = {}
        if content_type is not None:
            h["Content-Type"] = content_type
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode()
        return self.request("POST", sw.webhook_path(provider, slug), body, h)
