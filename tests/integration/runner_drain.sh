#!/usr/bin/env bash
# SIGTERM during 10 running runs (issue 5's acceptance): serve, as the
# ci-fixer-app ServiceAccount against kubesim, has 10 runs in phase Running
# (10 Jobs in the cluster); on SIGTERM it stops accepting, cancels them,
# deletes every Job and only then exits (status 0). A restart on the same
# data directory lists the 10 runs from the SQLite store as Cancelled with
# reason Shutdown. No Job and no pod is left.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/integration/runner_common.bash

if ! rn_setup; then
	tap_skip "runner SIGTERM drain" "$RN_SKIP"
	tap_done
	exit 0
fi
N=10
rn_serve --max-concurrent $N --queue-size $N || { tap_fail "serve starts"; tap_done; exit 1; }
rn_wait_ready && tap_pass "serve is ready" || tap_fail "serve ready"

mapfile -t ids < <(rn_py post $N '{"commands":[{"argv":["sleep","300"]}]}')
[[ ${#ids[@]} -eq $N ]] && tap_pass "$N runs accepted (201)" || tap_fail "accepted" "${#ids[@]}"
rn_note "accepted"
rn_py wait Running 90 "${ids[@]}" >"$RN_DIR/phases" && tap_pass "all $N runs are Running" ||
	tap_fail "running" "$(grep -vc ' Running ' "$RN_DIR/phases") not Running"
rn_note "all running"
[[ $(rn_jobs) -eq $N ]] && tap_pass "$N Jobs exist in the cluster" || tap_fail "jobs before SIGTERM" "$(rn_jobs)"

# a client waiting on events sees the run end: the result event closes the stream
curl -s -N -m 60 -H "Authorization: Bearer $RN_TOKEN" "$RN_URL/v1/runs/${ids[0]}/events" >"$RN_DIR/events" &
ev_pid=$!
sleep 0.5

rn_note "SIGTERM"
kill -TERM "$RN_SERVE_PID"
exited=0
for _ in $(seq 1 600); do
	kill -0 "$RN_SERVE_PID" 2>/dev/null || { exited=1; break; }
	sleep 0.1
done
# counted as soon as the process is gone: what it left behind
jobs_after=$(rn_jobs)
rn_note "serve exited"
wait "$RN_SERVE_PID"
rc=$?
RN_SERVE_PID=
[[ $exited -eq 1 && $rc -eq 0 ]] && tap_pass "serve exits 0 after SIGTERM" || tap_fail "serve exit" "exited=$exited rc=$rc"
[[ $jobs_after -eq 0 ]] && tap_pass "every Job was deleted before serve exited" || tap_fail "jobs left at exit" "$jobs_after"
grep -q '"msg":"stopped: every run finished or cancelled, every Job deleted"' "$RN_DIR/serve.log" &&
	tap_pass "the log says every Job was deleted" || tap_fail "stop log line" "$(tail -3 "$RN_DIR/serve.log")"
wait $ev_pid 2>/dev/null
grep -q '^event: result' "$RN_DIR/events" && grep -q '"phase":"Cancelled"' "$RN_DIR/events" &&
	tap_pass "an events stream ended with the Cancelled result" || tap_fail "events at shutdown" "$(tail -c 300 "$RN_DIR/events")"

# restart on the same store: every run is there, Cancelled by the shutdown
rn_serve --max-concurrent 2 || { tap_fail "serve restarts"; tap_done; exit 1; }
rn_api GET '/v1/runs?limit=500' >"$RN_DIR/list.json"
python3 - "$RN_DIR/list.json" "${ids[@]}" <<'PY' && tap_pass "after a restart GET /v1/runs lists all $N as Cancelled (reason Shutdown, finishedAt set)" || tap_fail "runs after restart"
import json, sys
d = json.load(open(sys.argv[1]))
want = set(sys.argv[2:])
got = {r["id"]: r for r in d["items"] if r["id"] in want}
assert set(got) == want, (len(got), len(want))
for r in got.values():
    assert r["phase"] == "Cancelled" and r["reason"] == "Shutdown", r
    assert r["message"] and r["finishedAt"], r
PY
one=$(rn_api GET "/v1/runs/${ids[3]}")
[[ $(echo "$one" | rn_json 'd["phase"], d["job"]["name"]') == "('Cancelled', 'cifix-${ids[3]}')" ]] &&
	tap_pass "GET /v1/runs/{id} of a drained run answers from the store" || tap_fail "GET one" "$(echo "$one" | head -c 300)"
[[ $(rn_jobs) -eq 0 ]] && tap_pass "no Job after the restart either" || tap_fail "jobs" "$(rn_jobs)"
for _ in $(seq 1 300); do [[ $(rn_pods) -eq 0 ]] && break; sleep 0.1; done
[[ $(rn_pods) -eq 0 ]] && tap_pass "no pod left" || tap_fail "pods left" "$(rn_pods)"
tap_done
