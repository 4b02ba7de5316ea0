# test_admin_api: the admin API (/v1/numbers, /v1/calls) against the provider sandbox.
"""Acceptance (issue 5): numbers bought, assigned, renamed and released through each provider's
REST API (the provider sandbox, HTTPS with its own CA, which enforces each API's documented
auth, fields and limits and records every request), routing following
within a second; outbound calls with the agent's number as caller ID; provider errors, time-outs
and a wrong certificate leave the database unchanged; tenant isolation and the client portal;
request validation and pagination."""

import time

import pytest

from support.admin_api import (KEYS, TOKEN_A, TOKEN_B, TOKEN_PORTAL, TOKEN_PORTAL_B, TOKEN_REVOKED,
                               VAPI_CREDENTIAL, api, assert_error, number_row, numbers_snapshot,
                               until_routed)
from support.api_sandbox import ApiSandbox, esc, start_api
from support.build import SLOW
from support.data import (BLAND_SECRET, BLAND_SLUG, NUM_BLAND1, NUM_RET1, NUM_RET2, NUM_RET_FREE,
                          NUM_VAPI1, NUM_VAPI_BEARER)
from support.pki import make_test_pki
from support.signing import sw

TO = "+14155550188"


# ---- fixtures ----

@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def fake(tmp_path):
    """The provider sandbox of this test (started by start_api with the database's accounts
    and numbers)."""
    f = ApiSandbox(tmp_path / "sandbox")
    yield f
    f.stop()


@pytest.fixture
def d(env, fake):
    return start_api(env, fake)


def webhook(d, provider, slug):
    return "http://127.0.0.1:%d/v1/webhooks/%s/%s" % (d.port, provider, slug)


def vapi_pnid(nid):
    return "pn_seed_%d" % nid


# Per provider: account, an agent of client Acme Dental, its provider id, the auth header.
P = {
    "retell": {"slug": "ret-a", "agent": "agent_ret1", "pid": "agent_ret_1",
               "agent_name": "Reception", "auth": "Bearer retell-key-a"},
    "vapi": {"slug": "vapi-a", "agent": "agent_vapi1", "pid": "asst_vapi_1",
             "agent_name": "Vapi Front Desk", "auth": "Bearer vapi-api-key-a"},
    "bland": {"slug": "bland-a", "agent": "agent_bland1", "pid": "bland_agent_1",
              "agent_name": "Bland Intake", "auth": "bland-api-key-a"},
}
PROVIDERS = list(P)

NUMBER_KEYS = {"id", "e164", "provider", "account", "nickname", "agent", "client", "status",
               "created_at", "released_at"}


def assert_auth(req, provider, slug=None):
    want = P[provider]["auth"] if slug is None else (
        KEYS[slug] if provider == "bland" else "Bearer " + KEYS[slug])
    assert req.headers.get("authorization") == want, (req, req.headers)


VAPI_OWN = ("assistantId", "squadId", "workflowId")


def assert_assign_requests(d, reqs, provider, e164, pnid, pid):
    """reqs are all the provider's requests of one "point this number at agent pid (None: at no
    agent)" change, as each provider's documentation wants them."""
    for q in reqs:
        assert_auth(q, provider)
    if provider == "retell":
        assert len(reqs) == 1, reqs
        req, b = reqs[0], reqs[0].json
        assert isinstance(b, dict), ("no JSON body received (Content-Length: %r)"
                                     % req.headers.get("content-length"), req)
        assert (req.method, req.path) == ("PATCH", "/update-phone-number/" + esc(e164)), req
        assert b.get("inbound_webhook_url") == webhook(d, "retell", "ret-a"), b
        if pid:
            assert [a.get("agent_id") for a in b.get("inbound_agents") or []] == [pid], b
        else:
            assert b.get("inbound_agents") in ([], None) and "inbound_agents" in b, b
    elif provider == "vapi":
        # read-modify-write: a PATCH replaces server whole (UpdateVapiPhoneNumberDTO)
        assert len(reqs) == 2, reqs
        got, req = reqs
        assert (got.method, got.path, got.raw) == ("GET", "/phone-number/" + pnid, b""), got
        assert (req.method, req.path) == ("PATCH", "/phone-number/" + pnid), req
        b = req.json
        assert isinstance(b, dict), req
        # the request type's discriminator; never null for assistantId/squadId/workflowId
        # (typed string): absent, so every call asks our webhook
        assert b.get("provider") == "vapi", b
        assert not [k for k in VAPI_OWN if k in b], b
        assert set(b) <= {"provider", "server", "name"}, b
        want = dict(got.answer.get("server") or {})
        want.update(url=webhook(d, "vapi", "vapi-a"), credentialId=VAPI_CREDENTIAL)
        assert b.get("server") == want, (b, got.answer)   # nothing of the operator's dropped
    else:
        hook = webhook(d, "bland", BLAND_SLUG)
        for q in reqs:
            assert (q.method, q.path) == ("POST", "/v1/inbound/" + esc(e164)), q
            assert isinstance(q.json, dict), q
        if pid:
            # the pathway first (setting one nulls dynamic_data), then the look-up alone
            assert len(reqs) == 2, reqs
            assert reqs[0].json == {"pathway_id": pid, "webhook": hook}, reqs[0]
            b = reqs[1].json
            assert sorted(b) == ["dynamic_data", "prompt"], b
            dd = b.get("dynamic_data")
            assert isinstance(dd, list) and dd, b
            assert dd[0].get("url") == hook, b
            assert dd[0].get("headers", {}).get("Authorization") == \
                "Bearer " + sw.bland_dynamic_token(BLAND_SECRET, BLAND_SLUG), b
        else:
            assert len(reqs) == 1, reqs
            b = reqs[0].json
            assert b.get("webhook") == hook, b
            assert "pathway_id" in b and b["pathway_id"] is None, b


