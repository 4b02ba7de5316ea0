# test_policy_retries: a provider's retry of the same routing webhook takes no second slot.
"""Acceptance: with clients.max_concurrent_calls = 1, the same Retell call_inbound (same
call_inbound.call_id) or Vapi assistant-request (same message.call.id) arriving three times
(the same bytes again, as HAProxy's retry-on resends them, and re-signed, as the provider
retries) is answered with the agent every time, one slot held; another call id is then
over_concurrency; the call's end event releases that slot like any other. A request without a
call id takes a slot per arrival, as before."""

import json
import urllib.parse

from support.admin_api import TOKEN_A, api, insert_tokens
from support.data import (NUM_RET1, NUM_VAPI1, RETELL_KEY, RETELL_SLUG, VAPI_SECRET,
                          VAPI_SLUG)
from support.ledger import post_retell, post_vapi, retell_event, vapi_end
from support.polling import wait_for
from support.scrape import scrape
from support.signing import retell_inbound, sw

CALLER = "+14155550123"
REUSES = "callrouted_route_slot_reuses_total"


def decision(ci):
    return (ci.get("metadata") or {}).get("callrouted_decision")


def explain(d, to):
    """GET /v1/route (it takes no slot); the admin API's database connection can lag /readyz."""
    q = "/v1/route?" + urllib.parse.urlencode({"to": to, "from": CALLER})
    wait_for(lambda: api(d, "GET", q, token=TOKEN_A).status != 503, 10.0,
             what="the admin API's database connection")
    return api(d, "GET", q, token=TOKEN_A)


def until(pred, what):
    wait_for(pred, 5.0, 0.02, what)


def limit_one(env, d):
    env.sql("UPDATE clients SET max_concurrent_calls = 1 WHERE id = %s", env.ids.client_acme)
    insert_tokens(env)
    until(lambda: (explain(d, NUM_RET1).json().get("concurrency") or {}).get("limit") == 1,
          "limit loaded")


def taken_here(d):
    return explain(d, NUM_RET1).json()["concurrency"]["taken_here"]


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def retell_body(call_id):
    obj = sw.retell_call_inbound(NUM_RET1, CALLER)
    if call_id is not None:
        obj["call_inbound"]["call_id"] = call_id
    return compact(obj)


def vapi_body(call_id):
    obj = sw.vapi_assistant_request(NUM_VAPI1, CALLER)
    obj["message"]["call"]["id"] = call_id
    return compact(obj)


def escaped(body, call_id):
    """The same body with the call id's "_" written \\u005f: the scanner leaves it to
    jansson (the tree's path), which reads the same id."""
    out = body.replace(b'"%s"' % call_id.encode(),
                       b'"%s"' % call_id.replace("_", "\\u005f").encode())
    assert out != body
    return out


def post(d, provider, body, headers=None):
    if headers is None:
        if provider == "retell":
            headers = sw.retell_headers(RETELL_KEY, body)
        else:
            headers = sw.vapi_hmac_headers(VAPI_SECRET, body)
    r = d.post(provider, RETELL_SLUG if provider == "retell" else VAPI_SLUG, body, headers)
    assert r.status == 200, r
    return r.json(), headers


def retell_answer(d, call_id):
    return post(d, "retell", retell_body(call_id))[0]["call_inbound"]


def vapi_answer(d, call_id):
    return post(d, "vapi", vapi_body(call_id))[0]


def three_arrivals(d, provider, body, call_id):
    """The first arrival (the scanner's path), the same bytes and headers again (HAProxy's
    retry-on), the provider's retry re-signed (here read by jansson): three answers."""
    first, headers = post(d, provider, body)
    again, _ = post(d, provider, body, headers)
    retry, _ = post(d, provider, escaped(body, call_id))
    return [first, again, retry]


def test_retell_call_inbound_retries_hold_one_slot(env, daemon):
    limit_one(env, daemon)
    before = scrape(daemon).get(REUSES, provider="retell")
    answers = three_arrivals(daemon, "retell", retell_body("call_retry_a"), "call_retry_a")
    for a in answers:
        ci = a["call_inbound"]
        assert ci.get("override_agent_id") == "agent_ret_1", a
        assert decision(ci) == "assigned", a
    assert answers[1] == answers[0] and answers[2] == answers[0], answers
    assert taken_here(daemon) == 1
    assert scrape(daemon).get(REUSES, provider="retell") == before + 2
    # another call: the slot is held
    other = retell_answer(daemon, "call_retry_b")
    assert decision(other) == "over_concurrency", other
    assert "override_agent_id" not in other, other
    # the retried call ends: its slot is released like any other
    r = post_retell(daemon, retell_event("call_ended", "call_retry_a", "inbound", NUM_RET1))
    assert r.status == 200, r
    assert taken_here(daemon) == 0
    assert decision(retell_answer(daemon, "call_retry_c")) == "assigned"
    assert decision(retell_answer(daemon, "call_retry_d")) == "over_concurrency"


def test_vapi_assistant_request_retries_hold_one_slot(env, daemon):
    limit_one(env, daemon)
    before = scrape(daemon).get(REUSES, provider="vapi")
    answers = three_arrivals(daemon, "vapi", vapi_body("c_retry_a"), "c_retry_a")
    for a in answers:
        assert a.get("assistantId") == "asst_vapi_1", a
        assert a["assistantOverrides"]["metadata"]["callrouted_decision"] == "assigned", a
    assert answers[1] == answers[0] and answers[2] == answers[0], answers
    assert taken_here(daemon) == 1
    assert scrape(daemon).get(REUSES, provider="vapi") == before + 2
    other = vapi_answer(daemon, "c_retry_b")
    assert "error" in other and "assistantId" not in other, other
    r = post_vapi(daemon, vapi_end("c_retry_a", "inbound", NUM_VAPI1))
    assert r.status == 200, r
    assert taken_here(daemon) == 0
    assert vapi_answer(daemon, "c_retry_c").get("assistantId") == "asst_vapi_1"
    assert "error" in vapi_answer(daemon, "c_retry_d")


def test_call_ids_are_per_provider_and_absent_ids_count_each_time(env, daemon):
    limit_one(env, daemon)
    # the same id at another provider is another call (the client's limit spans both)
    assert decision(retell_answer(daemon, "same_id")) == "assigned"
    v = vapi_answer(daemon, "same_id")
    assert "error" in v, v
    assert decision(retell_answer(daemon, "same_id")) == "assigned"
    r = post_retell(daemon, retell_event("call_ended", "same_id", "inbound", NUM_RET1))
    assert r.status == 200, r
    wait_for(lambda: taken_here(daemon) == 0, 5.0, 0.02, "the slot released")
    # without a call id (older Retell payloads): each arrival is a new call, as before
    r1 = retell_inbound(daemon, NUM_RET1, frm=CALLER)
    r2 = retell_inbound(daemon, NUM_RET1, frm=CALLER)
    assert r1.status == 200 and r2.status == 200
    assert decision(r1.json()["call_inbound"]) == "assigned"
    assert decision(r2.json()["call_inbound"]) == "over_concurrency"
