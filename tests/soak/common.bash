# Shared setup for the reliability soak and crash tests (source it):
# a real kubesim started with a fault spec, the sandbox namespace (Pod
# Security restricted), rbac/ applied with the real kubectl, a kubeconfig
# for the ci-fixer-app ServiceAccount from TokenRequest (never admin), a
# bearer token file for the API and a real git repository. The same steps as
# tests/integration/runner_common.bash, except that kubesim gets --faults.
#
#   sk_setup "FAULT SPEC" SEED || { echo "$SK_SKIP"; exit; }
#   python3 tests/soak/soak.py ... -- "$SK_BIN" serve $(sk_serve_args)
#
# The faults are scoped to the sandbox namespace's core and batch paths
# (SK_FAULT_GLOB), so the setup's own kubectl calls (namespace, RBAC, token)
# and the admin's cluster-wide checks (kubectl get -A) are never faulted;
# every request serve makes for a run is.
_sk_root=${CIFIXER_TEST_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$_sk_root/tests/lib/kubesim.sh"
SK_BIN=${BUILD:-build}/ci-fixer
[[ $SK_BIN == /* ]] || SK_BIN=$_sk_root/$SK_BIN
SK_NS=ci-sandbox
SK_FAULT_GLOB="/api*/namespaces/$SK_NS/*"
# The image every image-pull-failure run asks for (kubesim --image-fail).
SK_BAD_IMAGE=registry.invalid/ci-fixer-soak/missing:1

sk_cleanup() {
	ks_stop
	[[ -n ${SK_DIR:-} ]] && rm -rf "$SK_DIR"
	SK_DIR=
}

# sk_fault_spec P_SCALE: the soak's fault spec, about 5% of the sandbox
# namespace's requests of every kind faulted when P_SCALE is 1 (each verb's
# rules add up to 0.05 x P_SCALE):
#   get, list, create, delete, patch, update, log: 500, 429 with
#     Retry-After: 1, 503 with Retry-After: 1, dropped connection;
#   watch: cut after 1 event, 410 Expired after 1 event, 500, drop;
#   exec: cut after 0, 100 or 5000 bytes of output, 500, drop.
sk_fault_spec() {
	python3 - "$SK_FAULT_GLOB" "${1:-1}" <<'PY'
import sys
g, k = sys.argv[1], float(sys.argv[2])
rules = []
for v in ("get", "list", "create", "delete", "patch", "update", "log"):
    rules += [(v, "status=500", .015), (v, "status=429,retry=1", .015),
              (v, "status=503,retry=1", .005), (v, "drop", .015)]
rules += [("watch", "watch-cut=1", .02), ("watch", "watch-gone=1", .01),
          ("watch", "status=500", .01), ("watch", "drop", .01)]
rules += [("exec", "exec-cut=0", .01), ("exec", "exec-cut=100", .01),
          ("exec", "exec-cut=5000", .01), ("exec", "status=500", .01), ("exec", "drop", .01)]
print(";".join("%s %s:%s@p=%.5f" % (v, g, a, p * k) for v, a, p in rules))
PY
}

# sk_setup SPEC SEED: 0 when everything is up; 1 with a reason in SK_SKIP.
sk_setup() {
	SK_SKIP=
	if [[ ! -x $SK_BIN ]]; then SK_SKIP="$SK_BIN not built"; return 1; fi
	if ! command -v kubectl >/dev/null; then SK_SKIP="kubectl not found"; return 1; fi
	if ! command -v python3 >/dev/null; then SK_SKIP="python3 not found"; return 1; fi
	SK_DIR=$(mktemp -d /tmp/reliability.XXXXXX)
	local args=(--seed "${2:-1}" --image-fail "*/ci-fixer-soak/missing*")
	[[ -n ${1:-} ]] && args+=(--faults "$1")
	ks_start "${args[@]}" || { SK_SKIP="kubesim did not start"; return 1; }
	trap sk_cleanup EXIT
	kubectl create namespace $SK_NS >&2 || return 1
	kubectl label namespace $SK_NS pod-security.kubernetes.io/enforce=restricted >&2 || return 1
	kubectl apply -f "$_sk_root/rbac/ci-fixer-rbac.yaml" >&2 || return 1
	ks_sa_kubeconfig "$SK_DIR/app.kubeconfig" default ci-fixer-app $SK_NS 6h || return 1
	SK_KUBECONFIG=$SK_DIR/app.kubeconfig
	SK_TOKEN=tok-$RANDOM$RANDOM$RANDOM
	printf '%s\n' "$SK_TOKEN" >"$SK_DIR/tokens"
	mkdir -p "$SK_DIR/repo"
	(cd "$SK_DIR/repo" && git init -q -b main && printf 'hello\n' >a.txt &&
		git add a.txt && git -c user.name=t -c user.email=t@e commit -qm base) >&2 || return 1
	return 0
}

# sk_serve_args [MAX_CONCURRENT] [QUEUE]: serve's flags (soak.py adds --listen).
sk_serve_args() {
	printf '%s\n' --kubeconfig "$SK_KUBECONFIG" --namespace $SK_NS --token-file "$SK_DIR/tokens" \
		--data-dir "$SK_DIR/data" --owner soak-$$ --image busybox:1.36 --allow-local-repos \
		--max-concurrent "${1:-4}" --queue-size "${2:-16}" --reap-interval 10 --log-level info
}
