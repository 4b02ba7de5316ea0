# test_webhook_errors: status codes of the webhook listener (401, 404, 400, 413, 405, 415, unknown events).
"""Acceptance: bad requests get the documented status codes, and unknown events are ignored."""

import json
import time

from support.data import (BLAND_SECRET, BLAND_SLUG, NUM_BLAND1, NUM_RET1, NUM_VAPI1,
                          NUM_VAPI_BEARER, RETELL_KEY, RETELL_SLUG, VAPI_BEARER_SECRET,
                          VAPI_BEARER_SLUG, VAPI_SECRET, VAPI_SLUG)
from support.signing import signed_post, sw

UNAUTHORIZED = {"error": "unauthorized"}


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def assert_status(r, status, what):
    assert r.status == status, "%s: got %r, want %d" % (what, r, status)


def assert_401(r, what):
    assert_status(r, 401, what)
    assert r.json() == UNAUTHORIZED, "%s: body %r" % (what, r.body)


def assert_400(r, what):
    assert_status(r, 400, what)
    j = r.json()
    assert isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"], \
        "%s: body %r" % (what, r.body)


def test_401_bad_signatures(env, daemon):
    d = daemon
    now = int(time.time() * 1000)
    body = sw.build_payload("retell", "call_inbound", NUM_RET1)
    # Retell
    assert_401(d.post("retell", RETELL_SLUG, body), "retell: no signature")
    assert_401(d.post("retell", RETELL_SLUG, body, sw.retell_headers("wrong-key", body)),
               "retell: wrong key")
    tampered = body.replace(NUM_RET1.encode(), b"+14155550103")
    assert tampered != body
    assert_401(d.post("retell", RETELL_SLUG, tampered, sw.retell_headers(RETELL_KEY, body)),
               "retell: tampered body")
    assert_401(d.post("retell", RETELL_SLUG, body,
                      sw.retell_headers(RETELL_KEY, body, now - 6 * 60 * 1000)),
               "retell: timestamp 6 min old")
    assert_401(d.post("retell", RETELL_SLUG, body,
                      sw.retell_headers(RETELL_KEY, body, now + 6 * 60 * 1000)),
               "retell: timestamp 6 min ahead")
    assert_401(d.post("retell", RETELL_SLUG, body, {"x-retell-signature": "garbage"}),
               "retell: malformed header")
    # and the same request well signed goes through
    r = d.post("retell", RETELL_SLUG, body, sw.retell_headers(RETELL_KEY, body))
    assert_status(r, 200, "retell: good signature")

    # Vapi, hmac account
    body = sw.build_payload("vapi", "assistant-request", NUM_VAPI1)
    assert_401(d.post("vapi", VAPI_SLUG, body), "vapi hmac: no signature")
    assert_401(d.post("vapi", VAPI_SLUG, body, sw.vapi_hmac_headers("wrong", body)),
               "vapi hmac: wrong secret")
    assert_401(d.post("vapi", VAPI_SLUG, body,
                      sw.vapi_hmac_headers(VAPI_SECRET, body, int(time.time()) - 360)),
               "vapi hmac: timestamp 6 min old")
    assert_401(d.post("vapi", VAPI_SLUG, body + b" ", sw.vapi_hmac_headers(VAPI_SECRET, body)),
               "vapi hmac: tampered body")
    assert_401(d.post("vapi", VAPI_SLUG, body, sw.vapi_bearer_headers(VAPI_SECRET)),
               "vapi hmac account: bearer header instead of a signature")

    # Vapi, bearer account
    body = sw.build_payload("vapi", "assistant-request", NUM_VAPI_BEARER)
    assert_401(d.post("vapi", VAPI_BEARER_SLUG, body), "vapi bearer: no token")
    assert_401(d.post("vapi", VAPI_BEARER_SLUG, body,
                      sw.vapi_bearer_headers(VAPI_BEARER_SECRET + "x")),
               "vapi bearer: wrong token (Authorization)")
    assert_401(d.post("vapi", VAPI_BEARER_SLUG, body,
                      sw.vapi_bearer_headers(VAPI_BEARER_SECRET[:-1] + "X", "x-vapi-secret")),
               "vapi bearer: wrong token (X-Vapi-Secret)")
    assert_401(d.post("vapi", VAPI_BEARER_SLUG, body, {"Authorization": VAPI_BEARER_SECRET}),
               "vapi bearer: token without 'Bearer '")

    # Bland dynamic_data
    body = sw.build_payload("bland", "dynamic_data", NUM_BLAND1)
    assert_401(d.post("bland", BLAND_SLUG, body), "bland dynamic_data: no token")
    assert_401(d.post("bland", BLAND_SLUG, body, sw.bland_dynamic_headers("wrong", BLAND_SLUG)),
               "bland dynamic_data: wrong token")
    assert_401(d.post("bland", BLAND_SLUG, body,
                      {"Authorization": "Bearer " + BLAND_SECRET}),
               "bland dynamic_data: the raw secret is not the token")
    # Bland post-call
    post_call = compact({"call_id": "9d404c1b", "call_length": 0.25, "corrected_duration": "15",
                         "inbound": True, "to": NUM_BLAND1, "from": "+14155550123",
                         "completed": True, "status": "completed"})
    assert_401(d.post("bland", BLAND_SLUG, post_call), "bland post-call: no signature")
    assert_401(d.post("bland", BLAND_SLUG, post_call, sw.bland_headers("wrong", post_call)),
               "bland post-call: wrong secret")


