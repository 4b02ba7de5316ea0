# test_hardening: hostile HTTP, limits, slow drips, connection cap, floods, valgrind, faults.
"""Issue 7, items 1 and 5: the webhook listener holds against hostile input and load.

- malformed HTTP (libevent's regress_http.c cases and more), one case per test, each followed
  by a normal signed routing request and a check of the callrouted_http_* counters;
- oversized bodies answered 413 that the client can read (drained, not reset);
- 1,000 slow-drip / idle connections while normal traffic is served (latency printed);
- the connection cap (503 and close, counted), a bad-signature flood while normal traffic is
  served (latency printed, counted), a valgrind run of the core cases;
- fault cases the other files lack: backends killed while the ledger drains, the journal
  directory read-only.
"""

import multiprocessing
import os
import re
import signal
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from support.data import (NUM_BLAND1, NUM_RET1, NUM_RET2, NUM_RET_FREE, NUM_VAPI1,
                          insert_standard_data)
from support.env import Env
from support.load import drip_worker, figures, flood_worker, fmt, raise_nofile
from support.polling import wait_for
from support.rawhttp import OPEN_CONNS, RawConn, raw_request, signed_parts, signed_raw
from support.scrape import scrape
from support.signing import bland_dynamic, retell_inbound, vapi_assistant_request

W = "/v1/webhooks/retell/ret-a"
HDR = "callrouted_http_"
ERR_COUNTERS = ("bad_requests_total", "headers_too_large_total", "body_too_large_total",
                "request_timeouts_total")
MAX_BODY = 4096
MAX_HEADER = 8192
REQUEST_TIMEOUT = 2.0

# The case tables below are signed when pytest collects the module, minutes before the last
# case runs in a full suite; the daemons of this module accept signatures that old (the
# staleness rule itself is tested in test_webhook_errors.py and unit_signature).
SIGNED_AT_COLLECTION = {"signature_tolerance": "2h"}

# The daemon of the malformed-HTTP cases (one for the module: ~100 cases).
LIMITS = {"max_body_bytes": MAX_BODY, "max_header_bytes": MAX_HEADER,
          "request_timeout": "2s", "keepalive_timeout": "5s", "log_level": "info"}


# ---------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def menv(pg, binary, tmp_path_factory):
    holder = SimpleNamespace()
    e = Env(pg, tmp_path_factory.mktemp("hardening"), holder)
    e.create_db()
    e.migrate()
    e.ids = insert_standard_data(e.conn)
    e.defaults = SIGNED_AT_COLLECTION
    yield e
    e.finish()


@pytest.fixture(autouse=True)
def signed_at_collection(request):
    """Every daemon of this module accepts the requests signed at collection."""
    if "env" in request.fixturenames:
        request.getfixturevalue("env").defaults = SIGNED_AT_COLLECTION


@pytest.fixture(autouse=True)
def close_raw_conns():
    """A failed assertion leaves no client connection behind to disturb the next test."""
    yield
    while OPEN_CONNS:
        OPEN_CONNS.pop().close()


@pytest.fixture
def hd(menv, request):
    """The module's limits daemon, (re)started if a previous case killed it."""
    request.node._callrouted_daemons = menv.daemons
    d = menv.daemons[-1] if menv.daemons else None
    if d is None or not d.running():
        if d is not None:
            d.checked = True  # reported by the case that killed it
        d = menv.start(LIMITS, name="limits%d" % (len(menv.daemons) + 1))
    return d


def http_counters(d):
    s = scrape(d)
    out = {name: s.get(HDR + name) for name in ERR_COUNTERS + (
        "connections_accepted_total", "connections_refused_total", "idle_closes_total",
        "connections_open")}
    out["webhook_requests"] = s.sum("callrouted_webhook_requests_total")
    out["sigfail"] = s.sum("callrouted_webhook_signature_failures_total")
    return out


def delta(before, after):
    return {k: after[k] - before[k] for k in before}


def routes_ok(d, what):
    """A normal signed routing request is answered as always."""
    r = retell_inbound(d, NUM_RET1)
    assert r.status == 200, "%s: the normal request afterwards got %r" % (what, r)
    assert r.json()["call_inbound"]["override_agent_id"] == "agent_ret_1", (what, r)


def wait_open(d, n, timeout=3.0):
    wait_for(lambda: http_counters(d)["connections_open"] == n, timeout,
             what="callrouted_http_connections_open == %d" % n)


# ---------------------------------------------------------------------------------------------
# 1. malformed HTTP: the case table
#
# Each case: bytes sent (a list: parts sent with a short pause between them), what must come
# back (a set of acceptable statuses, or CLOSE: no answer and the connection closed), and the
# callrouted_http_* counter that must move by one (None: none of the error counters moves;
# a tuple: any one of them, or none for None in it).

CLOSE = "close"


def head(*lines, body=b""):
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def line(s):
    return s.encode("latin-1") if isinstance(s, str) else s


GOOD = signed_raw("retell", NUM_RET1)


def good_with(*extra):
    """The normal signed request with extra header lines before the signature."""
    return signed_raw("retell", NUM_RET1, extra=[line(x) for x in extra])


def chunked_req(chunk_bytes, extra=()):
    return head(("POST %s HTTP/1.1" % W).encode(), b"Host: 127.0.0.1",
                b"Content-Type: application/json", *[line(x) for x in extra],
                b"Transfer-Encoding: chunked", body=chunk_bytes)


def signed_chunked_with_ext():
    """A signed request whose chunks carry extensions and a trailer: accepted."""
    path, body, sig = signed_parts("retell", NUM_RET1)
    hs = [b"Content-Type: application/json"] + [("%s: %s" % kv).encode() for kv in sig.items()]
    a, b = body[:20], body[20:]
    chunks = (b"%x;name=value\r\n%s\r\n%X; x=\"q\"\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n"
              % (len(a), a, len(b), b))
    return head(("POST %s HTTP/1.1" % path).encode(), b"Host: 127.0.0.1", *hs,
                b"Transfer-Encoding: chunked", body=chunks)


def with_headers(n_extra):
    return signed_raw("retell", NUM_RET1, extra=[("X-H%d" % i, "v") for i in range(n_extra)])


def padded_head(total):
    """The normal signed request with a padding header making its head exactly total bytes."""
    base = good_with("X-Pad: ")
    head_len = base.index(b"\r\n\r\n") + 4
    return good_with("X-Pad: " + "p" * (total - head_len))


TLS_HELLO = bytes.fromhex("160301009a0100009603030000000000000000000000000000000000000000000000"
                          "00000000000000000000000000001ec02bc02fcca9cca8c02cc030c00ac009c013"
                          "c014009c009d002f0035000a0100004f")

