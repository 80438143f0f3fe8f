#!/usr/bin/env bash
# kubesim answers bad input with the upstream Status (or close code) and
# keeps serving: malformed JSON, unknown resources, invalid names, a
# 64-character Job name, wrong Content-Type, oversized bodies, bad
# selectors, bad patches, unsupported exec subprotocols, bad WebSocket
# frames on an exec stream (kubesim_ws/badframe.py), a watch from an
# expired resourceVersion, unauthenticated and forbidden requests.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/kubesim.sh"

if ! command -v curl >/dev/null; then
	tap_skip "bad input checks" "curl not found"
	tap_done; exit
fi
if ! ks_start --watch-history 64; then
	tap_fail "kubesim starts"
	tap_done; exit 1
fi
tap_pass "kubesim starts"

# req NAME WANT_CODE WANT_BODY_REGEX CURL_ARGS...: one request, checks code and body
req() {
	local name=$1 code=$2 re=$3; shift 3
	local out body got
	out=$(ks_curl -w '\n%{http_code}' "$@" 2>&1)
	got=${out##*$'\n'}
	body=${out%$'\n'*}
	if [[ $got == "$code" ]] && grep -qE -- "$re" <<<"$body"; then
		tap_pass "$name"
	else
		tap_fail "$name" "want $code /$re/, got $got: $body"
	fi
}

J='-H Content-Type:application/json'
ns=$KS_URL/api/v1/namespaces/default
jobs=$KS_URL/apis/batch/v1/namespaces/default/jobs

req "malformed JSON: 400 BadRequest" 400 '"reason":"BadRequest"' -X POST $J -d '{"kind":"Pod",' "$ns/pods"
req "JSON array body: 400" 400 '"reason":"BadRequest"' -X POST $J -d '[1,2]' "$ns/pods"
req "missing kind: 400" 400 "Object 'Kind' is missing" -X POST $J -d '{"apiVersion":"v1","metadata":{"name":"x"}}' "$ns/pods"
req "unknown resource: 404 NotFound" 404 '"message":"the server could not find the requested resource"' "$ns/widgets"
req "unknown group: 404" 404 '"reason":"NotFound"' "$KS_URL/apis/example.com/v1/widgets"
req "missing object: 404 with details" 404 '"message":"pods \\"nope\\" not found".*"details":\{"name":"nope","kind":"pods"\}' "$ns/pods/nope"
req "missing namespace: 404" 404 'namespaces \\"nope\\" not found' -X POST $J \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}' "$KS_URL/api/v1/namespaces/nope/configmaps"
req "invalid name: 422 Invalid with a field cause" 422 '"reason":"Invalid".*"field":"metadata.name"' -X POST $J \
	-d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}' "$ns/configmaps"
long=$(printf 'a%.0s' $(seq 64))
req "64-character Job name: 422 must be no more than 63 characters" 422 "must be no more than 63 characters" -X POST $J \
	-d '{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"'$long'"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}' "$jobs"
req "Job restartPolicy Always: 422 Unsupported value" 422 'spec.template.spec.restartPolicy: Unsupported value: \\"Always\\"' -X POST $J \
	-d '{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"rp"},"spec":{"template":{"spec":{"restartPolicy":"Always","containers":[{"name":"c","image":"busybox"}]}}}}' "$jobs"
req "pod without containers: 422 Required value" 422 'spec.containers: Required value' -X POST $J \
	-d '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{}}' "$ns/pods"
req "unknown field under Strict: 400 strict decoding error" 400 'strict decoding error: unknown field \\"spec.bogus\\"' -X POST $J \
	-d '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"bogus":1,"containers":[{"name":"c","image":"busybox"}]}}' "$ns/pods?fieldValidation=Strict"
