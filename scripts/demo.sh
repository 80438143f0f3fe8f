#!/usr/bin/env bash
# demo.sh: ci-fixer's main job end to end, on one machine, in under a minute
# (`make demo` installs the dependencies, builds, then runs this).
#
#   1. dependencies and build (skipped with DEMO_SKIP_BUILD=1; done by make
#      when run as `make demo`)
#   2. kubesim, the local Kubernetes API emulator, in a temporary directory
#   3. the sandbox namespace and rbac/ applied with the real kubectl (admin)
#   4. a kubeconfig for the ci-fixer-app ServiceAccount from a TokenRequest
#      (`kubectl create token`): the service never uses the admin identity
#   5. `ci-fixer serve` with that kubeconfig; ready once its RBAC self-check
#      passed
#   6. an example git repository (scripts/demo/example) whose test fails
#   7. `ci-fixer submit`: a fix request whose commands run the test (it
#      fails), apply a fix, run the test again (it passes); output live
#   8. the patch ci-fixer brought back, checked with `git apply --check`
#   9. no Job and no pod left (kubectl as admin)
#  10. everything stopped; the elapsed time
#
# Any failing step stops the demo with a message and a non-zero status. An
# EXIT trap stops serve and kubesim and removes the temporary directory on
# every path: success, failure, Ctrl-C (SIGINT), SIGTERM.
#
# Environment: BUILD (build directory, default build), DEMO_SKIP_BUILD=1
# (binaries already built), DEMO_IMAGE (the sandbox image name; kubesim
# records it and runs the commands from the host), TMPDIR,
# DEMO_PAUSE_SECONDS (the first command sleeps this long first, so that a
# test can interrupt a request while it runs).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BUILD_ARG=$BUILD
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
KUBESIM=$BUILD/kubesim
CIFIXER=$BUILD/ci-fixer
NS=ci-sandbox
APP_SA=ci-fixer-app
IMAGE=${DEMO_IMAGE:-nikolaik/python-nodejs:python3.11-nodejs20-bullseye}
START_NS=$(date +%s%N)

WORK='' KS_PID='' SERVE_PID='' SUBMIT_PID='' STEP=0 STEP_NAME=start

if [[ -t 1 ]]; then
	B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
	B='' G='' R='' D='' N=''
fi

elapsed() {
	local ms=$((($(date +%s%N) - START_NS) / 1000000))
	printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100))
}
step() {
	STEP=$((STEP + 1))
	STEP_NAME=$1
	printf '\n%s== %d. %s%s %s[%s]%s\n' "$B" "$STEP" "$1" "$N" "$D" "$(elapsed)" "$N"
}
say() { printf '   %s\n' "$*"; }
# cmdline TEXT: print a command as a person would type it (what runs next)
cmdline() { printf '   %s$ %s%s\n' "$D" "$*" "$N"; }
indent() { sed 's/^/   /'; }
die() {
	printf '\n%sdemo: FAILED in step %d (%s): %s%s\n' "$R$B" "$STEP" "$STEP_NAME" "$*" "$N" >&2
	exit 1
}
admin_kubectl() { kubectl --kubeconfig "$WORK/kubesim/kubeconfig" "$@"; }

