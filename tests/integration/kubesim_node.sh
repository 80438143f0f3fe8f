#!/usr/bin/env bash
# kubesim driven by @kubernetes/client-node 1.4.0, a second independent
# client (issue 3): exec over v5 and v4 (stdout, stderr, exit code 3 on the
# status channel, stdin), logs (whole, tailLines, follow) and watch
# (ADDED/MODIFIED/DELETED of a pod). The checks are in
# kubesim_node/checks.mjs; client-node is installed with npm into
# $BUILD/kubesim-node (kept between runs). Skips when node or npm is
# missing or the install fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/kubesim.sh"

root=$(cd "$here/../.." && pwd)
build=${BUILD:-build}
[[ $build == /* ]] || build=$root/$build

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	tap_skip "client-node checks" "node or npm is not installed"
	tap_done; exit
fi

lib=$build/kubesim-node
want=$(node -p 'require(process.argv[1]).dependencies["@kubernetes/client-node"]' "$here/kubesim_node/package.json")
have=$(node -p 'try { require(process.argv[1]).version } catch (e) { "" }' \
	"$lib/node_modules/@kubernetes/client-node/package.json" 2>/dev/null)
if [[ $have != "$want" ]]; then
	mkdir -p "$lib"
	cp "$here/kubesim_node/package.json" "$lib/package.json"
	if ! (cd "$lib" && timeout 300 npm install --no-audit --no-fund --loglevel=error) >"$lib/npm.log" 2>&1; then
		tap_skip "client-node checks" "npm install @kubernetes/client-node@$want failed: $(tail -n 1 "$lib/npm.log")"
		tap_done; exit
	fi
fi

if ! ks_start; then
	tap_fail "kubesim starts"
	tap_done; exit 1
fi
tap_pass "kubesim starts ($KS_URL)"

out=$KS_DIR/node.out
timeout 100 node "$here/kubesim_node/checks.mjs" "$KUBECONFIG" "$lib" >"$out" 2>"$KS_DIR/node.err"
rc=$?
n=0
while IFS= read -r line; do
	case $line in
	PASS\ *) tap_pass "client-node: ${line#PASS }"; n=$((n + 1)) ;;
	FAIL\ *) tap_fail "client-node: ${line#FAIL }"; n=$((n + 1)) ;;
	esac
done <"$out"
if [[ $rc -ne 0 ]]; then
	tap_fail "checks.mjs ran to its end (exit $rc)" "$(tail -n 5 "$KS_DIR/node.err")"
	tail -n 20 "$KS_DIR/node.err" >&2
fi
# every check reported: 1 watch, 3 logs, 2x2 exec, 2 stdin, 1 missing command
if [[ $n -ne 11 ]]; then
	tap_fail "11 client-node checks reported ($n did)"
fi
tap_done
