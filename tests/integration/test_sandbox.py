# test_sandbox: the daemon against tools/sandbox, the emulator of the providers' documented APIs.
"""Issue 15 item 1 (first piece): tools/sandbox serves Retell's, Vapi's and Bland's number and
call APIs as their documents describe them, and calls our webhooks the way each provider does.
The daemon buys, assigns, calls out and releases through it; `tools/sandbox ring` makes the
inbound calls, and the ledger records what the provider reported.  Tests marked xfail(strict)
are defects of today's daemon against the documented APIs (issue 12): they flip when fixed."""

import json
import subprocess
import sys
import time

import pytest

from support.admin_api import VAPI_CREDENTIAL, api
from support.sandbox import (SANDBOX, SandboxProc, calls_of, ledger_of, load_sandbox_module,
                             sandbox_daemon, settle, start_daemon, wait_call, wait_ledger)
from support.signing import sw

TO = "+14155550188"
CALLER = "+14155550123"

P = {
    "retell": {"slug": "ret-a", "agent": "agent_ret1", "pid": "agent_ret_1",
               "key": "retell-key-a"},
    "vapi": {"slug": "vapi-a", "agent": "agent_vapi1", "pid": "asst_vapi_1",
             "key": "vapi-api-key-a"},
    "bland": {"slug": "bland-a", "agent": "agent_bland1", "pid": "bland_agent_1",
              "key": "bland-api-key-a"},
}


@pytest.fixture
def d(env, sb):
    return sandbox_daemon(env, sb)


def buy(d, provider, nickname="Sandbox line", agent=None):
    body = {"account": P[provider]["slug"], "area_code": "415", "nickname": nickname}
    if agent is not None:
        body["agent_id"] = agent
    r = api(d, "POST", "/v1/numbers", body)
    assert r.status == 201, r
    return r.json()


def webhook(d, provider):
    return "http://127.0.0.1:%d/v1/webhooks/%s/%s" % (d.port, provider, P[provider]["slug"])


def assert_documented_fields_only(sb):
    """Every request the daemon sent used only fields the provider documents (Retell and Bland
    accept unknown fields, so the sandbox only notes them)."""
    odd = [(q["method"], q["path"], q["unknown_fields"]) for q in sb.requests()
           if q.get("unknown_fields")]
    assert not odd, odd