def assert_number_json(n, **want):
    assert NUMBER_KEYS <= set(n), n
    assert isinstance(n["id"], int) and n["id"] > 0, n
    assert isinstance(n["created_at"], str) and n["created_at"].startswith("20"), n
    for k, v in want.items():
        assert n[k] == v, (k, n)


# ---- 1. purchase ----

@pytest.mark.parametrize("provider", PROVIDERS)
def test_buy_number_with_agent_routes_to_it(env, fake, d, provider):
    i, p = env.ids, P[provider]
    agent = getattr(i, p["agent"])
    n_before = len(numbers_snapshot(env))
    r = api(d, "POST", "/v1/numbers", {"account": p["slug"], "area_code": "415",
                                       "nickname": "Main line", "agent_id": agent})
    assert r.status == 201, r
    n = r.json()
    reqs = fake.requests
    assert reqs, "the fake provider received nothing"
    buy = reqs[0]
    bought = buy.answer
    e164 = bought.get("number") if provider == "vapi" else bought["phone_number"]
    assert_number_json(n, e164=e164, provider=provider, account=p["slug"], nickname="Main line",
                       status="active", released_at=None,
                       agent={"id": agent, "name": p["agent_name"]},
                       client={"id": i.client_acme, "name": "Acme Dental"})

    # the purchase request the provider expects
    assert_auth(buy, provider)
    b = buy.json
    hook = webhook(d, provider, p["slug"])
    if provider == "retell":
        assert (buy.method, buy.path) == ("POST", "/create-phone-number"), buy
        assert b["area_code"] == 415 and b.get("inbound_webhook_url") == hook, b
        assert b.get("nickname") == "Main line", b
    elif provider == "vapi":
        assert (buy.method, buy.path) == ("POST", "/phone-number"), buy
        assert b.get("provider") == "vapi" and str(b.get("numberDesiredAreaCode")) == "415", b
        assert b.get("server") == {"url": hook, "credentialId": VAPI_CREDENTIAL}, b
        assert not [k for k in VAPI_OWN if k in b], b
    else:
        assert (buy.method, buy.path) == ("POST", "/numbers/purchase"), buy
        assert str(b.get("area_code")) == "415", b
        assert not buy.headers["authorization"].lower().startswith("bearer"), buy.headers

    # the provider was pointed at the agent (in the purchase or in a follow-up request)
    assert_assign_requests(d, reqs[1:], provider, e164,
                           bought["id"] if provider == "vapi" else None, p["pid"])

    # recorded, and routable to the agent
    row = number_row(env, n["id"])
    assert row["e164"] == e164 and row["agent_id"] == agent and row["status"] == "active", row
    assert row["provider_number_id"] == (bought["id"] if provider == "vapi" else e164), row
    assert len(numbers_snapshot(env)) == n_before + 1
    until_routed(d, provider, e164, p["pid"], "bought %s number" % provider)
    g = api(d, "GET", "/v1/numbers/%d" % n["id"])
    assert g.status == 200 and g.json() == n, (g, n)

    # secrets never logged
    log = d.log()
    for secret in (KEYS[p["slug"]], TOKEN_A, BLAND_SECRET):
        assert secret not in log, "secret %r in the daemon log" % secret


@pytest.mark.parametrize("provider", PROVIDERS)
def test_buy_number_without_agent(env, fake, d, provider):
    p = P[provider]
    r = api(d, "POST", "/v1/numbers", {"account": p["slug"], "area_code": 212})
    assert r.status == 201, r
    n = r.json()
    reqs = fake.requests
    assert len(reqs) == 1, reqs           # the purchase, nothing to bind
    assert_auth(reqs[0], provider)
    e164 = n["e164"]
    assert e164.startswith("+1212"), n
    assert_number_json(n, provider=provider, account=p["slug"], nickname=None, agent=None,
                       client=None, status="active", released_at=None)
    assert number_row(env, n["id"])["agent_id"] is None
    until_routed(d, provider, e164, None, "unassigned bought number")


# ---- 2. assign, reassign, unassign, rename ----

