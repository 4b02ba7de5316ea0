# test_descriptors: running out of descriptors degrades (no spin); one daemon per listen address.
"""Issue 10, points 2 (the listen address half) and 3.

- a daemon whose descriptor limit (prlimit on the running process) is reached by open
  connections: accept fails with EMFILE, the daemon pauses accepting instead of spinning
  (its CPU time over a second stays small), counts it, answers on the connections it has
  open, and serves new connections once those are closed;
- at start the soft RLIMIT_NOFILE is raised to the hard limit, with a warning when the
  configuration may need more;
- a second daemon on the same webhook listen (or admin_listen) address exits 1 naming the
  address and the first daemon's pid; the first keeps serving; a port held by another
  program (SO_REUSEPORT, which would otherwise share it) is refused too.
"""

import os
import socket
import subprocess
import time

import pytest

import helpers
from hardening_helpers import OPEN_CONNS, RawConn, raise_nofile, signed_raw
from helpers import NUM_RET1, SLOW, retell_inbound, wait_for
from ops_helpers import scrape


@pytest.fixture(autouse=True)
def close_raw_conns():
    yield
    while OPEN_CONNS:
        OPEN_CONNS.pop().close()


def cpu_ticks(pid):
    """utime + stime of the process, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def set_nofile(pid, n):
    subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:%d" % (n, n)], check=True)


def accept_errors(d, reason):
    return scrape(d).get("callrouted_http_accept_errors_total", reason=reason)


def routes_ok(conn, what):
    conn.send(signed_raw("retell", NUM_RET1))
    r = conn.read_response(timeout=5.0 * SLOW)
    assert r.status == 200, "%s: got %r" % (what, r)
    assert r.json()["call_inbound"]["override_agent_id"] == "agent_ret_1", (what, r)


def test_emfile_pauses_accepting_and_keeps_serving(env):
    raise_nofile(4096)
    d = env.start({"workers": 2, "log_level": "info", "keepalive_timeout": "120s",
                   "request_timeout": "60s"})
    pid = d.proc.pid
    s0 = scrape(d)
    assert s0.get("callrouted_http_accept_errors_total", reason="emfile") == 0
    for reason in ("enfile", "other"):
        assert s0.has("callrouted_http_accept_errors_total", reason=reason)
    # the start raised the soft limit to the hard one
    with open("/proc/%d/limits" % pid) as f:
        row = [ln for ln in f if ln.startswith("Max open files")][0].split()
    assert row[3] == row[4], "soft limit not raised to the hard one: %r" % row

    # connections open (and served) before the limit is reached
    served = [RawConn(d.port, timeout=5.0 * SLOW) for _ in range(4)]
    for i, c in enumerate(served):
        routes_ok(c, "connection %d before the limit" % i)
    # a descriptor limit a little above what the daemon holds now
    base = open_fds(pid)
    limit = base + 24
    set_nofile(pid, limit)
    conns = []
    adm = None
    try:
        # more connections than the daemon can take: the kernel completes them all (the
        # listen queue), the daemon accepts until EMFILE
        for _ in range(60):
            conns.append(RawConn(d.port, timeout=5.0 * SLOW))
        wait_for(lambda: open_fds(pid) >= limit - 1, 5 * SLOW,
                 what="the daemon at its descriptor limit")
        time.sleep(0.3)
        # no spinning: CPU time over a second, with accept failing all along
        t0 = cpu_ticks(pid)
        time.sleep(1.0)
        used = (cpu_ticks(pid) - t0) / os.sysconf("SC_CLK_TCK")
        assert used < 0.3, "the daemon used %.2f s of CPU in 1 s at EMFILE (spinning)" % used
        # the connections it has open are answered
        for i, c in enumerate(served):
            routes_ok(c, "open connection %d at EMFILE" % i)
        assert "could not accept a webhook connection: Too many open files" in d.log()
        # the admin listener pauses the same way: a health check waits in its listen queue
        adm = RawConn(d.admin_port, timeout=5.0 * SLOW)
        adm.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = cpu_ticks(pid)
        time.sleep(1.0)
        used = (cpu_ticks(pid) - t0) / os.sysconf("SC_CLK_TCK")
        assert used < 0.3, "%.2f s of CPU in 1 s with both listeners at EMFILE" % used
        # one line a second at most
        n_lines = d.log().count("could not accept a webhook connection")
        assert n_lines <= 4, "%d accept lines in ~2 s" % n_lines
    finally:
        for c in conns + served:
            c.close()
        conns.clear()
    # the queued health check is taken and answered once descriptors are free
    r = adm.read_response(timeout=5.0 * SLOW)
    assert r.status == 200, r
    adm.close()
    # the descriptors are back: the scrape connects, and the counter moved
    wait_for(lambda: open_fds(pid) < limit - 8, 5 * SLOW, what="connections closed")
    n = wait_for(lambda: accept_errors(d, "emfile") or None, 5 * SLOW,
                 what="callrouted_http_accept_errors_total{reason=\"emfile\"} > 0")[0]
    assert n > 0
    assert scrape(d).get("callrouted_admin_http_accept_errors_total", reason="emfile") > 0
    # and new connections are served again
    c = RawConn(d.port, timeout=5.0 * SLOW)
    routes_ok(c, "a new connection after the descriptors came back")
    assert retell_inbound(d, NUM_RET1).status == 200
    assert d.readyz().status == 200


def test_nofile_warning_when_the_hard_limit_is_low(env):
    d = env.daemon({"max_connections": 5000, "log_level": "info"})
    d.write_config()
    # start under a hard limit of 1024: the configuration may need more (warn, not refuse)
    d._log = open(d.log_path, "ab")
    d.proc = subprocess.Popen(["prlimit", "--nofile=1024:1024", str(helpers.callrouted_bin()),
                               "-c", str(d.conf_path)], stdout=d._log,
                              stderr=subprocess.STDOUT, env=helpers.daemon_env(),
                              cwd=str(d.workdir))
    d.wait_ready()
    assert "is below the" in d.log() and "RLIMIT_NOFILE 1024" in d.log(), d.log_tail()
    assert retell_inbound(d, NUM_RET1).status == 200


def second_exits(env, d1, overrides, want):
    d2 = env.daemon(overrides, name="second")
    d2.start(wait_ready=False)
    try:
        rc = d2.proc.wait(20 * SLOW)
    except subprocess.TimeoutExpired:
        d2.stop()
        pytest.fail("the second daemon did not exit\n" + d2.log_tail())
    d2.checked = True
    assert rc == 1, "second daemon exit %r\n%s" % (rc, d2.log_tail())
    assert want in d2.log(), "want %r in the log\n%s" % (want, d2.log_tail())
    assert d2.bad_log_text() == []
    # the first keeps serving, on both listeners
    assert retell_inbound(d1, NUM_RET1).status == 200
    assert d1.readyz().status == 200
    return d2


def test_second_daemon_on_the_same_listen_address(env):
    d1 = env.start()
    addr = "127.0.0.1:%d" % d1.port
    second_exits(env, d1, {"listen": addr},
                 "wire: %s is in use by another callrouted (pid %d)" % (addr, d1.proc.pid))
    # many webhook connections still all reach the first daemon (nothing shares the port)
    for _ in range(20):
        assert retell_inbound(d1, NUM_RET1).status == 200
    assert scrape(d1).get("callrouted_http_connections_accepted_total") >= 20


def test_second_daemon_on_the_same_admin_address(env):
    d1 = env.start()
    addr = "127.0.0.1:%d" % d1.admin_port
    second_exits(env, d1, {"admin_listen": addr}, "wire: %s is in use by another" % addr)


def test_port_held_by_another_program(env):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    port = s.getsockname()[1]
    try:
        d = env.daemon({"listen": "127.0.0.1:%d" % port}, name="beside")
        d.start(wait_ready=False)
        rc = d.proc.wait(20 * SLOW)
        d.checked = True
        assert rc == 1, d.log_tail()
        assert ("wire: 127.0.0.1:%d is in use by another process" % port) in d.log(), \
            d.log_tail()
    finally:
        s.close()
    # the address free again: a daemon on it starts
    d = env.daemon({"listen": "127.0.0.1:%d" % port}, name="after")
    d.port = port
    d.start()
    assert retell_inbound(d, NUM_RET1).status == 200


def test_lock_released_when_the_holder_dies(env):
    d1 = env.start()
    addr = "127.0.0.1:%d" % d1.port
    d1.proc.kill()
    d1.proc.wait()
    d1.checked = True
    d2 = env.daemon({"listen": addr}, name="next")
    d2.port = d1.port
    d2.start()
    assert retell_inbound(d2, NUM_RET1).status == 200
