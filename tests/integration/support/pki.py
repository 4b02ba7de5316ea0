# pki: a throwaway test PKI (openssl CLI): a CA, server certificates right and wrong, another CA.
"""make_test_pki(d) for the TLS tests of the provider API clients: a CA, a server certificate
for 127.0.0.1/localhost, one for wrong.example only, and an unrelated CA."""

import subprocess
from pathlib import Path


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
