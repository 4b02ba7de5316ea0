# test_admin_reads: the operator's reads (agents, accounts, clients, calls, usage, number search),
# outbound calls with variables and metadata, and the OpenAPI document (issue 12 items 6, 7, 9).
"""Each read scoped to the token's agency (agency B's rows never reach A) and, for a portal
token, to its client's rows while the client's portal_agent_visibility is on; filters,
pagination, strict query parameters; /v1/usage equal to `callroutectl usage --json`; the
variables and metadata of POST /v1/calls in the field each provider takes (tools/sandbox
checks their types); GET /v1/openapi.json is daemon/openapi.json.  Every admin answer here is
also checked against that document (support.openapi, through support.admin_api.api)."""

import json
import subprocess

import pytest

from support.admin_api import (TOKEN_A, TOKEN_B, TOKEN_PORTAL, TOKEN_PORTAL_B, api, assert_error)
from support.build import REPO, callrouted_bin, daemon_env
from support.data import NUM_B1, NUM_RET1, NUM_RET2, NUM_VAPI1
from support.net import http_request
from support.openapi import DOC_PATH
from support.sandbox import sandbox_daemon

TO = "+14155550188"
SECRETS = ("retell-key-a", "vapi-api-key-a", "vapi-secret-a", "vapi-bearer-secret-a",
           "bland-api-key-a", "bland-secret-a", "retell-key-b")


@pytest.fixture
def d(env, sb):
    return sandbox_daemon(env, sb)


def get(d, path, token=TOKEN_A, status=200):
    r = api(d, "GET", path, token=token)
    assert r.status == status, r
    return r.json()


def ids(rows):
    return [x["id"] for x in rows]


def visible(env, client, on=True):
    env.sql("UPDATE clients SET portal_agent_visibility = %s WHERE id = %s", on, client)


def assert_params_strict(d, path, good_param):
    """Unknown, repeated and ill-formed query parameters are 400 invalid naming them."""
    assert_error(api(d, "GET", path + "?bogus=1"), 400, "invalid", "bogus")
    assert_error(api(d, "GET", path + "?limit=0"), 400, "invalid", "limit")
    assert_error(api(d, "GET", path + "?limit=501"), 400, "invalid", "limit")
    assert_error(api(d, "GET", path + "?after=x"), 400, "invalid", "after")
    assert_error(api(d, "GET", "%s?%s&%s" % (path, good_param, good_param)), 400, "invalid",
                 ["given twice", good_param.split("=")[0]])


# ---- agents ----

def test_agents(env, d):
    i = env.ids
    a = get(d, "/v1/agents")
    assert ids(a["agents"]) == [i.agent_ret1, i.agent_ret2, i.agent_vapi1, i.agent_bland1], a
    assert a["next_after"] is None
    ret1 = a["agents"][0]
    assert ret1 == {"id": i.agent_ret1, "name": "Reception", "provider": "retell",
                    "provider_agent_id": "agent_ret_1",
                    "client": {"id": i.client_acme, "name": "Acme Dental"},
                    "active_numbers": 1}, ret1
    assert a["agents"][1]["client"] is None
    # filters
    assert ids(get(d, "/v1/agents?client=%d" % i.client_acme)["agents"]) == \
        [i.agent_ret1, i.agent_vapi1, i.agent_bland1]
    assert ids(get(d, "/v1/agents?provider=retell")["agents"]) == [i.agent_ret1, i.agent_ret2]
    assert ids(get(d, "/v1/agents?name=FRONT%20desk")["agents"]) == [i.agent_vapi1]
    # pages
    p1 = get(d, "/v1/agents?limit=3")
    assert ids(p1["agents"]) == [i.agent_ret1, i.agent_ret2, i.agent_vapi1]
    assert p1["next_after"] == i.agent_vapi1
    p2 = get(d, "/v1/agents?limit=3&after=%d" % p1["next_after"])
    assert ids(p2["agents"]) == [i.agent_bland1] and p2["next_after"] is None, p2
    # tenant isolation: B sees its own agent only, A nothing of B's even when asking for it
    assert ids(get(d, "/v1/agents", TOKEN_B)["agents"]) == [i.agent_b1]
    assert get(d, "/v1/agents?client=%d" % i.client_b)["agents"] == []
    # portal: nothing while visibility is off; its client's agents when on
    assert get(d, "/v1/agents", TOKEN_PORTAL)["agents"] == []
    visible(env, i.client_acme)
    assert ids(get(d, "/v1/agents", TOKEN_PORTAL)["agents"]) == \
        [i.agent_ret1, i.agent_vapi1, i.agent_bland1]
    assert get(d, "/v1/agents?client=%d" % i.client_b, TOKEN_PORTAL)["agents"] == []
    assert get(d, "/v1/agents", TOKEN_PORTAL_B)["agents"] == []
    visible(env, i.client_b)
    assert ids(get(d, "/v1/agents", TOKEN_PORTAL_B)["agents"]) == [i.agent_b1]
    assert_params_strict(d, "/v1/agents", "provider=vapi")
    assert_error(api(d, "GET", "/v1/agents?provider=twilio"), 400, "invalid", "provider")
    assert_error(api(d, "GET", "/v1/agents?client=0"), 400, "invalid", "client")
    assert_error(api(d, "GET", "/v1/agents", token=None), 401, "unauthorized")