def test_404_unknown_provider_or_account(env, daemon):
    d = daemon
    body = sw.build_payload("retell", "call_inbound", NUM_RET1)
    h = sw.retell_headers(RETELL_KEY, body)
    assert_status(d.post("retell", "no-such-account", body, h), 404, "unknown slug")
    assert_status(d.post("twilio", RETELL_SLUG, body, h), 404, "unknown provider")
    # a Vapi account's slug under /retell/, signed with that account's keys the Retell way
    assert_status(d.post("retell", VAPI_SLUG, body, sw.retell_headers("vapi-api-key-a", body)),
                  404, "vapi slug under /retell/")
    assert_status(d.post("bland", RETELL_SLUG, body, sw.retell_headers(RETELL_KEY, body)),
                  404, "retell slug under /bland/")
    for path in ("/v1/webhooks/retell", "/v1/webhooks/retell/", "/v1/webhooks",
                 "/v1/webhooks/retell/%s/extra" % RETELL_SLUG, "/nope"):
        r = d.request("POST", path, body, dict(h, **{"Content-Type": "application/json"}))
        assert_status(r, 404, "POST " + path)


def test_400_bad_payloads(env, daemon):
    d = daemon
    assert_400(signed_post(d, "retell", RETELL_SLUG, RETELL_KEY, b'{"event":"call_inbound",'),
               "retell: malformed JSON")
    assert_400(signed_post(d, "retell", RETELL_SLUG, RETELL_KEY,
                           {"event": "call_inbound", "call_inbound": {"from_number": "+14155550123"}}),
               "retell: missing to_number")
    assert_400(signed_post(d, "retell", RETELL_SLUG, RETELL_KEY,
                           {"event": "call_inbound",
                            "call_inbound": {"from_number": "+14155550123",
                                             "to_number": "4155550123"}}),
               "retell: to_number not E.164")
    assert_400(signed_post(d, "retell", RETELL_SLUG, RETELL_KEY,
                           {"event": "call_inbound",
                            "call_inbound": {"from_number": "+14155550123", "to_number": 14155550101}}),
               "retell: to_number not a string")
    assert_400(signed_post(d, "vapi", VAPI_SLUG, VAPI_SECRET, b"{not json"),
               "vapi: malformed JSON")
    msg = json.loads(sw.build_payload("vapi", "assistant-request", "4155550123"))
    assert_400(signed_post(d, "vapi", VAPI_SLUG, VAPI_SECRET, msg), "vapi: number not E.164")
    del msg["message"]["phoneNumber"]
    assert_400(signed_post(d, "vapi", VAPI_SLUG, VAPI_SECRET, msg), "vapi: no phoneNumber")
    body = sw.build_payload("bland", "dynamic_data", "4155550123")
    assert_400(d.post("bland", BLAND_SLUG, body, sw.bland_dynamic_headers(BLAND_SECRET, BLAND_SLUG)),
               "bland: number not E.164")
    body = compact({"event": "dynamic_data", "from": "+14155550123", "call_id": "x"})
    assert_400(d.post("bland", BLAND_SLUG, body, sw.bland_dynamic_headers(BLAND_SECRET, BLAND_SLUG)),
               "bland: missing to")
    # the daemon still answers after all that
    assert signed_post(d, "retell", RETELL_SLUG, RETELL_KEY,
                       sw.build_payload("retell", "call_inbound", NUM_RET1)).status == 200


