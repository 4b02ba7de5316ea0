# net: loopback ports and plain HTTP/1.1 requests (http.client) to the daemon's listeners.
"""A free loopback port, and one HTTP request with its answer as a Response."""

import http.client
import json
import os
import random
import socket


_HANDED_OUT = set()


def _ephemeral_range():
    try:
        lo, hi = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def _port_slice():
    """CALLROUTED_TEST_PORT_SLICE=k/n: this run takes only the ports p with p % n == k, so n
    suites running side by side (tools/test runs the two sanitizer trees so) never pick the
    same port between its check and the daemon's bind."""
    v = os.environ.get("CALLROUTED_TEST_PORT_SLICE", "0/1")
    try:
        k, n = (int(x) for x in v.split("/"))
    except ValueError:
        raise RuntimeError("CALLROUTED_TEST_PORT_SLICE=%r: want k/n" % v) from None
    if not (n >= 1 and 0 <= k < n):
        raise RuntimeError("CALLROUTED_TEST_PORT_SLICE=%r: want 0 <= k < n" % v)
    return k, n


def free_port():
    """A loopback TCP port nobody listens on right now, never handed out before in this run,
    and outside the kernel's ephemeral range: a port from bind(0) is an ephemeral one, which
    the next outgoing connection (the daemon's own, to PostgreSQL) or the next bind(0) may take
    before the daemon binds it ("Address already in use", seen under ThreadSanitizer)."""
    lo, hi = _ephemeral_range()
    k, n = _port_slice()
    candidates = [p for p in range(10000, 65536) if not lo <= p <= hi and p % n == k]
    for _ in range(200):
        port = random.choice(candidates)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    # a crowded machine: the kernel's choice, still never the same one twice
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300].decode(errors="replace"))


def http_request(port, method, path, body=None, headers=None, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()
