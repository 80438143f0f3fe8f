#!/usr/bin/env bash
# kind-e2e.sh: ci-fixer end to end on a real Kubernetes cluster in Docker
# (kind), with the real Helm chart and image. For machines with Docker, kind,
# helm and kubectl (a developer's laptop, GitHub Actions: .github/workflows/e2e.yaml);
# it cannot run where there is no Docker engine (docs/deploy.md says what is
# checked there instead).
#
# Steps, each one checked:
#   1. create a kind cluster (or reuse one with the same name)
#   2. build the image from the Dockerfile and load it into the cluster
#   3. helm install (token Secret first), wait for the rollout, helm test
#   4. scripts/verify-rbac.sh against the release: least privilege
#   5. run fix jobs with `ci-fixer submit` through a port-forward: output,
#      exit codes (0 and a failing command's), and the patch
#   6. helm upgrade (a config change rolls the pod), run again
#   7. helm rollback to revision 1, run again
#   8. helm uninstall; no sandbox Job of ci-fixer remains anywhere
#   9. delete the cluster (unless --keep)
#
# usage: scripts/kind-e2e.sh [--cluster NAME] [--namespace NS] [--image REPO:TAG]
#                            [--sandbox-image IMG] [--keep] [--skip-build]
# Exit status 0 when every step passed.
set -euo pipefail

cluster=ci-fixer-e2e
ns=ci-fixer
image=ci-fixer:e2e
sandbox_image=busybox:1.36.1
sandbox_ns=ci-sandbox
release=ci-fixer
keep=0
skip_build=0
while [[ $# -gt 0 ]]; do
	case $1 in
	--cluster) cluster=$2; shift 2 ;;
	--namespace) ns=$2; shift 2 ;;
	--image) image=$2; shift 2 ;;
	--sandbox-image) sandbox_image=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--skip-build) skip_build=1; shift ;;
	-h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "kind-e2e: unknown option $1" >&2; exit 2 ;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in docker kind helm kubectl curl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "kind-e2e: $tool not found: this script needs Docker, kind, helm, kubectl and curl" >&2
		exit 2
	fi
done
if ! docker info >/dev/null 2>&1; then
	echo "kind-e2e: no Docker engine answers (docker info failed)" >&2
	exit 2
fi

work=$(mktemp -d)
pf_pid=
ctx=kind-$cluster
step() { printf '\n=== %s\n' "$*"; }
fail() { echo "kind-e2e: FAILED: $*" >&2; exit 1; }
k() { kubectl --context "$ctx" "$@"; }
cleanup() {
	if [[ -n $pf_pid ]]; then kill "$pf_pid" 2>/dev/null || true; fi
	if [[ $keep -eq 0 ]]; then
		kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
	else
		echo "kind-e2e: cluster $cluster kept (kind delete cluster --name $cluster)"
	fi
	rm -rf "$work"
}
trap cleanup EXIT

step "1. kind cluster $cluster"
if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
	kind create cluster --name "$cluster" --wait 180s
fi
k cluster-info >/dev/null

step "2. image $image"
if [[ $skip_build -eq 0 ]]; then
	docker build -t "$image" .
fi
kind load docker-image "$image" --name "$cluster"
docker pull -q "$sandbox_image" >/dev/null
kind load docker-image "$sandbox_image" --name "$cluster"

step "3. helm install $release"
k create namespace "$ns" --dry-run=client -o yaml | k apply -f -
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
k -n "$ns" create secret generic "$release-app-token" --from-file=token="$work/token" \
	--dry-run=client -o yaml | k apply -f -
