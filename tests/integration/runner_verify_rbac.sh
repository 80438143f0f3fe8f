#!/usr/bin/env bash
# ci-fixer verify-rbac against kubesim as the ci-fixer-app ServiceAccount:
# passes with rbac/'s Role; fails, naming the permission, when a needed rule
# is removed and when a dangerous permission (list secrets) is added.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/integration/runner_common.bash

if ! rn_setup; then
	tap_skip "verify-rbac" "$RN_SKIP"
	tap_done
	exit 0
fi
vr() { "$RN_BIN" verify-rbac --kubeconfig "$RN_KUBECONFIG" --namespace $RN_NS "$@"; }

out=$(vr 2>&1); rc=$?
echo "$out" >&2
[[ $rc -eq 0 ]] && tap_pass "passes with rbac/ as applied (exit 0)" || tap_fail "passes with rbac/" "exit $rc"
n=$(echo "$out" | grep -cE '^ok +deny ')
[[ $n -ge 20 ]] && tap_pass "checks at least 20 dangerous permissions ($n)" || tap_fail "at least 20 dangerous checks" "$n"
echo "$out" | grep -qE '^ok +allow +create +pods/exec' && tap_pass "checks pods/exec create" || tap_fail "pods/exec create checked"

json=$(vr --json); rc=$?
echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] is True and len(d["checks"])>=33' &&
	[[ $rc -eq 0 ]] && tap_pass "--json is a document with ok=true" || tap_fail "--json document"

# the admin identity is everything: must fail on the dangerous list
out=$("$RN_BIN" verify-rbac --kubeconfig "$KUBECONFIG" --namespace $RN_NS 2>&1); rc=$?
[[ $rc -eq 1 ]] && echo "$out" | grep -qE '^FAIL +deny +list +secrets' &&
	tap_pass "admin fails, naming list secrets (exit 1)" || tap_fail "admin must fail" "exit $rc"

# remove a needed rule (pods/log get)
kubectl get role ci-fixer-sandbox-manager -n $RN_NS -o json >"$RN_DIR/role.json"
python3 - "$RN_DIR/role.json" <<'PY' >"$RN_DIR/role-nolog.json"
import json, sys
r = json.load(open(sys.argv[1]))
r["rules"] = [x for x in r["rules"] if "pods/log" not in x["resources"]]
for k in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
    r["metadata"].pop(k, None)
print(json.dumps(r))
PY
kubectl replace -f "$RN_DIR/role-nolog.json" >&2
out=$(vr 2>&1); rc=$?
echo "$out" >&2
[[ $rc -eq 1 ]] && echo "$out" | grep -qE '^FAIL +allow +get +pods/log .*NOT ALLOWED' &&
	tap_pass "a removed rule fails, naming pods/log (exit 1)" || tap_fail "removed rule must fail" "exit $rc"
json=$(vr --json)
echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); bad=[c for c in d["checks"] if not c["ok"]]; assert d["ok"] is False and [(c["verb"],c["resource"],c["subresource"]) for c in bad]==[("get","pods","log")], bad' &&
	tap_pass "--json names exactly the missing permission" || tap_fail "--json names the missing permission"

# restore, then add a dangerous permission: list secrets
kubectl apply -f rbac/ci-fixer-rbac.yaml >&2
vr >/dev/null 2>&1 && tap_pass "passes again once restored" || tap_fail "restored must pass"
kubectl create role leak -n $RN_NS --verb=list --resource=secrets >&2
kubectl create rolebinding leak -n $RN_NS --role=leak --serviceaccount=default:ci-fixer-app >&2
out=$(vr 2>&1); rc=$?
echo "$out" >&2
[[ $rc -eq 1 ]] && echo "$out" | grep -qE '^FAIL +deny +list +secrets .*ci-sandbox.*must be denied' &&
	tap_pass "an added dangerous permission fails, naming list secrets (exit 1)" || tap_fail "list secrets must fail" "exit $rc"

# serve: not ready while the dangerous permission is there
rn_serve
sleep 3
code=$(curl -s -o "$RN_DIR/readyz" -w '%{http_code}' "$RN_URL/readyz")
[[ $code == 503 ]] && grep -q "secrets" "$RN_DIR/readyz" && tap_pass "serve /readyz is 503 naming secrets" ||
	tap_fail "serve must stay unready" "$code $(cat "$RN_DIR/readyz")"
rn_api POST /v1/runs -d '{"commands":[{"argv":["true"]}]}' >"$RN_DIR/post"
[[ $(rn_code) == 503 ]] && tap_pass "POST /v1/runs is 503 while unready" || tap_fail "POST while unready" "$(rn_code)"
kubectl delete rolebinding leak -n $RN_NS >&2
if rn_wait_ready; then tap_pass "ready once the permission is gone"; else tap_fail "ready after fix"; fi
[[ $(rn_jobs) -eq 0 ]] && tap_pass "no Job created" || tap_fail "no Job created"
tap_done
