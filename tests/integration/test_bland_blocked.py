# test_bland_blocked: blocked_callers pushed to Bland's blocked-numbers API (tools/sandbox).
"""Issue 13, Bland: Bland has no per-call webhook, so the daemon pushes the blocked_callers
rows that apply to a Bland number to Bland's block rules (daemon/bland_blocks.c): at
assignment, on a change by plain SQL, in the provider sync; exact numbers only (a shorter
prefix is reported, not pushed), at most ten numbers a request, rules we did not create left
alone, the provider down then back."""

import json

import pytest

from support.admin_api import TOKEN_A, api
from support.ctl import ctl
from support.polling import wait_for
from support.sandbox import sandbox_daemon, settle
from support.scrape import scrape

KEY = "bland-api-key-a"
SEED = "+14155550301"  # the standard data's Bland number (agent bland_agent_1, client Acme)
TAG = "callrouted:"


@pytest.fixture
def sb(sandbox):
    """A clean sandbox holding the standard data's Bland number."""
    sandbox.reset()
    sandbox.control("POST", "numbers", {"provider": "bland", "key": KEY, "number": {
        "phone_number": SEED, "created_at": "2024-05-01T00:00:00.000Z", "prompt": None,
        "pathway_id": "bland_agent_1", "webhook": None, "dynamic_data": None,
        "max_duration": 30}})
    return sandbox


@pytest.fixture
def d(env, sb):
    return sandbox_daemon(env, sb)


def rules(sb, inbound=None):
    """Bland's active rules: (inbound_number or "global", blocked_number, ours)."""
    return sorted((r["inbound_number"] or "global", r["blocked_number"],
                   (r["reason"] or "").startswith(TAG))
                  for r in sb.state()["blocks"].values()
                  if r["is_active"] and (inbound is None or r["inbound_number"] == inbound))



def blocked_of(sb, inbound):
    return sorted(b for (i, b, ours) in rules(sb, inbound) if ours)


def wait_blocked(sb, inbound, want, timeout=5.0):
    return wait_for(lambda: blocked_of(sb, inbound) == sorted(want), timeout, 0.05,
                    "Bland's rules of %s to be %s (are %s)" % (inbound, want,
                                                              blocked_of(sb, inbound)))


def block(env, prefix, client=None, number=None):
    return env.sql("INSERT INTO blocked_callers (agency_id, client_id, number_id, prefix) "
                   "VALUES (%s, %s, %s, %s) RETURNING id", env.ids.agency_a, client, number,
                   prefix).fetchone()[0]


def buy(d, agent):
    r = api(d, "POST", "/v1/numbers", {"account": "bland-a", "area_code": "415",
                                       "agent_id": agent})
    assert r.status == 201, r
    return r.json()


def sync(d, query=""):
    r = api(d, "POST", "/v1/accounts/bland-a/sync" + query, None, timeout=30)
    assert r.status == 200, r
    return r.json()


def bland_direct(sb, method, path, body=None, key=KEY):
    h = {"authorization": key} if key else {}
    return sb.request(method, "/bland" + path, body, h)


def posts(sb):
    return [r for r in sb.requests() if r["method"] == "POST" and
            r["path"].startswith("/bland/v1/blocked_numbers")]


# ---- the fake enforces what Bland documents ----

def test_sandbox_enforces_the_documented_limits(sb):
    ok = {"numbers": ["+14155550999"], "is_global": False, "inbound_number": SEED,
          "reason": "x"}
    assert bland_direct(sb, "POST", "/v1/blocked_numbers", ok, key=None)[0] == 401
    st, j = bland_direct(sb, "POST", "/v1/blocked_numbers",
                         dict(ok, numbers=["+1415555%04d" % i for i in range(11)]))
    assert st == 400 and "maximum 10" in j["errors"][0]["message"], j
    st, j = bland_direct(sb, "POST", "/v1/blocked_numbers", dict(ok, numbers=["+14"]))
    assert st == 400 and "E.164" in j["errors"][0]["message"], j
    assert bland_direct(sb, "POST", "/v1/blocked_numbers", dict(ok, is_global=True))[0] == 400
    assert bland_direct(sb, "POST", "/v1/blocked_numbers",
                        {"numbers": ["+14155550999"], "is_global": False})[0] == 400
    st, j = bland_direct(sb, "POST", "/v1/blocked_numbers", ok)
    assert st == 200 and j["errors"] is None and j["data"]["created_count"] == 1, j
    bid = j["data"]["blocks"][0]["id"]
    st, j = bland_direct(sb, "GET", "/v1/blocked_numbers?inbound_number=%2B14155550301")
    assert st == 200 and [b["id"] for b in j["data"]["blocks"]] == [bid], j
    assert j["data"]["total_count"] == 1
    # without inbound_number: only global rules
    st, j = bland_direct(sb, "GET", "/v1/blocked_numbers")
    assert st == 200 and j["data"]["blocks"] == [], j
    st, j = bland_direct(sb, "DELETE", "/v1/blocked_numbers/%d" % bid)
    assert st == 200 and j["data"]["deleted_block_id"] == bid, j
    assert bland_direct(sb, "DELETE", "/v1/blocked_numbers/%d" % bid)[0] == 404


