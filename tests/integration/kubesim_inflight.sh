#!/usr/bin/env bash
# kubesim's max-in-flight limits (--max-requests-inflight,
# --max-mutating-requests-inflight; docs/kubesim.md), as kube-apiserver's
# filter (staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go):
# past the limit a request is answered at once with 429, Retry-After: 1 and
# upstream's plain-text body; read-only and mutating requests are counted
# apart; long-running requests (watch, exec, log) and system:masters are
# never refused; the slot comes back when the request ends; /metrics counts
# the refusals (apiserver_dropped_requests_total).
#
# A slot is held by a request that kubesim keeps for 4 s (a delay fault,
# which runs inside the limit as a slow handler would). The requests are
# made as a ServiceAccount through impersonation (the admin token belongs
# to system:masters, which the filter lets through): the filter runs
# before authorization, so a request it lets through is answered 403, one
# it refuses 429.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/kubesim.sh"

if ! command -v curl >/dev/null; then
	tap_skip "max-in-flight checks" "curl not found"
	tap_done; exit
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kubesim-inflight.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

d=/api/v1/namespaces/default
spec="POST $d/configmaps:delay=4000@first=1;GET $d/secrets:delay=4000@first=1"
if ! ks_start --max-requests-inflight 1 --max-mutating-requests-inflight 1 --faults "$spec"; then
	tap_fail "kubesim starts with --max-requests-inflight 1 --max-mutating-requests-inflight 1"
	tap_done; exit 1
fi
tap_pass "kubesim starts with --max-requests-inflight 1 --max-mutating-requests-inflight 1"
trap 'ks_stop; rm -rf "$tmp"' EXIT

