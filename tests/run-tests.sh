#!/usr/bin/env bash
# The test driver: runs every test program and script, in parallel, and
# ends with exactly one summary line "N passed, N failed".
#
# Test programs report in TAP: Criterion programs (build/tests/*/test_*)
# with --tap, scripts (tests/integration/*.sh) on their stdout. A program
# that ends without a plan's worth of results, crashes or times out counts
# as one failure. "# SKIP" results are counted apart and listed.
#
#   BUILD=build TEST_JOBS=3 TEST_TIMEOUT=900 TEST_FILTER=regex tests/run-tests.sh
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
JOBS=${TEST_JOBS:-3}
TIMEOUT=${TEST_TIMEOUT:-900}
FILTER=${TEST_FILTER:-.}
# Each run has its own results directory (two runs at once must not wipe
# each other's); $BUILD/test-results points at the latest. Runs' results
# older than a day are removed.
mkdir -p "$BUILD"
find "$BUILD" -maxdepth 1 -name 'test-results.*' -type d -mmin +1440 -exec rm -rf {} + 2>/dev/null
out=$(mktemp -d "$BUILD/test-results.XXXXXX") || exit 1
[[ -d $BUILD/test-results && ! -L $BUILD/test-results ]] && rm -rf "$BUILD/test-results"
ln -sfn "$(basename "$out")" "$BUILD/test-results"
export BUILD
export CIFIXER_TEST_ROOT=$PWD

progs=()
for p in "$BUILD"/tests/unit/test_* "$BUILD"/tests/integration/test_* tests/integration/*.sh; do
	[[ -f $p && -x $p && $p != *.d ]] || continue
	[[ $p =~ $FILTER ]] || continue
	progs+=("$p")
done

run_one() {
	local p=$1 name rc
	name=$(echo "$p" | sed 's|^'"$BUILD"'/||; s|/|_|g')
	local start=$SECONDS
	if [[ $p == *.sh ]]; then
		timeout -k 10 "$TIMEOUT" bash "$p" >"$out/$name.tap" 2>"$out/$name.log"
	else
		# one Criterion worker per program: the driver already runs programs in parallel
		timeout -k 10 "$TIMEOUT" "$p" --jobs=1 --tap="$out/$name.tap" >"$out/$name.log" 2>&1
	fi
	rc=$?
	echo "$rc $((SECONDS - start))" >"$out/$name.rc"
}
export -f run_one
export out TIMEOUT

if [[ ${#progs[@]} -eq 0 ]]; then
	echo "no test programs found under $BUILD/tests or tests/integration (did the build run?)"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "running ${#progs[@]} test programs ($JOBS at a time)"
printf '%s\n' "${progs[@]}" | xargs -r -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {}

passed=0 failed=0 skipped=0
failures=()
for p in "${progs[@]}"; do
	name=$(echo "$p" | sed 's|^'"$BUILD"'/||; s|/|_|g')
	read -r rc secs <"$out/$name.rc" 2>/dev/null || { rc=99; secs=0; }
	tap=$out/$name.tap
	ok=$(grep -cE '^ok ' "$tap" 2>/dev/null); ok=${ok:-0}
	skip=$(grep -ciE '^ok .*# *skip' "$tap" 2>/dev/null); skip=${skip:-0}
	nok=$(grep -cE '^not ok ' "$tap" 2>/dev/null); nok=${nok:-0}
	ok=$((ok - skip))
	passed=$((passed + ok)); failed=$((failed + nok)); skipped=$((skipped + skip))
	status=ok
	if [[ $nok -gt 0 ]]; then
		status=FAIL
	elif [[ $rc -ne 0 || $((ok + skip)) -eq 0 ]]; then
		# crashed, timed out (124) or reported nothing: one failure
		failed=$((failed + 1)); status="FAIL (exit $rc)"
	fi
	# A sanitizer report anywhere in the log (the program, a Criterion
	# worker, or a process a script started) is one more failure, even if
	# every check passed: LeakSanitizer's report at a worker's exit does not
	# change the test's verdict by itself.
	if grep -qE '^==[0-9]+==ERROR: [A-Za-z]+Sanitizer|\.(c|h):[0-9]+:[0-9]+: runtime error: |^WARNING: ThreadSanitizer' "$out/$name.log" 2>/dev/null; then
		failed=$((failed + 1)); status="FAIL (sanitizer report in the log)"
	fi
	printf '%-60s %4s ok %3s skip %3s fail %4ss  %s\n' "$name" "$ok" "$skip" "$nok" "$secs" "$status"
	if [[ $status != ok ]]; then
		failures+=("$name")
	fi
	grep -iE '^ok .*# *skip' "$tap" 2>/dev/null | sed 's/^/    skipped: /'
done
for f in "${failures[@]}"; do
	echo "---- $f: failing results and the end of its log"
	grep -E '^not ok' "$out/$f.tap" 2>/dev/null | head -20
	tail -n 40 "$out/$f.log" 2>/dev/null
done
[[ $skipped -gt 0 ]] && echo "$skipped skipped (listed above)"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
