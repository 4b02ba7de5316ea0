#!/usr/bin/env bash
# test_install: `cmake --install` puts every file that ships where the unit and README say.
set -euo pipefail
build=${1:?usage: test_install.sh BUILD_DIR}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
DESTDIR=$dest cmake --install "$build" --prefix /usr >/dev/null
fail=0
for f in usr/bin/callrouted usr/bin/callroutectl \
	usr/lib/systemd/system/callrouted.service usr/lib/sysusers.d/callrouted.conf \
	usr/lib/tmpfiles.d/callrouted.conf etc/callrouted/callrouted.conf \
	usr/share/callrouted/alerts.yml usr/share/callrouted/grafana-dashboard.json \
	usr/share/callrouted/callrouted.conf usr/share/doc/callrouted/LICENSE \
	usr/share/man/man1/callroutectl.1.gz usr/share/man/man5/callrouted.conf.5.gz \
	usr/share/man/man8/callrouted.8.gz; do
	if [[ ! -e $dest/$f ]]; then
		echo "FAIL: $f not installed"
		fail=1
	fi
done
# the unit runs the program where it is installed
exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$dest/usr/lib/systemd/system/callrouted.service")
[[ -x $dest$exe ]] || { echo "FAIL: the unit's ExecStart $exe is not the installed program"; fail=1; }
"$dest/usr/bin/callrouted" --version >/dev/null || { echo "FAIL: installed callrouted --version"; fail=1; }
# the configuration is not world-readable (it may name the database)
mode=$(stat -c %a "$dest/etc/callrouted/callrouted.conf")
[[ $mode == 640 ]] || { echo "FAIL: /etc/callrouted/callrouted.conf mode $mode, want 640"; fail=1; }
if ((fail)); then
	exit 1
fi
echo "test_install: ok ($(find "$dest" -type f | wc -l) files)"
