# helpers: the PostgreSQL cluster, the daemon under test, HTTP calls and the standard test data.
"""Support code for the black-box integration tests (imported by conftest.py and the tests)."""

import contextlib
import http.client
import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("CALLROUTED_PG_BIN", "/usr/lib/postgresql/15/bin"))
SANITIZE = os.environ.get("CALLROUTED_SANITIZE") == "1"
VALGRIND = os.environ.get("CALLROUTED_VALGRIND") == "1"
TSAN = os.environ.get("CALLROUTED_TSAN") == "1"
# Slow builds get more time for start-up and shutdown.
SLOW = 6.0 if VALGRIND else (3.0 if SANITIZE or TSAN else 1.0)
BAD_LOG_TEXT = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                "UndefinedBehaviorSanitizer", "ThreadSanitizer")
# ThreadSanitizer: stop at the first report (the exit code and the log then say so); the
# suppressions file, if any, holds proven third-party false positives only.
TSAN_SUPP = REPO / "tests" / "tsan.supp"
TSAN_OPTIONS = "halt_on_error=1:second_deadlock_stack=1" + (
    ":suppressions=%s" % TSAN_SUPP if TSAN_SUPP.exists() else "")


def callrouted_bin():
    b = os.environ.get("CALLROUTED_BIN")
    return Path(b) if b else REPO / "build" / "bin" / "callrouted"


def _load_send_webhook():
    path = str(REPO / "tools" / "send-webhook")
    loader = importlib.machinery.SourceFileLoader("send_webhook", path)
    spec = importlib.util.spec_from_loader("send_webhook", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


# The signing and payload functions of tools/send-webhook, shared with the CLI.
sw = _load_send_webhook()


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, interval=0.02, what="condition"):
    """Poll pred() until it returns a true value; return (value, seconds waited)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last, time.monotonic() - t0
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.2fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


# ---- PostgreSQL ----

class PgCluster:
    """A throwaway PostgreSQL cluster in a temp dir, on a free loopback port."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="callrouted-pg-"))
        self.datadir = self.dir / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        self.as_postgres = os.geteuid() == 0
        self._n = 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args):
        cmd = [str(PG_BIN / args[0])] + list(args[1:])
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           cwd=str(self.dir), timeout=120)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode,
                                                        r.stdout.decode(errors="replace")))
        return r

    def start(self):
        self._run("initdb", "-A", "trust", "--nosync", "-U", self.user, "-E", "UTF8",
                  "-D", str(self.datadir))
        opts = ("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200" % (self.port, self.dir))
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.datadir), "-l",
                  str(self.dir / "postgres.log"), "-o", opts, "start")

    def stop(self):
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, dbname="postgres", port=None):
        return "postgresql://%s@%s:%d/%s" % (self.user, self.host, port or self.port, dbname)

    def connect(self, dbname="postgres"):
        return psycopg.connect(self.url(dbname), autocommit=True)

    def new_database(self):
        self._n += 1
        name = "t_%d_%d" % (os.getpid(), self._n)
        with self.connect() as c:
            c.execute('CREATE DATABASE "%s"' % name)
        return name


# ---- HTTP ----

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


# ---- the daemon ----

def config_text(values):
    lines = ["# written by tests/integration"]
    for k, v in values.items():
        if v is None:
            continue
        lines.append('%s = "%s"' % (k, v) if isinstance(v, str) else "%s = %s" % (k, v))
    return "\n".join(lines) + "\n"


def run_cli(*args, timeout=60):
    """Run the binary to completion; returns CompletedProcess with text stdout/stderr."""
    env = daemon_env()
    return subprocess.run([str(callrouted_bin())] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, timeout=timeout * SLOW)


def daemon_env():
    env = dict(os.environ)
    if SANITIZE:
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    if TSAN:
        env["TSAN_OPTIONS"] = TSAN_OPTIONS
    return env


