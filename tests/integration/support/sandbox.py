# sandbox: runs tools/sandbox (the provider emulator) and points a daemon's accounts at it.
"""Support code for test_sandbox.py: the sandbox as a separate process (serve), its control
endpoint, the ring command line, and a daemon whose provider accounts use the sandbox."""

import http.client
import importlib.machinery
import importlib.util
import json
import signal
import ssl
import subprocess
import sys
import time

from support.admin_api import api, insert_tokens, set_vapi_credential
from support.build import REPO, SLOW
from support.polling import wait_for

SANDBOX = REPO / "tools" / "sandbox"

# The standard data's accounts (support.data.insert_standard_data), as the sandbox knows them.
ACCOUNTS = ["retell:retell-key-a", "vapi:vapi-api-key-a:vapi-secret-a:hmac:cred-vapi-a",
            "bland:bland-api-key-a:bland-secret-a"]
VAPI_CREDENTIAL = "cred-vapi-a"


def load_sandbox_module():
    """tools/sandbox as a module (its signing functions, for the byte-compatibility check)."""
    loader = importlib.machinery.SourceFileLoader("sandbox_tool", str(SANDBOX))
    spec = importlib.util.spec_from_loader("sandbox_tool", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class SandboxProc:
    """One `tools/sandbox serve` process on a free port with its own directory."""

    def __init__(self, d, accounts=ACCOUNTS, extra=()):
        self.dir = d
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = d / "sandbox.log"
        self.args = [sys.executable, str(SANDBOX), "serve", "--dir", str(d), "--port", "0",
                     "--outbound-seconds", "42"]
        for a in accounts:
            self.args += ["--account", a]
        self.args += list(extra)
        self.proc = None
        self.info = None

    def start(self):
        info = self.dir / "sandbox.json"
        if info.exists():
            info.unlink()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("sandbox exited with %d:\n%s" % (self.proc.returncode,
                                                                      self.log()))
            return info.exists() and json.loads(info.read_text())
        self.info = wait_for(up, 60 * SLOW, 0.05, "the sandbox's sandbox.json")[0]
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def ca_file(self):
        return self.info["ca_file"]

    def base_url(self, provider):
        return self.info["base_urls"][provider]

    # -- HTTPS requests to the sandbox --

    def ssl_context(self):
        """What the test's own requests to the sandbox check its certificate with."""
        return ssl.create_default_context(cafile=self.ca_file)

    def request(self, method, path, body=None, headers=None, raw=None, timeout=30.0):
        """(status, parsed JSON or None) of one request to the sandbox."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.info["port"], timeout=timeout,
                                           context=self.ssl_context())
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            b = r.read()
            return r.status, (json.loads(b) if b else None)
        finally:
            conn.close()

    def control(self, method, path, body=None):
        st, j = self.request(method, "/_sandbox/" + path, body,
                             {"X-Sandbox-Token": self.info["token"]})
        assert st == 200, (st, j)
        return j

    def requests(self):
        return self.control("GET", "requests")["requests"]

    def clear(self):
        self.control("DELETE", "requests")
        self.control("DELETE", "faults")

    def reset(self):
        """clear(), and forget every number, call and agent the sandbox holds."""
        self.clear()
        self.control("DELETE", "state")

    def state(self):
        return self.control("GET", "state")

    def number(self, provider, e164):
        for n in self.state()["numbers"][provider].values():
            if n["_e164"] == e164:
                return n
        return None

    def ring(self, to, frm="+14155550123", seconds=30):
        """`tools/sandbox ring`: (exit code, stdout lines, the --json outcome)."""
        r = subprocess.run([sys.executable, str(SANDBOX), "ring", "--dir", str(self.dir),
                            "--to", to, "--from", frm, "--seconds", str(seconds), "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120 * SLOW)
        assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
        out = json.loads(r.stdout)
        return r.returncode, out["lines"], out["outcome"]


def start_daemon(env, sandbox, **overrides):
    """A daemon whose accounts (of agency A) use the sandbox; public_url is its own listener."""
    for p in ("retell", "vapi", "bland"):
        env.sql("UPDATE provider_accounts SET api_base_url = %s WHERE provider = %s",
                sandbox.base_url(p), p)
    insert_tokens(env)
    return another_daemon(env, sandbox, **overrides)


def another_daemon(env, sandbox, **overrides):
    """A daemon on a database whose accounts and tokens start_daemon has set up (another one
    on the same database); public_url is its own listener."""
    values = {"provider_ca_file": sandbox.ca_file}
    values.update(overrides)
    d = env.daemon(values)
    d.values["public_url"] = "http://127.0.0.1:%d" % d.port
    d.start()
    # the admin API's own database connection can lag /readyz by a few ms (test_admin_api)
    wait_for(lambda: api(d, "GET", "/v1/numbers?limit=1").status != 503, 10.0,
             what="the admin API's database connection")
    return d


def sandbox_daemon(env, sandbox, **overrides):
    """start_daemon, the Vapi account naming the webhook credential the sandbox has for it
    (migration 005)."""
    set_vapi_credential(env)
    return start_daemon(env, sandbox, **overrides)


def calls_of(env, call_id):
    return env.conn.execute(
        "SELECT direction, agent_id, agency_id, status, connected, duration_ms, from_number, "
        "to_number FROM calls WHERE provider_call_id = %s", (call_id,)).fetchall()


def ledger_of(env, call_id):
    return env.conn.execute(
        "SELECT direction, agent_id, duration_ms, billed_seconds, amount_micros FROM "
        "usage_ledger WHERE provider_call_id = %s", (call_id,)).fetchall()


def wait_ledger(env, call_id, timeout=10.0):
    return wait_for(lambda: ledger_of(env, call_id), timeout * SLOW, 0.05,
                    "usage_ledger row of %s" % call_id)[0]


def wait_call(env, call_id, timeout=10.0):
    return wait_for(lambda: calls_of(env, call_id), timeout * SLOW, 0.05,
                    "calls row of %s" % call_id)[0]


def settle(seconds=0.3):
    time.sleep(seconds)