def assert_taken_and_billed(env, outcome, lines, agent_db_id, seconds, direction="inbound"):
    assert outcome["taken"], lines
    rows = wait_ledger(env, outcome["call_id"])
    assert len(rows) == 1, rows
    dirn, agent, dur, billed, amount = rows[0]
    assert (dirn, agent, dur) == (direction, agent_db_id, seconds * 1000), (rows, lines)
    assert billed == 60 * ((seconds + 59) // 60) and amount > 0, rows


# ---- the sandbox on its own: what it enforces ----

def test_signatures_are_those_of_send_webhook():
    """The sandbox signs as tools/send-webhook does (same bytes, same keys, same digests)."""
    m = load_sandbox_module()
    body = b'{"event":"call_ended"}'
    # Retell's own SDK test vector (webhook-auth.test.ts)
    assert m.retell_signature("test-api-key", body, 1700000000000) == \
        "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e"
    assert m.retell_signature("k", body, 1714608475945) == sw.retell_signature(
        "k", body, 1714608475945)
    assert m.vapi_hmac_signature("vapi-test-secret", b'{"message":{"type":"status-update"}}',
                                 1700000000) == \
        "854b02b41aedb7f3688cbef04dc502b254bfbbe130f4c9d00992a0bef78675cc"
    assert m.vapi_hmac_signature("s", body, 1714608475945) == sw.vapi_hmac_signature(
        "s", body, 1714608475945)
    assert m.bland_signature("bland-test-secret", b'{"call_id":"abc"}') == \
        "79288605c66f46f0944be46e731605b4b53720523535a47096161964abf7c228"
    assert m.bland_signature("s", body) == sw.bland_signature("s", body)


def test_auth_headers_as_documented(sb):
    base = {"retell": "/retell/v2/list-phone-numbers", "vapi": "/vapi/phone-number",
            "bland": "/bland/v1/inbound"}
    good = {"retell": "Bearer retell-key-a", "vapi": "Bearer vapi-api-key-a",
            "bland": "bland-api-key-a"}
    bad = {"retell": ["retell-key-a", "Bearer nope"], "vapi": ["vapi-api-key-a", "Bearer x"],
           "bland": ["Bearer bland-api-key-a", "nope"]}
    for p in base:
        st, j = sb.request("GET", base[p], headers={"Authorization": good[p]})
        assert st == 200, (p, st, j)
        for h in bad[p] + [None]:
            st, j = sb.request("GET", base[p], headers={"Authorization": h} if h else {})
            assert st == 401, (p, h, st, j)


def test_vapi_refuses_what_its_schema_refuses(sb):
    h = {"Authorization": "Bearer vapi-api-key-a"}
    st, n = sb.request("POST", "/vapi/phone-number", {"provider": "vapi",
                                                      "numberDesiredAreaCode": "415"}, h)
    assert st == 201 and n["number"].startswith("+1415") and n["status"] == "active", n
    path = "/vapi/phone-number/" + n["id"]
    cases = [
        ({"server": {"url": "https://x.example"}}, "provider must be one of"),   # no discriminator
        ({"provider": "vapi", "assistantId": None}, "assistantId must be a string"),
        ({"provider": "vapi", "name": "x" * 41}, "name must be shorter than or equal to 40"),
        ({"provider": "vapi", "agentId": "a"}, "property agentId should not exist"),
        ({"provider": "vapi", "server": {"url": "u", "secret": "s"}},
         "server.property secret should not exist"),
        ({"provider": "vapi", "server": {"url": "u", "credentialId": "cred-unknown"}},
         "credential cred-unknown not found"),
    ]
    for body, want in cases:
        st, j = sb.request("PATCH", path, body, h)
        assert st == 400, (body, st, j)
        assert set(j) == {"message", "error", "statusCode"} and j["statusCode"] == 400, j
        msgs = j["message"] if isinstance(j["message"], list) else [j["message"]]
        assert any(want in m for m in msgs), (body, j)
    st, j = sb.request("PATCH", path, {"provider": "vapi", "name": "x" * 40, "server": {
        "url": "https://x.example", "credentialId": VAPI_CREDENTIAL}}, h)
    assert st == 200 and j["server"]["credentialId"] == VAPI_CREDENTIAL, j
    st, j = sb.request("PATCH", "/vapi/phone-number/nope", {"provider": "vapi"}, h)
    assert st == 404, j
    st, j = sb.request("GET", "/vapi/phone-number?limit=1001", headers=h)
    assert st == 400, j
    st, j = sb.request("DELETE", path, headers=h)
    assert st == 200 and j["id"] == n["id"], j
    st, j = sb.request("GET", path, headers=h)
    assert st == 404, j


def test_retell_types_pagination_and_weights(sb):
    h = {"Authorization": "Bearer retell-key-a"}
    st, j = sb.request("POST", "/retell/create-phone-number", {"area_code": "415"}, h)
    assert st == 400 and "area_code must be an integer" in j["message"], j
    nums = []
    for _ in range(3):
        st, j = sb.request("POST", "/retell/create-phone-number", {"area_code": 212}, h)
        assert st == 201 and j["phone_number"].startswith("+1212"), j
        nums.append(j["phone_number"])
    esc = nums[0].replace("+", "%2B")
    st, j = sb.request("PATCH", "/retell/update-phone-number/" + esc, {
        "inbound_agents": [{"agent_id": "a", "weight": 0.5}]}, h)
    assert st == 400 and "add up to 1" in j["message"], j
    st, j = sb.request("PATCH", "/retell/update-phone-number/" + esc, {
        "inbound_agents": [{"agent_id": "a", "weight": 1}], "nickname": None}, h)
    assert st == 200 and j["inbound_agents"][0]["agent_id"] == "a", j
    seen, key = [], None
    while True:
        q = "/retell/v2/list-phone-numbers?limit=2" + ("&pagination_key=" + key.replace(
            "+", "%2B") if key else "")
        st, j = sb.request("GET", q, headers=h)
        assert st == 200, j
        seen += [n["phone_number"] for n in j["items"]]
        if not j["has_more"]:
            break
        key = j["pagination_key"]
    assert set(nums) <= set(seen) and len(seen) == len(set(seen)), seen
    for n in nums:
        st, _ = sb.request("DELETE", "/retell/delete-phone-number/" + n.replace("+", "%2B"),
                           headers=h)
        assert st == 204


def test_bland_pathway_nulls_dynamic_data(sb):
    """Bland's page: setting a pathway sets prompt, ..., dynamic_data, ... to null."""
    h = {"authorization": "bland-api-key-a"}
    st, j = sb.request("POST", "/bland/numbers/purchase", {"area_code": 415}, h)
    assert st == 400, j       # area_code is a string in Bland's docs
    st, j = sb.request("POST", "/bland/numbers/purchase", {"area_code": "415"}, h)
    assert st == 200, j
    num = j["phone_number"]
    path = "/bland/v1/inbound/" + num.replace("+", "%2B")
    st, j = sb.request("POST", path, {"webhook": "https://x.example"}, h)
    assert st == 400 and "prompt is required" in j["message"], j
    dd = [{"url": "https://x.example/dd", "method": "POST"}]
    st, j = sb.request("POST", path, {"prompt": "hi", "dynamic_data": dd}, h)
    assert st == 200, j
    st, j = sb.request("GET", path, headers=h)
    assert j["dynamic_data"] == dd, j
    st, j = sb.request("POST", path, {"pathway_id": "pw_1", "dynamic_data": dd}, h)
    assert st == 200 and j["updates"]["dynamic_data"] is None, j
    st, j = sb.request("GET", path, headers=h)
    assert j["pathway_id"] == "pw_1" and j["dynamic_data"] is None and j["prompt"] is None, j
    st, j = sb.request("POST", path + "/delete", {}, h)
    assert st == 400, j       # no release of a number Bland sold


def test_faults_delay_5xx_and_times(env, sb, d):
    sb.control("POST", "faults", {"method": "POST", "prefix": "/retell/create-phone-number",
                                  "status": 503, "times": 1})
    r = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"})
    # the provider may have acted: recorded pending for the sync (issue 12 item 4)
    assert r.status == 202 and r.json()["status"] == "pending", r
    assert "answered 503" in r.json()["provider_note"], r
    n = env.conn.execute("SELECT count(*) FROM phone_numbers WHERE status <> 'pending'"
                         ).fetchone()[0]
    assert n == env.ids.n_numbers
    bought = buy(d, "retell")          # the fault was for one request only
    assert sb.number("retell", bought["e164"]) is not None


def test_fault_hang_is_a_provider_timeout(env, sb):
    d = start_daemon(env, sb, provider_timeout="1s")
    sb.control("POST", "faults", {"method": "POST", "prefix": "/bland/numbers/purchase",
                                  "hang": True, "times": 1})
    r = api(d, "POST", "/v1/numbers", {"account": "bland-a", "area_code": "415"}, timeout=20)
    # no answer in time: the purchase may have happened, recorded pending (issue 12 item 4)
    assert r.status == 202 and r.json()["status"] == "pending", r
    assert "provider_timeout" in r.json()["provider_note"], r


# ---- end to end: buy, assign, ring, ledger, call out, release ----

def test_retell_end_to_end(env, sb, d):
    i, p = env.ids, P["retell"]
    n = buy(d, "retell")
    at = sb.number("retell", n["e164"])
    assert at["inbound_webhook_url"] == webhook(d, "retell") and at["nickname"] == \
        "Sandbox line", at
    r = api(d, "PATCH", "/v1/numbers/%d" % n["id"], {"agent_id": getattr(i, p["agent"])})
    assert r.status == 200, r
    assert sb.number("retell", n["e164"])["inbound_agents"][0]["agent_id"] == p["pid"]
    settle()
    rc, lines, out = sb.ring(n["e164"], CALLER, seconds=75)
    assert rc == 0 and out["agent"] == p["pid"], lines
    assert any("call_inbound -> 200" in line for line in lines), lines
    assert_taken_and_billed(env, out, lines, getattr(i, p["agent"]), 75)
    # outbound through the API, "answered" by the sandbox
    r = api(d, "POST", "/v1/calls", {"agent_id": getattr(i, p["agent"]), "to": TO,
                                     "from": n["e164"]})
    assert r.status == 201, r
    rows = wait_ledger(env, r.json()["call_id"])
    assert rows[0][:3] == ("outbound", getattr(i, p["agent"]), 42000), rows
    r = api(d, "DELETE", "/v1/numbers/%d" % n["id"])
    assert r.status == 200, r
    assert sb.number("retell", n["e164"]) is None
    assert_documented_fields_only(sb)


def test_retell_unassigned_number_is_not_connected_and_not_billed(env, sb, d):
    n = buy(d, "retell")
    settle()
    rc, lines, out = sb.ring(n["e164"], CALLER)
    assert rc == 1 and not out["taken"], lines
    assert any("not connected" in line for line in lines), lines
    rows = wait_call(env, out["call_id"])
    assert rows[0][4] is False, rows          # connected
    assert ledger_of(env, out["call_id"]) == []


def test_bland_end_to_end(env, sb, d):
    i, p = env.ids, P["bland"]
    n = buy(d, "bland")
    r = api(d, "PATCH", "/v1/numbers/%d" % n["id"], {"agent_id": getattr(i, p["agent"])})
    assert r.status == 200, r
    at = sb.number("bland", n["e164"])
    assert at["pathway_id"] == p["pid"] and at["webhook"] == webhook(d, "bland"), at
    settle()
    rc, lines, out = sb.ring(n["e164"], CALLER, seconds=15)
    assert rc == 0 and out["agent"] == p["pid"], lines
    assert any("post-call webhook (signed) -> 200" in line for line in lines), lines
    assert_taken_and_billed(env, out, lines, getattr(i, p["agent"]), 15)
    r = api(d, "POST", "/v1/calls", {"agent_id": getattr(i, p["agent"]), "to": TO,
                                     "from": n["e164"]})
    assert r.status == 201, r
    rows = wait_ledger(env, r.json()["call_id"])
    assert rows[0][:3] == ("outbound", getattr(i, p["agent"]), 42000), rows
    r = api(d, "DELETE", "/v1/numbers/%d" % n["id"])
    assert r.status == 200, r
    at = sb.number("bland", n["e164"])       # Bland cannot take it back: unbound
    assert at["pathway_id"] is None and at["prompt"], at
    assert_documented_fields_only(sb)


def test_bland_assigned_number_keeps_its_dynamic_data_lookup(env, sb, d):
    i, p = env.ids, P["bland"]
    n = buy(d, "bland", agent=getattr(i, p["agent"]))
    assert n["agent"]["id"] == getattr(i, p["agent"]), n
    # read back as Bland has it: the pathway and the look-up both kept, our webhook
    st, at = sb.request("GET", "/bland/v1/inbound/" + n["e164"].replace("+", "%2B"),
                        headers={"Authorization": p["key"]})
    assert st == 200 and at["pathway_id"] == p["pid"], (st, at)
    assert at["webhook"] == webhook(d, "bland"), at
    assert [dd["url"] for dd in at["dynamic_data"]] == [webhook(d, "bland")], at
    # the pathway first, then the look-up alone (a pathway set with it would reset it)
    binds = [json.loads(q["body"]) for q in sb.requests()
             if q["method"] == "POST" and q["path"].startswith("/bland/v1/inbound/")]
    assert [sorted(b) for b in binds] == [["pathway_id", "webhook"],
                                          ["dynamic_data", "prompt"]], binds
    settle()
    rc, lines, out = sb.ring(n["e164"], CALLER)
    assert any("dynamic_data[0] POST -> 200" in line for line in lines), lines
    assert any('"agent_name"' in line for line in lines), lines
    assert any("pathway %s takes the call" % p["pid"] in line for line in lines), lines


def vapi_attach_credential(sb, e164):
    """What an operator does in Vapi's dashboard: attach the webhook credential."""
    n = sb.number("vapi", e164)
    sb.control("POST", "edit", {"provider": "vapi", "id": n["id"], "merge": True,
                                "set": {"server": {"credentialId": VAPI_CREDENTIAL}}})
    return n


def test_vapi_end_to_end_with_credential_attached(env, sb, d):
    """With server.credentialId attached by hand and the agent set in the database (the two
    things today's daemon cannot do through Vapi's API, see the xfails below), the whole flow
    works: assistant-request, status-update, end-of-call-report, ledger; refusal; call out."""
    i, p = env.ids, P["vapi"]
    n = buy(d, "vapi")
    at = vapi_attach_credential(sb, n["e164"])
    assert at["server"]["url"] == webhook(d, "vapi") and at["name"] == "Sandbox line", at
    settle()
    # unassigned: the daemon answers {"error": ...}; Vapi speaks it and ends the call unbilled
    rc, lines, out = sb.ring(n["e164"], CALLER)
    assert rc == 1 and out["endedReason"] == "assistant-request-returned-error", lines
    rows = wait_call(env, out["call_id"])
    assert rows[0][4] is False, rows
    assert ledger_of(env, out["call_id"]) == []
    env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", getattr(i, p["agent"]),
            n["id"])
    settle(0.5)
    rc, lines, out = sb.ring(n["e164"], CALLER, seconds=61)
    assert rc == 0 and out["agent"] == p["pid"], lines
    assert any("hmac credential" in line and "-> 200" in line for line in lines), lines
    assert_taken_and_billed(env, out, lines, getattr(i, p["agent"]), 61)
    r = api(d, "POST", "/v1/calls", {"agent_id": getattr(i, p["agent"]), "to": TO,
                                     "from": n["e164"]})
    assert r.status == 201, r
    rows = wait_ledger(env, r.json()["call_id"])
    assert rows[0][:3] == ("outbound", getattr(i, p["agent"]), 42000), rows
    r = api(d, "DELETE", "/v1/numbers/%d" % n["id"])
    assert r.status == 200, r
    assert sb.number("vapi", n["e164"]) is None