# ---- accounts: no secrets; agency tokens only ----

def test_accounts(env, d):
    i = env.ids
    r = api(d, "GET", "/v1/accounts")
    assert r.status == 200, r
    for s in SECRETS:
        assert s.encode() not in r.body, (s, r.body)
    a = r.json()["accounts"]
    assert ids(a) == [i.acct_retell, i.acct_vapi, i.acct_vapi_bearer, i.acct_bland], a
    vapi = a[1]
    assert set(vapi) == {"id", "slug", "provider", "api_base_url", "webhook_auth",
                         "webhook_credential_id", "webhook_secret_set", "active_numbers"}, vapi
    assert (vapi["slug"], vapi["provider"], vapi["webhook_auth"], vapi["webhook_credential_id"],
            vapi["webhook_secret_set"], vapi["active_numbers"]) == \
        ("vapi-a", "vapi", "hmac", "cred-vapi-a", True, 1), vapi
    assert a[0]["webhook_secret_set"] is False and a[0]["webhook_auth"] is None
    assert ids(get(d, "/v1/accounts?provider=vapi")["accounts"]) == \
        [i.acct_vapi, i.acct_vapi_bearer]
    p1 = get(d, "/v1/accounts?limit=2")
    assert ids(p1["accounts"]) == [i.acct_retell, i.acct_vapi] and p1["next_after"] == i.acct_vapi
    r = api(d, "GET", "/v1/accounts", token=TOKEN_B)
    assert r.status == 200 and ids(r.json()["accounts"]) == [i.acct_retell_b], r
    assert b"retell-key-b" not in r.body
    visible(env, i.client_acme)
    assert_error(api(d, "GET", "/v1/accounts", token=TOKEN_PORTAL), 403, "forbidden")
    assert_params_strict(d, "/v1/accounts", "provider=bland")


# ---- clients ----

def test_clients(env, d):
    i = env.ids
    c = get(d, "/v1/clients")
    assert c == {"clients": [{"id": i.client_acme, "name": "Acme Dental",
                              "portal_agent_visibility": False, "agents": 3}],
                 "next_after": None}, c
    assert ids(get(d, "/v1/clients", TOKEN_B)["clients"]) == [i.client_b]
    env.sql("INSERT INTO clients (agency_id, name) VALUES (%s, 'Zeta Clinic')", i.agency_a)
    assert [x["name"] for x in get(d, "/v1/clients?name=CLINIC")["clients"]] == ["Zeta Clinic"]
    p1 = get(d, "/v1/clients?limit=1")
    assert ids(p1["clients"]) == [i.client_acme] and p1["next_after"] == i.client_acme
    assert get(d, "/v1/clients", TOKEN_PORTAL)["clients"] == []
    visible(env, i.client_acme)
    assert ids(get(d, "/v1/clients", TOKEN_PORTAL)["clients"]) == [i.client_acme]
    assert get(d, "/v1/clients", TOKEN_PORTAL_B)["clients"] == []
    assert_params_strict(d, "/v1/clients", "name=x")