CASES = [
    # ---- request line ----
    ("missing_version", [head(line("POST %s" % W), b"Host: x")], {400}, "bad_requests_total"),
    ("http_0_9", [b"GET /\r\n\r\n"], {400}, "bad_requests_total"),
    ("empty_version", [head(line("GET %s " % W), b"Host: x")], {400}, "bad_requests_total"),
    ("two_spaces_after_method", [head(line("GET  %s HTTP/1.1" % W), b"Host: x")], {400},
     "bad_requests_total"),
    ("two_spaces_before_version", [head(line("GET %s  HTTP/1.1" % W), b"Host: x")], {400},
     "bad_requests_total"),
    ("trailing_space", [head(line("GET %s HTTP/1.1 " % W), b"Host: x")], {400},
     "bad_requests_total"),
    ("leading_space", [head(line(" GET %s HTTP/1.1" % W), b"Host: x")], {400},
     "bad_requests_total"),
    ("tabs_as_separators", [head(line("GET\t%s\tHTTP/1.1" % W), b"Host: x")], {400},
     "bad_requests_total"),
    ("no_target", [head(b"GET HTTP/1.1", b"Host: x")], {400}, "bad_requests_total"),
    # absolute-form: RFC 9112 3.2.2 says a server MUST accept it (libevent does); refusing
    # it with 400 is what a webhook endpoint may do too: either, but never misrouted
    ("absolute_form", [signed_raw("retell", NUM_RET1, target="http://127.0.0.1" + W)],
     {200, 400}, ("bad_requests_total", None)),
    ("absolute_form_other_path", [head(b"GET http://127.0.0.1/nope HTTP/1.1", b"Host: x")],
     {400, 404}, ("bad_requests_total", None)),
    # RFC 9112 2.2: a server SHOULD ignore an empty line before the request line
    ("leading_empty_line", [b"\r\n" + GOOD], {200, 400}, ("bad_requests_total", None)),
    # bare LF line ends (RFC 9112 2.2: MAY be accepted); never hanging past request_timeout
    ("bare_lf_line_ends", [GOOD.replace(b"\r\n", b"\n")], {200, 400, 408},
     ("bad_requests_total", "request_timeouts_total", None)),
    ("target_not_origin_form", [head(b"GET * HTTP/1.1", b"Host: x")], {400},
     "bad_requests_total"),
    ("ctl_in_target", [head(line("GET /v1/web\x01hooks HTTP/1.1"), b"Host: x")], {400},
     "bad_requests_total"),
    ("del_in_target", [head(line("GET /v1/web\x7fhooks HTTP/1.1"), b"Host: x")], {400},
     "bad_requests_total"),
    # methods are case-sensitive: "post" is an unknown method.  RFC 9110 9.1 and libevent's
    # http_allowed_methods_test: an unknown method gets 501; it must never be taken as POST.
    ("lowercase_method", [signed_raw("retell", NUM_RET1, method="post")], {501},
     ("bad_requests_total", None)),
    ("unknown_method", [signed_raw("retell", NUM_RET1, method="BREW")], {501},
     ("bad_requests_total", None)),
    ("non_token_method", [head(line("G(T %s HTTP/1.1" % W), b"Host: x")], {400},
     "bad_requests_total"),
    ("http_2_0", [head(line("GET %s HTTP/2.0" % W), b"Host: x")], {505}, "bad_requests_total"),
    ("http_3_0", [head(line("GET %s HTTP/3.0" % W), b"Host: x")], {505}, "bad_requests_total"),
    # HTTP/1.2: RFC 9110 6.2 says SHOULD be processed as 1.1; refusing with 505 is also sane
    ("http_1_2", [signed_raw("retell", NUM_RET1, version="HTTP/1.2")], {505, 200},
     ("bad_requests_total", None)),
    ("lowercase_http_name", [head(line("GET %s http/1.1" % W), b"Host: x")], {400, 505},
     "bad_requests_total"),
    ("garbage_version", [head(line("GET %s HTTP/1.x" % W), b"Host: x")], {400, 505},
     "bad_requests_total"),
    ("garbage_bytes", [b"\x8f\xa3\xfe\x00\x13garbage\xff\xee\xdd\r\n\r\n"], {400},
     "bad_requests_total"),
    ("only_crlfs", [b"\r\n\r\n"], {400}, "bad_requests_total"),
    ("nul_in_method", [head(line("PO\x00ST %s HTTP/1.1" % W), b"Host: x")], {400},
     "bad_requests_total"),
    ("nul_in_target", [head(line("GET /v1/\x00webhooks HTTP/1.1"), b"Host: x")], {400},
     "bad_requests_total"),
    ("nul_in_version", [head(line("GET %s HTTP/1.1\x00" % W), b"Host: x")], {400},
     "bad_requests_total"),
    # a TLS ClientHello on the plain port: never a request head; refused, at the latest by
    # request_timeout
    ("tls_client_hello", [TLS_HELLO], {400, 408}, ("bad_requests_total",
                                                   "request_timeouts_total")),

    # ---- headers ----
    ("header_without_colon", [good_with("X-Foo bar")], {400}, "bad_requests_total"),
    ("space_before_colon", [good_with("X-Foo : bar")], {400}, "bad_requests_total"),
    ("empty_header_name", [good_with(": bar")], {400}, "bad_requests_total"),
    ("non_token_header_name", [good_with("X(Foo): bar")], {400}, "bad_requests_total"),
    ("obs_fold", [good_with("X-Multi: aaaa", "  bbbb")], {400}, "bad_requests_total"),
    ("obs_fold_tab", [good_with("X-Multi: aaaa", "\tbbbb")], {400}, "bad_requests_total"),
    ("ws_before_first_header",
     [head(line("GET %s HTTP/1.1" % W), b" Host: x")], {400}, "bad_requests_total"),
    ("ctl_in_header_value", [good_with("X-Foo: a\x01b")], {400}, "bad_requests_total"),
    ("del_in_header_value", [good_with("X-Foo: a\x7fb")], {400}, "bad_requests_total"),
    ("cr_in_header_value", [good_with("X-Foo: a\rb")], {400}, "bad_requests_total"),
    # values are checked eight bytes at a time: a control character in any lane of a word,
    # and in the tail after the last whole word, is still refused; a tab and bytes of 0x80
    # and up (obs-text) are not
    *[("ctl_at_%d_of_long_value" % k, [good_with("X-Foo: " + "a" * k + ch + "b" * 40)], {400},
       "bad_requests_total") for k, ch in ((0, "\x01"), (5, "\x1f"), (8, "\x7f"),
                                           (13, "\r"), (31, "\x00"), (47, "\x02"))],
    ("ctl_at_end_of_long_value", [good_with("X-Foo: " + "a" * 43 + "\x03")], {400},
     "bad_requests_total"),
    ("tab_in_long_value", [good_with("X-Foo: " + "a" * 11 + "\t" + "b" * 30)], {200}, None),
    ("obs_text_long_value", [good_with("X-Foo: caf\xe9 " + "\xc3\xa9" * 20)], {200}, None),
    ("lf_in_header_value", [good_with("X-Foo: a\nX-Bar: b")], {400}, "bad_requests_total"),
    ("nul_in_header_name", [good_with("X-F\x00oo: b")], {400}, "bad_requests_total"),
    # RFC 9110 5.5: a field value with NUL MUST be rejected (or the NUL replaced by SP); it
    # must not end the header section early
    ("nul_in_header_value", [good_with("X-Foo: a\x00b")], {400}, "bad_requests_total"),
    ("64_headers_accepted", [with_headers(60)], {200}, None),
    ("65_headers", [with_headers(61)], {431}, "headers_too_large_total"),
    ("head_exactly_max_header_bytes", [padded_head(MAX_HEADER)], {200}, None),
    ("head_over_max_header_bytes", [padded_head(MAX_HEADER + 64)], {431},
     "headers_too_large_total"),
    ("unterminated_head_over_max",
     [line("GET %s HTTP/1.1\r\nHost: x\r\nX-Big: " % W) + b"b" * (MAX_HEADER + 100)], {431},
     "headers_too_large_total"),
    ("long_target", [head(line("GET /" + "a" * (MAX_HEADER + 10) + " HTTP/1.1"), b"Host: x")],
     {414, 431}, "headers_too_large_total"),

    # ---- Content-Length ----
    ("cl_negative", [raw_request("POST", W, b"{}", [
        ("Content-Type", "application/json"), ("Content-Length", "-1")],
        content_length=False)], {400}, "bad_requests_total"),
    ("cl_non_numeric", [raw_request("POST", W, b"{}", [("Content-Length", "abc")],
                                    content_length=False)], {400}, "bad_requests_total"),
    ("cl_trailing_garbage", [raw_request("POST", W, b"{}", [("Content-Length", "2abc")],
                                         content_length=False)], {400}, "bad_requests_total"),
    ("cl_plus_sign", [raw_request("POST", W, b"{}", [("Content-Length", "+2")],
                                  content_length=False)], {400}, "bad_requests_total"),
    ("cl_hex", [raw_request("POST", W, b"{}", [("Content-Length", "0x2")],
                            content_length=False)], {400}, "bad_requests_total"),
    ("cl_empty", [raw_request("POST", W, b"{}", [("Content-Length", "")],
                              content_length=False)], {400}, "bad_requests_total"),
    ("cl_inner_space", [raw_request("POST", W, b"{}", [("Content-Length", "1 1")],
                                    content_length=False)], {400}, "bad_requests_total"),
    ("cl_overflows_64_bits",
     [raw_request("POST", W, b"{}", [("Content-Length", "99999999999999999999999999")],
                  content_length=False)], {400, 413},
     ("bad_requests_total", "body_too_large_total")),
    ("cl_2_pow_64", [raw_request("POST", W, b"{}", [("Content-Length", "18446744073709551616")],
                                 content_length=False)], {400, 413},
     ("bad_requests_total", "body_too_large_total")),
    ("cl_10_gib", [raw_request("POST", W, b"{}", [("Content-Length", "10737418240")],
                               content_length=False)], {413}, "body_too_large_total"),
    ("cl_duplicate_different",
     [raw_request("POST", W, b"{}", [("Content-Length", "2"), ("Content-Length", "3")],
                  content_length=False)], {400}, "bad_requests_total"),
    ("cl_duplicate_same",
     [raw_request("POST", W, b"{}", [("Content-Length", "2"), ("Content-Length", "2")],
                  content_length=False)], {400}, "bad_requests_total"),
    ("cl_list", [raw_request("POST", W, b"{}", [("Content-Length", "2, 3")],
                             content_length=False)], {400}, "bad_requests_total"),
    ("cl_and_te", [head(line("POST %s HTTP/1.1" % W), b"Host: x", b"Content-Length: 7",
                        b"Transfer-Encoding: chunked", body=b"2\r\n{}\r\n0\r\n\r\n")], {400},
     "bad_requests_total"),
    ("te_and_cl", [head(line("POST %s HTTP/1.1" % W), b"Host: x", b"Transfer-Encoding: chunked",
                        b"Content-Length: 7", body=b"2\r\n{}\r\n0\r\n\r\n")], {400},
     "bad_requests_total"),

    # ---- Transfer-Encoding ----
    ("te_gzip", [head(
        line("POST %s HTTP/1.1" % W), b"Host: x", b"Transfer-Encoding: gzip", body=b"{}")],
     {400, 501}, "bad_requests_total"),
    ("te_identity", [head(line("POST %s HTTP/1.1" % W), b"Host: x",
                          b"Transfer-Encoding: identity", body=b"{}")], {400, 501},
     "bad_requests_total"),
    ("te_gzip_chunked", [head(line("POST %s HTTP/1.1" % W), b"Host: x",
                              b"Transfer-Encoding: gzip, chunked",
                              body=b"2\r\n{}\r\n0\r\n\r\n")], {400, 501},
     "bad_requests_total"),
    ("te_chunked_then_gzip", [head(line("POST %s HTTP/1.1" % W), b"Host: x",
                                   b"Transfer-Encoding: chunked, gzip",
                                   body=b"2\r\n{}\r\n0\r\n\r\n")], {400, 501},
     "bad_requests_total"),
    # two field lines: the value is "chunked, gzip", chunked is not the final coding (RFC
    # 9112 6.3: 400 and close); taking the first line alone is a request-smuggling gap
    ("te_two_lines_chunked_gzip", [head(line("POST %s HTTP/1.1" % W), b"Host: x",
                                        b"Transfer-Encoding: chunked",
                                        b"Transfer-Encoding: gzip",
                                        body=b"2\r\n{}\r\n0\r\n\r\n")], {400, 501},
     "bad_requests_total"),
    ("te_in_http_1_0", [head(line("POST %s HTTP/1.0" % W), b"Host: x",
                             b"Transfer-Encoding: chunked", body=b"2\r\n{}\r\n0\r\n\r\n")],
     {400, 501}, "bad_requests_total"),
    ("te_chunked_capitalised", [signed_raw("retell", NUM_RET1, chunked=True).replace(
        b"Transfer-Encoding: chunked", b"Transfer-Encoding: Chunked")], {200}, None),

    # ---- chunked bodies ----
    ("chunked_valid_signed", [signed_raw("retell", NUM_RET1, chunked=True)], {200}, None),
    ("chunked_extensions_and_trailer", [signed_chunked_with_ext()], {200}, None),
    ("chunk_bad_hex", [chunked_req(b"zz\r\nhello\r\n0\r\n\r\n")], {400}, "bad_requests_total"),
    ("chunk_missing_crlf_after_data", [chunked_req(b"5\r\nhelloXX\r\n0\r\n\r\n")], {400},
     "bad_requests_total"),
    ("chunk_size_overflow", [chunked_req(b"1" + b"0" * 20 + b"\r\nhello\r\n0\r\n\r\n")],
     {400, 413}, ("bad_requests_total", "body_too_large_total")),
    ("chunk_size_huge", [chunked_req(b"fffffffffffffff\r\nhello\r\n0\r\n\r\n")], {400, 413},
     ("bad_requests_total", "body_too_large_total")),
    ("chunk_size_negative", [chunked_req(b"-5\r\nhello\r\n0\r\n\r\n")], {400},
     "bad_requests_total"),
    ("chunk_size_leading_space", [chunked_req(b" 5\r\nhello\r\n0\r\n\r\n")], {400},
     "bad_requests_total"),
    ("chunk_size_missing", [chunked_req(b"\r\nhello\r\n0\r\n\r\n")], {400},
     "bad_requests_total"),
    ("chunk_size_line_unterminated", [chunked_req(b"5" * 100)], {400}, "bad_requests_total"),
    ("chunk_size_0x_prefix", [chunked_req(b"0x5\r\nhello\r\n0\r\n\r\n")], {400},
     "bad_requests_total"),

    # ---- incomplete requests (REQUEST_TIMEOUT is 2 s) ----
    ("nothing_then_shutdown", [b"", "SHUT_WR"], CLOSE, None),
    ("close_mid_head", [line("POST %s HTTP/1.1\r\nHost: x\r\nContent-Le" % W), "CLOSE"],
     CLOSE, None),
    ("close_mid_body", [head(line("POST %s HTTP/1.1" % W), b"Host: x", b"Content-Length: 100",
                             body=b"0123456789"), "CLOSE"], CLOSE, None),
    ("shutdown_mid_body", [head(line("POST %s HTTP/1.1" % W), b"Host: x",
                                b"Content-Length: 100", body=b"0123456789"), "SHUT_WR"],
     {CLOSE, 400}, ("bad_requests_total", None)),
    ("shutdown_mid_chunked_body", [chunked_req(b"5\r\nhel"), "SHUT_WR"], {CLOSE, 400},
     ("bad_requests_total", None)),
    ("stall_mid_head", [line("POST %s HTTP/1.1\r\nHost: x\r\nContent-Le" % W)], {408},
     "request_timeouts_total"),
    ("stall_mid_body", [head(line("POST %s HTTP/1.1" % W), b"Host: x", b"Content-Length: 100",
                             body=b"0123456789")], {408}, "request_timeouts_total"),
    ("stall_mid_chunk", [chunked_req(b"5\r\nhel")], {408}, "request_timeouts_total"),
    ("stall_before_last_crlf", [chunked_req(b"2\r\n{}\r\n0\r\n")], {408},
     "request_timeouts_total"),
    ("head_split_in_pieces", [GOOD[:7], GOOD[7:30], GOOD[30:]], {200}, None),
    ("complete_request_then_shutdown", [GOOD, "SHUT_WR"], {200}, None),
]