def unassigned_number(env, fake, d, provider):
    """(id, e164, provider_number_id) of an active, unassigned number of provider (one the
    account already had at the provider)."""
    i = env.ids
    if provider == "retell":
        return i.num_ret_free, NUM_RET_FREE, None
    acct, e164 = ((i.acct_vapi, "+14155550202") if provider == "vapi"
                  else (i.acct_bland, "+14155550302"))
    pnid = "pn_seed_free" if provider == "vapi" else None
    nid = env.sql("INSERT INTO phone_numbers (agency_id, account_id, provider, e164, "
                  "provider_number_id) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                  i.agency_a, acct, provider, e164, pnid).fetchone()[0]
    fake.add_numbers(env, d)
    return nid, e164, pnid


def second_agent(env, provider):
    pid = "%s_agent_second" % provider
    aid = env.sql("INSERT INTO agents (agency_id, client_id, provider, provider_agent_id, name) "
                  "VALUES (%s, NULL, %s, %s, 'Second') RETURNING id",
                  env.ids.agency_a, provider, pid).fetchone()[0]
    return aid, pid


@pytest.mark.parametrize("provider", PROVIDERS)
def test_assign_reassign_unassign_rename(env, fake, d, provider):
    i, p = env.ids, P[provider]
    nid, e164, pnid = unassigned_number(env, fake, d, provider)
    a1, pid1 = getattr(i, p["agent"]), p["pid"]
    a2, pid2 = second_agent(env, provider)
    path = "/v1/numbers/%d" % nid

    for agent, pid, what in ((a1, pid1, "assign"), (a2, pid2, "reassign"),
                             (None, None, "unassign")):
        fake.clear()
        r = api(d, "PATCH", path, {"agent_id": agent})
        assert r.status == 200, (what, r, fake.requests, fake.handshake_failures)
        n = r.json()
        assert n["id"] == nid and n["e164"] == e164, n
        assert (n["agent"] or {}).get("id") == agent, (what, n)
        assert_assign_requests(d, fake.requests, provider, e164, pnid, pid)
        assert number_row(env, nid)["agent_id"] == agent, what
        until_routed(d, provider, e164, pid, "%s via PATCH (%s)" % (what, provider))

    # rename: sent where the provider shows a name (Retell nickname, Vapi name; Bland has none)
    fake.clear()
    r = api(d, "PATCH", path, {"nickname": "Front line"})
    assert r.status == 200, r
    assert r.json()["nickname"] == "Front line" and r.json()["agent"] is None, r
    assert number_row(env, nid)["nickname"] == "Front line"
    time.sleep(0.1)
    reqs = fake.requests
    for q in reqs:
        assert_auth(q, provider)
    if provider == "retell":
        assert [(q.method, q.path, q.json) for q in reqs] == [
            ("PATCH", "/update-phone-number/" + esc(e164), {"nickname": "Front line"})], reqs
    elif provider == "vapi":
        assert [(q.method, q.path, q.json) for q in reqs] == [
            ("GET", "/phone-number/" + pnid, None),
            ("PATCH", "/phone-number/" + pnid, {"provider": "vapi", "name": "Front line"})], reqs
    else:
        assert reqs == [], "Bland has no name: nothing to send %r" % reqs


# ---- 3. release ----

def assigned_number(env, provider):
    i = env.ids
    return {"retell": (i.num_ret1, NUM_RET1, None),
            "vapi": (i.num_vapi1, NUM_VAPI1, vapi_pnid(i.num_vapi1)),
            "bland": (i.num_bland1, NUM_BLAND1, None)}[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_release(env, fake, d, provider):
    p = P[provider]
    nid, e164, pnid = assigned_number(env, provider)
    until_routed(d, provider, e164, p["pid"], "before release")
    r = api(d, "DELETE", "/v1/numbers/%d" % nid)
    assert r.status == 200, r
    n = r.json()
    assert_number_json(n, id=nid, e164=e164, status="released", agent=None)
    assert isinstance(n["released_at"], str), n
    reqs = fake.requests
    assert len(reqs) == 1, reqs
    q = reqs[0]
    assert_auth(q, provider)
    row = number_row(env, nid)
    assert row["status"] == "released" and row["agent_id"] is None and row["released_at"], row
    if provider == "retell":
        assert (q.method, q.path) == ("DELETE", "/delete-phone-number/" + esc(e164)), q
    elif provider == "vapi":
        assert (q.method, q.path) == ("DELETE", "/phone-number/" + pnid), q
    else:
        assert_assign_requests(d, [q], provider, e164, None, None)   # an unbind
        assert n.get("provider_note"), "Bland's release must say it only unbound: %r" % n
        assert row["provider_released"] is False, row
    if provider != "bland":
        assert "provider_note" not in n, n
        assert row["provider_released"] is True, row
    until_routed(d, provider, e164, None, "release via DELETE (%s)" % provider)

    fake.clear()
    assert_error(api(d, "DELETE", "/v1/numbers/%d" % nid), 409)
    assert_error(api(d, "PATCH", "/v1/numbers/%d" % nid, {"agent_id": getattr(env.ids,
                                                                             p["agent"])}), 409)
    assert fake.requests == []
    g = api(d, "GET", "/v1/numbers/%d" % nid)
    assert g.status == 200 and g.json()["status"] == "released", g


# ---- 4. outbound calls ----

@pytest.mark.parametrize("provider", PROVIDERS)
def test_call_uses_agents_number_as_caller_id(env, fake, d, provider):
    i, p = env.ids, P[provider]
    agent = getattr(i, p["agent"])
    nid, e164, pnid = assigned_number(env, provider)
    r = api(d, "POST", "/v1/calls", {"agent_id": agent, "to": TO})
    assert r.status == 201, r
    reqs = fake.requests
    assert len(reqs) == 1, reqs
    q = reqs[0]
    assert_auth(q, provider)
    b = q.json
    if provider == "retell":
        assert (q.method, q.path) == ("POST", "/v2/create-phone-call"), q
        assert b["from_number"] == e164 and b["to_number"] == TO, b
        assert b.get("override_agent_id") == p["pid"], b
        call_id = q.answer["call_id"]
    elif provider == "vapi":
        assert (q.method, q.path) == ("POST", "/call"), q
        assert b["phoneNumberId"] == pnid and b["customer"]["number"] == TO, b
        assert b.get("assistantId") == p["pid"], b
        call_id = q.answer["id"]
    else:
        assert (q.method, q.path) == ("POST", "/v1/calls"), q
        assert b["from"] == e164 and b["phone_number"] == TO, b
        assert b.get("pathway_id") == p["pid"], b
        call_id = q.answer["call_id"]
    j = r.json()
    assert j["call_id"] == call_id, j
    assert j.get("from") == e164 and j.get("to") == TO, j


def test_call_from_given_number_and_default_lowest(env, fake, d):
    i = env.ids
    env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", i.agent_ret1, i.num_ret_free)
    r = api(d, "POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": TO,
                                     "from": NUM_RET_FREE})
    assert r.status == 201, r
    assert fake.requests[-1].json["from_number"] == NUM_RET_FREE, fake.requests
    r = api(d, "POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": TO})
    assert r.status == 201, r
    assert fake.requests[-1].json["from_number"] == NUM_RET1, fake.requests  # lowest id


