# kubesim harness for bash tests (source this file).
#
#   . "$(dirname "$0")/../lib/kubesim.sh"
#   ks_start [extra kubesim args...]   # starts $BUILD/kubesim (default build) on port 0
#   kubectl get ns                     # KUBECONFIG points at it
#   ks_metric 'apiserver_request_total.*resource="pods"'
#   ks_stop                            # optional: the EXIT trap stops it too
#
# After ks_start: KS_DIR (its data dir), KS_URL, KUBECONFIG=$KS_DIR/kubeconfig,
# KS_PID, KS_TOKEN (the admin bearer token), KS_CA ($KS_DIR/ca.crt).
# ks_start returns non-zero (with a message on stderr) when kubesim does not
# become ready within 20 s.

_ks_root=${CIFIXER_TEST_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

ks_stop() {
	if [[ -n ${KS_PID:-} ]]; then
		if ! kill -0 "$KS_PID" 2>/dev/null; then
			# it died before the test was done with it: say how
			wait "$KS_PID" 2>/dev/null
			echo "kubesim (pid $KS_PID) had exited (status $?) before ks_stop; the end of its stderr:" >&2
			tail -n 60 "$KS_DIR/stderr" >&2 2>/dev/null
		fi
		kill -TERM "$KS_PID" 2>/dev/null
		local i
		for ((i = 0; i < 100; i++)); do
			kill -0 "$KS_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$KS_PID" 2>/dev/null; then
			echo "kubesim: pid $KS_PID still running 10 s after SIGTERM; killing it" >&2
			kill -KILL "$KS_PID" 2>/dev/null
		fi
		wait "$KS_PID" 2>/dev/null
		KS_PID=
	fi
	if [[ -n ${KS_DIR:-} && -d $KS_DIR ]]; then
		rm -rf "$KS_DIR"
	fi
	KS_DIR=
}

ks_start() {
	local build=${BUILD:-build}
	local bin=$build/kubesim
	[[ $bin == /* ]] || bin=$_ks_root/$bin
	if [[ ! -x $bin ]]; then
		echo "kubesim: $bin not found (run make first)" >&2
		return 1
	fi
	KS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kubesim.XXXXXX") || return 1
	"$bin" --listen 127.0.0.1:0 --data-dir "$KS_DIR/data" "$@" >"$KS_DIR/stdout" 2>"$KS_DIR/stderr" &
	KS_PID=$!
	trap ks_stop EXIT
	local i
	for ((i = 0; i < 200; i++)); do
		[[ -f $KS_DIR/data/ready ]] && break
		if ! kill -0 "$KS_PID" 2>/dev/null; then
			echo "kubesim exited before it was ready; its stderr:" >&2
			cat "$KS_DIR/stderr" >&2
			KS_PID=
			return 1
		fi
		sleep 0.1
	done
	if [[ ! -f $KS_DIR/data/ready ]]; then
		echo "kubesim not ready after 20 s; its stderr:" >&2
		cat "$KS_DIR/stderr" >&2
		return 1
	fi
	KS_DATA=$KS_DIR/data
	KS_URL=$(head -n1 "$KS_DATA/ready")
	KUBECONFIG=$KS_DATA/kubeconfig
	KS_TOKEN=$(cat "$KS_DATA/token")
	KS_CA=$KS_DATA/ca.crt
	export KS_DIR KS_DATA KS_URL KUBECONFIG KS_PID KS_TOKEN KS_CA
	return 0
}

# ks_curl ARGS...: curl against kubesim as admin (adds CA and token).
ks_curl() {
	curl -sS --cacert "$KS_CA" -H "Authorization: Bearer $KS_TOKEN" "$@"
}

# ks_metric NAME_REGEX: print the /metrics lines matching the regex.
ks_metric() {
	ks_curl "$KS_URL/metrics" | grep -E "$1"
}

# ks_sa_kubeconfig FILE SA_NAMESPACE SA [NAMESPACE [DURATION]]: a TokenRequest
# token for ServiceAccount SA_NAMESPACE/SA (kubectl create token) and a
# kubeconfig in FILE that uses it against kubesim (context namespace
# NAMESPACE if given; token lifetime DURATION, default 1h). Non-zero when
# the token cannot be had.
ks_sa_kubeconfig() {
	local file=$1 sans=$2 sa=$3 ns=${4:-} dur=${5:-1h} tok
	tok=$(kubectl create token "$sa" -n "$sans" --duration="$dur") || return 1
	[[ -n $tok ]] || return 1
	cat >"$file" <<EOK
apiVersion: v1
kind: Config
clusters:
- name: kubesim
  cluster:
    server: $KS_URL
    certificate-authority: $KS_CA
users:
- name: $sa
  user:
    token: $tok
contexts:
- name: app
  context: {cluster: kubesim, user: $sa${ns:+, namespace: $ns}}
current-context: app
EOK
}