@pytest.mark.parametrize("name,parts,want,counter", CASES, ids=[c[0] for c in CASES])
def test_malformed_http(hd, name, parts, want, counter):
    d = hd
    before = http_counters(d)
    c = RawConn(d.port)
    try:
        _run_case(d, c, name, parts, want)
    finally:
        c.close()

    # the daemon lives and serves, and the connection is gone from its books
    assert d.running(), "%s: the daemon died\n%s" % (name, d.log_tail(30))
    routes_ok(d, name)
    wait_open(d, 0)
    dl = delta(before, http_counters(d))
    moved = {k: dl[k] for k in ERR_COUNTERS if dl[k]}
    allowed = counter if isinstance(counter, tuple) else (counter,)
    ok = any((moved == {} if a is None else moved == {a: 1}) for a in allowed)
    assert ok, "%s: error counters moved %r, want one of %r" % (name, moved, allowed)
    assert dl["connections_accepted_total"] == 2, dl  # the case's and the check's


def _run_case(d, c, name, parts, want):
    t0 = time.monotonic()
    closed_by_us = False
    for p in parts:
        if p == "SHUT_WR":
            c.shutdown_wr()
        elif p == "CLOSE":
            c.close()
            closed_by_us = True
        else:
            c.send(p)
            if len(parts) > 1:
                time.sleep(0.05)
    wait = REQUEST_TIMEOUT + 2.0
    if closed_by_us:
        kind, r = "eof", None
    else:
        kind, r = c.outcome(wait)
    took = time.monotonic() - t0
    wants = want if isinstance(want, set) else {want}
    if kind == "answer":
        assert r.status in wants, "%s: got %r (%s), want %s" % (name, r, r.raw_head[:200],
                                                              sorted(map(str, wants)))
        if r.status >= 400:
            # the server's own refusals close the connection (a handler's 4xx need not)
            assert r.header("content-type") == "application/json", r.raw_head
        if r.status in (400, 408, 413, 431, 501, 505):
            after = c.wait_closed(2.0)
            assert after in ("eof", "reset"), "%s: connection %s after %d" % (name, after,
                                                                              r.status)
        if r.status == 408:
            assert REQUEST_TIMEOUT - 0.2 <= took <= REQUEST_TIMEOUT + 1.5, \
                "%s: 408 after %.2fs (request_timeout %.1fs)" % (name, took, REQUEST_TIMEOUT)
        if r.status == 200:
            assert r.json()["call_inbound"]["override_agent_id"] == "agent_ret_1", r
    else:
        assert CLOSE in wants, "%s: no answer (%s after %.2fs), want %s" % (
            name, kind, took, sorted(map(str, wants)))
        assert kind in ("eof", "reset"), "%s: connection still open after %.1fs" % (name, took)
    print("%s: %s %s in %.3fs" % (name, kind, r.status if r else "", took))


