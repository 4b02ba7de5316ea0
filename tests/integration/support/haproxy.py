# haproxy: a real HAProxy process running conf/haproxy.cfg.example in front of test daemons.
"""render() rewrites only the addresses of conf/haproxy.cfg.example (and its global section's
logging, user and daemon mode), so the tests run the shipped configuration; HAProxy starts it
in the foreground and reads its stats CSV (each server's UP/DOWN)."""

import csv
import io
import re
import shutil
import subprocess
import time
import urllib.request

from support.build import REPO, SLOW
from support.net import free_port

EXAMPLE = REPO / "conf" / "haproxy.cfg.example"


def available():
    return shutil.which("haproxy") is not None


def render(servers, port, stats_port, example=EXAMPLE):
    """The example with `bind` of the webhooks frontend on 127.0.0.1:port, the stats page on
    127.0.0.1:stats_port and one `server NAME 127.0.0.1:PORT check port ADMIN_PORT` per
    (name, port, admin_port) in servers; HAProxy runs in the foreground, logging to stdout."""
    out = []
    section = None
    servers_done = False
    for line in example.read_text().splitlines():
        s = line.strip()
        if line and not line[0].isspace() and not line.startswith("#"):
            section = s
        if section == "global" and re.match(r"(log|chroot|stats socket|user|group|daemon)\b", s):
            if s.startswith("log "):
                out.append("\tlog stdout format raw local0 info")
            continue
        if section == "frontend webhooks" and s.startswith("bind "):
            out.append("\tbind 127.0.0.1:%d" % port)
            continue
        if section == "listen stats" and s.startswith("bind "):
            out.append("\tbind 127.0.0.1:%d" % stats_port)
            continue
        if section == "backend callrouted" and s.startswith("server "):
            if not servers_done:
                for name, p, ap in servers:
                    out.append("\tserver %s 127.0.0.1:%d check port %d" % (name, p, ap))
                servers_done = True
            continue
        out.append(line)
    assert servers_done, "no server lines in %s" % example
    return "\n".join(out) + "\n"


class HAProxy:
    """One HAProxy process in front of daemons [(name, port, admin_port)]."""

    def __init__(self, workdir, servers):
        self.workdir = workdir
        self.port = free_port()
        self.stats_port = free_port()
        self.cfg = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        self.cfg.write_text(render(servers, self.port, self.stats_port))
        self.proc = None

    def start(self):
        chk = subprocess.run(["haproxy", "-c", "-q", "-f", str(self.cfg)], capture_output=True,
                             text=True)
        assert chk.returncode == 0, "haproxy -c: %s%s" % (chk.stdout, chk.stderr)
        self._log = open(self.log_path, "ab")
        # -db: foreground, no daemon mode
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg)], stdout=self._log,
                                     stderr=subprocess.STDOUT)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log.close()
            self.proc = None

    def server_status(self):
        """{server name: 'UP' | 'DOWN' | 'UP 1/2' | ...} of backend callrouted."""
        with urllib.request.urlopen("http://127.0.0.1:%d/;csv" % self.stats_port,
                                    timeout=2) as r:
            text = r.read().decode()
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows
                if row["pxname"] == "callrouted" and row["svname"] not in ("FRONTEND",
                                                                           "BACKEND")}

    def stats(self):
        """The backend's row of the stats CSV (retries: wretr, redispatches: wredis, ...)."""
        with urllib.request.urlopen("http://127.0.0.1:%d/;csv" % self.stats_port,
                                    timeout=2) as r:
            text = r.read().decode()
        for row in csv.DictReader(io.StringIO(text.lstrip("# "))):
            if row["pxname"] == "callrouted" and row["svname"] == "BACKEND":
                return row
        return {}

    def wait_status(self, want, timeout=15.0):
        """Wait until server_status() has every name of `want` in the state given."""
        t_end = time.monotonic() + timeout * SLOW
        last = None
        while time.monotonic() < t_end:
            try:
                last = self.server_status()
                if all(last.get(k) == v for k, v in want.items()):
                    return last
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("HAProxy servers %r, want %r\n%s" % (last, want, self.log_tail()))

    def log_tail(self, n=40):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "---- haproxy log (last %d) ----\n%s" % (n, "\n".join(lines[-n:]))
