# ledger: call-event payloads of each provider, their signed posts, and ledger queries.
"""Call events and the ledger, for test_ledger.py and the other tests of the usage ledger.

The payload builders start from the shapes of tests/fixtures/{retell,vapi,bland}/*.json
(copied here, so the suite does not depend on files outside the repository) and substitute the
call id, numbers, agent and times.
"""

import copy
import datetime
import json
import threading
import time
import uuid

from support.data import (BLAND_SECRET, BLAND_SLUG, RETELL_KEY, RETELL_SLUG, VAPI_SECRET,
                          VAPI_SLUG)
from support.polling import wait_for
from support.signing import signed_post

CUSTOMER = "+14155550123"
CALLEE = "+14155550199"

# ---- fixture shapes ----

RETELL_CALL = {  # retell/call_ended.json, "call"
    "call_id": "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
    "agent_id": "agent_abc123",
    "agent_version": 2,
    "call_type": "phone_call",
    "call_status": "ended",
    "direction": "inbound",
    "from_number": "+14155550123",
    "to_number": "+14155559876",
    "start_timestamp": 1714608475945,
    "metadata": {"tenant": "acme"},
    "end_timestamp": 1714608491736,
    "duration_ms": 15791,
    "disconnection_reason": "user_hangup",
}

VAPI_END_OF_CALL = {  # vapi/end-of-call-report.json
    "message": {
        "type": "end-of-call-report",
        "endedReason": "customer-ended-call",
        "startedAt": "2024-05-02T00:07:55.945Z",
        "endedAt": "2024-05-02T00:08:11.736Z",
        "cost": 0.21,
        "artifact": {"transcript": "AI: Hi, this is Acme Dental."},
        "analysis": {"summary": "Caller asked for opening hours."},
        "phoneNumber": {"id": "pn_9d1e", "number": "+14155559876"},
        "call": {
            "id": "c_7f3a",
            "orgId": "org_1",
            "type": "inboundPhoneCall",
            "assistantId": "asst_5c2b",
            "phoneNumberId": "pn_9d1e",
            "customer": {"number": "+14155550123"},
            "startedAt": "2024-05-02T00:07:55.945Z",
            "endedAt": "2024-05-02T00:08:11.736Z",
        },
    }
}

VAPI_STATUS_IN_PROGRESS = {  # vapi/status-update-in-progress.json
    "message": {
        "type": "status-update",
        "status": "in-progress",
        "timestamp": 1714608476000,
        "phoneNumber": {"id": "pn_9d1e", "number": "+14155559876"},
        "call": {
            "id": "c_7f3a",
            "orgId": "org_1",
            "type": "inboundPhoneCall",
            "status": "in-progress",
            "assistantId": "asst_5c2b",
            "phoneNumberId": "pn_9d1e",
            "customer": {"number": "+14155550123"},
            "startedAt": "2024-05-02T00:07:55.945Z",
        },
    }
}

BLAND_POST_CALL = {  # bland/post-call.json
    "call_id": "9d404c1b-6a23-4426-953a-a52c392ff8f1",
    "c_id": "9d404c1b-6a23-4426-953a-a52c392ff8f1",
    "call_length": 0.25,
    "corrected_duration": "15",
    "inbound": True,
    "to": "+14155559876",
    "from": "+14155550123",
    "completed": True,
    "status": "completed",
    "queue_status": "complete",
    "created_at": "2024-05-02T00:07:50.000+00:00",
    "started_at": "2024-05-02T00:07:55.945Z",
    "end_at": "2024-05-02T00:08:11.000Z",
    "pathway_id": "b71c4c5c-33e3-496b-a5f4-91b7e8e6a931",
    "price": 0.03,
    "call_ended_by": "USER",
    "error_message": None,
    "metadata": {"bvai_agent": "42"},
}

BLAND_LIVE_EVENT = {  # bland/live-event.json
    "message": "Call connected",
    "call_id": "9d404c1b-6a23-4426-953a-a52c392ff8f1",
    "category": "call",
    "log_level": "info",
}

