#!/usr/bin/env bash
# make soak: the fault soak, then the crash cycles (tests/soak/crash.sh).
#
# One `ci-fixer serve` (as the ci-fixer-app ServiceAccount, rbac/ applied)
# against kubesim with about 5% of the sandbox namespace's requests of every
# kind faulted (500, 503 and 429 with Retry-After, dropped connections,
# watch cuts, 410 Expired, exec streams cut at 0, 100 or 5000 bytes) plus
# image pull failures (5% of the runs ask for an image kubesim fails to
# pull). Runs of known outcome (exit 0, exit 3, known output hashes, a
# patch); each result is judged against the truth (tests/soak/soak.py).
#
# Settings (environment):
#   SOAK_RUNS=200        runs in the fault soak. With the crash cycles,
#                        make soak takes about 13 minutes on the shared
#                        2-core machine; issue 8 asks for 2,000:
#                        SOAK_RUNS=2000 make soak (the "long" setting, about
#                        an hour here: 57 minutes for the 2,000 runs)
#   SOAK_CLIENTS=8       concurrent clients; serve runs SOAK_CONCURRENT=4 at a
#                        time with a queue of 16
#   SOAK_SEED=1          kubesim's fault seed and the run mix
#   SOAK_FAULTS=1        scale of the fault probabilities (1 = 5% per request)
#   CRASH_CYCLES=20      SIGKILL cycles in crash.sh (0 skips it)
#   SOAK_OUT=build/soak  where SUMMARY, runs.jsonl, rss.csv and logs go
# Exit status 0 only if both passed.
cd "$(dirname "$0")/../.." || exit 1
. tests/soak/common.bash
SOAK_RUNS=${SOAK_RUNS:-200}
SOAK_CLIENTS=${SOAK_CLIENTS:-8}
SOAK_CONCURRENT=${SOAK_CONCURRENT:-4}
SOAK_SEED=${SOAK_SEED:-1}
SOAK_FAULTS=${SOAK_FAULTS:-1}
CRASH_CYCLES=${CRASH_CYCLES:-20}
SOAK_OUT=${SOAK_OUT:-${BUILD:-build}/soak}
[[ $SOAK_OUT == /* ]] || SOAK_OUT=$PWD/$SOAK_OUT
rm -rf "$SOAK_OUT/faults"
mkdir -p "$SOAK_OUT/faults"

spec=$(sk_fault_spec "$SOAK_FAULTS")
if ! sk_setup "$spec" "$SOAK_SEED"; then
	echo "soak: cannot set up: $SK_SKIP"
	exit 1
fi
echo "soak: kubesim --faults (seed $SOAK_SEED):"
tr ';' '\n' <<<"$spec" | sed 's/^/  /'
mapfile -t sargs < <(sk_serve_args "$SOAK_CONCURRENT" 16)
python3 tests/soak/soak.py --runs "$SOAK_RUNS" --clients "$SOAK_CLIENTS" --seed "$SOAK_SEED" \
	--token "$SK_TOKEN" --repo "$SK_DIR/repo" --bad-image "$SK_BAD_IMAGE" --owner "soak-$$" \
	--out "$SOAK_OUT/faults" --fault-spec "$spec" -- "$SK_BIN" serve "${sargs[@]}"
soak_rc=$?
cp "$KS_DIR/stderr" "$SOAK_OUT/faults/kubesim.log" 2>/dev/null
sk_cleanup
trap - EXIT

crash_rc=0
if [[ $CRASH_CYCLES -gt 0 ]]; then
	CRASH_CYCLES=$CRASH_CYCLES SOAK_OUT=$SOAK_OUT tests/soak/crash.sh
	crash_rc=$?
fi
echo "soak: fault soak $([[ $soak_rc -eq 0 ]] && echo passed || echo FAILED) ($SOAK_OUT/faults/SUMMARY)," \
	"crash cycles $([[ $crash_rc -eq 0 ]] && echo passed || echo FAILED) ($SOAK_OUT/crash/SUMMARY)"
[[ $soak_rc -eq 0 && $crash_rc -eq 0 ]]
