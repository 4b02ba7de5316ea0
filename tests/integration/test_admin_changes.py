# test_admin_changes: serialised changes, Idempotency-Key and the number events (issue 12).
"""Issue 12 items 3, 4 (the Idempotency-Key) and 8, against tools/sandbox:

- one change per number at a time, also between two daemons on one database: the loser of two
  concurrent reassignments gets 409 conflict and the provider and the database name the same
  agent; a daemon killed mid-change holds the number until its lease expires, then the next
  change takes it over and an 'interrupted' event says so;
- POST /v1/numbers and POST /v1/calls with an Idempotency-Key: the first answer again, without a
  second provider call (also after a provider timeout, and through the other daemon); another
  request with the key is 422, one in flight 409; malformed keys 400; keys expire after 24 h;
- GET /v1/numbers/{id}/events: every buy, assign, unassign, rename and release, append-only in
  the database, scoped as GET /v1/numbers/{id}; callroutectl numbers events."""

import hashlib
import http.client
import json
import subprocess
import threading
import time

import psycopg
import pytest

from support.admin_api import (TOKEN_A, TOKEN_B, TOKEN_PORTAL, TOKEN_PORTAL_B, api,
                               assert_error)
from support.build import SLOW, callrouted_bin, daemon_env
from support.polling import wait_for
from support.sandbox import another_daemon, sandbox_daemon, start_daemon
from support.scrape import scrape

PID = {"agent_ret1": "agent_ret_1", "agent_ret2": "agent_ret_2"}


@pytest.fixture
def d(env, sb):
    return sandbox_daemon(env, sb, instance_name="one")


def second_daemon(env, sb, **overrides):
    """Another daemon on the same database (start_daemon did the accounts and tokens)."""
    values = {"instance_name": "two"}
    values.update(overrides)
    return another_daemon(env, sb, **values)


def buy(d, account="ret-a", agent=None, key=None, nickname="Line"):
    body = {"account": account, "area_code": "415", "nickname": nickname}
    if agent is not None:
        body["agent_id"] = agent
    r = api(d, "POST", "/v1/numbers", body,
            headers={"Idempotency-Key": key} if key else None)
    assert r.status == 201, r
    return r.json()


def requests_to(sb, method, prefix):
    """The requests the sandbox got (one delayed by a fault is recorded twice: once)."""
    seen, out = set(), []
    for q in sb.requests():
        if q["method"] == method and q["path"].startswith(prefix) and q["t"] not in seen:
            seen.add(q["t"])
            out.append(q)
    return out


def forget(sb):
    """The requests seen so far forgotten (the faults stay)."""
    sb.control("DELETE", "requests")


def fault(sb, method, prefix, **kw):
    body = {"method": method, "prefix": prefix}
    body.update(kw)
    sb.control("POST", "faults", body)


def db_agent(env, nid):
    return env.conn.execute("SELECT agent_id FROM phone_numbers WHERE id = %s",
                            (nid,)).fetchone()[0]


def pid_of(env, agent_id):
    if agent_id is None:
        return None
    return env.conn.execute("SELECT provider_agent_id FROM agents WHERE id = %s",
                            (agent_id,)).fetchone()[0]


def retell_agent_at(sb, e164):
    agents = sb.number("retell", e164).get("inbound_agents") or []
    return agents[0]["agent_id"] if agents else None


def events(d, nid, token=TOKEN_A, query=""):
    r = api(d, "GET", "/v1/numbers/%d/events%s" % (nid, query), token=token)
    assert r.status == 200, r
    return r.json()