# stop_all: an interrupted submit first, then serve (SIGTERM drains: tears its Jobs down), then kubesim
# (which ends its pods), then the temporary directory. Idempotent.
stop_all() {
	local i
	if [[ -n $SUBMIT_PID ]]; then
		# interrupted: submit has asked the service to cancel the run; give it
		# a few seconds to see the run end, then stop it
		for ((i = 0; i < 50; i++)); do kill -0 "$SUBMIT_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SUBMIT_PID" 2>/dev/null || true
		wait "$SUBMIT_PID" 2>/dev/null || true
		SUBMIT_PID=''
	fi
	if [[ -n $SERVE_PID ]]; then
		kill -TERM "$SERVE_PID" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$SERVE_PID" 2>/dev/null; then
			echo "demo: ci-fixer serve (pid $SERVE_PID) still running 15 s after SIGTERM; killing it" >&2
			kill -KILL "$SERVE_PID" 2>/dev/null || true
		fi
		wait "$SERVE_PID" 2>/dev/null || true
		SERVE_PID=
	fi
	if [[ -n $KS_PID ]]; then
		kill -TERM "$KS_PID" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do kill -0 "$KS_PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$KS_PID" 2>/dev/null; then
			echo "demo: kubesim (pid $KS_PID) still running 10 s after SIGTERM; killing it" >&2
			kill -KILL "$KS_PID" 2>/dev/null || true
		fi
		wait "$KS_PID" 2>/dev/null || true
		KS_PID=
	fi
	if [[ -n $WORK && -d $WORK ]]; then
		rm -rf "$WORK"
	fi
	WORK=
}

on_exit() {
	local rc=$?
	trap - EXIT ERR
	trap '' INT TERM HUP # a second Ctrl-C must not cut the clean-up short
	set +e
	if [[ $rc -ne 0 && $rc -ne 130 && -n $WORK && -d $WORK ]]; then
		local f
		for f in serve.log kubesim.log; do
			if [[ -s $WORK/$f ]]; then
				printf '\n%s--- last lines of %s ---%s\n' "$D" "$f" "$N" >&2
				tail -n 25 "$WORK/$f" >&2
			fi
		done
	fi
	if [[ -n $SUBMIT_PID || -n $SERVE_PID || -n $KS_PID || -n $WORK ]]; then
		[[ $rc -ne 0 ]] && printf '\n%sdemo: stopping ci-fixer serve and kubesim, removing the temporary directory%s\n' "$D" "$N" >&2
		stop_all
	fi
	if [[ $rc -eq 130 ]]; then
		printf '%sdemo: interrupted after %s; everything stopped%s\n' "$R$B" "$(elapsed)" "$N" >&2
	elif [[ $rc -ne 0 ]]; then
		printf '%sdemo: FAILED (exit status %d) after %s%s\n' "$R$B" "$rc" "$(elapsed)" "$N" >&2
	fi
	exit "$rc"
}
on_err() {
	[[ $BASHPID == "$$" ]] || return 0 # once, from the script, not from each subshell
	[[ $- == *e* ]] || return 0          # under set +e the script checks the status itself
	# shellcheck disable=SC2016 # the backquotes are literal
	printf '\n%sdemo: FAILED in step %d (%s): `%s` exited %d (line %d)%s\n' \
		"$R$B" "$STEP" "$STEP_NAME" "$2" "$3" "$1" "$N" >&2
}
trap on_exit EXIT
trap 'on_err $LINENO "$BASH_COMMAND" $?' ERR
# The first SIGINT wins: a second one (Ctrl-C pressed again, or `timeout`
# passing on the one its process group got) arriving before on_exit ignores
# them ran this handler again, and its exit cut the clean-up short (seen
# once under make test: "demo: interrupted" twice, serve and kubesim left).
trap 'trap "" INT TERM HUP; echo; echo "demo: interrupted" >&2; exit 130' INT
trap 'echo "demo: terminated" >&2; exit 143' TERM
trap 'exit 129' HUP

# http_status PORT PATH: the HTTP status of GET PATH on 127.0.0.1:PORT, with
# bash's /dev/tcp only (curl's command line tool is not a dependency).
http_status() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
		read -r -t 5 _ code _ <&3 && echo "$code"
	) 2>/dev/null
}

printf '%sci-fixer demo%s: a CI fix request run in an ephemeral Kubernetes Job, end to end\n' "$B" "$N"

# ---------------------------------------------------------------------------
step "Dependencies and build"
if [[ ${DEMO_SKIP_BUILD:-} == 1 ]]; then
	say "skipped (DEMO_SKIP_BUILD=1): using the binaries in $BUILD"
