# test_walkthrough: the README's callroutectl walk-through, run line by line against tools/run.
"""Acceptance (issue 15): on a fresh var/, `tools/run` starts PostgreSQL, the provider sandbox
and the daemon with the demo data, and every command of the README's walk-through block works
exactly as printed (the block is read from README.md, so it cannot drift); the end state is
right; Ctrl-C stops the daemon, the sandbox and the cluster; a second tools/run reuses them.

tools/run runs with CALLROUTED_VAR (a temp directory, never the clone's ./var) and
CALLROUTED_BIN_DIR (the binaries under test: no tools/setup, no build). The commands run from a
directory that looks like a clone: build/bin and tools are links, var is tools/run's."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from support.build import REPO, SANITIZE, SLOW, callrouted_bin, daemon_env
from support.net import free_port
from support.polling import wait_for

README = REPO / "README.md"
RUN = REPO / "tools" / "run"
PG = REPO / "tools" / "pg"


def walkthrough_commands():
    """The fenced block after "A walk-through on the demo" in README's callroutectl section:
    its command lines (comments and blank lines dropped)."""
    text = README.read_text()
    sec = text.index("\n## callroutectl\n")
    start = text.index("A walk-through on the demo", sec)
    start = text.index("```\n", start) + 4
    end = text.index("```\n", start)
    cmds = []
    for line in text[start:end].splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        assert not s.endswith("\\"), "continued line in the walk-through: %r" % line
        cmds.append(s)
    return cmds


def test_walkthrough_block_is_found():
    cmds = walkthrough_commands()
    assert cmds[0].startswith("export CALLROUTED_TOKEN=$("), cmds[0]
    assert any(c.startswith("tools/sandbox ring") for c in cmds), cmds
    assert any(" numbers buy " in c for c in cmds), cmds


class Run:
    """tools/run in the background on a var directory of its own."""

    def __init__(self, clone, log_name):
        self.clone = clone
        self.var = clone / "var"
        self.log_path = clone / log_name
        self.listen = free_port()
        self.admin = free_port()
        self.sandbox_port = free_port()
        self.proc = None

    def start(self, ports=None):
        if ports:
            self.listen, self.admin, self.sandbox_port = ports
        env = {k: v for k, v in daemon_env().items()
               if k not in ("CALLROUTED_URL", "CALLROUTED_TOKEN", "CALLROUTED_PUBLIC_URL")}
        env.update(CALLROUTED_VAR=str(self.var), CALLROUTED_BIN_DIR=str(callrouted_bin().parent),
                   CALLROUTED_LISTEN="127.0.0.1:%d" % self.listen,
                   CALLROUTED_ADMIN_LISTEN="127.0.0.1:%d" % self.admin,
                   CALLROUTED_SANDBOX_PORT=str(self.sandbox_port))
        self._log = open(self.log_path, "wb")

        def child():
            # as at a terminal: SIGINT at its default, whatever started the test ignored
            signal.signal(signal.SIGINT, signal.SIG_DFL)

        self.proc = subprocess.Popen([str(RUN)], stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=str(REPO),
                                     start_new_session=True, preexec_fn=child)
        wait_for(lambda: self._ready(), 60 * SLOW, 0.1, "tools/run ready")

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("tools/run exited with %d:\n%s" % (self.proc.returncode,
                                                                   self.log()))
        return "callroutectl walk-through, starting with" in self.log() or None

    def log(self):
        return self.log_path.read_text(errors="replace")

    def interrupt(self):
        """Ctrl-C: the daemon, then the sandbox, then PostgreSQL."""
        os.kill(self.proc.pid, signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=60 * SLOW)
        finally:
            self._log.close()
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def pg_running(var):
    return subprocess.run([str(PG), "status", str(var / "pg")]).returncode == 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_line(clone, line, env, outdir, i):
    """One walk-through line in bash from the clone; the exports it makes carry on."""
    envfile = outdir / ("env.%d" % i)
    script = '%s\n__rc=$?\nenv -0 > %s\nexit $__rc\n' % (line, envfile)
    r = subprocess.run(["bash", "-c", script], cwd=str(clone), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120 * SLOW)
    new = dict(env)
    if envfile.exists():
        new = dict(kv.split("=", 1) for kv in envfile.read_text().split("\0") if "=" in kv)
    return r, new


@pytest.fixture
def clone():
    """A directory laid out as a clone: build/bin -> the binaries, tools -> the repo's."""
    root = Path(tempfile.mkdtemp(prefix="callrouted-walk-"))
    root.chmod(0o711)  # tools/pg: the postgres user (tests as root) must enter it
    (root / "build").mkdir()
    (root / "build" / "bin").symlink_to(callrouted_bin().parent)
    (root / "tools").symlink_to(REPO / "tools")
    yield root
    if pg_running(root / "var"):
        subprocess.run([str(PG), "stop", str(root / "var" / "pg")])
    shutil.rmtree(root, ignore_errors=True)


