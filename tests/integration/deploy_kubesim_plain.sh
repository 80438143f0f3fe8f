#!/usr/bin/env bash
# rbac/ and k8s-manifests/ against kubesim, with the real kubectl (the one
# on PATH, 1.32; server-side strict field validation is its default):
#  - every file of both directories is applied and every object in it is
#    accepted, the restricted sandbox namespace first; then `kubectl apply -k`
#    of both kustomizations (k8s-manifests/ includes ../rbac) is accepted;
#  - scripts/verify-rbac.sh passes after applying rbac/ alone (with the
#    sandbox namespace it needs), and `kubectl auth can-i` says yes to
#    create jobs and no to delete nodes as system:serviceaccount:default:ci-fixer-app;
#  - the sandbox namespace enforces Pod Security restricted (kubesim's
#    admission, a port of pod-security-admission's checks, refuses a
#    default pod there), and the plain Deployment's pod template is admitted
#    in a namespace that enforces restricted.
# kubesim runs with --image-fail '*': pods are admitted but none runs.
set -u
. "$(dirname "$0")/deploy_common.bash"
. "$ROOT/tests/lib/kubesim.sh"

if [[ -z $PY ]]; then
	tap_skip "plain manifests on kubesim" "python3 with PyYAML (Debian python3-yaml) not found"
	tap_done
	exit 0
fi
if ! command -v kubectl >/dev/null 2>&1; then
	tap_skip "plain manifests on kubesim" "kubectl not found"
	tap_done
	exit 0
fi
if ! ks_start --image-fail '*'; then
	tap_skip "plain manifests on kubesim" "kubesim did not start (is ${BUILD:-build}/kubesim built?)"
	tap_done
	exit 0
fi
trap 'ks_stop; rm -rf "$TMP"' EXIT
APP=system:serviceaccount:default:ci-fixer-app

# apply_file FILE: kubectl apply, then every document of FILE must be named
# in kubectl's output.
apply_file() {
	local f=$1 rel=${1#"$ROOT"/}
	if kubectl apply -f "$f" -o name >"$TMP/applied" 2>"$TMP/apply.err"; then
		tap_check "kubectl apply -f $rel: every object accepted" $PY "$LIB" applied "$f" "$TMP/applied"
	else
		cat "$TMP/apply.err" >&2
		tap_fail "kubectl apply -f $rel: every object accepted" "$(head -c 300 "$TMP/apply.err")"
	fi
}

# 1. the sandbox namespace, then rbac/ (which needs it)
apply_file "$ROOT/k8s-manifests/sandbox-namespace.yaml"
enforce=$(kubectl get namespace ci-sandbox -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')
tap_check "namespace ci-sandbox is stored with enforce=restricted" test "$enforce" = restricted
for f in "$ROOT"/rbac/*.yaml; do
	[[ $(basename "$f") == kustomization.yaml ]] || apply_file "$f"
done

# 2. verify-rbac.sh after rbac/
deploy_check_verify_rbac rbac/ "$APP"

# 3. the rest of k8s-manifests/, each file
for f in "$ROOT"/k8s-manifests/*.yaml; do
	case $(basename "$f") in kustomization.yaml | sandbox-namespace.yaml) continue ;; esac
	apply_file "$f"
done

# 4. the kustomizations as a whole (k8s-manifests/ includes ../rbac)
for d in rbac k8s-manifests; do
	if kubectl kustomize "$ROOT/$d" >"$TMP/k-$d.yaml" 2>"$TMP/k.err" &&
		kubectl apply -k "$ROOT/$d" -o name >"$TMP/applied" 2>"$TMP/apply.err"; then
		tap_check "kubectl apply -k $d/: every object accepted" $PY "$LIB" applied "$TMP/k-$d.yaml" "$TMP/applied"
	else
		cat "$TMP/k.err" "$TMP/apply.err" >&2
		tap_fail "kubectl apply -k $d/: every object accepted" "$(cat "$TMP/k.err" "$TMP/apply.err" | head -c 300)"
	fi
done

# 5. Pod Security restricted, enforced by kubesim's admission
kubectl run pss-negative -n ci-sandbox --image=busybox:1.36.1 --restart=Never --command -- true \
	>"$TMP/neg.out" 2>&1
cat "$TMP/neg.out" >&2
tap_check "ci-sandbox refuses a pod that is not restricted (violates PodSecurity \"restricted\")" \
	grep -q 'violates PodSecurity "restricted' "$TMP/neg.out"
kubectl label namespace default pod-security.kubernetes.io/enforce=restricted --overwrite >&2
$PY "$LIB" pod-from "$ROOT/k8s-manifests/deployment.yaml" Deployment ci-fixer-app >"$TMP/pod.json"
if kubectl create -f "$TMP/pod.json" >"$TMP/pod.out" 2>&1; then
	tap_pass "the plain Deployment's pod template is admitted where restricted is enforced"
else
	cat "$TMP/pod.out" >&2
	tap_fail "the plain Deployment's pod template is admitted where restricted is enforced" "$(head -c 300 "$TMP/pod.out")"
fi
tap_done
