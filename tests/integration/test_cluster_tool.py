# test_cluster_tool: tools/cluster starts primary + standby + 2 daemons + HAProxy, fails over, stops.
"""Smoke test of tools/cluster (issue 14, item 4) in a directory of its own, on ports of its own:
it comes up (the standby streaming, both daemons behind HAProxy), a signed routing request
through HAProxy is answered with the demo agent, `tools/cluster failover` promotes the standby
and a call event answered 200 afterwards lands in the new primary's ledger, and Ctrl-C stops
every process it started."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from support import haproxy
from support.build import REPO, SLOW, callrouted_bin, daemon_env
from support.ledger import new_id, retell_event
from support.net import _port_slice, http_request
from support.polling import wait_for
from support.signing import body_bytes, sw

CLUSTER = REPO / "tools" / "cluster"
PG = REPO / "tools" / "pg"


def port_base():
    """N with N..N+12 free on 127.0.0.1 (outside the ephemeral range).  A run on a port slice
    (CALLROUTED_TEST_PORT_SLICE=k/n: tools/test runs the ASan and TSan trees side by side, both
    with this test) scans blocks of its own, so two runs never pick the same block."""
    k, n = _port_slice()
    for base in range(23000 + 37 * k, 29000, 37 * n):
        ok = True
        for p in range(base, base + 13):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    pytest.skip("no 13 free ports in a row")


def pg_url(root, name):
    port = (root / name / "port").read_text().strip()
    return "host=127.0.0.1 port=%s dbname=callrouted user=postgres" % port


@pytest.mark.skipif(not haproxy.available(), reason="haproxy is not installed (tools/setup)")
def test_cluster_start_route_failover_stop():
    root = Path(tempfile.mkdtemp(prefix="callrouted-cluster-"))
    root.chmod(0o711)  # tools/pg: the postgres user (tests as root) must enter it
    cdir = root / "cluster"
    base = port_base()
    env = dict(daemon_env(), CALLROUTED_CLUSTER_DIR=str(cdir),
               CALLROUTED_BIN_DIR=str(callrouted_bin().parent),
               CALLROUTED_CLUSTER_PORT_BASE=str(base))
    log_path = root / "cluster.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(CLUSTER)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, cwd=str(REPO),
                            start_new_session=True)

    def text():
        return log_path.read_text(errors="replace")
    try:
        def up():
            if proc.poll() is not None:
                raise AssertionError("tools/cluster exited %d:\n%s" % (proc.returncode, text()))
            return "The cluster is running" in text()
        t0 = time.monotonic()
        wait_for(up, 90 * SLOW, interval=0.2, what="tools/cluster up")
        print("tools/cluster up in %.1fs" % (time.monotonic() - t0))

        # a signed routing request through HAProxy: the demo Retell number's agent
        body = sw.build_payload("retell", "call_inbound", "+14155559876", "+14155550123")
        r = http_request(base, "POST", sw.webhook_path("retell", "demo-retell"), body,
                         dict(sw.retell_headers("demo-retell-key", body),
                              **{"Content-Type": "application/json"}))
        assert r.status == 200, r
        assert r.json()["call_inbound"]["override_agent_id"] == "agent_demo_retell", r

        # fail over: the old primary stops, the standby is promoted
        f = subprocess.run([str(CLUSTER), "failover"], env=env, capture_output=True, text=True,
                           timeout=60 * SLOW)
        assert f.returncode == 0, f.stderr
        assert "pg-b is the primary now" in f.stderr, f.stderr

        # a call event through HAProxy: answered 200 (journaled) and, once the daemons'
        # ledgers reconnect to pg-b by themselves, in its ledger
        cid = new_id("cltool")
        ev = body_bytes(retell_event("call_ended", cid, "inbound", "+14155559876",
                                     agent="agent_demo_retell"))
        h = {"Content-Type": "application/json"}
        h.update(sw.sign_headers("retell", "demo-retell-key", ev, "demo-retell", "hmac"))
        r = http_request(base, "POST", sw.webhook_path("retell", "demo-retell"), ev, h)
        assert r.status == 200, r

        def landed():
            with psycopg.connect(pg_url(cdir, "pg-b"), autocommit=True) as c:
                return c.execute("SELECT count(*) FROM usage_ledger WHERE provider_call_id = %s",
                                 (cid,)).fetchone()[0] == 1
        _, took = wait_for(landed, 20 * SLOW, interval=0.2, what="the event in pg-b's ledger")
        print("call event in the new primary's ledger %.1fs after its 200" % took)
        st = subprocess.run([str(CLUSTER), "status"], env=env, capture_output=True, text=True,
                            timeout=30 * SLOW)
        print(st.stdout)
        assert "pg-b  primary" in st.stdout and "pg-a  down" in st.stdout, st.stdout
        assert st.stdout.count(" ok") >= 2, st.stdout  # callroutectl instances: d1, d2 ok

        # Ctrl-C: everything it started stops, exit 0
        os.kill(proc.pid, signal.SIGINT)
        rc = proc.wait(60 * SLOW)
        assert rc == 0, text()
        for n in ("pg-a", "pg-b"):
            assert subprocess.run([str(PG), "status", str(cdir / n)]).returncode != 0, n
        ps = subprocess.run(["pgrep", "-f", str(cdir)], capture_output=True, text=True)
        assert not ps.stdout.strip(), "still running: %s" % ps.stdout
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        for n in ("pg-a", "pg-b"):
            if (cdir / n).exists():
                subprocess.run([str(PG), "stop", str(cdir / n)], capture_output=True)
        for pid in subprocess.run(["pgrep", "-f", str(cdir)], capture_output=True,
                                  text=True).stdout.split():
            os.kill(int(pid), signal.SIGKILL)
        # a sanitizer's report in a daemon's log goes with the test's output (the directory goes)
        for d in ("d1", "d2"):
            p = cdir / d / "log"
            t = p.read_text(errors="replace") if p.exists() else ""
            if any(w in t for w in ("ThreadSanitizer", "AddressSanitizer", "runtime error")):
                print("---- %s log (a sanitizer report) ----\n%s" % (d, t[-30000:]))
        shutil.rmtree(root, ignore_errors=True)
