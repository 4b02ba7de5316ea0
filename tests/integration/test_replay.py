# test_replay: a replayed signed request is recognised: counted, and a call event not journaled twice.
"""Issue 7 item 3: signatures and replay."""

import json

from support.build import SLOW
from support.data import BLAND_SECRET, BLAND_SLUG, NUM_BLAND1, NUM_RET1, RETELL_KEY, RETELL_SLUG
from support.polling import wait_for
from support.scrape import scrape
from support.signing import sw


def bland_post_call(call_id):
    return json.dumps({"call_id": call_id, "c_id": call_id, "call_length": 0.25,
                       "corrected_duration": "15", "inbound": True, "to": NUM_BLAND1,
                       "from": "+14155550123", "completed": True, "status": "completed"},
                      separators=(",", ":")).encode()


def test_replayed_bland_post_call_is_not_journaled_twice(env, daemon):
    body = bland_post_call("replay-bland-1")
    headers = sw.bland_headers(BLAND_SECRET, body)
    s0 = scrape(daemon)
    first = daemon.post("bland", BLAND_SLUG, body, headers)
    assert first.status == 200, first
    # the very same bytes and signature, as an attacker (or a retry) would send them
    for _ in range(3):
        again = daemon.post("bland", BLAND_SLUG, body, headers)
        assert again.status == 200, again
    s1 = scrape(daemon)
    assert s1.get("callrouted_journal_appends_total") - \
        s0.get("callrouted_journal_appends_total") == 1
    assert s1.get("callrouted_webhook_replays_total", provider="bland") - \
        s0.get("callrouted_webhook_replays_total", provider="bland") == 3
    wait_for(lambda: env.sql("SELECT count(*) FROM usage_ledger WHERE provider_call_id = %s",
                             "replay-bland-1").fetchone()[0] == 1, 5 * SLOW, what="the ledger row")
    assert env.sql("SELECT count(*) FROM usage_ledger WHERE provider_call_id = %s",
                   "replay-bland-1").fetchone()[0] == 1


def test_replayed_routing_request_is_answered_again_and_counted(env, daemon):
    body = sw.build_payload("retell", "call_inbound", NUM_RET1, "+14155550123")
    headers = sw.retell_headers(RETELL_KEY, body)
    s0 = scrape(daemon)
    a = daemon.post("retell", RETELL_SLUG, body, headers)
    b = daemon.post("retell", RETELL_SLUG, body, headers)
    assert a.status == 200 and b.status == 200, (a, b)
    assert a.json() == b.json(), (a, b)
    s1 = scrape(daemon)
    # a routing answer does not act: it is remembered only when a call event acted
    assert s1.get("callrouted_webhook_replays_total", provider="retell") == \
        s0.get("callrouted_webhook_replays_total", provider="retell")


def test_new_signature_of_same_event_is_not_a_replay(env, daemon):
    """A provider retry signs again (a new timestamp): journaled again, one ledger row."""
    call = {"event": "call_ended", "call": {
        "call_id": "replay-retell-1", "agent_id": "agent_ret_1", "call_type": "phone_call",
        "direction": "inbound", "from_number": "+14155550123", "to_number": NUM_RET1,
        "start_timestamp": 1714608475945, "end_timestamp": 1714608491736,
        "duration_ms": 15791, "disconnection_reason": "user_hangup"}}
    s0 = scrape(daemon)
    for _ in range(2):
        body = json.dumps(call).encode()
        r = daemon.post("retell", RETELL_SLUG, body, sw.retell_headers(RETELL_KEY, body))
        assert r.status == 200, r
    s1 = scrape(daemon)
    assert s1.get("callrouted_webhook_replays_total", provider="retell") == \
        s0.get("callrouted_webhook_replays_total", provider="retell")
    wait_for(lambda: env.sql("SELECT count(*) FROM usage_ledger WHERE provider_call_id = %s",
                             "replay-retell-1").fetchone()[0] == 1, 5 * SLOW, what="the ledger row")
