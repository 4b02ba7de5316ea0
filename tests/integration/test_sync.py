# test_sync: the provider sync (import, drift, repair), pending purchases, forced release.
"""Issue 12 items 4 (no orphans) and 5: POST /v1/accounts/{slug}/sync against tools/sandbox,
whose list endpoints paginate as the providers document and whose control endpoint plays the
provider's dashboard (numbers and agents made, changed or deleted there)."""

import json
import subprocess
import time

import pytest

from support.admin_api import (TOKEN_A, TOKEN_B, TOKEN_PORTAL, VAPI_CREDENTIAL, api, assert_error,
                               number_row, numbers_snapshot, route_retell, until_routed)
from support.build import SLOW, callrouted_bin, daemon_env
from support.polling import wait_for
from support.sandbox import SandboxProc, sandbox_daemon, start_daemon
from support.scrape import scrape

KEYS = {"retell": "retell-key-a", "vapi": "vapi-api-key-a", "bland": "bland-api-key-a"}
SLUGS = {"retell": "ret-a", "vapi": "vapi-a", "bland": "bland-a"}


@pytest.fixture
def sb(sandbox):
    """The sandbox cleared, and every number, call and agent it holds forgotten."""
    sandbox.reset()
    return sandbox


@pytest.fixture
def d(env, sb):
    return sandbox_daemon(env, sb)


def sync(d, slug, token=None, query="", body=None, status=200):
    kw = {} if token is None else {"token": token}
    r = api(d, "POST", "/v1/accounts/%s/sync%s" % (slug, query), body, timeout=30, **kw)
    assert r.status == status, r
    return r.json()


def agent(sb, provider, name, pid=None):
    b = {"provider": provider, "key": KEYS[provider], "name": name}
    if pid:
        b["id"] = pid
    a = sb.control("POST", "agents", b)
    return a.get("agent_id") or a["id"]


def dashboard_number(sb, provider, **kw):
    b = {"provider": provider, "key": KEYS[provider]}
    b.update(kw)
    return sb.control("POST", "numbers", b)["numbers"]


def events(d, nid):
    r = api(d, "GET", "/v1/numbers/%d/events" % nid)
    assert r.status == 200, r
    return [(e["action"], e["actor"]) for e in r.json()["events"]]


def changes(report, action):
    return [c for c in report["changes"] if c["action"] == action]


def drift(report, kind, e164=None):
    return [x for x in report["drift"] if x["kind"] == kind and (e164 is None or
                                                                  x.get("e164") == e164)]


def webhook(d, provider):
    return "http://127.0.0.1:%d/v1/webhooks/%s/%s" % (d.port, provider, SLUGS[provider])


# ---- import, vanished agents, dry run ----

def test_import_numbers_and_agents_and_vanished_agent(env, sb, d):
    i = env.ids
    agent(sb, "retell", "Reception", "agent_ret_1")           # ours, still there
    new = agent(sb, "retell", "Night line")                   # not ours: imported
    bound = dashboard_number(sb, "retell", set={"inbound_agents": [
        {"agent_id": new, "weight": 1}], "inbound_webhook_url": webhook(d, "retell"),
        "nickname": "from the dashboard"})[0]
    free = dashboard_number(sb, "retell")[0]
    before = numbers_snapshot(env)

    dry = sync(d, "ret-a", query="?dry_run=true")
    assert dry["dry_run"] is True and numbers_snapshot(env) == before, dry
    assert all(c["applied"] is False for c in dry["changes"]), dry
    assert {c["e164"] for c in changes(dry, "import_number")} == {bound["phone_number"],
                                                                  free["phone_number"]}
    assert [c["provider_agent_id"] for c in changes(dry, "import_agent")] == [new]
    assert dry["drift_counts"]["untracked"] == 2, dry
    assert env.sql("SELECT count(*) FROM agents WHERE NOT active").fetchone()[0] == 0

    rep = sync(d, "ret-a")
    assert rep["numbers_at_provider"] == 2 and rep["agents_at_provider"] == 2, rep
    assert all(c["applied"] for c in rep["changes"]), rep
    imp = {c["e164"]: c for c in changes(rep, "import_number")}
    nb = number_row(env, imp[bound["phone_number"]]["number_id"])
    nf = number_row(env, imp[free["phone_number"]]["number_id"])
    new_id = env.sql("SELECT id FROM agents WHERE provider_agent_id = %s",
                     new).fetchone()[0]
    assert (nb["status"], nb["agent_id"], nb["nickname"]) == ("active", new_id,
                                                              "from the dashboard"), nb
    assert (nf["status"], nf["agent_id"]) == ("active", None), nf
    # recorded in the audit trail, by the sync
    assert events(d, imp[free["phone_number"]]["number_id"]) == [("sync_import", "sync")]
    # agent_ret_2 is not at Retell: inactive, and its number answers "no agent"
    assert [c["provider_agent_id"] for c in changes(rep, "deactivate_agent")] == ["agent_ret_2"]
    assert env.sql("SELECT active FROM agents WHERE id = %s", i.agent_ret2).fetchone()[0] is False
    until_routed(d, "retell", "+14155550103", None, "a vanished agent's number")
    until_routed(d, "retell", bound["phone_number"], new, "an imported number")
    # the standard data's numbers are not at the sandbox: active here, gone there
    assert {x["e164"] for x in drift(rep, "released")} == {"+14155550101", "+14155550102",
                                                           "+14155550103"}, rep
    assert rep["drift_counts"]["untracked"] == 0, rep

    # a second sync imports nothing more; the agent comes back when Retell has it again
    agent(sb, "retell", "After Hours", "agent_ret_2")
    again = sync(d, "ret-a")
    assert not changes(again, "import_number") and not changes(again, "import_agent"), again
    assert [c["agent_id"] for c in changes(again, "reactivate_agent")] == [i.agent_ret2]
    until_routed(d, "retell", "+14155550103", "agent_ret_2", "a reactivated agent's number")


