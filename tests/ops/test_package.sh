#!/usr/bin/env bash
# test_package.sh: the Debian package: built by CPack, lintian-clean (no error), installed with
# dpkg (user, directories, conffile, unit verified, service not started, the installed program
# checks the installed configuration, migrates and runs against a throwaway PostgreSQL) and
# purged leaving nothing of it behind but the user, which the package keeps (README).
#
# Usage: test_package.sh BUILD_DIR. Installs into this machine's root file system, so it needs
# root and dpkg (exit 77, a ctest skip, without them) and refuses to run when callrouted is
# already installed or its directories exist. The package is purged again even on failure.
set -uo pipefail

build=${1:?usage: test_package.sh BUILD_DIR}
if ((EUID != 0)); then
	echo "test_package: SKIP: needs root (installs the package with dpkg)"
	exit 77
fi
if ! command -v dpkg >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
	echo "test_package: SKIP: dpkg is absent"
	exit 77
fi

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() {
	echo "ok: $*"
}
die() {
	echo "FAIL: $*" >&2
	exit 1
}

for tool in lintian systemd-analyze runuser setpriv curl python3; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (tools/setup installs it)"
done

# --- the machine must be clean: an installed callrouted is not ours to replace -------------
status=$(dpkg-query -W -f='${db:Status-Abbrev}' callrouted 2>/dev/null || true)
[[ -z $status || $status == un* ]] ||
	die "package callrouted is already known to dpkg (status '$status'): dpkg --purge callrouted first"
for d in /etc/callrouted /var/lib/callrouted /usr/share/callrouted /usr/share/doc/callrouted; do
	[[ ! -e $d ]] || die "$d exists before the install: remove it (or purge callrouted) first"
done
user_before=0
getent passwd callrouted >/dev/null && user_before=1
group_before=0
getent group callrouted >/dev/null && group_before=1

