#!/usr/bin/env bash
# The HTTP API and `submit` end to end: kubesim, rbac/ applied, serve as the
# ci-fixer-app ServiceAccount, a real git repository.
#  - a run of 3 commands: exact stdout, stderr and exit codes, the container
#    log, a patch that `git apply` accepts on the base commit;
#  - server-sent events replay the output and end with the result;
#  - submit streams output live and exits with the run's status;
#  - idempotency keys, cancellation by DELETE, paging, the queue's 429;
#  - no Job and no pod left at the end.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/integration/runner_common.bash

if ! command -v python3 >/dev/null || ! rn_setup; then
	tap_skip "runner API" "${RN_SKIP:-python3 not found}"
	tap_done
	exit 0
fi
rn_serve --max-concurrent 2 --queue-size 2 || { tap_fail "serve starts"; tap_done; exit 1; }
rn_wait_ready && tap_pass "serve is ready" || tap_fail "serve ready"
# serve runs with glibc's per-thread malloc cache off (it executes itself
# again with GLIBC_TUNABLES), same pid, nothing else in the environment lost
if tr '\0' '\n' </proc/$RN_SERVE_PID/environ | grep -qx 'GLIBC_TUNABLES=glibc.malloc.tcache_count=0' &&
	tr '\0' '\n' </proc/$RN_SERVE_PID/environ | grep -q '^PATH='; then
	tap_pass "serve runs with the per-thread malloc cache off"
else
	tap_fail "serve's GLIBC_TUNABLES" "$(tr '\0' '\n' </proc/$RN_SERVE_PID/environ | grep GLIBC || echo none)"
fi
J() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
base=$(git -C "$RN_DIR/repo" rev-parse HEAD)

# ---- three commands ----
cat >"$RN_DIR/req.json" <<EOR
{"repo":{"url":"$RN_DIR/repo","commit":"$base"},
 "commands":[
  {"argv":["sh","-c","cat a.txt; printf 'to-err\\\\n' >&2"]},
  {"shell":"echo fixed > a.txt; echo new > b.txt; exit 3","continueOnError":true},
  {"argv":["cat","a.txt"],"env":{"X":"y"}}],
 "timeoutSeconds":120,"labels":{"pipeline":"42"}}
EOR
doc=$(rn_api POST '/v1/runs?wait=true' --data-binary @"$RN_DIR/req.json")
echo "$doc" >"$RN_DIR/doc.json"
echo "$doc" | head -c 3000 >&2
[[ $(rn_code) == 200 ]] && tap_pass "POST ?wait=true answers 200 with the document" || tap_fail "POST wait" "$(rn_code)"
id=$(echo "$doc" | J 'd["id"]')
[[ $(echo "$doc" | J 'd["phase"]') == Succeeded ]] && tap_pass "phase Succeeded (the failing command had continueOnError)" ||
	tap_fail "phase Succeeded" "$(echo "$doc" | J 'd["phase"], d["reason"], d["message"]')"
[[ $(echo "$doc" | J '[c["exitCode"] for c in d["commands"]]') == "[0, 3, 0]" ]] && tap_pass "exit codes 0, 3, 0" ||
	tap_fail "exit codes" "$(echo "$doc" | J '[c["exitCode"] for c in d["commands"]]')"
[[ $(echo "$doc" | J 'repr(d["commands"][0]["stdout"])') == "'hello\\n'" &&
	$(echo "$doc" | J 'repr(d["commands"][0]["stderr"])') == "'to-err\\n'" &&
	$(echo "$doc" | J 'repr(d["commands"][2]["stdout"])') == "'fixed\\n'" ]] &&
	tap_pass "exact stdout and stderr per command" || tap_fail "stdout/stderr"
[[ $(echo "$doc" | J 'd["commands"][0]["stdoutBytes"], d["commands"][0]["stdoutSha256"]') == "(6, '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03')" ]] &&
	tap_pass "byte count and sha256 of stdout" || tap_fail "bytes and sha256" "$(echo "$doc" | J 'd["commands"][0]["stdoutBytes"], d["commands"][0]["stdoutSha256"]')"
