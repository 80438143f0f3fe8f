#!/usr/bin/env bash
# Run every libFuzzer target built by `make fuzz` for FUZZ_SECONDS each.
# Each target's seed corpus is tests/fuzz/corpus/<name>/ (read only here:
# new inputs go to a scratch directory, crashes to build/fuzz/crashes/).
#   FUZZ_SECONDS=600 BUILD=build/fuzz tests/fuzz/run.sh [name...]
# FUZZ_TIMEOUT (default 10 s) is what one input may take before libFuzzer
# calls it a hang; raise it on a loaded machine.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/fuzz}
SECS=${FUZZ_SECONDS:-60}
TIMEOUT=${FUZZ_TIMEOUT:-10}
crashes=$BUILD/crashes
mkdir -p "$crashes"
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
	for b in "$BUILD"/fuzz-bin/fuzz_*; do
		[[ -x $b && $b != *.d ]] && targets+=("$(basename "$b")")
	done
fi
passed=0 failed=0
for t in "${targets[@]}"; do
	name=${t#fuzz_}
	seeds=tests/fuzz/corpus/$name
	work=$(mktemp -d)
	[[ -d $seeds ]] || seeds=
	log=$BUILD/$t.log
	echo "fuzz $t for ${SECS}s (seeds: ${seeds:-none})"
	if "$BUILD/fuzz-bin/$t" -max_total_time="$SECS" -timeout="$TIMEOUT" -rss_limit_mb=2048 \
		-artifact_prefix="$crashes/$t-" -print_final_stats=1 "$work" ${seeds:+"$seeds"} >"$log" 2>&1; then
		runs=$(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
		cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
		echo "ok $t: ${runs:-?} executions, $cov, no crash"
		passed=$((passed + 1))
	else
		echo "not ok $t: crashed, see $log and $crashes/"
		grep -m5 -E 'ERROR|SUMMARY|==[0-9]+==' "$log"
		failed=$((failed + 1))
	fi
	rm -rf "$work"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
