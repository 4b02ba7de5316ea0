# fake_provider: an HTTPS stand-in for the Retell, Vapi and Bland REST APIs that records requests.
"""A fake provider API for the admin API tests.

FakeProvider serves HTTPS on 127.0.0.1 (an ephemeral port) from a thread running
http.server.ThreadingHTTPServer; each connection's TLS handshake is done in its handler thread
with the certificate given (see make_test_pki).  Every request that gets past the handshake is
recorded (method, raw path, lower-cased headers, JSON body); failed handshakes are counted.

Answers: each provider's success shapes by default (DEFAULTS), or a programmed answer for a
(method, path prefix) -- the longest matching prefix wins -- with a status, a JSON body and an
optional delay (a "hang" when it is longer than the daemon's provider_timeout).
"""

import itertools
import json
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


# ---- the test PKI (openssl CLI) ----

class TestPki:
    """Paths of the generated CA and server certificates."""

    def __init__(self, d):
        d = Path(d)
        self.dir = d
        self.ca_cert = d / "ca.pem"
        self.ca_key = d / "ca.key"
        self.good_cert, self.good_key = d / "server.pem", d / "server.key"     # 127.0.0.1
        self.wrong_cert, self.wrong_key = d / "wrong.pem", d / "wrong.key"     # wrong.example
        self.other_ca_cert = d / "other-ca.pem"                                # unrelated CA


def _openssl(*args, cwd):
    r = subprocess.run(["openssl"] + [str(a) for a in args], cwd=str(cwd),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(map(str, args)),
                                                      r.stdout.decode(errors="replace")))


def _server_cert(pki, cert, key, cn, san):
    d = pki.dir
    ext = d / (cn + ".ext")
    ext.write_text("basicConstraints = critical, CA:FALSE\n"
                   "keyUsage = critical, digitalSignature, keyEncipherment\n"
                   "extendedKeyUsage = serverAuth\n"
                   "subjectAltName = %s\n" % san)
    csr = d / (cn + ".csr")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn, cwd=d)
    _openssl("x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext, "-out", cert, cwd=d)


def make_test_pki(d):
    """A CA, a server certificate for 127.0.0.1/localhost and one for wrong.example only."""
    pki = TestPki(d)
    Path(d).mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", pki.ca_key, "-out", pki.ca_cert, "-days", "2", "-sha256",
             "-subj", "/CN=callrouted test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _server_cert(pki, pki.good_cert, pki.good_key, "127.0.0.1",
                 "IP:127.0.0.1, DNS:localhost")
    _server_cert(pki, pki.wrong_cert, pki.wrong_key, "wrong.example", "DNS:wrong.example")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", pki.dir / "other-ca.key", "-out", pki.other_ca_cert, "-days", "2",
             "-subj", "/CN=some other CA", cwd=d)
    return pki


# ---- answers ----

class Answer:
    def __init__(self, status=200, body=None, delay=0.0, raw=None):
        self.status = status
        self.body = body     # dict/list (JSON), or a callable(req, fake) -> dict
        self.delay = delay
        self.raw = raw       # bytes sent as they are (overrides body)


def _area_code(body):
    if isinstance(body, dict):
        for k in ("area_code", "numberDesiredAreaCode"):
            v = body.get(k)
            if v is not None and str(v).isdigit() and len(str(v)) == 3:
                return str(v)
    return "415"


def _retell_bought(req, fake):
    n = fake.next_number(_area_code(req.json))
    return {"phone_number": n, "phone_number_type": "retell-twilio",
            "phone_number_pretty": n, "area_code": int(_area_code(req.json)),
            "inbound_agents": None, "inbound_webhook_url": (req.json or {}).get(
                "inbound_webhook_url"), "nickname": (req.json or {}).get("nickname"),
            "last_modification_timestamp": 1714608475945}


def _vapi_bought(req, fake):
    n = fake.next_number(_area_code(req.json))
    num = {"id": "pn_%d" % fake.next_id(), "orgId": "org_1", "provider": "vapi",
           "number": n, "status": "active", "name": (req.json or {}).get("name"),
           "server": (req.json or {}).get("server"), "createdAt": "2024-05-02T00:00:00Z"}
    with fake._lock:
        fake.vapi_numbers[num["id"]] = num
    return num


def _vapi_stored(req, fake):
    """The Vapi number of the path: one bought here, else a seeded one (a server the operator
    configured at Vapi, with a timeout of their own that an update must keep)."""
    pnid = urllib.parse.unquote(req.path.split("?")[0].rsplit("/", 1)[-1])
    with fake._lock:
        return fake.vapi_numbers.setdefault(pnid, {
            "id": pnid, "orgId": "org_1", "provider": "vapi", "status": "active",
            "name": None, "server": {"url": "https://old.example.com/hook",
                                     "timeoutSeconds": 20},
            "createdAt": "2024-05-01T00:00:00Z"})


def _vapi_patched(req, fake):
    """PATCH /phone-number/{id}: each property given replaces the number's (server whole)."""
    num = _vapi_stored(req, fake)
    with fake._lock:
        num.update(req.json if isinstance(req.json, dict) else {})
        return dict(num)


