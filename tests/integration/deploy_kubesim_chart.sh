#!/usr/bin/env bash
# The rendered chart against kubesim, with the real kubectl:
#  - every object rendered from values-prod.yaml (release namespace
#    ci-fixer) and from values.yaml (release namespace default) is applied
#    and accepted: the restricted sandbox namespace, its quota, limits and
#    deny-all policy, the RBAC, the service's objects and the `helm test`
#    hook Pod; values.yaml is applied second, so the sandbox namespace's
#    Role and RoleBinding are the default release's at the end;
#  - the release namespaces enforce Pod Security restricted, so kubesim's
#    admission (a port of pod-security-admission's checks) judges the hook
#    Pod, and a Pod made of each Deployment's pod template;
#  - the Role stored in the cluster has exactly rbac/'s rules;
#  - scripts/verify-rbac.sh passes after applying the rendered chart, and
#    `kubectl auth can-i` says yes to create jobs and no to delete nodes as
#    system:serviceaccount:default:ci-fixer-app.
# kubesim runs with --image-fail '*': pods are admitted but none runs.
set -u
. "$(dirname "$0")/deploy_common.bash"
. "$ROOT/tests/lib/kubesim.sh"
deploy_need_tools
if ! command -v kubectl >/dev/null 2>&1; then
	tap_skip "rendered chart on kubesim" "kubectl not found"
	tap_done
	exit 0
fi
APP=system:serviceaccount:default:ci-fixer-app

render_ok=1
deploy_render "$TMP/prod.yaml" --namespace ci-fixer -f "$CHART/values-prod.yaml" || render_ok=0
deploy_render "$TMP/default.yaml" -f "$CHART/values.yaml" || render_ok=0
if [[ $render_ok -eq 0 ]]; then
	tap_fail "the chart renders for values.yaml and values-prod.yaml"
	tap_done
	exit 1
fi
if ! ks_start --image-fail '*'; then
	tap_skip "rendered chart on kubesim" "kubesim did not start (is ${BUILD:-build}/kubesim built?)"
	tap_done
	exit 0
fi
trap 'ks_stop; rm -rf "$TMP"' EXIT

kubectl create namespace ci-fixer >&2
kubectl label namespace ci-fixer pod-security.kubernetes.io/enforce=restricted >&2
kubectl label namespace default pod-security.kubernetes.io/enforce=restricted >&2

for v in prod default; do
	name=values.yaml
	[[ $v == prod ]] && name=values-prod.yaml
	if kubectl apply -f "$TMP/$v.yaml" -o name >"$TMP/applied" 2>"$TMP/apply.err"; then
		tap_check "chart ($name): every rendered object applied and accepted" \
			$PY "$LIB" applied "$TMP/$v.yaml" "$TMP/applied"
	else
		cat "$TMP/apply.err" >&2
		tap_fail "chart ($name): every rendered object applied and accepted" "$(head -c 300 "$TMP/apply.err")"
	fi
	$PY "$LIB" objects "$TMP/$v.yaml" >&2
	# every workload's pod template, as a Pod, through Pod Security admission
	# (the hook Pod was judged by the apply above)
	for d in $($PY "$LIB" objects "$TMP/$v.yaml" | awk '$1 == "Deployment" {sub(".*/", "", $2); print $2}'); do
		$PY "$LIB" pod-from "$TMP/$v.yaml" Deployment "$d" >"$TMP/pod.json"
		if kubectl create -f "$TMP/pod.json" >"$TMP/pod.out" 2>&1; then
			tap_pass "chart ($name): Deployment $d's pod template admitted where restricted is enforced"
		else
			cat "$TMP/pod.out" >&2
			tap_fail "chart ($name): Deployment $d's pod template admitted where restricted is enforced" \
				"$(head -c 300 "$TMP/pod.out")"
		fi
	done
done
tap_check "the helm test hook Pods are stored in both release namespaces (enforcing restricted)" bash -c "
	kubectl get pod ci-fixer-app-test-connection -n default -o name &&
	kubectl get pod ci-fixer-app-test-connection -n ci-fixer -o name"
enforce=$(kubectl get namespace ci-sandbox -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')
tap_check "the chart's sandbox namespace is stored with enforce=restricted" test "$enforce" = restricted

# The Role as the API server stores it has exactly rbac/'s rules.
kubectl get role ci-fixer-sandbox-manager -n ci-sandbox -o yaml >"$TMP/role.yaml"
tap_check "the stored Role has exactly rbac/'s rules" \
	cmp <($PY "$LIB" role-rules "$TMP/role.yaml" ci-fixer-sandbox-manager) \
	<($PY "$LIB" role-rules "$ROOT/rbac/ci-fixer-rbac.yaml" ci-fixer-sandbox-manager)

deploy_check_verify_rbac "the rendered chart" "$APP" --namespace ci-sandbox --app-sa "$APP"
tap_done