# ---- 1. pipelining, 100-continue, HTTP/1.0, HEAD ----

def test_pipelined_three_in_one_write(hd):
    d = hd
    before = http_counters(d)
    c = RawConn(d.port)
    c.send(signed_raw("retell", NUM_RET2) + signed_raw("vapi", NUM_VAPI1)
           + signed_raw("bland", NUM_BLAND1))
    r1, r2, r3 = (c.read_response() for _ in range(3))
    assert [r1.status, r2.status, r3.status] == [200, 200, 200], (r1, r2, r3)
    assert r1.json()["call_inbound"]["override_agent_id"] == "agent_ret_2", r1
    assert r2.json()["assistantId"] == "asst_vapi_1", r2
    assert "agent_name" in r3.body.decode() or r3.json(), r3
    assert c.wait_closed(0.3) == "open"  # keep-alive
    # the same again, split at odd places across the three requests
    data = signed_raw("retell", NUM_RET1) + signed_raw("retell", NUM_RET2) + \
        signed_raw("retell", NUM_RET_FREE)
    for a, b in ((0, 5), (5, 400), (400, 401), (401, len(data))):
        c.send(data[a:b])
        time.sleep(0.02)
    got = [c.read_response().json()["call_inbound"].get("override_agent_id") for _ in range(3)]
    assert got == ["agent_ret_1", "agent_ret_2", None], got
    c.close()
    assert delta(before, http_counters(d))["connections_accepted_total"] == 1


def test_pipelined_fifty_in_one_write(hd):
    d = hd
    nums = [NUM_RET1, NUM_RET2, NUM_RET_FREE] * 17
    c = RawConn(d.port)
    c.send(b"".join(signed_raw("retell", n) for n in nums[:50]))
    want = {NUM_RET1: "agent_ret_1", NUM_RET2: "agent_ret_2", NUM_RET_FREE: None}
    got = [c.read_response().json()["call_inbound"].get("override_agent_id") for _ in range(50)]
    assert got == [want[n] for n in nums[:50]]
    c.close()


def test_pipelined_call_event_waits_for_its_fsync_in_order(hd):
    """A call event (answered after its journal fsync) pipelined before routing requests:
    answers come back in request order."""
    from support.ledger import new_id, retell_event
    import json as _json
    body = _json.dumps(retell_event("call_ended", new_id("pipe"), "inbound", NUM_RET1),
                       separators=(",", ":")).encode()
    from support.data import RETELL_KEY
    from support.signing import sw
    ev = raw_request("POST", W, body, [("Content-Type", "application/json")]
                     + list(sw.retell_headers(RETELL_KEY, body).items()))
    c = RawConn(hd.port)
    c.send(ev + signed_raw("retell", NUM_RET2) + ev + signed_raw("retell", NUM_RET1))
    rs = [c.read_response() for _ in range(4)]
    assert [r.status for r in rs] == [200] * 4, rs
    assert rs[0].json() == {} and rs[2].json() == {}, rs
    assert rs[1].json()["call_inbound"]["override_agent_id"] == "agent_ret_2"
    assert rs[3].json()["call_inbound"]["override_agent_id"] == "agent_ret_1"
    c.close()