def _bland_bought(req, fake):
    return {"phone_number": fake.next_number(_area_code(req.json))}


# (method, path prefix) -> Answer: each provider's success shapes.
DEFAULTS = {
    # Retell
    ("POST", "/create-phone-number"): Answer(201, _retell_bought),
    ("PATCH", "/update-phone-number/"): Answer(200, {}),
    ("DELETE", "/delete-phone-number/"): Answer(204, None),
    ("POST", "/v2/create-phone-call"): Answer(
        201, lambda req, fake: {"call_id": "call_ret_%d" % fake.next_id(),
                                "call_status": "registered"}),
    # Vapi
    ("POST", "/phone-number"): Answer(201, _vapi_bought),
    ("GET", "/phone-number/"): Answer(200, _vapi_stored),
    ("PATCH", "/phone-number/"): Answer(200, _vapi_patched),
    ("DELETE", "/phone-number/"): Answer(200, {}),
    ("POST", "/call"): Answer(
        201, lambda req, fake: {"id": "vcall_%d" % fake.next_id(), "status": "queued"}),
    # Bland
    ("POST", "/numbers/purchase"): Answer(200, _bland_bought),
    ("POST", "/v1/inbound/"): Answer(200, {"status": "success", "updates": {}}),
    ("POST", "/v1/calls"): Answer(
        200, lambda req, fake: {"status": "success", "message": "Call successfully queued.",
                                "call_id": "bcall_%d" % fake.next_id(), "batch_id": None}),
}


class Recorded:
    def __init__(self, method, path, headers, raw):
        self.method = method
        self.path = path
        self.headers = headers          # lower-case names
        self.raw = raw
        self.answer = None              # the JSON body we answered (if any)
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%s %s auth=%r len=%r body=%s>" % (self.method, self.path,
                                            "yes" if "authorization" in self.headers else "no",
                                                   self.headers.get("content-length"),
                                            self.raw[:400].decode(errors="replace"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _serve(self):
        fake = self.server.fake
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        req = Recorded(self.command, self.path,
                       {k.lower(): v for k, v in self.headers.items()}, raw)
        ans = fake.answer_for(self.command, self.path)
        body = ans.body(req, fake) if callable(ans.body) else ans.body
        req.answer = body
        fake.record(req)
        if ans.delay:
            time.sleep(ans.delay)
        data = ans.raw if ans.raw is not None else (
            b"" if body is None else json.dumps(body).encode())
        try:
            self.send_response(ans.status)
            if data or ans.status != 204:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if data:
                self.wfile.write(data)
        except OSError:
            pass  # the client gave up (a "hang" longer than its timeout)
        self.close_connection = True
        # Bytes the client sent beyond the request (a body without Content-Length is no body
        # in HTTP/1.1): read them briefly so closing does not reset the connection before the
        # client has read our answer.
        try:
            self.connection.settimeout(0.05)
            while self.rfile.read1(65536):
                pass
        except (OSError, ValueError):
            pass

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        # The TLS handshake in the handler thread: a refused handshake is counted, not fatal.
        request.settimeout(10)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.fake.handshake_failed(e)
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass


class FakeProvider:
    """One fake provider API server.  cert/key: the certificate it serves."""

    def __init__(self, cert, key):
        self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_ctx.load_cert_chain(str(cert), str(key))
        self._lock = threading.Lock()
        self._requests = []
        self._handshake_failures = []
        self._answers = {}
        self._ids = itertools.count(1)
        self._numbers = itertools.count(7000)
        self.vapi_numbers = {}          # Vapi's numbers by id (bought, seeded, patched)
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.fake = self
        self.server.ssl_ctx = self.ssl_ctx
        self.port = self.server.server_address[1]
        self.base_url = "https://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # -- programming --

    def on(self, method, prefix, status=200, body=None, delay=0.0, raw=None):
        """Answer method + path prefix with this from now on (longest prefix wins)."""
        with self._lock:
            self._answers[(method, prefix)] = Answer(status, body, delay, raw)

    def reset_answers(self):
        with self._lock:
            self._answers.clear()

    def answer_for(self, method, path):
        with self._lock:
            best = None
            for table in (self._answers, DEFAULTS):
                for (m, p), a in table.items():
                    if m == method and path.startswith(p) and (best is None or
                                                               len(p) > len(best[0])):
                        best = (p, a)
                if best is not None:
                    return best[1]
        return Answer(404, {"message": "fake provider: no route for %s %s" % (method, path)})

    def next_id(self):
        with self._lock:
            return next(self._ids)

    def next_number(self, area_code="415"):
        with self._lock:
            return "+1%s555%04d" % (area_code, next(self._numbers))

    # -- what was received --

    def record(self, req):
        with self._lock:
            self._requests.append(req)

    def handshake_failed(self, e):
        with self._lock:
            self._handshake_failures.append(repr(e))

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    @property
    def handshake_failures(self):
        with self._lock:
            return list(self._handshake_failures)

    def clear(self):
        with self._lock:
            self._requests.clear()
            self._handshake_failures.clear()