def test_vapi_pagination_and_bland_pathways(env, sb, d):
    dashboard_number(sb, "vapi", count=105)
    for k in range(3):
        agent(sb, "vapi", "assistant %d" % k)
    sb.clear()
    rep = sync(d, "vapi-a")
    assert rep["numbers_at_provider"] == 105 and rep["agents_at_provider"] == 3, rep
    assert len(changes(rep, "import_number")) == 105, rep
    # two pages, the second from the first's last createdAt (limit 100, newest first)
    pages = [q["path"] for q in sb.requests() if q["path"].startswith("/vapi/phone-number")]
    assert len(pages) >= 2 and "createdAtLe=" in pages[1], pages
    # imported numbers do not call us yet: drift until repaired
    assert rep["drift_counts"]["webhook"] == 105 and rep["drift_counts"]["credential"] == 105
    # vapi-a has a sibling Vapi account (vapi-bearer-a): a missing assistant is only reported
    # only for an agent this account's numbers use (asst_vapi_1: +14155550201)
    assert [x["agent_id"] for x in drift(rep, "agent_missing")] == [env.ids.agent_vapi1], rep
    assert not changes(rep, "deactivate_agent"), rep

    pw = agent(sb, "bland", "Intake pathway")
    n = dashboard_number(sb, "bland", set={"pathway_id": pw, "webhook": webhook(d, "bland")})[0]
    rep = sync(d, "bland-a")
    imp = changes(rep, "import_number")
    assert [c["e164"] for c in imp] == [n["phone_number"]], rep
    row = number_row(env, imp[0]["number_id"])
    assert row["agent_id"] == env.sql("SELECT id FROM agents WHERE provider_agent_id = %s",
                                      pw).fetchone()[0], row


# ---- pending purchases ----