[[ -n $(echo "$doc" | J 'd["logs"]') ]] && tap_pass "the container log is returned" || tap_fail "container log"
echo "$doc" | J 'd["patch"]' >"$RN_DIR/fix.patch"
rm -rf "$RN_DIR/check" && git clone -q "$RN_DIR/repo" "$RN_DIR/check" && git -C "$RN_DIR/check" checkout -q "$base" &&
	git -C "$RN_DIR/check" apply "$RN_DIR/fix.patch" && [[ $(cat "$RN_DIR/check/a.txt") == fixed && -f $RN_DIR/check/b.txt ]] &&
	tap_pass "the patch applies with git apply on the base commit" || tap_fail "git apply" "$(cat "$RN_DIR/fix.patch")"
[[ $(echo "$doc" | J 'd["job"]["name"]') == "cifix-$id" ]] && tap_pass "the Job was cifix-<id>" || tap_fail "job name"

# ---- events ----
curl -s -N -H "Authorization: Bearer $RN_TOKEN" "$RN_URL/v1/runs/$id/events" >"$RN_DIR/events" &
cpid=$!
for _ in $(seq 1 50); do kill -0 $cpid 2>/dev/null || break; sleep 0.1; done
kill $cpid 2>/dev/null
python3 - "$RN_DIR/events" <<'PY' && tap_pass "events: phases, output (base64) replaying stdout, the result last" || tap_fail "events"
import base64, json, sys
evs, cur = [], {}
for line in open(sys.argv[1]).read().split("\n"):
    if not line:
        if cur: evs.append(cur); cur = {}
        continue
    k, _, v = line.partition(": ")
    cur[k] = v
names = [e["event"] for e in evs]
assert "phase" in names and names[-1] == "result", names
out = b"".join(base64.b64decode(json.loads(e["data"])["data"]) for e in evs
               if e["event"] == "output" and json.loads(e["data"])["stream"] == "stdout")
assert out == b"hello\nfixed\n", out
ids = [int(e["id"]) for e in evs]
assert ids == sorted(ids) and len(set(ids)) == len(ids)
open(sys.argv[1] + ".last", "w").write(str(ids[-2]))
PY
last=$(cat "$RN_DIR/events.last" 2>/dev/null)
curl -s -N -m 5 -H "Authorization: Bearer $RN_TOKEN" -H "Last-Event-ID: $last" "$RN_URL/v1/runs/$id/events" >"$RN_DIR/events2"
[[ $(grep -c '^event: ' "$RN_DIR/events2") -eq 1 ]] && grep -q '^event: result' "$RN_DIR/events2" &&
	tap_pass "Last-Event-ID resumes after the given event" || tap_fail "Last-Event-ID" "$(grep '^event' "$RN_DIR/events2")"

# ---- submit ----
out=$("$RN_BIN" submit --server "$RN_URL" --token-file "$RN_DIR/tokens" --repo "$RN_DIR/repo" \
	-c 'cat a.txt; echo oops >&2; exit 7' --patch "$RN_DIR/submit.patch" 2>"$RN_DIR/submit.err")
rc=$?
cat "$RN_DIR/submit.err" >&2
[[ $rc -eq 7 && $out == hello ]] && grep -q '^oops$' "$RN_DIR/submit.err" &&
	tap_pass "submit prints stdout/stderr live and exits with the command's status (7)" || tap_fail "submit" "rc=$rc out=$out"
"$RN_BIN" submit --server "$RN_URL" --token-file "$RN_DIR/tokens" --json -- echo ok >"$RN_DIR/submit.json" 2>/dev/null
rc=$?
[[ $rc -eq 0 ]] && head -1 "$RN_DIR/submit.json" | grep -q '^ok$' && tail -1 "$RN_DIR/submit.json" | J 'd["phase"]' | grep -q Succeeded &&
	tap_pass "submit --json: output then the document, exit 0" || tap_fail "submit --json" "rc=$rc"