def test_call_from_number_of_another_account_uses_that_account(env, fake, d):
    """agent_vapi1 has numbers on two Vapi accounts: calling from the second number must go
    through the account that holds it (its key, its number id)."""
    i = env.ids
    r = api(d, "POST", "/v1/calls", {"agent_id": i.agent_vapi1, "to": TO,
                                     "from": NUM_VAPI_BEARER})
    assert r.status == 201, r
    q = fake.requests[-1]
    assert q.json["phoneNumberId"] == vapi_pnid(i.num_vapi_bearer), q
    assert_auth(q, "vapi", slug="vapi-bearer-a")


def test_call_errors(env, fake, d):
    i = env.ids
    # "from" that is not one of the agent's numbers
    assert_error(api(d, "POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": TO,
                                              "from": NUM_RET2}), 422)
    # an agent without a number
    lonely = env.sql("INSERT INTO agents (agency_id, provider, provider_agent_id, name) "
                     "VALUES (%s, 'retell', 'agent_lonely', 'Lonely') RETURNING id",
                     i.agency_a).fetchone()[0]
    e = assert_error(api(d, "POST", "/v1/calls", {"agent_id": lonely, "to": TO}), 409)
    assert "number" in e["message"], e
    # an agent whose only number was released
    env.sql("UPDATE phone_numbers SET status = 'released', agent_id = NULL, "
            "released_at = now() WHERE id = %s", i.num_ret2)
    assert_error(api(d, "POST", "/v1/calls", {"agent_id": i.agent_ret2, "to": TO}), 409)
    # no such agent
    assert_error(api(d, "POST", "/v1/calls", {"agent_id": 999999, "to": TO}), 404)
    assert fake.requests == []


# ---- 5. provider errors: passed back, nothing changes locally ----

def test_purchase_refused_4xx(env, fake, d):
    fake.on("retell", "POST", "/create-phone-number", 400,
            {"message": "No phone numbers of area code 415 are available"})
    before = numbers_snapshot(env)
    r = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415",
                                       "agent_id": env.ids.agent_ret1})
    e = assert_error(r, 422, "provider_refused",
                     "No phone numbers of area code 415 are available")
    assert len(fake.requests) == 1, fake.requests
    assert numbers_snapshot(env) == before, e