elif [[ -n ${MAKELEVEL:-} ]]; then
	say "done by make: scripts/install-deps.sh, then make all (log: $(basename "$BUILD").make.log)"
else
	cmdline "scripts/install-deps.sh"
	scripts/install-deps.sh || die "installing the dependencies failed"
	cmdline "make -j2 BUILD=$BUILD_ARG all"
	make --no-print-directory -j2 BUILD="$BUILD_ARG" all >"$BUILD.make.log" 2>&1 ||
		{ tail -n 40 "$BUILD.make.log" >&2; die "the build failed (full log: $BUILD.make.log)"; }
fi
for b in "$KUBESIM" "$CIFIXER"; do
	[[ -x $b ]] || die "$b is missing: build it with make (or run make demo)"
done
for t in kubectl git setsid; do
	command -v "$t" >/dev/null 2>&1 ||
		die "$t is not on PATH (kubectl: https://kubernetes.io/docs/tasks/tools/; git, setsid: apt-get install git util-linux)"
done
say "binaries: ${BUILD#"$ROOT"/}/kubesim, ${BUILD#"$ROOT"/}/ci-fixer; clients: $(command -v kubectl), $(command -v git)"

# ---------------------------------------------------------------------------
step "Start kubesim, the local Kubernetes API server (HTTPS, pods as isolated processes)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ci-fixer-demo.XXXXXX")
say "temporary directory: $WORK"
cmdline "kubesim --listen 127.0.0.1:0 --data-dir $WORK/kubesim &"
# setsid: a session of its own, so that Ctrl-C in the terminal reaches only
# the foreground step (submit cancels its run), and the EXIT trap stops the
# servers in order
setsid "$KUBESIM" --listen 127.0.0.1:0 --data-dir "$WORK/kubesim" >"$WORK/kubesim.log" 2>&1 &
KS_PID=$!
for ((i = 0; i < 200; i++)); do
	[[ -f $WORK/kubesim/ready ]] && break
	kill -0 "$KS_PID" 2>/dev/null || { KS_PID=; die "kubesim exited before it was ready"; }
	sleep 0.1
done
[[ -f $WORK/kubesim/ready ]] || die "kubesim not ready after 20 s"
KS_URL=$(head -n1 "$WORK/kubesim/ready")
say "API server: $KS_URL (pid $KS_PID); admin kubeconfig: $WORK/kubesim/kubeconfig"

# ---------------------------------------------------------------------------
step "Apply the sandbox namespace and rbac/ with kubectl (as admin)"
# one kubectl process for both (each one costs about a second): the
# namespace first, then rbac/'s ServiceAccounts, Role and RoleBinding
cmdline "kubectl apply -f k8s-manifests/sandbox-namespace.yaml -f rbac/ci-fixer-rbac.yaml"
admin_kubectl apply -f k8s-manifests/sandbox-namespace.yaml -f rbac/ci-fixer-rbac.yaml | indent

# ---------------------------------------------------------------------------
step "A kubeconfig for the $APP_SA ServiceAccount (TokenRequest, not admin)"
cmdline "kubectl create token $APP_SA -n default --duration=1h"
TOKEN=$(admin_kubectl create token "$APP_SA" -n default --duration=1h) || die "kubectl create token failed"
[[ -n $TOKEN ]] || die "kubectl create token printed nothing"
APP_KC=$WORK/ci-fixer-app.kubeconfig
(
	umask 077
	cat >"$APP_KC" <<EOK
apiVersion: v1
kind: Config
clusters:
- name: kubesim
  cluster:
    server: $KS_URL
    certificate-authority: $WORK/kubesim/ca.crt
users:
- name: $APP_SA
  user:
    token: $TOKEN
contexts:
- name: ci-fixer
  context: {cluster: kubesim, user: $APP_SA, namespace: $NS}
current-context: ci-fixer
EOK
)
say "wrote $APP_KC (a bound token for system:serviceaccount:default:$APP_SA)"
say "what this identity may and may not do, asked as itself (SelfSubjectAccessReviews):"
cmdline "ci-fixer verify-rbac --kubeconfig ci-fixer-app.kubeconfig --namespace $NS"
"$CIFIXER" verify-rbac --kubeconfig "$APP_KC" --namespace "$NS" >"$WORK/verify-rbac.txt" 2>&1 ||
	{ cat "$WORK/verify-rbac.txt" >&2; die "ci-fixer verify-rbac failed: rbac/ does not give $APP_SA exactly what a run needs"; }
