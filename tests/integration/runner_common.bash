# Shared setup for the runner's integration scripts (source it after tap.sh):
# a real kubesim with the sandbox namespace (Pod Security restricted), rbac/
# applied with the real kubectl, a kubeconfig for the ci-fixer-app
# ServiceAccount from TokenRequest (`kubectl create token`, never admin), a
# bearer token file for the API, and helpers to start `ci-fixer serve`.
#
#   rn_setup [kubesim flags...] || { tap_skip ...; tap_done; exit; }
#   rn_serve [extra serve flags...]   # sets RN_URL, RN_SERVE_PID
#   rn_api METHOD PATH [curl args...] # prints the body; $(rn_code) is the status
#   rn_jobs                           # number of ci-fixer Jobs in kubesim (admin)
#   rn_json EXPR <doc                 # a Python expression over d (the JSON on stdin)
#   rn_wait_phase ID REGEX SECONDS    # until GET /v1/runs/ID has a matching phase
#   rn_py post|wait|list ...          # API loops in one process (runner_lib.py)
_rn_root=${CIFIXER_TEST_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$_rn_root/tests/lib/kubesim.sh"
RN_BIN=${BUILD:-build}/ci-fixer
[[ $RN_BIN == /* ]] || RN_BIN=$_rn_root/$RN_BIN
RN_NS=ci-sandbox

rn_cleanup() {
	if [[ -n ${RN_SERVE_PID:-} ]]; then
		kill -TERM "$RN_SERVE_PID" 2>/dev/null
		for _ in $(seq 1 300); do kill -0 "$RN_SERVE_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$RN_SERVE_PID" 2>/dev/null
		wait "$RN_SERVE_PID" 2>/dev/null
		RN_SERVE_PID=
	fi
	ks_stop
	[[ -n ${RN_DIR:-} && -z ${RN_KEEP:-} ]] && rm -rf "$RN_DIR"
}

# rn_setup [kubesim flags]: 0 when everything is up; 1 with a reason in
# RN_SKIP otherwise.
rn_setup() {
	RN_SKIP=
	if [[ ! -x $RN_BIN ]]; then RN_SKIP="$RN_BIN not built"; return 1; fi
	if ! command -v kubectl >/dev/null; then RN_SKIP="kubectl not found"; return 1; fi
	if ! command -v curl >/dev/null; then RN_SKIP="curl not found"; return 1; fi
	if ! command -v python3 >/dev/null; then RN_SKIP="python3 not found"; return 1; fi
	RN_DIR=$(mktemp -d /tmp/runner-it.XXXXXX)
	ks_start "$@" || { RN_SKIP="kubesim did not start"; return 1; }
	trap rn_cleanup EXIT
	kubectl create namespace $RN_NS >&2 || return 1
	kubectl label namespace $RN_NS pod-security.kubernetes.io/enforce=restricted >&2 || return 1
	kubectl apply -f "$_rn_root/rbac/ci-fixer-rbac.yaml" >&2 || return 1
	ks_sa_kubeconfig "$RN_DIR/app.kubeconfig" default ci-fixer-app $RN_NS 1h || return 1
	RN_KUBECONFIG=$RN_DIR/app.kubeconfig
	RN_TOKEN=tok-$RANDOM$RANDOM$RANDOM
	export RN_TOKEN
	printf '%s\n' "$RN_TOKEN" >"$RN_DIR/tokens"
	# a repository whose test fails until fixed
	mkdir -p "$RN_DIR/repo"
	(cd "$RN_DIR/repo" && git init -q -b main && printf 'hello\n' >a.txt &&
		git add a.txt && git -c user.name=t -c user.email=t@e commit -qm base) >&2 || return 1
	return 0
}

# rn_serve [flags]: start serve on a free port, wait until /healthz answers.
# The build tree is shared: a start that finds the binary being relinked
# ("Permission denied", "Text file busy") is retried.
rn_serve() {
	local port try
	for try in 1 2 3 4 5; do
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		RN_URL=http://127.0.0.1:$port
		export RN_URL
		"$RN_BIN" serve --listen 127.0.0.1:$port --kubeconfig "$RN_KUBECONFIG" --namespace $RN_NS \
			--token-file "$RN_DIR/tokens" --data-dir "$RN_DIR/data" --owner it-$$ --image busybox:1.36 \
			--allow-local-repos "$@" 2>>"$RN_DIR/serve.log" &
		RN_SERVE_PID=$!
		local t0=$SECONDS
		# a safety limit, not a speed check: recovery runs before it listens
		while ((SECONDS - t0 < 60)); do
			curl -sf "$RN_URL/healthz" >/dev/null 2>&1 && return 0
			kill -0 "$RN_SERVE_PID" 2>/dev/null || break
			sleep 0.1
		done
		if ! kill -0 "$RN_SERVE_PID" 2>/dev/null && tail -1 "$RN_DIR/serve.log" | grep -qE 'Permission denied|Text file busy'; then
			echo "serve: $RN_BIN is being rebuilt; retrying" >&2
			wait "$RN_SERVE_PID" 2>/dev/null
			RN_SERVE_PID=
			sleep 3
			continue
		fi
		break
	done
	echo "serve did not start; its log:" >&2
	cat "$RN_DIR/serve.log" >&2
	return 1
}

# rn_wait_ready: until /readyz says ok (the RBAC self-check passed), 30 s.
rn_wait_ready() {
	for _ in $(seq 1 300); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' "$RN_URL/readyz") == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}

# rn_api METHOD PATH [curl args]: body on stdout; the status goes to a file
# (rn_api usually runs in a $(...) subshell) that rn_code prints.
rn_api() {
	local m=$1 p=$2
	shift 2
	curl -s -X "$m" -H "Authorization: Bearer $RN_TOKEN" -o "$RN_DIR/body" -w '%{http_code}' "$RN_URL$p" "$@" >"$RN_DIR/code"
	cat "$RN_DIR/body"
}
rn_code() { cat "$RN_DIR/code"; }

# rn_jobs: ci-fixer Jobs left in the sandbox namespace (as admin).
rn_jobs() {
	kubectl get jobs -n $RN_NS -l app.kubernetes.io/managed-by=ci-fixer -o name 2>/dev/null | wc -l
}
rn_pods() {
	kubectl get pods -n $RN_NS -l app=ci-fixer-sandbox -o name 2>/dev/null | wc -l
}

# rn_json EXPR: evaluate a Python expression over d, the JSON document on stdin.
rn_json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# rn_wait_phase ID REGEX SECONDS: poll GET /v1/runs/ID until its phase
# matches REGEX (0) or the time is up (1). The last document is in
# $RN_DIR/run-ID.json.
rn_wait_phase() {
	local id=$1 re=$2 n=$(($3 * 5)) ph
	for ((; n > 0; n--)); do
		rn_api GET "/v1/runs/$id" >"$RN_DIR/run-$id.json"
		ph=$(rn_json 'd.get("phase")' <"$RN_DIR/run-$id.json" 2>/dev/null)
		[[ $ph =~ ^($re)$ ]] && return 0
		sleep 0.2
	done
	return 1
}

# rn_note TEXT: a timestamped line in the test's log (stderr).
rn_note() { echo "# $(date -u +%T.%N | cut -c1-12) $*" >&2; }

# rn_py ARGS: tests/integration/runner_lib.py (post, wait, list).
rn_py() { python3 "$_rn_root/tests/integration/runner_lib.py" "$@"; }