ASSIGN_4XX = {
    "retell": (400, {"message": "inbound_agents[0].agent_id: agent not found"},
               "agent not found"),
    "vapi": (400, {"message": ["server.url must be a URL address"], "error": "Bad Request",
                   "statusCode": 400}, "server.url must be a URL address"),
    "bland": (400, {"data": None, "errors": [{"error": "INVALID_PATHWAY",
                                              "message": "Pathway not found"}]},
              "Pathway not found"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_assign_refused_4xx_changes_nothing(env, fake, d, provider):
    p = P[provider]
    nid, e164, pnid = assigned_number(env, provider)
    a2, _ = second_agent(env, provider)
    status, body, msg = ASSIGN_4XX[provider]
    prefix = {"retell": "/update-phone-number/", "vapi": "/phone-number/",
              "bland": "/v1/inbound/"}[provider]
    fake.on(provider, "PATCH" if provider != "bland" else "POST", prefix, status, body)
    before = numbers_snapshot(env)
    r = api(d, "PATCH", "/v1/numbers/%d" % nid, {"agent_id": a2, "nickname": "new name"})
    assert_error(r, 422, "provider_refused", msg)
    # Vapi: the read, then the refused PATCH; Bland: the pathway request, refused, is the first
    assert [q.method for q in fake.requests] == {"retell": ["PATCH"], "vapi": ["GET", "PATCH"],
                                                 "bland": ["POST"]}[provider], fake.requests
    assert numbers_snapshot(env) == before
    time.sleep(0.3)
    until_routed(d, provider, e164, p["pid"], "unchanged routing")


def test_release_refused_404(env, fake, d):
    i = env.ids
    fake.on("retell", "DELETE", "/delete-phone-number/", 404,
            {"message": "Phone number not found"})
    before = numbers_snapshot(env)
    assert_error(api(d, "DELETE", "/v1/numbers/%d" % i.num_ret1), 404, "provider_refused",
                 "Phone number not found")
    assert numbers_snapshot(env) == before
    until_routed(d, "retell", NUM_RET1, "agent_ret_1", "unchanged routing")


def test_call_refused_4xx_bland(env, fake, d):
    fake.on("bland", "POST", "/v1/calls", 400,
            {"status": "error", "message": "Invalid from number"})
    assert_error(api(d, "POST", "/v1/calls", {"agent_id": env.ids.agent_bland1, "to": TO}),
                 422, "provider_refused", "Invalid from number")


def test_provider_5xx_is_502_and_changes_nothing(env, fake, d):
    i = env.ids
    fake.on("retell", "POST", "/create-phone-number", 500, {"message": "internal error"})
    fake.on("retell", "PATCH", "/update-phone-number/", 503, {"message": "try later"})
    fake.on("retell", "DELETE", "/delete-phone-number/", 500, {})
    fake.on("retell", "POST", "/v2/create-phone-call", 502, {"message": "bad gateway"})
    before = numbers_snapshot(env)
    # a purchase answered 5xx may have bought (issue 12 item 4): recorded pending, 202
    r = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"})
    assert r.status == 202 and r.json()["status"] == "pending", r
    assert "answered 500" in r.json()["provider_note"], r
    pending = r.json()["id"]
    env.sql("DELETE FROM phone_numbers WHERE id = %s AND status = 'pending'", pending)
    assert_error(api(d, "PATCH", "/v1/numbers/%d" % i.num_ret1,
                     {"agent_id": i.agent_ret2}), 502)
    assert_error(api(d, "PATCH", "/v1/numbers/%d" % i.num_ret1, {"agent_id": None}), 502)
    assert_error(api(d, "DELETE", "/v1/numbers/%d" % i.num_ret1), 502)
    assert_error(api(d, "POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": TO}), 502)
    assert len(fake.requests) == 5, fake.requests
    assert numbers_snapshot(env) == before
    until_routed(d, "retell", NUM_RET1, "agent_ret_1", "unchanged routing")


def test_provider_hang_is_504_and_changes_nothing(env, fake):
    d = start_api(env, fake, provider_timeout="2s")
    i = env.ids
    fake.on("retell", "POST", "/create-phone-number", 201, {"phone_number": "+14155557999"},
            delay=3.0)
    fake.on("retell", "PATCH", "/update-phone-number/", 200, {}, delay=3.0)
    before = numbers_snapshot(env)
    t0 = time.monotonic()
    # a purchase without an answer may have bought (issue 12 item 4): recorded pending, 202
    r = api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"})
    took = time.monotonic() - t0
    assert 1.5 < took < 2.9 * SLOW, "answered after %.2f s with provider_timeout 2s" % took
    assert r.status == 202 and r.json()["status"] == "pending", r
    e = r.json()
    assert "provider_timeout" in e["provider_note"] and e["e164"] is None, e
    env.sql("DELETE FROM phone_numbers WHERE id = %s AND status = 'pending'", e["id"])
    assert_error(api(d, "PATCH", "/v1/numbers/%d" % i.num_ret1, {"agent_id": i.agent_ret2}),
                 504)
    assert len(fake.requests) == 2, fake.requests
    time.sleep(1.2)   # the sandbox's late answers arrive: still nothing may change
    assert numbers_snapshot(env) == before, e
    until_routed(d, "retell", NUM_RET1, "agent_ret_1", "unchanged routing")


# ---- 6. TLS: the certificate must name the host and chain to the configured CA ----

def test_wrong_host_certificate_is_refused(env, pki, tmp_path):
    fake = ApiSandbox(tmp_path / "wrong", pki={"ca.pem": pki.ca_cert, "server.pem": pki.wrong_cert,
                                               "server.key": pki.wrong_key})
    try:
        d = start_api(env, fake, pki.ca_cert)
        i = env.ids
        before = numbers_snapshot(env)
        assert_error(api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"}),
                     502, contains="certificate")
        assert_error(api(d, "PATCH", "/v1/numbers/%d" % i.num_ret1,
                         {"agent_id": i.agent_ret2}), 502, contains="certificate")
        assert fake.requests == [], fake.requests
        assert fake.handshake_failures, "the sandbox saw no refused handshake"
        assert numbers_snapshot(env) == before
    finally:
        fake.stop()


def test_untrusted_ca_is_refused(env, fake, pki):
    d = start_api(env, fake, pki.other_ca_cert)
    before = numbers_snapshot(env)
    assert_error(api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"}),
                 502, contains="certificate")
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before


# ---- 7. tenant isolation, the client portal, authentication ----

def list_ids(d, token, query=""):
    r = api(d, "GET", "/v1/numbers" + query, token=token)
    assert r.status == 200, r
    return [n["id"] for n in r.json()["numbers"]]


def agency_a_numbers(i):
    return sorted([i.num_ret1, i.num_ret_free, i.num_ret2, i.num_vapi1, i.num_vapi_bearer,
                   i.num_bland1])


def test_agency_cannot_read_other_agency(env, fake, d):
    i = env.ids
    assert list_ids(d, TOKEN_A) == agency_a_numbers(i)
    assert list_ids(d, TOKEN_B) == [i.num_b1]
    absent = assert_error(api(d, "GET", "/v1/numbers/999999"), 404)
    other = assert_error(api(d, "GET", "/v1/numbers/%d" % i.num_b1), 404)
    assert other == absent, "another agency's number must look absent"
    assert_error(api(d, "GET", "/v1/numbers/%d" % i.num_ret1, token=TOKEN_B), 404)
    assert list_ids(d, TOKEN_A, "?agent=%d" % i.agent_b1) == []
    assert list_ids(d, TOKEN_A, "?client=%d" % i.client_b) == []


def test_agency_cannot_write_other_agency(env, fake, d):
    i = env.ids
    before = numbers_snapshot(env)
    nb = "/v1/numbers/%d" % i.num_b1
    assert_error(api(d, "PATCH", nb, {"nickname": "mine"}), 404)
    assert_error(api(d, "PATCH", nb, {"agent_id": i.agent_ret1}), 404)
    assert_error(api(d, "PATCH", nb, {"agent_id": None}), 404)
    assert_error(api(d, "DELETE", nb), 404)
    assert_error(api(d, "POST", "/v1/calls", {"agent_id": i.agent_b1, "to": TO}), 404)
    assert_error(api(d, "POST", "/v1/numbers", {"account": "ret-b", "area_code": "415"}), 404)
    # and B cannot touch A's
    assert_error(api(d, "DELETE", "/v1/numbers/%d" % i.num_ret1, token=TOKEN_B), 404)
    assert_error(api(d, "POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": TO},
                     token=TOKEN_B), 404)
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before