CIFIXER_SERVER=$RN_URL CIFIXER_TOKEN_FILE=$RN_DIR/tokens "$RN_BIN" submit -- true 2>/dev/null
[[ $? -eq 0 ]] && tap_pass "submit takes --server and --token-file from CIFIXER_SERVER / CIFIXER_TOKEN_FILE" || tap_fail "submit env"
echo wrong >"$RN_DIR/badtok"
"$RN_BIN" submit --server "$RN_URL" --token-file "$RN_DIR/badtok" -- true 2>"$RN_DIR/e"
rc=$?
[[ $rc -eq 125 ]] && grep -q 401 "$RN_DIR/e" && tap_pass "submit with a wrong token: 125 and the 401 said" || tap_fail "submit wrong token" "$rc"

# ---- idempotency ----
a=$(rn_api POST /v1/runs -H 'Idempotency-Key: it-key-1' -d '{"commands":[{"argv":["true"]}]}' | J 'd["id"]'); c1=$(rn_code)
b=$(rn_api POST /v1/runs -H 'Idempotency-Key: it-key-1' -d '{"commands":[{"argv":["true"]}]}' | J 'd["id"]'); c2=$(rn_code)
[[ $c1 == 201 && $c2 == 200 && $a == "$b" ]] && tap_pass "the same idempotency key finds the same run (201, then 200)" ||
	tap_fail "idempotency" "$c1 $c2 $a $b"
rn_api POST /v1/runs -d '{"commands":[{"argv":["false"]}],"idempotencyKey":"it-key-1"}' >/dev/null
[[ $(rn_code) == 409 ]] && tap_pass "the same key with another request: 409" || tap_fail "key reuse" "$(rn_code)"

# ---- cancellation by DELETE ----
id2=$(rn_api POST /v1/runs -d '{"commands":[{"argv":["sleep","100"]}]}' | J 'd["id"]')
for _ in $(seq 1 200); do
	[[ $(rn_api GET /v1/runs/$id2 | J 'd["phase"]') == Running ]] && break
	sleep 0.1
done
rn_api DELETE /v1/runs/$id2 >/dev/null
[[ $(rn_code) == 202 ]] && tap_pass "DELETE a running run: 202" || tap_fail "DELETE" "$(rn_code)"
for _ in $(seq 1 300); do
	d=$(rn_api GET /v1/runs/$id2)
	[[ $(echo "$d" | J 'd["phase"]') == Cancelled ]] && break
	sleep 0.1
done
[[ $(echo "$d" | J 'd["phase"], d["reason"], bool(d["message"])') == "('Cancelled', 'Cancelled', True)" ]] &&
	tap_pass "the run ends Cancelled with reason Cancelled and a message" || tap_fail "cancelled" "$(echo "$d" | head -c 400)"
[[ $(rn_jobs) -eq 0 ]] && tap_pass "its Job is deleted" || tap_fail "job after cancel"

# ---- the queue: 2 workers + 2 queued, the rest 429 ----
codes=""
ids=()
for i in 1 2 3 4 5 6; do
	x=$(rn_api POST /v1/runs -D "$RN_DIR/h$i" -d '{"commands":[{"argv":["sleep","100"]}]}')
	codes="$codes $(rn_code)"
	[[ $(rn_code) == 201 ]] && ids+=("$(echo "$x" | J 'd["id"]')")
	sleep 0.3
done
echo "codes:$codes" >&2
[[ $codes == *429* ]] && grep -qi '^Retry-After:' "$RN_DIR"/h6 && tap_pass "a full queue answers 429 with Retry-After" ||
	tap_fail "429" "$codes"
for i in "${ids[@]}"; do rn_api DELETE /v1/runs/$i >/dev/null; done

