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

from support.build import SLOW, callrouted_bin, daemon_env
from support.data import NUM_RET1, RETELL_KEY, RETELL_SLUG
from support.ledger import ledger_rows, new_id, retell_event, wait_drained
from support.load import raise_nofile
from support.polling import wait_for
from support.rawhttp import OPEN_CONNS, RawConn, raw_request, signed_raw
from support.scrape import scrape
from support.signing import body_bytes, retell_inbound, sw


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


def set_nofile(pid, soft, hard):
    subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:%d" % (soft, hard)], check=True)


def accept_errors(d, reason):
    return scrape(d).get("callrouted_http_accept_errors_total", reason=reason)


def routes_ok(conn, what):
    conn.send(signed_raw("retell", NUM_RET1))
    r = conn.read_response(timeout=5.0 * SLOW)
    assert r.status == 200, "%s: got %r" % (what, r)
    assert r.json()["call_inbound"]["override_agent_id"] == "agent_ret_1", (what, r)


def call_ended_raw(call_id):
    """A signed Retell call_ended for call_id, as raw bytes."""
    body = body_bytes(retell_event("call_ended", call_id, "inbound", NUM_RET1))
    hdrs = [("Content-Type", "application/json")]
    hdrs += list(sw.sign_headers("retell", RETELL_KEY, body, RETELL_SLUG).items())
    return raw_request("POST", sw.webhook_path("retell", RETELL_SLUG), body, hdrs)


def hard_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        row = [ln for ln in f if ln.startswith("Max open files")][0].split()
    return int(row[3]), int(row[4])


def lowest_free_fd(pid):
    used = {int(x) for x in os.listdir("/proc/%d/fd" % pid)}
    n = 0
    while n in used:
        n += 1
    return n


def cpu_over_a_second(pid):
    t0 = cpu_ticks(pid)
    time.sleep(1.0)
    return (cpu_ticks(pid) - t0) / os.sysconf("SC_CLK_TCK")


def start_served(env):
    """A daemon and four connections it has taken (each served once)."""
    raise_nofile(4096)
    d = env.start({"workers": 2, "log_level": "info", "keepalive_timeout": "120s",
                   "request_timeout": "60s"})
    served = [RawConn(d.port, timeout=5.0 * SLOW) for _ in range(4)]
    for i, c in enumerate(served):
        routes_ok(c, "connection %d before the limit" % i)
    # every database connection made (the admin API's four included: admin_db_connections),
    # so that none opens or closes a socket while the test counts the descriptors
    wait_for(lambda: d.log().count("db: admin connected") >= 4 or None, 10.0 * SLOW, 0.02,
             "the admin API's database connections")
    return d, served


def test_last_descriptors_are_kept_for_the_daemon(env):
    """A flood of connections near the descriptor limit is refused (503) before it takes the
    descriptors the journal needs: call events on open connections are still journaled."""
    d, served = start_served(env)
    pid = d.proc.pid
    soft, hard = hard_limit(pid)
    assert soft == hard, "the start did not raise the soft limit to the hard one"
    s0 = scrape(d)
    for reason in ("emfile", "enfile", "other", "reserve"):
        assert s0.get("callrouted_http_accept_errors_total", reason=reason) == 0, reason
    limit = open_fds(pid) + 48
    set_nofile(pid, limit, hard)
    cid = new_id()
    refused = 0
    conns = []
    try:
        for _ in range(80):
            c = RawConn(d.port, timeout=5.0 * SLOW)
            conns.append(c)
        for c in conns:
            c.send(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            o = c.outcome(timeout=0.5 * SLOW)
            if o[0] == "answer" and o[1].status == 503:
                refused += 1
        assert refused > 0, "no connection refused near the descriptor limit"
        assert open_fds(pid) <= limit - 16, "connections took the reserve"
        used = cpu_over_a_second(pid)
        assert used < 0.3, "the daemon used %.2f s of CPU in 1 s near its limit" % used
        # the open connections are served, a call event too: the journal has descriptors
        for i, c in enumerate(served):
            routes_ok(c, "open connection %d near the limit" % i)
        served[0].send(call_ended_raw(cid))
        r = served[0].read_response(timeout=5.0 * SLOW)
        assert r.status == 200, r
        assert "refused a connection on the webhook listener: fewer than 32 descriptors " \
            "left" in d.log()
    finally:
        for c in conns + served:
            c.close()
    set_nofile(pid, soft, hard)
    wait_drained(d)
    assert len(ledger_rows(env.conn, cid)) == 1
    s = scrape(d)
    assert s.get("callrouted_http_accept_errors_total", reason="reserve") >= refused
    assert d.readyz().status == 200


def test_emfile_pauses_accepting_and_keeps_serving(env):
    """No descriptor left at all: accept fails with EMFILE; the daemon pauses accepting (no
    spin), answers on the connections it has, and takes the waiting ones afterwards."""
    d, served = start_served(env)
    pid = d.proc.pid
    soft, hard = hard_limit(pid)
    # every descriptor below the limit is taken: the next accept fails with EMFILE
    set_nofile(pid, lowest_free_fd(pid), hard)
    t0 = time.monotonic()
    conns = []
    try:
        for _ in range(20):
            conns.append(RawConn(d.port, timeout=5.0 * SLOW))
        adm = RawConn(d.admin_port, timeout=5.0 * SLOW)
        adm.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        # no spinning: CPU time over a second, with accept failing all along on both
        # listeners
        used = cpu_over_a_second(pid)
        assert used < 0.3, "the daemon used %.2f s of CPU in 1 s at EMFILE (spinning)" % used
        # the connections it has open are answered
        for i, c in enumerate(served):
            routes_ok(c, "open connection %d at EMFILE" % i)
        log = d.log()
        assert ("could not accept a connection on the webhook listener: Too many open "
                "files") in log
        # one line a second at most per listener (one's failures do not hide the other's)
        secs = time.monotonic() - t0
        for group in ("webhook", "admin"):
            n_lines = log.count("wire: could not accept a connection on the %s listener" % group)
            assert n_lines <= int(secs) + 2, "%d %s accept lines in %.1f s" % (n_lines, group,
                                                                               secs)
        assert adm.outcome(timeout=0.2)[0] == "open"  # waiting in the listen queue
    finally:
        set_nofile(pid, soft, hard)
    # descriptors again: the waiting connections are taken and served
    r = adm.read_response(timeout=5.0 * SLOW)
    assert r.status == 200, r
    for c in conns[:3]:
        routes_ok(c, "a connection that waited in the listen queue")
    for c in conns + served:
        c.close()
    s = scrape(d)
    assert s.get("callrouted_http_accept_errors_total", reason="emfile") > 0
    assert s.get("callrouted_admin_http_accept_errors_total", reason="emfile") > 0
    c = RawConn(d.port, timeout=5.0 * SLOW)
    routes_ok(c, "a new connection after the descriptors came back")
    assert retell_inbound(d, NUM_RET1).status == 200


def test_nofile_warning_when_the_hard_limit_is_low(env):
    d = env.daemon({"max_connections": 5000, "log_level": "info"})
    d.write_config()
    # start under a hard limit of 1024: the configuration may need more (warn, not refuse)
    d._log = open(d.log_path, "ab")
    d.proc = subprocess.Popen(["prlimit", "--nofile=1024:1024", str(callrouted_bin()),
                               "-c", str(d.conf_path)], stdout=d._log,
                              stderr=subprocess.STDOUT, env=daemon_env(),
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