tmp=$(mktemp -d)
installed=0
pg_started=0
daemon_pid=
cleanup() {
	if [[ -n $daemon_pid ]]; then
		kill -KILL "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	if ((pg_started)); then
		tools/pg stop "$tmp/pg" >/dev/null 2>&1 || echo "test_package: cleanup: tools/pg stop failed" >&2
	fi
	if ((installed)); then
		dpkg --purge callrouted >/dev/null 2>&1 || echo "test_package: cleanup: dpkg --purge failed" >&2
	fi
	# the user is left by the purge (as documented); remove it when this test created it
	if ((!user_before)) && getent passwd callrouted >/dev/null; then
		userdel callrouted >/dev/null 2>&1 || true
	fi
	if ((!group_before)) && getent group callrouted >/dev/null; then
		groupdel callrouted >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- build -----------------------------------------------------------------------------------
rm -f "$build"/callrouted_*_amd64.deb
if ! cmake --build "$build" --target package >"$tmp/cpack.log" 2>&1; then
	sed 's/^/    /' "$tmp/cpack.log" >&2
	die "cmake --build $build --target package"
fi
debs=("$build"/callrouted_*_amd64.deb)
((${#debs[@]} == 1)) && [[ -f ${debs[0]} ]] || die "no single callrouted_<version>_amd64.deb in $build"
deb=${debs[0]}
version=$(dpkg-deb -f "$deb" Version)
[[ $(basename "$deb") == "callrouted_${version}_amd64.deb" ]] || fail "file name $(basename "$deb") for version $version"
ok "built $(basename "$deb")"
for field in Maintainer Description Section Priority Depends; do
	[[ -n $(dpkg-deb -f "$deb" "$field") ]] || fail "control field $field is empty"
done
# shlibdeps computed the libraries' packages
for lib in libevent-2.1-7 libpq5 libjansson4 libssl3 libsystemd0 libc6; do
	dpkg-deb -f "$deb" Depends | grep -q "\\b$lib\\b" || fail "Depends lacks $lib"
done
dpkg-deb -I "$deb" conffiles 2>/dev/null | grep -qx /etc/callrouted/callrouted.conf ||
	fail "/etc/callrouted/callrouted.conf is not a conffile"

# --- lintian: no error (warnings are printed, and listed in the README) ----------------------
lintian_out=$(lintian --fail-on error "$deb" 2>&1)
lintian_rc=$?
printf '%s\n' "$lintian_out" | grep -v 'running with root privileges' | sed 's/^/    lintian: /'
if ((lintian_rc != 0)); then
	fail "lintian found errors (exit $lintian_rc)"
else
	ok "lintian: no error"
fi

# --- install -----------------------------------------------------------------------------------
installed=1
if ! dpkg -i "$deb" >"$tmp/dpkg-i.log" 2>&1; then
	sed 's/^/    /' "$tmp/dpkg-i.log" >&2
	die "dpkg -i $deb"
fi
[[ $(dpkg-query -W -f='${db:Status-Abbrev}' callrouted) == ii* ]] || die "callrouted is not 'ii' after dpkg -i"
dpkg -L callrouted >"$tmp/files"
ok "installed ($(wc -l <"$tmp/files") paths)"

got=$(/usr/bin/callrouted --version 2>&1)
[[ $got == "callrouted ${version%-*}"* ]] && ok "callrouted --version: $got" ||
	fail "callrouted --version said '$got', want callrouted ${version%-*}"
/usr/bin/callroutectl --help >/dev/null 2>&1 || /usr/bin/callroutectl help >/dev/null 2>&1 ||
	fail "callroutectl does not run"

unit=/usr/lib/systemd/system/callrouted.service
[[ -f $unit ]] || fail "$unit not installed"
verify_out=$(systemd-analyze verify --man=no "$unit" 2>&1)
verify_rc=$?
if ((verify_rc != 0)) || [[ -n $verify_out ]]; then
	fail "systemd-analyze verify $unit (exit $verify_rc):"
	printf '%s\n' "$verify_out" | sed 's/^/    /' >&2
else
	ok "systemd-analyze verify $unit is clean"
fi

# postinst: the user, the directories and the modes of sysusers.d/tmpfiles.d
getent passwd callrouted >/dev/null && ok "user callrouted exists" || fail "postinst did not create user callrouted"
[[ $(stat -c '%U:%G %a' /var/lib/callrouted 2>/dev/null) == "callrouted:callrouted 700" ]] ||
	fail "/var/lib/callrouted is '$(stat -c '%U:%G %a' /var/lib/callrouted 2>&1)', want callrouted:callrouted 700"
[[ $(stat -c '%U:%G %a' /etc/callrouted/callrouted.conf 2>/dev/null) == "root:callrouted 640" ]] ||
	fail "/etc/callrouted/callrouted.conf is '$(stat -c '%U:%G %a' /etc/callrouted/callrouted.conf 2>&1)', want root:callrouted 640"

# not started, not enabled
if pgrep -u callrouted >/dev/null 2>&1; then
	fail "a process of user callrouted runs after the install: $(pgrep -a -u callrouted)"
fi
if compgen -G '/etc/systemd/system/*/callrouted.service' >/dev/null; then
	fail "the install enabled the unit: $(ls /etc/systemd/system/*/callrouted.service)"
fi
if [[ -d /run/systemd/system ]]; then
	systemctl is-active --quiet callrouted && fail "the install started callrouted.service"
fi
ok "the service was not started or enabled"

# The installed program against the installed layout, as the unit runs it: as user
# callrouted, configuration /etc/callrouted/callrouted.conf, the database URL as the
# credential systemd would hand over from /etc/callrouted/database_url (a throwaway URL).
install -m 0600 /dev/stdin /etc/callrouted/database_url <<<'host=/nonexistent dbname=callrouted user=callrouted'
creds=$tmp/credentials
install -d -m 0700 -o callrouted -g callrouted "$creds"
install -m 0400 -o callrouted -g callrouted /etc/callrouted/database_url "$creds/database_url"
chmod 755 "$tmp"
if check_out=$(cd / && CREDENTIALS_DIRECTORY=$creds runuser -u callrouted -- \
	/usr/bin/callrouted -c /etc/callrouted/callrouted.conf --check-config 2>&1); then
	ok "installed callrouted --check-config as user callrouted: $check_out"
else
	fail "installed callrouted --check-config: $check_out"
fi
# and the package's configuration is what the unit reads
grep -q '^ExecStart=/usr/bin/callrouted -c /etc/callrouted/callrouted.conf$' "$unit" ||
	fail "the unit does not run /usr/bin/callrouted -c /etc/callrouted/callrouted.conf"

# --- the installed program against a throwaway PostgreSQL (tools/pg), through the same layout:
# --migrate as root (as the unit's comment says), then the daemon as user callrouted with the
# credential, its state in /var/lib/callrouted, until /readyz answers 200; then SIGTERM.
# Only the listeners move to free ports (a copy of the installed file with two lines added),
# since 8080/9090 may be taken on a shared machine.
pgdir=$tmp/pg
if ! tools/pg start "$pgdir" >"$tmp/pg.log" 2>&1; then
	sed 's/^/    /' "$tmp/pg.log" >&2
	fail "tools/pg start (a throwaway PostgreSQL)"
else
	pg_started=1
	tools/pg psql "$pgdir" postgres -qc 'CREATE DATABASE callrouted' >/dev/null ||
		fail "CREATE DATABASE callrouted"
	tools/pg url "$pgdir" callrouted >/etc/callrouted/database_url
	install -m 0400 -o callrouted -g callrouted /etc/callrouted/database_url "$creds/database_url"
	if mig_out=$(cd / && CREDENTIALS_DIRECTORY=$creds /usr/bin/callrouted \
		-c /etc/callrouted/callrouted.conf --migrate 2>&1); then
		ok "installed callrouted --migrate against a throwaway PostgreSQL"
	else
		fail "installed callrouted --migrate: $mig_out"
	fi
	read -r port admin_port < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
	conf=$tmp/callrouted.conf
	{ cat /etc/callrouted/callrouted.conf; printf 'listen = 127.0.0.1:%s\nadmin_listen = 127.0.0.1:%s\n' \
		"$port" "$admin_port"; } >"$conf"
	chgrp callrouted "$conf"
	chmod 0640 "$conf"
	# setpriv execs the daemon itself (runuser would stay its parent and exit 143 on SIGTERM)
	(cd / && exec setpriv --reuid=callrouted --regid=callrouted --init-groups -- \
		env CREDENTIALS_DIRECTORY="$creds" /usr/bin/callrouted -c "$conf") >"$tmp/daemon.log" 2>&1 &
	daemon_pid=$!
	ready=0
	for _ in $(seq 1 60); do
		if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/readyz") == 200 ]]; then
			ready=1
			break
		fi
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.5
	done
	if ((ready)); then
		ok "installed callrouted is ready (/readyz 200) as user callrouted with the installed layout"
	else
		fail "installed callrouted did not become ready; its log:"
		sed 's/^/    /' "$tmp/daemon.log" >&2
	fi
	kill -TERM "$daemon_pid" 2>/dev/null
	wait "$daemon_pid"
	daemon_rc=$?
	daemon_pid=
	((daemon_rc == 0)) && ok "SIGTERM: the daemon exited 0" || {
		fail "the daemon exited $daemon_rc on SIGTERM; its log:"
		sed 's/^/    /' "$tmp/daemon.log" >&2
	}
	[[ -n $(find /var/lib/callrouted -mindepth 1 -print -quit 2>/dev/null) ]] &&
		ok "the daemon wrote its state under /var/lib/callrouted" ||
		echo "note: /var/lib/callrouted stayed empty"
fi

# --- purge: nothing left but the user (kept, as documented) -------------------------------------
if ! dpkg --purge callrouted >"$tmp/dpkg-purge.log" 2>&1; then
	sed 's/^/    /' "$tmp/dpkg-purge.log" >&2
	die "dpkg --purge callrouted"
fi
installed=0
status=$(dpkg-query -W -f='${db:Status-Abbrev}' callrouted 2>/dev/null || true)
[[ -z $status || $status == un* ]] || fail "dpkg still knows callrouted after the purge ('$status')"
left=0
while read -r f; do
	if [[ -f $f || -L $f ]]; then
		fail "left behind after the purge: $f"
		left=1
	fi
done <"$tmp/files"
for d in /etc/callrouted /var/lib/callrouted /usr/share/callrouted /usr/share/doc/callrouted \
	/usr/share/lintian/overrides/callrouted; do
	[[ ! -e $d ]] || { fail "left behind after the purge: $d"; left=1; }
done
((left)) || ok "purge left none of the package's files, no /etc/callrouted, no /var/lib/callrouted"
getent passwd callrouted >/dev/null && ok "user callrouted kept by the purge (documented)" ||
	fail "the purge removed user callrouted (the package documents that it keeps it)"

if ((failures)); then
	echo "test_package: $failures failure(s)" >&2
	exit 1
fi
echo "test_package: ok"
