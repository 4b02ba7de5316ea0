# rawhttp: a raw-socket HTTP client and signed raw requests, for the hostile-HTTP cases.
"""A raw-socket HTTP client, for test_hardening.py and the other tests of the listener.

http.client refuses to send most malformed HTTP, so the hostile cases go through RawConn: a
blocking socket with a receive buffer that parses the daemon's answers itself (several per
connection for pipelining, interim 100 Continue, HEAD without body), and tells an orderly
close (EOF) from a reset.
"""

import errno
import json
import socket
import time

from support.data import (BLAND_SECRET, BLAND_SLUG, RETELL_KEY, RETELL_SLUG, VAPI_SECRET,
                          VAPI_SLUG)
from support.signing import sw


class Reset(Exception):
    """The daemon reset the connection (ECONNRESET / EPIPE)."""


class Closed(Exception):
    """The daemon closed the connection (EOF) before a whole answer arrived."""


class RawResponse:
    def __init__(self, status, reason, version, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers          # lower-case name -> list of values
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.reason, self.body[:200])


RESET_ERRNOS = (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)


OPEN_CONNS = []  # every RawConn made: the test module's fixture closes them after each test


class RawConn:
    def __init__(self, port, timeout=3.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        OPEN_CONNS.append(self)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    # -- sending --

    def send(self, data):
        """sendall; Reset if the daemon is gone."""
        try:
            self.s.sendall(data)
        except OSError as e:
            if e.errno in RESET_ERRNOS:
                raise Reset(str(e)) from None
            raise

    def send_try(self, data):
        """sendall that reports instead of raising: None, or the errno name of the failure."""
        try:
            self.s.sendall(data)
            return None
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e))

    def send_slowly(self, data, step=1, delay=0.01):
        for i in range(0, len(data), step):
            self.send(data[i:i + step])
            time.sleep(delay)

    def shutdown_wr(self):
        self.s.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    # -- receiving --

    def _more(self, deadline):
        """Read more into buf; False at EOF; Reset on reset; socket.timeout at the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        self.s.settimeout(left)
        try:
            d = self.s.recv(65536)
        except OSError as e:
            if e.errno in RESET_ERRNOS:
                raise Reset(str(e)) from None
            raise
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._more(deadline):
                raise Closed("EOF after %d of %d bytes" % (len(self.buf), n))

    def read_response(self, timeout=3.0, head=False, interim=False):
        """The next answer.  1xx interim answers are skipped unless interim=True."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\r\n\r\n" not in self.buf:
                if not self._more(deadline):
                    if self.buf:
                        raise Closed("EOF inside an answer's head: %r" % self.buf[:200])
                    raise Closed("EOF")
            head_b, _, rest = self.buf.partition(b"\r\n\r\n")
            lines = head_b.decode("latin-1").split("\r\n")
            version, _, sr = lines[0].partition(" ")
            code, _, reason = sr.partition(" ")
            status = int(code)
            headers = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                headers.setdefault(k.strip().lower(), []).append(v.strip())
            self.buf = rest
            if 100 <= status < 200:
                r = RawResponse(status, reason, version, headers, b"", head_b)
                if interim:
                    return r
                continue
            if head or status in (204, 304):
                body = b""
            elif "content-length" in headers:
                n = int(headers["content-length"][0])
                self._need(n, deadline)
                body, self.buf = self.buf[:n], self.buf[n:]
            else:
                while self._more(deadline):
                    pass
                body, self.buf = self.buf, b""
            return RawResponse(status, reason, version, headers, body, head_b)

    def outcome(self, timeout=3.0, head=False):
        """('answer', RawResponse) | ('eof', None) | ('reset', None) | ('open', None)."""
        try:
            return "answer", self.read_response(timeout, head)
        except Closed:
            return "eof", None
        except Reset:
            return "reset", None
        except socket.timeout:
            return "open", None

    def wait_closed(self, timeout=2.0):
        """'eof', 'reset', 'open' (nothing within timeout) or 'data' (unexpected bytes)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.buf:
                    return "data"
                if not self._more(deadline):
                    return "eof"
        except Reset:
            return "reset"
        except socket.timeout:
            return "open"


# ---- signed requests as raw bytes ----

PROVIDER_CREDS = {"retell": (RETELL_SLUG, RETELL_KEY), "vapi": (VAPI_SLUG, VAPI_SECRET),
                  "bland": (BLAND_SLUG, BLAND_SECRET)}
ROUTING_EVENT = {"retell": "call_inbound", "vapi": "assistant-request",
                 "bland": "dynamic_data"}


def signed_parts(provider, to, frm="+14155550123", wrong_secret=False):
    """(path, body, signature headers) of a routing request."""
    slug, secret = PROVIDER_CREDS[provider]
    if wrong_secret:
        secret = secret + "-forged"
    body = sw.build_payload(provider, ROUTING_EVENT[provider], to, frm)
    if provider == "bland":
        h = sw.bland_dynamic_headers(secret, slug)
    else:
        h = sw.sign_headers(provider, secret, body, slug)
    return sw.webhook_path(provider, slug), body, h


def raw_request(method, path, body=b"", headers=(), version="HTTP/1.1", host=True,
                content_length=True, chunked=None, target=None):
    """Bytes of one request.  headers: list of (name, value) or raw lines (bytes, sent as is).
    chunked: None, or a list of chunk byte strings (a final 0 chunk is added)."""
    out = [("%s %s %s" % (method, target or path, version)).encode("latin-1")]
    if host:
        out.append(b"Host: 127.0.0.1")
    for h in headers:
        out.append(h if isinstance(h, bytes) else ("%s: %s" % h).encode("latin-1"))
    if chunked is not None:
        out.append(b"Transfer-Encoding: chunked")
        data = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunked) + b"0\r\n\r\n"
    else:
        if content_length:
            out.append(b"Content-Length: %d" % len(body))
        data = body
    return b"\r\n".join(out) + b"\r\n\r\n" + data


def signed_raw(provider, to, version="HTTP/1.1", extra=(), chunked=False, method="POST",
               target=None, wrong_secret=False, content_type=True):
    """A raw signed routing request; extra headers go before the signature headers."""
    path, body, sig = signed_parts(provider, to, wrong_secret=wrong_secret)
    hdrs = list(extra)
    if content_type:
        hdrs.append(("Content-Type", "application/json"))
    hdrs += list(sig.items())
    if chunked:
        parts = [body[i:i + 37] for i in range(0, len(body), 37)]
        return raw_request(method, path, headers=hdrs, version=version, chunked=parts,
                           target=target)
    return raw_request(method, path, body, hdrs, version=version, target=target)
