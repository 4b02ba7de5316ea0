# test_ops: /metrics (promtool, counters after known traffic), sd_notify, watchdog, reload, stop.
"""Operations (issue 4): the metrics endpoint, the systemd notify protocol on a NOTIFY_SOCKET
this test creates, the proving watchdog, SIGHUP reload and SIGTERM during a burst."""

import concurrent.futures
import http.client
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid

import pytest

from support import net as helpers  # for helpers.free_port, helpers.http_request
from support.build import SLOW, run_cli
from support.data import (DEFAULT_VAPI_NO_AGENT, NUM_RET1, NUM_RET_FREE, NUM_UNKNOWN, RETELL_KEY,
                          RETELL_SLUG)
from support.env import env_daemon
from support.notify import NotifySocket, fields
from support.polling import wait_for
from support.scrape import Scrape, scrape
from support.signing import retell_inbound, signed_post, vapi_assistant_request

WATCHDOG_USEC = 1000000  # pings every 500 ms


# ---- helpers of this module ----

def retell_call_ended(call_id, to=NUM_RET1, duration_ms=15791, agent="agent_ret_1"):
    """A connected inbound Retell call_ended (shape of retell/call_ended.json)."""
    start = 1714608475945
    return {"event": "call_ended", "call": {
        "call_id": call_id, "agent_id": agent, "agent_version": 2,
        "call_type": "phone_call", "call_status": "ended", "direction": "inbound",
        "from_number": "+14155550123", "to_number": to,
        "start_timestamp": start, "end_timestamp": start + duration_ms,
        "duration_ms": duration_ms, "disconnection_reason": "user_hangup"}}


def post_call_ended(d, call_id, **kw):
    return signed_post(d, "retell", RETELL_SLUG, RETELL_KEY, retell_call_ended(call_id, **kw))


def new_call_id():
    return "call_" + uuid.uuid4().hex[:20]


def log_count(d, text):
    return d.log().count(text)


def wait_log(d, text, after=0, timeout=5.0):
    """Wait until text occurs in the log more than `after` times."""
    wait_for(lambda: log_count(d, text) > after, timeout * SLOW, what="log line %r\n%s"
             % (text, d.log_tail(30)))


def ledger_counts(conn):
    rows = conn.execute("SELECT provider_call_id, count(*) FROM usage_ledger "
                        "GROUP BY provider_call_id").fetchall()
    return {r[0]: r[1] for r in rows}


def notify_daemon(env, notify, overrides=None, extra=None):
    """A daemon speaking sd_notify to `notify` with a 1 s watchdog (WATCHDOG_PID unset)."""
    e = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    e.update(extra or {})
    return env_daemon(env, overrides, e, unset=("WATCHDOG_PID",))


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def sigterm_and_wait(d, timeout=15.0):
    d.proc.send_signal(signal.SIGTERM)
    try:
        return d.proc.wait(timeout * SLOW)
    except subprocess.TimeoutExpired:
        raise AssertionError("still running %.0fs after SIGTERM\n%s" % (timeout * SLOW,
                                                                       d.log_tail(40)))


# ---- 1. promtool check metrics ----