def test_vapi_assign_through_the_api(env, sb, d):
    i, p = env.ids, P["vapi"]
    n = buy(d, "vapi")
    r = api(d, "PATCH", "/v1/numbers/%d" % n["id"], {"agent_id": getattr(i, p["agent"])})
    assert r.status == 200, (r, [q["answer"] for q in sb.requests() if q["method"] == "PATCH"])


def test_vapi_bought_number_gets_signed_requests(env, sb, d):
    n = buy(d, "vapi")
    settle()
    rc, lines, out = sb.ring(n["e164"], CALLER)
    assert out["endedReason"] == "assistant-request-returned-error", lines


def test_vapi_assign_keeps_an_attached_credential(env, sb, d):
    i, p = env.ids, P["vapi"]
    n = buy(d, "vapi")
    vapi_attach_credential(sb, n["e164"])
    r = api(d, "PATCH", "/v1/numbers/%d" % n["id"], {"agent_id": getattr(i, p["agent"])})
    assert r.status == 200, r      # (refused today for the reason of the test above)
    assert (sb.number("vapi", n["e164"])["server"] or {}).get("credentialId") == VAPI_CREDENTIAL


def test_ring_unknown_number(sb):
    rc, lines, out = sb.ring("+14155550999")
    assert rc == 1 and out["error"] == "unknown number", lines