def test_413_body_too_large(env):
    d = env.start({"max_body_bytes": 4096})
    big = sw.retell_call_inbound(NUM_RET1)
    big["pad"] = "x" * 8192
    r = signed_post(d, "retell", RETELL_SLUG, RETELL_KEY, big)
    assert_status(r, 413, "8 KiB body with max_body_bytes 4096")
    # just under the limit is fine
    ok = sw.retell_call_inbound(NUM_RET1)
    ok["pad"] = "x" * 3000
    r = signed_post(d, "retell", RETELL_SLUG, RETELL_KEY, ok)
    assert_status(r, 200, "3 KiB body")
    assert r.json()["call_inbound"]["override_agent_id"] == "agent_ret_1"


def test_405_and_415(env, daemon):
    d = daemon
    path = sw.webhook_path("retell", RETELL_SLUG)
    assert_status(d.request("GET", path), 405, "GET on the webhook path")
    body = sw.build_payload("retell", "call_inbound", NUM_RET1)
    h = sw.retell_headers(RETELL_KEY, body)
    r = d.request("PUT", path, body, dict(h, **{"Content-Type": "application/json"}))
    assert_status(r, 405, "PUT on the webhook path")
    assert_status(d.post("retell", RETELL_SLUG, body, h, content_type="text/plain"), 415,
                  "text/plain")
    assert_status(d.post("retell", RETELL_SLUG, body, h, content_type=None), 415,
                  "no Content-Type")
    # media type parameters do not change the type
    r = d.post("retell", RETELL_SLUG, body, h, content_type="application/json; charset=utf-8")
    assert_status(r, 200, "application/json; charset=utf-8")


def test_unknown_and_other_events_are_ignored(env, daemon):
    d = daemon
    cases = [
        ("retell", RETELL_SLUG, RETELL_KEY, {"event": "call_transcribed", "call": {"call_id": "x"}}),
        ("vapi", VAPI_SLUG, VAPI_SECRET, {"message": {"type": "some-new-type"}}),
        ("vapi", VAPI_SLUG, VAPI_SECRET, {"message": {"type": "conversation-update",
                                                      "conversation": [{"role": "assistant",
                                                                        "content": "Hi!"}]}}),
        ("bland", BLAND_SLUG, BLAND_SECRET, {"message": "Call connected", "call_id": "9d40",
                                             "category": "call", "log_level": "info"}),
    ]
    for provider, slug, secret, obj in cases:
        r = signed_post(d, provider, slug, secret, obj)
        assert_status(r, 200, "%s %s" % (provider, obj))
        assert r.json() == {}, "%s %s: body %r" % (provider, obj, r.body)
    # bearer-authenticated Vapi account, unknown message type
    body = compact({"message": {"type": "speech-update", "status": "started", "role": "user"}})
    r = d.post("vapi", VAPI_BEARER_SLUG, body, sw.vapi_bearer_headers(VAPI_BEARER_SECRET))
    assert_status(r, 200, "vapi bearer speech-update")
    assert r.json() == {}
