# test_billing_edges: what the daemon accepts it can bill; refused records kept; logs unforgeable.
"""Acceptance of issue 10, points 4 to 7: agency plans the schema accepts are billable (and the
migration names the rows outside); events the drain could not write are refused with 400 before
they are answered 200; records PostgreSQL refuses anyway land in ledger_rejects before the
checkpoint moves past them, and replay from there; every ledger row has an ended_at and shows in
`callroutectl usage --from/--to`; a later end event with another duration is recorded, not
billed again; concurrent --migrate runs all succeed; outside text cannot forge a log line."""

import datetime
import json
import re
import subprocess

import psycopg
import pytest
from psycopg import errors

from support.build import REPO, SLOW, callrouted_bin, daemon_env, run_cli
from support.data import NUM_BLAND1, NUM_RET1, NUM_UNKNOWN, NUM_VAPI1
from support.ledger import (T0_MS, bland_post_call, calls_rows, iso, ledger_rows, new_id,
                            post_bland, post_retell, post_vapi, retell_event, vapi_end,
                            wait_drained)
from support.net import free_port
from support.polling import wait_for

INSTANCE = "edges-1"
CTL = callrouted_bin().parent / "callroutectl"
H48_MS = 48 * 3600 * 1000


@pytest.fixture
def ld(env):
    return env.start({"instance_name": INSTANCE})


def ok(r):
    assert r.status == 200, r
    return r


def ctl(*args):
    return subprocess.run([str(CTL)] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=daemon_env(),
                          timeout=60 * SLOW)


def ctl_ok(*args):
    r = ctl(*args)
    assert r.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (r.returncode, r.stdout,
                                                                    r.stderr)
    return r


def metric(d, name, **labels):
    """The value of one sample of /metrics (0 if absent)."""
    body = d.admin("GET", "/metrics").body.decode()
    want = ",".join('%s="%s"' % (k, v) for k, v in sorted(labels.items()))
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return 0.0


def durable_seq(d):
    return d.readyz().json()["journal"]["durable_seq"]


def schema_version(conn):
    return conn.execute("SELECT max(version) FROM callrouted_schema_migrations").fetchone()[0]


def versions():
    """The versions of the migrations in daemon/sql (numbers may be left free between them)."""
    return sorted(int(p.name[:3]) for p in (REPO / "daemon" / "sql").glob("[0-9][0-9][0-9]_*.sql"))


def target_version():
    return max(versions())