def test_metrics_scrape_passes_promtool(env, daemon):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian package prometheus: "
                    "apt-get install -y prometheus)")
    # traffic first: the sparse series and the histograms have samples
    assert retell_inbound(daemon, NUM_RET1).status == 200
    assert retell_inbound(daemon, NUM_UNKNOWN).status == 200
    assert post_call_ended(daemon, new_call_id()).status == 200
    assert signed_post(daemon, "retell", RETELL_SLUG, "wrong-key", {"event": "x"}).status == 401
    r = daemon.admin("GET", "/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    p = subprocess.run([promtool, "check", "metrics"], input=r.body, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0 and not out.strip(), \
        "promtool check metrics (exit %d):\n%s" % (p.returncode, out)


# ---- 2. counters move after known traffic ----

def test_counters_move_after_known_traffic(env, daemon):
    d = daemon
    a = scrape(d)
    for _ in range(3):
        r = retell_inbound(d, NUM_RET1)
        assert r.status == 200 and r.json()["call_inbound"]["override_agent_id"] == "agent_ret_1"
    r = signed_post(d, "retell", RETELL_SLUG, "not-the-key", {"event": "call_inbound"})
    assert r.status == 401, r
    assert retell_inbound(d, NUM_UNKNOWN).status == 200
    assert retell_inbound(d, NUM_RET_FREE).status == 200
    # a connected call of 75.2 s: 76 s -> billed 60 + 60 = 120 s at 0.15 $/min = 300000 µ$
    cid = new_call_id()
    assert post_call_ended(d, cid, duration_ms=75200).status == 200
    b = scrape(d)

    def delta(name, **labels):
        return b.get(name, **labels) - a.get(name, **labels)

    assert delta("callrouted_route_lookups_total", result="hit") == 3
    assert delta("callrouted_route_lookups_total", result="unknown") == 1
    assert delta("callrouted_route_lookups_total", result="unassigned") == 1
    assert delta("callrouted_route_lookups_total", result="released") == 0
    assert delta("callrouted_webhook_requests_total", provider="retell", event="call_inbound",
                 code="200") == 5
    assert delta("callrouted_webhook_signature_failures_total", provider="retell") == 1
    assert delta("callrouted_webhook_signature_failures_total", provider="vapi") == 0
    assert (b.sum("callrouted_webhook_requests_total", provider="retell", code="401")
            - a.sum("callrouted_webhook_requests_total", provider="retell", code="401")) == 1
    assert delta("callrouted_webhook_requests_total", provider="retell", event="call_ended",
                 code="200") == 1
    assert delta("callrouted_journal_appends_total") == 1
    assert delta("callrouted_journal_fsync_duration_seconds_count") >= 1
    assert delta("callrouted_journal_append_duration_seconds_count") == 1
    # latency histogram: 5 routing answers, 1 call event (the 401 is answered before the event)
    assert delta("callrouted_webhook_duration_seconds_count", provider="retell",
                 kind="inbound") == 5
    assert delta("callrouted_webhook_duration_seconds_count", provider="retell",
                 kind="event") == 1
    assert delta("callrouted_webhook_duration_seconds_sum", provider="retell",
                 kind="inbound") > 0

    # the ledger row lands within a few seconds; its metrics move by its amounts
    def moved():
        s = scrape(d)
        return s if s.get("callrouted_ledger_rows_total", provider="retell") > \
            a.get("callrouted_ledger_rows_total", provider="retell") else None
    c, _ = wait_for(moved, 5.0 * SLOW, interval=0.05, what="callrouted_ledger_rows_total +1")
    row = env.sql("SELECT billed_seconds, amount_micros FROM usage_ledger "
                  "WHERE provider_call_id = %s", cid).fetchone()
    assert row == (120, 300000), row
    for name, want in (("callrouted_ledger_rows_total", 1),
                       ("callrouted_ledger_billed_seconds_total", 120),
                       ("callrouted_ledger_amount_micros_total", 300000)):
        assert c.get(name, provider="retell") - a.get(name, provider="retell") == want, name
        assert c.get(name, provider="vapi") == a.get(name, provider="vapi"), name

    # every family has HELP and TYPE, named callrouted_* (or process_*), counters *_total
    families = {c.family(n) for n in c.order}
    for f in families:
        assert f in c.help and c.help[f].strip(), "no HELP for %s" % f
        assert f in c.type, "no TYPE for %s" % f
        assert f.startswith(("callrouted_", "process_")), f
        if c.type[f] == "counter":
            assert f.endswith("_total"), f
    for f, t in c.type.items():
        assert t in ("counter", "gauge", "histogram"), (f, t)
        assert f in families, "TYPE without samples: %s" % f
    # histograms: cumulative buckets ending at +Inf == _count
    for f in (f for f, t in c.type.items() if t == "histogram"):
        groups = {}
        for ls, v in c.series(f + "_bucket").items():
            key = frozenset((k, x) for k, x in ls if k != "le")
            groups.setdefault(key, []).append((float(dict(ls)["le"]), v))
        assert groups, f
        for key, bk in groups.items():
            bk.sort()
            assert bk[-1][0] == float("inf"), (f, key)
            assert all(x[1] <= y[1] for x, y in zip(bk, bk[1:])), (f, key, bk)
            assert bk[-1][1] == c.get(f + "_count", **dict(key)), (f, key)
    # the buckets see 50 µs .. 100 ms
    les = {float(dict(ls)["le"]) for ls in c.series("callrouted_webhook_duration_seconds_bucket")}
    assert 0.00005 in les and 0.1 in les, sorted(les)

    version = run_cli("--version").stdout.split()[-1]
    assert c.series("callrouted_build_info") == {frozenset({("version", version)}): 1.0}
    for name in ("process_open_fds", "process_resident_memory_bytes",
                 "process_start_time_seconds"):
        assert c.get(name) > 0, name
    assert abs(c.get("process_start_time_seconds") - time.time()) < 120
    assert c.get("callrouted_routes_entries") == env.ids.n_numbers
    assert c.get("callrouted_db_up") == 1


# ---- 3. the notify protocol ----

STATUS_RE = re.compile(r"^(\d+) numbers \(generation (\d+), from (database|snapshot)\), "
                       r"(\d+) req/s, journal backlog (\d+), database (up|down)$")


def test_notify_protocol(env):
    holder = {}

    def on_message(text):
        # the instant READY=1 arrives, /readyz must already answer 200
        if "READY=1" in text.split("\n") and "d" in holder:
            return holder["d"].admin("GET", "/readyz", timeout=2.0).status
        return None

    n = NotifySocket(on_message)
    try:
        d = notify_daemon(env, n)
        holder["d"] = d
        d.start(wait_ready=False)
        i_ready, t_ready, _, readyz = n.wait(lambda t: "READY=1" in t.split("\n"),
                                             15.0 * SLOW, what="READY=1")
        assert readyz == 200, "READY=1 sent while /readyz answered %r" % (readyz,)
        assert retell_inbound(d, NUM_RET1).json()["call_inbound"]["override_agent_id"] \
            == "agent_ret_1"
        before = [m[1] for m in n.snapshot()[:i_ready]]
        assert not any(m.startswith(("STOPPING", "RELOADING")) for m in before), before
        # STATUS= at READY, with the numbers loaded
        i_st, _, st, _ = n.wait(lambda t: t.startswith("STATUS="), 2.0 * SLOW, start=i_ready,
                                what="STATUS= at READY")
        m = STATUS_RE.match(fields(st)["STATUS"])
        assert m, st
        assert (int(m.group(1)), m.group(3), m.group(6)) == (env.ids.n_numbers, "database",
                                                              "up"), st
        # traffic, then the periodic STATUS= (every 5 s) shows a request rate
        for _ in range(30):
            assert retell_inbound(d, NUM_RET1).status == 200
        _, _, st2, _ = n.wait(lambda t: t.startswith("STATUS="), 7.0 * SLOW, start=i_st + 1,
                              what="periodic STATUS=")
        m2 = STATUS_RE.match(fields(st2)["STATUS"])
        assert m2 and int(m2.group(4)) >= 1, st2
        # WATCHDOG=1 about every 500 ms meanwhile
        pings = [t for t, text, _ in n.snapshot() if text == "WATCHDOG=1"]
        assert len(pings) >= 7, "only %d WATCHDOG=1 in %.1fs" % (
            len(pings), time.monotonic() - t_ready)
        gaps = [y - x for x, y in zip(pings, pings[1:])]
        assert all(0.3 <= g <= 0.8 * SLOW for g in gaps), ["%.3f" % g for g in gaps]
        assert [m[1] for m in n.snapshot()].count("READY=1") == 1

        # SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1
        k = len(n.snapshot())
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
        d.proc.send_signal(signal.SIGHUP)
        i_rl, _, rl, _ = n.wait(lambda t: "RELOADING=1" in t.split("\n"), 5.0 * SLOW, start=k,
                                what="RELOADING=1")
        t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
        f = fields(rl)
        assert re.fullmatch(r"\d+", f.get("MONOTONIC_USEC", "")), rl
        assert t0 * 1e6 - 1000 <= int(f["MONOTONIC_USEC"]) <= t1 * 1e6 + 1000, \
            (t0, f["MONOTONIC_USEC"], t1)
        n.wait(lambda t: "READY=1" in t.split("\n"), 5.0 * SLOW, start=i_rl + 1,
               what="READY=1 after RELOADING=1")
        wait_log(d, "configuration reloaded")
        assert d.running()

        # SIGTERM: STOPPING=1, exit 0
        k = len(n.snapshot())
        rc = sigterm_and_wait(d)
        n.wait(lambda t: "STOPPING=1" in t.split("\n"), 1.0, start=k, what="STOPPING=1")
        assert rc == 0, d.log_tail(30)
    finally:
        n.close()


# ---- 4. the watchdog proves progress ----

def test_watchdog_stops_while_a_worker_is_stalled(env, notify):
    d = notify_daemon(env, notify, {"workers": 2}, {"CALLROUTED_TEST_HOOKS": "1"})
    d.start()
    # steady pings first
    i, _, _, _ = notify.wait(lambda t: t == "WATCHDOG=1", 3.0 * SLOW, what="WATCHDOG=1")
    notify.wait(lambda t: t == "WATCHDOG=1", 2.0 * SLOW, start=i + 1, what="a second WATCHDOG=1")

    t0 = time.monotonic()
    r = d.admin("POST", "/debug/stall?worker=0&ms=3000")
    assert r.status == 200, r
    # pings resume after the stall
    k = len(notify.snapshot())
    _, t_back, _, _ = notify.wait(lambda t: t == "WATCHDOG=1" and time.monotonic() > t0 + 3.0,
                                  6.0 * SLOW, start=k, what="WATCHDOG=1 after the stall")
    pings = [t - t0 for t, text, _ in notify.snapshot() if text == "WATCHDOG=1" and t >= t0]
    during = [p for p in pings if 1.2 <= p <= 2.8]
    assert not during, "WATCHDOG=1 while worker 0 was stalled, at %s s after the stall began" \
        % ["%.2f" % p for p in during]
    assert t_back - t0 <= 3.0 + 1.5 * SLOW, "pings resumed only %.2fs after the stall began" \
        % (t_back - t0)
    assert 'watchdog: thread "worker 0" shows no progress' in d.log(), d.log_tail(30)
    wait_log(d, "watchdog: every thread shows progress again")
    # the stalled worker serves again
    for _ in range(6):
        assert retell_inbound(d, NUM_RET1).status == 200


# ---- 5. reload: a bad file keeps the old configuration whole ----

def test_bad_config_on_sighup_keeps_the_old_one(env, daemon):
    d = daemon
    routed = retell_inbound(d, NUM_RET1).json()
    r = vapi_assistant_request(d, NUM_UNKNOWN)
    assert (r.status, r.json()) == (200, {"error": DEFAULT_VAPI_NO_AGENT}), r
    a = scrape(d)

    # a valid change and an unknown key in one file: nothing of it applies
    good_values = dict(d.values)
    d.values["vapi_no_agent_message"] = "Changed in a file that is invalid."
    d.values["no_such_key"] = 1
    d.write_config()
    n_invalid = log_count(d, "is invalid; keeping the one in force")
    d.proc.send_signal(signal.SIGHUP)
    wait_log(d, "is invalid; keeping the one in force", n_invalid)
    assert 'unknown key "no_such_key"' in d.log(), d.log_tail(20)
    assert d.running()
    assert d.readyz().status == 200
    assert retell_inbound(d, NUM_RET1).json() == routed
    r = vapi_assistant_request(d, NUM_UNKNOWN)
    assert (r.status, r.json()) == (200, {"error": DEFAULT_VAPI_NO_AGENT}), r
    # the route table was reloaded all the same
    wait_for(lambda: scrape(d).get("callrouted_routes_reloads_total", kind="full",
                                   result="ok") > a.get("callrouted_routes_reloads_total",
                                                        kind="full", result="ok"),
             5.0 * SLOW, what="a full route reload after SIGHUP")

    # a good file: its change applies; a restart-only key keeps its value with a warning
    d.values = good_values
    d.values["vapi_no_agent_message"] = "We are closed, goodbye."
    new_admin = helpers.free_port()
    d.values["admin_listen"] = "127.0.0.1:%d" % new_admin
    d.write_config()
    n_ok = log_count(d, "configuration reloaded")
    d.proc.send_signal(signal.SIGHUP)
    wait_log(d, "configuration reloaded", n_ok)
    r = vapi_assistant_request(d, NUM_UNKNOWN)
    assert (r.status, r.json()) == (200, {"error": "We are closed, goodbye."}), r
    assert "admin_listen changed: it takes effect at the next restart" in d.log()
    assert d.readyz().status == 200  # still on the old admin port
    with pytest.raises(OSError):
        helpers.http_request(new_admin, "GET", "/healthz", timeout=1.0)
    assert retell_inbound(d, NUM_RET1).json() == routed


# ---- 6. SIGTERM during a burst of call events loses none ----

def test_sigterm_during_burst_loses_nothing_answered(env):
    d = env.start({"workers": 4, "instance_name": "ops-1"}, name="s1")
    ids = [new_call_id() for _ in range(500)]
    answered, lock = set(), threading.Lock()
    outcomes = {}

    def send(cid):
        try:
            st = post_call_ended(d, cid).status
        except (OSError, http.client.HTTPException) as e:
            st = type(e).__name__
        with lock:
            outcomes[st] = outcomes.get(st, 0) + 1
            if st == 200:
                answered.add(cid)
        return st

    pool = concurrent.futures.ThreadPoolExecutor(8)
    futs = [pool.submit(send, cid) for cid in ids]
    try:
        wait_for(lambda: len(answered) >= 100, 20.0 * SLOW, interval=0.001,
                 what="100 events answered")
        rc = sigterm_and_wait(d)
    finally:
        concurrent.futures.wait(futs)
        pool.shutdown()
    print("burst: %d answered 200; outcomes %r" % (len(answered), outcomes))
    assert rc == 0, d.log_tail(30)
    assert len(answered) < len(ids), "the SIGTERM did not land mid-burst: %r" % outcomes
    assert all(s == 200 or not isinstance(s, int) for s in outcomes), outcomes

    # the journal of the stopped instance is drained by the next one on the same state_dir
    d2 = env.start({"workers": 4, "instance_name": "ops-2", "state_dir": str(d.state_dir)},
                   name="s2")

    def drained():
        got = ledger_counts(env.conn)
        return got if answered <= set(got) and \
            scrape(d2).get("callrouted_journal_records_pending") == 0 else None
    got, _ = wait_for(drained, 20.0 * SLOW, interval=0.1,
                      what="every event answered 200 in usage_ledger")
    assert set(got.values()) == {1}, {k: v for k, v in got.items() if v != 1}
    assert set(got) <= set(ids), set(got) - set(ids)