def test_purchase_timeout_is_pending_then_adopted(env, sb):
    d = start_daemon(env, sb, provider_timeout="1s")
    sb.control("POST", "faults", {"method": "POST", "prefix": "/retell/create-phone-number",
                                  "delay": 2.0, "times": 1})
    r = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415",
                                       "nickname": "slow one", "agent_id": env.ids.agent_ret1},
            timeout=20)
    assert r.status == 202, r
    p = r.json()
    assert p["status"] == "pending" and p["e164"] is None and "provider_timeout" in \
        p["provider_note"], p
    assert p["agent"] is None, p            # not assigned until adopted
    # the sandbox buys it after its delay: the next sync adopts it into the pending row
    bought = wait_for(lambda: [n for n in sb.state()["numbers"]["retell"].values()], 10 * SLOW,
                      0.1, "the sandbox's late purchase")[0][0]
    rep = sync(d, "ret-a")
    ad = changes(rep, "adopt_pending")
    assert [(c["number_id"], c["e164"]) for c in ad] == [(p["id"], bought["_e164"])], rep
    row = number_row(env, p["id"])
    assert (row["status"], row["e164"], row["nickname"], row["agent_id"]) == (
        "active", bought["_e164"], "slow one", env.ids.agent_ret1), row
    assert not drift(rep, "webhook", bought["_e164"]), rep   # bought with our webhook
    # the agent asked for routes at once; Retell's fallback agent is bound by a repair
    until_routed(d, "retell", bought["_e164"], "agent_ret_1", "an adopted purchase")
    assert drift(rep, "retell_agents", bought["_e164"])[0]["repairable"] is True, rep
    rep = sync(d, "ret-a", query="?repair=true")
    assert not drift(rep, "retell_agents", bought["_e164"]) or \
        drift(rep, "retell_agents", bought["_e164"])[0]["repaired"], rep
    assert sb.number("retell", bought["_e164"])["inbound_agents"] == [
        {"agent_id": "agent_ret_1", "weight": 1}]
    got = api(d, "GET", "/v1/numbers/%d" % p["id"]).json()
    assert got["status"] == "active" and "provider_note" not in got, got
    assert events(d, p["id"]) == [("buy_pending", "token"), ("sync_adopt", "sync"),
                                  ("sync_repair", "sync")]
    # a provider 5xx to a purchase is pending too (the provider may have acted)
    sb.control("POST", "faults", {"method": "POST", "prefix": "/retell/create-phone-number",
                                  "status": 500, "times": 1})
    r = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"})
    assert r.status == 202 and r.json()["status"] == "pending", r
    assert "answered 500" in r.json()["provider_note"], r


def test_periodic_check_adopts_pending_but_imports_nothing(env, sb):
    d = start_daemon(env, sb, provider_timeout="1s", provider_sync_interval="1s")
    other = dashboard_number(sb, "retell")[0]          # not ours, not our webhook
    sb.control("POST", "faults", {"method": "POST", "prefix": "/retell/create-phone-number",
                                  "delay": 2.0, "times": 1})
    r = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"}, timeout=20)
    assert r.status == 202, r
    p = r.json()

    def adopted():
        row = number_row(env, p["id"])
        return row["status"] == "active" and row
    row = wait_for(adopted, 20 * SLOW, 0.2, "the periodic check to adopt the purchase")[0]
    assert row["e164"] != other["phone_number"], row
    # a dry run otherwise: the dashboard's number is reported, not imported
    assert env.sql("SELECT count(*) FROM phone_numbers WHERE e164 = %s",
                   other["phone_number"]).fetchone()[0] == 0
    wait_for(lambda: scrape(d).get("callrouted_provider_drift", provider="retell",
                                   account="ret-a", kind="untracked") == 1 or None,
             10 * SLOW, 0.2, "the untracked gauge")


def test_vapi_activating_purchase_is_pending_then_adopted_or_failed(env, tmp_path):
    s = SandboxProc(tmp_path / "sb-activation", extra=["--vapi-activation", "2"]).start()
    try:
        d = sandbox_daemon(env, s)
        a = api(d, "POST", "/v1/numbers", {"account": "vapi-a", "area_code": "415"})
        b = api(d, "POST", "/v1/numbers", {"account": "vapi-a", "area_code": "415"})
        assert a.status == 202 and b.status == 202, (a, b)
        a, b = a.json(), b.json()
        ra, rb = number_row(env, a["id"]), number_row(env, b["id"])
        assert ra["status"] == "pending" and ra["provider_number_id"], ra
        # still activating: stays pending, nothing imported twice
        rep = sync(d, "vapi-a")
        assert not changes(rep, "adopt_pending") and not changes(rep, "import_pending"), rep
        assert number_row(env, a["id"])["status"] == "pending"
        # b is gone at Vapi (deleted in the dashboard); a gets its digits
        s.control("DELETE", "numbers/vapi/%s" % rb["provider_number_id"])
        time.sleep(2.2)
        rep = sync(d, "vapi-a")
        assert [c["number_id"] for c in changes(rep, "adopt_pending")] == [a["id"]], rep
        assert [c["number_id"] for c in changes(rep, "fail_pending")] == [b["id"]], rep
        ra, rb = number_row(env, a["id"]), number_row(env, b["id"])
        assert ra["status"] == "active" and ra["e164"].startswith("+1415"), ra
        assert rb["status"] == "failed" and rb["e164"] is None, rb
        assert "lists no number" in api(d, "GET", "/v1/numbers/%d" % b["id"]).json()[
            "provider_note"]
        assert not drift(rep, "webhook", ra["e164"]) and not drift(rep, "credential", ra["e164"])
    finally:
        s.stop()


