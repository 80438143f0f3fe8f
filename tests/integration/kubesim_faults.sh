#!/usr/bin/env bash
# kubesim's fault injection (--faults SPEC --seed N, docs/kubesim.md):
# each action (status with JSON or plain text and Retry-After, delay, drop,
# watch-cut, watch-gone, exec-cut), each trigger (first, every, p), the
# request accounting that counts them, a seeded replay, and a bad SPEC
# refused at start.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/kubesim.sh"

if ! command -v curl >/dev/null; then
	tap_skip "fault checks" "curl not found"
	tap_done; exit
fi

root=$(cd "$here/../.." && pwd)
build=${BUILD:-build}
[[ $build == /* ]] || build=$root/$build

# a bad SPEC: exit 2 naming the rule, nothing served
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kubesim-faults.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
timeout 20 "$build/kubesim" --listen 127.0.0.1:0 --data-dir "$tmp/d" --faults 'GET /x:explode' >/dev/null 2>"$tmp/err"
rc=$?
if [[ $rc -ne 0 && ! -e $tmp/d/ready ]] && grep -q 'explode' "$tmp/err"; then
	tap_pass "a bad --faults SPEC is refused at start, naming the rule"
else
	tap_fail "a bad --faults SPEC is refused at start, naming the rule" "rc=$rc: $(cat "$tmp/err")"
fi

d=/api/v1/namespaces/default
spec="GET $d/configmaps:status=429,retry=3@first=2"
spec+=";GET $d/secrets:status=429,text@every=2"
spec+=";GET $d/services:drop@first=1"
spec+=";GET $d/serviceaccounts:delay=1500@first=1"
spec+=";POST $d/configmaps:delay=2000@first=1"
spec+=";watch $d/pods:watch-cut=1"
spec+=";watch /api/v1/namespaces/kube-system/configmaps:watch-gone=1"
spec+=";exec $d/pods/*/exec:exec-cut=100@first=1"
spec+=";GET $d/events:status=503@p=0.5"
if ! ks_start --seed 7 --faults "$spec"; then
	tap_fail "kubesim starts with --faults"
	tap_done; exit 1
fi
tap_pass "kubesim starts with --faults"
trap 'ks_stop; rm -rf "$tmp"' EXIT

# code_of ARGS...: the HTTP code (000 when there was no answer)
code_of() { ks_curl -o /dev/null -w '%{http_code}' "$@" 2>/dev/null; }

# status=429,retry=3@first=2: a JSON Status with Retry-After, twice, then served
out=$(ks_curl -D "$tmp/h1" "$KS_URL$d/configmaps")
if grep -qi '^retry-after: 3' "$tmp/h1" && grep -q '"reason":"TooManyRequests"' <<<"$out" && grep -q '"code":429' <<<"$out"; then
	tap_pass "status=429,retry=3: a JSON Status TooManyRequests with Retry-After: 3"
else
	tap_fail "status=429,retry=3: a JSON Status TooManyRequests with Retry-After: 3" "$(cat "$tmp/h1") $out"
fi
c2=$(code_of "$KS_URL$d/configmaps"); c3=$(code_of "$KS_URL$d/configmaps")
if [[ $c2 == 429 && $c3 == 200 ]]; then tap_pass "@first=2: the first two requests fail, the third is served"; else tap_fail "@first=2: the first two requests fail, the third is served" "$c2 $c3"; fi

# status=429,text@every=2: plain text on the 2nd, 4th...
c1=$(code_of "$KS_URL$d/secrets")
out=$(ks_curl -D "$tmp/h2" "$KS_URL$d/secrets")
c3=$(code_of "$KS_URL$d/secrets"); c4=$(code_of "$KS_URL$d/secrets")
if [[ $c1 == 200 && $c3 == 200 && $c4 == 429 ]] && grep -q '^HTTP/1.1 429' "$tmp/h2" && grep -qi '^content-type: text/plain' "$tmp/h2" && ! grep -q '"kind":"Status"' <<<"$out"; then
	tap_pass "status=429,text@every=2: every second request gets a plain-text 429"
else
	tap_fail "status=429,text@every=2: every second request gets a plain-text 429" "$c1 $c3 $c4 $(cat "$tmp/h2") $out"
fi

# drop: no answer at all, then served
ks_curl -o /dev/null "$KS_URL$d/services" 2>/dev/null
rc=$?
c2=$(code_of "$KS_URL$d/services")
if [[ $rc -eq 52 || $rc -eq 56 || $rc -eq 35 ]] && [[ $c2 == 200 ]]; then
	tap_pass "drop: the connection ends without an answer (curl exit $rc), the next request is served"
else
	tap_fail "drop: the connection ends without an answer, the next request is served" "curl exit $rc, then $c2"
fi

# delay=1500: at least 1.5 s added (a lower bound: load cannot make it pass wrongly)
t0=$(date +%s%N)
c1=$(code_of "$KS_URL$d/serviceaccounts")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [[ $c1 == 200 && $ms -ge 1500 ]]; then tap_pass "delay=1500: answered after ${ms} ms"; else tap_fail "delay=1500: answered after at least 1500 ms" "$c1 after $ms ms"; fi

# a create whose client gave up while it waited is not carried out, as
# kube-apiserver's cancelled request context fails the storage write
ks_curl -o /dev/null --max-time 0.5 -X POST -H Content-Type:application/json \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"late"}}' "$KS_URL$d/configmaps"
rc=$?
sleep 2.5
c1=$(code_of "$KS_URL$d/configmaps/late")
ks_curl -o /dev/null -X POST -H Content-Type:application/json \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"late"}}' "$KS_URL$d/configmaps"
c2=$(code_of "$KS_URL$d/configmaps/late")
if [[ $rc -eq 28 && $c1 == 404 && $c2 == 200 ]]; then
	tap_pass "a create abandoned by its client while delayed is not carried out; the retry is"
