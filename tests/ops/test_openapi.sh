#!/usr/bin/env bash
# test_openapi: daemon/openapi.json (the admin API's OpenAPI 3.1 document) is valid JSON and
# clean under `redocly lint` (@redocly/cli, pinned below, from npm, installed once into
# BUILD/npm: an ignored directory of the build tree).  npm unreachable: FAIL, saying so (a lint
# that was not run is not a pass).  Usage: test_openapi.sh BUILD_DIR
set -euo pipefail

REDOCLY_VERSION=2.77.0
build=${1:?usage: test_openapi.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
doc=$root/daemon/openapi.json
prefix=$build/npm
cli=$prefix/node_modules/.bin/redocly

/usr/bin/python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["openapi"].startswith("3.1"), d["openapi"]' "$doc"

if ! command -v npm >/dev/null 2>&1; then
	echo "test_openapi: FAIL: npm is not installed (tools/setup installs it)" >&2
	exit 1
fi
have=$(cat "$prefix/node_modules/@redocly/cli/package.json" 2>/dev/null |
	/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])' 2>/dev/null || true)
if [[ "$have" != "$REDOCLY_VERSION" ]]; then
	mkdir -p "$prefix"
	if ! npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
		"@redocly/cli@$REDOCLY_VERSION" >"$prefix/install.log" 2>&1; then
		echo "test_openapi: FAIL: could not install @redocly/cli@$REDOCLY_VERSION from npm" \
			"(is the registry reachable?):" >&2
		tail -20 "$prefix/install.log" >&2
		exit 1
	fi
fi
# the recommended rules, as errors; no telemetry, no update check
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	"$cli" lint --config "$root/tests/ops/redocly.yaml" "$doc"
