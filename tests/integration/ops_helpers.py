# ops_helpers: Prometheus text parsing, a NOTIFY_SOCKET listener and a daemon with extra env.
"""Support code of test_ops.py."""

import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import helpers
from helpers import Daemon

# ---- Prometheus text exposition format 0.0.4 ----

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def _labels(text):
    out, pos = {}, 0
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        if not m:
            raise ValueError("bad label set %r" % text)
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


class Scrape:
    """A parsed /metrics answer: samples by (name, labels), HELP and TYPE by family."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.help = {}
        self.type = {}
        self.order = []  # sample names in output order
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# HELP "):
                name, _, h = line[7:].partition(" ")
                self.help[name] = h
                continue
            if line.startswith("# TYPE "):
                name, _, t = line[7:].partition(" ")
                self.type[name] = t
                continue
            if line.startswith("#"):
                continue
            m = _SAMPLE_RE.match(line)
            if not m:
                raise ValueError("unparseable sample line %r" % line)
            labels = _labels(m.group(2) or "")
            self.samples[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
            self.order.append(m.group(1))

    def get(self, name, **labels):
        """The one sample with exactly these labels (0.0 if absent: sparse series)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name, **labels):
        return (name, frozenset(labels.items())) in self.samples

    def sum(self, name, **match):
        """Sum of the samples of name whose labels include match."""
        return sum(v for (n, ls), v in self.samples.items()
                   if n == name and set(match.items()) <= ls)

    def series(self, name):
        return {ls: v for (n, ls), v in self.samples.items() if n == name}

    def family(self, sample_name):
        """The metric family a sample belongs to (histogram suffixes stripped)."""
        for suf in ("_bucket", "_sum", "_count"):
            if sample_name.endswith(suf):
                base = sample_name[:-len(suf)]
                if self.type.get(base) == "histogram":
                    return base
        return sample_name


def scrape(d):
    r = d.admin("GET", "/metrics")
    assert r.status == 200, r
    return Scrape(r.body.decode())


# ---- sd_notify ----

class NotifySocket:
    """An AF_UNIX SOCK_DGRAM socket playing systemd's part: records (monotonic time, text)."""

    def __init__(self, on_message=None):
        # sun_path is 108 bytes: a short directory of its own, not pytest's tmp_path
        self.dir = Path(tempfile.mkdtemp(prefix="cr-notify-"))
        self.path = str(self.dir / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.msgs = []
        self.on_message = on_message
        self.cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            text = data.decode(errors="replace")
            extra = None
            if self.on_message:
                try:
                    extra = self.on_message(text)
                except Exception as e:  # noqa: BLE001 (recorded, checked by the test)
                    extra = e
            with self.cond:
                self.msgs.append((t, text, extra))
                self.cond.notify_all()

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def snapshot(self):
        with self.cond:
            return list(self.msgs)

    def wait(self, pred, timeout, start=0, what="datagram"):
        """The first message at index >= start whose text satisfies pred: (index, t, text, extra)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.msgs)):
                    t, text, extra = self.msgs[i]
                    if pred(text):
                        return i, t, text, extra
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.1fs; got: %r" % (
                        what, timeout, [m[1] for m in self.msgs[start:]][-20:]))
                self.cond.wait(left)


def fields(text):
    """KEY=VALUE lines of one notification."""
    out = {}
    for line in text.split("\n"):
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


# ---- a daemon with extra environment variables ----

class EnvDaemon(Daemon):
    """helpers.Daemon whose process gets extra environment variables (and loses some)."""

    def __init__(self, workdir, name, database_url, overrides=None, extra_env=None,
                 unset=()):
        super().__init__(workdir, name, database_url, overrides)
        self.extra_env = dict(extra_env or {})
        self.unset = tuple(unset)

    def start(self, wait_ready=True, timeout=15.0):
        orig = helpers.daemon_env

        def env():
            e = orig()
            for k in self.unset:
                e.pop(k, None)
            e.update(self.extra_env)
            return e

        helpers.daemon_env = env  # Daemon.start calls helpers.daemon_env()
        try:
            return super().start(wait_ready=wait_ready, timeout=timeout)
        finally:
            helpers.daemon_env = orig


def env_daemon(env, overrides=None, extra_env=None, unset=(), name=None):
    """Like env.daemon(), with extra environment; registered for the end-of-test checks."""
    name = name or "d%d" % (len(env.daemons) + 1)
    d = EnvDaemon(env.tmp, name, env.database_url, overrides, extra_env, unset)
    env.daemons.append(d)
    return d
