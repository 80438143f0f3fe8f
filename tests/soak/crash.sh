#!/usr/bin/env bash
# Crash recovery (run by make soak after the fault soak): CRASH_CYCLES
# (default 20) times, SIGKILL `ci-fixer serve` while clients keep runs
# coming (a mix with 2-second commands, so that runs are queued, starting
# and running at each kill), restart it on the same data directory, and
# check:
#  - within 30 s of each restart no Job is left whose run is finished or
#    unknown to serve (the restarted runner closes out or requeues what the
#    dead one left, and deletes those Jobs);
#  - every accepted run is still listed by GET /v1/runs and reaches a
#    terminal phase: the true result, or Error with a reason (an
#    interrupted run is Error/RunnerRestarted);
#  - clients retry POSTs with their idempotency keys across the restarts,
#    and serve lists exactly one run per key (no duplicate, no stray run);
#  - no Job or pod left at the end.
# No API faults here: the crash is the fault under test.
#   CRASH_CYCLES=20 SOAK_OUT=build/soak tests/soak/crash.sh
cd "$(dirname "$0")/../.." || exit 1
. tests/soak/common.bash
CRASH_CYCLES=${CRASH_CYCLES:-20}
CRASH_SEED=${CRASH_SEED:-2}
SOAK_OUT=${SOAK_OUT:-${BUILD:-build}/soak}
[[ $SOAK_OUT == /* ]] || SOAK_OUT=$PWD/$SOAK_OUT
rm -rf "$SOAK_OUT/crash"
mkdir -p "$SOAK_OUT/crash"

if ! sk_setup "" "$CRASH_SEED"; then
	echo "crash: cannot set up: $SK_SKIP"
	exit 1
fi
mapfile -t sargs < <(sk_serve_args 4 16)
python3 tests/soak/soak.py --runs 0 --kills "$CRASH_CYCLES" --clients 8 --seed "$CRASH_SEED" \
	--mix "ok=20,exit3=15,slow=35,hash=10,multi=10,patch=10" --kill-min 3 --kill-max 8 --leak-window 30 \
	--token "$SK_TOKEN" --repo "$SK_DIR/repo" --bad-image "$SK_BAD_IMAGE" --owner "soak-$$" \
	--out "$SOAK_OUT/crash" -- "$SK_BIN" serve "${sargs[@]}"
rc=$?
cp "$KS_DIR/stderr" "$SOAK_OUT/crash/kubesim.log" 2>/dev/null
exit $rc
