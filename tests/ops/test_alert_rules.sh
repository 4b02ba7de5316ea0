#!/usr/bin/env bash
# test_alert_rules.sh: checks of conf/alerts.yml, conf/alerts_test.yml and
# conf/grafana-dashboard.json:
#   - promtool check rules conf/alerts.yml, promtool test rules conf/alerts_test.yml;
#   - every alert has a severity label, summary and description annotations, and at least one
#     test case where it fires and one where it does not;
#   - the dashboard is valid JSON on the ${DS_PROMETHEUS} data source variable, and every
#     expression in it parses (as a recording rule, through promtool);
#   - every metric that the rules or the dashboard use is one callrouted exports (the list
#     below, itself checked against the daemon's sources), with its own label names only.
#
# Run from the source tree: bash tests/ops/test_alert_rules.sh
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
rules=conf/alerts.yml
tests=conf/alerts_test.yml
dashboard=conf/grafana-dashboard.json

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

for f in "$rules" "$tests" "$dashboard"; do
	[[ -f $f ]] || { echo "FAIL: $f is missing" >&2; exit 1; }
done
if ! command -v promtool >/dev/null 2>&1; then
	echo "FAIL: promtool not found (Debian package prometheus; run tools/setup)" >&2
	exit 1
fi
echo "# $(promtool --version 2>&1 | head -1)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if out=$(promtool check rules "$rules" 2>&1); then
	echo "ok: promtool check rules $rules: $(grep -o '[0-9]* rules found' <<<"$out")"
else
	fail "promtool check rules $rules:"$'\n'"$out"
fi
if out=$(promtool test rules "$tests" 2>&1); then
	echo "ok: promtool test rules $tests"
else
	fail "promtool test rules $tests:"$'\n'"$out"
fi

# The rest in Python (the standard library only: no YAML module needed; both YAML files are
# read line by line, which their layout allows).
python3 - "$rules" "$tests" "$dashboard" "$tmp/dashboard_rules.yml" <<'EOF' ||
import json
import re
import sys

rules_path, tests_path, dash_path, out_rules = sys.argv[1:5]
problems = []

# Everything callrouted exports (issue 4, README's metrics reference): name -> (type, labels).
METRICS = {
    "callrouted_webhook_requests_total": ("counter", {"provider", "event", "code"}),
    "callrouted_route_lookups_total": ("counter", {"result"}),
    "callrouted_webhook_signature_failures_total": ("counter", {"provider"}),
    "callrouted_routes_reloads_total": ("counter", {"kind", "result"}),
    "callrouted_changes_notifications_total": ("counter", set()),
    "callrouted_webhook_duration_seconds": ("histogram", {"provider", "kind"}),
    "callrouted_routes_reload_duration_seconds": ("histogram", {"kind"}),
    "callrouted_journal_fsync_duration_seconds": ("histogram", set()),
    "callrouted_journal_append_duration_seconds": ("histogram", set()),
    "callrouted_routes_entries": ("gauge", set()),
    "callrouted_routes_generation": ("gauge", set()),
    "callrouted_routes_last_reload_timestamp_seconds": ("gauge", set()),
    "callrouted_routes_from_snapshot": ("gauge", set()),
    "callrouted_routes_table_bytes": ("gauge", set()),
    "callrouted_db_up": ("gauge", set()),
    "callrouted_db_reconnects_total": ("counter", set()),
    "callrouted_journal_records_pending": ("gauge", set()),
    "callrouted_journal_bytes": ("gauge", set()),
    "callrouted_journal_writable": ("gauge", set()),
    "callrouted_journal_appends_total": ("counter", set()),
    "callrouted_journal_append_failures_total": ("counter", set()),
    "callrouted_journal_fsyncs_total": ("counter", set()),
    "callrouted_journal_torn_records_total": ("counter", set()),
    "callrouted_journal_corrupt_records_total": ("counter", set()),
    "callrouted_journal_quarantined_segments_total": ("counter", set()),
    "callrouted_journal_quarantine_failures_total": ("counter", set()),
    "callrouted_journal_checkpoint_resets_total": ("counter", set()),
    "callrouted_journal_checkpoint_failures_total": ("counter", set()),
    "callrouted_ledger_rows_total": ("counter", {"provider"}),
    "callrouted_ledger_billed_seconds_total": ("counter", {"provider"}),
    "callrouted_ledger_amount_micros_total": ("counter", {"provider"}),
    "callrouted_ledger_calls_written_total": ("counter", set()),
    "callrouted_ledger_batches_total": ("counter", set()),
    "callrouted_ledger_batch_failures_total": ("counter", set()),
    "callrouted_ledger_unattributed_total": ("counter", set()),
    "callrouted_ledger_agent_mismatches_total": ("counter", set()),
    "callrouted_ledger_rejected_total": ("counter", set()),
    "callrouted_ledger_rejects_total": ("counter", set()),
    "callrouted_ledger_reject_failures_total": ("counter", set()),
    "callrouted_ledger_events_invalid_total": ("counter", {"provider", "reason"}),
    "callrouted_ledger_unpriced_total": ("counter", {"provider"}),
    "callrouted_ledger_duration_disagreements_total": ("counter", set()),
    "callrouted_ledger_replication_timeouts_total": ("counter", set()),
    "callrouted_http_accept_errors_total": ("counter", {"reason"}),
    "callrouted_admin_http_accept_errors_total": ("counter", {"reason"}),
    "callrouted_active_calls": ("gauge", set()),
    "callrouted_provider_drift": ("gauge", {"provider", "account", "kind"}),
    "callrouted_provider_sync_errors_total": ("counter", set()),
    "callrouted_build_info": ("gauge", {"version"}),
    "callrouted_api_number_change_conflicts_total": ("counter", set()),
    "callrouted_api_number_change_takeovers_total": ("counter", set()),
    "callrouted_api_number_change_lease_lost_total": ("counter", set()),
    "callrouted_api_idempotent_replays_total": ("counter", set()),
    "callrouted_api_idempotency_refusals_total": ("counter", {"reason"}),
    "callrouted_api_idempotency_keys_expired_total": ("counter", set()),
    "callrouted_api_number_events_total": ("counter", set()),
    "callrouted_api_change_record_failures_total": ("counter", set()),
    "callrouted_routes_change_generation": ("gauge", set()),
    "callrouted_instance_heartbeats_total": ("counter", set()),
    "callrouted_instance_heartbeat_failures_total": ("counter", set()),
    "process_cpu_seconds_total": ("counter", set()),
    "process_resident_memory_bytes": ("gauge", set()),
    "process_open_fds": ("gauge", set()),
    "process_max_fds": ("gauge", set()),
    "process_start_time_seconds": ("gauge", set()),
}
TARGET_LABELS = {"job", "instance"}  # added by the scrape