def test_nul_in_header_value_cannot_smuggle_a_request(hd):
    """A NUL in a header value must get 400 (RFC 9110 5.5); if the header section were cut at
    the NUL, the Content-Length after it would be lost and the body, a whole signed request,
    would be served as a second request (request smuggling)."""
    d = hd
    before = http_counters(d)
    smuggled = signed_raw("retell", NUM_RET2)
    c = RawConn(d.port)
    try:
        c.send(head(line("GET /nowhere HTTP/1.1"), b"Host: x", b"X-A: a\x00",
                    b"Content-Length: %d" % len(smuggled), body=smuggled))
        answers = []
        while True:
            kind, r = c.outcome(1.0)
            if kind != "answer":
                break
            answers.append(r)
    finally:
        c.close()
    print("answers: %r" % answers)
    served = [r for r in answers if r.status == 200]
    assert not served, "the body was served as a request of its own: %r" % served
    assert [r.status for r in answers] == [400], answers
    wait_open(d, 0)
    assert delta(before, http_counters(d))["bad_requests_total"] == 1


def test_pipelined_close_ends_the_pipeline(hd):
    """A request with Connection: close in a pipeline: its answer (with Connection: close) is
    the last; the requests behind it get none, and the connection closes."""
    d = hd
    c = RawConn(d.port)
    try:
        c.send(GOOD + good_with("Connection: close") + GOOD + GOOD)
        answers = []
        while True:
            kind, r = c.outcome(1.0)
            if kind != "answer":
                break
            answers.append(r)
    finally:
        c.close()
    assert [r.status for r in answers] == [200, 200], answers
    assert kind in ("eof", "reset"), kind
    assert answers[0].header("Connection") is None, answers[0].headers
    assert answers[1].header("Connection") == "close", answers[1].headers
    wait_open(d, 0)
    routes_ok(d, "after a pipeline cut by Connection: close")