class Daemon:
    """One callrouted process with its own config, ports, state dir and log file."""

    def __init__(self, workdir, name, database_url, overrides=None):
        self.workdir = Path(workdir)
        self.name = name
        self.port = free_port()
        self.admin_port = free_port()
        self.state_dir = self.workdir / ("state-" + name)
        self.state_dir.mkdir(exist_ok=True)
        self.conf_path = self.workdir / (name + ".conf")
        self.log_path = self.workdir / (name + ".log")
        self.values = {
            "database_url": database_url,
            "listen": "127.0.0.1:%d" % self.port,
            "admin_listen": "127.0.0.1:%d" % self.admin_port,
            "state_dir": str(self.state_dir),
            "log_level": "debug",
            "refresh_interval": "300s",
            "reconnect_interval": "200ms",
        }
        self.values.update(overrides or {})
        self.proc = None
        self.returncode = None
        self.checked = False

    def write_config(self):
        self.conf_path.write_text(config_text(self.values))

    def start(self, wait_ready=True, timeout=15.0):
        self.write_config()
        cmd = [str(callrouted_bin()), "-c", str(self.conf_path)]
        if VALGRIND:
            cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "-q"] + cmd
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=daemon_env(), cwd=str(self.workdir))
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15.0):
        """Poll /readyz until 200; fail early if the process dies."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("callrouted exited with %d before it was ready\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                r = self.admin("GET", "/readyz", timeout=1.0)
            except OSError:
                return None
            return r if r.status == 200 else None
        try:
            return wait_for(ready, timeout * SLOW, what="/readyz 200")[0]
        except AssertionError as e:
            if "exited" in str(e):
                raise
            raise AssertionError("%s\n%s" % (e, self.log_tail())) from None

    def wait_alive(self, timeout=15.0):
        """Poll /healthz until it answers 200."""
        def alive():
            if self.proc.poll() is not None:
                raise AssertionError("callrouted exited with %d\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                return self.admin("GET", "/healthz", timeout=1.0).status == 200
            except OSError:
                return False
        wait_for(alive, timeout * SLOW, what="/healthz 200")

    def stop(self, timeout=10.0):
        """SIGTERM, wait; returns the exit code (kills and returns None on timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = None
                self._log.close()
                return None
        self.returncode = self.proc.returncode
        self._log.close()
        return self.returncode

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        lines = self.log().splitlines()
        return "---- %s log (last %d of %d lines) ----\n%s" % (
            self.name, min(n, len(lines)), len(lines), "\n".join(lines[-n:]))

    def bad_log_text(self):
        text = self.log()
        return [t for t in BAD_LOG_TEXT if t in text]

    # -- HTTP --

    def admin(self, method, path, timeout=5.0):
        return http_request(self.admin_port, method, path, timeout=timeout)

    def readyz(self):
        return self.admin("GET", "/readyz")

    def request(self, method, path, body=None, headers=None, timeout=5.0):
        return http_request(self.port, method, path, body, headers, timeout)

    def post(self, provider, slug, body, headers=None, content_type="application/json"):
        h = {}
        if content_type is not None:
            h["Content-Type"] = content_type
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode()
        return self.request("POST", sw.webhook_path(provider, slug), body, h)


# ---- the standard test data ----

class Ids:
    """Names the rows of the standard data set."""

    def __repr__(self):
        return repr(self.__dict__)


def insert_standard_data(conn):
    """Two agencies, accounts of every provider, clients, agents and numbers; returns Ids."""
    ids = Ids()

    def one(sql, *args):
        return conn.execute(sql, args).fetchone()[0]

    def agency(name):
        return one("INSERT INTO agencies (name) VALUES (%s) RETURNING id", name)

    def account(agency_id, provider, slug, api_key, secret=None, auth=None):
        return one("INSERT INTO provider_accounts (agency_id, provider, slug, api_key, "
                   "webhook_secret, webhook_auth) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                   agency_id, provider, slug, api_key, secret, auth)

    def client(agency_id, name):
        return one("INSERT INTO clients (agency_id, name) VALUES (%s, %s) RETURNING id",
                   agency_id, name)

    def agent(agency_id, client_id, provider, pid, name):
        return one("INSERT INTO agents (agency_id, client_id, provider, provider_agent_id, name) "
                   "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                   agency_id, client_id, provider, pid, name)

    def number(agency_id, account_id, provider, e164, agent_id):
        return one("INSERT INTO phone_numbers (agency_id, account_id, provider, e164, agent_id) "
                   "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                   agency_id, account_id, provider, e164, agent_id)

    ids.agency_a = agency("Agency A")
    ids.agency_b = agency("Agency B")

    ids.acct_retell = account(ids.agency_a, "retell", "ret-a", "retell-key-a")
    ids.acct_vapi = account(ids.agency_a, "vapi", "vapi-a", "vapi-api-key-a",
                            "vapi-secret-a", "hmac")
    ids.acct_vapi_bearer = account(ids.agency_a, "vapi", "vapi-bearer-a", "vapi-api-key-a2",
                                   "vapi-bearer-secret-a", "bearer")
    ids.acct_bland = account(ids.agency_a, "bland", "bland-a", "bland-api-key-a",
                             "bland-secret-a")
    ids.acct_retell_b = account(ids.agency_b, "retell", "ret-b", "retell-key-b")

    ids.client_acme = client(ids.agency_a, "Acme Dental")
    ids.client_b = client(ids.agency_b, "B Client")

    ids.agent_ret1 = agent(ids.agency_a, ids.client_acme, "retell", "agent_ret_1", "Reception")
    ids.agent_ret2 = agent(ids.agency_a, None, "retell", "agent_ret_2", "After Hours")
    ids.agent_vapi1 = agent(ids.agency_a, ids.client_acme, "vapi", "asst_vapi_1",
                            "Vapi Front Desk")
    ids.agent_bland1 = agent(ids.agency_a, ids.client_acme, "bland", "bland_agent_1",
                             "Bland Intake")
    ids.agent_b1 = agent(ids.agency_b, ids.client_b, "retell", "agent_b_1", "B Agent")

    ids.num_ret1 = number(ids.agency_a, ids.acct_retell, "retell", "+14155550101", ids.agent_ret1)
    ids.num_ret_free = number(ids.agency_a, ids.acct_retell, "retell", "+14155550102", None)
    ids.num_ret2 = number(ids.agency_a, ids.acct_retell, "retell", "+14155550103", ids.agent_ret2)
    ids.num_vapi1 = number(ids.agency_a, ids.acct_vapi, "vapi", "+14155550201", ids.agent_vapi1)
    ids.num_vapi_bearer = number(ids.agency_a, ids.acct_vapi_bearer, "vapi", "+14155550211",
                                 ids.agent_vapi1)
    ids.num_bland1 = number(ids.agency_a, ids.acct_bland, "bland", "+14155550301",
                            ids.agent_bland1)
    ids.num_b1 = number(ids.agency_b, ids.acct_retell_b, "retell", "+14155550901", ids.agent_b1)
    ids.n_numbers = 7
    return ids


# Keys and numbers of the standard data, by name.
RETELL_SLUG, RETELL_KEY = "ret-a", "retell-key-a"
RETELL_B_SLUG, RETELL_B_KEY = "ret-b", "retell-key-b"
VAPI_SLUG, VAPI_SECRET = "vapi-a", "vapi-secret-a"
VAPI_BEARER_SLUG, VAPI_BEARER_SECRET = "vapi-bearer-a", "vapi-bearer-secret-a"
BLAND_SLUG, BLAND_SECRET = "bland-a", "bland-secret-a"
NUM_RET1, NUM_RET_FREE, NUM_RET2 = "+14155550101", "+14155550102", "+14155550103"
NUM_VAPI1, NUM_VAPI_BEARER, NUM_BLAND1 = "+14155550201", "+14155550211", "+14155550301"
NUM_B1 = "+14155550901"
NUM_UNKNOWN = "+14155550999"
DEFAULT_VAPI_NO_AGENT = "Sorry, this number is not in service."


def meta(agency, agent, number, client=None):
    m = {"callrouted_agency_id": str(agency), "callrouted_agent_id": str(agent),
         "callrouted_number_id": str(number)}
    if client is not None:
        m["callrouted_client_id"] = str(client)
    return m


def variables(agent_name, client_name=None):
    v = {"agent_name": agent_name}
    if client_name is not None:
        v["client_name"] = client_name
    return v


# ---- signed requests of each provider against a Daemon ----

def body_bytes(obj):
    return obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()


def retell_inbound(d, to, slug=RETELL_SLUG, key=RETELL_KEY, frm="+14155550123"):
    body = sw.build_payload("retell", "call_inbound", to, frm)
    return d.post("retell", slug, body, sw.retell_headers(key, body))


def vapi_assistant_request(d, to, slug=VAPI_SLUG, secret=VAPI_SECRET, auth="hmac",
                           bearer_form="authorization", frm="+14155550123"):
    body = sw.build_payload("vapi", "assistant-request", to, frm)
    if auth == "bearer":
        h = sw.vapi_bearer_headers(secret, bearer_form)
    else:
        h = sw.vapi_hmac_headers(secret, body)
    return d.post("vapi", slug, body, h)


def bland_dynamic(d, to, slug=BLAND_SLUG, secret=BLAND_SECRET, frm="+14155550123"):
    body = sw.build_payload("bland", "dynamic_data", to, frm)
    return d.post("bland", slug, body, sw.bland_dynamic_headers(secret, slug))


def signed_post(d, provider, slug, secret, obj, auth="hmac"):
    """POST obj (dict or raw bytes) signed the way the provider signs it."""
    body = body_bytes(obj)
    return d.post(provider, slug, body, sw.sign_headers(provider, secret, body, slug, auth))


@contextlib.contextmanager
def timer():
    t = {"start": time.monotonic()}
    yield t
    t["elapsed"] = time.monotonic() - t["start"]
