#!/usr/bin/env bash
# test_systemd_unit.sh: checks of systemd/callrouted.service, .sysusers and .tmpfiles, offline
# (no systemd as PID 1 is needed): "systemd-analyze verify" is clean, "systemd-analyze security
# --offline=true" scores 1.5 or lower, the directives the daemon relies on are there, every
# hardening directive has its comment, the unit's system call filter lets the daemon set the
# nice value of its background threads (setpriority; where systemd runs as PID 1, the nice
# values of a daemon under systemd-run with that filter), the sysusers and tmpfiles entries
# apply to an empty root, and (when the binary is at hand) the shipped configuration plus the
# unit's credential pass --check-config.
#
# Run from the source tree: bash tests/ops/test_systemd_unit.sh
# CALLROUTED_BIN=path/to/callrouted adds the --check-config check (ctest sets it).
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
unit=systemd/callrouted.service
sysusers=systemd/callrouted.sysusers
tmpfiles=systemd/callrouted.tmpfiles
max_score=1.5

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() {
	echo "ok: $*"
}

for f in "$unit" "$sysusers" "$tmpfiles"; do
	[[ -f $f ]] || { echo "FAIL: $f is missing" >&2; exit 1; }
done
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool not found (Debian package systemd; run tools/setup)" >&2
		exit 1
	fi
done
echo "# $(systemd-analyze --version | head -1)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- systemd-analyze verify --------------------------------------------------------------
# verify wants every Exec*= binary to exist; /usr/bin/callrouted is not installed here, so check
# a copy whose only change is that path (the built binary when known, else /bin/true).
bin=${CALLROUTED_BIN:-}
if [[ -z $bin || ! -x $bin ]]; then
	for b in build/bin/callrouted build-asan/bin/callrouted; do
		if [[ -x $b ]]; then
			bin=$PWD/$b
			break
		fi
	done