else
	tap_fail "a create abandoned by its client while delayed is not carried out" "curl exit $rc, then $c1, after the retry $c2"
fi

# watch-cut=1: a watch ends after one event
J='-H Content-Type:application/json'
for n in a b; do
	ks_curl -o /dev/null -X POST $J -d "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"w$n\"},\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"busybox\",\"command\":[\"sleep\",\"3600\"]}]}}" "$KS_URL$d/pods"
	ks_curl -o /dev/null -X POST $J -d "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"w$n\"}}" "$KS_URL/api/v1/namespaces/kube-system/configmaps"
done
out=$(ks_curl -m 20 "$KS_URL$d/pods?watch=1&resourceVersion=0")
rc=$?
if [[ $rc -eq 0 && $(grep -c '"type":' <<<"$out") -eq 1 ]] && grep -q '"type":"ADDED"' <<<"$out"; then
	tap_pass "watch-cut=1: the watch ends after one event"
else
	tap_fail "watch-cut=1: the watch ends after one event" "curl exit $rc: $out"
fi

# watch-gone=1: one event, then ERROR 410 Expired
out=$(ks_curl -m 20 "$KS_URL/api/v1/namespaces/kube-system/configmaps?watch=1&resourceVersion=0")
if [[ $(grep -c '"type":' <<<"$out") -eq 2 ]] && grep -q '"type":"ERROR".*"code":410' <<<"$out"; then
	tap_pass "watch-gone=1: one event, then ERROR 410 Expired"
else
	tap_fail "watch-gone=1: one event, then ERROR 410 Expired" "$out"
fi

# exec-cut=100@first=1 with kubectl (WebSocket: 1.30+)
K=kubectl
if command -v "$K" >/dev/null && [[ $("$K" version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -1) -ge 30 ]]; then
	for ((i = 0; i < 150; i++)); do
		"$K" get pod wa -o jsonpath='{.status.phase}' 2>/dev/null | grep -q Running && break
		sleep 0.2
	done
	n1=$("$K" exec wa -- head -c 100000 /dev/zero 2>/dev/null | wc -c)
	n2=$("$K" exec wa -- head -c 100000 /dev/zero 2>/dev/null | wc -c)
	# (kubectl's exit status says nothing here: client-go takes a stream
	# that ends without a status for success)
	if [[ $n1 -le 100 && $n2 -eq 100000 ]]; then
		tap_pass "exec-cut=100@first=1: the first stream is cut after at most 100 bytes, the next is whole"
	else
		tap_fail "exec-cut=100@first=1: the first stream is cut, the next is whole" "first: $n1 bytes; second: $n2 bytes"
	fi
else
	tap_skip "exec-cut" "no kubectl 1.30+ (exec needs WebSocket)"
fi

# the faults are counted like any answer
if ks_metric 'apiserver_request_total\{code="429",.*resource="configmaps".*\} 2$' >/dev/null; then
	tap_pass "/metrics counts the two injected 429s for configmaps"
else
	tap_fail "/metrics counts the two injected 429s for configmaps" "$(ks_metric 'resource="configmaps"')"
fi

# p=0.5 with --seed 7: the same sequence after a restart with the same seed
seq1=""
for i in $(seq 24); do seq1+="$(code_of "$KS_URL$d/events") "; done
ks_stop
if ! ks_start --seed 7 --faults "$spec"; then
	tap_fail "kubesim restarts with the same seed"
	tap_done; exit 1
fi
trap 'ks_stop; rm -rf "$tmp"' EXIT
seq2=""
for i in $(seq 24); do seq2+="$(code_of "$KS_URL$d/events") "; done
if [[ $seq1 == "$seq2" && $seq1 == *200* && $seq1 == *503* ]]; then
	tap_pass "p=0.5, same seed: the same answers in the same order (replay)"
else
	tap_fail "p=0.5, same seed: the same answers in the same order (replay)" "1st: $seq1 / 2nd: $seq2"
fi
tap_done
