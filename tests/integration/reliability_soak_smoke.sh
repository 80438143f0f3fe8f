#!/usr/bin/env bash
# A small `make soak` inside make test: one `ci-fixer serve` (as the
# ci-fixer-app ServiceAccount, rbac/ applied) against kubesim with about 5%
# of the sandbox namespace's requests of every kind faulted (image pull
# failures, with their 30 s grace, are left to make soak), at least 16 runs
# of known outcome while serve is SIGKILLed and restarted 3 times
# (tests/soak/soak.py judges every result):
#  - every accepted run is listed and reaches a terminal phase: its true
#    result, or Error with a reason;
#  - no run reports an exit code, byte count, hash or output that is not
#    the true one (no false success);
#  - after each restart no Job of a finished or unknown run within 30 s;
#  - no Job and no pod left at the end.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/soak/common.bash

spec=$(sk_fault_spec 1)
if ! sk_setup "$spec" 3; then
	tap_skip "reliability soak smoke" "$SK_SKIP"
	tap_done
	exit 0
fi
out=$SK_DIR/out
mapfile -t sargs < <(sk_serve_args 4 16)
timeout 300 python3 tests/soak/soak.py --runs 16 --kills 3 --kill-min 2 --kill-max 4 --clients 6 --seed 3 \
	--mix "ok=25,exit3=20,hash=20,multi=10,patch=15" --run-timeout 120 --settle 20 \
	--token "$SK_TOKEN" --repo "$SK_DIR/repo" --bad-image "$SK_BAD_IMAGE" --owner "soak-$$" \
	--out "$out" --fault-spec "$spec" -- "$SK_BIN" serve "${sargs[@]}" >"$SK_DIR/soak.log" 2>&1
rc=$?
cat "$SK_DIR/soak.log" >&2
S=$out/SUMMARY
# serve's log is gone with SK_DIR at exit: show its end when serve did not
# drain cleanly (a sanitizer report, say)
if [[ -f $S ]] && ! grep -q 'after serve drained (exit 0)' "$S"; then
	for f in "$out"/serve*.log; do
		[[ -f $f ]] && { echo "---- the end of $f" >&2; tail -n 60 "$f" >&2; }
	done
fi
if [[ ! -f $S ]]; then
	tap_fail "the soak driver finished (exit $rc)"
	tap_done
	exit 1
fi
judged=$(grep '^judged:' "$S")
n() { grep -oE "$1 [0-9]+" <<<"$judged" | grep -oE '[0-9]+$'; }
[[ $(grep -oE '^== reliability crash: [0-9]+' "$S" | grep -oE '[0-9]+$') -ge 16 ]] &&
	tap_pass "at least 16 runs finished" || tap_fail "at least 16 runs finished" "$(head -1 "$S")"
[[ $(n 'false successes') == 0 ]] && tap_pass "no false success" || tap_fail "no false success" "$judged"
[[ $(n 'wrong results') == 0 ]] && tap_pass "no reported exit code, byte count, hash or output that is not the true one" ||
	tap_fail "no wrong result" "$judged"
[[ $(n 'not terminal') == 0 && $(n 'lost') == 0 ]] && tap_pass "every accepted run reached a terminal phase" ||
	tap_fail "every run terminal" "$judged"
grep -qE '^GET /v1/runs lists ([0-9]+) runs for \1 accepted .*missing: 0$' "$S" &&
	tap_pass "every accepted run is listed, one per idempotency key" || tap_fail "runs listed" "$(grep '^GET /v1/runs' "$S")"
grep -qE '^crash: 3 SIGKILL cycles.*Jobs present at the kills: [1-9][0-9]*;.*Jobs leaked 30 s after a kill: 0;' "$S" &&
	tap_pass "3 SIGKILL cycles with Jobs running, no Job of a finished run 30 s after any kill" || tap_fail "crash cycles" "$(grep '^crash:' "$S")"
grep -qE '^Jobs/pods left: .*after serve drained \(exit 0\) 0/0$' "$S" && grep -qE '; after [0-9]+ s \(reaper every 10 s\) 0/0;' "$S" &&
	tap_pass "no Job or pod left, and serve drained with exit 0" || tap_fail "leaks" "$(grep '^Jobs/pods' "$S")"
[[ $rc -eq 0 ]] && grep -q '^RESULT: PASS' "$S" && tap_pass "soak driver verdict PASS" || tap_fail "soak verdict" "exit $rc"
tap_done