repo=${image%:*}
tag=${image##*:}
helm_args=(--kube-context "$ctx" -n "$ns" --set image.repository="$repo" --set image.tag="$tag"
	--set image.pullPolicy=Never --set sandbox.image="$sandbox_image" --set sandbox.imagePullPolicy=IfNotPresent
	--wait --timeout 5m)
helm install "$release" chart/ "${helm_args[@]}"
k -n "$ns" rollout status deployment/"$release-app" --timeout=180s
helm test "$release" --kube-context "$ctx" -n "$ns" --timeout 3m

step "4. verify-rbac"
scripts/verify-rbac.sh --context "$ctx" --namespace "$sandbox_ns" \
	--app-sa "system:serviceaccount:$ns:$release-app"

port=3001
start_port_forward() {
	if [[ -n $pf_pid ]]; then kill "$pf_pid" 2>/dev/null || true; fi
	k -n "$ns" port-forward "svc/$release-app" "$port:3001" >"$work/pf.log" 2>&1 &
	pf_pid=$!
	for _ in $(seq 60); do
		curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
		sleep 1
	done
	cat "$work/pf.log" >&2
	fail "the service did not become ready through the port-forward"
}

# submit ARGS...: ci-fixer submit from the image itself (host network, so it
# reaches the port-forward; the caller's UID, so it reads the token and
# writes the patch in $work, mounted at /out).
submit() {
	docker run --rm --network host --user "$(id -u):$(id -g)" -v "$work:/out" "$image" \
		submit --server "http://127.0.0.1:$port" --token-file /out/token "$@"
}

no_jobs_left() {
	local left
	for _ in $(seq 60); do
		left=$(k get jobs -A -l app.kubernetes.io/managed-by=ci-fixer -o name 2>/dev/null || true)
		[[ -z $left ]] && return 0
		sleep 2
	done
	echo "left: $left" >&2
	return 1
}

run_jobs() { # LABEL
	start_port_forward
	out=$(submit -- sh -c 'echo hello-from-sandbox; echo to-stderr >&2') ||
		fail "$1: submit of a passing command failed"
	grep -q hello-from-sandbox <<<"$out" || fail "$1: command output missing: $out"
	set +e
	submit -- sh -c 'exit 3'
	rc=$?
	set -e
	[[ $rc -eq 3 ]] || fail "$1: a command exiting 3 gave exit status $rc"
	rm -f "$work/patch"
	submit --patch /out/patch -- sh -c 'echo new > created.txt' ||
		fail "$1: submit with --patch failed"
	grep -q 'created.txt' "$work/patch" || fail "$1: the patch does not show created.txt"
	no_jobs_left || fail "$1: sandbox Jobs remain after the runs"
	echo "$1: runs passed (output, exit codes 0 and 3, patch), no Job left"
}

step "5. fix jobs with ci-fixer submit"
run_jobs install

step "6. helm upgrade (config change rolls the pod)"
before=$(k -n "$ns" get deployment "$release-app" -o jsonpath='{.spec.template.metadata.annotations.checksum/config}')
helm upgrade "$release" chart/ "${helm_args[@]}" --set config.maxConcurrent=2
after=$(k -n "$ns" get deployment "$release-app" -o jsonpath='{.spec.template.metadata.annotations.checksum/config}')
[[ $before != "$after" ]] || fail "upgrade: checksum/config did not change"
k -n "$ns" rollout status deployment/"$release-app" --timeout=180s
k -n "$ns" get configmap "$release-app-config" -o jsonpath='{.data.config\.json}' | grep -q '"max-concurrent": 2' ||
	fail "upgrade: ConfigMap not updated"
# Idempotent: the same upgrade again changes nothing in the pod template.
helm upgrade "$release" chart/ "${helm_args[@]}" --set config.maxConcurrent=2
again=$(k -n "$ns" get deployment "$release-app" -o jsonpath='{.spec.template.metadata.annotations.checksum/config}')
[[ $again == "$after" ]] || fail "upgrade: a repeated upgrade changed the pod template"
run_jobs upgrade

step "7. helm rollback to revision 1"
helm rollback "$release" 1 --kube-context "$ctx" -n "$ns" --wait --timeout 5m
k -n "$ns" rollout status deployment/"$release-app" --timeout=180s
k -n "$ns" get configmap "$release-app-config" -o jsonpath='{.data.config\.json}' | grep -q '"max-concurrent": 4' ||
	fail "rollback: ConfigMap not restored"
run_jobs rollback

step "8. helm uninstall"
kill "$pf_pid" 2>/dev/null || true
pf_pid=
helm uninstall "$release" --kube-context "$ctx" -n "$ns" --wait --timeout 5m
no_jobs_left || fail "uninstall: sandbox Jobs remain"
if k get role "$release-sandbox-manager" -n "$sandbox_ns" >/dev/null 2>&1; then
	fail "uninstall: the Role remains"
fi
echo
echo "kind-e2e: all steps passed"