# the whole table is 45 rows: the header, what is allowed, a few of the
# denials, the verdict
awk 'NR == 1 || $2 == "allow" ||
	($2 == "deny" && ($4 ~ /^(secrets|nodes\/proxy|users|\*\.\*|serviceaccounts\/token)$/) && !seen[$4]++) { print "     " $0; next }
	$2 == "deny" { more++ }
	/^PASS|^FAIL/ { verdict = $0 }
	END { printf "     ... and %d more denied\n     %s\n", more, verdict }' "$WORK/verify-rbac.txt"

# ---------------------------------------------------------------------------
step "Start ci-fixer serve as $APP_SA"
API_TOKEN_FILE=$WORK/api-tokens
(umask 077 && printf 'demo-%s%s%s\n' "$RANDOM" "$RANDOM" "$RANDOM" >"$API_TOKEN_FILE")
cmdline "ci-fixer serve --listen 127.0.0.1:0 --kubeconfig ci-fixer-app.kubeconfig --namespace $NS --token-file api-tokens --data-dir data --owner demo --allow-local-repos &"
setsid "$CIFIXER" serve --listen 127.0.0.1:0 --kubeconfig "$APP_KC" --namespace "$NS" \
	--token-file "$API_TOKEN_FILE" --data-dir "$WORK/data" --owner demo --image "$IMAGE" \
	--allow-local-repos --log-format text >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
PORT=
for ((i = 0; i < 100; i++)); do
	PORT=$(sed -n 's/.*listening.*port[=:]"\{0,1\}\([0-9][0-9]*\).*/\1/p' "$WORK/serve.log" | head -n1)
	[[ -n $PORT ]] && break
	kill -0 "$SERVE_PID" 2>/dev/null || { SERVE_PID=; die "ci-fixer serve exited at start-up"; }
	sleep 0.1
done
[[ -n $PORT ]] || die "ci-fixer serve did not say which port it listens on within 10 s"
SERVER=http://127.0.0.1:$PORT
say "listening on $SERVER (pid $SERVE_PID); waiting for /readyz (its own RBAC self-check)"
ready=
for ((i = 0; i < 300; i++)); do
	[[ $(http_status "$PORT" /readyz) == 200 ]] && { ready=1; break; }
	kill -0 "$SERVE_PID" 2>/dev/null || { SERVE_PID=; die "ci-fixer serve exited"; }
	sleep 0.1
done
[[ -n $ready ]] || die "ci-fixer serve not ready after 30 s (see its log below)"
say "ready: the needed permissions are granted and the dangerous ones denied"

# ---------------------------------------------------------------------------
step "Create an example git repository whose test fails"
REPO=$WORK/example
mkdir -p "$REPO"
cp scripts/demo/example/calc.sh scripts/demo/example/test.sh "$REPO/"
git -C "$REPO" init -q -b main
git -C "$REPO" add calc.sh test.sh
git -C "$REPO" -c user.name="ci-fixer demo" -c user.email=demo@ci-fixer.invalid commit -q -m "calc: add, mul, mean"
BASE=$(git -C "$REPO" rev-parse HEAD)
say "$REPO at $BASE"
say "calc.sh has a bug, in add():"
grep -n '[$]1 - [$]2' "$REPO/calc.sh" | sed 's/^/     /'