# ---- calls: history with what the ledger billed ----

def insert_call(env, provider, pcid, direction, status, number, e164, agent, agency, client,
                started, ended=None, duration_ms=None, billed=None):
    cid = env.conn.execute(
        "INSERT INTO calls (provider, provider_call_id, direction, number_id, e164, agent_id, "
        "agency_id, client_id, from_number, to_number, status, connected, started_at, ended_at, "
        "duration_ms, end_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '+14155550123', %s, "
        "%s, %s, %s, %s, %s, %s) RETURNING id",
        (provider, pcid, direction, number, e164, agent, agency, client, e164, status,
         True if status == "ended" else None, started, ended, duration_ms,
         "user_hangup" if status == "ended" else None)).fetchone()[0]
    if billed is not None:
        env.conn.execute(
            "INSERT INTO usage_ledger (provider, provider_call_id, agency_id, client_id, "
            "agent_id, number_id, direction, started_at, ended_at, duration_ms, billed_seconds, "
            "rate_micros_per_min, amount_micros, recorded_by) VALUES (%s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, 150000, %s, 'test')",
            (provider, pcid, agency, client, agent, number, direction, started, ended,
             duration_ms, billed, billed * 150000 // 60))
    return cid


@pytest.fixture
def calls(env):
    i = env.ids
    c = {}
    c["in1"] = insert_call(env, "retell", "call_in1", "inbound", "ended", i.num_ret1, NUM_RET1,
                           i.agent_ret1, i.agency_a, i.client_acme, "2026-11-01T10:00:00Z",
                           "2026-11-01T10:01:15Z", 75000, billed=120)
    c["out1"] = insert_call(env, "vapi", "call_out1", "outbound", "in_progress", i.num_vapi1,
                            NUM_VAPI1, i.agent_vapi1, i.agency_a, i.client_acme,
                            "2026-11-02T09:00:00Z")
    c["in2"] = insert_call(env, "retell", "call_in2", "inbound", "ended", i.num_ret2, NUM_RET2,
                           i.agent_ret2, i.agency_a, None, "2026-11-03T12:00:00Z",
                           "2026-11-03T12:00:30Z", 30000, billed=60)
    c["b1"] = insert_call(env, "retell", "call_b1", "inbound", "ended", i.num_b1, NUM_B1,
                          i.agent_b1, i.agency_b, i.client_b, "2026-11-01T11:00:00Z",
                          "2026-11-01T11:02:00Z", 120000, billed=120)
    return c


def test_calls(env, d, calls):
    i = env.ids
    a = get(d, "/v1/calls")
    assert ids(a["calls"]) == [calls["in1"], calls["out1"], calls["in2"]], a
    in1 = a["calls"][0]
    assert in1 == {
        "id": calls["in1"], "provider": "retell", "provider_call_id": "call_in1",
        "direction": "inbound", "status": "ended",
        "number": {"id": i.num_ret1, "e164": NUM_RET1},
        "agent": {"id": i.agent_ret1, "name": "Reception"},
        "client": {"id": i.client_acme, "name": "Acme Dental"},
        "from": "+14155550123", "to": NUM_RET1, "connected": True,
        "started_at": "2026-11-01T10:00:00.000Z", "ended_at": "2026-11-01T10:01:15.000Z",
        "duration_ms": 75000, "end_reason": "user_hangup",
        "billed": {"billed_seconds": 120, "rate_micros_per_min": 150000,
                   "amount_micros": 300000, "amount_usd": "0.300000"}}, in1
    assert a["calls"][1]["billed"] is None and a["calls"][1]["ended_at"] is None
    assert a["calls"][2]["client"] is None

    def q(query, token=TOKEN_A):
        return ids(get(d, "/v1/calls?" + query, token)["calls"])
    assert q("number=%d" % i.num_ret1) == [calls["in1"]]
    assert q("agent=%d" % i.agent_vapi1) == [calls["out1"]]
    assert q("client=%d" % i.client_acme) == [calls["in1"], calls["out1"]]
    assert q("direction=outbound") == [calls["out1"]]
    assert q("status=ended") == [calls["in1"], calls["in2"]]
    assert q("provider=vapi") == [calls["out1"]]
    assert q("since=2026-11-02") == [calls["out1"], calls["in2"]]
    assert q("until=2026-11-02T09:00:00Z") == [calls["in1"]]
    assert q("since=2026-11-01T10:00:00.000Z&until=2026-11-03") == [calls["in1"], calls["out1"]]
    assert q("status=ended&agent=%d" % i.agent_ret2) == [calls["in2"]]
    assert q("provider_call_id=call_out1") == [calls["out1"]]
    assert q("provider_call_id=call_b1") == []
    p1 = get(d, "/v1/calls?limit=2")
    assert p1["next_after"] == calls["out1"]
    assert q("limit=2&after=%d" % calls["out1"]) == [calls["in2"]]
    # one call
    assert get(d, "/v1/calls/%d" % calls["in1"]) == in1
    assert_error(api(d, "GET", "/v1/calls/%d" % calls["b1"]), 404, "not_found", "no such call")
    assert_error(api(d, "GET", "/v1/calls/x"), 404, "not_found", "no such call")
    # isolation
    assert q("", TOKEN_B) == [calls["b1"]]
    assert q("number=%d" % i.num_b1) == []
    assert get(d, "/v1/calls/%d" % calls["b1"], TOKEN_B)["provider_call_id"] == "call_b1"
    # portal: its client's calls while visible
    assert q("", TOKEN_PORTAL) == []
    assert_error(api(d, "GET", "/v1/calls/%d" % calls["in1"], token=TOKEN_PORTAL), 404)
    visible(env, i.client_acme)
    assert q("", TOKEN_PORTAL) == [calls["in1"], calls["out1"]]
    assert get(d, "/v1/calls/%d" % calls["in1"], TOKEN_PORTAL)["id"] == calls["in1"]
    assert_error(api(d, "GET", "/v1/calls/%d" % calls["in2"], token=TOKEN_PORTAL), 404)
    assert q("", TOKEN_PORTAL_B) == []
    # strict parameters
    assert_params_strict(d, "/v1/calls", "status=ended")
    for bad in ("direction=sideways", "status=done", "since=2026-02-30", "since=yesterday",
                "until=2026-11-01T25:00:00Z", "until=2026-11-01T10:00:00", "number=-1"):
        assert_error(api(d, "GET", "/v1/calls?" + bad), 400, "invalid", bad.split("=")[0])
    assert_error(api(d, "GET", "/v1/calls/%d?x=1" % calls["in1"]), 400, "invalid",
                 ["x", "takes none"])


# ---- usage: callroutectl usage's groups, through the API ----

def ctl_usage(env, *args):
    r = subprocess.run([str(callrouted_bin().parent / "callroutectl"), "--database",
                        env.database_url, "usage", "--json"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                       env=daemon_env())
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def test_usage_is_callroutectl_usage(env, d, calls):
    i = env.ids
    for by in ("agency", "client", "agent", "number", "day"):
        for rng in ((), ("2026-11-01", "2026-11-01"), ("2026-11-02", None)):
            q = "by=%s" % by
            args = ["--agency", str(i.agency_a), "--by", by]
            if rng:
                q += "&from=%s" % rng[0]
                args += ["--from", rng[0]]
                if rng[1]:
                    q += "&to=%s" % rng[1]
                    args += ["--to", rng[1]]
            u = get(d, "/v1/usage?" + q)
            want = ctl_usage(env, *args)
            assert (u["by"], u["rows"], u["total"]) == (want["by"], want["rows"],
                                                       want["total"]), (q, u, want)
            assert u["from"] == (rng[0] if rng else None)
    u = get(d, "/v1/usage")
    assert u["by"] == "agency" and u["total"]["calls"] == 2 and \
        u["total"]["amount_micros"] == 450000, u
    assert get(d, "/v1/usage", TOKEN_B)["total"]["calls"] == 1
    # portal: its client's rows only, while visible
    assert get(d, "/v1/usage", TOKEN_PORTAL)["total"]["calls"] == 0
    visible(env, i.client_acme)
    u = get(d, "/v1/usage?by=client", TOKEN_PORTAL)
    assert [r["client"] for r in u["rows"]] == [str(i.client_acme)], u
    assert_error(api(d, "GET", "/v1/usage?by=week"), 400, "invalid", "by")
    assert_error(api(d, "GET", "/v1/usage?from=2026-13-01"), 400, "invalid", "from")
    assert_error(api(d, "GET", "/v1/usage?limit=5"), 400, "invalid", "limit")
    assert_error(api(d, "GET", "/v1/usage?to=2026-11-01&to=2026-11-02"), 400, "invalid",
                 "given twice")


# ---- GET /v1/numbers?e164= ----

def test_numbers_search_by_digits(env, d):
    i = env.ids

    def q(v, token=TOKEN_A):
        return ids(get(d, "/v1/numbers?e164=" + v, token)["numbers"])
    assert q("%2B1415555010") == [i.num_ret1, i.num_ret_free, i.num_ret2]
    assert q("+1415555010") == [i.num_ret1, i.num_ret_free, i.num_ret2]   # '+' read as ' '
    assert q("%2B14155550201") == [i.num_vapi1]
    assert q("0201") == [i.num_vapi1]
    assert q("5550") == [i.num_ret1, i.num_ret_free, i.num_ret2, i.num_vapi1,
                         i.num_vapi_bearer, i.num_bland1]
    assert q("%2B1415555020&provider=vapi&limit=1") == [i.num_vapi1]
    assert q("%2B4") == []
    assert q(NUM_B1[1:]) == []                       # agency B's number: absent for A
    assert q(NUM_B1[1:], TOKEN_B) == [i.num_b1]
    for bad in ("abc", "%2B", "1234567890123456", "%2B%2B1", "41a"):
        assert_error(api(d, "GET", "/v1/numbers?e164=" + bad), 400, "invalid", "e164")
    # a prefix is a range of the e164 btree: the same rows as startswith, carries included
    env.sql("INSERT INTO phone_numbers (agency_id, account_id, provider, e164) VALUES "
            "(%s, %s, 'retell', '+14199999999'), (%s, %s, 'retell', '+14200000000'), "
            "(%s, %s, 'retell', '+99912345')", i.agency_a, i.acct_retell, i.agency_a,
            i.acct_retell, i.agency_a, i.acct_retell)
    rows = env.sql("SELECT id, e164 FROM phone_numbers WHERE agency_id = %s ORDER BY id",
                   i.agency_a).fetchall()
    for prefix in ("+1", "+14", "+1419", "+14199", "+1419999999", "+142", "+141555502",
                   "+14155550199", "+9", "+999", "+9991234599", "+2"):
        assert q("%2B" + prefix[1:]) == [n for n, e in rows if e.startswith(prefix)], prefix
    with env.conn.transaction():
        env.conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in env.conn.execute(
            "EXPLAIN SELECT id FROM phone_numbers WHERE e164 >= '+1415' AND e164 < '+1416'"
        ).fetchall())
    assert "Index" in plan and "phone_numbers_e164" in plan, plan


# ---- POST /v1/calls: variables and metadata where each provider takes them ----

AGENT = {"retell": "agent_ret1", "vapi": "agent_vapi1", "bland": "agent_bland1"}
SLUG = {"retell": "ret-a", "vapi": "vapi-a", "bland": "bland-a"}
VARS = {"customer_name": "Ana Ruiz", "appointment": "Tue 10:30", "unicode_ok": "caf\u00e9 \u2615"}
META = {"crm_id": "c-991", "campaign.v2": {"wave": 3, "tags": ["a", "b"]}, "priority": 1}


def place(env, d, provider, **extra):
    i = env.ids
    r = api(d, "POST", "/v1/numbers", {"account": SLUG[provider], "area_code": "415",
                                       "agent_id": getattr(i, AGENT[provider])})
    assert r.status == 201, r
    body = {"agent_id": getattr(i, AGENT[provider]), "to": TO, "from": r.json()["e164"]}
    body.update(extra)
    return api(d, "POST", "/v1/calls", body)


@pytest.mark.parametrize("provider", ["retell", "vapi", "bland"])
def test_outbound_variables_and_metadata_reach_the_provider(env, sb, d, provider):
    r = place(env, d, provider, variables=VARS, metadata=META)
    assert r.status == 201, (r, [q.get("answer") for q in sb.requests()])
    c = sb.state()["calls"][provider][r.json()["call_id"]]
    if provider == "retell":
        got = (c["retell_llm_dynamic_variables"], c["metadata"])
    elif provider == "vapi":
        got = (c["assistantOverrides"]["variableValues"], c["assistantOverrides"]["metadata"])
    else:
        got = (c["request_data"], c["metadata"])
    assert got == (VARS, META), c
    odd = [(q["method"], q["path"], q["unknown_fields"]) for q in sb.requests()
           if q.get("unknown_fields")]
    assert not odd, odd
    # without them: nothing of the kind is sent
    r = place(env, d, provider, variables=None)
    assert r.status == 201, r
    c = sb.state()["calls"][provider][r.json()["call_id"]]
    assert not c.get("retell_llm_dynamic_variables") and not c.get("assistantOverrides") and \
        not c.get("request_data") and not c.get("metadata"), c


def test_sandbox_refuses_what_providers_refuse(sb):
    """The fake enforces the documented types: Retell's variables are strings, Vapi's
    assistantOverrides are an AssistantOverrides (unknown fields refused)."""
    st, j = sb.request("POST", "/retell/v2/create-phone-call",
                       {"from_number": "+14155550100", "to_number": TO,
                        "retell_llm_dynamic_variables": {"n": 1}},
                       {"Authorization": "Bearer retell-key-a"})
    assert st == 400 and "retell_llm_dynamic_variables" in json.dumps(j), (st, j)
    st, j = sb.request("POST", "/vapi/call", {"phoneNumberId": "x", "customer": {"number": TO},
                                              "assistantId": "a", "metadata": {}},
                       {"Authorization": "Bearer vapi-api-key-a"})
    assert st == 400 and "property metadata should not exist" in json.dumps(j), (st, j)
    st, j = sb.request("POST", "/vapi/call", {"phoneNumberId": "x", "customer": {"number": TO},
                                              "assistantId": "a",
                                              "assistantOverrides": {"variables": {}}},
                       {"Authorization": "Bearer vapi-api-key-a"})
    assert st == 400 and "assistantOverrides.property variables should not exist" in \
        json.dumps(j), (st, j)
    st, j = sb.request("POST", "/bland/v1/calls", {"phone_number": TO, "task": "t",
                                                   "request_data": "x"},
                       {"Authorization": "bland-api-key-a"})
    assert st == 400 and "request_data" in json.dumps(j), (st, j)


def test_outbound_context_limits(env, sb, d):
    i = env.ids
    base = {"agent_id": i.agent_ret1, "to": TO}
    cases = [
        ({"variables": {"n": 1}}, ["variables.n", "string"]),
        ({"variables": {"n": None}}, ["variables.n", "string"]),
        ({"variables": ["a"]}, ["variables", "object"]),
        ({"variables": "a=b"}, ["variables", "object"]),
        ({"variables": {"k%d" % n: "v" for n in range(33)}}, ["variables", "32"]),
        ({"variables": {"bad-key": "v"}}, ["variables", "key", "64"]),
        ({"variables": {"1st": "v"}}, ["variables", "digit"]),
        ({"variables": {"k" * 65: "v"}}, ["variables", "64"]),
        ({"variables": {"": "v"}}, ["variables", "key"]),
        ({"variables": {"k": "x" * 1025}}, ["variables.k", "1024"]),
        ({"variables": {"k": "a\u0000b"}}, []),   # jansson refuses a NUL in any string
        ({"variables": {"k%d" % n: "x" * 1000 for n in range(9)}}, ["8192"]),
        ({"metadata": "x"}, ["metadata", "object"]),
        ({"metadata": [1]}, ["metadata", "object"]),
        ({"metadata": {"k%d" % n: n for n in range(33)}}, ["metadata", "32"]),
        ({"metadata": {"a b": 1}}, ["metadata", "key"]),
        ({"metadata": {"blob": "x" * 8200}}, ["8192"]),
        ({"variables": {"k": "x" * 1000} | {"j%d" % n: "y" * 1000 for n in range(4)},
          "metadata": {"blob": "z" * 3500}}, ["together"]),
        ({"context": {}}, ["unknown field", "context"]),
    ]
    for extra, words in cases:
        assert_error(api(d, "POST", "/v1/calls", dict(base, **extra)), 400, "invalid", words)
    assert sb.requests() == [], sb.requests()
    # at the limits: accepted
    r = place(env, d, "retell", variables={"k%d" % n: "x" * 200 for n in range(32)},
              metadata={"m": "y" * 1000})
    assert r.status == 201, r


# ---- the OpenAPI document ----

def test_openapi_document_is_served(d):
    want = DOC_PATH.read_bytes()
    for token in (None, TOKEN_A):
        r = api(d, "GET", "/v1/openapi.json", token=token)
        assert r.status == 200 and r.body == want, r
        assert r.headers["content-type"].startswith("application/json"), r.headers
    doc = json.loads(want)
    assert doc["openapi"].startswith("3.1")
    r = http_request(d.admin_port, "HEAD", "/v1/openapi.json")
    assert r.status == 200 and r.body == b"", r
    assert_error(api(d, "POST", "/v1/openapi.json", body={}), 405, "method_not_allowed")


def test_openapi_covers_every_route():
    """Every route of daemon/api.c's and daemon/admin.c's tables is a path of the document
    (test hooks aside), and every path of the document is a route."""
    import re
    api_c = (REPO / "daemon" / "api.c").read_text()
    admin_c = (REPO / "daemon" / "admin.c").read_text()
    method = {"WIRE_GET": "get", "WIRE_POST": "post", "WIRE_PATCH": "patch",
              "WIRE_DELETE": "delete"}
    routes = set()
    for m, p in re.findall(r'\{ (WIRE_[A-Z]+), "(/[^"]*)", OP_', api_c):
        routes.add((method[m], p))
    for m, p, hook in re.findall(r'\{ (WIRE_[A-Z]+), "(/[^"]*)", admin_\w+, \w+, \w+, (\w+) \}',
                                 admin_c):
        if hook == "false":
            routes.add((method[m], p))
    doc = json.loads(DOC_PATH.read_text())
    documented = {(m, p) for p, item in doc["paths"].items() for m in item
                  if m != "parameters"}
    assert routes == documented, (sorted(routes - documented), sorted(documented - routes))


# ---- callroutectl: the matching commands ----

def ctl(d, *args, token=TOKEN_A):
    e = dict(daemon_env(), CALLROUTED_URL="http://127.0.0.1:%d" % d.admin_port,
             CALLROUTED_TOKEN=token)
    return subprocess.run([str(callrouted_bin().parent / "callroutectl")] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                          env=e)


def ctl_json(d, *args, token=TOKEN_A):
    r = ctl(d, "--json", *args, token=token)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def test_callroutectl_reads(env, d, calls):
    i = env.ids
    assert ctl_json(d, "agents", "list") == get(d, "/v1/agents")
    assert ctl_json(d, "agents", "list", "--provider", "retell", "--name", "after") == \
        get(d, "/v1/agents?provider=retell&name=after")
    assert ctl_json(d, "agents", "list", "--limit", "1", "--all") == \
        dict(get(d, "/v1/agents?limit=500"))
    assert ctl_json(d, "clients", "list", "--name", "Acme Dental") == \
        get(d, "/v1/clients?name=Acme%20Dental")
    assert ctl_json(d, "accounts", "list", "--provider", "vapi") == \
        get(d, "/v1/accounts?provider=vapi")
    assert ctl_json(d, "calls", "list", "--status", "ended", "--since", "2026-11-01T10:00:00Z",
                    "--until", "2026-11-03") == \
        get(d, "/v1/calls?status=ended&since=2026-11-01T10:00:00Z&until=2026-11-03")
    assert ctl_json(d, "calls", "show", calls["in1"]) == get(d, "/v1/calls/%d" % calls["in1"])
    assert ids(ctl_json(d, "calls", "list", "--call-id", "call_in2")["calls"]) == [calls["in2"]]
    n = ctl_json(d, "numbers", "list", "--e164", "+1415555010")
    assert ids(n["numbers"]) == [i.num_ret1, i.num_ret_free, i.num_ret2], n
    assert ids(ctl_json(d, "numbers", "list", "--e164", "0201")["numbers"]) == [i.num_vapi1]
    # tables
    r = ctl(d, "accounts", "list")
    assert r.returncode == 0 and "vapi-a" in r.stdout and "cred-vapi-a" in r.stdout, r
    for s in SECRETS:
        assert s not in r.stdout, (s, r.stdout)
    r = ctl(d, "calls", "list")
    assert r.returncode == 0 and r.stdout.splitlines()[0].split()[:4] == \
        ["ID", "PROVIDER", "DIRECTION", "STATUS"] and "0.300000" in r.stdout, r
    r = ctl(d, "calls", "show", calls["in1"])
    assert r.returncode == 0 and "call_in1" in r.stdout and "120 s, 0.300000 USD" in r.stdout, r
    r = ctl(d, "agents", "list")
    assert r.returncode == 0 and "Vapi Front Desk" in r.stdout and "Acme Dental" in r.stdout, r
    r = ctl(d, "clients", "list", token=TOKEN_B)
    assert r.returncode == 0 and "B Client" in r.stdout and "Acme" not in r.stdout, r
    # usage errors (2) before any request, API refusals (1)
    for args in (("agents", "list", "--provider", "twilio"), ("agents", "list", "--bogus"),
                 ("calls", "list", "--direction", "up"), ("calls", "list", "--since", "today"),
                 ("calls", "show", "x"), ("calls", "show"), ("clients", "list", "extra"),
                 ("numbers", "list", "--e164", "12a"), ("accounts", "list", "--limit", "0"),
                 ("agents", "list", "--client", "1", "--client", "2"),
                 ("calls", "place", "--agent", "1", "--to", TO, "--variables", "[1]"),
                 ("calls", "place", "--agent", "1", "--to", TO, "--metadata", "{")):
        r = ctl(d, *args)
        assert r.returncode == 2, (args, r)
    visible(env, i.client_acme)
    r = ctl(d, "accounts", "list", token=TOKEN_PORTAL)
    assert r.returncode == 1 and "403 forbidden" in r.stderr, r
    r = ctl(d, "calls", "show", calls["b1"])
    assert r.returncode == 1 and "404 not_found" in r.stderr, r


def test_callroutectl_places_a_call_with_context(env, sb, d):
    i = env.ids
    r = api(d, "POST", "/v1/numbers", {"account": "bland-a", "area_code": "415",
                                       "agent_id": i.agent_bland1})
    assert r.status == 201, r
    out = ctl_json(d, "calls", "place", "--agent", i.agent_bland1, "--to", TO,
                   "--from", r.json()["e164"], "--variables", json.dumps(VARS), "--metadata", json.dumps(META))
    c = sb.state()["calls"]["bland"][out["call_id"]]
    assert (c["request_data"], c["metadata"]) == (VARS, META), c
    r = ctl(d, "calls", "place", "--agent", i.agent_bland1, "--to", TO, "--from",
            r.json()["e164"], "--variables", '{"n": 1}')
    assert r.returncode == 1 and "variables.n" in r.stderr, r