def apply_up_to(conn, version):
    """The migrations up to `version`, as an older binary applied them."""
    conn.execute("CREATE TABLE callrouted_schema_migrations (version int PRIMARY KEY, "
                 "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
    for p in sorted((REPO / "daemon" / "sql").glob("[0-9][0-9][0-9]_*.sql")):
        v = int(p.name[:3])
        if v > version:
            continue
        conn.execute(p.read_text())
        conn.execute("INSERT INTO callrouted_schema_migrations (version, name) VALUES (%s, %s)",
                     (v, p.name))


def migrate_conf(e):
    return e.write_conf("migrate", {"database_url": e.database_url, "state_dir": str(e.tmp),
                                    "listen": "127.0.0.1:%d" % free_port(),
                                    "admin_listen": "127.0.0.1:%d" % free_port()})


# ---- 4. plans: the schema refuses what rating refuses ----

@pytest.mark.parametrize("col,value", [
    ("rate_micros_per_min", 100000001), ("rate_micros_per_min", -1),
    ("billing_initial_s", 0), ("billing_initial_s", 3601),
    ("billing_increment_s", 0), ("billing_increment_s", 3601),
])
def test_schema_refuses_unbillable_plans(env, col, value):
    with pytest.raises(errors.CheckViolation):
        env.sql("UPDATE agencies SET %s = %%s WHERE id = %%s" % col, value, env.ids.agency_a)


def test_plan_at_the_limits_bills_the_longest_call(env):
    """$100/min on 3600/3600, a call of exactly 48 h: accepted, billed, exact."""
    env.sql("UPDATE agencies SET rate_micros_per_min = 100000000, billing_initial_s = 3600, "
            "billing_increment_s = 3600 WHERE id = %s", env.ids.agency_a)
    d = env.start({"instance_name": INSTANCE})
    cid = new_id("max")
    ok(post_retell(d, retell_event("call_ended", cid, "inbound", NUM_RET1, duration_ms=H48_MS)))
    wait_drained(d)
    rows = ledger_rows(env.conn, cid)
    assert len(rows) == 1, rows
    assert (rows[0]["duration_ms"], rows[0]["billed_seconds"], rows[0]["amount_micros"]) == \
        (H48_MS, 172800, 288000000000), rows


def test_migration_names_plans_outside_and_changes_nothing(bare_env):
    """An old database (version 3) with plans rating cannot use: --migrate fails naming them,
    nothing is applied; fixed, --migrate applies 004."""
    e = bare_env
    apply_up_to(e.conn, 3)
    one = lambda q, *a: e.sql(q, *a).fetchone()[0]  # noqa: E731
    good = one("INSERT INTO agencies (name) VALUES ('ok') RETURNING id")
    bad1 = one("INSERT INTO agencies (name, rate_micros_per_min) VALUES ('dear', 250000000) "
               "RETURNING id")
    bad2 = one("INSERT INTO agencies (name, billing_increment_s) VALUES ('slow', 7200) "
               "RETURNING id")
    conf = migrate_conf(e)
    r = run_cli("-c", conf, "--migrate")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "agencies %d, %d have a plan the daemon cannot bill" % (bad1, bad2) in out, out
    assert "run --migrate again" in out and str(good) + "," not in out, out
    assert len(out.strip().splitlines()) <= 3, out  # a clear message, not a dump
    assert schema_version(e.conn) == 3
    assert not one("SELECT to_regclass('ledger_rejects') IS NOT NULL")
    e.sql("UPDATE agencies SET rate_micros_per_min = 100000000 WHERE id = %s", bad1)
    e.sql("UPDATE agencies SET billing_increment_s = 3600 WHERE id = %s", bad2)
    r = run_cli("-c", conf, "--migrate")
    assert r.returncode == 0, r.stdout + r.stderr
    assert schema_version(e.conn) == target_version()


# ---- 4. events the drain could not write: 400 at the webhook, counted, not journaled ----

def _bland_times(started=None, end=None, **kw):
    b = bland_post_call(kw.pop("cid"), True, NUM_BLAND1, **kw)
    if started is not None:
        b["started_at"] = started
    if end is not None:
        b["end_at"] = end
    return b


REFUSED = [
    # (name, provider, body builder(call id), reason label)
    ("retell start in 1970", "retell",
     lambda c: retell_event("call_ended", c, "inbound", NUM_RET1, start_ms=1000),
     "time_out_of_range"),
    ("retell start in 2200", "retell",
     lambda c: retell_event("call_ended", c, "inbound", NUM_RET1, start_ms=7258118400000),
     "time_out_of_range"),
    ("retell 49 h", "retell",
     lambda c: retell_event("call_ended", c, "inbound", NUM_RET1, duration_ms=49 * 3600000),
     "duration_out_of_range"),
    ("retell 49 h by the times", "retell",
     lambda c: retell_event("call_ended", c, "inbound", NUM_RET1, send_duration=False,
                            end_ms=T0_MS + 49 * 3600000),
     "duration_out_of_range"),
    ("retell end before start", "retell",
     lambda c: retell_event("call_ended", c, "inbound", NUM_RET1, end_ms=T0_MS - 1000),
     "end_before_start"),
    ("retell negative duration", "retell",
     lambda c: retell_event("call_ended", c, "inbound", NUM_RET1, duration_ms=-5, end_ms=None),
     "bad_value"),
    ("retell 300-char call id", "retell",
     lambda c: retell_event("call_ended", c + "x" * 300, "inbound", NUM_RET1),
     "call_id"),
    ("retell 200-char number", "retell",
     lambda c: retell_event("call_ended", c, "inbound", NUM_RET1, other="+1" + "5" * 200),
     "field_too_long"),
    ("vapi start in 1970", "vapi",
     lambda c: vapi_end(c, "inbound", NUM_VAPI1, start_ms=1000), "time_out_of_range"),
    ("vapi end before start", "vapi",
     lambda c: vapi_end(c, "inbound", NUM_VAPI1, duration_ms=-60000), "end_before_start"),
    ("vapi 49 h", "vapi",
     lambda c: vapi_end(c, "inbound", NUM_VAPI1, duration_ms=49 * 3600000),
     "duration_out_of_range"),
    ("bland start in 2200", "bland",
     lambda c: _bland_times(cid=c, started="2200-01-01T00:00:00Z"), "time_out_of_range"),
    ("bland end before start", "bland",
     lambda c: _bland_times(cid=c, end="2024-05-02T00:00:00Z"), "end_before_start"),
    ("bland 49 h", "bland",
     lambda c: _bland_times(cid=c, corrected=str(49 * 3600), call_length=None,
                            end="2024-05-04T01:07:55Z"), "duration_out_of_range"),
    ("bland unreadable duration", "bland",
     lambda c: _bland_times(cid=c, corrected="-5", call_length=None), "bad_value"),
]

POST = {"retell": post_retell, "vapi": post_vapi, "bland": post_bland}


def test_unwritable_events_refused_counted_not_journaled(env, ld):
    for name, provider, build, reason in REFUSED:
        cid = new_id("bad")
        body = build(cid)
        before_seq = durable_seq(ld)
        before = metric(ld, "callrouted_ledger_events_invalid_total", provider=provider,
                        reason=reason)
        r = POST[provider](ld, body)
        assert r.status == 400, (name, r)
        assert r.json()["error"], (name, r)
        assert metric(ld, "callrouted_ledger_events_invalid_total", provider=provider,
                      reason=reason) == before + 1, name
        assert durable_seq(ld) == before_seq, name
        # never a retry loop: the same event again is the same 400
        assert POST[provider](ld, body).status == 400, name
    wait_drained(ld)
    assert env.sql("SELECT count(*) FROM calls WHERE provider_call_id LIKE 'bad_%%'"
                   ).fetchone()[0] == 0
    assert env.sql("SELECT count(*) FROM usage_ledger").fetchone()[0] == 0
    # one log line per refused event, naming the reason
    assert ld.log().count(" refused (") == 2 * len(REFUSED), ld.log_tail()
    # and a good one still goes through
    cid = new_id("good")
    ok(post_retell(ld, retell_event("call_ended", cid, "inbound", NUM_RET1)))
    wait_drained(ld)
    assert len(ledger_rows(env.conn, cid)) == 1


def test_long_end_reason_is_cut_not_refused(env, ld):
    cid = new_id("why")
    ok(post_retell(ld, retell_event("call_ended", cid, "inbound", NUM_RET1,
                                    reason="é" * 5000)))
    wait_drained(ld)
    why = calls_rows(env.conn, cid)[0]["end_reason"]
    assert why == "é" * 512, len(why)  # 1024 bytes, cut on a character boundary
    assert len(ledger_rows(env.conn, cid)) == 1


# ---- 4. records PostgreSQL refuses at drain: kept in ledger_rejects, then replayed ----

def test_refused_record_kept_then_replayed(env, ld):
    # a rule of the database the daemon does not know: the drain's record is refused (23514)
    env.sql("ALTER TABLE calls ADD CONSTRAINT edges_refuse "
            "CHECK (provider_call_id NOT LIKE 'refuse%%')")
    bad, good = new_id("refuse"), new_id("fine")
    ok(post_retell(ld, retell_event("call_ended", bad, "inbound", NUM_RET1, duration_ms=61000)))
    ok(post_retell(ld, retell_event("call_ended", good, "inbound", NUM_RET1)))
    wait_drained(ld)  # the checkpoint moved past the refused record
    assert len(ledger_rows(env.conn, good)) == 1
    assert ledger_rows(env.conn, bad) == []
    rows = env.sql("SELECT id, record, sqlstate, message, instance, journal_seq, replayed_at "
                   "FROM ledger_rejects").fetchall()
    assert len(rows) == 1, rows
    rid, record, state, message, instance, seq, replayed = rows[0]
    rec = json.loads(record)
    assert (rec["id"], rec["p"], rec["k"], state, instance, replayed) == \
        (bad, "retell", "end", "23514", INSTANCE, None), rows
    assert "edges_refuse" in message and seq > 0, rows
    assert metric(ld, "callrouted_ledger_rejects_total") == 1
    assert "kept in ledger_rejects" in ld.log()

    # callroutectl shows it; a replay while the cause remains fails and changes nothing
    db = ["--database", env.database_url]
    out = ctl_ok(*db, "rejects", "list").stdout
    assert bad in out and "23514" in out, out
    j = json.loads(ctl_ok(*db, "rejects", "list", "--json").stdout)
    assert [(x["id"], x["call_id"], x["sqlstate"]) for x in j["rejects"]] == \
        [(rid, bad, "23514")], j
    r = ctl(*db, "rejects", "replay", rid)
    assert r.returncode == 1 and "edges_refuse" in r.stderr, r
    assert env.sql("SELECT replayed_at FROM ledger_rejects").fetchone()[0] is None

    # fixed: replayed once, billed as the daemon priced it
    env.sql("ALTER TABLE calls DROP CONSTRAINT edges_refuse")
    assert ctl_ok(*db, "rejects", "replay", rid).stdout == "reject %d: billed\n" % rid
    got = ledger_rows(env.conn, bad)
    assert len(got) == 1 and (got[0]["duration_ms"], got[0]["billed_seconds"],
                              got[0]["amount_micros"], got[0]["recorded_by"]) == \
        (61000, 120, 300000, "replay:" + INSTANCE), got
    assert calls_rows(env.conn, bad)[0]["status"] == "ended"
    assert ctl_ok(*db, "rejects", "replay", rid).stdout == "reject %d: already replayed\n" % rid
    assert ctl_ok(*db, "rejects", "list").stdout.count("\n") == 1  # the heading only
    assert bad in ctl_ok(*db, "rejects", "list", "--all").stdout

    # a restart does not drain it again (the checkpoint is past it)
    ld.stop()
    d2 = env.start({"instance_name": INSTANCE})
    wait_drained(d2)
    assert env.sql("SELECT count(*) FROM ledger_rejects").fetchone()[0] == 1
    assert len(ledger_rows(env.conn, bad)) == 1


def test_refused_record_not_checkpointed_until_kept(env, ld):
    """If ledger_rejects refuses it too, the checkpoint stays before it (retried), and the
    records after it wait; once it can be kept, all go through."""
    env.sql("ALTER TABLE calls ADD CONSTRAINT edges_refuse "
            "CHECK (provider_call_id NOT LIKE 'refuse%%')")
    env.sql("ALTER TABLE ledger_rejects ADD CONSTRAINT edges_full CHECK (id < 0)")
    bad, after = new_id("refuse"), new_id("after")
    ok(post_retell(ld, retell_event("call_ended", bad, "inbound", NUM_RET1)))
    ok(post_retell(ld, retell_event("call_ended", after, "inbound", NUM_RET1)))
    wait_for(lambda: metric(ld, "callrouted_ledger_reject_failures_total") >= 2,
             10 * SLOW, what="two failed attempts to keep the record")
    j = ld.readyz().json()["journal"]
    assert j["checkpoint_seq"] < j["durable_seq"], j
    assert ledger_rows(env.conn, after) == []
    env.sql("ALTER TABLE ledger_rejects DROP CONSTRAINT edges_full")
    wait_drained(ld)
    assert env.sql("SELECT count(*) FROM ledger_rejects").fetchone()[0] == 1
    assert len(ledger_rows(env.conn, after)) == 1
    assert metric(ld, "callrouted_ledger_rejects_total") == 1


# ---- 5. every billable call is reported ----

def test_calls_without_an_end_time_are_in_usage(env, ld):
    """Retell call_ended with only duration_ms (no end_timestamp), Bland without an ISO end_at,
    Bland with no times at all: every row has ended_at, and usage --from/--to counts them."""
    i = env.ids
    r1, b1, b2 = new_id("r"), new_id("b"), new_id("b")
    ok(post_retell(ld, retell_event("call_ended", r1, "inbound", NUM_RET1, duration_ms=61000,
                                    end_ms=None)))
    body = bland_post_call(b1, True, NUM_BLAND1)
    body["end_at"] = "Thu May 02 2024 00:08:11 GMT+0000"  # not ISO 8601: unknown
    ok(post_bland(ld, body))
    body = bland_post_call(b2, True, NUM_BLAND1)
    del body["end_at"], body["started_at"]
    ok(post_bland(ld, body))
    wait_drained(ld)
    ends = dict(env.sql("SELECT provider_call_id, (extract(epoch FROM ended_at) * 1000)::bigint "
                        "FROM usage_ledger").fetchall())
    assert ends[r1] == T0_MS + 61000, ends  # start + duration
    assert ends[b1] == T0_MS + 15000, ends
    today = datetime.datetime.now(datetime.timezone.utc)
    assert abs(ends[b2] / 1000.0 - today.timestamp()) < 120, ends  # when it arrived
    assert env.sql("SELECT count(*) FROM calls WHERE ended_at IS NULL").fetchone()[0] == 0
    db = ["--database", env.database_url]
    j = json.loads(ctl_ok(*db, "usage", "--agency", i.agency_a, "--from", "2024-05-02", "--to",
                          today.strftime("%Y-%m-%d"), "--json").stdout)
    assert j["total"]["calls"] == 3, j
    j = json.loads(ctl_ok(*db, "usage", "--agency", i.agency_a, "--from", "2024-05-02", "--to",
                          "2024-05-02", "--json").stdout)
    assert j["total"]["calls"] == 2, j


def test_rows_without_ended_at_count_at_recorded_at(env):
    """A row written before ended_at was always set is reported at its recorded_at."""
    env.sql("INSERT INTO usage_ledger (provider, provider_call_id, agency_id, direction, "
            "duration_ms, billed_seconds, rate_micros_per_min, amount_micros, recorded_by) "
            "VALUES ('bland', 'old-1', %s, 'inbound', 15000, 60, 150000, 150000, 'old')",
            env.ids.agency_a)
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    j = json.loads(ctl_ok("--database", env.database_url, "usage", "--agency", env.ids.agency_a,
                          "--from", today, "--to", today, "--by", "day", "--json").stdout)
    assert [(r["day"], r["calls"]) for r in j["rows"]] == [(today, 1)], j


def test_second_end_event_with_another_duration(env, ld):
    """The first rated end is billed and kept (calls too); the other duration is recorded and
    counted.  Sent apart (two batches) and back to back (maybe one batch): the same result."""
    apart, close = new_id("apart"), new_id("close")
    ok(post_retell(ld, retell_event("call_ended", apart, "inbound", NUM_RET1, duration_ms=15791)))
    wait_drained(ld)
    ok(post_retell(ld, retell_event("call_analyzed", apart, "inbound", NUM_RET1,
                                    duration_ms=61000)))
    ok(post_retell(ld, retell_event("call_ended", close, "inbound", NUM_RET1, duration_ms=30000)))
    ok(post_retell(ld, retell_event("call_analyzed", close, "inbound", NUM_RET1,
                                    duration_ms=90000)))
    # the same duration again is no disagreement
    ok(post_retell(ld, retell_event("call_analyzed", close, "inbound", NUM_RET1,
                                    duration_ms=30000)))
    wait_drained(ld)
    for cid, first, other, billed in ((apart, 15791, 61000, 60), (close, 30000, 90000, 60)):
        rows = ledger_rows(env.conn, cid)
        assert len(rows) == 1 and (rows[0]["duration_ms"], rows[0]["billed_seconds"]) == \
            (first, billed), rows
        got = env.sql("SELECT duration_ms, duration_disagreement_ms FROM calls "
                      "WHERE provider_call_id = %s", cid).fetchone()
        assert got == (first, other), (cid, got)
    assert metric(ld, "callrouted_ledger_duration_disagreements_total") == 2


# ---- 6. concurrent migrations ----

def _migrate_at_once(e, n=4):
    conf = migrate_conf(e)
    procs = [subprocess.Popen([str(callrouted_bin()), "-c", str(conf), "--migrate"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=daemon_env()) for _ in range(n)]
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=120 * SLOW)
        outs.append((p.returncode, out))
    return outs


@pytest.mark.parametrize("start_at", [0, 3], ids=["fresh", "old"])
def test_concurrent_migrate(bare_env, start_at):
    e = bare_env
    if start_at:
        apply_up_to(e.conn, start_at)
    outs = _migrate_at_once(e)
    text = "\n".join(o for _, o in outs)
    assert [rc for rc, _ in outs] == [0] * 4, text
    got = e.sql("SELECT version, count(*) FROM callrouted_schema_migrations GROUP BY version "
                "ORDER BY version").fetchall()
    assert got == [(v, 1) for v in versions()], got
    # each migration applied by exactly one process; the others found it done
    for v in [v for v in versions() if v > start_at]:
        assert len(re.findall(r"migrate: applied %03d_" % v, text)) == 1, text
    assert len(re.findall(r"schema is up to date at version %d" % target_version(), text)) >= 1, \
        text


# ---- 7. logs cannot be forged ----

FORGED = "2026-12-01T00:00:00.000Z error: forged line"


def test_outside_text_cannot_forge_a_log_line(env, ld):
    # an unknown number logs the call id and the number; an agent mismatch the agent ids;
    # a refused event the call id
    cid = new_id("x") + "\n" + FORGED + "\"\x1b[2J"
    ok(post_retell(ld, retell_event("call_ended", cid, "inbound", NUM_UNKNOWN)))
    cid2 = new_id("y")
    ok(post_retell(ld, retell_event("call_ended", cid2, "inbound", NUM_RET1,
                                    agent="agent_ret_2\n" + FORGED)))
    r = post_retell(ld, retell_event("call_ended", "z" * 300 + "\r\n" + FORGED, "inbound",
                                     NUM_RET1))
    assert r.status == 400, r
    wait_drained(ld)
    log = ld.log()
    lines = log.splitlines()
    assert not [ln for ln in lines if ln.startswith(FORGED)], log
    assert "\x1b" not in log, log
    assert "\\n" + FORGED + "\\\"\\x1b[2J" in log, log
    assert "agent_ret_2\\n" + FORGED in log, log
    assert "\\r\\n" + FORGED in log or "..." in log, log


def test_connected_call_without_duration_is_counted(env, ld):
    """Retell call_ended with a start but neither duration_ms nor end_timestamp: recorded in
    calls (ended), not billed, and said so: a log line and callrouted_ledger_unpriced_total."""
    cid = new_id("nodur")
    ok(post_retell(ld, retell_event("call_ended", cid, "inbound", NUM_RET1, send_duration=False,
                                    end_ms=None)))
    wait_drained(ld)
    assert calls_rows(env.conn, cid)[0]["status"] == "ended"
    assert ledger_rows(env.conn, cid) == []
    assert metric(ld, "callrouted_ledger_unpriced_total", provider="retell") == 1
    assert "ended connected with no duration" in ld.log()
    # a Vapi status-update "ended" without endedAt is priced later: not counted
    v = new_id("v")
    body = vapi_end(v, "inbound", NUM_VAPI1)
    body["message"]["type"] = "status-update"
    body["message"]["status"] = "ended"
    for o in (body["message"], body["message"]["call"]):
        o.pop("endedAt", None)
    ok(post_vapi(ld, body))
    ok(post_vapi(ld, vapi_end(v, "inbound", NUM_VAPI1)))
    wait_drained(ld)
    assert len(ledger_rows(env.conn, v)) == 1
    assert metric(ld, "callrouted_ledger_unpriced_total", provider="vapi") == 0


@pytest.mark.parametrize("args,rc", [
    (["rejects", "--help"], 0), (["rejects", "list", "--help"], 0),
    (["rejects", "replay", "--help"], 0), (["rejects", "replay"], 2),
    (["rejects", "replay", "abc"], 2), (["rejects", "replay", "0"], 2),
    (["rejects", "replay", "1", "2"], 2), (["rejects", "list", "extra"], 2),
    (["rejects", "bogus"], 2),
])
def test_rejects_command_line(args, rc):
    r = ctl(*args)
    assert r.returncode == rc, r
    if rc == 0:
        assert r.stdout.startswith("usage: callroutectl") and "rejects" in r.stdout, r.stdout