# ---------------------------------------------------------------------------
step "Submit the fix request: run the test, apply a fix, run the test again"
# shellcheck disable=SC2016 # expanded by the sandbox's shell, not here
TEST_FAILS='sh test.sh; status=$?; echo "test.sh exited $status (the failure is reproduced)"; [ "$status" -ne 0 ]'
if [[ -n ${DEMO_PAUSE_SECONDS:-} ]]; then
	[[ $DEMO_PAUSE_SECONDS =~ ^[0-9]{1,3}$ ]] || die "DEMO_PAUSE_SECONDS=$DEMO_PAUSE_SECONDS: want whole seconds"
	TEST_FAILS="sleep $DEMO_PAUSE_SECONDS; $TEST_FAILS"
fi
FIX="sed -i 's/\\\$1 - \\\$2/\\\$1 + \\\$2/' calc.sh && grep -n '[\$]1 + [\$]2' calc.sh"
say "ci-fixer submit --server $SERVER --repo $REPO --commit ${BASE:0:12}... \\"
say "    -c '$TEST_FAILS' \\"
say "    -c \"$FIX\" \\"
say "    --patch fix.patch -- sh test.sh"
printf '%s   --- live output (stderr: phases; stdout: the commands) ---%s\n' "$D" "$N"
# In the background and waited for: `wait` returns as soon as Ctrl-C
# arrives, so the INT trap runs at once even if submit takes time to cancel
# its run (submit gets the SIGINT too, and DELETEs the run).
set +e
"$CIFIXER" submit --server "$SERVER" --token-file "$API_TOKEN_FILE" --repo "$REPO" --commit "$BASE" \
	--timeout 120 -c "$TEST_FAILS" -c "$FIX" --patch "$WORK/fix.patch" -- sh test.sh &
SUBMIT_PID=$!
wait "$SUBMIT_PID"
rc=$?
SUBMIT_PID=''
set -e
printf '%s   --- end of live output ---%s\n' "$D" "$N"
[[ $rc -eq 0 ]] || die "ci-fixer submit exited $rc (0 means every command succeeded: the test failed, the fix applied, the test passed)"
say "ci-fixer submit exited 0: the test failed before the fix and passed after it"

# ---------------------------------------------------------------------------
step "The patch ci-fixer brought back"
[[ -s $WORK/fix.patch ]] || die "the patch is empty"
sed 's/^/   /' "$WORK/fix.patch"
git -C "$REPO" apply --check "$WORK/fix.patch" || die "the patch does not apply to the base commit"
say "git apply --check: the patch applies to $BASE"

# ---------------------------------------------------------------------------
step "Nothing left in the cluster (kubectl as admin)"
cmdline "kubectl get jobs -A"
jobs=$(admin_kubectl get jobs -A 2>"$WORK/kubectl.err") || { cat "$WORK/kubectl.err" >&2; die "kubectl get jobs failed"; }
{ [[ -n $jobs ]] && echo "$jobs"; cat "$WORK/kubectl.err"; } | indent
[[ -z $jobs ]] || die "Jobs left behind"
say "no Job left. Its pod goes with it (Background propagation, then the pod's grace period):"
cmdline "kubectl wait --for=delete pods -l app=ci-fixer-sandbox -n $NS --timeout=30s"
waited=$(admin_kubectl wait --for=delete pods -l app=ci-fixer-sandbox -n "$NS" --timeout=30s 2>&1) ||
	{ echo "$waited" | indent; die "the sandbox pod is still there 30 s after its Job was deleted"; }
echo "${waited:-(none left to wait for)}" | indent
say "no Job left, no pod left"

# ---------------------------------------------------------------------------
step "Stop everything"
say "ci-fixer serve (pid $SERVE_PID): SIGTERM, it drains and exits"
say "kubesim (pid $KS_PID): SIGTERM"
say "removing $WORK"
stop_all
printf '\n%sdemo: OK in %s%s\n' "$G$B" "$(elapsed)" "$N"
