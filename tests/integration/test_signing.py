# test_signing: the suite's signer (send-webhook, by callsim sign) against the providers' vectors.
"""The signing functions the suite relies on, checked against known vectors (no daemon needed)."""

from support.signing import sw


def test_retell_sdk_vector():
    assert sw.retell_signature("test-api-key", b'{"event":"call_ended"}', 1700000000000) == (
        "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e")


def test_vapi_hmac_vector():
    h = sw.vapi_hmac_headers("vapi-test-secret", b'{"message":{"type":"status-update"}}',
                             1700000000)
    assert h == {"x-timestamp": "1700000000",
                 "x-signature": "854b02b41aedb7f3688cbef04dc502b254bfbbe130f4c9d00992a0bef78675cc"}


def test_vapi_bearer_forms():
    assert sw.vapi_bearer_headers("s") == {"Authorization": "Bearer s"}
    assert sw.vapi_bearer_headers("s", "x-vapi-secret") == {"X-Vapi-Secret": "s"}


def test_bland_vector():
    assert sw.bland_signature("bland-test-secret", b'{"call_id":"abc"}') == (
        "79288605c66f46f0944be46e731605b4b53720523535a47096161964abf7c228")


def test_bland_dynamic_token():
    import hashlib
    import hmac
    want = hmac.new(b"sec", b"callrouted-dynamic-data:acme", hashlib.sha256).hexdigest()
    assert sw.bland_dynamic_token("sec", "acme") == want
    assert sw.sign_headers("bland", "sec", b'{"event":"dynamic_data","to":"+1"}', "acme") == {
        "Authorization": "Bearer " + want}
    assert "X-Webhook-Signature" in sw.sign_headers("bland", "sec", b'{"call_id":"abc"}', "acme")


def test_fixture_vectors():
    """Every valid vector of tests/fixtures/signatures.json is what send-webhook computes."""
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "fixtures" / "signatures.json"
    vectors = json.loads(path.read_text())
    assert len(vectors) >= 10
    checked = 0
    for v in vectors:
        if not v["valid"]:
            continue
        body = v["body"].encode()
        h = {k.lower(): val for k, val in v["headers"].items()}
        if v["provider"] == "retell":
            ts = int(h["x-retell-signature"].split(",")[0][2:])
            assert sw.retell_signature(v["key"], body, ts) == h["x-retell-signature"]
        elif v["provider"] == "vapi" and v.get("auth") == "hmac":
            got = sw.vapi_hmac_headers(v["key"], body, int(h["x-timestamp"]))
            assert {k.lower(): val for k, val in got.items()} == h
        elif v["provider"] == "vapi":
            form = "x-vapi-secret" if "x-vapi-secret" in h else "authorization"
            got = sw.vapi_bearer_headers(v["key"], form)
            assert {k.lower(): val for k, val in got.items()} == h
        else:
            assert sw.bland_signature(v["key"], body) == h["x-webhook-signature"]
        checked += 1
    assert checked == 5


def _callsim_sign(body, *args):
    import subprocess
    return subprocess.run([sw.callsim_bin(), "sign"] + list(args), input=body,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def test_callsim_sign_cli():
    """`callsim sign` (one body on stdin) prints the vectors' headers, one line each."""
    r = _callsim_sign(b'{"event":"call_ended"}', "--provider", "retell", "--secret",
                      "test-api-key", "--timestamp", "1700000000000")
    assert r.returncode == 0, r
    assert r.stdout == (b"x-retell-signature: v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c8"
                        b"12e6ad4a7ee506c04f7e462e3321823e\n")
    r = _callsim_sign(b'{"message":{"type":"status-update"}}', "--provider", "vapi", "--secret",
                      "vapi-test-secret", "--timestamp", "1700000000")
    assert r.stdout == (b"x-timestamp: 1700000000\nx-signature: 854b02b41aedb7f3688cbef04dc502b2"
                        b"54bfbbe130f4c9d00992a0bef78675cc\n"), r
    r = _callsim_sign(b'{"call_id":"abc"}', "--provider", "bland", "--secret", "bland-test-secret")
    assert r.stdout == (b"X-Webhook-Signature: 79288605c66f46f0944be46e731605b4b53720523535a4709"
                        b"6161964abf7c228\n"), r
    r = _callsim_sign(b"", "--provider", "bland", "--secret", "sec", "--bland-dynamic", "acme")
    assert r.stdout == ("Authorization: Bearer %s\n" % sw.bland_dynamic_token("sec", "acme")
                        ).encode(), r
    r = _callsim_sign(b"", "--provider", "vapi", "--secret", "s", "--vapi-auth", "bearer")
    assert r.stdout == b"Authorization: Bearer s\n", r


def test_callsim_sign_usage_errors():
    for args in (["--provider", "nope", "--secret", "s"], ["--provider", "retell"],
                 ["--provider", "retell", "--secret", ""],
                 ["--provider", "retell", "--secret", "s", "--timestamp", "12a"],
                 ["--provider", "bland", "--secret", "s", "--timestamp", "1"],
                 ["--provider", "retell", "--secret", "s", "--vapi-auth", "bearer"],
                 ["--provider", "vapi", "--secret", "s", "--bland-dynamic", "acme"],
                 ["--stdio", "--provider", "retell"]):
        r = _callsim_sign(b"{}", *args)
        assert r.returncode == 2 and r.stdout == b"", (args, r)