req "wrong Content-Type: 415" 415 '"reason":"UnsupportedMediaType"' -X POST -H 'Content-Type: text/plain' -d 'hello' "$ns/configmaps"
req "patch with a non-patch Content-Type: 415" 415 'json-patch\+json' -X PATCH $J -d '{}' "$ns/serviceaccounts/default"
head -c $((4 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$KS_DIR/big"
req "oversized body: 413 RequestEntityTooLarge" 413 '"reason":"RequestEntityTooLarge"' -X POST $J --data-binary @"$KS_DIR/big" "$ns/configmaps"
req "bad label selector: 400" 400 '"reason":"BadRequest"' "$ns/pods?labelSelector=a%20in%20(b"
req "unsupported field selector: 400 field label not supported" 400 'field label not supported: spec.bogus' "$ns/pods?fieldSelector=spec.bogus%3Dx"
req "bad JSON patch: 400" 400 '"reason":"BadRequest"' -X PATCH -H 'Content-Type: application/json-patch+json' \
	-d '[{"op":"explode","path":"/x"}]' "$ns/serviceaccounts/default"
req "conflicting update: 409 Conflict" 409 '"reason":"Conflict"' -X PUT $J \
	-d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default","resourceVersion":"1"}}' "$ns/serviceaccounts/default"
req "duplicate create: 409 AlreadyExists" 409 '"reason":"AlreadyExists"' -X POST $J \
	-d '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}' "$ns/serviceaccounts"
out=$(curl -sS --cacert "$KS_CA" -w '\n%{http_code}' "$ns/pods")
if [[ ${out##*$'\n'} == 403 ]] && grep -qF 'User \"system:anonymous\" cannot list resource \"pods\"' <<<"$out"; then
	tap_pass "no credentials: 403 for system:anonymous"
else
	tap_fail "no credentials: 403 for system:anonymous" "$out"
fi
out=$(curl -sS --cacert "$KS_CA" -w '\n%{http_code}' -H 'Authorization: Bearer nope' "$ns/pods")
if [[ ${out##*$'\n'} == 401 ]] && grep -q '"reason":"Unauthorized"' <<<"$out"; then tap_pass "bad token: 401 Unauthorized"; else tap_fail "bad token: 401 Unauthorized" "$out"; fi

# exec with an unsupported subprotocol: a bare 403 (golang.org/x/net/websocket)
out=$(ks_curl -o /dev/null -w '%{http_code}' --http1.1 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
	-H 'Sec-WebSocket-Protocol: v9.channel.k8s.io' "$ns/pods/nope/exec?command=true&stdout=1")
if [[ $out == 403 ]]; then tap_pass "exec with an unsupported subprotocol: 403"; else tap_fail "exec with an unsupported subprotocol: 403" "got $out"; fi
req "exec on a missing pod: 404" 404 'pods \\"nope\\" not found' --http1.1 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
	-H 'Sec-WebSocket-Protocol: v5.channel.k8s.io' "$ns/pods/nope/exec?command=true&stdout=1"

# watch from an expired resourceVersion (history of 64 events): 200 with one ERROR 410 event
for i in $(seq 80); do
	ks_curl -o /dev/null -X POST $J -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"churn-"}}' "$ns/configmaps"
done
out=$(ks_curl -m 10 "$ns/configmaps?watch=1&resourceVersion=2")
if grep -q '"type":"ERROR".*"reason":"Expired","code":410' <<<"$out"; then tap_pass "watch from an expired resourceVersion: ERROR 410 Expired"; else tap_fail "watch from an expired resourceVersion: ERROR 410 Expired" "$out"; fi
rv=$(ks_curl "$ns/configmaps" | sed -n 's/.*"metadata":{"resourceVersion":"\([0-9]*\)".*/\1/p' | head -1)
( sleep 1; ks_curl -o /dev/null -X POST $J -d '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"after-watch"}}' "$ns/configmaps" ) &
writer=$!
out=$(ks_curl -m 10 "$ns/configmaps?watch=1&resourceVersion=$rv&timeoutSeconds=3")
wait "$writer"
if grep -q '"type":"ADDED","object":{.*"name":"after-watch"' <<<"$out"; then tap_pass "watch from a list's resourceVersion sees the next change and ends at timeoutSeconds"; else tap_fail "watch from a list's resourceVersion sees the next change" "$out"; fi

# bad WebSocket frames on a live exec stream: close 1002 (RFC 6455 7.4.1),
# as upstream's wsstream (gorilla/websocket) answers protocol errors
if command -v python3 >/dev/null; then
	ks_curl -o /dev/null -X POST $J -d '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"frames"},"spec":{"containers":[{"name":"main","image":"busybox","command":["sleep","3600"]}]}}' "$ns/pods"
	for ((i = 0; i < 150; i++)); do
		ks_curl "$ns/pods/frames" | grep -q '"phase":"Running"' && break
		sleep 0.2
	done
	for c in unmasked reserved bigping rsv; do
		out=$(timeout 30 python3 "$here/kubesim_ws/badframe.py" "$KS_URL" "$KS_CA" "$KS_TOKEN" default frames "$c" 2>&1)
		if [[ $out == "close 1002" ]]; then tap_pass "bad WebSocket frame ($c): close 1002"; else tap_fail "bad WebSocket frame ($c): close 1002" "$out"; fi
	done
else
	tap_skip "bad WebSocket frames" "python3 not found"
fi

# and after all of that, it still serves
req "still serving after bad input" 200 '"kind":"NamespaceList"' "$KS_URL/api/v1/namespaces"
tap_done
