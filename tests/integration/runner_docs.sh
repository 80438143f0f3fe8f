#!/usr/bin/env bash
# docs/api.md and docs/openapi.yaml describe the HTTP API as built:
#  - openapi.yaml parses (python3 yaml; without it that part is skipped,
#    saying so) as OpenAPI 3 with its $refs resolving;
#  - every route of serve's router (the route table in runner/serve.c) is
#    in openapi.yaml with its method, and openapi.yaml has no route the
#    router lacks; every route is in api.md's route table;
#  - `ci-fixer --help` and `ci-fixer CMD --help` (their contents against
#    DESIGN.md are checked by tests/unit/test_runner_cli.c); every sandbox
#    Job flag (those run and serve share: config.json keys) is in
#    docs/deploy.md's config.json table;
#  - every error reason the server and the request decoder can answer,
#    every SSE event name, and every metric family a live serve exposes on
#    /metrics are documented in both.
# The live serve needs no cluster: its RBAC self-check fails against an
# unreachable API server (so it is not ready) but /metrics answers.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
RN_BIN=${BUILD:-build}/ci-fixer
API=docs/api.md
OAS=docs/openapi.yaml

if ! command -v python3 >/dev/null; then
	tap_skip "runner docs" "python3 not found"
	tap_done
	exit 0
fi
[[ -f $API && -f $OAS ]] && tap_pass "docs/api.md and docs/openapi.yaml exist" || { tap_fail "docs exist"; tap_done; exit 1; }

# the router's table: '{ "GET", "/v1/runs/{id}", 1, route_get },' lines between the markers
routes=$(sed -n '/route-table: begin/,/route-table: end/p' runner/serve.c |
	sed -nE 's/^[[:space:]]*\{ "([A-Z]+)", "([^"]+)",.*/\1 \2/p')
[[ $(echo "$routes" | wc -l) -ge 8 ]] && tap_pass "the router's table has $(echo "$routes" | wc -l) routes" ||
	tap_fail "route table not found in runner/serve.c" "$routes"

if python3 -c 'import yaml' 2>/dev/null; then
	python3 - "$OAS" "$routes" <<'PY' && tap_pass "openapi.yaml parses as OpenAPI 3, every \$ref resolves" || tap_fail "openapi.yaml parse"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert str(d["openapi"]).startswith("3."), d["openapi"]