def test_assign_foreign_or_mismatched_agent_is_422(env, fake, d):
    i = env.ids
    before = numbers_snapshot(env)
    path = "/v1/numbers/%d" % i.num_ret_free
    assert_error(api(d, "PATCH", path, {"agent_id": i.agent_b1}), 422, contains="agency")
    assert_error(api(d, "PATCH", path, {"agent_id": i.agent_vapi1}), 422, "provider_mismatch")
    assert_error(api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415",
                                                "agent_id": i.agent_vapi1}),
                 422, "provider_mismatch")
    assert_error(api(d, "POST", "/v1/numbers", {"account": "ret-a", "area_code": "415",
                                                "agent_id": i.agent_b1}), 422)
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before


def test_portal_token_sees_its_clients_numbers_only_with_visibility(env, fake, d):
    i = env.ids
    acme = sorted([i.num_ret1, i.num_vapi1, i.num_vapi_bearer, i.num_bland1])
    r = api(d, "GET", "/v1/numbers", token=TOKEN_PORTAL)
    assert r.status == 200 and r.json()["numbers"] == [], r
    assert_error(api(d, "GET", "/v1/numbers/%d" % i.num_ret1, token=TOKEN_PORTAL), 404)
    env.sql("UPDATE clients SET portal_agent_visibility = true WHERE id = %s", i.client_acme)
    assert list_ids(d, TOKEN_PORTAL) == acme
    assert list_ids(d, TOKEN_PORTAL, "?client=%d" % i.client_acme) == acme
    r = api(d, "GET", "/v1/numbers/%d" % i.num_ret1, token=TOKEN_PORTAL)
    assert r.status == 200 and r.json()["client"]["id"] == i.client_acme, r
    for other in (i.num_ret2, i.num_ret_free, i.num_b1):
        assert_error(api(d, "GET", "/v1/numbers/%d" % other, token=TOKEN_PORTAL), 404)
    # B's client portal: B's visibility is off, and A's numbers are never its
    assert list_ids(d, TOKEN_PORTAL_B) == []
    env.sql("UPDATE clients SET portal_agent_visibility = true WHERE id = %s", i.client_b)
    assert list_ids(d, TOKEN_PORTAL_B) == [i.num_b1]


