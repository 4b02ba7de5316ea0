# api_sandbox: tools/sandbox as the admin API tests' provider (seeded, faults, requests), start_api.
"""The provider sandbox (tools/sandbox, through support.sandbox.SandboxProc) as the fake provider
of test_admin_api.py, test_callroutectl.py and test_admin_strict.py.

ApiSandbox holds every provider account of the database (their keys, secrets, Vapi credentials)
and the database's active numbers, as numbers the accounts already had (Vapi's with a server
of the operator's own, timeoutSeconds 20, that an update must keep).  Its request log is read
as Req objects: method, path relative to the provider's API base (/update-phone-number/..., as
the provider documents it), lower-cased headers, raw body and JSON, the answer and its status.
on() programs a fault (status, body, delay) for a provider's method and path prefix.

start_api(env, sandbox): the daemon of those tests, its accounts at the sandbox."""

import json
import shutil
import urllib.parse

from support.admin_api import api, insert_tokens, set_vapi_credential
from support.polling import wait_for
from support.sandbox import SandboxProc

# Vapi numbers of the standard data: their server as the operator configured it at Vapi.
OPERATOR_SERVER = {"url": "https://127.0.0.1:9/operator-hook", "timeoutSeconds": 20}


class Req:
    """One request the sandbox received (its /_sandbox control requests are not logged)."""

    def __init__(self, e):
        parts = e["path"].split("/", 2)       # "", provider, rest
        self.provider = parts[1] if len(parts) > 1 else None
        self.path = "/" + (parts[2] if len(parts) > 2 else "")
        self.method = e["method"]
        self.headers = e["headers"]
        self.raw = e["body"].encode()
        self.status = e.get("status")
        self.answer = e.get("answer")
        self.fault = e.get("fault")
        try:
            self.json = json.loads(self.raw) if self.raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%s %s/%s -> %s auth=%s body=%s>" % (
            self.method, self.provider, self.path, self.status,
            "yes" if "authorization" in self.headers else "no",
            self.raw[:400].decode(errors="replace"))


def accounts_of(env):
    """--account specs of every provider account in the database."""
    out = []
    for provider, key, secret, auth, cred in env.conn.execute(
            "SELECT provider, api_key, webhook_secret, webhook_auth, webhook_credential_id "
            "FROM provider_accounts ORDER BY id").fetchall():
        spec = [provider, key]
        if provider == "vapi" and secret:
            spec += [secret, auth or "hmac"] + ([cred] if cred else [])
        elif provider == "bland" and secret:
            spec.append(secret)
        out.append(":".join(spec))
    return out