fi
stand_in=${bin:-/bin/true}
[[ $stand_in == /* ]] || stand_in=$PWD/$stand_in
grep -q '^ExecStart=/usr/bin/callrouted -c /etc/callrouted/callrouted.conf$' "$unit" ||
	fail "ExecStart= is not '/usr/bin/callrouted -c /etc/callrouted/callrouted.conf'"
sed "s#/usr/bin/callrouted #$stand_in #" "$unit" >"$tmp/callrouted.service"
changed=$(diff "$unit" "$tmp/callrouted.service" | grep '^>')
if [[ $(grep -c . <<<"$changed") -ne 3 ]] || grep -qv '^> Exec' <<<"$changed"; then
	fail "the stand-in should replace the binary in 3 Exec lines (ExecStartPre, ExecStart, ExecReload) only:"$'\n'"$changed"
fi
verify_out=$(systemd-analyze verify --man=no "$tmp/callrouted.service" 2>&1)
verify_rc=$?
if ((verify_rc != 0)) || [[ -n $verify_out ]]; then
	fail "systemd-analyze verify $unit (exit $verify_rc):"
	printf '%s\n' "$verify_out" | sed 's/^/    /' >&2
else
	ok "systemd-analyze verify is clean (ExecStart stand-in: $stand_in)"
fi

# --- systemd-analyze security --offline=true ----------------------------------------------
security_out=$(systemd-analyze security --offline=true "$unit" 2>"$tmp/security.err")
security_rc=$?
if [[ -s $tmp/security.err ]]; then
	fail "systemd-analyze security printed warnings:"
	sed 's/^/    /' "$tmp/security.err" >&2
fi
score=$(printf '%s\n' "$security_out" |
	sed -n 's/.*Overall exposure level for callrouted\.service: \([0-9][0-9.]*\).*/\1/p')
if ((security_rc != 0)) || [[ -z $score ]]; then
	fail "systemd-analyze security gave no 'Overall exposure level' line (exit $security_rc)"
	printf '%s\n' "$security_out" | tail -5 | sed 's/^/    /' >&2
elif python3 -c "import sys; sys.exit(0 if float('$score') <= $max_score else 1)"; then
	ok "systemd-analyze security --offline=true: exposure $score (at most $max_score)"
	echo "SECURITY SCORE: $score"
else
	fail "systemd-analyze security --offline=true: exposure $score, above $max_score; the exposed items:"
	printf '%s\n' "$security_out" | grep '✗' | sed 's/^/    /' >&2
fi

# --- directives the daemon and the deployment rely on --------------------------------------
python3 - "$unit" "$sysusers" "$tmpfiles" <<'EOF' || failures=$((failures + 1))
import re
import sys

unit, sysusers, tmpfiles = sys.argv[1:4]
lines = open(unit, encoding="utf-8").read().splitlines()
section, settings, problems = None, [], []
for i, line in enumerate(lines):
    s = line.strip()
    if not s or s.startswith("#"):
        continue
    if s.startswith("["):
        section = s
        continue
    key, _, value = s.partition("=")
    settings.append((section, key, value, i))

def values(key, section="[Service]"):
    return [v for sec, k, v, _ in settings if k == key and sec == section]

required = {
    "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "10s", "Restart": "on-failure",
    "User": "callrouted", "StateDirectory": "callrouted", "StateDirectoryMode": "0700",
    "ConfigurationDirectory": "callrouted", "UMask": "0077",
    "LoadCredential": "database_url:/etc/callrouted/database_url",
    "ExecStart": "/usr/bin/callrouted -c /etc/callrouted/callrouted.conf",
    "ExecStartPre": "/usr/bin/callrouted -c /etc/callrouted/callrouted.conf --check-config",
    "CapabilityBoundingSet": "", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
    "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
    "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}
for key, want in required.items():
    got = values(key)
    if want not in got:
        problems.append(f"{key}={want} missing (found {got or 'nothing'})")
for key in ("RestartSec", "TimeoutStopSec", "LimitNOFILE"):
    if not values(key):
        problems.append(f"{key}= missing")
if "/bin/kill -HUP $MAINPID" not in values("ExecReload"):
    problems.append("ExecReload=/bin/kill -HUP $MAINPID missing")
if values("DynamicUser") and values("DynamicUser")[-1] in ("yes", "true", "1"):
    problems.append("DynamicUser=yes: the unit relies on the sysusers.d user")
if any(v.strip() == "any" for v in values("IPAddressDeny")):
    problems.append("IPAddressDeny=any would cut PostgreSQL and the providers off")
if values("PrivateNetwork") and values("PrivateNetwork")[-1] in ("yes", "true", "1"):
    problems.append("PrivateNetwork=yes would cut the daemon off the network")
if not any("@system-service" in v for v in values("SystemCallFilter")):
    problems.append("SystemCallFilter=@system-service missing")
if not any(v.startswith("~") and "@privileged" in v and "@resources" in v
           for v in values("SystemCallFilter")):
    problems.append("SystemCallFilter=~@privileged @resources missing")

# One comment per hardening directive: from the "Hardening" marker on, the line above each
# directive is a comment.
start = next((i for i, l in enumerate(lines) if re.match(r"#.*Hardening", l)), None)
if start is None:
    problems.append("no '# --- Hardening' marker line")
else:
    for sec, key, value, i in settings:
        if i > start and not lines[i - 1].lstrip().startswith("#"):
            problems.append(f"line {i + 1}: {key}= has no comment line above it")

# The unit, sysusers.d and tmpfiles.d agree on the user and the directories.
su = [l.split() for l in open(sysusers, encoding="utf-8") if l.strip() and not l.startswith("#")]
if not any(f[0] == "u" and f[1] == "callrouted" for f in su):
    problems.append(f"{sysusers}: no 'u callrouted' line")
tf = open(tmpfiles, encoding="utf-8").read()
for path in ("/var/lib/callrouted", "/etc/callrouted/database_url"):
    if path not in tf:
        problems.append(f"{tmpfiles}: nothing about {path}")

for p in problems:
    print(f"FAIL: {unit}: {p}", file=sys.stderr)
if not problems:
    print(f"ok: {unit}: required directives present, every hardening directive commented")
sys.exit(1 if problems else 0)
EOF

# --- the system call filter and the daemon's nice values ------------------------------------
# The database thread and the snapshot writer call setpriority(nice 10); a filter without it
# answers EPERM (SystemCallErrorNumber=EPERM) and they would run at the workers' priority.
# The unit's effective filter, computed the way systemd merges SystemCallFilter= lines (the
# first one an allow list: later plain ones add, "~" ones remove, an empty one resets), from
# the groups "systemd-analyze syscall-filter" prints.
systemd-analyze syscall-filter >"$tmp/syscall-groups" 2>/dev/null
python3 - "$unit" "$tmp/syscall-groups" <<'EOF' || failures=$((failures + 1))
import sys

unit, groups_path = sys.argv[1:3]
groups, cur = {}, None
for line in open(groups_path, encoding="utf-8"):
    s = line.strip()
    if not s or s.startswith("#"):
        continue
    if line.startswith("@"):
        cur = groups.setdefault(s.split()[0], [])
    elif cur is not None:
        cur.append(s.split()[0])
problems = []
for g in ("@system-service", "@privileged", "@resources"):
    if g not in groups:
        problems.append(f"systemd-analyze syscall-filter does not list {g}")

def expand(name, seen=()):
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    out = set()
    for n in groups.get(name, []):
        out |= expand(n, seen + (name,))
    return out

allow, mode = set(), None
section = None
for line in open(unit, encoding="utf-8"):
    s = line.strip()
    if s.startswith("["):
        section = s
    if section != "[Service]" or not s.startswith("SystemCallFilter="):
        continue
    value = s.partition("=")[2].strip()
    if not value:
        allow, mode = set(), None
        continue
    neg = value.startswith("~")
    names = set()
    for n in value.lstrip("~").split():
        names |= expand(n)
    if mode is None:
        mode = "deny" if neg else "allow"
        allow = set(names)
    elif (mode == "allow") != neg:
        allow |= names
    else:
        allow -= names
if mode != "allow":
    problems.append("SystemCallFilter= is not an allow list")
else:
    if "setpriority" not in allow:
        problems.append("the unit's SystemCallFilter= refuses setpriority: the database "
                        "thread and the snapshot writer cannot set nice 10 (EPERM)")
    for call in ("setuid", "mount", "setrlimit", "sched_setscheduler", "nice"):
        if call in allow:
            problems.append(f"the unit's SystemCallFilter= allows {call}")
    for call in ("prlimit64", "getpriority", "flock"):
        if call not in allow:
            problems.append(f"the unit's SystemCallFilter= refuses {call}, which the daemon uses")
for p in problems:
    print(f"FAIL: {unit}: {p}", file=sys.stderr)
if not problems:
    print(f"ok: {unit}: the effective system call filter ({len(allow)} calls) allows setpriority "
          "(and prlimit64, flock), not the rest of @resources and @privileged")
sys.exit(1 if problems else 0)
EOF

# Where systemd runs as PID 1 (not in a container or CI): the daemon as a transient service with
# the unit's system call filter; its database and snapshot threads reach nice 10.
if [[ $(cat /proc/1/comm 2>/dev/null) != systemd ]]; then
	echo "skip: systemd is not PID 1 here: the nice values under systemd-run are not checked"
elif ((EUID != 0)) || [[ -z $bin ]] || ! command -v systemd-run >/dev/null 2>&1; then
	echo "skip: the systemd-run check needs root, systemd-run and the binary (CALLROUTED_BIN)"
else
	read -r p_listen p_admin p_db < <(python3 -c 'import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
	mkdir -p "$tmp/nice-state"
	cat >"$tmp/nice.conf" <<CONF
database_url = "postgresql://nobody@127.0.0.1:$p_db/none"
listen = "127.0.0.1:$p_listen"
admin_listen = "127.0.0.1:$p_admin"
state_dir = "$tmp/nice-state"
CONF
	props=()
	while IFS= read -r l; do
		props+=(-p "$l")
	done < <(grep -E '^(SystemCallFilter|SystemCallErrorNumber|SystemCallArchitectures)=' "$unit")
	svc=callrouted-nice-test-$$
	if ! systemd-run --quiet --unit="$svc" --collect "${props[@]}" "$bin" -c "$tmp/nice.conf"; then
		fail "systemd-run $svc failed"
	else
		nice10=0
		for _ in $(seq 50); do
			pid=$(systemctl show -p MainPID --value "$svc" 2>/dev/null)
			if [[ -n $pid && $pid != 0 ]]; then
				# field 19 of /proc/PID/task/TID/stat, the 17th after "(comm) "
				nice10=$(for st in /proc/"$pid"/task/*/stat; do
					sed 's/^.*) //' "$st" | awk '{ print $17 }'
				done 2>/dev/null | grep -cx 10)
				((nice10 >= 2)) && break
			fi
			sleep 0.2
		done
		log=$(journalctl -q -u "$svc" --no-pager 2>/dev/null | tail -20)
		systemctl stop "$svc" >/dev/null 2>&1
		if ((nice10 >= 2)); then
			ok "under systemd-run with the unit's filter: $nice10 threads at nice 10 (database, snapshot writer)"
		else
			fail "under systemd-run with the unit's filter: $nice10 threads at nice 10, want 2:"$'\n'"$log"
		fi
	fi
fi

# --- sysusers.d and tmpfiles.d applied to an empty root ------------------------------------
root=$tmp/root
mkdir -p "$root/etc" "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d"
cp "$sysusers" "$root/usr/lib/sysusers.d/callrouted.conf"
cp "$tmpfiles" "$root/usr/lib/tmpfiles.d/callrouted.conf"
if ! out=$(systemd-sysusers --root="$root" callrouted.conf 2>&1); then
	fail "systemd-sysusers: $out"
elif ! grep -q '^callrouted:x:[0-9]*:[0-9]*:[^:]*:/var/lib/callrouted:/usr/sbin/nologin$' "$root/etc/passwd"; then
	fail "systemd-sysusers made no callrouted system user: $(cat "$root/etc/passwd" 2>/dev/null)"
else
	ok "systemd-sysusers creates $(grep '^callrouted:' "$root/etc/passwd")"
fi
if ((EUID != 0)); then
	echo "skip: systemd-tmpfiles --create needs root to chown"
else
	mkdir -p "$root/etc/callrouted"
	echo '# test' >"$root/etc/callrouted/callrouted.conf"
	echo 'host=x' >"$root/etc/callrouted/database_url"
	chmod 644 "$root/etc/callrouted/callrouted.conf" "$root/etc/callrouted/database_url"
	uid=$(awk -F: '$1 == "callrouted" { print $3 }' "$root/etc/passwd")
	gid=$(awk -F: '$1 == "callrouted" { print $3 }' "$root/etc/group")
	if ! out=$(systemd-tmpfiles --root="$root" --create callrouted.conf 2>&1); then
		fail "systemd-tmpfiles --create: $out"
	else
		want="/var/lib/callrouted 700 $uid:$gid
/etc/callrouted 755 0:0
/etc/callrouted/callrouted.conf 640 0:$gid
/etc/callrouted/database_url 600 0:0"
		got=$(while read -r p _; do
			printf '%s %s\n' "$p" "$(stat -c '%a %u:%g' "$root$p")"
		done <<<"$want")
		if [[ $got != "$want" ]]; then
			fail "systemd-tmpfiles: modes/owners differ; want:"$'\n'"$want"$'\n'"got:"$'\n'"$got"
		else
			ok "systemd-tmpfiles: state dir 0700 callrouted, conf 0640 root:callrouted, database_url 0600 root"
		fi
	fi
fi

# --- the shipped configuration + the unit's credential pass --check-config ------------------
if [[ -n $bin ]]; then
	mkdir -p "$tmp/creds"
	echo 'host=/run/postgresql dbname=callrouted' >"$tmp/creds/database_url"
	if out=$(CREDENTIALS_DIRECTORY=$tmp/creds "$bin" -c conf/callrouted.conf --check-config 2>&1); then
		ok "conf/callrouted.conf + credential database_url pass --check-config"
	else
		fail "conf/callrouted.conf with the database_url credential fails --check-config: $out"
	fi
	if out=$(env -u CREDENTIALS_DIRECTORY "$bin" -c conf/callrouted.conf --check-config 2>&1); then
		fail "--check-config accepts conf/callrouted.conf without any database_url: $out"
	else
		ok "without the credential --check-config fails"
	fi
else
	echo "skip: no callrouted binary (set CALLROUTED_BIN) for the --check-config checks"
fi

if ((failures)); then
	echo "test_systemd_unit: $failures check(s) failed" >&2
	exit 1
fi
echo "test_systemd_unit: all checks passed"