# ---- drift: reported, exported, repaired ----

def test_drift_reported_exported_and_repaired(env, sb):
    d = sandbox_daemon(env, sb, provider_sync_interval="1s")
    i = env.ids
    for p, pid in (("retell", "agent_ret_1"), ("vapi", "asst_vapi_1"),
                   ("bland", "bland_agent_1")):
        agent(sb, p, "ours", pid)
    nums = {}
    for p, ag in (("retell", i.agent_ret1), ("vapi", i.agent_vapi1), ("bland", i.agent_bland1)):
        r = api(d, "POST", "/v1/numbers", {"account": SLUGS[p], "area_code": "415",
                                           "agent_id": ag})
        assert r.status == 201, r
        nums[p] = r.json()
    clean = sync(d, "ret-a", query="?dry_run=true")
    assert not drift(clean, "webhook", nums["retell"]["e164"]), clean
    # changes made in the providers' dashboards
    sb.control("POST", "edit", {"provider": "retell", "id": nums["retell"]["e164"], "set": {
        "inbound_webhook_url": "https://elsewhere.example/hook",
        "inbound_agents": [{"agent_id": "agent_someone_else", "weight": 1}]}})
    vid = sb.number("vapi", nums["vapi"]["e164"])["id"]
    sb.control("POST", "edit", {"provider": "vapi", "id": vid, "set": {
        "server": {"url": webhook(d, "vapi")}}})          # credential dropped
    sb.control("POST", "edit", {"provider": "bland", "id": nums["bland"]["e164"], "set": {
        "pathway_id": "pw_not_ours"}})

    # the periodic check (every 1 s here) exports it without anyone asking
    def exported():
        s = scrape(d)
        return s.get("callrouted_provider_drift", provider="retell", account="ret-a",
                     kind="webhook") == 1 and s
    s = wait_for(exported, 15 * SLOW, 0.2, "the drift gauge of the periodic check")[0]
    assert s.get("callrouted_provider_drift", provider="retell", account="ret-a",
                 kind="retell_agents") == 1
    wait_for(lambda: scrape(d).get("callrouted_provider_drift", provider="bland",
                                   account="bland-a", kind="bland_pathway") == 1 or None,
             15 * SLOW, 0.2, "bland drift")
    # accounts the sandbox does not know (ret-b, vapi-bearer-a): sync errors
    wait_for(lambda: scrape(d).get("callrouted_provider_sync_errors_total") > 0 or None,
             15 * SLOW, 0.2, "sync errors of the accounts the sandbox does not know")

    before = numbers_snapshot(env)
    rep = sync(d, "ret-a", query="?dry_run=true")
    e = nums["retell"]["e164"]
    assert drift(rep, "webhook", e) and drift(rep, "retell_agents", e), rep
    assert "elsewhere.example" in drift(rep, "webhook", e)[0]["detail"]
    assert numbers_snapshot(env) == before
    assert sb.number("retell", e)["inbound_webhook_url"] == "https://elsewhere.example/hook"

    rep = sync(d, "ret-a", body={"repair": True})
    assert [c["e164"] for c in changes(rep, "repair")] == [e] and \
        changes(rep, "repair")[0]["applied"], rep
    assert drift(rep, "webhook", e)[0]["repaired"] is True
    n = sb.number("retell", e)
    assert n["inbound_webhook_url"] == webhook(d, "retell"), n
    assert events(d, nums["retell"]["id"])[-1] == ("sync_repair", "sync")
    assert n["inbound_agents"] == [{"agent_id": "agent_ret_1", "weight": 1}], n
    assert rep["drift_counts"]["webhook"] == 0 and rep["drift_counts"]["retell_agents"] == 0
    s = scrape(d)
    assert s.get("callrouted_provider_drift", provider="retell", account="ret-a",
                 kind="webhook") == 0

    rep = sync(d, "vapi-a", query="?repair=true")
    v = nums["vapi"]["e164"]
    assert drift(rep, "credential", v)[0].get("repaired") is True, rep
    assert sb.number("vapi", v)["server"]["credentialId"] == VAPI_CREDENTIAL
    # an assistantId set at Vapi bypasses us and cannot be cleared through the API
    sb.control("POST", "edit", {"provider": "vapi", "id": vid, "set": {"assistantId": "asst_x"}})
    rep = sync(d, "vapi-a", query="?repair=true")
    own = drift(rep, "vapi_owner", v)
    assert own and own[0]["repairable"] is False and "assistantId" in own[0]["detail"], rep

    # a number another change holds (its lease) is not repaired, and nothing is sent for it
    b = nums["bland"]["e164"]
    env.sql("INSERT INTO number_change_leases (number_id, holder, instance, action, expires_at) "
            "VALUES (%s, %s, 'other', 'change', now() + interval '1 minute')",
            nums["bland"]["id"], "ab" * 16)
    sb.clear()
    rep = sync(d, "bland-a", query="?repair=true")
    held = changes(rep, "repair")
    assert held and held[0]["applied"] is False and "holds the number" in held[0]["error"], rep
    assert not [q for q in sb.requests() if q["method"] == "POST" and "/v1/inbound/" in q["path"]]
    env.sql("DELETE FROM number_change_leases WHERE number_id = %s", nums["bland"]["id"])
    rep = sync(d, "bland-a", query="?repair=true")
    assert drift(rep, "bland_pathway", b)[0]["repaired"] is True, rep
    assert sb.number("bland", b)["pathway_id"] == "bland_agent_1"
    assert rep["drift_counts"]["bland_pathway"] == 0


