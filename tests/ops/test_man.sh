#!/usr/bin/env bash
# test_man: the man pages lint clean, callrouted.conf(5) is the key table, callroutectl(1) lists
# the commands of `callroutectl --help`.
set -euo pipefail
build=${1:?usage: test_man.sh BUILD_DIR}
daemon=${CALLROUTED_BIN:-$build/bin/callrouted}
ctl=${CALLROUTECTL_BIN:-$build/bin/callroutectl}
man=$build/man
fail=0
command -v mandoc >/dev/null || { echo "FAIL: mandoc not installed (tools/setup installs it)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. every page is mandoc -T lint -W warning clean: exit 0 and no output
for p in callroutectl.1 callrouted.conf.5 callrouted.8; do
	if [[ ! -s $man/$p ]]; then
		echo "FAIL: $man/$p not built"
		fail=1
		continue
	fi
	if ! mandoc -T lint -W warning "$man/$p" >"$tmp/lint" 2>&1 || [[ -s $tmp/lint ]]; then
		echo "FAIL: mandoc -T lint -W warning $p:"
		cat "$tmp/lint"
		fail=1
	fi
done

# 2. callrouted.conf(5) names every key `callrouted --help` lists, and no other
"$daemon" --help | sed -n '/^configuration keys/,$p' | awk 'NR > 1 && NF { print $1 }' |
	sort >"$tmp/keys.help"
sed -n 's/^\.It Cm \([a-z_]*\) No = .*/\1/p' "$man/callrouted.conf.5" | sort >"$tmp/keys.man"
if [[ ! -s $tmp/keys.help ]] || ! diff -u "$tmp/keys.help" "$tmp/keys.man" >"$tmp/d"; then
	echo "FAIL: keys of callrouted --help (-) and of callrouted.conf.5 (+) differ:"
	cat "$tmp/d"
	fail=1
fi
# ... and its key list is the one this binary prints (the page was built from this table)
sed -n '/^\.Sh KEYS$/,/^\.Sh /p' "$man/callrouted.conf.5" | sed '1d;$d' >"$tmp/list.man"
"$daemon" --print-config-man >"$tmp/list.bin"
if ! diff -u "$tmp/list.bin" "$tmp/list.man" >"$tmp/d"; then
	echo "FAIL: callrouted.conf.5's KEYS differ from callrouted --print-config-man (stale page?):"
	head -40 "$tmp/d"
	fail=1
fi

# 3. callroutectl(1)'s COMMANDS are the commands of `callroutectl --help`
"$ctl" --help | sed -n '/^commands:/,/tells more/p' |
	awk '/^  [a-z]/ { c = ""; for (i = 1; i <= NF && $i ~ /^[a-z]+$/; i++) c = c (c ? " " : "") $i;
		print c }' | sort -u >"$tmp/cmds.help"
sed -n '/^\.Sh COMMANDS$/,/^\.Sh /p' "$man/callroutectl.1" |
	awk '/^\.It Cm / { c = ""; for (i = 3; i <= NF && $i ~ /^[a-z]+$/; i++) c = c (c ? " " : "") $i;
		print c }' | sort -u >"$tmp/cmds.man"
if [[ ! -s $tmp/cmds.help ]] || ! diff -u "$tmp/cmds.help" "$tmp/cmds.man" >"$tmp/d"; then
	echo "FAIL: commands of callroutectl --help (-) and of callroutectl.1 (+) differ:"
	cat "$tmp/d"
	fail=1
fi

# 4. the facts the pages must state are there (rendered text)
mandoc -T utf8 "$man/callrouted.8" | col -b >"$tmp/8.txt"
for s in SIGHUP SIGTERM "second SIGTERM" /etc/callrouted/callrouted.conf state_dir/lock \
	state_dir/journal/ quarantine/ routes.snapshot --check-config --migrate \
	CREDENTIALS_DIRECTORY "EXIT STATUS" "SEE ALSO" "callrouted.conf(5)" "callroutectl(1)"; do
	grep -qF -- "$s" "$tmp/8.txt" || { echo "FAIL: callrouted.8 does not mention $s"; fail=1; }
done

if ((fail)); then
	exit 1
fi
echo "test_man: ok ($(wc -l <"$tmp/keys.man") keys, $(wc -l <"$tmp/cmds.man") commands, 3 pages lint clean)"
