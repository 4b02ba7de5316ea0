# test_admin_limits: the admin listener's connection cap, head/body limits, absolute timeout.
"""Issue 10, point 3 (the admin listener half): the admin listener runs on wire.c with its own
group of limits and counters (callrouted_admin_http_*):

- connections over admin_max_connections are answered 503 and closed, and counted;
- a head over admin_max_header_bytes gets 431, a body over admin_max_body_bytes 413;
- a client dripping one byte every 200 ms is cut at admin_request_timeout (408) and cannot
  extend it; the admin API and health answer other clients meanwhile;
- the query string decoder (strict, percent-decoding, a repeated key refused), and API
  clients that go away before their (deferred) answer.
"""

import json
import time

import pytest

from support.admin_api import TOKEN_A, api, insert_tokens
from support.build import SLOW
from support.polling import wait_for
from support.rawhttp import OPEN_CONNS, RawConn
from support.scrape import scrape

MAX_CONNS = 4
LIMITS = {"admin_max_connections": MAX_CONNS, "admin_max_header_bytes": 2048,
          "admin_max_body_bytes": 1024, "admin_request_timeout": "2s",
          "admin_keepalive_timeout": "5s", "log_level": "info"}
A = "callrouted_admin_http_"


@pytest.fixture(autouse=True)
def close_raw_conns():
    yield
    while OPEN_CONNS:
        OPEN_CONNS.pop().close()


@pytest.fixture
def d(env):
    insert_tokens(env)
    d = env.start(LIMITS)
    wait_for(lambda: api(d, "GET", "/v1/numbers?limit=1").status != 503, 10.0 * SLOW,
             what="the admin API's database connection")
    return d


def admin_get(d, name):
    return scrape(d).get(A + name)


def test_admin_metrics_are_their_own(d):
    s = scrape(d)
    for name in ("connections_open", "connections_accepted_total", "connections_refused_total",
                 "request_timeouts_total", "idle_closes_total", "body_too_large_total",
                 "headers_too_large_total", "bad_requests_total"):
        assert s.has(A + name), name
    for reason in ("emfile", "enfile", "other"):
        assert s.has(A + "accept_errors_total", reason=reason)
    # the webhook listener's figures do not count admin connections
    assert s.get("callrouted_http_connections_accepted_total") == 0
    assert s.get(A + "connections_accepted_total") >= 1
    assert not s.has(A + "tls_handshake_failures_total")


def test_connections_over_the_cap_are_refused(d):
    refused0 = admin_get(d, "connections_refused_total")
    conns = [RawConn(d.admin_port) for _ in range(MAX_CONNS)]
    # each of them is accepted and served (keep-alive)
    for c in conns:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
    extra = RawConn(d.admin_port)
    r = extra.read_response(timeout=3.0 * SLOW)
    assert r.status == 503, r
    assert extra.wait_closed() in ("eof", "reset")
    # the open ones still answer
    conns[0].send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conns[0].read_response().status == 200
    for c in conns:
        c.close()
    # room again: the scrape is served, and counted the refusal
    wait_for(lambda: admin_get(d, "connections_refused_total") > refused0, 3.0 * SLOW,
             what="the refusal counted")
    assert admin_get(d, "connections_refused_total") - refused0 == 1
    assert d.readyz().status == 200


def test_head_over_the_limit_is_431(d):
    n0 = admin_get(d, "headers_too_large_total")
    c = RawConn(d.admin_port)
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n")
    r = c.read_response()
    assert r.status == 431, r
    assert admin_get(d, "headers_too_large_total") - n0 == 1
    # just under the limit is fine
    c = RawConn(d.admin_port)
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1800 + b"\r\n\r\n")
    assert c.read_response().status == 200


