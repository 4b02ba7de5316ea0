# test_prometheus: Debian's prometheus scrapes a running daemon and evaluates conf/alerts.yml.
"""Prometheus for real (issue 15 item 4).

A real Prometheus server (/usr/bin/prometheus, Debian package prometheus) scrapes a running
daemon every second in a job named "callrouted" (as conf/alerts.yml expects) and loads a test
copy of conf/alerts.yml in which only the `for:` durations are shortened. Through Prometheus's
HTTP API the test checks that every target is up, that every rule loads and evaluates without
error, that every metric name used by the rules and the dashboard exists in the scrape, that
every panel query of conf/grafana-dashboard.json (Grafana's variables filled in as
tests/ops/test_alert_rules.sh does) gives a non-empty answer, and that stopping PostgreSQL makes
CallroutedDatabaseDown pending or firing.
"""

import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from support.admin_api import TOKEN_B, insert_tokens
from support.admin_api import api as admin_api
from support.build import REPO
from support.data import NUM_B1, NUM_BLAND1, NUM_RET1, NUM_VAPI1, RETELL_KEY, RETELL_SLUG
from support.ledger import (bland_post_call, new_id, post_bland, post_retell, post_vapi,
                            retell_event, vapi_end, wait_drained)
from support.net import free_port
from support.polling import wait_for
from support.sandbox import SandboxProc
from support.signing import bland_dynamic, retell_inbound, signed_post, vapi_assistant_request

PROMETHEUS = "/usr/bin/prometheus"
RULES = REPO / "conf" / "alerts.yml"
DASHBOARD = REPO / "conf" / "grafana-dashboard.json"
JOB = "callrouted"

# Panel queries allowed to answer with no series, each with the reason. The key is the exact
# expression of conf/grafana-dashboard.json.
EMPTY_ALLOWED = {
    # The second query of "Route table age and source" draws the age only while the instance
    # routes from its snapshot file (callrouted_routes_from_snapshot == 1): a daemon that
    # loaded its table from PostgreSQL has no such series, by design.
    '(time() - callrouted_routes_last_reload_timestamp_seconds'
    '{job=~"$job", instance=~"$instance"}) and on (job, instance) '
    '(callrouted_routes_from_snapshot{job=~"$job", instance=~"$instance"} == 1)':
        "only while routing from the snapshot file",
}

# Panel queries with no series until the first webhook: callrouted_webhook_requests_total is a
# sparse counter (daemon/metrics.h: only its non-zero provider/event/code series are printed),
# so these panels are empty on an instance that has answered no webhook yet. The test checks
# that exactly these are empty before it sends any, and that they are not afterwards.
EMPTY_UNTIL_FIRST_WEBHOOK = {
    'sum by (provider, code) (rate(callrouted_webhook_requests_total'
    '{job=~"$job", instance=~"$instance"}[$__rate_interval]))':
        "Webhook requests by provider and code",
    'sum by (provider, event) (rate(callrouted_webhook_requests_total'
    '{job=~"$job", instance=~"$instance"}[$__rate_interval]))':
        "Webhook requests by event",
    'sum by (instance) (rate(callrouted_webhook_requests_total'
    '{job=~"$job", instance=~"$instance"}[$__rate_interval]))':
        "Webhook requests by instance",
}

# Metric names as the rules and panels use them (the same pattern as test_alert_rules.sh).
SEL = re.compile(r"\b((?:callrouted|process)_[a-z0-9_]+|up)\b")
# A vector selector: the name and its label matchers, if any.
VSEL = re.compile(r"\b(?:(?:callrouted|process)_[a-z0-9_]+|up)\b(?:\s*\{[^}]*\})?")


def api(port, path, **params):
    url = "http://127.0.0.1:%d%s" % (port, path)
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.load(r)
    assert doc.get("status") == "success", (path, params, doc)
    return doc["data"]


def query(port, expr):
    return api(port, "/api/v1/query", query=expr)["result"]


