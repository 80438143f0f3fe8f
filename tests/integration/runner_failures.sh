#!/usr/bin/env bash
# Runner-level failures through the HTTP API (issue 5's acceptance): each
# run ends in the right phase with a CamelCase reason and a message a person
# can act on, the run document maps the sandbox's result (command outcomes,
# exit codes, output so far), the exit status of `submit` follows the
# contract, and nothing leaks (no Job, no pod, no scratch checkout, no run
# left active or queued). The sandbox layer's own failure tests are
# tests/integration/test_sandbox_failures.c; this covers what serve adds.
#
# Part A, one kubesim with --image-fail and API faults (the first Job POST
# answers 503 with Retry-After, the first Job DELETE 429, the first pod
# watch is cut), serve running these at once:
#   image pull failure   Error ErrImagePull|ImagePullBackOff, the event quoted
#   command timeout      Failed CommandTimeout, outcome timeout, output kept
#   run deadline         Failed DeadlineExceeded (and `submit` exits 124)
#   DELETE while Running Cancelled/Cancelled, the Job deleted
#   pod deleted outside  Error PodDeleted
#   DELETE of a finished run: 200 and unchanged; of an unknown run: 404
# Part B, kubesim --faults exec-cut, serve with one worker:
#   DELETE while queued  Cancelled before it started, nothing created
#   exec stream cut      Error StreamLost, outcome lost, never a success;
#                        `submit` exits 125.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/integration/runner_common.bash

faults='POST /apis/batch/v1/namespaces/*/jobs:status=503,retry=1@first=1;'
faults+='DELETE /apis/batch/v1/namespaces/*/jobs/*:status=429,retry=1@first=1;'
faults+='watch /api/v1/namespaces/*/pods:watch-cut=1@first=1'
if ! rn_setup --image-fail 'registry.invalid/*' --faults "$faults"; then
	tap_skip "runner failures" "$RN_SKIP"
	tap_done
	exit 0
fi
rn_serve --max-concurrent 5 --queue-size 4 || { tap_fail "serve starts"; tap_done; exit 1; }
rn_wait_ready && tap_pass "serve is ready" || tap_fail "serve ready"

post() { rn_api POST /v1/runs -d "$1" | rn_json 'd["id"]'; }
pull=$(post '{"image":"registry.invalid/team/app:1.0","commands":[{"argv":["echo","never"]}]}')
tmo=$(post '{"commands":[{"argv":["sh","-c","echo started; sleep 60"],"timeoutSeconds":2},{"argv":["echo","never"]}]}')
ddl=$(post '{"timeoutSeconds":4,"commands":[{"argv":["sleep","60"]}]}')
# these two check out a repository: their scratch trees must go too
cnl=$(post "{\"repo\":{\"url\":\"$RN_DIR/repo\"},\"commands\":[{\"argv\":[\"sleep\",\"60\"]}]}")
gone=$(post "{\"repo\":{\"url\":\"$RN_DIR/repo\"},\"commands\":[{\"argv\":[\"sleep\",\"60\"]}]}")
# the deadline again through submit, for its exit status (it queues behind)
"$RN_BIN" submit --server "$RN_URL" --token-file "$RN_DIR/tokens" --timeout 4 -- sleep 60 \
	>"$RN_DIR/submit.out" 2>"$RN_DIR/submit.err" &
sub_pid=$!
rn_note "posted"

rn_py wait Running 90 "$cnl" "$gone" >&2 || tap_fail "runs to cancel and to break are Running"
rn_api DELETE "/v1/runs/$cnl" >/dev/null
[[ $(rn_code) == 202 ]] && tap_pass "DELETE of a running run: 202" || tap_fail "DELETE running" "$(rn_code)"
kubectl delete pod -n $RN_NS -l "ci-fixer.io/run-id=$gone" --wait=false >&2
rn_py wait 'Succeeded|Failed|Error|Cancelled' 120 "$pull" "$tmo" "$ddl" "$cnl" "$gone" >"$RN_DIR/ends" ||
	tap_fail "every run ended within 120 s" "$(cat "$RN_DIR/ends")"
cat "$RN_DIR/ends" >&2
rn_note "all ended"
wait $sub_pid
sub_rc=$?

