# admin_api: tokens, the admin API client and routing probes for test_admin_api.
"""The admin API's tokens and client, for test_admin_api.py and the other admin API tests."""

import hashlib
import json

from support.data import (BLAND_SECRET, BLAND_SLUG, RETELL_KEY, RETELL_SLUG, VAPI_SECRET,
                          VAPI_SLUG)
from support.net import http_request
from support.openapi import check as openapi_check
from support.polling import wait_for
from support.signing import bland_dynamic, retell_inbound, vapi_assistant_request

LIVE = 1.0   # seconds within which an API change must be routed

TOKEN_A = "cr_test_agency_a_3f9d2c"
TOKEN_B = "cr_test_agency_b_71aa0e"
TOKEN_PORTAL = "cr_test_portal_acme_55c1"      # client "Acme Dental" of agency A
TOKEN_PORTAL_B = "cr_test_portal_b_90e2"       # client "B Client" of agency B
TOKEN_REVOKED = "cr_test_revoked_a_0b3e"

# API keys of the standard data (support.data.insert_standard_data)
KEYS = {"ret-a": "retell-key-a", "ret-b": "retell-key-b", "vapi-a": "vapi-api-key-a",
        "vapi-bearer-a": "vapi-api-key-a2", "bland-a": "bland-api-key-a"}


# The webhook credential the Vapi account vapi-a names (provider_accounts.webhook_credential_id)
VAPI_CREDENTIAL = "cred-vapi-a"


def set_vapi_credential(env, slug="vapi-a", credential=VAPI_CREDENTIAL):
    env.sql("UPDATE provider_accounts SET webhook_credential_id = %s WHERE slug = %s",
            credential, slug)


def sha(token):
    return hashlib.sha256(token.encode()).digest()


def insert_tokens(env):
    i = env.ids
    rows = [(TOKEN_A, i.agency_a, None, None), (TOKEN_B, i.agency_b, None, None),
            (TOKEN_PORTAL, i.agency_a, i.client_acme, None),
            (TOKEN_PORTAL_B, i.agency_b, i.client_b, None),
            (TOKEN_REVOKED, i.agency_a, None, "now()")]
    for tok, agency, client, revoked in rows:
        env.sql("INSERT INTO api_tokens (token_sha256, agency_id, client_id, name, revoked_at) "
                "VALUES (%s, %s, %s, %s, " + ("now()" if revoked else "NULL") + ")",
                sha(tok), agency, client, "test " + tok)


def api(d, method, path, body=None, token=TOKEN_A, raw=None, headers=None, timeout=10.0):
    """One admin API request; body: a JSON value, or raw bytes as they are."""
    h = {}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    r = http_request(d.admin_port, method, path, data, h, timeout=timeout)
    openapi_check(method, path, r.status, r.headers, r.body, data)  # the document describes it
    return r


def assert_error(r, status, code=None, contains=None):
    assert r.status == status, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    j = r.json()
    assert set(j) == {"error"}, j
    assert isinstance(j["error"].get("code"), str) and j["error"]["code"], j
    assert isinstance(j["error"].get("message"), str) and j["error"]["message"], j
    if code is not None:
        assert j["error"]["code"] == code, j
    for c in ([contains] if isinstance(contains, str) else contains or []):
        assert c.lower() in j["error"]["message"].lower(), j
    return j["error"]


# ---- routing probes: the provider agent id a call to e164 would reach (None: no agent) ----

def route_retell(d, e164, slug=RETELL_SLUG, key=RETELL_KEY):
    r = retell_inbound(d, e164, slug=slug, key=key)
    assert r.status == 200, r
    return r.json().get("call_inbound", {}).get("override_agent_id")


def route_vapi(d, e164, slug=VAPI_SLUG, secret=VAPI_SECRET):
    r = vapi_assistant_request(d, e164, slug=slug, secret=secret)
    assert r.status == 200, r
    return r.json().get("assistantId")


def route_bland(d, e164, slug=BLAND_SLUG, secret=BLAND_SECRET):
    r = bland_dynamic(d, e164, slug=slug, secret=secret)
    if r.status == 404:
        return None
    assert r.status == 200, r
    return r.json().get("agent_id")


ROUTE = {"retell": route_retell, "vapi": route_vapi, "bland": route_bland}


def until_routed(d, provider, e164, want, what):
    """Poll routing until e164 reaches want (a provider agent id or None) within LIVE s."""
    probe = ROUTE[provider]
    _, elapsed = wait_for(lambda: probe(d, e164) == want or None, 5.0, 0.02,
                          "%s: %s routed to %r" % (what, e164, want))
    assert elapsed < LIVE, "%s took %.3f s (want < %.1f s)" % (what, elapsed, LIVE)
    return elapsed


def number_row(env, nid):
    r = env.conn.execute("SELECT e164, provider, agent_id, status, nickname, released_at, "
                         "provider_released, provider_number_id FROM phone_numbers "
                         "WHERE id = %s", (nid,)).fetchone()
    if r is None:
        return None
    keys = ("e164", "provider", "agent_id", "status", "nickname", "released_at",
            "provider_released", "provider_number_id")
    return dict(zip(keys, r))


def numbers_snapshot(env):
    return env.conn.execute("SELECT id, e164, agent_id, status, nickname, released_at, "
                            "provider_released, provider_number_id FROM phone_numbers "
                            "ORDER BY id").fetchall()
