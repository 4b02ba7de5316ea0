# test_tls: TLS on the webhook listener: routing over TLS, reload on SIGHUP, a bad pair refused.
"""Issue 7 item 2: TLS 1.2+ on the webhook listener, certificate and key reloaded on SIGHUP
without dropping connections; a bad new certificate keeps the old one."""

import http.client
import json
import signal
import socket
import ssl
import subprocess
import time
import warnings

from support.build import SLOW
from support.data import NUM_RET1, RETELL_KEY, RETELL_SLUG
from support.polling import wait_for
from support.scrape import scrape
from support.signing import sw


def make_cert(dirpath, name):
    """A self-signed certificate for 127.0.0.1 (its own CA): returns (cert, key) paths."""
    cert, key = dirpath / (name + ".pem"), dirpath / (name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def client(cafile, version=None):
    ctx = ssl.create_default_context(cafile=str(cafile))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def routed(conn):
    body = sw.build_payload("retell", "call_inbound", NUM_RET1, "+14155550123")
    conn.request("POST", "/v1/webhooks/retell/%s" % RETELL_SLUG, body,
                 dict(sw.retell_headers(RETELL_KEY, body), **{"Content-Type": "application/json"}))
    r = conn.getresponse()
    data = r.read()
    assert r.status == 200, (r.status, data)
    return json.loads(data)["call_inbound"]["override_agent_id"]


def peer_cn(conn):
    cert = conn.sock.getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]


def test_tls_routes_and_reloads_without_dropping_connections(env, tmp_path):
    cert1, key1 = make_cert(tmp_path, "first")
    cert2, key2 = make_cert(tmp_path, "second")
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    live_cert.write_bytes(cert1.read_bytes())
    live_key.write_bytes(key1.read_bytes())
    d = env.start({"tls_cert_file": str(live_cert), "tls_key_file": str(live_key)})

    # TLS 1.2 and 1.3 both serve the routing answer
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        c = http.client.HTTPSConnection("127.0.0.1", d.port, context=client(cert1, v),
                                        timeout=5)
        assert routed(c) == "agent_ret_1"
        c.close()

    # a keep-alive connection made with the first certificate
    old = http.client.HTTPSConnection("127.0.0.1", d.port, context=client(cert1), timeout=5)
    assert routed(old) == "agent_ret_1"
    assert peer_cn(old) == "first"

    # a new pair, SIGHUP: new connections get it, the open one goes on
    live_cert.write_bytes(cert2.read_bytes())
    live_key.write_bytes(key2.read_bytes())
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "certificate \"%s\" reloaded" % live_cert in d.log(), 5 * SLOW,
             what="the reload")
    new = http.client.HTTPSConnection("127.0.0.1", d.port, context=client(cert2), timeout=5)
    assert routed(new) == "agent_ret_1"
    assert peer_cn(new) == "second"
    assert routed(old) == "agent_ret_1"  # the connection made before the reload still serves
    new.close()

    # a bad new pair (garbage certificate) keeps the second one serving
    live_cert.write_text("not a certificate\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "keeping the certificate in force" in d.log(), 5 * SLOW, what="refusal")
    again = http.client.HTTPSConnection("127.0.0.1", d.port, context=client(cert2), timeout=5)
    assert routed(again) == "agent_ret_1"
    assert peer_cn(again) == "second"
    again.close()
    old.close()


def test_tls_refuses_plain_http_and_old_protocols(env, tmp_path):
    cert, key = make_cert(tmp_path, "only")
    d = env.start({"tls_cert_file": str(cert), "tls_key_file": str(key)})
    s0 = scrape(d)
    # plain HTTP on the TLS port: a failed handshake, counted; the daemon serves on
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    wait_for(lambda: scrape(d).get("callrouted_http_tls_handshake_failures_total") >
             s0.get("callrouted_http_tls_handshake_failures_total"), 5 * SLOW,
             what="the handshake failure counted")
    # TLS 1.1 is refused (when this OpenSSL can still offer it at all)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        offered = True
    except (ValueError, ssl.SSLError):
        offered = False
    if offered:
        with socket.create_connection(("127.0.0.1", d.port), timeout=5) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                    raise AssertionError("a TLS 1.1 handshake succeeded")
            except (ssl.SSLError, OSError):
                pass
    c = http.client.HTTPSConnection("127.0.0.1", d.port, context=client(cert), timeout=5)
    assert routed(c) == "agent_ret_1"
    c.close()


def test_tls_bad_pair_at_start_is_fatal(env, tmp_path):
    cert, key = make_cert(tmp_path, "a")
    _, other_key = make_cert(tmp_path, "b")
    d = env.daemon({"tls_cert_file": str(cert), "tls_key_file": str(other_key)})
    d.start(wait_ready=False)
    wait_for(lambda: not d.running(), 10 * SLOW, what="the daemon to exit")
    assert d.proc.returncode == 1
    log = d.log()
    assert "tls: " in log and ("mismatch" in log or "does not match" in log), log
    d.checked = True