# check ID PYTHON_ASSERTIONS NAME: GET the document and assert over d
check() {
	local id=$1 code=$2 name=$3
	rn_api GET "/v1/runs/$id" >"$RN_DIR/doc-$id.json"
	if python3 - "$RN_DIR/doc-$id.json" "$code" <<'PY' 2>"$RN_DIR/why"; then
import json, re, sys
d = json.load(open(sys.argv[1]))
# every terminal document: a CamelCase reason, a sentence, the times, the Job named
if d["phase"] != "Succeeded":
    assert re.fullmatch(r"[A-Z][A-Za-z]+", d["reason"]), d["reason"]
    assert len(d["message"]) > 20, d["message"]
assert d["finishedAt"] and d["createdAt"], d
assert d["job"]["name"] == "cifix-" + d["id"], d["job"]
exec(sys.argv[2])
PY
		tap_pass "$name"
	else
		tap_fail "$name" "$(cat "$RN_DIR/why"; head -c 1500 "$RN_DIR/doc-$id.json")"
	fi
}
check "$pull" '
assert d["phase"] == "Error" and d["reason"] in ("ErrImagePull", "ImagePullBackOff"), (d["phase"], d["reason"])
assert "registry.invalid/team/app:1.0" in d["message"] and "events of Pod" in d["message"], d["message"]
assert d["commands"][0]["outcome"] == "skipped" and d["commands"][0]["exitCode"] is None, d["commands"]
' "image pull failure: Error, the pull reason, the image and the pod's events quoted, the command skipped"
check "$tmo" '
assert (d["phase"], d["reason"]) == ("Failed", "CommandTimeout"), (d["phase"], d["reason"])
assert "timed out after 2 s" in d["message"], d["message"]
c0, c1 = d["commands"]
assert c0["outcome"] == "timeout" and c0["exitCode"] is None and c0["stdout"] == "started\n", c0
assert c1["outcome"] == "skipped", c1
' "command timeout: Failed/CommandTimeout, outcome timeout with the output so far, the next command skipped"
check "$ddl" '
assert (d["phase"], d["reason"]) == ("Failed", "DeadlineExceeded"), (d["phase"], d["reason"])
assert "timeout of 4 s" in d["message"], d["message"]
' "run deadline: Failed/DeadlineExceeded naming the run's timeout"
check "$cnl" '
assert (d["phase"], d["reason"]) == ("Cancelled", "Cancelled"), (d["phase"], d["reason"])
assert d["commands"][0]["outcome"] != "exited" or d["commands"][0]["exitCode"] != 0, d["commands"]
' "DELETE while Running: Cancelled/Cancelled, the command not reported as a success"
check "$gone" '
assert d["phase"] == "Error" and d["reason"] in ("PodDeleted", "PodFailed"), (d["phase"], d["reason"])
assert "delet" in d["message"], d["message"]
' "pod deleted from outside mid-run: Error/PodDeleted, never blamed on the command"
[[ $sub_rc -eq 124 ]] && grep -q DeadlineExceeded "$RN_DIR/submit.err" &&
	tap_pass "submit: the run deadline exits 124 and says DeadlineExceeded" ||
	tap_fail "submit deadline" "rc=$sub_rc $(tail -3 "$RN_DIR/submit.err")"

d=$(rn_api DELETE "/v1/runs/$tmo")
[[ $(rn_code) == 200 && $(echo "$d" | rn_json 'd["phase"]') == Failed ]] &&
	tap_pass "DELETE of a finished run: 200 and the run unchanged" || tap_fail "DELETE finished" "$(rn_code)"
rn_api DELETE /v1/runs/r-0123456789abcdef >/dev/null
[[ $(rn_code) == 404 ]] && tap_pass "DELETE of an unknown run: 404" || tap_fail "DELETE unknown" "$(rn_code)"

# nothing leaks
for _ in $(seq 1 150); do [[ $(rn_jobs) -eq 0 && $(rn_pods) -eq 0 ]] && break; sleep 0.2; done
[[ $(rn_jobs) -eq 0 ]] && tap_pass "no Job left" || tap_fail "jobs left" "$(rn_jobs)"
[[ $(rn_pods) -eq 0 ]] && tap_pass "no pod left" || tap_fail "pods left" "$(rn_pods)"
left=$(find "$RN_DIR/data/scratch" -mindepth 1 -maxdepth 1 | wc -l)
[[ $left -eq 0 ]] && tap_pass "no scratch checkout left in the data directory" || tap_fail "scratch left" "$(ls "$RN_DIR/data/scratch")"
m=$(curl -s "$RN_URL/metrics")
echo "$m" | grep -qx 'cifixer_active_runs 0' && echo "$m" | grep -qx 'cifixer_queue_depth 0' &&
	echo "$m" | grep -qx 'cifixer_runs_total{phase="Error"} 2' && echo "$m" | grep -qx 'cifixer_runs_total{phase="Cancelled"} 1' &&
	echo "$m" | grep -qx 'cifixer_runs_total{phase="Failed"} 3' &&
	tap_pass "/metrics: nothing active or queued; 2 Error, 3 Failed, 1 Cancelled" || tap_fail "metrics" "$(echo "$m" | grep -E 'runs_total|active|queue')"

