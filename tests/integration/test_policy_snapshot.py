# test_policy_snapshot: routing policies and their figures survive a restart during a PostgreSQL outage.
"""Acceptance: a daemon with policies (a blocked prefix, business hours, an overflow agent, a
spend cap with month-to-date spend) is stopped, PostgreSQL is stopped, and a daemon started on
the same state_dir routes from the snapshot file (CRSNAP03) with the same decisions as before;
with PostgreSQL back, changes to the policies flow again. A change of the policy tables alone
rewrites the file within about a second."""

import datetime
import time

from support.admin_api import TOKEN_A, api, insert_tokens
from support.data import NUM_B1, NUM_RET1, NUM_RET2, NUM_VAPI1, RETELL_B_KEY, RETELL_B_SLUG
from support.polling import wait_for
from support.scrape import scrape
from support.signing import retell_inbound, vapi_assistant_request

CALLER = "+14155550123"
BLOCKED = "+442071838750"


def retell(d, to, frm=CALLER, **kw):
    r = retell_inbound(d, to, frm=frm, **kw)
    assert r.status == 200, r
    return r.json()["call_inbound"]


def vapi(d, to, frm=CALLER):
    r = vapi_assistant_request(d, to, frm=frm)
    assert r.status == 200, r
    return r.json()


def answers(d):
    """What the webhooks answer for the cases the policies decide."""
    return {
        "ret1": retell(d, NUM_RET1),             # outside its hours: the overflow agent
        "ret1_blocked": retell(d, NUM_RET1, BLOCKED),
        "ret2_blocked": retell(d, NUM_RET2, BLOCKED),
        "ret2": retell(d, NUM_RET2),
        "vapi1": vapi(d, NUM_VAPI1),             # open, bounded by the cap's remaining budget
        "vapi1_blocked": vapi(d, NUM_VAPI1, BLOCKED),
        # client B: limit 1, one call in progress in the database
        "b1": retell(d, NUM_B1, slug=RETELL_B_SLUG, key=RETELL_B_KEY),
    }


def decision(ci):
    return (ci.get("metadata") or {}).get("callrouted_decision")


