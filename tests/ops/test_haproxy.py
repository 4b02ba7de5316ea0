# test_haproxy: conf/haproxy.cfg.example is valid (haproxy -c) and keeps its promises.
"""Checks of the example load-balancer configuration (issue 14):

- `haproxy -c -f conf/haproxy.cfg.example` accepts it;
- the webhook backend retries (retries, option redispatch, retry-on with conn-failure,
  empty-response, response-timeout and junk-response; option http-buffer-request, without
  which HAProxy does not retry a request with a body);
- the worst case (retries + 1) x (timeout connect + timeout server) stays under Vapi's 7.5 s;
- health checks GET /readyz on a `check port` (the admin listener);
- fall x inter is shorter than callrouted's default shutdown_delay (conf/callrouted.conf), so
  a stopping daemon is out of rotation before its listener closes.
Exit 0 on success, 1 with the reasons on failure."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / "conf" / "haproxy.cfg.example"
CONF = REPO / "conf" / "callrouted.conf"
VAPI_BUDGET_MS = 7500

fails = []


def fail(msg):
    fails.append(msg)


def ms(text):
    m = re.fullmatch(r"(\d+)(us|ms|s|m|h)?", text)
    if not m:
        raise ValueError("bad duration %r" % text)
    n = int(m.group(1))
    return n * {"us": 0.001, "ms": 1, None: 1, "s": 1000, "m": 60000, "h": 3600000}[m.group(2)]


def sections(text):
    """{section header: [lines without comments]}"""
    out = {}
    cur = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not raw[0].isspace():
            cur = line
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def main():
    if not shutil.which("haproxy"):
        print("test_haproxy: haproxy is not installed (tools/setup installs it)")
        return 1
    r = subprocess.run(["haproxy", "-c", "-f", str(CFG)], capture_output=True, text=True)
    if r.returncode != 0:
        fail("haproxy -c -f %s: exit %d\n%s%s" % (CFG, r.returncode, r.stdout, r.stderr))
    else:
        print("ok: haproxy -c: %s" % r.stdout.strip())

    sec = sections(CFG.read_text())
    defaults = sec.get("defaults", [])
    backend = sec.get("backend callrouted", [])
    both = defaults + backend

    def value(lines, key):
        v = None
        for line in lines:
            if line.startswith(key + " "):
                v = line[len(key) + 1:].strip()
        return v

    retries = value(both, "retries")
    connect = value(both, "timeout connect")
    server = value(both, "timeout server")
    if retries is None or connect is None or server is None:
        fail("retries, timeout connect and timeout server must all be set")
    else:
        worst = (int(retries) + 1) * (ms(connect) + ms(server))
        if worst >= VAPI_BUDGET_MS:
            fail("(retries + 1) x (connect + server) = %g ms, not under Vapi's %d ms"
                 % (worst, VAPI_BUDGET_MS))
        else:
            print("ok: worst case (%s + 1) x (%s + %s) = %g ms < %d ms"
                  % (retries, connect, server, worst, VAPI_BUDGET_MS))
    retry_on = (value(both, "retry-on") or "").split()
    for k in ("conn-failure", "empty-response", "response-timeout", "junk-response"):
        if k not in retry_on:
            fail("retry-on lacks %s" % k)
    if not any(line.startswith("option redispatch") for line in both):
        fail("no option redispatch")
    if "option http-buffer-request" not in both:
        fail("no option http-buffer-request (HAProxy would not retry requests with a body)")
    if "option httpchk" not in backend:
        fail("backend callrouted: no option httpchk")
    if not any(re.fullmatch(r"http-check send meth GET uri /readyz", line) for line in backend):
        fail("backend callrouted: health check is not GET /readyz")
    servers = [line for line in backend if line.startswith("server ")]
    if not servers or not all(re.search(r"\bcheck\b.*\bport \d+", s) for s in servers):
        fail("every server needs `check port ADMIN_PORT`: %r" % servers)

    ds = value(backend, "default-server") or ""
    inter = re.search(r"\binter (\S+)", ds)
    fall = re.search(r"\bfall (\d+)", ds)
    m = re.search(r"^# shutdown_delay = (\S+)$", CONF.read_text(), re.M)
    if not inter or not fall or not m:
        fail("default-server inter/fall or conf/callrouted.conf's shutdown_delay not found")
    else:
        out = int(fall.group(1)) * ms(inter.group(1))
        delay = ms(m.group(1))
        if out >= delay:
            fail("fall x inter = %g ms is not shorter than shutdown_delay %g ms" % (out, delay))
        else:
            print("ok: fall x inter = %g ms < default shutdown_delay %g ms" % (out, delay))

    for f in fails:
        print("FAIL: %s" % f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