def scrapes(port):
    """How many scrapes of the job Prometheus has stored (in the last 10 minutes)."""
    r = query(port, 'count_over_time(up{job="%s"}[10m])' % JOB)
    return int(r[0]["value"][1]) if r else 0


def rule_exprs():
    """[(alert name, expression)] of conf/alerts.yml, read line by line as test_alert_rules.sh
    does (its layout allows that; no YAML module needed)."""
    out = []
    name, body, in_expr = None, [], False
    for line in RULES.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*- alert:\s*(\S+)", line)
        if m:
            if name:
                out.append((name, "\n".join(body)))
            name, body, in_expr = m.group(1), [], False
            continue
        m = re.match(r"(\s*)expr:\s*(.*)$", line)
        if m and name:
            in_expr = m.group(2) in ("|", ">", "|-", ">-")
            if not in_expr:
                body.append(m.group(2))
            continue
        if in_expr:
            if re.match(r"\s+(for|labels|annotations):", line):
                in_expr = False
            elif not line.lstrip().startswith("#"):
                body.append(line)
    if name:
        out.append((name, "\n".join(body)))
    return out


def panel_exprs():
    """[(panel title, expression)] of every query of every panel (rows' panels included)."""
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = list(dash.get("panels", []))
    for p in list(panels):
        panels.extend(p.get("panels", []))
    return [(p.get("title", "?"), t["expr"]) for p in panels if p.get("type") != "row"
            for t in p.get("targets", []) if t.get("expr", "").strip()]


def fill(expr):
    """Grafana's variables, as tests/ops/test_alert_rules.sh fills them."""
    return (expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
            .replace("$job", ".*").replace("$instance", ".*"))


def metric_names(exprs):
    names = set()
    for e in exprs:
        for m in SEL.finditer(e):
            names.add(m.group(1))
    return names


def write_rules_copy(path, for_duration="1s"):
    """conf/alerts.yml with every `for:` duration shortened; nothing else changes."""
    text = RULES.read_text(encoding="utf-8")
    copy, n = re.subn(r"(?m)^(\s+for:\s*)\S+\s*$", r"\g<1>" + for_duration, text)
    assert n > 0, "no for: durations in %s" % RULES
    path.write_text(copy, encoding="utf-8")
    return path




@pytest.fixture
def prometheus(tmp_path):
    """A function that starts Prometheus scraping the given admin ports; stopped afterwards."""
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip("%s not found (Debian package prometheus; run tools/setup)" % PROMETHEUS)
    procs = []

    def start(admin_ports):
        port = free_port()
        rules = write_rules_copy(tmp_path / "alerts-test-copy.yml")
        conf = tmp_path / "prometheus.yml"
        targets = ", ".join('"127.0.0.1:%d"' % p for p in admin_ports)
        conf.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "rule_files:\n"
            "  - %s\n"
            "scrape_configs:\n"
            "  - job_name: %s\n"
            "    metrics_path: /metrics\n"
            "    static_configs:\n"
            "      - targets: [%s]\n" % (json.dumps(str(rules)), JOB, targets),
            encoding="utf-8")
        log = open(tmp_path / "prometheus.log", "wb")
        proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=%s" % conf,
             "--storage.tsdb.path=%s" % (tmp_path / "prometheus-data"),
             "--web.listen-address=127.0.0.1:%d" % port,
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path))
        procs.append((proc, log))

        def ready():
            if proc.poll() is not None:
                raise AssertionError("prometheus exited (%d):\n%s" % (
                    proc.returncode, (tmp_path / "prometheus.log").read_text(errors="replace")))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_for(ready, 20, interval=0.1, what="prometheus to be ready")
        return port

    yield start
    for proc, log in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def send_events(d):
    """The events after which the event-only series exist: a routing request and a call's end
    for each provider (webhook histograms and counters by provider, route lookups, ledger
    counters by provider) and a request with a bad signature (signature failures)."""
    assert retell_inbound(d, NUM_RET1).status == 200
    assert vapi_assistant_request(d, NUM_VAPI1).status == 200
    assert bland_dynamic(d, NUM_BLAND1).status == 200
    r = post_retell(d, retell_event("call_ended", new_id("prom"), "inbound", NUM_RET1))
    assert r.status == 200, r
    r = post_vapi(d, vapi_end(new_id("prom"), "inbound", NUM_VAPI1))
    assert r.status == 200, r
    r = post_bland(d, bland_post_call(new_id("prom"), True, NUM_BLAND1))
    assert r.status == 200, r
    r = signed_post(d, "retell", RETELL_SLUG, RETELL_KEY + "-wrong",
                    retell_event("call_ended", new_id("prom"), "inbound", NUM_RET1))
    assert r.status == 401, r
    wait_drained(d)