# ---- part B: the exec stream cut mid-command ----
rn_cleanup
rn_note "part B"
if ! rn_setup --faults 'exec /api/v1/namespaces/*/pods/*/exec:exec-cut=4'; then
	tap_fail "kubesim with exec-cut starts" "$RN_SKIP"
	tap_done
	exit 1
fi
rn_serve --max-concurrent 1 || { tap_fail "serve starts (B)"; tap_done; exit 1; }
rn_wait_ready || tap_fail "serve ready (B)"
# the one worker is busy: the next run waits in the queue and is cancelled there
blocker=$(post '{"commands":[{"argv":["sleep","60"]}]}')
rn_py wait Running 90 "$blocker" >&2 || tap_fail "the blocking run is Running"
qd=$(post '{"commands":[{"argv":["echo","never"]}]}')
rn_py wait Pending 1 "$qd" >&2 && tap_pass "behind a busy worker a run is Pending" || tap_fail "queued run"
rn_api DELETE "/v1/runs/$qd" >/dev/null
[[ $(rn_code) == 202 ]] && tap_pass "DELETE of a queued run: 202" || tap_fail "DELETE queued" "$(rn_code)"
rn_py wait Cancelled 30 "$qd" >&2
check "$qd" '
assert (d["phase"], d["reason"]) == ("Cancelled", "Cancelled"), (d["phase"], d["reason"])
assert "nothing was created" in d["message"] and d["startedAt"] is None, d
' "DELETE while queued: Cancelled before it started, nothing created"
rn_api DELETE "/v1/runs/$blocker" >/dev/null
rn_py wait Cancelled 60 "$blocker" >&2 && tap_pass "the blocking run is cancelled by DELETE too" || tap_fail "blocker cancel"
# one worker, runs one after the other: each POST must wake the worker (a
# wake-up taken by the housekeeper thread once left the run queued forever).
# Under exec-cut their commands' streams are cut (StreamLost): what counts
# here is that each run is taken and ends.
rn_py runwait 4 '{"commands":[{"argv":["true"]}],"collect":{"patch":false}}' 60 >"$RN_DIR/seq" &&
	[[ $(grep -cE '^r-[0-9a-f]+ (Succeeded|Error) ' "$RN_DIR/seq") -eq 4 ]] &&
	tap_pass "4 runs in a row on one worker, each taken at once (no lost wake-up)" || tap_fail "sequential runs" "$(cat "$RN_DIR/seq")"
cut=$(rn_api POST '/v1/runs?wait=true' -d '{"commands":[{"shell":"echo 0123456789; sleep 1; echo more"},{"shell":"echo never"}]}' | rn_json 'd["id"]')
check "$cut" '
assert (d["phase"], d["reason"]) == ("Error", "StreamLost"), (d["phase"], d["reason"])
c0, c1 = d["commands"]
assert c0["outcome"] == "lost" and c0["exitCode"] is None, c0
assert c1["outcome"] == "skipped", c1
' "exec stream cut: Error/StreamLost, outcome lost (never a success), the next command skipped"
"$RN_BIN" submit --server "$RN_URL" --token-file "$RN_DIR/tokens" -c 'echo 0123456789; sleep 1; echo more' \
	>/dev/null 2>"$RN_DIR/submit.err"
rc=$?
[[ $rc -eq 125 ]] && grep -q StreamLost "$RN_DIR/submit.err" && tap_pass "submit: a lost stream exits 125 (infrastructure)" ||
	tap_fail "submit lost" "rc=$rc $(tail -3 "$RN_DIR/submit.err")"
for _ in $(seq 1 150); do [[ $(rn_jobs) -eq 0 && $(rn_pods) -eq 0 ]] && break; sleep 0.2; done
[[ $(rn_jobs) -eq 0 && $(rn_pods) -eq 0 ]] && tap_pass "no Job and no pod left (B)" || tap_fail "leak (B)" "$(rn_jobs) $(rn_pods)"
tap_done
