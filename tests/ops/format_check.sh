#!/usr/bin/env bash
# format_check: every C file of the tree is as clang-format (with the repository's .clang-format)
# writes it, so one style holds everywhere, and opens with the line saying what it owns. Fix with: clang-format -i FILE (or tools/format).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || { echo "FAIL: clang-format not installed (tools/setup installs it)"; exit 1; }
mapfile -t files < <(find daemon include tools tests -name '*.[ch]' -not -path '*/corpus/*' | sort)
bad=0
for f in "${files[@]}"; do
	if ! clang-format --dry-run --Werror "$f" 2>/dev/null; then
		echo "FAIL: $f is not formatted (clang-format -i $f); first difference:"
		clang-format "$f" | diff "$f" - | head -8 || true
		bad=$((bad + 1))
	fi
done
# and each opens with one line saying what it owns: "/* name.c: what it owns. */"
for f in "${files[@]}"; do
	b=$(basename "$f")
	if ! head -1 "$f" | grep -qE "^/\* ([a-z_/]+/)?${b//./\\.}: .*\*/\$"; then
		echo "FAIL: $f does not open with a one-line comment \"/* $b: what it owns. */\""
		bad=$((bad + 1))
	fi
done
echo "format_check: ${#files[@]} files, $bad not formatted or without their opening line ($(clang-format --version))"
((bad == 0))