T0_MS = 1714608475945  # 2024-05-02T00:07:55.945Z, the fixtures' start


def new_id(prefix="call"):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:16])


def iso(ms):
    """ms since the epoch as Vapi's / Bland's ISO 8601 UTC text."""
    dt = datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def _absent(d, key, value):
    if value is None:
        d.pop(key, None)
    else:
        d[key] = value


# ---- Retell ----

def retell_event(event, call_id, direction, ours, other=CUSTOMER, agent="agent_ret_1",
                 start_ms=T0_MS, duration_ms=15791, end_ms="auto", send_duration=True,
                 reason="user_hangup"):
    """call_started / call_ended / call_analyzed; ours is our number (to_number when
    inbound, from_number when outbound).  start_ms None: never started."""
    call = copy.deepcopy(RETELL_CALL)
    call["call_id"] = call_id
    call["agent_id"] = agent
    call["direction"] = direction
    call["from_number"], call["to_number"] = (other, ours) if direction == "inbound" \
        else (ours, other)
    _absent(call, "start_timestamp", start_ms)
    if end_ms == "auto":
        end_ms = start_ms + duration_ms if start_ms is not None and duration_ms is not None \
            else None
    if event == "call_started":
        call["call_status"] = "ongoing"
        for k in ("end_timestamp", "duration_ms", "disconnection_reason"):
            call.pop(k, None)
    else:
        _absent(call, "end_timestamp", end_ms)
        _absent(call, "duration_ms", duration_ms if send_duration else None)
        _absent(call, "disconnection_reason", reason)
        if start_ms is None:
            call["call_status"] = "not_connected"
    body = {"event": event, "call": call}
    if event == "call_analyzed":
        call["call_analysis"] = {"call_summary": "Caller booked a cleaning.",
                                 "user_sentiment": "Positive", "call_successful": True}
    return body


def post_retell(d, body, slug=RETELL_SLUG, key=RETELL_KEY):
    return signed_post(d, "retell", slug, key, body)


# ---- Vapi ----

def vapi_end(call_id, direction, ours, other=CUSTOMER, agent="asst_vapi_1", start_ms=T0_MS,
             duration_ms=15791, where="both", reason="customer-ended-call"):
    """end-of-call-report; where: 'both' (message and call), 'message', 'call' for the times;
    start_ms None: never started."""
    body = copy.deepcopy(VAPI_END_OF_CALL)
    m = body["message"]
    c = m["call"]
    c["id"] = call_id
    c["assistantId"] = agent
    c["type"] = "inboundPhoneCall" if direction == "inbound" else "outboundPhoneCall"
    m["phoneNumber"]["number"] = ours
    c["customer"]["number"] = other
    m["endedReason"] = reason
    for o in (m, c):
        o.pop("startedAt")
        o.pop("endedAt")
    end_ms = (start_ms if start_ms is not None else T0_MS) + (duration_ms or 0)
    for o, name in ((m, "message"), (c, "call")):
        if where in ("both", name):
            if start_ms is not None:
                o["startedAt"] = iso(start_ms)
            o["endedAt"] = iso(end_ms)
    return body


def vapi_in_progress(call_id, ours, other=CUSTOMER, agent="asst_vapi_1", start_ms=T0_MS):
    body = copy.deepcopy(VAPI_STATUS_IN_PROGRESS)
    c = body["message"]["call"]
    c["id"] = call_id
    c["assistantId"] = agent
    c["customer"]["number"] = other
    c["startedAt"] = iso(start_ms)
    body["message"]["phoneNumber"]["number"] = ours
    return body


def post_vapi(d, body, slug=VAPI_SLUG, secret=VAPI_SECRET):
    return signed_post(d, "vapi", slug, secret, body)


# ---- Bland ----