def test_calls_row_attributes_the_inbound_call(env, sb, d):
    """The ledger's calls row names the number's agency, agent and the caller."""
    i, p = env.ids, P["retell"]
    n = buy(d, "retell", agent=getattr(i, p["agent"]))
    settle()
    rc, lines, out = sb.ring(n["e164"], "+14155550177", seconds=5)
    assert rc == 0, lines
    wait_ledger(env, out["call_id"])
    (dirn, agent, agency, status, connected, dur, frm, to), = calls_of(env, out["call_id"])
    assert (dirn, agent, agency, status, connected, dur, frm, to) == (
        "inbound", getattr(i, p["agent"]), i.agency_a, "ended", True, 5000, "+14155550177",
        n["e164"])


def test_vapi_nickname_limit_checked_before_the_provider(env, sb, d):
    r = api(d, "POST", "/v1/numbers", {"account": "vapi-a", "area_code": "415",
                                       "nickname": "n" * 41})
    assert r.status == 400 and "40" in r.json()["error"]["message"], r
    assert not [q for q in sb.requests() if q["path"].startswith("/vapi/")], sb.requests()


def test_retell_rename_reaches_the_provider(env, sb, d):
    n = buy(d, "retell", nickname="Before")
    r = api(d, "PATCH", "/v1/numbers/%d" % n["id"], {"nickname": "After"})
    assert r.status == 200, r
    assert sb.number("retell", n["e164"])["nickname"] == "After"