def in_thread(fn):
    out = {}

    def run():
        try:
            out["r"] = fn()
        except Exception as e:  # noqa: BLE001 -- reported by the caller
            out["e"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, out


def joined(t, out):
    t.join(60)
    assert not t.is_alive()
    if "e" in out:
        raise out["e"]
    return out["r"]


def token_id(env, token):
    return env.conn.execute("SELECT id FROM api_tokens WHERE token_sha256 = %s",
                            (hashlib.sha256(token.encode()).digest(),)).fetchone()[0]


# ---- item 3: one change per number at a time, across two daemons ----

def test_two_daemons_concurrent_reassignments_end_consistent(env, sb, d):
    i = env.ids
    d2 = second_daemon(env, sb)
    n = buy(d, agent=i.agent_ret1)
    path = "/v1/numbers/%d" % n["id"]
    forget(sb)
    # the first reassignment's provider request is slow; the second comes meanwhile
    fault(sb, "PATCH", "/retell/update-phone-number", delay=1.5 * SLOW, times=1)
    t, out = in_thread(lambda: api(d, "PATCH", path, {"agent_id": i.agent_ret2}, timeout=30))
    wait_for(lambda: requests_to(sb, "PATCH", "/retell/update-phone-number"), 10.0, 0.02,
             "the first PATCH at the provider")
    loser = api(d2, "PATCH", path, {"agent_id": i.agent_ret1})
    err = assert_error(loser, 409, "conflict", ["being changed", "instance one"])
    winner = joined(t, out)
    assert winner.status == 200, winner
    assert winner.json()["agent"]["id"] == i.agent_ret2
    # the provider and the database name the same agent; the loser sent nothing
    assert len(requests_to(sb, "PATCH", "/retell/update-phone-number")) == 1
    assert retell_agent_at(sb, n["e164"]) == pid_of(env, db_agent(env, n["id"])) == "agent_ret_2"
    # once the first is done the number is free again, for either daemon
    r = api(d2, "PATCH", path, {"agent_id": i.agent_ret1})
    assert r.status == 200, r
    assert retell_agent_at(sb, n["e164"]) == pid_of(env, db_agent(env, n["id"])) == "agent_ret_1"
    assert env.conn.execute("SELECT count(*) FROM number_change_leases").fetchone()[0] == 0
    assert scrape(d2).get("callrouted_api_number_change_conflicts_total") == 1
    acts = [(e["action"], e["instance"]) for e in events(d, n["id"])["events"]]
    assert acts == [("buy", "one"), ("assign", "one"), ("assign", "two")], acts
    assert "instance one" in err["message"]


def test_concurrent_changes_serialised_for_vapi_and_release(env, sb, d):
    """A Vapi change (a read, then the write) and a release that races it."""
    i = env.ids
    d2 = second_daemon(env, sb)
    n = buy(d, account="vapi-a", agent=i.agent_vapi1)
    path = "/v1/numbers/%d" % n["id"]
    forget(sb)
    fault(sb, "GET", "/vapi/phone-number/", delay=1.5 * SLOW, times=1)
    t, out = in_thread(lambda: api(d, "PATCH", path, {"agent_id": None}, timeout=30))
    wait_for(lambda: requests_to(sb, "GET", "/vapi/phone-number/"), 10.0, 0.02,
             "the first GET at the provider")
    assert_error(api(d2, "DELETE", path), 409, "conflict")
    assert_error(api(d2, "PATCH", path, {"nickname": "Other"}), 409, "conflict")
    r = joined(t, out)
    assert r.status == 200 and r.json()["agent"] is None, r
    assert requests_to(sb, "DELETE", "/vapi/phone-number/") == []
    assert sb.number("vapi", n["e164"])["name"] == "Line"
    assert db_agent(env, n["id"]) is None
    r = api(d2, "DELETE", path)
    assert r.status == 200 and r.json()["status"] == "released", r
    assert sb.number("vapi", n["e164"]) is None


def test_a_daemon_killed_mid_change_holds_the_number_until_its_lease_expires(env, sb):
    i = env.ids
    # provider_timeout 2 s: the lease is 2 x 2 s + 5 s = 9 s
    d = sandbox_daemon(env, sb, instance_name="one", provider_timeout="2s")
    d2 = second_daemon(env, sb, provider_timeout="2s")
    n = buy(d, agent=i.agent_ret1)
    path = "/v1/numbers/%d" % n["id"]
    forget(sb)
    fault(sb, "PATCH", "/retell/update-phone-number", hang=True, times=1)
    t, out = in_thread(lambda: api(d, "PATCH", path, {"agent_id": i.agent_ret2}, timeout=30))
    wait_for(lambda: requests_to(sb, "PATCH", "/retell/update-phone-number"), 10.0, 0.02,
             "the PATCH at the provider")
    d.proc.kill()
    d.proc.wait()
    d.checked = True
    t.join(30)
    assert_error(api(d2, "PATCH", path, {"agent_id": i.agent_ret2}), 409, "conflict",
                 "instance one")
    expires = env.conn.execute("SELECT expires_at - acquired_at FROM number_change_leases "
                               "WHERE number_id = %s", (n["id"],)).fetchone()[0]
    assert expires.total_seconds() == 9, expires
    wait_for(lambda: env.conn.execute(
        "SELECT expires_at <= now() FROM number_change_leases WHERE number_id = %s",
        (n["id"],)).fetchone()[0], 20 * SLOW, 0.2, "the lease's expiry")
    r = api(d2, "PATCH", path, {"agent_id": i.agent_ret2})
    assert r.status == 200, r
    assert retell_agent_at(sb, n["e164"]) == pid_of(env, db_agent(env, n["id"])) == "agent_ret_2"
    ev = events(d2, n["id"])["events"]
    assert [e["action"] for e in ev] == ["buy", "interrupted", "assign"], ev
    assert ev[1]["instance"] == "one" and ev[1]["token_id"] == token_id(env, TOKEN_A), ev[1]
    assert "did not finish" in ev[1]["detail"] and "change" in ev[1]["detail"], ev[1]
    assert ev[1]["before"] == ev[1]["after"] and ev[1]["after"]["agent"]["id"] == i.agent_ret1
    assert scrape(d2).get("callrouted_api_number_change_takeovers_total") == 1
    assert "took over the expired lease" in d2.log_tail(200)


def test_a_change_that_lost_its_lease_writes_nothing(env, sb, d):
    """The final write is a compare-and-set on the lease's holder: a change whose lease was
    taken over meanwhile (here: by hand) records nothing and answers 409."""
    i = env.ids
    n = buy(d, agent=i.agent_ret1)
    path = "/v1/numbers/%d" % n["id"]
    forget(sb)
    fault(sb, "PATCH", "/retell/update-phone-number", delay=1.0 * SLOW, times=1)
    t, out = in_thread(lambda: api(d, "PATCH", path, {"agent_id": i.agent_ret2}, timeout=30))
    wait_for(lambda: requests_to(sb, "PATCH", "/retell/update-phone-number"), 10.0, 0.02,
             "the PATCH at the provider")
    env.sql("UPDATE number_change_leases SET holder = %s", "f" * 32)
    assert_error(joined(t, out), 409, "conflict", "longer than its lease")
    assert db_agent(env, n["id"]) == i.agent_ret1
    assert [e["action"] for e in events(d, n["id"])["events"]] == ["buy"]
    assert scrape(d).get("callrouted_api_number_change_lease_lost_total") == 1
    # the other holder's lease is left alone (it is not this change's to give back)
    assert env.conn.execute("SELECT holder FROM number_change_leases").fetchall() == \
        [("f" * 32,)]


def test_a_change_out_of_lease_time_sends_nothing(env, sb):
    """Before each provider request the change checks that the request can end within its
    lease: here the database stalls it (agents locked) past lease - provider_timeout."""
    i = env.ids
    d = start_daemon(env, sb, provider_timeout="1s")    # the lease: 2 x 1 s + 5 s = 7 s
    n = buy(d, agent=i.agent_ret1)
    forget(sb)
    with psycopg.connect(env.database_url) as lock:
        lock.execute("LOCK TABLE agents IN ACCESS EXCLUSIVE MODE")
        t, out = in_thread(lambda: api(d, "PATCH", "/v1/numbers/%d" % n["id"],
                                       {"agent_id": i.agent_ret2}, timeout=30))
        wait_for(lambda: env.conn.execute("SELECT count(*) FROM number_change_leases"
                                          ).fetchone()[0] == 1 or None, 5, 0.02, "the lease")
        time.sleep(6.5)
        lock.rollback()
    assert_error(joined(t, out), 409, "conflict", "ran out of its 7s lease")
    assert requests_to(sb, "PATCH", "/retell/update-phone-number") == []
    assert db_agent(env, n["id"]) == i.agent_ret1
    assert env.conn.execute("SELECT count(*) FROM number_change_leases").fetchone()[0] == 0
    assert scrape(d).get("callrouted_api_number_change_lease_lost_total") == 1


def test_a_failed_change_gives_the_number_back(env, sb, d):
    i = env.ids
    n = buy(d, agent=i.agent_ret1)
    path = "/v1/numbers/%d" % n["id"]
    fault(sb, "PATCH", "/retell/update-phone-number", status=500, times=1)
    assert_error(api(d, "PATCH", path, {"agent_id": i.agent_ret2}), 502, "provider_error")
    assert env.conn.execute("SELECT count(*) FROM number_change_leases").fetchone()[0] == 0
    assert db_agent(env, n["id"]) == i.agent_ret1
    r = api(d, "PATCH", path, {"agent_id": i.agent_ret2})
    assert r.status == 200, r
    assert [e["action"] for e in events(d, n["id"])["events"]] == ["buy", "assign"]


# ---- item 4: Idempotency-Key ----

def test_idempotent_purchase_returns_the_first_answer_without_a_second_purchase(env, sb, d):
    d2 = second_daemon(env, sb)
    body = {"account": "ret-a", "area_code": "415", "nickname": "Idem"}
    h = {"Idempotency-Key": "order-7f3a9c1e"}
    r1 = api(d, "POST", "/v1/numbers", body, headers=h)
    assert r1.status == 201 and "idempotent-replayed" not in r1.headers, r1
    # the same JSON, spaced and ordered differently; and through the other daemon
    raw = b'{ "nickname": "Idem",  "area_code": "415", "account": "ret-a" }'
    for dd, kw in ((d, {"body": body}), (d2, {"raw": raw})):
        r = api(dd, "POST", "/v1/numbers", headers=h, **kw)
        assert r.status == 201 and r.json() == r1.json(), r
        assert r.headers.get("idempotent-replayed") == "true", r.headers
    assert len(requests_to(sb, "POST", "/retell/create-phone-number")) == 1
    assert env.conn.execute("SELECT count(*) FROM phone_numbers WHERE nickname = 'Idem'"
                            ).fetchone()[0] == 1
    # another request with the key: 422, nothing bought
    r = api(d, "POST", "/v1/numbers", dict(body, nickname="Other"), headers=h)
    assert_error(r, 422, "idempotency_mismatch", "another request")
    r = api(d, "POST", "/v1/calls", {"agent_id": env.ids.agent_ret1, "to": "+14155550188"},
            headers=h)
    assert_error(r, 422, "idempotency_mismatch", "POST /v1/numbers")
    assert len(requests_to(sb, "POST", "/retell/create-phone-number")) == 1
    # another agency's same key is its own
    r = api(d, "POST", "/v1/numbers", {"account": "ret-b", "area_code": "415"}, token=TOKEN_B,
            headers=h)
    assert r.status in (201, 422, 502), r   # ret-b is not at the sandbox: whatever it says
    assert r.headers.get("idempotent-replayed") is None
    m = scrape(d)
    assert m.get("callrouted_api_idempotent_replays_total") == 1
    assert m.get("callrouted_api_idempotency_refusals_total", reason="mismatch") == 2


def test_a_key_in_flight_is_409_and_then_replayed(env, sb, d):
    fault(sb, "POST", "/retell/create-phone-number", delay=1.5 * SLOW, times=1)
    h = {"Idempotency-Key": "inflight-1"}
    body = {"account": "ret-a", "area_code": "415"}
    t, out = in_thread(lambda: api(d, "POST", "/v1/numbers", body, headers=h, timeout=30))
    wait_for(lambda: requests_to(sb, "POST", "/retell/create-phone-number"), 10.0, 0.02,
             "the purchase at the provider")
    assert_error(api(d, "POST", "/v1/numbers", body, headers=h), 409, "conflict",
                 "in progress")
    first = joined(t, out)
    assert first.status == 201, first
    again = api(d, "POST", "/v1/numbers", body, headers=h)
    assert again.status == 201 and again.json() == first.json(), again
    assert len(requests_to(sb, "POST", "/retell/create-phone-number")) == 1
    assert scrape(d).get("callrouted_api_idempotency_refusals_total", reason="in_flight") == 1


def test_a_purchase_that_timed_out_is_not_bought_again_with_its_key(env, sb):
    d = start_daemon(env, sb, provider_timeout="1s")
    # the provider buys, but answers too late (an unknown outcome to us)
    fault(sb, "POST", "/bland/numbers/purchase", delay=2.5, times=1)
    h = {"Idempotency-Key": "slow-buy-1"}
    body = {"account": "bland-a", "area_code": "415"}
    first = api(d, "POST", "/v1/numbers", body, headers=h, timeout=20)
    assert first.status >= 500 or first.status == 202, first
    time.sleep(2.0)
    for _ in range(2):
        r = api(d, "POST", "/v1/numbers", body, headers=h, timeout=20)
        assert (r.status, r.json()) == (first.status, first.json()), r
        assert r.headers.get("idempotent-replayed") == "true"
    assert len(requests_to(sb, "POST", "/bland/numbers/purchase")) == 1
    row = env.conn.execute("SELECT state, status FROM idempotency_keys WHERE key = %s",
                           ("slow-buy-1",)).fetchone()
    assert row == ("done", first.status), row


def test_a_request_that_never_reached_the_provider_frees_its_key(env, sb, d):
    h = {"Idempotency-Key": "free-again"}
    assert_error(api(d, "POST", "/v1/numbers", {"account": "nope", "area_code": "415"},
                     headers=h), 404, "not_found")
    assert env.conn.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 0
    n = buy(d, key="free-again")
    assert n["account"] == "ret-a"
    assert len(requests_to(sb, "POST", "/retell/create-phone-number")) == 1


def test_idempotent_call(env, sb, d):
    i = env.ids
    n = buy(d, agent=i.agent_ret1)
    forget(sb)
    body = {"agent_id": i.agent_ret1, "to": "+14155550188", "from": n["e164"]}
    h = {"Idempotency-Key": "call-2b1e"}
    r1 = api(d, "POST", "/v1/calls", body, headers=h)
    assert r1.status == 201, r1
    r2 = api(d, "POST", "/v1/calls", body, headers=h)
    assert r2.status == 201 and r2.json() == r1.json(), r2
    assert len(requests_to(sb, "POST", "/retell/v2/create-phone-call")) == 1
    # without a key, a second call is a second call
    assert api(d, "POST", "/v1/calls", body).status == 201
    assert len(requests_to(sb, "POST", "/retell/v2/create-phone-call")) == 2


def raw_post(d, path, body, headers):
    """A request with headers given as (name, value) pairs: a header may repeat."""
    c = http.client.HTTPConnection("127.0.0.1", d.admin_port, timeout=10)
    try:
        data = json.dumps(body).encode()
        c.putrequest("POST", path)
        for k, v in [("Authorization", "Bearer " + TOKEN_A),
                     ("Content-Type", "application/json"),
                     ("Content-Length", str(len(data)))] + headers:
            c.putheader(k, v)
        c.endheaders(data)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


@pytest.mark.parametrize("key,why", [
    ("", "1 to 255"), ("x" * 256, "has 256"), ("has space", "character 4"),
    ("semi;colon", "character 5"), ('"', "1 to 255"), ('""', "has 0"),
])
def test_malformed_keys_are_400_and_buy_nothing(env, sb, d, key, why):
    st, j = raw_post(d, "/v1/numbers", {"account": "ret-a", "area_code": "415"},
                     [("Idempotency-Key", key)])
    assert st == 400 and j["error"]["code"] == "invalid", j
    assert "Idempotency-Key" in j["error"]["message"] and why in j["error"]["message"], j
    assert requests_to(sb, "POST", "/retell/create-phone-number") == []


def test_key_forms_accepted_and_misplaced_keys(env, sb, d):
    ok = "A-z_0.9:~+/=" + "k" * 243
    assert len(ok) == 255
    buy(d, key=ok)
    buy(d, key='"quoted-key"')
    assert env.conn.execute("SELECT key FROM idempotency_keys ORDER BY key").fetchall() == \
        [(ok,), ("quoted-key",)]
    st, j = raw_post(d, "/v1/numbers", {"account": "ret-a", "area_code": "415"},
                     [("Idempotency-Key", "a"), ("Idempotency-Key", "b")])
    assert st == 400 and "given 2 times" in j["error"]["message"], j
    n = env.ids.num_ret1
    r = api(d, "PATCH", "/v1/numbers/%d" % n, {"nickname": "x"},
            headers={"Idempotency-Key": "k1"})
    assert_error(r, 400, "invalid", "taken only by POST /v1/numbers and POST /v1/calls")
    assert len(requests_to(sb, "POST", "/retell/create-phone-number")) == 2
    assert scrape(d).get("callrouted_api_idempotency_refusals_total", reason="invalid") == 2


def test_keys_expire_after_24_hours(env, sb, d):
    first = buy(d, key="day-old")
    env.sql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours', "
            "locked_until = now() - interval '25 hours', "
            "expires_at = now() - interval '1 hour'")
    second = buy(d, key="day-old")      # an expired key is a new key
    assert second["id"] != first["id"]
    assert len(requests_to(sb, "POST", "/retell/create-phone-number")) == 2
    # and the daemon deletes expired rows (the first pass runs 2 s after start)
    env.sql("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    d.stop()
    d.start()
    wait_for(lambda: env.conn.execute("SELECT count(*) FROM idempotency_keys"
                                      ).fetchone()[0] == 0 or None, 15 * SLOW, 0.2,
             "the expired key deleted")
    wait_for(lambda: scrape(d).get("callrouted_api_idempotency_keys_expired_total") == 1 or
             None, 5, 0.1, "the expiry counted")


# ---- item 8: number events ----

def test_every_change_is_an_event(env, sb, d):
    i = env.ids
    n = buy(d, agent=i.agent_ret1, nickname="First")
    path = "/v1/numbers/%d" % n["id"]
    assert api(d, "PATCH", path, {"agent_id": i.agent_ret2, "nickname": "Second"}).status == 200
    assert api(d, "PATCH", path, {"agent_id": i.agent_ret2}).status == 200   # no change
    assert api(d, "PATCH", path, {"agent_id": None}).status == 200
    assert api(d, "PATCH", path, {"nickname": None}).status == 200
    assert api(d, "DELETE", path).status == 200
    j = events(d, n["id"])
    assert j["next_after"] is None
    ev = j["events"]
    tok = token_id(env, TOKEN_A)
    got = [(e["action"], e["before"]["agent"] and e["before"]["agent"]["id"],
            e["after"]["agent"] and e["after"]["agent"]["id"], e["before"]["nickname"],
            e["after"]["nickname"]) for e in ev]
    assert got == [
        ("buy", None, i.agent_ret1, None, "First"),
        ("assign", i.agent_ret1, i.agent_ret2, "First", "Second"),
        ("rename", i.agent_ret1, i.agent_ret2, "First", "Second"),
        ("unassign", i.agent_ret2, None, "Second", "Second"),
        ("rename", None, None, "Second", None),
        ("release", None, None, None, None),
    ], got
    for e in ev:
        assert e["actor"] == "token" and e["token_id"] == tok and e["instance"] == "one", e
        assert e["number_id"] == n["id"] and e["e164"] == n["e164"], e
        assert e["created_at"].endswith("Z") and e["provider_request_id"] is None, e
    assert ev[1]["after"]["agent"] == {"id": i.agent_ret2, "name": "After Hours"}
    assert [e["id"] for e in ev] == sorted(e["id"] for e in ev)
    # pages
    p1 = events(d, n["id"], query="?limit=4")
    assert [e["id"] for e in p1["events"]] == [e["id"] for e in ev[:4]]
    assert p1["next_after"] == ev[3]["id"]
    p2 = events(d, n["id"], query="?limit=4&after=%d" % p1["next_after"])
    assert [e["id"] for e in p2["events"]] == [e["id"] for e in ev[4:]]
    assert p2["next_after"] is None
    assert scrape(d).get("callrouted_api_number_events_total") == 6


def test_a_bland_release_event_says_unbound_only(env, sb, d):
    n = buy(d, account="bland-a")
    assert api(d, "DELETE", "/v1/numbers/%d" % n["id"]).status == 200
    ev = events(d, n["id"])["events"]
    assert [e["action"] for e in ev] == ["buy", "release"]
    assert "unbound there only" in ev[1]["detail"], ev[1]


def test_events_are_append_only_in_the_database(env, sb, d):
    n = buy(d)
    for sql in ("UPDATE number_events SET action = 'rename'", "DELETE FROM number_events",
                "TRUNCATE number_events"):
        with pytest.raises(psycopg.Error) as e:
            env.conn.execute(sql)
        assert "append-only" in str(e.value), e.value
    assert [e["action"] for e in events(d, n["id"])["events"]] == ["buy"]


def test_the_sync_records_an_event_with_actor_sync(env, sb, d):
    i = env.ids
    r = env.conn.execute(
        "SELECT number_event_add(%s, 'repair', %s, %s, NULL, NULL, NULL, 'one', 'req-42', "
        "'webhook URL set back')", (i.num_ret1, i.agent_ret1, i.agent_ret1)).fetchone()
    assert r[0] is not None
    assert env.conn.execute("SELECT number_event_add(999999, 'repair', NULL, NULL, NULL, NULL, "
                            "NULL, 'one', NULL, NULL)").fetchone()[0] is None
    e = events(d, i.num_ret1)["events"]
    assert len(e) == 1 and e[0]["actor"] == "sync" and e[0]["token_id"] is None, e
    assert e[0]["provider_request_id"] == "req-42" and e[0]["action"] == "repair", e


def test_events_tenant_isolation(env, sb, d):
    i = env.ids
    # num_ret1: agent Reception of client Acme; num_ret2: the agency's own agent
    env.conn.execute("SELECT number_event_add(%s, 'repair', %s, %s, NULL, NULL, NULL, 'x', "
                     "NULL, NULL)", (i.num_ret1, i.agent_ret2, i.agent_ret1))
    env.conn.execute("SELECT number_event_add(%s, 'repair', NULL, NULL, NULL, NULL, NULL, 'x', "
                     "NULL, NULL)", (i.num_ret2,))
    env.conn.execute("SELECT number_event_add(%s, 'repair', NULL, NULL, NULL, NULL, NULL, 'x', "
                     "NULL, NULL)", (i.num_b1,))
    for nid in (i.num_ret1, i.num_ret2):   # another agency's: absent
        assert_error(api(d, "GET", "/v1/numbers/%d/events" % nid, token=TOKEN_B), 404,
                     "not_found")
        assert_error(api(d, "GET", "/v1/numbers/%d/events" % nid, token=TOKEN_PORTAL_B), 404,
                     "not_found")
    assert len(events(d, i.num_b1, token=TOKEN_B)["events"]) == 1
    assert_error(api(d, "GET", "/v1/numbers/%d/events" % i.num_b1), 404, "not_found")
    # the portal: nothing while its client's agent visibility is off
    assert_error(api(d, "GET", "/v1/numbers/%d/events" % i.num_ret1, token=TOKEN_PORTAL), 404)
    env.sql("UPDATE clients SET portal_agent_visibility = true WHERE id = %s", i.client_acme)
    e = events(d, i.num_ret1, token=TOKEN_PORTAL)["events"]
    assert len(e) == 1
    # the agency's own agent it was assigned to before is hidden from the portal
    assert e[0]["before"]["agent"] == {"id": None, "name": None}, e
    assert e[0]["after"]["agent"] == {"id": i.agent_ret1, "name": "Reception"}, e
    assert e[0]["token_id"] is None
    full = events(d, i.num_ret1)["events"]
    assert full[0]["before"]["agent"]["id"] == i.agent_ret2
    # a number of the agency's own agent is not the portal's
    assert_error(api(d, "GET", "/v1/numbers/%d/events" % i.num_ret2, token=TOKEN_PORTAL), 404)
    # as the number itself
    assert api(d, "GET", "/v1/numbers/%d" % i.num_ret2, token=TOKEN_PORTAL).status == 404


def test_events_strict_input(env, sb, d):
    n = env.ids.num_ret1
    base = "/v1/numbers/%d/events" % n
    assert_error(api(d, "GET", base + "?status=active"), 400, "invalid",
                 'unknown query parameter "status" (after, limit)')
    assert_error(api(d, "GET", base + "?limit=501"), 400, "invalid", "limit")
    assert_error(api(d, "GET", base + "?limit=2&limit=3"), 400, "invalid", "given twice")
    assert_error(api(d, "GET", base, raw=b"{}"), 400, "invalid", "takes no body")
    assert_error(api(d, "POST", base, {}), 405, "method_not_allowed")
    assert_error(api(d, "GET", "/v1/numbers/x/events"), 404, "not_found", "no such number")
    assert_error(api(d, "GET", "/v1/numbers/%d/eventsx" % n), 404, "not_found")
    assert_error(api(d, "GET", "/v1/numbers/%d/events/1" % n), 404, "not_found")
    assert_error(api(d, "GET", "/v1/numbers/999999/events"), 404, "not_found")
    assert_error(api(d, "GET", base, token=None), 401, "unauthorized")
    # the old routes still answer as before
    assert api(d, "GET", "/v1/numbers/%d" % n).status == 200
    assert_error(api(d, "GET", "/v1/numbers/12x"), 404, "not_found", "no such number")


def ctl(d, *args, token=TOKEN_A):
    env = dict(daemon_env(), CALLROUTED_URL="http://127.0.0.1:%d" % d.admin_port,
               CALLROUTED_TOKEN=token)
    return subprocess.run([str(callrouted_bin().parent / "callroutectl")] + list(args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30)


def test_callroutectl_numbers_events(env, sb, d):
    i = env.ids
    n = buy(d, agent=i.agent_ret1, nickname="Ctl")
    assert api(d, "PATCH", "/v1/numbers/%d" % n["id"],
               {"agent_id": i.agent_ret2, "nickname": "Ctl 2"}).status == 200
    r = ctl(d, "numbers", "events", str(n["id"]), "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert [e["action"] for e in j["events"]] == ["buy", "assign", "rename"] and \
        j["next_after"] is None, j
    r = ctl(d, "numbers", "events", str(n["id"]))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "WHEN", "ACTION"], lines
    assert "Reception (#%d) -> After Hours (#%d)" % (i.agent_ret1, i.agent_ret2) in lines[2]
    assert "Ctl -> Ctl 2" in lines[3] and "token #" in lines[3], lines
    r = ctl(d, "numbers", "events", "x")
    assert r.returncode == 2 and "not a number id" in r.stderr, r.stderr
    r = ctl(d, "numbers", "events", str(n["id"]), "--limit", "3")
    assert r.returncode == 2, r.stderr
    r = ctl(d, "numbers", "events", str(n["id"]), token=TOKEN_B)
    assert r.returncode == 1 and "not_found" in r.stderr, r.stderr