def test_portal_token_cannot_write(env, fake, d):
    i = env.ids
    env.sql("UPDATE clients SET portal_agent_visibility = true WHERE id = %s", i.client_acme)
    before = numbers_snapshot(env)
    n = "/v1/numbers/%d" % i.num_ret1
    for method, path, body in (
            ("POST", "/v1/numbers", {"account": "ret-a", "area_code": "415"}),
            ("PATCH", n, {"nickname": "portal"}),
            ("PATCH", n, {"agent_id": i.agent_ret2}),
            ("DELETE", n, None),
            ("POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": TO})):
        assert_error(api(d, method, path, body, token=TOKEN_PORTAL), 403)
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before


def test_missing_unknown_revoked_token_is_401(env, fake, d):
    i = env.ids
    for path, method, body in (("/v1/numbers", "GET", None),
                               ("/v1/numbers/%d" % i.num_ret1, "GET", None),
                               ("/v1/numbers/%d" % i.num_ret1, "DELETE", None),
                               ("/v1/calls", "POST", {"agent_id": i.agent_ret1, "to": TO})):
        assert_error(api(d, method, path, body, token=None), 401)
        assert_error(api(d, method, path, body, token="cr_no_such_token"), 401)
        assert_error(api(d, method, path, body, token=TOKEN_REVOKED), 401)
        assert_error(api(d, method, path, body, token=None,
                         headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)
    assert fake.requests == []
    assert number_row(env, i.num_ret1)["status"] == "active"


# ---- 8. validation, listing ----

def test_request_validation(env, fake, d):
    i = env.ids
    before = numbers_snapshot(env)
    bad = [
        ("POST", "/v1/numbers", None, b"{not json"),
        ("POST", "/v1/numbers", None, b"[1, 2]"),
        ("POST", "/v1/numbers", None, b""),
        ("POST", "/v1/numbers", None, b'{"account": "ret-a", "account": "ret-a", '
                                      b'"area_code": "415"}'),
        ("POST", "/v1/numbers", {"account": "ret-a", "area_code": "12"}, None),
        ("POST", "/v1/numbers", {"account": "ret-a", "area_code": "123"}, None),
        ("POST", "/v1/numbers", {"account": "ret-a", "area_code": "41a"}, None),
        ("POST", "/v1/numbers", {"account": "ret-a"}, None),
        ("POST", "/v1/numbers", {"area_code": "415"}, None),
        ("POST", "/v1/numbers", {"account": "ret-a", "area_code": "415",
                                 "nickname": "x" * 65}, None),
        ("POST", "/v1/numbers", {"account": "ret-a", "area_code": "415",
                                 "nickname": "a\nb"}, None),
        ("POST", "/v1/numbers", {"account": "ret-a", "area_code": "415",
                                 "agent_id": "seven"}, None),
        ("PATCH", "/v1/numbers/%d" % i.num_ret1, {}, None),
        ("PATCH", "/v1/numbers/%d" % i.num_ret1, {"agent_id": "abc"}, None),
        ("PATCH", "/v1/numbers/%d" % i.num_ret1, {"nickname": 5}, None),
        ("PATCH", "/v1/numbers/%d" % i.num_ret1, None, b"nope"),
        ("POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": "12345"}, None),
        ("POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": "+1415555abcd"}, None),
        ("POST", "/v1/calls", {"agent_id": i.agent_ret1}, None),
        ("POST", "/v1/calls", {"to": TO}, None),
        ("POST", "/v1/calls", {"agent_id": i.agent_ret1, "to": TO, "from": "me"}, None),
    ]
    for method, path, body, raw in bad:
        r = api(d, method, path, body, raw=raw)
        assert r.status == 400, (method, path, body, raw, r)
        assert_error(r, 400)
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before


def test_list_query_validation(env, fake, d):
    for q in ("?foo=1", "?limit=0", "?limit=100000", "?limit=x", "?after=-1", "?status=gone",
              "?provider=twilio", "?agent=abc"):
        assert_error(api(d, "GET", "/v1/numbers" + q), 400)
    assert_error(api(d, "GET", "/v1/nothing-here"), 404)
    assert_error(api(d, "GET", "/v1/numbers/abc"), 404)
    assert_error(api(d, "PUT", "/v1/numbers", {}), 405)


def test_list_filters(env, fake, d):
    i = env.ids
    assert list_ids(d, TOKEN_A, "?provider=vapi") == sorted([i.num_vapi1, i.num_vapi_bearer])
    assert list_ids(d, TOKEN_A, "?agent=%d" % i.agent_vapi1) == sorted([i.num_vapi1,
                                                                        i.num_vapi_bearer])
    assert list_ids(d, TOKEN_A, "?client=%d" % i.client_acme) == sorted(
        [i.num_ret1, i.num_vapi1, i.num_vapi_bearer, i.num_bland1])
    assert list_ids(d, TOKEN_A, "?status=released") == []
    assert api(d, "DELETE", "/v1/numbers/%d" % i.num_ret2).status == 200
    assert list_ids(d, TOKEN_A, "?status=released") == [i.num_ret2]
    assert list_ids(d, TOKEN_A, "?status=active&provider=retell") == sorted([i.num_ret1,
                                                                             i.num_ret_free])