# ---- paging ----
all=$(rn_api GET '/v1/runs?limit=500' | J 'len(d["items"])')
p1=$(rn_api GET '/v1/runs?limit=3')
cont=$(echo "$p1" | J 'd.get("continue","")')
p2=$(rn_api GET "/v1/runs?limit=500&continue=$cont")
n1=$(echo "$p1" | J 'len(d["items"])'); n2=$(echo "$p2" | J 'len(d["items"])')
[[ $n1 -eq 3 && -n $cont && $((n1 + n2)) -eq $all && $all -ge 8 ]] && tap_pass "paging: limit + continue cover every run once ($all)" ||
	tap_fail "paging" "$n1 $n2 $all '$cont'"

# ---- waiting clients hold no thread ----
# 12 ?wait=true POSTs (the same idempotency key) and 12 event streams wait
# on one quiet run of 20 s: more clients than libmicrohttpd's pool of 8
# threads. Each waits suspended, so serve answers other requests meanwhile,
# its thread count stays below the number of waiting clients, a stream
# quiet for 15 s gets a keep-alive comment, and every client gets the end.
held='{"commands":[{"argv":["sleep","20"]}]}'
id3=$(rn_api POST /v1/runs -H 'Idempotency-Key: held-1' -d "$held" | J 'd["id"]')
pids=()
for i in $(seq 1 12); do
	curl -s -N -m 90 -H "Authorization: Bearer $RN_TOKEN" "$RN_URL/v1/runs/$id3/events" >"$RN_DIR/held-ev$i" &
	pids+=($!)
	curl -s -m 90 -X POST -H "Authorization: Bearer $RN_TOKEN" -H 'Idempotency-Key: held-1' -d "$held" \
		-o "$RN_DIR/held-w$i" -w '%{http_code}' "$RN_URL/v1/runs?wait=true" >"$RN_DIR/held-c$i" &
	pids+=($!)
done
rn_wait_phase "$id3" Running 60
sleep 2
threads=$(awk '/^Threads:/ {print $2}' /proc/$RN_SERVE_PID/status)
hz=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "$RN_URL/healthz")
[[ $hz == 200 && $threads -lt 24 ]] && tap_pass "24 waiting clients: /healthz answers, serve has $threads threads" ||
	tap_fail "waiting clients" "healthz=$hz threads=$threads"
for p in "${pids[@]}"; do wait "$p"; done
ok=0 ka=0
for i in $(seq 1 12); do
	[[ $(cat "$RN_DIR/held-c$i") == 200 && $(J 'd["phase"]' <"$RN_DIR/held-w$i") == Succeeded ]] &&
		grep -q '^event: result' "$RN_DIR/held-ev$i" && ok=$((ok + 1))
	grep -q '^: keep-alive$' "$RN_DIR/held-ev$i" && ka=$((ka + 1))
done
[[ $ok -eq 12 ]] && tap_pass "each of them gets the result (12 documents, 12 streams)" || tap_fail "waiting clients' results" "$ok of 12"
[[ $ka -eq 12 ]] && tap_pass "every quiet stream got a keep-alive" || tap_fail "keep-alive" "$ka of 12"

# ---- metrics, and nothing left ----
for _ in $(seq 1 300); do [[ $(rn_jobs) -eq 0 ]] && break; sleep 0.1; done
m=$(curl -s "$RN_URL/metrics")
echo "$m" | grep -q '^cifixer_runs_total{phase="Succeeded"} [1-9]' &&
	echo "$m" | grep -q '^cifixer_kube_requests_total{verb="POST",code="201"}' &&
	echo "$m" | grep -q '^cifixer_sandbox_start_seconds_count [1-9]' &&
	echo "$m" | grep -q '^cifixer_kube_connections_opened_total [1-9]' &&
	tap_pass "/metrics: runs by phase, start latency, API requests by verb and code, connections" || tap_fail "metrics"
[[ $(rn_jobs) -eq 0 ]] && tap_pass "no Job left" || tap_fail "jobs left" "$(rn_jobs)"
for _ in $(seq 1 300); do [[ $(rn_pods) -eq 0 ]] && break; sleep 0.1; done
[[ $(rn_pods) -eq 0 ]] && tap_pass "no pod left" || tap_fail "pods left"
tap_done