class ApiSandbox(SandboxProc):
    """A sandbox for one test; pki: a directory whose ca.pem, server.pem and server.key it
    serves instead of its own (a certificate for the wrong host, say)."""

    def __init__(self, d, pki=None):
        SandboxProc.__init__(self, d, accounts=())
        self.pki = pki
        self._log_mark = 0

    def start_for(self, env, d=None):
        """Start with the database's accounts, then add its active numbers (pointed at d)."""
        if self.pki is not None:
            for name in ("ca.pem", "server.pem", "server.key"):
                shutil.copy(str(self.pki[name]), str(self.dir / name))
        for a in accounts_of(env):
            self.args += ["--account", a]
        self.start()
        self.add_numbers(env, d)
        return self

    def stop(self):
        if self.proc is not None:
            SandboxProc.stop(self)

    def ssl_context(self):
        """SandboxProc's; with a pki of the test's own (whose server certificate may name
        another host), the test's control requests check the chain only."""
        ctx = SandboxProc.ssl_context(self)
        if self.pki is not None:
            ctx.check_hostname = False
        return ctx

    # -- numbers --

    def add_numbers(self, env, d=None):
        """Every active number of the database the sandbox does not have yet, as a number its
        account already had (pointed at d's webhooks when d is given)."""
        have = {n["_e164"] for p in self.state()["numbers"].values() for n in p.values()}
        rows = env.conn.execute(
            "SELECT n.e164, n.provider, n.provider_number_id, n.nickname, a.api_key, a.slug, "
            "g.provider_agent_id, a.webhook_credential_id FROM phone_numbers n "
            "JOIN provider_accounts a ON a.id = n.account_id "
            "LEFT JOIN agents g ON g.id = n.agent_id "
            "WHERE n.status = 'active' ORDER BY n.id").fetchall()
        for e164, provider, pnid, nickname, key, slug, pid, cred in rows:
            if e164 in have:
                continue
            hook = "http://127.0.0.1:%d/v1/webhooks/%s/%s" % (d.port, provider, slug) \
                if d is not None else None
            if provider == "retell":
                n = {"phone_number": e164, "phone_number_type": "retell-twilio",
                     "phone_number_pretty": "+1 (%s) %s-%s" % (e164[2:5], e164[5:8], e164[8:]),
                     "area_code": int(e164[2:5]), "last_modification_timestamp": 1714608475945,
                     "inbound_agents": [{"agent_id": pid, "weight": 1}] if pid else None,
                     "outbound_agents": None, "inbound_webhook_url": hook,
                     "nickname": nickname}
            elif provider == "vapi":
                assert pnid, "a Vapi number without provider_number_id: %s" % e164
                n = {"id": pnid, "orgId": "org_1", "provider": "vapi", "number": e164,
                     "status": "active", "name": nickname, "server": dict(OPERATOR_SERVER),
                     "createdAt": "2024-05-01T00:00:00.000Z",
                     "updatedAt": "2024-05-01T00:00:00.000Z"}
            else:
                n = {"phone_number": e164, "created_at": "2024-05-01T00:00:00.000Z",
                     "prompt": None, "pathway_id": pid, "webhook": hook, "dynamic_data": None,
                     "max_duration": 30}
            self.control("POST", "numbers", {"provider": provider, "key": key, "number": n})

    def number(self, provider, nid):
        """The sandbox's copy of a number, by the provider's id (Vapi: its id; else E.164)."""
        return self.state()["numbers"][provider].get(nid)

    def edit(self, provider, nid, **fields):
        """A change made in the provider's dashboard: these fields set on the number."""
        return self.control("POST", "edit", {"provider": provider, "id": nid, "set": fields})

    # -- faults --

    def on(self, provider, method, prefix, status=None, body=None, delay=0.0, times=None):
        """From now on, answer method + /provider + prefix with status and body (after delay
        seconds; without a status, the sandbox's own answer after the delay)."""
        f = {"method": method, "prefix": "/" + provider + prefix, "status": status,
             "body": body, "delay": delay}
        if times is not None:
            f["times"] = times
        self.control("POST", "faults", f)

    # -- what was received --

    @property
    def requests(self):
        return [Req(e) for e in SandboxProc.requests(self)]

    def clear(self):
        """Forget the requests and refused handshakes so far (the faults stay)."""
        self.control("DELETE", "requests")
        self._log_mark = len(self.log())

    @property
    def handshake_failures(self):
        return [line for line in self.log()[self._log_mark:].splitlines()
                if "TLS handshake from" in line and "failed" in line]


def esc(e164):
    return urllib.parse.quote(e164, safe="")


def start_api(env, sandbox, ca_file=None, **overrides):
    """Point every account at the sandbox, give Vapi's numbers ids, add tokens and the Vapi
    credential, start the sandbox (if not yet) with the database's numbers, and start a daemon
    trusting ca_file (default: the sandbox's CA) whose public_url is its own webhook
    listener."""
    env.sql("UPDATE phone_numbers SET provider_number_id = 'pn_seed_' || id "
            "WHERE provider = 'vapi' AND provider_number_id IS NULL")
    insert_tokens(env)
    set_vapi_credential(env)
    values = {"provider_ca_file": str(ca_file or sandbox.dir / "ca.pem")}
    values.update(overrides)
    d = env.daemon(values)
    d.values["public_url"] = "http://127.0.0.1:%d" % d.port
    if sandbox.proc is None:
        sandbox.start_for(env, d)
    for p in ("retell", "vapi", "bland"):
        env.sql("UPDATE provider_accounts SET api_base_url = %s WHERE provider = %s",
                sandbox.base_url(p), p)
    d.start()
    # Known daemon race: /readyz can answer 200 before the admin API's own database connection
    # is up, and the API then answers 503 "try again" for a few ms (about 1 start in 30 here).
    # Wait it out, so each test tests what it names.
    wait_for(lambda: api(d, "GET", "/v1/numbers?limit=1").status != 503, 10.0,
             what="the admin API's database connection")
    return d