def provider_in_sync(e, tmp_path):
    """A sandbox (tools/sandbox) holding agency B's Retell number as we have it, ret-b pointed
    at it: a sync of ret-b finds no drift, and its drift series exist (all 0)."""
    sb = SandboxProc(tmp_path / "sandbox", accounts=["retell:retell-key-b"]).start()
    sb.control("POST", "agents", {"provider": "retell", "key": "retell-key-b", "id": "agent_b_1",
                                  "name": "B Agent"})
    sb.control("POST", "numbers", {"provider": "retell", "key": "retell-key-b",
                                   "e164": NUM_B1, "set": {"inbound_agents": [
                                       {"agent_id": "agent_b_1", "weight": 1}]}})
    e.sql("UPDATE provider_accounts SET api_base_url = %s WHERE slug = 'ret-b'",
          sb.base_url("retell"))
    return sb


def sync_in_sync_account(e, d):
    """The drift check's series: a dry-run sync of ret-b, which is in sync."""
    insert_tokens(e)
    r = admin_api(d, "POST", "/v1/accounts/ret-b/sync?dry_run=true", token=TOKEN_B, timeout=30)
    assert r.status == 200 and r.json()["in_sync"] is True, r


def test_prometheus_scrapes_daemon_and_evaluates_rules(prometheus, own_env, own_pg, tmp_path):
    t0 = time.monotonic()
    e = own_env
    sb = provider_in_sync(e, tmp_path)
    try:
        _test_prometheus(prometheus, e, own_pg, sb, t0)
    finally:
        sb.stop()


