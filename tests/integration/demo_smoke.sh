#!/usr/bin/env bash
# scripts/demo.sh end to end (what `make demo` runs after installing and
# building; DEMO_SKIP_BUILD=1 since `make test` has built everything), twice
# at the same time, each in a temporary directory of its own:
#  - a whole run: exit 0; the test fails, the fix applies, the test passes,
#    in that order; the patch is printed and applies; `kubectl get jobs -A`
#    finds nothing; the elapsed time is printed; afterwards no process of
#    the demo survives and its temporary directory is gone;
#  - Ctrl-C while the fix request runs (its first command held for 60 s by
#    DEMO_PAUSE_SECONDS; SIGINT to the demo's process group, as a terminal
#    sends it): exit 130, the run cancelled, nothing survives.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh

BUILD=${BUILD:-build}
for t in kubectl git setsid timeout; do
	if ! command -v "$t" >/dev/null 2>&1; then
		tap_skip "demo smoke" "$t not found"
		tap_done
		exit 0
	fi
done
for b in kubesim ci-fixer; do
	if [[ ! -x $BUILD/$b ]]; then
		tap_skip "demo smoke" "$BUILD/$b not built"
		tap_done
		exit 0
	fi
done

T=$(mktemp -d /tmp/demo-smoke.XXXXXX)
A=$T/full B=$T/int
mkdir -p "$A" "$B"
smoke_cleanup() {
	# only when this script is cut short: the demo's own trap normally
	# leaves nothing. Its servers run in sessions of their own, found by
	# the unique directory in their command lines.
	local p
	for p in ${DEMO_PID:-} ${INT_PID:-}; do kill -KILL -- "-$p" 2>/dev/null; done
	for p in $(pgrep -f -- "$T/"); do kill -TERM "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap smoke_cleanup EXIT

# both demos at once (they share nothing: port 0, their own TMPDIR); each in
# a session of its own with SIGINT at its default (a background job of a
# script starts with SIGINT ignored, and bash cannot trap an ignored signal)
DEMO_SKIP_BUILD=1 TMPDIR=$A BUILD=$BUILD setsid env --default-signal=INT \
	timeout -k 60 170 scripts/demo.sh >"$T/full.out" 2>&1 &
DEMO_PID=$!
DEMO_SKIP_BUILD=1 DEMO_PAUSE_SECONDS=60 TMPDIR=$B BUILD=$BUILD setsid env --default-signal=INT \
	timeout -k 60 170 scripts/demo.sh >"$T/int.out" 2>&1 &
INT_PID=$!

# Ctrl-C while the fix request's first command runs (it sleeps 60 s first)
for ((i = 0; i < 1500; i++)); do
	grep -q '^\[ *[0-9.]*s\] command 1: ' "$T/int.out" 2>/dev/null && break
	kill -0 "$INT_PID" 2>/dev/null || break
	sleep 0.1
done
kill -INT -- "-$INT_PID" 2>/dev/null
wait "$INT_PID"
int_rc=$?
INT_PID=
wait "$DEMO_PID"
rc=$?
DEMO_PID=
cat "$T/full.out" >&2
out=$(cat "$T/full.out")

# line number of the first line holding a fixed string (empty: none)
lineof() { grep -n -F -m1 -- "$1" "$T/full.out" | cut -d: -f1 || true; }

[[ $rc -eq 0 ]] && tap_pass "demo exits 0" || tap_fail "demo exits 0" "exit status $rc"
n_fail=$(lineof 'FAIL add 2 3: add 2 3 gave -1, want 5')
n_exit1=$(lineof 'test.sh exited 1 (the failure is reproduced)')
n_fix=$(lineof '5:	echo $(($1 + $2))')
n_pass=$(lineof 'all checks passed')
n_ok=$(lineof 'ok   add 2 3')
if [[ -n $n_fail && -n $n_exit1 && -n $n_fix && -n $n_pass && -n $n_ok ]] &&
	((n_fail < n_exit1 && n_exit1 < n_fix && n_fix < n_ok && n_ok < n_pass)); then
	tap_pass "live output: the test fails, the fix applies, then the test passes"
else
	tap_fail "failing then passing test" "lines: fail=$n_fail exit1=$n_exit1 fix=$n_fix ok=$n_ok pass=$n_pass"
fi
grep -q -F 'command 3 exited with status 0' <<<"$out" && grep -q -F 'Succeeded (exit status 0)' <<<"$out" &&
	tap_pass "submit reports the run Succeeded" || tap_fail "run Succeeded"
n_patch=$(lineof 'diff --git a/calc.sh b/calc.sh')
n_minus=$(lineof '-	echo $(($1 - $2))')
n_plus=$(lineof '+	echo $(($1 + $2))')
[[ -n $n_patch && -n $n_minus && -n $n_plus && $n_patch -gt $n_pass ]] && ((n_patch < n_minus && n_minus < n_plus)) &&
	grep -q -F 'git apply --check: the patch applies' <<<"$out" &&
	tap_pass "the patch is printed (- the bug, + the fix) and applies" || tap_fail "the patch printed"
n_jobs=$(lineof '$ kubectl get jobs -A')
[[ -n $n_jobs ]] && sed -n "$((n_jobs + 1))p" "$T/full.out" | grep -q 'No resources found' &&
	grep -q -F 'no Job left, no pod left' <<<"$out" &&
	tap_pass "kubectl get jobs -A: no Job left (and no pod)" || tap_fail "no Job left"
grep -q -E '^demo: OK in [0-9]+\.[0-9]s$' <<<"$out" && tap_pass "the elapsed time is printed" ||
	tap_fail "elapsed time"
secs=$(sed -n 's/^demo: OK in \([0-9]*\)\..*/\1/p' <<<"$out")
echo "# demo took ${secs:-?} s (next to an interrupted one)" >&2

# nothing survives: the pids the demo printed, and anything naming its dir
pids=$(grep -o '(pid [0-9]*)' "$T/full.out" | tr -dc '0-9\n' | sort -u)
alive=
for p in $pids; do kill -0 "$p" 2>/dev/null && alive+=" $p"; done
[[ -n $pids && -z $alive ]] && tap_pass "kubesim and ci-fixer serve stopped (pids $(echo $pids))" ||
	tap_fail "processes stopped" "pids=[$pids] alive=[$alive]"
left=$(pgrep -f -- "$A/" || true)
[[ -z $left ]] && tap_pass "no process names the demo's directory" ||
	tap_fail "processes left" "$(ps -o pid,cmd -p "$(echo $left | tr ' ' ,)")"
[[ -z $(ls -A "$A") ]] && tap_pass "the demo's temporary directory is removed" ||
	tap_fail "temporary directory removed" "$(ls -A "$A")"

# ---- Ctrl-C ----
echo "# --- the interrupted demo ---" >&2
cat "$T/int.out" >&2
grep -q '^\[ *[0-9.]*s\] command 1: ' "$T/int.out" && [[ $int_rc -eq 130 ]] &&
	tap_pass "Ctrl-C while the fix request runs: exit 130" || tap_fail "Ctrl-C exit 130" "exit status $int_rc"
grep -q -F 'interrupted: cancelling run' "$T/int.out" && grep -q -F 'everything stopped' "$T/int.out" &&
	tap_pass "Ctrl-C: submit cancels the run, the demo says it stopped everything" || tap_fail "Ctrl-C cancel"
pids=$(grep -o '(pid [0-9]*)' "$T/int.out" | tr -dc '0-9\n' | sort -u)
alive=
for p in $pids; do kill -0 "$p" 2>/dev/null && alive+=" $p"; done
# and the command that was running in the sandbox pod (a process of kubesim's)
left=$(pgrep -f -- "$B/" || true; pgrep -f -- 'sleep 60; sh test.sh; status' || true)
[[ -n $pids && -z $alive && -z $left && -z $(ls -A "$B") ]] &&
	tap_pass "Ctrl-C: no process left, the temporary directory removed" ||
	tap_fail "Ctrl-C leaves nothing" "alive=[$alive] left=[$left] files=[$(ls -A "$B")]"
tap_done
