#!/usr/bin/env bash
# bench/run.sh: ci-fixer side by side with kubectl and @kubernetes/client-node
# (issue 7), against one kubesim on this machine. `make bench` runs it with
# BUILD=build/rel after a RELEASE=1 build.
#
# Four parts, each writing JSON into $OUT (or PART.na with the reason it
# could not run); bench/report.py then writes bench/RESULTS.md and the plot
# bench/results.svg from whatever is there. Nothing is ever made up: a part
# whose subject is missing says "not available: <why>".
#
#   1 rtt   RTT_COUNT sequential execs of `true` in one ready pod:
#           bench/exec_bench (kube/exec.h), `kubectl exec`, client-node Exec
#   2 tput  TPUT_BYTES of stdout through one exec, sha256-checked, the same
#           three clients, and the same command piped locally (the ceiling)
#   3 run   the whole run (Job, wait, upload WS_BYTES, 3 commands, logs,
#           patch, delete) at each concurrency in LEVELS: `ci-fixer serve`
#           against bench/node-baseline; wall time, runs/s, kubesim's
#           request counters before/after, CPU and peak RSS of the runner
#   4 scale SCALE_RUNS concurrent runs of `sleep 1` through one
#           `ci-fixer serve`: time, failures, Jobs left, peak RSS, threads,
#           open files
#
# Environment: BUILD (build/rel), BENCH_QUICK=1 (tiny sizes: a smoke run in
# about a minute), BENCH_PARTS ("rtt tput run scale"), BENCH_KEEP=1 (keep
# $OUT/ks-*: kubesim data dirs). Every process started here is stopped on
# exit, each by its own pid.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build/rel}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=$BUILD/bench-out
QUICK=${BENCH_QUICK:-0}
PARTS=${BENCH_PARTS:-rtt tput run scale}
# The interpreter itself, once: python3 on PATH may be a pyenv shim (a bash
# script running pyenv), which costs seconds per call on a loaded machine.
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
[ -x "$PY" ] || PY=python3
TOOLS="$PY $ROOT/bench/tools.py"
# kubectl: on PATH it may be google-cloud-sdk's dispatcher, which starts the
# real versioned binary beside it (kubectl.1.32) as a second process and
# about doubles kubectl's start-up; a script on a normal install pays one.
# The real binary of the dispatcher's default version is measured instead.
if [ -z "${KUBECTL:-}" ]; then
	KUBECTL=kubectl
	kpath=$(readlink -f "$(command -v kubectl 2>/dev/null)" 2>/dev/null)
	case $kpath in
	*/google-cloud-sdk/bin/kubectl)
		kv=$(kubectl version --client -o json 2>/dev/null | "$PY" -c 'import json,sys
v=json.load(sys.stdin)["clientVersion"]; print("%s.%s" % (v["major"], v["minor"].rstrip("+")))' 2>/dev/null)
		[ -n "$kv" ] && [ -x "${kpath}.$kv" ] && KUBECTL=${kpath}.$kv
		;;
	esac
fi
IMAGE=debian:bookworm-slim
NS=ci-sandbox

if [ "$QUICK" = 1 ]; then
	BUDGET=600 SCALE_RESERVE=90
	RTT_COUNT=5 TPUT_BYTES=$((1 << 20)) WS_BYTES=$((256 << 10))
	LEVELS="1 2 4" RUNS_1=2 RUNS_2=2 RUNS_4=4 SCALE_RUNS=20 RUN_TIMEOUT=120 KUBECTL_RTT_SECONDS=60
else
	# The whole benchmark's time budget, and the part of it kept for the
	# scale part. A step that would overrun is stopped, and a step with no
	# time left is skipped; either is reported "not available" with why.
	BUDGET=840 SCALE_RESERVE=240
	RTT_COUNT=200 TPUT_BYTES=$((256 << 20)) WS_BYTES=$((10 << 20))
	LEVELS="1 10 100" RUNS_1=5 RUNS_10=20 RUNS_100=100 SCALE_RUNS=1000 RUN_TIMEOUT=300
	# kubectl's loop stops after this many seconds with the execs it made
	# (a start-up of ~1 s each on a loaded machine would take the 200 to
	# several minutes); RESULTS.md says how many it made.
	KUBECTL_RTT_SECONDS=150
fi
KUBECTL_RTT_SECONDS=${BENCH_KUBECTL_RTT_SECONDS:-$KUBECTL_RTT_SECONDS}
BUDGET=${BENCH_BUDGET:-$BUDGET}
LEVELS=${BENCH_LEVELS:-$LEVELS}
RTT_COUNT=${BENCH_RTT_COUNT:-$RTT_COUNT}
TPUT_BYTES=${BENCH_TPUT_BYTES:-$TPUT_BYTES}
SCALE_RUNS=${BENCH_SCALE_RUNS:-$SCALE_RUNS}
# The throughput command: a deterministic pseudo-random stream (AES-CTR of
# zeros), so the hash proves every byte and nothing compressible helps.
TPUT_SH="openssl enc -aes-128-ctr -nosalt -pass pass:bench -in /dev/zero 2>/dev/null | head -c $TPUT_BYTES"
# The whole run's three commands (shell form, the same for both runners).
CMD1='find . -type f | wc -l'
CMD2='cat data/* | sha256sum'
CMD3='echo "fixed by the benchmark" >> README.md'

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
na() { local part=$1; shift; printf '%s\n' "$*" >"$OUT/$part.na"; log "$part: not available: $*"; }

# budget_left RESERVE: seconds a step may take, keeping RESERVE seconds of
# the budget for what comes after it (at most 900; 900 with BUDGET=0).
START=$(date +%s)
budget_left() {
	local t
	[ "$BUDGET" -gt 0 ] || { echo 900; return; }
	t=$((START + BUDGET - $1 - $(date +%s)))
	[ "$t" -gt 900 ] && t=900
	echo "$t"
}
# what the run part keeps for the scale part
run_reserve() { want scale && echo "$SCALE_RESERVE" || echo 20; }

# ---- process bookkeeping ------------------------------------------------------
KS_PID= SERVE_PID= SAMPLER_PID=
cleanup() {
	[ -n "$SAMPLER_PID" ] && kill -TERM "$SAMPLER_PID" 2>/dev/null
	serve_stop
	ks_down
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- kubesim ------------------------------------------------------------------
# ks_up NAME: a fresh kubesim in $OUT/ks-NAME; sets KC (admin kubeconfig),
# KS_SERVER, KS_CA, KS_TOKEN, KS_PID.
ks_up() {
	local dir=$OUT/ks-$1 i
	mkdir -p "$dir"
	"$BUILD/kubesim" --listen 127.0.0.1:0 --data-dir "$dir" >"$dir/stdout.log" 2>"$dir/stderr.log" &
	KS_PID=$!
	for i in $(seq 1 300); do
		[ -e "$dir/ready" ] && [ -s "$dir/kubeconfig" ] && break
		kill -0 "$KS_PID" 2>/dev/null || { KS_PID=; return 1; }
		sleep 0.1
	done
	[ -e "$dir/ready" ] || return 1
	KC=$dir/kubeconfig
	KS_SERVER=$($KUBECTL --kubeconfig "$KC" config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
	KS_CA=$dir/bench-ca.crt
	$KUBECTL --kubeconfig "$KC" config view --raw --minify \
		-o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$KS_CA"
	KS_TOKEN=$($KUBECTL --kubeconfig "$KC" config view --raw --minify -o jsonpath='{.users[0].user.token}')
	log "kubesim $1 at $KS_SERVER (pid $KS_PID)"
}
ks_down() {
	[ -n "$KS_PID" ] || return 0
	kill -TERM "$KS_PID" 2>/dev/null
	local i
	for i in $(seq 1 100); do kill -0 "$KS_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$KS_PID" 2>/dev/null
	wait "$KS_PID" 2>/dev/null
	KS_PID=
}
ks_metrics() { $TOOLS metrics --server "$KS_SERVER" --cacert "$KS_CA" --token "$KS_TOKEN" --out "$1"; }
# The request counter's name in kubesim's /metrics: apiserver_request_total
# as kube-apiserver names it (the first *_total series with a verb label).
ks_request_metric() {
	"$PY" -c 'import json,sys
names=[s["name"] for s in json.load(open(sys.argv[1]))["samples"] if s["name"].endswith("_total") and "verb" in s["labels"]]
print(names[0] if names else "")' "$1"
}
kc() { $KUBECTL --kubeconfig "$KC" "$@"; }

# The sandbox namespace as ci-fixer expects it (Pod Security restricted, the
# RBAC of rbac/), without k8s-manifests' ResourceQuota (20 pods), which
# would cap the concurrency levels. Writes APP_KC: a kubeconfig for the
# ci-fixer-app ServiceAccount (TokenRequest), used by both runners.
sandbox_setup() {
	kc apply -f - >/dev/null <<-EOF || return 1
	apiVersion: v1
	kind: Namespace
	metadata:
	  name: $NS
	  labels:
	    pod-security.kubernetes.io/enforce: restricted
	EOF
	kc apply -f rbac/ci-fixer-rbac.yaml >/dev/null || return 1
	local token
	token=$(kc -n default create token ci-fixer-app --duration=4h) || return 1
	APP_KC=$(dirname "$KC")/app.kubeconfig
	rm -f "$APP_KC"
	$KUBECTL --kubeconfig "$APP_KC" config set-cluster sim --server="$KS_SERVER" \
		--certificate-authority="$KS_CA" --embed-certs=true >/dev/null &&
	$KUBECTL --kubeconfig "$APP_KC" config set-credentials app --token="$token" >/dev/null &&
	$KUBECTL --kubeconfig "$APP_KC" config set-context app --cluster=sim --user=app --namespace=$NS >/dev/null &&
	$KUBECTL --kubeconfig "$APP_KC" config use-context app >/dev/null
}

# Wait until the sandbox namespace holds no Job (up to $1 s); prints how
# many are left. Pods are not waited for: a deleted pod's `sleep` is PID 1
# of its namespace, ignores SIGTERM and goes after the 30 s grace period, as
# on a real node; it costs nothing meanwhile.
drain_ns() {
	local i left
	for i in $(seq 1 $(($1 * 2))); do
		left=$(kc -n $NS get jobs --no-headers -o name 2>/dev/null | wc -l)
		[ "$left" -eq 0 ] && { echo 0; return 0; }
		sleep 0.5
	done
	echo "$left"
}

# ---- ci-fixer serve ---------------------------------------------------------------
# serve_start TAG MAXCONC QUEUE: `ci-fixer serve` under /usr/bin/time -v;
# sets SERVE_PID (the ci-fixer process), SERVE_URL, SERVE_TOKEN_FILE.
serve_start() {
	local tag=$1 dir=$OUT/serve-$1 port i mc
	mkdir -p "$dir/data"
	SERVE_TOKEN_FILE=$dir/token
	head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$SERVE_TOKEN_FILE"
	port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	SERVE_URL=http://127.0.0.1:$port
	mc=$2
	[ "$mc" -gt 1000 ] && mc=1000 # serve's own limit
	/usr/bin/time -v -o "$OUT/$tag.time" "$BUILD/ci-fixer" serve --listen "127.0.0.1:$port" \
		--kubeconfig "$APP_KC" --namespace $NS --token-file "$SERVE_TOKEN_FILE" \
		--data-dir "$dir/data" --max-concurrent "$mc" --queue-size "$3" --allow-local-repos \
		>"$dir/stdout.log" 2>"$dir/stderr.log" &
	SERVE_TIME_PID=$!
	SERVE_PID=
	for i in $(seq 1 300); do
		[ -n "$SERVE_PID" ] || SERVE_PID=$(pgrep -P "$SERVE_TIME_PID" 2>/dev/null | head -1)
		curl -fsS -o /dev/null "$SERVE_URL/readyz" 2>/dev/null && return 0
		kill -0 "$SERVE_TIME_PID" 2>/dev/null || break
		sleep 0.2
	done
	log "ci-fixer serve did not become ready; its log:"
	tail -5 "$dir/stderr.log" >&2
	serve_stop
	return 1
}
serve_stop() {
	[ -n "${SERVE_TIME_PID:-}" ] || return 0
	[ -n "$SERVE_PID" ] && kill -TERM "$SERVE_PID" 2>/dev/null
	local i
	for i in $(seq 1 300); do kill -0 "$SERVE_TIME_PID" 2>/dev/null || break; sleep 0.1; done
	[ -n "$SERVE_PID" ] && kill -KILL "$SERVE_PID" 2>/dev/null
	wait "$SERVE_TIME_PID" 2>/dev/null
	SERVE_TIME_PID= SERVE_PID=
}

# ---- setup ---------------------------------------------------------------------
# BENCH_APPEND=1: add the parts of BENCH_PARTS to the last run's output
# (same sizes), e.g. a part that could not run the first time; RESULTS.md
# says which parts ran in which invocation.
APPEND=${BENCH_APPEND:-0}
if [ "$APPEND" = 1 ] && [ -s "$OUT/machine.json" ]; then
	for p in $PARTS; do rm -f "$OUT/$p".* "$OUT/$p"-*; done
	echo "{\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"parts\": \"$PARTS\", \"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$OUT/appended.jsonl"
else
	APPEND=0
	rm -rf "$OUT"
fi
mkdir -p "$OUT"
log "output in $OUT (quick=$QUICK, append=$APPEND)"

# What ran where.
[ "$APPEND" = 1 ] || {
	echo "{"
	echo "\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
	echo "\"quick\": $QUICK,"
	echo "\"nproc\": $(nproc),"
	echo "\"cpu\": $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))'),"
	echo "\"memTotalKB\": $(awk '/MemTotal/ {print $2}' /proc/meminfo),"
	echo "\"kernel\": \"$(uname -r)\","
	echo "\"kubectl\": \"$($KUBECTL version --client -o json 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' 2>/dev/null) ($KUBECTL)\","
	echo "\"loadavgStart\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
	echo "\"kubectlRttSeconds\": $KUBECTL_RTT_SECONDS,"
	echo "\"node\": \"$(node --version 2>/dev/null)\","
	echo "\"gitSha\": \"$(git rev-parse --short=12 HEAD 2>/dev/null)$(git diff --quiet HEAD -- 2>/dev/null || echo '+dirty')\","
	echo "\"sizes\": {\"rttCount\": $RTT_COUNT, \"tputBytes\": $TPUT_BYTES, \"wsBytes\": $WS_BYTES, \"levels\": \"$LEVELS\", \"scaleRuns\": $SCALE_RUNS}"
	echo "}"
} >"$OUT/machine.json"

HAVE_KUBESIM=1 HAVE_CIFIXER=1 HAVE_NODE=1 HAVE_EXECBENCH=1
[ -x "$BUILD/kubesim" ] || { HAVE_KUBESIM=0; WHY_KUBESIM="$BUILD/kubesim was not built"; }
[ -x "$BUILD/ci-fixer" ] || { HAVE_CIFIXER=0; WHY_CIFIXER="$BUILD/ci-fixer was not built"; }

# The C exec client (bench/exec_bench.c) needs kube/exec.h.
if [ -e kube/exec.h ]; then
	if ! make --no-print-directory RELEASE=1 BUILD="${BUILD#"$ROOT"/}" bench-bins >"$OUT/make-bench.log" 2>&1; then
		HAVE_EXECBENCH=0; WHY_EXECBENCH="bench/exec_bench did not build (see $OUT/make-bench.log: $(grep -m1 -i error "$OUT/make-bench.log"))"
	fi
else
	HAVE_EXECBENCH=0; WHY_EXECBENCH="kube/exec.h (the exec client) is not in the tree"
fi
[ -x "$BUILD/bench/exec_bench" ] || { HAVE_EXECBENCH=0; WHY_EXECBENCH=${WHY_EXECBENCH:-"$BUILD/bench/exec_bench missing"}; }

# client-node, pinned by bench/node-baseline/package-lock.json.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	HAVE_NODE=0; WHY_NODE="node or npm not installed"
# npm ci only when node_modules is not the install of the current lock file
# (npm writes node_modules/.package-lock.json on install).
elif ! { [ bench/node-baseline/node_modules/.package-lock.json -nt bench/node-baseline/package-lock.json ] &&
	[ -e bench/node-baseline/node_modules/@kubernetes/client-node/package.json ]; } &&
	! (cd bench/node-baseline && npm ci --no-audit --no-fund --loglevel=error) >"$OUT/npm.log" 2>&1; then
	HAVE_NODE=0; WHY_NODE="npm ci in bench/node-baseline failed: $(tail -1 "$OUT/npm.log")"
fi
if [ "$HAVE_NODE" = 1 ]; then
	CLIENT_NODE_VERSION=$(node -p 'require("./bench/node-baseline/node_modules/@kubernetes/client-node/package.json").version')
	"$PY" - "$OUT/machine.json" "$CLIENT_NODE_VERSION" <<-'EOF'
	import json, sys
	d = json.load(open(sys.argv[1])); d["clientNode"] = sys.argv[2]
	json.dump(d, open(sys.argv[1], "w"))
	EOF
fi
if [ "$HAVE_CIFIXER" = 1 ]; then
	v=$("$BUILD/ci-fixer" --version 2>/dev/null | head -1)
	"$PY" - "$OUT/machine.json" "$v" <<-'EOF'
	import json, sys
	d = json.load(open(sys.argv[1])); d["cifixerVersion"] = sys.argv[2]
	json.dump(d, open(sys.argv[1], "w"))
	EOF
fi

want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- 1 and 2: exec round trip and throughput --------------------------------------
part_exec() {
	if [ "$HAVE_KUBESIM" = 0 ]; then
		want rtt && na rtt "$WHY_KUBESIM"; want tput && na tput "$WHY_KUBESIM"; return
	fi
	if ! ks_up exec; then
		want rtt && na rtt "kubesim did not start"; want tput && na tput "kubesim did not start"; return
	fi
	local pod=bench-exec c=bench-exec ready=0
	if kc run $pod --image=$IMAGE --restart=Never --command -- sleep 3600 >/dev/null &&
		kc wait --for=condition=Ready pod/$pod --timeout=60s >/dev/null; then
		ready=1
	fi
	if [ "$ready" = 0 ]; then
		want rtt && na rtt "pod $pod did not become Ready in kubesim"
		want tput && na tput "pod $pod did not become Ready in kubesim"
		ks_down; return
	fi
	local ex=(--kubeconfig "$KC" --namespace default --pod $pod --container $c)

	if want rtt; then
		log "rtt: $RTT_COUNT execs of true, each client"
		if [ "$HAVE_EXECBENCH" = 1 ]; then
			/usr/bin/time -v -o "$OUT/rtt-cifixer.time" timeout 600 "$BUILD/bench/exec_bench" rtt \
				"${ex[@]}" --count "$RTT_COUNT" >"$OUT/rtt-cifixer.json" 2>"$OUT/rtt-cifixer.err" ||
				na rtt-cifixer "exec_bench rtt failed: $(tail -1 "$OUT/rtt-cifixer.err")"
			time_json "$OUT/rtt-cifixer.time" >"$OUT/rtt-cifixer.rusage.json"
		else
			na rtt-cifixer "$WHY_EXECBENCH"
		fi
		timeout 900 $TOOLS kubectl-rtt --kubectl "$KUBECTL" "${ex[@]}" --count "$RTT_COUNT" \
			--max-seconds "$KUBECTL_RTT_SECONDS" \
			--out "$OUT/rtt-kubectl.json" 2>"$OUT/rtt-kubectl.err" ||
			na rtt-kubectl "kubectl loop failed: $(tail -1 "$OUT/rtt-kubectl.err")"
		if [ "$HAVE_NODE" = 1 ]; then
			/usr/bin/time -v -o "$OUT/rtt-node.time" timeout 600 node bench/node-exec/exec.mjs rtt \
				"${ex[@]}" --count "$RTT_COUNT" >"$OUT/rtt-node.json" 2>"$OUT/rtt-node.err" ||
				na rtt-node "node-exec rtt failed: $(tail -1 "$OUT/rtt-node.err")"
			time_json "$OUT/rtt-node.time" >"$OUT/rtt-node.rusage.json"
		else
			na rtt-node "$WHY_NODE"
		fi
	fi

	if want tput; then
		log "tput: $TPUT_BYTES bytes of stdout through one exec, each client"
		timeout 300 $TOOLS local-tput --out "$OUT/tput-local.json" -- sh -c "$TPUT_SH" ||
			na tput-local "the local pipe failed"
		if [ "$HAVE_EXECBENCH" = 1 ]; then
			/usr/bin/time -v -o "$OUT/tput-cifixer.time" timeout 600 "$BUILD/bench/exec_bench" tput \
				"${ex[@]}" -- sh -c "$TPUT_SH" >"$OUT/tput-cifixer.json" 2>"$OUT/tput-cifixer.err" ||
				na tput-cifixer "exec_bench tput failed: $(tail -1 "$OUT/tput-cifixer.err")"
			time_json "$OUT/tput-cifixer.time" >"$OUT/tput-cifixer.rusage.json"
		else
			na tput-cifixer "$WHY_EXECBENCH"
		fi
		timeout 600 $TOOLS kubectl-tput --kubectl "$KUBECTL" "${ex[@]}" --out "$OUT/tput-kubectl.json" \
			-- sh -c "$TPUT_SH" 2>"$OUT/tput-kubectl.err" ||
			na tput-kubectl "kubectl exec failed: $(tail -1 "$OUT/tput-kubectl.err")"
		if [ "$HAVE_NODE" = 1 ]; then
			/usr/bin/time -v -o "$OUT/tput-node.time" timeout 600 node bench/node-exec/exec.mjs tput \
				"${ex[@]}" -- sh -c "$TPUT_SH" >"$OUT/tput-node.json" 2>"$OUT/tput-node.err" ||
				na tput-node "node-exec tput failed: $(tail -1 "$OUT/tput-node.err")"
			time_json "$OUT/tput-node.time" >"$OUT/tput-node.rusage.json"
		else
			na tput-node "$WHY_NODE"
		fi
	fi
	kc delete pod $pod --wait=false >/dev/null 2>&1
	ks_down
}

# ---- 3: the whole run ---------------------------------------------------------------
make_repo() {
	local repo=$OUT/repo i n=8 per
	per=$((WS_BYTES / n))
	mkdir -p "$repo/data"
	for i in $(seq 1 $n); do
		openssl enc -aes-128-ctr -nosalt -pass "pass:ws$i" -in /dev/zero 2>/dev/null |
			head -c $per | base64 -w 76 | head -c $per >"$repo/data/blob$i.txt"
	done
	printf '# benchmark workspace\n' >"$repo/README.md"
	git -C "$repo" init -q -b main &&
	git -C "$repo" add -A &&
	git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -q -m workspace
}

# Parse /usr/bin/time -v output into JSON fields.
time_json() {
	"$PY" - "$1" <<-'EOF'
	import json, sys
	d = {}
	for line in open(sys.argv[1]):
	    k, _, v = line.strip().rpartition(": ")
	    d[k] = v
	print(json.dumps({"cpuSeconds": float(d.get("User time (seconds)", 0)) + float(d.get("System time (seconds)", 0)),
	                  "maxRssKB": int(d.get("Maximum resident set size (kbytes)", 0)),
	                  "exitStatus": int(d.get("Exit status", -1))}))
	EOF
}

# Merge key=JSON pairs into one document: merge OUT KEY FILE [KEY FILE]...
merge() {
	"$PY" - "$@" <<-'EOF'
	import json, sys
	out, args = sys.argv[1], sys.argv[2:]
	d = {}
	for k, f in zip(args[::2], args[1::2]):
	    try:
	        d[k] = json.load(open(f))
	    except (OSError, ValueError) as e:
	        d[k] = {"error": str(e)}
	json.dump(d, open(out, "w"))
	EOF
}

part_run() {
	[ "$HAVE_KUBESIM" = 1 ] || { na run "$WHY_KUBESIM"; return; }
	ks_up run || { na run "kubesim did not start"; return; }
	sandbox_setup || { na run "could not set up namespace $NS and rbac/ in kubesim"; ks_down; return; }
	make_repo || { na run "could not create the workspace repository"; ks_down; return; }
	local metric level runs body tag t
	ks_metrics "$OUT/run-m0.json" || { na run "kubesim /metrics unreadable"; ks_down; return; }
	metric=$(ks_request_metric "$OUT/run-m0.json")
	[ -n "$metric" ] || { na run "kubesim /metrics has no *_total request counter with a verb label"; ks_down; return; }
	echo "\"$metric\"" >"$OUT/run-metric.json"

	body=$OUT/run-body.json
	"$PY" - "$OUT/repo" "$CMD1" "$CMD2" "$CMD3" >"$body" <<-'EOF'
	import json, sys
	print(json.dumps({"repo": {"url": sys.argv[1], "ref": "main"},
	                  "commands": [{"shell": c} for c in sys.argv[2:5]],
	                  "collect": {"patch": True, "logTailLines": 200}}))
	EOF

	for level in $LEVELS; do
		runs=$(eval echo "\$RUNS_$level")
		# node-baseline
		tag=run-node-c$level
		if [ "$HAVE_NODE" = 1 ]; then
			# at most half of what is left, so that ci-fixer's turn at this
			# level is not eaten by node-baseline's
			t=$(($(budget_left "$(run_reserve)") / 2))
			if [ "$t" -lt 30 ]; then
				na "$tag" "skipped: the time budget (BENCH_BUDGET=$BUDGET s) was spent before it"
			else
			log "run: node-baseline, $runs runs at concurrency $level (at most $t s)"
			ks_metrics "$OUT/$tag-m0.json"
			/usr/bin/time -v -o "$OUT/$tag.time" timeout "$t" node bench/node-baseline/runner.mjs \
				--kubeconfig "$APP_KC" --namespace $NS --repo "$OUT/repo" --image $IMAGE \
				--runs "$runs" --concurrency "$level" -c "$CMD1" -c "$CMD2" -c "$CMD3" \
				>"$OUT/$tag.out" 2>"$OUT/$tag.err"
			[ "$?" = 124 ] && na "$tag" "stopped by the time budget (BENCH_BUDGET=$BUDGET s) after $t s, the runs not finished"
			ks_metrics "$OUT/$tag-m1.json"
			$TOOLS metrics-diff --ignore-nonresource --metric "$metric" --out "$OUT/$tag.req.json" "$OUT/$tag-m0.json" "$OUT/$tag-m1.json"
			time_json "$OUT/$tag.time" >"$OUT/$tag.rusage.json"
			echo "{\"jobsLeft\": $(drain_ns 20)}" >"$OUT/$tag.left.json"
			merge "$OUT/$tag.json" result "$OUT/$tag.out" rusage "$OUT/$tag.rusage.json" \
				requests "$OUT/$tag.req.json" left "$OUT/$tag.left.json"
			fi
		else
			na "$tag" "$WHY_NODE"
		fi
		# ci-fixer serve
		tag=run-cifixer-c$level
		if [ "$HAVE_CIFIXER" = 1 ]; then
			t=$(budget_left "$(run_reserve)")
			if [ "$t" -lt 30 ]; then
				na "$tag" "skipped: the time budget (BENCH_BUDGET=$BUDGET s) was spent before it"
			elif log "run: ci-fixer serve, $runs runs at concurrency $level (at most $t s)" &&
				serve_start "$tag" "$level" $((runs + 10)); then
				ks_metrics "$OUT/$tag-m0.json"
				timeout "$t" $TOOLS submit --server "$SERVE_URL" --token-file "$SERVE_TOKEN_FILE" \
					--body-file "$body" --runs "$runs" --concurrency "$level" --timeout "$RUN_TIMEOUT" \
					--out "$OUT/$tag.out" \
					2>"$OUT/$tag.err"
				[ "$?" = 124 ] && na "$tag" "stopped by the time budget (BENCH_BUDGET=$BUDGET s) after $t s, the runs not finished"
				ks_metrics "$OUT/$tag-m1.json"
				# Jobs left are counted before SIGTERM, whose drain would delete them.
				echo "{\"jobsLeft\": $(drain_ns 20)}" >"$OUT/$tag.left.json"
				serve_stop
				$TOOLS metrics-diff --ignore-nonresource --metric "$metric" --out "$OUT/$tag.req.json" "$OUT/$tag-m0.json" "$OUT/$tag-m1.json"
				time_json "$OUT/$tag.time" >"$OUT/$tag.rusage.json"
				merge "$OUT/$tag.json" result "$OUT/$tag.out" rusage "$OUT/$tag.rusage.json" \
					requests "$OUT/$tag.req.json" left "$OUT/$tag.left.json"
			else
				na "$tag" "ci-fixer serve did not become ready: $(tail -1 "$OUT/serve-$tag/stderr.log" 2>/dev/null)"
			fi
		else
			na "$tag" "$WHY_CIFIXER"
		fi
	done
	ks_down
}

# ---- 4: scale -------------------------------------------------------------------------
part_scale() {
	[ "$HAVE_KUBESIM" = 1 ] || { na scale "$WHY_KUBESIM"; return; }
	[ "$HAVE_CIFIXER" = 1 ] || { na scale "$WHY_CIFIXER"; return; }
	ks_up scale || { na scale "kubesim did not start"; return; }
	sandbox_setup || { na scale "could not set up namespace $NS and rbac/ in kubesim"; ks_down; return; }
	local body=$OUT/scale-body.json tag=scale
	echo '{"commands":[{"argv":["sleep","1"]}],"collect":{"patch":false,"logTailLines":0}}' >"$body"
	log "scale: $SCALE_RUNS concurrent runs of sleep 1 through one ci-fixer serve"
	if ! serve_start $tag "$SCALE_RUNS" $((SCALE_RUNS + 10)); then
		na scale "ci-fixer serve did not become ready: $(tail -1 "$OUT/serve-$tag/stderr.log" 2>/dev/null)"
		ks_down; return
	fi
	$TOOLS sample --pid "$SERVE_PID" --interval 0.2 --out "$OUT/scale.sample.json" &
	SAMPLER_PID=$!
	local t
	t=$(budget_left 20)
	[ "$t" -lt 60 ] && t=60 # the scale part always gets a minute
	timeout "$t" $TOOLS submit --server "$SERVE_URL" --token-file "$SERVE_TOKEN_FILE" \
		--body-file "$body" --runs "$SCALE_RUNS" --concurrency "$SCALE_RUNS" --timeout "$t" \
		--out "$OUT/scale.out" 2>"$OUT/scale.err"
	kill -TERM "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=
	# Jobs of ci-fixer still in the cluster right after the last run ended
	# (Background deletion removes a Job at once; its pods go after it).
	kc -n $NS get jobs -l app.kubernetes.io/managed-by=ci-fixer --no-headers -o name 2>/dev/null | wc -l >"$OUT/scale.jobsleft"
	serve_stop
	time_json "$OUT/$tag.time" >"$OUT/$tag.rusage.json"
	echo "{\"jobsLeft\": $(cat "$OUT/scale.jobsleft"), \"jobsLeftAfter20s\": $(drain_ns 20)}" >"$OUT/scale.left.json"
	merge "$OUT/scale.json" result "$OUT/scale.out" sample "$OUT/scale.sample.json" \
		rusage "$OUT/$tag.rusage.json" left "$OUT/scale.left.json"
	ks_down
}

T0=$(date +%s)
{ want rtt || want tput; } && part_exec
want run && part_run
want scale && part_scale
[ "$APPEND" = 1 ] || echo "{\"seconds\": $(($(date +%s) - START)), \"budget\": $BUDGET, \"loadavgEnd\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >"$OUT/total.json"

"$PY" bench/report.py --in "$OUT" --results bench/RESULTS.md --svg bench/results.svg || exit 1
log "wrote bench/RESULTS.md and bench/results.svg in $(($(date +%s) - T0)) s"