SA=(-H 'Impersonate-User: system:serviceaccount:default:default')
J=(-H 'Content-Type: application/json')
cm() { printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"}}' "$1"; }
# code_of ARGS...: the HTTP code (000 when there was no answer)
code_of() { ks_curl -m 30 -o /dev/null -w '%{http_code}' "$@" 2>/dev/null; }
# wait_inflight KIND N: until /metrics shows N requests of KIND in flight
wait_inflight() {
	local i
	for ((i = 0; i < 50; i++)); do
		ks_metric "apiserver_current_inflight_requests\\{request_kind=\"$1\"\\} $2\$" >/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# hold the only mutating slot for 4 s
t0=$(date +%s%N)
code_of "${SA[@]}" "${J[@]}" -X POST -d "$(cm held)" "$KS_URL$d/configmaps" >"$tmp/held" &
held=$!
if wait_inflight mutating 1; then
	tap_pass "a slow mutating request holds the mutating slot"
else
	tap_fail "a slow mutating request holds the mutating slot" "$(ks_metric inflight)"
fi

# the next mutating request: 429 at once, Retry-After: 1, plain text
t1=$(date +%s%N)
out=$(ks_curl -m 30 -D "$tmp/h" "${SA[@]}" "${J[@]}" -X POST -d "$(cm second)" "$KS_URL$d/configmaps")
ms=$(( ($(date +%s%N) - t1) / 1000000 ))
if grep -q '^HTTP/1.1 429' "$tmp/h" && grep -qi '^retry-after: 1' "$tmp/h" &&
	grep -qi '^content-type: text/plain' "$tmp/h" && [[ $out == "Too many requests, please try again later." ]]; then
	tap_pass "past the mutating limit: 429, Retry-After: 1 and upstream's text, after $ms ms"
else
	tap_fail "past the mutating limit: 429, Retry-After: 1 and upstream's text" "$(cat "$tmp/h") $out"
fi
if [[ $ms -lt 2000 ]]; then
	tap_pass "the refusal does not wait for the slot ($ms ms)"
else
	tap_fail "the refusal does not wait for the slot" "$ms ms"
fi

# read-only requests have their own counter; system:masters is never refused
c=$(code_of "${SA[@]}" "$KS_URL$d/configmaps")
if [[ $c == 403 ]]; then tap_pass "a read-only request is not counted against the mutating limit"; else tap_fail "a read-only request is not counted against the mutating limit" "got $c"; fi
c=$(code_of "${J[@]}" -X POST -d "$(cm admin)" "$KS_URL$d/configmaps")
if [[ $c == 201 ]]; then tap_pass "system:masters passes a full mutating limit"; else tap_fail "system:masters passes a full mutating limit" "got $c"; fi

# hold the only read-only slot too
code_of "${SA[@]}" "$KS_URL$d/secrets" >"$tmp/held2" &
held2=$!
if wait_inflight readOnly 1; then
	tap_pass "a slow read-only request holds the read-only slot"
else
	tap_fail "a slow read-only request holds the read-only slot" "$(ks_metric inflight)"
fi
c=$(code_of "${SA[@]}" "$KS_URL$d/configmaps")
if [[ $c == 429 ]]; then tap_pass "past the read-only limit: a list is refused with 429"; else tap_fail "past the read-only limit: a list is refused with 429" "got $c"; fi
c=$(code_of "${SA[@]}" "$KS_URL$d/configmaps/x")
if [[ $c == 429 ]]; then tap_pass "past the read-only limit: a get is refused with 429"; else tap_fail "past the read-only limit: a get is refused with 429" "got $c"; fi

# long-running requests are exempt, with both limits full
c=$(code_of "${SA[@]}" "$KS_URL$d/pods?watch=1&timeoutSeconds=1")
if [[ $c == 403 ]]; then tap_pass "a watch is not limited"; else tap_fail "a watch is not limited" "got $c"; fi
c=$(code_of "${SA[@]}" "$KS_URL$d/pods/p/log?follow=true")
if [[ $c == 403 ]]; then tap_pass "pods/log is not limited"; else tap_fail "pods/log is not limited" "got $c"; fi
c=$(code_of "${SA[@]}" -X POST "$KS_URL$d/pods/p/exec?command=true&stdout=true")
if [[ $c == 403 ]]; then tap_pass "pods/exec is not limited"; else tap_fail "pods/exec is not limited" "got $c"; fi

# the slots come back when the slow requests end
wait "$held" "$held2"
c1=$(cat "$tmp/held") c2=$(cat "$tmp/held2")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [[ $c1 == 403 && $c2 == 403 && $ms -ge 4000 ]]; then
	tap_pass "the slow requests were served in full (403: authorization comes after the filter)"
else
	tap_fail "the slow requests were served in full" "$c1 $c2 after $ms ms"
fi
c=$(code_of "${SA[@]}" "${J[@]}" -X POST -d "$(cm third)" "$KS_URL$d/configmaps")
c2=$(code_of "${SA[@]}" "$KS_URL$d/configmaps")
if [[ $c == 403 && $c2 == 403 ]]; then tap_pass "the slots are free again once the slow requests ended"; else tap_fail "the slots are free again once the slow requests ended" "POST $c, GET $c2"; fi

# the refusals are counted as upstream counts them
if ks_metric 'apiserver_dropped_requests_total\{request_kind="mutating"\} 1$' >/dev/null &&
	ks_metric 'apiserver_dropped_requests_total\{request_kind="readOnly"\} 2$' >/dev/null &&
	ks_metric 'apiserver_request_total\{code="429",.*resource="configmaps".*verb="POST"' >/dev/null; then
	tap_pass "/metrics: apiserver_dropped_requests_total 1 mutating, 2 read-only; the 429s in apiserver_request_total"
else
	tap_fail "/metrics counts the refusals" "$(ks_metric 'dropped|code="429"')"
fi
ks_stop

# 0 turns a limit off, as upstream: 20 concurrent slow creates all pass
if ! ks_start --max-mutating-requests-inflight 0 --faults "POST $d/configmaps:delay=1000"; then
	tap_fail "kubesim starts with --max-mutating-requests-inflight 0"
	tap_done; exit 1
fi
pids=()
for i in $(seq 20); do
	{ code_of "${SA[@]}" "${J[@]}" -X POST -d "$(cm "c$i")" "$KS_URL$d/configmaps"; echo; } >"$tmp/c$i" &
	pids+=($!)
done
wait "${pids[@]}"
codes=$(cat "$tmp"/c* | sort | uniq -c | tr -s ' ' | tr '\n' ';' | sed 's/^ //')
if ! grep -q 429 "$tmp"/c*; then
	tap_pass "--max-mutating-requests-inflight 0: no limit ($codes)"
else
	tap_fail "--max-mutating-requests-inflight 0: no limit" "$codes"
fi
tap_done