def _test_prometheus(prometheus, e, own_pg, sb, t0):
    d = e.start({"instance_name": "prom-test", "provider_ca_file": sb.ca_file})
    port = prometheus([d.admin_port])

    # Every target is up (a scrape answered and parsed).
    def targets_up():
        active = api(port, "/api/v1/targets")["activeTargets"]
        return active if active and all(t["health"] == "up" for t in active) else None
    active = wait_for(targets_up, 20, interval=0.2, what="every target up")[0]
    assert {t["labels"]["job"] for t in active} == {JOB}, active
    assert [r["value"][1] for r in query(port, 'up{job="%s"}' % JOB)] == ["1"] * len(active)

    # Before any webhook: only the documented panels are empty.
    panels = panel_exprs()
    n0 = scrapes(port)
    wait_for(lambda: scrapes(port) >= n0 + 2, 20, interval=0.2, what="two more scrapes")
    empty_before = {expr for _, expr in panels if not query(port, fill(expr))}
    assert empty_before == set(EMPTY_UNTIL_FIRST_WEBHOOK) | set(EMPTY_ALLOWED), (
        "empty before the first webhook, not documented: %r; documented but not empty: %r" % (
            sorted(empty_before - set(EMPTY_UNTIL_FIRST_WEBHOOK) - set(EMPTY_ALLOWED)),
            sorted((set(EMPTY_UNTIL_FIRST_WEBHOOK) | set(EMPTY_ALLOWED)) - empty_before)))

    # The events come after the first scrapes, so the counters they move have a rate, and the
    # series they create have at least three samples for rate()/increase() over the panels'
    # windows.
    send_events(d)
    sync_in_sync_account(e, d)
    n0 = scrapes(port)
    wait_for(lambda: scrapes(port) >= n0 + 3, 20, interval=0.2, what="three more scrapes")

    # Every rule loaded and evaluates without error.
    def rules_evaluated():
        groups = api(port, "/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r["health"] == "ok" for r in rules) else None
    try:
        rules = wait_for(rules_evaluated, 15, interval=0.2, what="every rule evaluated")[0]
    except AssertionError:
        bad = [(r["name"], r["health"], r.get("lastError")) for g in
               api(port, "/api/v1/rules")["groups"] for r in g["rules"] if r["health"] != "ok"]
        raise AssertionError("rules not healthy: %r" % bad) from None
    loaded = {r["name"] for r in rules}
    shipped = [name for name, _ in rule_exprs()]
    assert loaded == set(shipped), (sorted(loaded ^ set(shipped)))

    # Every metric name the rules and the panels use exists in the scrape.
    scraped = set(api(port, "/api/v1/label/__name__/values", **{"match[]": '{job="%s"}' % JOB}))
    used_by_rules = metric_names(expr for _, expr in rule_exprs())
    used_by_panels = metric_names(expr for _, expr in panels)
    missing = {"rules": sorted(used_by_rules - scraped), "panels": sorted(used_by_panels - scraped)}
    assert missing == {"rules": [], "panels": []}, missing

    # Every vector selector of every rule (name and label matchers) selects at least one
    # series: a wrong label value would make a rule silently never fire.
    no_series = []
    for name, expr in rule_exprs():
        for m in VSEL.finditer(expr):
            if not query(port, m.group(0)):
                no_series.append((name, m.group(0)))
    assert not no_series, "rule selectors with no series: %r" % no_series

    # Every panel query answers with at least one series (a query with none is a broken panel).
    empty = []
    for title, expr in panels:
        if not query(port, fill(expr)) and expr not in EMPTY_ALLOWED:
            empty.append((title, expr))
    assert not empty, "panel queries with no series:\n" + "\n".join("%s: %s" % p for p in empty)
    for expr in EMPTY_ALLOWED:
        assert expr in [x for _, x in panels], "EMPTY_ALLOWED names a query no panel has: " + expr

    # Nothing fires on a healthy daemon except what this test caused on purpose (the bad
    # signature is one request in 5 minutes: below both thresholds of SignatureFailuresSpiking).
    alerts = api(port, "/api/v1/alerts")["alerts"]
    assert not [a for a in alerts if a["labels"]["alertname"] == "CallroutedDatabaseDown"], alerts

    # PostgreSQL stops: CallroutedDatabaseDown becomes pending (or firing: for is 1s here).
    e.conn.close()
    own_pg.stop_fast()
    try:
        def db_down_alert():
            for a in api(port, "/api/v1/alerts")["alerts"]:
                if (a["labels"]["alertname"] == "CallroutedDatabaseDown"
                        and a["state"] in ("pending", "firing")):
                    return a
            return None
        a = wait_for(db_down_alert, 20, interval=0.2, what="CallroutedDatabaseDown pending")[0]
        assert a["labels"]["severity"] == "critical", a
        assert a["labels"]["instance"] == "127.0.0.1:%d" % d.admin_port, a
        assert a["labels"]["job"] == JOB, a
        assert [r["value"][1] for r in query(port, fill(
            'min(callrouted_db_up{job=~"$job", instance=~"$instance"})'))] == ["0"]
    finally:
        own_pg.start_again()
        e.conn = own_pg.connect(e.dbname)

    # PostgreSQL back: the daemon reconnects and the alert goes away.
    def db_down_resolved():
        return not [a for a in api(port, "/api/v1/alerts")["alerts"]
                    if a["labels"]["alertname"] == "CallroutedDatabaseDown"]
    wait_for(db_down_resolved, 20, interval=0.2, what="CallroutedDatabaseDown resolved")
    print("test_prometheus: %.1fs, %d rules, %d panel queries, %d metric names checked" % (
        time.monotonic() - t0, len(rules), len(panels), len(used_by_rules | used_by_panels)))