def test_pagination(env, fake, d):
    i = env.ids
    want = agency_a_numbers(i)
    seen, after, pages = [], None, 0
    while True:
        q = "?limit=4" + ("&after=%d" % after if after is not None else "")
        r = api(d, "GET", "/v1/numbers" + q)
        assert r.status == 200, r
        j = r.json()
        assert len(j["numbers"]) <= 4, j
        seen += [n["id"] for n in j["numbers"]]
        pages += 1
        if j["next_after"] is None:
            break
        assert j["next_after"] == j["numbers"][-1]["id"], j
        after = j["next_after"]
        assert pages < 10
    assert seen == want, (seen, want)
    assert pages == 2
    r = api(d, "GET", "/v1/numbers?limit=2&after=%d" % want[1])
    assert [n["id"] for n in r.json()["numbers"]] == want[2:4], r


# ---- issue 12 item 1: exact requests per provider ----

def test_vapi_number_with_its_own_assistant_is_refused_not_nulled(env, fake, d):
    """An assistantId set in Vapi's dashboard bypasses our routing; Vapi types it as a string
    (no null), so the assign is refused naming it, nothing is PATCHed and nothing changes."""
    nid, e164, pnid = assigned_number(env, "vapi")
    a2, _ = second_agent(env, "vapi")
    fake.edit("vapi", pnid, assistantId="asst_dashboard",
              server={"url": "https://127.0.0.1:9/old-hook"})
    before = numbers_snapshot(env)
    assert_error(api(d, "PATCH", "/v1/numbers/%d" % nid, {"agent_id": a2}), 409,
                 "provider_conflict", ["assistantId", "dashboard"])
    assert [(q.method, q.path) for q in fake.requests] == [("GET", "/phone-number/" + pnid)]
    assert numbers_snapshot(env) == before
    until_routed(d, "vapi", e164, P["vapi"]["pid"], "unchanged routing")


def test_vapi_name_limit_checked_before_the_provider(env, fake, d):
    """Vapi's name: maxLength 40 (its phone number DTOs); ours is 64: a longer one is refused
    with the limit named, before any provider call, for a purchase and for a rename."""
    nid, _, _ = assigned_number(env, "vapi")
    before = numbers_snapshot(env)
    for method, path, body in (
            ("POST", "/v1/numbers", {"account": "vapi-a", "area_code": "415",
                                     "nickname": "n" * 41}),
            ("PATCH", "/v1/numbers/%d" % nid, {"nickname": "n" * 41}),
            ("PATCH", "/v1/numbers/%d" % nid, {"nickname": "é" * 20 + "n" * 21})):
        assert_error(api(d, method, path, body), 400, "invalid",
                     ["at most 40 characters", "vapi"])
    assert fake.requests == [], fake.requests
    assert numbers_snapshot(env) == before
    # characters, not bytes: 40 of them in 60 bytes are sent
    r = api(d, "PATCH", "/v1/numbers/%d" % nid, {"nickname": "é" * 20 + "n" * 20})
    assert r.status == 200, r
    assert fake.requests[-1].json == {"provider": "vapi", "name": "é" * 20 + "n" * 20}, \
        fake.requests
    # the same 41 characters are fine for Retell (no documented limit: ours, 64)
    r = api(d, "PATCH", "/v1/numbers/%d" % env.ids.num_ret1, {"nickname": "n" * 41})
    assert r.status == 200, r
    assert fake.requests[-1].json == {"nickname": "n" * 41}, fake.requests


def test_vapi_purchase_and_assign_keep_the_operators_server_settings(env, fake, d):
    """The purchase names the account's credential; an assign (read-modify-write) keeps what
    the operator set in the server object and replaces only url and credentialId."""
    nid, e164, pnid = assigned_number(env, "vapi")
    a2, _ = second_agent(env, "vapi")
    fake.edit("vapi", pnid, name="Dash name",
              server={"url": "https://127.0.0.1:9/old-hook", "credentialId": "cred-operator",
                      "timeoutSeconds": 7, "headers": {"x-a": "1"}})
    r = api(d, "PATCH", "/v1/numbers/%d" % nid, {"agent_id": a2})
    assert r.status == 200, r
    patch = fake.requests[-1]
    assert patch.json == {"provider": "vapi", "server": {
        "url": webhook(d, "vapi", "vapi-a"), "credentialId": VAPI_CREDENTIAL,
        "timeoutSeconds": 7, "headers": {"x-a": "1"}}}, patch
    assert fake.number("vapi", pnid)["name"] == "Dash name"   # not ours to touch on an assign
