# test_admin_errors: every error answer of the admin listener has one JSON shape.
"""Issue 11, point 7: the admin listener (its route table in admin.c, the /v1 API in api.c,
the HTTP server's own refusals in wire.c) answers every error as
{"error": {"code": "...", "message": "..."}}; the webhook listener keeps the providers'
{"error": "..."}.
"""

import pytest

from support.rawhttp import OPEN_CONNS, RawConn


@pytest.fixture(autouse=True)
def close_raw_conns():
    yield
    while OPEN_CONNS:
        OPEN_CONNS.pop().close()


def assert_admin_error(r, status, code):
    assert r.status == status, r
    assert r.headers["content-type"] == ["application/json"], r
    j = r.json()
    assert set(j) == {"error"} and set(j["error"]) == {"code", "message"}, j
    assert j["error"]["code"] == code, j
    assert isinstance(j["error"]["message"], str) and j["error"]["message"], j


def raw(port, data):
    c = RawConn(port)
    c.send(data)
    return c.read_response()


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/nothing-here", 404, "not_found"),
    ("GET", "/", 404, "not_found"),
    ("POST", "/healthz", 405, "method_not_allowed"),
    ("DELETE", "/readyz", 405, "method_not_allowed"),
    ("POST", "/metrics", 405, "method_not_allowed"),
    ("POST", "/debug/stall", 404, "not_found"),  # a test hook, off here
    ("GET", "/v1/nothing-here", 404, "not_found"),
    ("PUT", "/v1/numbers", 405, "method_not_allowed"),
    ("GET", "/v1/numbers/abc", 404, "not_found"),
    ("GET", "/v1/numbers", 401, "unauthorized"),
])
def test_admin_routes_answer_one_shape(daemon, method, path, status, code):
    r = raw(daemon.admin_port, b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            % (method.encode(), path.encode()))
    assert_admin_error(r, status, code)
    if status == 405 and not path.startswith("/v1/"):
        assert r.headers["allow"] == ["GET, HEAD"], r


def test_admin_http_refusals_answer_one_shape(daemon):
    assert_admin_error(raw(daemon.admin_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                           b"X-Bad\r\n\r\n"), 400, "invalid")
    assert_admin_error(raw(daemon.admin_port, b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
                       501, "not_implemented")
    assert_admin_error(raw(daemon.admin_port, b"POST /v1/numbers HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 999999999\r\n\r\n"), 413, "too_large")


def test_webhook_listener_keeps_the_provider_shape(daemon):
    r = raw(daemon.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad\r\n\r\n")
    assert r.status == 400, r
    j = r.json()
    assert set(j) == {"error"} and isinstance(j["error"], str) and j["error"], j