def test_body_over_the_limit_is_413(d):
    n0 = admin_get(d, "body_too_large_total")
    body = json.dumps({"nickname": "x" * 2000}).encode()
    r = api(d, "PATCH", "/v1/numbers/1", raw=body)
    assert r.status == 413, r
    assert admin_get(d, "body_too_large_total") - n0 == 1
    # chunked, too
    c = RawConn(d.admin_port)
    c.send(b"POST /v1/numbers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           TOKEN_A.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
           b"400\r\n" + b"a" * 1024 + b"\r\n" + b"10\r\n" + b"b" * 16 + b"\r\n0\r\n\r\n")
    assert c.read_response().status == 413
    # a body within the limit reaches the API (which answers for itself: 404 no such number)
    r = api(d, "PATCH", "/v1/numbers/999999", body={"nickname": "ok"})
    assert r.status == 404, r


def test_dripping_client_is_cut_at_the_timeout(d):
    n0 = admin_get(d, "request_timeouts_total")
    c = RawConn(d.admin_port, timeout=10.0)
    t0 = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"d" * 200
    got = None
    others = []
    for i, ch in enumerate(head):
        try:
            c.send(bytes([ch]))
        except Exception:
            break
        time.sleep(0.2)
        # the admin API and health answer other clients meanwhile
        if i % 3 == 0:
            t = time.monotonic()
            assert d.admin("GET", "/healthz").status == 200
            assert api(d, "GET", "/v1/numbers?limit=1").status == 200
            others.append(time.monotonic() - t)
        o = c.outcome(timeout=0.01)
        if o[0] != "open":
            got = o
            break
        if time.monotonic() - t0 > 6.0 * SLOW:
            break
    elapsed = time.monotonic() - t0
    assert got is not None, "still open after %.1f s of dripping" % elapsed
    assert got[0] == "answer" and got[1].status == 408, got
    # cut at the deadline from the first byte: 2 s, not extended by the drip
    assert 1.8 <= elapsed <= 2.0 + 1.5 * SLOW, "cut after %.2f s" % elapsed
    assert max(others) < 1.0 * SLOW, others
    assert admin_get(d, "request_timeouts_total") - n0 == 1


def test_query_strings_are_strict(d):
    assert api(d, "GET", "/v1/numbers?limit=%31").status == 200  # "1", percent-decoded
    r = api(d, "GET", "/v1/numbers?limit=%31")
    assert len(r.json()["numbers"]) == 1
    for q in ("?limit=1&limit=2", "?limit=%zz", "?limit=%3", "?limit", "?=1", "?limit=1&",
              "?status=%00active"):
        r = api(d, "GET", "/v1/numbers" + q)
        assert r.status == 400, (q, r)
        assert r.json()["error"]["code"] == "invalid", (q, r)
    assert api(d, "GET", "/v1/numbers?status=active&provider=retell").status == 200


def test_clients_gone_before_the_answer(d):
    # API requests whose clients close at once: wire.c keeps each connection until the API
    # answers it (the database), then frees it; nothing crashes
    def freed():
        try:  # 503 while the cap is still taken by them
            return admin_get(d, "connections_open") == 1
        except AssertionError:
            return False
    req = (b"GET /v1/numbers?limit=5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           TOKEN_A.encode() + b"\r\n\r\n")
    for round_ in range(8):
        # three at a time (under admin_max_connections), half-closed or closed at once
        for k in range(MAX_CONNS - 1):
            c = RawConn(d.admin_port)
            c.send(req)
            if (round_ + k) % 2:
                c.shutdown_wr()
            c.close()
        wait_for(freed, 5.0 * SLOW, what="the gone clients' connections freed")
    assert api(d, "GET", "/v1/numbers?limit=1").status == 200
    assert d.readyz().status == 200


def test_head_and_method_not_allowed(d):
    c = RawConn(d.admin_port)
    c.send(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response(head=True)
    assert r.status == 200 and r.body == b""
    assert r.header("cache-control") == "no-store"
    assert int(r.header("content-length")) > 0  # the GET's length, no body
    c.send(b"POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    r = c.read_response()
    assert r.status == 405
    assert r.headers["allow"] == ["GET, HEAD"]
    assert r.headers["content-type"] == ["application/json"]
    assert r.json()["error"]["code"] == "method_not_allowed", r