# ---- the command line: state survives a restart; fault and state commands; --strict ----

def test_state_survives_restart_and_cli_commands(tmp_path):
    s = SandboxProc(tmp_path / "sb", extra=["--strict"]).start()
    try:
        h = {"Authorization": "Bearer retell-key-a"}
        st, j = s.request("POST", "/retell/create-phone-number", {"area_code": 415,
                                                                  "nick_name": "x"}, h)
        assert st == 400 and "property nick_name should not exist" in j["message"], j
        st, j = s.request("POST", "/retell/create-phone-number", {"area_code": 415}, h)
        assert st == 201, j
        num = j["phone_number"]
        r = subprocess.run([sys.executable, str(SANDBOX), "fault", "--dir", str(s.dir), "GET",
                            "/retell/get-phone-number", "--status", "500", "--times", "1"],
                           stdout=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == 0 and json.loads(r.stdout)["faults"][0]["status"] == 500, r
        path = "/retell/get-phone-number/" + num.replace("+", "%2B")
        assert s.request("GET", path, headers=h)[0] == 500
        assert s.request("GET", path, headers=h)[0] == 200
    finally:
        s.stop()
    s = SandboxProc(tmp_path / "sb").start()
    try:
        r = subprocess.run([sys.executable, str(SANDBOX), "state", "--dir", str(s.dir)],
                           stdout=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == 0 and num in json.loads(r.stdout)["numbers"]["retell"], r.stdout
        st, j = s.request("GET", path, headers={"Authorization": "Bearer retell-key-a"})
        assert st == 200 and j["phone_number"] == num, j
    finally:
        s.stop()


def test_vapi_activating_number_has_no_digits_until_active(tmp_path):
    """Vapi's free numbers answer status "activating" first (what issue 12's pending purchase
    must handle): the sandbox holds the digits back for --vapi-activation seconds."""
    s = SandboxProc(tmp_path / "sb", extra=["--vapi-activation", "1"]).start()
    try:
        h = {"Authorization": "Bearer vapi-api-key-a"}
        st, j = s.request("POST", "/vapi/phone-number", {"provider": "vapi"}, h)
        assert st == 201 and j["status"] == "activating" and "number" not in j, j
        time.sleep(1.1)
        st, j = s.request("GET", "/vapi/phone-number/" + j["id"], headers=h)
        assert st == 200 and j["status"] == "active" and j["number"].startswith("+1415"), j
    finally:
        s.stop()