def bland_post_call(call_id, inbound, ours, other=CUSTOMER, agent="bland_agent_1",
                    corrected="15", call_length=0.25, completed=True):
    """The post-call webhook; corrected / call_length None: the field is absent."""
    body = copy.deepcopy(BLAND_POST_CALL)
    body["call_id"] = body["c_id"] = call_id
    body["inbound"] = inbound
    body["to"], body["from"] = (ours, other) if inbound else (other, ours)
    body["pathway_id"] = agent
    _absent(body, "corrected_duration", corrected)
    _absent(body, "call_length", call_length)
    body["completed"] = completed
    if not completed:
        body["status"] = "failed"
        body["error_message"] = "Call failed. The number you dialed is busy."
        body.pop("started_at", None)
        body.pop("end_at", None)
    return body


def post_bland(d, body, slug=BLAND_SLUG, secret=BLAND_SECRET):
    return signed_post(d, "bland", slug, secret, body)


# ---- rating, as the brief states it (independent of the daemon's code) ----

def billed_seconds(ms, initial=60, inc=60):
    if ms == 0:
        return 0
    s = -(-ms // 1000)
    if s <= initial:
        return initial
    return initial + (-(-(s - initial) // inc)) * inc


def amount(billed, rate=150000):
    return -(-(billed * rate) // 60)


# ---- the database ----

LEDGER_COLS = ("provider", "provider_call_id", "agency_id", "client_id", "agent_id",
               "number_id", "direction", "duration_ms", "billed_seconds",
               "rate_micros_per_min", "amount_micros", "recorded_by",
               "(extract(epoch FROM started_at) * 1000)::bigint AS started_ms",
               "(extract(epoch FROM ended_at) * 1000)::bigint AS ended_ms")
CALLS_COLS = ("provider", "provider_call_id", "direction", "number_id", "e164", "agent_id",
              "agency_id", "client_id", "status", "connected", "duration_ms", "from_number",
              "to_number", "end_reason", "agent_mismatch")


def _names(cols):
    return [c.split(" AS ")[-1] for c in cols]


def ledger_rows(conn, call_id=None):
    q = "SELECT %s FROM usage_ledger" % ", ".join(LEDGER_COLS)
    args = ()
    if call_id is not None:
        q += " WHERE provider_call_id = %s"
        args = (call_id,)
    names = _names(LEDGER_COLS)
    return [dict(zip(names, r)) for r in conn.execute(q + " ORDER BY id", args).fetchall()]


def calls_rows(conn, call_id=None):
    q = "SELECT %s FROM calls" % ", ".join(CALLS_COLS)
    args = ()
    if call_id is not None:
        q += " WHERE provider_call_id = %s"
        args = (call_id,)
    names = _names(CALLS_COLS)
    return [dict(zip(names, r)) for r in conn.execute(q + " ORDER BY id", args).fetchall()]


def ledger_ids(conn):
    """provider_call_id -> number of ledger rows."""
    return dict(conn.execute("SELECT provider_call_id, count(*) FROM usage_ledger "
                             "GROUP BY provider_call_id").fetchall())


def count(conn, table):
    return conn.execute("SELECT count(*) FROM %s" % table).fetchone()[0]


def journal(d):
    r = d.readyz()
    assert r.status == 200, r
    return r.json()["journal"]


def wait_drained(d, timeout=10.0):
    """Until everything durable in d's journal is in PostgreSQL (pending 0)."""
    def drained():
        j = journal(d)
        return j if j["pending"] == 0 and j["checkpoint_seq"] >= j["durable_seq"] else None
    return wait_for(drained, timeout * d.slow, interval=0.02,
                    what="%s's journal to drain" % d.name)[0]


# ---- concurrency ----

def parallel(fn, items, threads=8):
    """fn(item) for each item from `threads` threads; returns {item index: result or exc}."""
    results = {}
    lock = threading.Lock()
    it = iter(enumerate(items))

    def worker():
        while True:
            with lock:
                try:
                    i, x = next(it)
                except StopIteration:
                    return
            try:
                r = fn(x)
            except Exception as e:  # noqa: BLE001 - recorded, judged by the caller
                r = e
            with lock:
                results[i] = r
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


def body_of(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def now():
    return time.monotonic()