# ---- forced release ----

def test_force_release_of_a_number_gone_at_the_provider(env, sb, d):
    r = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"})
    assert r.status == 201, r
    n = r.json()
    sb.control("DELETE", "numbers/retell/%s" % n["e164"])      # released in the dashboard
    rep = sync(d, "ret-a", query="?dry_run=true")
    assert drift(rep, "released", n["e164"]), rep
    assert_error(api(d, "DELETE", "/v1/numbers/%d" % n["id"]), 404, "provider_refused")
    assert number_row(env, n["id"])["status"] == "active"
    assert_error(api(d, "DELETE", "/v1/numbers/%d?force=yes" % n["id"]), 400, "invalid")
    r = api(d, "DELETE", "/v1/numbers/%d?force=true" % n["id"])
    assert r.status == 200, r
    j = r.json()
    assert j["status"] == "released" and "already gone" in j["provider_note"], j
    assert not drift(sync(d, "ret-a", query="?dry_run=true"), "released", n["e164"])
    # force on a number the provider still has: an ordinary release
    n2 = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"}).json()
    r = api(d, "DELETE", "/v1/numbers/%d?force=true" % n2["id"])
    assert r.status == 200 and "provider_note" not in r.json(), r
    assert sb.number("retell", n2["e164"]) is None


# ---- tenant isolation and strict input ----

def test_sync_is_scoped_and_strict(env, sb, d):
    before = numbers_snapshot(env)
    assert_error(api(d, "POST", "/v1/accounts/ret-a/sync", token=TOKEN_PORTAL), 403,
                 "forbidden")
    assert_error(api(d, "POST", "/v1/accounts/ret-a/sync", token=TOKEN_B), 404, "not_found")
    assert_error(api(d, "POST", "/v1/accounts/nope/sync"), 404, "not_found")
    assert_error(api(d, "POST", "/v1/accounts/Bad%20Slug/sync"), 404, "not_found")
    assert_error(api(d, "GET", "/v1/accounts/ret-a/sync"), 405)
    assert_error(api(d, "POST", "/v1/accounts/ret-a/sync?dryrun=true"), 400, "invalid",
                 "dryrun")
    assert_error(api(d, "POST", "/v1/accounts/ret-a/sync", {"dryRun": True}), 400, "invalid",
                 "dryRun")
    assert_error(api(d, "POST", "/v1/accounts/ret-a/sync", {"repair": "yes"}), 400, "invalid",
                 "repair")
    assert_error(api(d, "POST", "/v1/accounts/ret-a/sync", token=None), 401)
    # agency B syncs its own account (its key is unknown to the sandbox: the provider's 401)
    r = api(d, "POST", "/v1/accounts/ret-b/sync", token=TOKEN_B)
    assert_error(r, 422, "provider_refused")
    assert numbers_snapshot(env) == before
    assert not [q for q in sb.requests() if q["method"] != "GET"], sb.requests()


# ---- callroutectl sync ----