# The daemon still exports each of them (a rename there must show up here): metrics.h names
# the counters and histograms, each subsystem's x_stats() its own figures (scrape.c renders).
try:
    from pathlib import Path
    src = "".join(p.read_text(encoding="utf-8") for p in sorted(Path("daemon").rglob("*.[ch]")))
    for name in METRICS:
        # the listeners' figures are named prefix + WIRE_STAT("suffix", ...) (daemon/wire.c)
        wire = re.match(r"callrouted_(?:admin_)?http_(.+)$", name)
        if f'"{name}' not in src and not (wire and f'WIRE_STAT("{wire.group(1)}"' in src):
            problems.append(f"daemon/ no longer names {name}")
except OSError as e:
    problems.append(f"cannot read the daemon's metrics source: {e}")

SEL = re.compile(r"\b((?:callrouted|process)_[a-z0-9_]+|up)\b(\s*\{([^}]*)\})?")

def check_expr(where, expr):
    used = set()
    for m in SEL.finditer(expr):
        name, labels = m.group(1), m.group(3)
        base, suffix = name, ""
        for s in ("_bucket", "_sum", "_count"):
            if name.endswith(s) and name[: -len(s)] in METRICS:
                base, suffix = name[: -len(s)], s
        if name == "up":
            allowed = set()
        elif base not in METRICS:
            problems.append(f"{where}: unknown metric {name}")
            continue
        else:
            mtype, allowed = METRICS[base]
            if mtype == "histogram" and not suffix:
                problems.append(f"{where}: histogram {name} used without _bucket/_sum/_count")
            if suffix and mtype != "histogram":
                problems.append(f"{where}: {name}: {base} is not a histogram")
            if suffix == "_bucket":
                allowed = allowed | {"le"}
        used.add(base)
        for lab in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", labels or ""):
            if lab not in allowed | TARGET_LABELS | {"__name__"}:
                problems.append(f"{where}: {name} has no label {lab}")
    return used

# --- alerts.yml: each rule's expression, labels and annotations ---------------------------
rule_lines = open(rules_path, encoding="utf-8").read().splitlines()
alerts = {}
current = None
for i, line in enumerate(rule_lines):
    m = re.match(r"\s*- alert:\s*(\S+)", line)
    if m:
        current = m.group(1)
        if current in alerts:
            problems.append(f"{rules_path}: alert {current} defined twice")
        alerts[current] = {"text": [], "line": i + 1}
        continue
    if current and not line.lstrip().startswith("#"):
        alerts[current]["text"].append(line)
for name, a in alerts.items():
    body = "\n".join(a["text"])
    for what, need in (("a severity label", r"^\s+severity:\s*(critical|warning|info)\s*$"),
                       ("a summary", r"^\s+summary:"), ("a description", r"^\s+description:")):
        if not re.search(need, body, re.M):
            problems.append(f"{rules_path}:{a['line']}: {name} lacks {what}")
    check_expr(f"{rules_path}: {name}", body)
if not alerts:
    problems.append(f"{rules_path}: no alerts found")
must_have = {"CallroutedDatabaseDown", "CallroutedRouteTableStale", "CallroutedJournalBacklogGrowing",
             "CallroutedJournalNotWritable", "CallroutedSignatureFailuresSpiking",
             "CallroutedWebhookLatencyHigh", "CallroutedNoReadyInstance"}
