#!/usr/bin/env bash
# The chart's Role has exactly the rules of rbac/ (parsed and compared, order
# of rules and list items aside), which are exactly the rules of
# deploy-conventions.md; the bindings and ServiceAccounts are as issue 6 says.
set -u
. "$(dirname "$0")/deploy_common.bash"
deploy_need_tools
RBAC="$ROOT/rbac/ci-fixer-rbac.yaml"
CONV="$ROOT/../shared/reference/deploy-conventions.md"
ROLE=ci-fixer-sandbox-manager

rbac_rules=$($PY "$LIB" role-rules "$RBAC" "$ROLE")
echo "rbac/: $rbac_rules" >&2
tap_check "rbac/ has Role $ROLE" test -n "$rbac_rules"

# The rules a run needs, written out here as well: a change to rbac/ must be
# made on purpose in three places (rbac/, chart/, this test).
want='[{"apiGroups": [""], "nonResourceURLs": [], "resourceNames": [], "resources": ["events"], "verbs": ["list", "watch"]}, {"apiGroups": [""], "nonResourceURLs": [], "resourceNames": [], "resources": ["pods"], "verbs": ["get", "list", "watch"]}, {"apiGroups": [""], "nonResourceURLs": [], "resourceNames": [], "resources": ["pods/exec"], "verbs": ["create", "get"]}, {"apiGroups": [""], "nonResourceURLs": [], "resourceNames": [], "resources": ["pods/log"], "verbs": ["get"]}, {"apiGroups": ["batch"], "nonResourceURLs": [], "resourceNames": [], "resources": ["jobs"], "verbs": ["create", "delete", "get", "list", "watch"]}]'
tap_check "rbac/ Role rules are exactly jobs c/g/l/w/d, pods g/l/w, pods/exec c+g, pods/log g, events l/w" \
	test "$rbac_rules" = "$want"
if [[ -f $CONV ]]; then
	conv=$($PY "$LIB" expected-rules "$CONV")
	tap_check "rbac/ Role rules equal deploy-conventions.md's" test "$rbac_rules" = "$conv"
else
	tap_skip "rbac/ Role rules equal deploy-conventions.md's" "$CONV not found"
fi

for v in values.yaml values-prod.yaml; do
	if deploy_render "$TMP/$v" -f "$CHART/$v"; then
		chart_rules=$($PY "$LIB" role-rules "$TMP/$v" "$ROLE")
		echo "chart ($v): $chart_rules" >&2
		tap_check "chart Role rules ($v) equal rbac/'s" test "$chart_rules" = "$rbac_rules"
	else
		tap_fail "chart Role rules ($v) equal rbac/'s" "render failed"
	fi
done
def=$TMP/values.yaml

# The comparison itself can fail: one extra verb is seen.
$PY - "$RBAC" >"$TMP/widened.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "Role":
        d["rules"][1]["verbs"].append("delete")
yaml.safe_dump_all(docs, sys.stdout)
PY
tap_check "a Role with one extra verb compares different" \
	test "$($PY "$LIB" role-rules "$TMP/widened.yaml" "$ROLE")" != "$rbac_rules"

# Same objects, same bindings, in rbac/ and the chart (release ci-fixer, namespace default).
for src in "$RBAC" "$def"; do
	name=$([[ $src == "$RBAC" ]] && echo rbac/ || echo chart)
	tap_check "$name: RoleBinding binds Role $ROLE to default/ci-fixer-app only" $PY - "$src" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
rb = [d for d in docs if d["kind"] == "RoleBinding"]
ok = (len(rb) == 1 and rb[0]["metadata"]["name"] == "ci-fixer-sandbox-binding"
      and rb[0]["metadata"]["namespace"] == "ci-sandbox"
      and rb[0]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ci-fixer-sandbox-manager"}
      and rb[0]["subjects"] == [{"kind": "ServiceAccount", "name": "ci-fixer-app", "namespace": "default"}])
print(rb)
sys.exit(0 if ok else 1)
PY
	tap_check "$name: sandbox ServiceAccount has automountServiceAccountToken false and no binding" $PY - "$src" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
sa = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "ci-fixer-sandbox"]
bound = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
         for s in d.get("subjects", []) if s.get("name") == "ci-fixer-sandbox"]
sys.exit(0 if len(sa) == 1 and sa[0].get("automountServiceAccountToken") is False and not bound else 1)
PY
	tap_check "$name: no ClusterRole or ClusterRoleBinding, Role in ci-sandbox" $PY - "$src" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {d["kind"] for d in docs}
roles = [d for d in docs if d["kind"] == "Role"]
sys.exit(0 if not kinds & {"ClusterRole", "ClusterRoleBinding"} and len(roles) == 1
         and roles[0]["metadata"]["namespace"] == "ci-sandbox" else 1)
PY
	tap_check "$name: the expected checker findings are annotated with the reason" $PY - "$src" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
a = [d for d in docs if d["kind"] == "Role"][0]["metadata"].get("annotations", {})
ok = ("polaris.fairwinds.com/rolePodExecAttach-exempt" in a
      and len(a.get("ignore-check.kube-linter.io/access-to-create-pods", "")) > 20
      and "pods/exec" in a.get("ci-fixer.io/expected-findings", ""))
sys.exit(0 if ok else 1)
PY
done
tap_check "rbac/ rules: no wildcard, no secrets/nodes/RBAC/token resource, no escalate/bind/impersonate" \
	$PY - "$RBAC" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
bad = {"secrets", "nodes", "nodes/proxy", "serviceaccounts", "serviceaccounts/token", "namespaces",
       "roles", "rolebindings", "clusterroles", "clusterrolebindings", "pods/attach",
       "pods/ephemeralcontainers", "certificatesigningrequests", "configmaps", "pods/portforward"}
for d in docs:
    for r in d.get("rules", []):
        for k in ("apiGroups", "resources", "verbs"):
            if "*" in r.get(k, []):
                sys.exit(f"wildcard in {k}")
        if bad & set(r["resources"]):
            sys.exit(f"dangerous resource {bad & set(r['resources'])}")
        if {"escalate", "bind", "impersonate", "update", "patch"} & set(r["verbs"]):
            sys.exit("dangerous verb")
        if r.get("resourceNames") or r.get("nonResourceURLs"):
            sys.exit("unexpected resourceNames/nonResourceURLs")
PY
tap_done