def _ctl(*args):
    e = {k: v for k, v in daemon_env().items() if k not in ("CALLROUTED_URL", "CALLROUTED_TOKEN")}
    return subprocess.run([str(callrouted_bin().parent / "callroutectl")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e,
                          timeout=60 * SLOW)


def test_callroutectl_sync(env, sb, d):
    base = ["--url", "http://127.0.0.1:%d" % d.admin_port, "--token", TOKEN_A]
    n = dashboard_number(sb, "retell")[0]
    before = numbers_snapshot(env)
    r = _ctl(*base, "sync", "ret-a", "--dry-run")
    assert r.returncode == 0, r
    assert "account ret-a (retell): 1 numbers and 0 agents at the provider (dry run" in r.stdout
    assert "import_number" in r.stdout and n["phone_number"] in r.stdout, r.stdout
    assert "released" in r.stdout and "the provider and we differ" in r.stdout, r.stdout
    assert numbers_snapshot(env) == before
    r = _ctl(*base, "--json", "sync", "ret-a")
    assert r.returncode == 0, r
    j = json.loads(r.stdout)
    assert j["dry_run"] is False and changes(j, "import_number")[0]["applied"] is True, j
    # Retell lists no agent at all: ours are reported, not deactivated (a wrong key?)
    assert len(drift(j, "agent_missing")) == 2 and not changes(j, "deactivate_agent"), j
    assert "lists no agent at all" in drift(j, "agent_missing")[0]["detail"]
    for bad, what in ((["sync"], "SLUG"), (["sync", "Bad!"], "not an account slug"),
                      (["sync", "ret-a", "--dry-run", "--repair"], "exclude each other"),
                      (["sync", "ret-a", "--fix"], "--fix")):
        r = _ctl(*base, *bad)
        assert r.returncode == 2 and what in r.stderr, (bad, r)
    # a number released in the dashboard: numbers release --force
    nid = changes(j, "import_number")[0]["number_id"]
    sb.control("DELETE", "numbers/retell/%s" % n["phone_number"])
    r = _ctl(*base, "numbers", "release", str(nid))
    assert r.returncode == 1 and "404 provider_refused" in r.stderr, r
    r = _ctl(*base, "numbers", "release", str(nid), "--force")
    assert r.returncode == 0 and "status:    released" in r.stdout, r
    assert "already gone" in r.stdout, r.stdout
    r = _ctl(*base, "sync", "nope")
    assert r.returncode == 1 and "404 not_found" in r.stderr, r
    r = _ctl("sync", "--help")
    assert r.returncode == 0 and r.stdout.startswith(
        "usage: callroutectl [GLOBAL OPTIONS] sync SLUG [--dry-run] [--repair]"), r


# ---- migration 007: the rules the database keeps ----

def test_schema_pending_failed_and_inactive_agents(env):
    import psycopg
    i = env.ids
    ins = ("INSERT INTO phone_numbers (agency_id, account_id, provider, e164, status) "
           "VALUES (%s, %s, 'retell', %s, %s) RETURNING id")
    pid = env.sql(ins, i.agency_a, i.acct_retell, None, "pending").fetchone()[0]
    env.sql(ins, i.agency_a, i.acct_retell, None, "failed")
    for e164, status in ((None, "active"), (None, "released"), ("+14155550777", "gone")):
        with pytest.raises(psycopg.errors.CheckViolation):
            with env.conn.transaction():
                env.sql(ins, i.agency_a, i.acct_retell, e164, status)
    # a pending number has no agent (only an active one may)
    with pytest.raises(psycopg.errors.CheckViolation):
        with env.conn.transaction():
            env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", i.agent_ret1, pid)
    with pytest.raises(psycopg.errors.CheckViolation):
        with env.conn.transaction():
            env.sql("UPDATE phone_numbers SET provider_note = %s WHERE id = %s", "x" * 501, pid)
    # the agent a purchase asked for: only on a pending row, of its provider and agency
    env.sql("UPDATE phone_numbers SET requested_agent_id = %s WHERE id = %s", i.agent_ret1, pid)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        with env.conn.transaction():
            env.sql("UPDATE phone_numbers SET requested_agent_id = %s WHERE id = %s",
                    i.agent_vapi1, pid)
    with pytest.raises(psycopg.errors.CheckViolation):
        with env.conn.transaction():
            env.sql("UPDATE phone_numbers SET requested_agent_id = %s WHERE id = %s",
                    i.agent_ret1, i.num_ret_free)
    assert env.sql("SELECT count(*) FROM agents WHERE NOT active").fetchone()[0] == 0