for name in sorted(must_have - set(alerts)):
    problems.append(f"{rules_path}: alert {name} is missing")

# --- alerts_test.yml: a firing and a silent case per alert -------------------------------
test_lines = open(tests_path, encoding="utf-8").read().splitlines()
fires, silent = set(), set()
for i, line in enumerate(test_lines):
    m = re.match(r"\s*alertname:\s*(\S+)", line)
    if not m:
        continue
    nxt = test_lines[i + 1].strip() if i + 1 < len(test_lines) else ""
    if re.fullmatch(r"exp_alerts:\s*\[\]", nxt):
        silent.add(m.group(1))
    elif re.fullmatch(r"exp_alerts:", nxt):
        fires.add(m.group(1))
    else:
        problems.append(f"{tests_path}:{i + 2}: expected exp_alerts after alertname")
for name in sorted(alerts):
    if name not in fires:
        problems.append(f"{tests_path}: no case where {name} fires")
    if name not in silent:
        problems.append(f"{tests_path}: no case where {name} stays silent")
for name in sorted((fires | silent) - set(alerts)):
    problems.append(f"{tests_path}: tests an alert that does not exist: {name}")

# --- the dashboard -----------------------------------------------------------------------
try:
    dash = json.load(open(dash_path, encoding="utf-8"))
except ValueError as e:
    problems.append(f"{dash_path}: invalid JSON: {e}")
    dash = None
exprs = []
if dash is not None:
    if not 36 <= dash.get("schemaVersion", 0) <= 39:
        problems.append(f"{dash_path}: schemaVersion {dash.get('schemaVersion')} (want about 38)")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append(f"{dash_path}: no datasource variable DS_PROMETHEUS of type prometheus")
    ids = set()
    panels = list(dash.get("panels", []))
    for p in list(panels):
        panels.extend(p.get("panels", []))
    for p in panels:
        title = p.get("title", "?")
        if p.get("id") in ids:
            problems.append(f"{dash_path}: panel id {p.get('id')} used twice")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
            problems.append(f"{dash_path}: panel '{title}' is not on ${{DS_PROMETHEUS}}")
        if not p.get("targets"):
            problems.append(f"{dash_path}: panel '{title}' has no query")
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
                problems.append(f"{dash_path}: a query of '{title}' is not on ${{DS_PROMETHEUS}}")
            expr = t.get("expr", "")
            if not expr.strip():
                problems.append(f"{dash_path}: panel '{title}' has an empty query")
                continue
            exprs.append((title, expr))
    used = set()
    for title, expr in exprs:
        used |= check_expr(f"{dash_path}: '{title}'", expr)
    # What the issue asks the dashboard to show.
    for name in ("callrouted_webhook_requests_total", "callrouted_webhook_duration_seconds",
                 "callrouted_route_lookups_total", "callrouted_routes_entries",
                 "callrouted_routes_generation", "callrouted_routes_last_reload_timestamp_seconds",
                 "callrouted_routes_reloads_total", "callrouted_routes_reload_duration_seconds",
                 "callrouted_db_up", "callrouted_db_reconnects_total",
                 "callrouted_journal_records_pending", "callrouted_journal_bytes",
                 "callrouted_journal_fsync_duration_seconds", "callrouted_journal_append_failures_total",
                 "callrouted_ledger_rows_total", "callrouted_ledger_billed_seconds_total",
                 "callrouted_ledger_amount_micros_total", "callrouted_active_calls",
                 "callrouted_webhook_signature_failures_total", "process_resident_memory_bytes",
                 "process_open_fds"):
        if name not in used:
            problems.append(f"{dash_path}: no panel shows {name}")
    unused = sorted(set(METRICS) - used)
    if unused:
        print(f"note: metrics on no panel: {', '.join(unused)}")

# Every dashboard expression, with Grafana's variables filled in, as a recording rule for
# promtool to parse.
with open(out_rules, "w", encoding="utf-8") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for n, (title, expr) in enumerate(exprs):
        e = (expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
             .replace("$job", ".*").replace("$instance", ".*"))
        f.write(f"      - record: dashboard:expr_{n}\n        expr: {json.dumps(e)}\n")

for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"ok: {len(alerts)} alerts, each with severity, summary, description, a firing and a silent test case")
print(f"ok: {dash_path}: valid JSON, {len(exprs)} queries on ${{DS_PROMETHEUS}}, only exported metrics and labels")
EOF
	failures=$((failures + 1))

if [[ -s $tmp/dashboard_rules.yml ]]; then
	if out=$(promtool check rules "$tmp/dashboard_rules.yml" 2>&1); then
		echo "ok: every dashboard query parses (promtool)"
	else
		fail "a dashboard query does not parse:"$'\n'"$out"
	fi
fi

if ((failures)); then
	echo "test_alert_rules: $failures check(s) failed" >&2
	exit 1
fi
echo "test_alert_rules: all checks passed"