def test_pipelined_good_bad_good(hd):
    d = hd
    before = http_counters(d)
    c = RawConn(d.port)
    c.send(GOOD + b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n" + GOOD)
    r1 = c.read_response()
    assert r1.status == 200, r1
    r2 = c.read_response()
    assert r2.status == 400, r2
    assert c.wait_closed(2.0) in ("eof", "reset"), "not closed after the 400"
    c.close()
    dl = delta(before, http_counters(d))
    assert dl["bad_requests_total"] == 1, dl
    routes_ok(d, "good-bad-good")


def test_expect_100_continue(hd):
    d = hd
    path, body, sig = signed_parts("retell", NUM_RET1)
    hs = [("Content-Type", "application/json"), ("Expect", "100-continue")] + list(sig.items())
    req = raw_request("POST", path, body, hs)
    h, b = req[:req.index(b"\r\n\r\n") + 4], req[req.index(b"\r\n\r\n") + 4:]
    c = RawConn(d.port)
    c.send(h)
    r = c.read_response(2.0, interim=True)
    assert r.status == 100, r
    c.send(b)
    r = c.read_response()
    assert r.status == 200 and r.json()["call_inbound"]["override_agent_id"] == "agent_ret_1", r
    # a second request on the connection: 100 again
    c.send(h)
    assert c.read_response(2.0, interim=True).status == 100
    c.send(b)
    assert c.read_response().status == 200
    # body sent along with the head: no 100 needed, none harmful
    c.send(req)
    assert c.read_response().status == 200
    c.close()


def test_expect_100_continue_chunked(hd):
    path, body, sig = signed_parts("retell", NUM_RET1)
    hs = [("Content-Type", "application/json"), ("Expect", "100-continue")] + list(sig.items())
    req = raw_request("POST", path, headers=hs, chunked=[body[:10], body[10:]])
    cut = req.index(b"\r\n\r\n") + 4
    c = RawConn(hd.port)
    c.send(req[:cut])
    assert c.read_response(2.0, interim=True).status == 100
    c.send(req[cut:])
    r = c.read_response()
    assert r.status == 200, r
    c.close()


def test_expect_100_continue_over_limit_gets_413_not_100(hd):
    d = hd
    before = http_counters(d)
    c = RawConn(d.port)
    c.send(head(line("POST %s HTTP/1.1" % W), b"Host: x", b"Content-Type: application/json",
                b"Expect: 100-continue", b"Content-Length: 1048576"))
    r = c.read_response(2.0, interim=True)
    assert r.status == 413, "want 413 before any body, got %r" % r
    c.close()
    wait_open(d, 0)
    assert delta(before, http_counters(d))["body_too_large_total"] == 1
    routes_ok(d, "expect over limit")


def test_http_1_0_without_keep_alive_closes(hd):
    c = RawConn(hd.port)
    c.send(signed_raw("retell", NUM_RET1, version="HTTP/1.0"))
    r = c.read_response()
    assert r.status == 200 and r.json()["call_inbound"]["override_agent_id"] == "agent_ret_1"
    assert (r.header("connection") or "").lower() == "close", r.raw_head
    assert c.wait_closed(1.0) == "eof"
    c.close()


def test_http_1_0_keep_alive_stays_open(hd):
    c = RawConn(hd.port)
    req = signed_raw("retell", NUM_RET1, version="HTTP/1.0", extra=[("Connection", "keep-alive")])
    c.send(req)
    r = c.read_response()
    assert r.status == 200, r
    print("HTTP/1.0 keep-alive answer's Connection header: %r" % r.header("connection"))
    assert (r.header("connection") or "").lower() != "close", r.raw_head
    assert c.wait_closed(0.3) == "open"
    c.send(req)
    assert c.read_response().status == 200
    c.close()


def test_http_1_1_connection_close(hd):
    c = RawConn(hd.port)
    c.send(signed_raw("retell", NUM_RET1, extra=[("Connection", "close")]))
    r = c.read_response()
    assert r.status == 200 and (r.header("connection") or "").lower() == "close", r.raw_head
    assert c.wait_closed(1.0) == "eof"
    c.close()


def test_head_has_no_body(hd):
    """HEAD: the answer's head only, and the next pipelined request is read right."""
    c = RawConn(hd.port)
    c.send(raw_request("GET", W, content_length=False))
    g = c.read_response()
    assert g.status == 405, g
    c.send(raw_request("HEAD", W, content_length=False) + GOOD)
    h = c.read_response(head=True)
    assert h.status == 405, h
    r = c.read_response()   # a body after the HEAD answer would show up here
    assert r.status == 200 and r.json()["call_inbound"]["override_agent_id"] == "agent_ret_1", r
    assert c.wait_closed(0.3) == "open"
    # RFC 9110 8.6: Content-Length in a HEAD answer, if sent, is the GET answer's
    cl = h.header("content-length")
    assert cl is None or int(cl) == len(g.body), \
        "HEAD answer says Content-Length %s, the GET answer has %d bytes" % (cl, len(g.body))
    c.close()


def test_keepalive_idle_connection_closed(hd):
    """keepalive_timeout 5 s in the module's daemon: an idle keep-alive connection closes."""
    d = hd
    before = http_counters(d)
    c = RawConn(d.port)
    c.send(GOOD)
    assert c.read_response().status == 200
    t0 = time.monotonic()
    assert c.wait_closed(8.0) == "eof"
    took = time.monotonic() - t0
    print("idle keep-alive connection closed after %.2fs (keepalive_timeout 5s)" % took)
    assert 4.8 <= took <= 6.5, took
    assert delta(before, http_counters(d))["idle_closes_total"] == 1


# ---------------------------------------------------------------------------------------------
# 2. oversized bodies: the client reads the 413

def _send_in_thread(c, data):
    res = {}

    def run():
        res["err"] = c.send_try(data)
    t = threading.Thread(target=run)
    t.start()
    return t, res


def test_1mib_body_with_content_length_gets_413_not_reset(hd):
    d = hd
    before = http_counters(d)
    body = b"{" + b" " * (1 << 20) + b"}"
    c = RawConn(d.port, timeout=10)
    t, res = _send_in_thread(c, raw_request("POST", W, body,
                                            [("Content-Type", "application/json")]))
    kind, r = c.outcome(10.0)
    t.join(10)
    assert kind == "answer" and r.status == 413, "client saw %s %r (send: %r)" % (kind, r, res)
    assert res.get("err") is None, "the daemon did not drain the body: send failed with %s" \
        % res.get("err")
    assert c.wait_closed(3.0) == "eof"
    c.close()
    dl = delta(before, http_counters(d))
    assert dl["body_too_large_total"] == 1 and dl["bad_requests_total"] == 0, dl
    routes_ok(d, "1 MiB body")


def test_body_of_exactly_max_body_bytes_accepted(hd):
    import json as _json
    from support.data import RETELL_KEY
    from support.signing import sw
    obj = sw.retell_call_inbound(NUM_RET1)
    base = len(_json.dumps(dict(obj, pad=""), separators=(",", ":")))
    obj["pad"] = "x" * (MAX_BODY - base)
    body = _json.dumps(obj, separators=(",", ":")).encode()
    assert len(body) == MAX_BODY
    r = hd.post("retell", "ret-a", body, sw.retell_headers(RETELL_KEY, body))
    assert r.status == 200, r
    body2 = body[:-1] + b" }"
    r = hd.post("retell", "ret-a", body2, sw.retell_headers(RETELL_KEY, body2))
    assert r.status == 413, r


def _http_client_post(port, body, chunked):
    """What an ordinary client (http.client, as in python-requests) makes of the answer."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", W, body=body, headers={"Content-Type": "application/json"},
                  encode_chunked=chunked)
        return c.getresponse().status
    except OSError as e:
        return type(e).__name__
    finally:
        c.close()


def test_1mib_body_http_client_reads_413(hd):
    got = _http_client_post(hd.port, b" " * (1 << 20), chunked=False)
    assert got == 413, got


@pytest.mark.parametrize("chunk_kib", [64, 1], ids=["64KiB_chunks", "1KiB_chunks"])
def test_chunked_body_over_limit_gets_413_not_reset(hd, chunk_kib):
    """Chunked over max_body_bytes: 413, and the rest of the body drained like a
    Content-Length one, so that a client still writing sees the 413 and not a reset."""
    d = hd
    before = http_counters(d)
    chunk = b" " * (chunk_kib * 1024)
    n = (1 << 20) // len(chunk)
    c = RawConn(d.port, timeout=10)
    data = raw_request("POST", W, headers=[("Content-Type", "application/json")],
                       chunked=[chunk] * n)
    t, res = _send_in_thread(c, data)
    kind, r = c.outcome(10.0)
    t.join(10)
    c.close()
    via_client = _http_client_post(d.port, iter([chunk] * n), chunked=True)
    print("chunked 1 MiB (%d KiB chunks): raw client read %s %s, its send: %s; "
          "http.client got %s" % (chunk_kib, kind, r.status if r else "",
                                  res.get("err") or "completed", via_client))
    assert kind == "answer" and r.status == 413, \
        "client saw %s instead of the 413 (its send: %s)" % (kind, res.get("err"))
    wait_open(d, 0)
    dl = delta(before, http_counters(d))
    assert dl["body_too_large_total"] == 2, dl
    routes_ok(d, "chunked over limit")
    assert res.get("err") is None and via_client == 413, \
        "the chunked body was not drained: the raw client's send failed with %s, " \
        "http.client got %s instead of 413" % (res.get("err"), via_client)


def test_header_flood_gets_431(hd):
    """1 MiB of header lines: 431 (the daemon may cut the rest short; the client is told)."""
    d = hd
    before = http_counters(d)
    c = RawConn(d.port, timeout=10)
    data = line("POST %s HTTP/1.1\r\nHost: x\r\n" % W) + b"X-A: aaaaaaaaaaaaaaaa\r\n" * 50000
    t, res = _send_in_thread(c, data)
    kind, r = c.outcome(10.0)
    t.join(10)
    print("1 MiB header flood: client saw %s %s; its send: %s"
          % (kind, r.status if r else "", res.get("err") or "completed"))
    assert kind == "answer" and r.status == 431, (kind, r, res)
    c.close()
    wait_open(d, 0)
    assert delta(before, http_counters(d))["headers_too_large_total"] == 1
    routes_ok(d, "header flood")


# ---------------------------------------------------------------------------------------------
# 3. 1,000 slow-drip and idle connections while normal traffic is served

N_DRIP, N_IDLE = 700, 300
SLOW_P99_BOUND_MS = 50.0


def _normal_traffic(d, seconds, out):
    """Signed routing requests one after another (a new connection each) for `seconds`."""
    provs = [("retell", lambda: retell_inbound(d, NUM_RET1)),
             ("vapi", lambda: vapi_assistant_request(d, NUM_VAPI1)),
             ("bland", lambda: bland_dynamic(d, NUM_BLAND1))]
    t_end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < t_end:
        name, fn = provs[i % 3]
        t0 = time.monotonic()
        try:
            r = fn()
            out["lat"].append(time.monotonic() - t0)
            if r.status != 200:
                out["bad"].append((name, r.status, r.body[:100]))
        except OSError as e:
            out["bad"].append((name, type(e).__name__, str(e)))
        i += 1


def test_slow_drip_1000_connections(env):
    """1,000 hostile connections kept open all along (each one cut is replaced at once): 700
    drip a request head one byte per 250 ms, 300 send nothing.  request_timeout 2 s cuts the
    drippers with a 408, keepalive_timeout 1 s closes the silent ones; normal signed traffic
    is served meanwhile."""
    raise_nofile(8192)
    d = env.start({"request_timeout": "2s", "keepalive_timeout": "1s", "log_level": "info"})
    routes_ok(d, "warm-up")
    with open("/proc/%d/limits" % d.proc.pid) as f:
        lim = [ln for ln in f if ln.startswith("Max open files")][0].split()
    print("daemon RLIMIT_NOFILE soft %s hard %s" % (lim[3], lim[4]))
    assert int(lim[3]) > N_DRIP + N_IDLE + 100, lim
    before = http_counters(d)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    ready = ctx.Event()
    duration = 5.0
    p = ctx.Process(target=drip_worker,
                    args=(d.port, N_DRIP, N_IDLE, duration, 0.25, child, ready))
    p.start()
    try:
        assert ready.wait(20), "the drip process did not start"
        time.sleep(0.3)
        opened = http_counters(d)["connections_open"]
        print("connections open with the drippers in: %d" % opened)
        assert opened >= 0.98 * (N_DRIP + N_IDLE), opened
        out = {"lat": [], "bad": []}
        samples, stop = [], threading.Event()

        def sampler():
            while not stop.wait(0.25):
                samples.append(http_counters(d)["connections_open"])
        st = threading.Thread(target=sampler)
        st.start()
        try:
            _normal_traffic(d, 4.0, out)
        finally:
            stop.set()
            st.join()
        assert parent.poll(duration + 20), "no report from the drip process"
        recs = parent.recv()
    finally:
        p.join(30)
        if p.is_alive():
            p.kill()
    f = figures(out["lat"])
    print("normal traffic during 1,000 slow connections: %s (bound p99 < %.0f ms)"
          % (fmt(f), SLOW_P99_BOUND_MS))
    assert not out["bad"], out["bad"][:5]
    assert f["n"] >= 50, f

    drips = [r for r in recs if r[0] == "drip" and r[1] != "open"]
    idles = [r for r in recs if r[0] == "idle" and r[1] != "open"]
    still = [r for r in recs if r[1] == "open"]
    drip_t = sorted(r[2] for r in drips)
    idle_t = sorted(r[2] for r in idles)
    got408 = sum(1 for r in drips if r[3].startswith(b"HTTP/1.1 408"))
    print("drip: %d cut (%s), lifetime min %.2f median %.2f max %.2f s, %d got the 408"
          % (len(drips), {o: sum(1 for r in drips if r[1] == o) for o in
                          ("eof", "reset", "error")},
             drip_t[0], drip_t[len(drip_t) // 2], drip_t[-1], got408))
    print("idle: %d closed, lifetime min %.2f median %.2f max %.2f s; %d still open at the end"
          % (len(idle_t), idle_t[0], idle_t[len(idle_t) // 2], idle_t[-1], len(still)))
    samples.sort()
    print("connections open, sampled every 250 ms during the traffic run: min %d median %d "
          "max %d" % (samples[0], samples[len(samples) // 2], samples[-1]))
    assert len(drips) >= 2 * N_DRIP and len(idles) >= 4 * N_IDLE, (len(drips), len(idles))
    # slow drippers: 408 and closed at request_timeout (2 s)
    assert got408 == len(drips), [r[3] for r in drips if not r[3].startswith(b"HTTP/1.1 408")][:5]
    assert 1.9 <= drip_t[0] and drip_t[-1] <= 3.0, (drip_t[0], drip_t[-1])
    # silent ones: closed without a word at keepalive_timeout (1 s)
    assert all(r[3] == b"" for r in idles)
    assert 0.9 <= idle_t[0] and idle_t[-1] <= 2.0, (idle_t[0], idle_t[-1])
    assert samples[len(samples) // 2] >= 0.95 * (N_DRIP + N_IDLE), samples

    wait_open(d, 0, timeout=5.0)
    dl = delta(before, http_counters(d))
    print("counters: %r" % dl)
    n_still_drip = sum(1 for r in still if r[0] == "drip")
    n_still_idle = len(still) - n_still_drip
    assert len(drips) <= dl["request_timeouts_total"] <= len(drips) + n_still_drip, dl
    assert len(idles) <= dl["idle_closes_total"] <= len(idles) + n_still_idle, dl
    assert dl["bad_requests_total"] == 0 and dl["headers_too_large_total"] == 0, dl
    assert f["p99"] < SLOW_P99_BOUND_MS, "p99 %.1f ms over %.0f ms" % (f["p99"],
                                                                      SLOW_P99_BOUND_MS)
    routes_ok(d, "after the drip")


# ---------------------------------------------------------------------------------------------
# 4. the connection cap

def test_connection_cap(env):
    d = env.start({"max_connections": 50, "keepalive_timeout": "30s", "request_timeout": "30s"})
    before = http_counters(d)
    held = [RawConn(d.port) for _ in range(50)]
    wait_open(d, 50)
    extra = [RawConn(d.port) for _ in range(10)]
    outs = [c.outcome(3.0) for c in extra]
    for kind, r in outs:
        assert kind == "answer" and r.status == 503, outs
        assert (r.header("connection") or "").lower() == "close" and r.header("retry-after")
    assert all(c.wait_closed(1.0) in ("eof", "reset") for c in extra)
    for c in extra:
        c.close()
    # the 50 held ones are untouched
    assert all(c.wait_closed(0.05) == "open" for c in held)
    dl = delta(before, http_counters(d))
    assert dl["connections_refused_total"] == 10, dl
    assert http_counters(d)["connections_open"] == 50

    # a real client at the cap sends its request at once: it must read the 503, not a reset
    seen = []
    for _ in range(5):
        c = RawConn(d.port)
        c.send(GOOD)
        seen.append(c.outcome(3.0))
        c.close()
    print("requests sent at the cap: %r" % [(k, r.status if r else None) for k, r in seen])
    refused = http_counters(d)["connections_refused_total"] - before["connections_refused_total"]
    assert refused == 15, refused

    # connections free up: normal requests succeed again
    for c in held[:20]:
        c.close()
    wait_open(d, 30)
    for _ in range(5):
        routes_ok(d, "after connections freed up")
    # the keep-alive ones that stayed are served too
    held[20].send(GOOD)
    assert held[20].read_response().status == 200
    for c in held[20:]:
        c.close()
    wait_open(d, 0)
    assert all(k == "answer" and r.status == 503 for k, r in seen), \
        "at the cap, a client that sent its request got %r instead of a 503" % [
            (k, r.status if r else None) for k, r in seen]


# ---------------------------------------------------------------------------------------------
# 5. a bad-signature flood while normal traffic is served

FLOOD_P99_BOUND_MS = 50.0


def test_bad_signature_flood(env):
    d = env.start({"log_level": "info"})
    routes_ok(d, "warm-up")
    before = http_counters(d)
    ctx = multiprocessing.get_context("fork")
    seconds, procs = 4.0, []
    for _ in range(2):
        parent, child = ctx.Pipe()
        ready = ctx.Event()
        p = ctx.Process(target=flood_worker, args=(d.port, seconds, 3, child, ready))
        p.start()
        procs.append((p, parent, ready))
    try:
        for p, _, ready in procs:
            assert ready.wait(20)
        time.sleep(0.2)
        out = {"lat": [], "bad": []}
        _normal_traffic(d, seconds - 0.5, out)
        counts = {}
        for p, parent, _ in procs:
            assert parent.poll(seconds + 20), "no report from a flood process"
            for k, v in parent.recv().items():
                counts[k] = counts.get(k, 0) + v
    finally:
        for p, _, _ in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    f = figures(out["lat"])
    n401 = counts.get(401, 0)
    print("flood: %r in %.1fs (%.0f/s); normal traffic: %s (bound p99 < %.0f ms)"
          % (counts, seconds, sum(counts.values()) / seconds, fmt(f), FLOOD_P99_BOUND_MS))
    assert not out["bad"], out["bad"][:5]
    assert set(counts) == {401}, counts
    assert n401 > 1000, counts
    dl = delta(before, http_counters(d))
    assert dl["sigfail"] == n401, "signature failures counted %d, flood got %d 401s" % (
        dl["sigfail"], n401)
    assert f["n"] >= 30, f
    assert f["p99"] < FLOOD_P99_BOUND_MS, "p99 %.1f ms over %.0f ms" % (f["p99"],
                                                                       FLOOD_P99_BOUND_MS)
    routes_ok(d, "after the flood")


# ---------------------------------------------------------------------------------------------
# 6. valgrind: the core cases with no errors

VG_LINE = re.compile(r"^==\d+== ", re.M)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CALLROUTED_SANITIZE") == "1",
                    reason="valgrind cannot run an AddressSanitizer binary; the plain build's "
                           "run of this suite covers it")
def test_valgrind_core_cases(env):
    from support.ledger import (bland_post_call, ledger_rows, new_id, post_bland, post_retell,
                                post_vapi, retell_event, vapi_end, wait_drained)
    t0 = time.monotonic()
    # under valgrind, with a valgrind build's timeouts (d.slow)
    d = env.start({"workers": 1, "max_body_bytes": MAX_BODY, "request_timeout": "3s"},
                  valgrind=True)
    started = time.monotonic() - t0
    assert d.proc.args[0] == "valgrind", d.proc.args
    routes_ok(d, "valgrind retell")
    r = vapi_assistant_request(d, NUM_VAPI1)
    assert r.status == 200 and r.json()["assistantId"] == "asst_vapi_1", r
    r = bland_dynamic(d, NUM_BLAND1)
    assert r.status == 200, r
    cids = [new_id("vg") for _ in range(3)]
    r = post_retell(d, retell_event("call_ended", cids[0], "inbound", NUM_RET1))
    assert r.status == 200, r
    r = post_vapi(d, vapi_end(cids[1], "inbound", NUM_VAPI1))
    assert r.status == 200, r
    r = post_bland(d, bland_post_call(cids[2], True, NUM_BLAND1))
    assert r.status == 200, r
    wait_drained(d, timeout=20)
    assert all(len(ledger_rows(env.conn, cid)) == 1 for cid in cids)
    # a reload (SIGHUP) and a route change through NOTIFY
    d.proc.send_signal(signal.SIGHUP)
    env.sql("UPDATE phone_numbers SET agent_id = %s WHERE id = %s", env.ids.agent_ret2,
            env.ids.num_ret_free)
    wait_for(lambda: retell_inbound(d, NUM_RET_FREE).json()["call_inbound"].get(
        "override_agent_id") == "agent_ret_2", 20, what="the change under valgrind")
    # the listener's error paths: 400, 413 drained, 431, chunked, pipelining, 401
    for data, want in ((b"GET  / HTTP/1.1\r\n\r\n", 400),
                       (raw_request("POST", W, b"x" * 20000), 413),
                       (good_with("X-Big: " + "b" * 70000), 431),
                       (signed_raw("retell", NUM_RET1, chunked=True), 200),
                       (signed_raw("retell", NUM_RET1, wrong_secret=True), 401)):
        c = RawConn(d.port, timeout=30)
        c.send(data)
        got = c.read_response(30)
        c.close()
        assert got.status == want, (want, got)
    c = RawConn(d.port, timeout=30)
    c.send(GOOD + GOOD)
    assert [c.read_response(30).status for _ in range(2)] == [200, 200]
    c.close()
    c = RawConn(d.port, timeout=30)  # one left half-sent at shutdown
    c.send(GOOD[:50])
    s = scrape(d)
    assert s.get("callrouted_http_connections_accepted_total") >= 8
    rc = d.stop(timeout=60)
    c.close()
    d.checked = True
    took = time.monotonic() - t0
    errors = [ln for ln in d.log().splitlines() if VG_LINE.match(ln)]
    print("valgrind run: %.1fs (start-up %.1fs), exit code %r, %d valgrind lines"
          % (took, started, rc, len(errors)))
    assert rc == 0, "exit code %r under valgrind (99: errors)\n%s" % (rc, "\n".join(errors[:80]))
    assert not errors, "\n".join(errors[:80])


# ---------------------------------------------------------------------------------------------
# faults the other files lack: backends killed while the ledger drains; journal read-only

KILL_BACKENDS = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def test_backends_killed_while_ledger_drains(env):
    from support.ledger import (count, ledger_ids, new_id, parallel, post_retell, retell_event,
                                wait_drained)
    d = env.start({"instance_name": "drain-kill"})
    ids = [new_id("dk%03d" % n) for n in range(600)]
    answered = []

    def send(cid):
        r = post_retell(d, retell_event("call_ended", cid, "inbound", NUM_RET1))
        if r.status == 200:
            answered.append(cid)
        return r.status

    stop = threading.Event()
    kills = []

    mine = env.conn.info.backend_pid

    def killer():
        while not stop.is_set():
            with env.pg.connect(env.dbname) as k:
                kills.append(len(k.execute(KILL_BACKENDS + " AND pid <> %s", (mine,))
                                 .fetchall()))
            time.sleep(0.03)

    kt = threading.Thread(target=killer)
    kt.start()
    try:
        res = parallel(send, ids, threads=6)
        time.sleep(0.5)  # killing on while the ledger drains what was answered
    finally:
        stop.set()
        kt.join()
    statuses = {}
    for v in res.values():
        k = v if isinstance(v, int) else type(v).__name__
        statuses[k] = statuses.get(k, 0) + 1
    print("events: %r; %d kill rounds, %d backends killed"
          % (statuses, len(kills), sum(kills)))
    assert statuses == {200: len(ids)}, statuses
    assert sum(kills) >= 3, kills
    wait_drained(d, timeout=20)
    got = ledger_ids(env.conn)
    missing = set(answered) - set(got)
    assert not missing, "%d answered events not in the ledger: %r" % (len(missing),
                                                                      sorted(missing)[:5])
    assert set(got.values()) == {1}, {k: v for k, v in got.items() if v != 1}
    assert count(env.conn, "usage_ledger") == len(ids)
    s = scrape(d)
    print("ledger batch failures (retried): %d, db reconnects: %d"
          % (s.get("callrouted_ledger_batch_failures_total"),
             s.get("callrouted_db_reconnects_total")))


def _mount(*args):
    return subprocess.run(["mount"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def test_journal_read_only_503_then_recovers(env):
    from support.ledger import ledger_ids, new_id, post_retell, retell_event, wait_drained
    state = env.tmp / "state-ro"
    jdir = state / "journal"
    jdir.mkdir(parents=True)
    m = _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(jdir))
    if m.returncode != 0:
        pytest.skip("cannot mount a tmpfs on the journal directory: " + m.stdout)
    d = None
    try:
        d = env.daemon({"instance_name": "ro-1", "state_dir": str(state)}, name="ro")
        d.start()
        # read-only before the first event: no segment is open for writing yet
        m = _mount("-o", "remount,ro", str(jdir))
        assert m.returncode == 0, m.stdout
        answered, refused = [], []

        def send(cid):
            r = post_retell(d, retell_event("call_ended", cid, "inbound", NUM_RET1))
            assert r.status in (200, 503), r
            (answered if r.status == 200 else refused).append(cid)
            return r.status

        st = [send(new_id("ro")) for _ in range(10)]
        print("journal read-only: %s" % st)
        assert st == [503] * 10, st
        routes_ok(d, "journal read-only")  # routing does not need the journal
        s = scrape(d)
        assert s.get("callrouted_journal_writable") == 0
        m = _mount("-o", "remount,rw", str(jdir))
        assert m.returncode == 0, m.stdout
        st = [send(new_id("rw")) for _ in range(10)]
        assert st == [200] * 10, st
        # the provider retries the refused ones
        for cid in list(refused):
            assert send(cid) == 200
        wait_drained(d)
        got = ledger_ids(env.conn)
        assert set(got) == set(answered) and set(got.values()) == {1}, got
        assert scrape(d).get("callrouted_journal_writable") == 1
        rc = d.stop()
        d.checked = True
        assert rc == 0, d.log_tail()
    finally:
        if d is not None and d.running():
            d.stop()
        r = subprocess.run(["umount", str(jdir)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(jdir)])