def test_policies_survive_a_restart_without_postgres(own_env, own_pg):
    e = own_env
    i = e.ids
    insert_tokens(e)
    # NUM_RET1 is open only on a day three days from now (UTC): after hours now, overflow
    wd = (datetime.datetime.now(datetime.timezone.utc).isoweekday() + 2) % 7 + 1
    e.sql("INSERT INTO business_hours (agency_id, number_id, weekday, opens, closes) "
          "VALUES (%s, %s, %s, '00:00', '23:59')", i.agency_a, i.num_ret1, wd)
    e.sql("UPDATE phone_numbers SET overflow_agent_id = %s WHERE id = %s", i.agent_ret2,
          i.num_ret1)
    e.sql("INSERT INTO blocked_callers (agency_id, prefix) VALUES (%s, '+44')", i.agency_a)
    # $1.00 cap, $0.55 spent: $0.45 at $0.15/min buys 180 s
    e.sql("UPDATE clients SET monthly_spend_cap_micros = 1000000 WHERE id = %s", i.client_acme)
    e.sql("INSERT INTO usage_ledger (provider, provider_call_id, agency_id, client_id, "
          "agent_id, number_id, direction, started_at, ended_at, duration_ms, billed_seconds, "
          "rate_micros_per_min, amount_micros, recorded_by) VALUES ('vapi', 'c-spent', %s, %s, "
          "%s, %s, 'inbound', now() - interval '1 minute', now(), 60000, 60, 150000, 550000, "
          "'test')", i.agency_a, i.client_acme, i.agent_vapi1, i.num_vapi1)

    e.sql("UPDATE clients SET max_concurrent_calls = 1 WHERE id = %s", i.client_b)
    e.sql("INSERT INTO calls (provider, provider_call_id, direction, agency_id, client_id, "
          "status, started_at) VALUES ('retell', 'c-busy', 'inbound', %s, %s, 'in_progress', "
          "now())", i.agency_b, i.client_b)

    a = e.start(name="a")
    wait_for(lambda: vapi(a, NUM_VAPI1)["assistantOverrides"].get("maxDurationSeconds") == 180,
             5.0, what="the policies and the spend figure in A")
    wait_for(lambda: api(a, "GET", "/v1/numbers?limit=1", token=TOKEN_A).status != 503, 10.0,
             what="A's admin API")
    r = api(a, "GET", "/v1/route?to=%2B14155550101&from=%2B14155550123", token=TOKEN_A)
    assert r.status == 200 and r.json()["decision"] == "after_hours", r
    before = answers(a)
    assert decision(before["ret1"]) == "after_hours", before
    assert before["ret1"]["override_agent_id"] == "agent_ret_2", before
    assert before["ret1"]["metadata"]["callrouted_overflow"] == "true", before
    assert decision(before["ret1_blocked"]) == "blocked", before
    assert decision(before["ret2_blocked"]) == "blocked", before
    assert decision(before["ret2"]) == "assigned", before
    assert "error" in before["vapi1_blocked"], before
    assert decision(before["b1"]) == "over_concurrency", before
    # no wait: a policy change not saved yet is saved at a clean exit
    assert a.stop() == 0, a.log_tail()
    snap = a.state_dir / "routes.snapshot"
    assert snap.read_bytes()[:8] == b"CRSNAP03"

    own_pg.stop_fast()
    try:
        b = e.daemon({"state_dir": str(a.state_dir)}, name="b").start()
        j = b.readyz().json()
        assert j["source"] == "snapshot" and j["database"] == "down", j
        assert "snapshot: policies of" in b.log(), b.log_tail()
        after = answers(b)
        assert after == before
        # the explain endpoint authenticates its token in PostgreSQL: not served without it
        r = api(b, "GET", "/v1/route?to=%2B14155550101&from=%2B14155550123", token=TOKEN_A)
        assert r.status == 503, r
        m = scrape(b)
        assert m.get("callrouted_snapshot_policy_refused_total") == 0
        assert m.get("callrouted_policy_numbers") == 1
    finally:
        own_pg.start_again()  # also when an assertion failed: the fixture stops it

    # PostgreSQL back: changes of the policies route again
    wait_for(lambda: b.readyz().json().get("source") == "database", 15.0,
             what="B's route table from the database again")
    e.conn.close()
    e.conn = own_pg.connect(e.dbname)
    e.sql("DELETE FROM blocked_callers")
    wait_for(lambda: decision(retell(b, NUM_RET2, BLOCKED)) == "assigned", 5.0,
             what="the block's removal in B")
    e.sql("UPDATE clients SET monthly_spend_cap_micros = NULL")
    wait_for(lambda: "maxDurationSeconds" not in
             (vapi(b, NUM_VAPI1).get("assistantOverrides") or {}), 5.0,
             what="the cap's removal in B")
    assert decision(retell(b, NUM_RET1)) == "after_hours"


def test_policy_change_alone_rewrites_the_snapshot_file(own_env, own_pg):
    """A change of the policy tables only (no number changed) reaches the file within ~1 s: a
    daemon killed (no clean-exit save) after it, restarted without PostgreSQL, applies it."""
    e = own_env
    i = e.ids
    a = e.start(name="a")
    snap = a.state_dir / "routes.snapshot"
    wait_for(lambda: snap.exists() and snap.stat().st_size > 0, 10.0, what="the first save")
    time.sleep(1.2)  # the policy load's own save
    first = snap.stat().st_mtime_ns
    e.sql("INSERT INTO blocked_callers (agency_id, number_id, prefix) VALUES (%s, %s, '+44')",
          i.agency_a, i.num_ret1)
    wait_for(lambda: decision(retell(a, NUM_RET1, BLOCKED)) == "blocked", 5.0,
             what="the block in A")
    wait_for(lambda: snap.stat().st_mtime_ns != first, 5.0,
             what="the snapshot file saved again after a policy change alone")
    a.proc.kill()
    a.proc.wait()
    own_pg.stop_fast()
    try:
        b = e.daemon({"state_dir": str(a.state_dir)}, name="b").start()
        assert b.readyz().json()["source"] == "snapshot"
        assert decision(retell(b, NUM_RET1, BLOCKED)) == "blocked"
        assert decision(retell(b, NUM_RET1)) == "assigned"
    finally:
        own_pg.start_again()