assert d["info"]["title"] and d["paths"], "info/paths"
def refs(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "$ref":
                yield v
            else:
                yield from refs(v)
    elif isinstance(x, list):
        for v in x:
            yield from refs(v)
for r in refs(d):
    assert r.startswith("#/"), r
    node = d
    for part in r[2:].split("/"):
        node = node[part]
PY
	python3 - "$OAS" "$routes" <<'PY' && tap_pass "every route of the router is in openapi.yaml, and nothing else" || tap_fail "routes vs openapi.yaml"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
built = {tuple(l.split()) for l in sys.argv[2].splitlines() if l.strip()}
methods = {"get", "post", "put", "delete", "patch", "head", "options"}
documented = {(m.upper(), p) for p, ops in d["paths"].items() for m in ops if m in methods}
missing, extra = built - documented, documented - built
assert not missing and not extra, ("missing in openapi.yaml: %s; not in the router: %s" % (sorted(missing), sorted(extra)))
PY
else
	tap_skip "openapi.yaml parse" "python3 has no yaml module (pip install pyyaml); checking the routes textually"
	ok=1
	while read -r m p; do
		awk -v p="  $p:" -v m="    $(echo "$m" | tr A-Z a-z):" '
			$0 == p { inpath = 1; next }
			/^  [^ ]/ { inpath = 0 }
			inpath && $0 == m { found = 1 }
			END { exit !found }' "$OAS" || { echo "missing: $m $p" >&2; ok=0; }
	done <<<"$routes"
	[[ $ok -eq 1 ]] && tap_pass "every route of the router is in openapi.yaml (textual check)" || tap_fail "routes vs openapi.yaml"
fi

ok=1
while read -r m p; do
	grep -qF "| \`$m\` | \`$p\` |" "$API" || { echo "api.md lacks $m $p" >&2; ok=0; }
done <<<"$routes"
[[ $ok -eq 1 ]] && tap_pass "every route is in api.md's route table" || tap_fail "routes vs api.md"

# error reasons: the server's and the request decoder's
reasons=$( (grep -oE 'respond_error\(c, [^,]+, [0-9]+, "[A-Za-z]+"' runner/serve.c | grep -oE '"[A-Za-z]+"$'
	grep -oE 'fail\(e, [0-9]+, "[A-Za-z]+"' runner/request.c | grep -oE '"[A-Za-z]+"$'
	grep -oE 'e2?\.reason[^"]*"[A-Za-z]+"' runner/serve.c | grep -oE '"[A-Za-z]+"$') | tr -d '"' | sort -u)
ok=1
for r in $reasons; do
	grep -q "\`$r\`" "$API" || { echo "api.md lacks reason $r" >&2; ok=0; }
	grep -qw "$r" "$OAS" || { echo "openapi.yaml lacks reason $r" >&2; ok=0; }
done
[[ $ok -eq 1 && $(echo "$reasons" | wc -w) -ge 10 ]] && tap_pass "every error reason ($(echo $reasons | wc -w)) is documented in both" ||
	tap_fail "error reasons" "$reasons"

events=$(grep -oE 'event_add_locked\(r, "[A-Za-z]+"' runner/serve.c | grep -oE '"[A-Za-z]+"' | tr -d '"' | sort -u)
ok=1
for e in $events; do
	grep -q "| \`$e\` |" "$API" || { echo "api.md lacks event $e" >&2; ok=0; }
	grep -qw "$e" "$OAS" || { echo "openapi.yaml lacks event $e" >&2; ok=0; }
done
[[ $ok -eq 1 && $(echo "$events" | wc -w) -eq 5 ]] && tap_pass "every SSE event ($(echo $events)) is documented in both" ||
	tap_fail "SSE events" "$events"

# a live serve's /metrics: every family documented
if [[ ! -x $RN_BIN ]]; then
	tap_skip "metrics names" "$RN_BIN not built"
	tap_done
	exit
fi
ok=1
for c in run submit serve verify-rbac; do
	out=$("$RN_BIN" $c --help) || { echo "ci-fixer $c --help exits non-zero" >&2; ok=0; }
	[[ $out == "usage: ci-fixer $c"* && $out == *"-h, --help"* ]] || { echo "ci-fixer $c --help: $out" >&2; ok=0; }
done
[[ $("$RN_BIN" --help) == *verify-rbac* ]] || ok=0
[[ $ok -eq 1 ]] && tap_pass "ci-fixer --help and each subcommand's --help exit 0 with its usage" || tap_fail "--help"
# the sandbox Job settings (the flags run and serve share, but the
# kubeconfig's) are config.json keys: each has a row in docs/deploy.md's
# table and shows its default in --help
help_flags() { "$RN_BIN" "$1" --help | grep -oE '^ +(-., )?--[a-z-]+' | sed 's/.*--//' | sort; }
job_flags=$(comm -12 <(help_flags run) <(help_flags serve) | grep -vxE 'kubeconfig|context|help')
ok=1
for f in $job_flags; do
	grep -qE "^\| [^|]*\`$f\`" docs/deploy.md || { echo "docs/deploy.md's config.json table lacks $f" >&2; ok=0; }
done
for f in image-pull-policy sandbox-service-account node-selector tolerations affinity gpu-resource gpu-count; do
	grep -qx "$f" <<<"$job_flags" || { echo "run and serve lack --$f" >&2; ok=0; }
	"$RN_BIN" serve --help | grep -E -- "--$f " | grep -q '(default' || { echo "--$f: no default in help" >&2; ok=0; }
done
[[ $ok -eq 1 && $(echo "$job_flags" | wc -w) -ge 25 ]] &&
	tap_pass "every sandbox Job flag of run and serve ($(echo $job_flags | wc -w)) is a row of docs/deploy.md's config.json table" ||
	tap_fail "Job flags vs docs/deploy.md" "$job_flags"
dir=$(mktemp -d /tmp/runner-docs.XXXXXX)
cleanup() {
	[[ -n ${pid:-} ]] && { kill -TERM "$pid" 2>/dev/null; sleep 0.5; kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
	rm -rf "$dir"
}
trap cleanup EXIT
cat >"$dir/kubeconfig" <<'EOK'
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: none, user: u, namespace: ci-sandbox}}]
current-context: c
EOK
echo tok >"$dir/tokens"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$RN_BIN" serve --listen 127.0.0.1:$port --kubeconfig "$dir/kubeconfig" --token-file "$dir/tokens" \
	--data-dir "$dir/data" 2>"$dir/serve.log" &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -s -o /dev/null -H 'Authorization: Bearer tok' "http://127.0.0.1:$port/v1/runs"
curl -s "http://127.0.0.1:$port/metrics" >"$dir/metrics"
families=$(sed -nE 's/^# TYPE ([a-z_]+) .*/\1/p' "$dir/metrics" | sort -u)
ok=1
for f in $families; do
	grep -q "\`$f\`" "$API" || { echo "api.md lacks metric $f" >&2; ok=0; }
	grep -qw "$f" "$OAS" || { echo "openapi.yaml lacks metric $f" >&2; ok=0; }
done
[[ $ok -eq 1 && $(echo "$families" | wc -w) -ge 10 ]] && tap_pass "every metric family of a live /metrics ($(echo $families | wc -w)) is documented in both" ||
	tap_fail "metrics" "$families $(tail -3 "$dir/serve.log")"
# what api.md says of methods: HEAD as GET, 405 with Allow, 401 before 404 under /v1/
h=$(curl -s -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$port/healthz")
curl -s -D "$dir/h405" -o "$dir/b405" -X PUT -H 'Authorization: Bearer tok' "http://127.0.0.1:$port/v1/runs" >/dev/null
u=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/nothing-here")
[[ $h == 200 && $(head -1 "$dir/h405") == *405* && $u == 401 ]] && grep -qi '^Allow: POST, GET' "$dir/h405" &&
	grep -q '"reason":"MethodNotAllowed"' "$dir/b405" &&
	tap_pass "HEAD answers as GET; PUT /v1/runs is 405 with Allow; an unknown /v1/ path without a token is 401" ||
	tap_fail "methods" "HEAD=$h $(head -1 "$dir/h405") unknown=$u $(cat "$dir/b405")"
# and the documented ones exist (nothing stale in the table)
doc_families=$(sed -nE 's/^\| `(cifixer_[a-z_]+)` \|.*/\1/p' "$API" | sort -u)
[[ "$doc_families" == "$families" ]] && tap_pass "api.md's metrics table lists exactly the live families" ||
	tap_fail "stale metrics in api.md" "$(diff <(echo "$doc_families") <(echo "$families"))"
tap_done