def sql(conn, q, *args):
    return conn.execute(q, args).fetchall()


def test_readme_walkthrough_on_tools_run(clone):
    t0 = time.monotonic()
    run = Run(clone, "run.log")
    try:
        run.start()
        log = run.log()
        # what tools/run printed: the sandbox ring commands of the demo numbers, the token line
        assert "tools/sandbox ring --dir %s/sandbox --to +14155559876" % run.var in log, log
        assert "tools/sandbox ring --dir %s/sandbox --to +14155557001" % run.var in log, log
        assert "tokens create --agency 1 --name ops)" in log, log
        conf = (run.var / "callrouted.conf").read_text()
        assert 'provider_ca_file = "%s/sandbox/ca.pem"' % run.var in conf, conf
        assert 'public_url = "http://127.0.0.1:%d"' % run.listen in conf, conf
        dburl = re.search(r'^database_url = "(.*)"$', conf, re.M).group(1)

        env = {k: v for k, v in daemon_env().items()
               if k not in ("CALLROUTED_URL", "CALLROUTED_TOKEN")}
        outdir = clone / "out"
        outdir.mkdir()
        outputs = []
        for i, line in enumerate(walkthrough_commands()):
            r, env = run_line(clone, line, env, outdir, i)
            assert r.returncode == 0, ("walk-through line %d exited %d: %s\nstdout:\n%s\n"
                                       "stderr:\n%s\ntools/run's log:\n%s" % (
                                           i + 1, r.returncode, line, r.stdout, r.stderr,
                                           run.log()[-4000:]))
            outputs.append((line, r.stdout))
        assert re.fullmatch(r"crt_[A-Za-z0-9_-]{43}", env["CALLROUTED_TOKEN"])

        def out_of(prefix):
            return "\n".join(o for line, o in outputs if line.startswith(prefix))

        # the dry-run syncs: the sandbox holds what we hold (tools/run gave it the demo agents)
        sync_rt = out_of("build/bin/callroutectl -c var/callrouted.conf sync demo-retell")
        assert "drift: none" in sync_rt and "in sync" in sync_rt, sync_rt
        sync_vp = json.loads(out_of("build/bin/callroutectl -c var/callrouted.conf sync demo-vapi"))
        assert sync_vp["in_sync"] and sync_vp["drift"] == [], sync_vp

        # the routing decisions the sandbox printed
        ring = {re.search(r"--to (\+\d+)", line).group(1): o for line, o in outputs
                if line.startswith("tools/sandbox ring")}
        assert "agent agent_demo_retell takes the call" in ring["+14155557002"], ring
        assert "pathway 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f takes" in ring["+14155557003"], ring
        assert "agent agent_demo_retell takes the call" in ring["+14155559879"], ring
        assert "assistant asst_demo_vapi takes the call" in ring["+14155557001"], ring
        assert "assistant asst_demo_vapi takes the call" in ring["+14155557004"], ring

        with psycopg.connect(dburl, autocommit=True) as conn:
            # the bought numbers exist, at the right providers, and are released now
            rows = sql(conn, "SELECT id, provider, e164, status, nickname FROM phone_numbers "
                             "WHERE id >= 5 ORDER BY id")
            assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
                (5, "retell", "+14155557002", "released"),
                (6, "bland", "+14155557003", "released"),
                (7, "vapi", "+14155557004", "released")], rows
            assert sql(conn, "SELECT nickname, agent_id FROM phone_numbers WHERE id = 4") == \
                [("Overflow", None)]
            # every call billed once (its duration; billed in whole minutes): the four rings
            # and the outbound call
            want = {("retell", 5, 1, "inbound", 75), ("bland", 6, 3, "inbound", 60),
                    ("retell", 4, 1, "inbound", 30), ("vapi", 2, 2, "inbound", 90),
                    ("vapi", 7, 2, "inbound", 45),
                    ("retell", 1, 1, "outbound", 42)}

            def billed():
                got = sql(conn, "SELECT provider, number_id, agent_id, direction, "
                                "round(duration_ms / 1000.0)::int "
                                "FROM usage_ledger")
                return got if len(got) >= len(want) else None

            got = wait_for(billed, 15 * SLOW, 0.1, "the walk-through's calls in the ledger")[0]
            assert sorted(got) == sorted(want), got
            # the token was revoked at the end
            assert sql(conn, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL") == [(0,)]
        # the sandbox saw the releases (Bland: unbound only)
        state = json.loads(subprocess.run(
            [str(REPO / "tools" / "sandbox"), "state", "--dir", str(run.var / "sandbox")],
            stdout=subprocess.PIPE, check=True, timeout=30).stdout)
        assert "+14155557002" not in state["numbers"]["retell"], state["numbers"]["retell"]
        assert state["numbers"]["bland"]["+14155557003"]["pathway_id"] is None
        assert out_of("build/bin/callroutectl -c var/callrouted.conf numbers release 6")

        # usage (read before the outbound call was in, maybe) lists the rung numbers
        usage = out_of("build/bin/callroutectl -c var/callrouted.conf usage")
        assert "+14155557002" in usage, usage

        # Ctrl-C: daemon, sandbox, cluster, in that order
        sb_pid = json.loads((run.var / "sandbox" / "sandbox.json").read_text())["pid"]
        rc = run.interrupt()
        log = run.log()
        assert rc in (0, 130), (rc, log[-3000:])
        assert not pg_running(run.var), log[-3000:]
        assert not alive(sb_pid), log[-3000:]
        a = log.index("main: exit 0")
        b = log.index("tools/run: stopping the provider sandbox")
        c = log.index("tools/run: stopping PostgreSQL")
        assert a < b < c, log[-3000:]
        if SANITIZE:
            assert "Sanitizer" not in log and "runtime error:" not in log, log[-6000:]

        # again: the cluster, data and sandbox numbers are reused, nothing is made twice
        again = Run(clone, "run2.log")
        again.start((run.listen, run.admin, run.sandbox_port))
        log2 = again.log()
        assert "demo data" not in log2 and "creating a cluster" not in log2, log2
        assert "tools/sandbox ring --dir %s/sandbox --to +14155557001" % run.var in log2, log2
        r = subprocess.run([str(REPO / "tools" / "sandbox"), "ring", "--dir",
                            str(run.var / "sandbox"), "--to", "+14155559876"],
                           stdout=subprocess.PIPE, text=True, timeout=60 * SLOW)
        assert r.returncode == 0 and "agent_demo_retell takes the call" in r.stdout, r.stdout
        with psycopg.connect(dburl, autocommit=True) as conn:
            assert sql(conn, "SELECT count(*) FROM phone_numbers") == [(7,)]
            assert sql(conn, "SELECT count(*) FROM provider_accounts "
                             "WHERE api_base_url LIKE 'https://127.0.0.1:%%'") == [(3,)]
        assert again.interrupt() in (0, 130), again.log()[-3000:]
        assert not pg_running(run.var)
    finally:
        run.kill()
        if "again" in locals():
            again.kill()
    assert time.monotonic() - t0 < 90 * SLOW