# ---- assignment, changes, removal ----

def test_blocked_caller_reaches_bland_at_assignment_and_rejects_the_call(env, sb, d):
    i = env.ids
    block(env, "+14155550999")                 # agency-wide, a whole number
    wait_blocked(sb, SEED, ["+14155550999"])
    n = buy(d, i.agent_bland1)                 # assigned: its rules follow
    wait_blocked(sb, n["e164"], ["+14155550999"])
    rc, lines, out = sb.ring(n["e164"], "+14155550999", seconds=5)
    assert not out["taken"] and out.get("blocked"), lines
    rc, lines, out = sb.ring(n["e164"], "+14155550123", seconds=5)
    assert out["taken"], lines
    # per inbound number, never global
    assert all(r["is_global"] is False for r in sb.state()["blocks"].values())


def test_changes_by_sql_reach_bland_and_removal_removes_ours(env, sb, d):
    i = env.ids
    other = env.sql("INSERT INTO clients (agency_id, name) VALUES (%s, 'Other') RETURNING id",
                    i.agency_a).fetchone()[0]
    a = block(env, "+14155550901", client=i.client_acme)    # the agent's client: applies
    block(env, "+14155550902", client=other)                # another client's: does not
    b = block(env, "+442071838750", number=i.num_bland1)    # the number's own
    wait_blocked(sb, SEED, ["+14155550901", "+442071838750"], timeout=3.0)
    env.sql("UPDATE blocked_callers SET prefix = '+14155550903' WHERE id = %s", a)
    wait_blocked(sb, SEED, ["+14155550903", "+442071838750"], timeout=3.0)
    env.sql("DELETE FROM blocked_callers WHERE id = %s", b)
    wait_blocked(sb, SEED, ["+14155550903"], timeout=3.0)
    env.sql("DELETE FROM blocked_callers")
    wait_blocked(sb, SEED, [], timeout=3.0)
    m = scrape(d)
    assert m.get("callrouted_bland_blocks_added_total") >= 3
    assert m.get("callrouted_bland_blocks_removed_total") >= 3


def test_a_shorter_prefix_is_reported_not_pushed(env, sb, d):
    bid = block(env, "+1415555")              # a prefix: Bland cannot express it
    block(env, "+14155550999")
    wait_blocked(sb, SEED, ["+14155550999"])
    rep = sync(d)["blocked_numbers"]
    assert [(u["id"], u["prefix"], u["scope"], u["inbound_number"]) for u in rep["unpushable"]] \
        == [(bid, "+1415555", "agency", SEED)], rep
    assert rep["in_sync"] is True and rep["rules_wanted"] == 1, rep
    assert [b for (_, b, _) in rules(sb)] == ["+14155550999"]
    m = scrape(d)
    assert m.get("callrouted_bland_blocks_unpushable", account="bland-a") == 1
    # logged once, however many passes; callroutectl shows it
    r = ctl("--url", "http://127.0.0.1:%d" % d.admin_port, "--token", TOKEN_A, "sync",
            "bland-a", "--dry-run")
    assert r.returncode == 0, r
    assert "blocked numbers at Bland: 1 rules wanted on 1 numbers" in r.stdout, r.stdout
    assert "not pushed: blocked_callers %d prefix +1415555 (agency) on %s" % (bid, SEED) \
        in r.stdout, r.stdout
    assert d.log().count("blocked_callers %d (prefix +1415555) is not a whole number" % bid) \
        == 1, d.log_tail()


def test_more_than_ten_numbers_go_in_several_requests(env, sb, d):
    want = ["+1415555%04d" % (1000 + k) for k in range(23)]
    sb.clear()
    env.sql("INSERT INTO blocked_callers (agency_id, prefix) SELECT %s, unnest(%s::text[])",
            env.ids.agency_a, want)
    wait_blocked(sb, SEED, want)
    sizes = [len(json.loads(r["body"])["numbers"]) for r in posts(sb)]
    assert sorted(sizes) == [3, 10, 10], sizes
    assert all(r["status"] == 200 for r in posts(sb))


def test_rules_we_did_not_create_are_left_alone(env, sb, d):
    st, _ = bland_direct(sb, "POST", "/v1/blocked_numbers", {
        "numbers": ["+14155550777", "+14155550999"], "is_global": False,
        "inbound_number": SEED, "reason": "blocked by the operator"})
    assert st == 200
    st, _ = bland_direct(sb, "POST", "/v1/blocked_numbers", {
        "numbers": ["+14155550778"], "is_global": True})
    assert st == 200
    bid = block(env, "+14155550999")   # the operator blocks it already: nothing added
    block(env, "+14155550998")
    wait_blocked(sb, SEED, ["+14155550998"])
    rep = sync(d)["blocked_numbers"]
    assert rep["foreign"] == 2 and rep["in_sync"], rep
    env.sql("DELETE FROM blocked_callers")
    wait_blocked(sb, SEED, [])
    settle(0.5)
    assert rules(sb) == [(SEED, "+14155550777", False), (SEED, "+14155550999", False),
                         ("global", "+14155550778", False)], rules(sb)
    assert bid


def test_dry_run_reports_drift_and_a_sync_repairs_it(env, sb, d):
    block(env, "+14155550999")
    wait_blocked(sb, SEED, ["+14155550999"])
    (ours,) = [r for r in sb.state()["blocks"].values()]
    assert bland_direct(sb, "DELETE", "/v1/blocked_numbers/%d" % ours["id"])[0] == 200
    rep = sync(d, "?dry_run=true")["blocked_numbers"]
    assert rep["applied"] is False and rep["in_sync"] is False, rep
    assert rep["missing"] == [{"inbound_number": SEED, "blocked_number": "+14155550999"}], rep
    assert blocked_of(sb, SEED) == []
    assert scrape(d).get("callrouted_bland_blocks_drift", account="bland-a") == 1
    rep = sync(d)["blocked_numbers"]
    assert rep["added"] == [{"inbound_number": SEED, "blocked_number": "+14155550999"}], rep
    assert blocked_of(sb, SEED) == ["+14155550999"]


def test_provider_down_then_back(env, sb):
    d = sandbox_daemon(env, sb, provider_sync_interval="2s")
    sb.control("POST", "faults", {"method": "*", "prefix": "/bland/v1/blocked_numbers",
                                  "status": 503})
    before = scrape(d).get("callrouted_bland_blocks_errors_total")
    block(env, "+14155550999")
    wait_for(lambda: scrape(d).get("callrouted_bland_blocks_errors_total") > before, 5.0,
             what="the failure counted")
    assert blocked_of(sb, SEED) == []
    # one line per failed request; the daemon stays ready (nothing waits for Bland)
    assert "bland blocks: bland-a: listing rules: HTTP 503" in d.log(), d.log_tail()
    assert d.admin("GET", "/readyz").status == 200
    sb.control("DELETE", "faults")
    # the periodic provider sync pushes it
    wait_blocked(sb, SEED, ["+14155550999"], timeout=10.0)


def test_duplicates_of_ours_keep_the_lowest_id(env, sb, d):
    """Two daemons may both add a rule after one change: the next pass keeps the oldest."""
    st, j = bland_direct(sb, "POST", "/v1/blocked_numbers", {
        "numbers": ["+14155550999", "+14155550999", "+14155550997"], "is_global": False,
        "inbound_number": SEED, "reason": TAG + " blocked_callers (another daemon's)"})
    assert st == 200
    ids = [b["id"] for b in j["data"]["blocks"]]
    block(env, "+14155550999")
    wait_for(lambda: sorted(r["id"] for r in sb.state()["blocks"].values()) == [ids[0]], 5.0,
             0.05, "only the oldest of ours left")
