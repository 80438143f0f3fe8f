#!/usr/bin/env bash
# `ci-fixer serve` as the chart installs it, against kubesim:
#  - only the rendered chart (values.yaml, release ci-fixer in namespace
#    default) is applied: no rbac/, so the Role it has is the chart's; the
#    sandbox Job settings are --set to values other than the service's
#    built-in defaults (TTL 123, UID/GID 4242/4243, requests/limits, workspace
#    size, default timeout, deadline grace), and so are the pod's placement
#    settings (imagePullPolicy Always, a sandbox ServiceAccount of another
#    name, nodeSelector, tolerations, affinity, gpu.enabled with 2 GPUs and
#    its own node label), so the Job can only carry them if they went
#    values -> config.json -> serve -> Job. kubesim does not schedule (its
#    one kubelet runs every pod), so the nodeSelector, tolerations and
#    affinity do not keep the pod from running there, and it has no device
#    plugin: the GPU limit is stored and admitted, not allocated. kubesim's
#    ServiceAccount admission does refuse a pod whose account does not
#    exist, so a Job naming the built-in ci-fixer-sandbox would fail;
#  - the service's identity is the chart's ServiceAccount ci-fixer-app: a
#    token from TokenRequest (`kubectl create token`), never admin;
#  - serve runs with the stored Deployment's args, its ConfigMap (config.json
#    as stored in kubesim) and token Secret laid out at their mount paths
#    under a local root; no --namespace, --owner or --image flag, so those
#    come from config.json (the built-in defaults differ: debian:bookworm-slim,
#    owner "default"); only the listen address and the kubeconfig are added;
#  - it becomes ready (its own RBAC self-check passes with the chart's Role),
#    completes a run in the restricted sandbox namespace, and the Job it
#    created carries the settings of the ConfigMap (config.json and
#    sandbox-job.json: namespace, owner, image, ServiceAccount, TTL,
#    deadline, UID/GID, requests and limits, workspace size, pull policy,
#    nodeSelector, tolerations, affinity, GPU limit and request), and is
#    still Pod Security restricted (the namespace enforces it);
#  - `ci-fixer verify-rbac` with the same token passes: everything a run
#    needs is allowed and none of the dangerous permissions is (least);
#  - no Job is left, and serve drains on SIGTERM.
# kubesim runs with --image-fail 'busybox:*' so the `helm test` hook Pod is
# admitted but does not run.
set -u
. "$(dirname "$0")/deploy_common.bash"
. "$ROOT/tests/lib/kubesim.sh"
deploy_need_tools
BIN=$ROOT/${BUILD:-build}/ci-fixer
[[ ${BUILD:-build} == /* ]] && BIN=$BUILD/ci-fixer
for t in kubectl curl; do
	if ! command -v $t >/dev/null 2>&1; then
		tap_skip "serve with the chart's objects" "$t not found"
		tap_done
		exit 0
	fi
done
if [[ ! -x $BIN ]]; then
	tap_skip "serve with the chart's objects" "$BIN not built"
	tap_done
	exit 0
fi
SETS=(--set sandbox.ttlSecondsAfterFinished=123 --set sandbox.runAsUser=4242 --set sandbox.runAsGroup=4243
	--set sandbox.resources.requests.cpu=100m --set sandbox.resources.requests.memory=200Mi
	--set sandbox.resources.limits.cpu=1500m --set sandbox.resources.limits.memory=1536Mi
	--set sandbox.workspaceSizeLimit=3Gi --set sandbox.defaultTimeoutSeconds=900
	--set sandbox.deadlineGraceSeconds=45 --set sandbox.maxResources.memory=6Gi)
# lists and keys with dots cannot be --set with helm-render: a values file
cat >"$TMP/placement.yaml" <<'EOF'
sandbox:
  imagePullPolicy: Always
  serviceAccount:
    create: true
    name: ci-sandbox-runner
  nodeSelector:
    ci-fixer.io/pool: sandbox
  tolerations:
    - {key: ci-fixer.io/dedicated, operator: Equal, value: sandbox, effect: NoSchedule}
    - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 30}
  affinity:
    nodeAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 50
          preference:
            matchExpressions:
              - {key: ci-fixer.io/pool, operator: In, values: [sandbox]}
gpu:
  enabled: true
  count: 2
  nodeSelector:
    nvidia.com/gpu.present: "true"
EOF
if ! deploy_render "$TMP/chart.yaml" -f "$CHART/values.yaml" -f "$TMP/placement.yaml" "${SETS[@]}"; then
	tap_fail "the chart renders (values.yaml)"
	tap_done
	exit 1
fi
if ! ks_start --image-fail 'busybox:*'; then
	tap_skip "serve with the chart's objects" "kubesim did not start (is ${BUILD:-build}/kubesim built?)"
	tap_done
	exit 0
fi
SERVE_PID= WATCH_PID=
cleanup() {
	[[ -n $WATCH_PID ]] && kill "$WATCH_PID" 2>/dev/null
	if [[ -n $SERVE_PID ]]; then
		kill -KILL "$SERVE_PID" 2>/dev/null
		wait "$SERVE_PID" 2>/dev/null
	fi
	ks_stop
	rm -rf "$TMP"
}
trap cleanup EXIT
J() { $PY -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# 1. the chart's objects, and only them
if kubectl apply -f "$TMP/chart.yaml" -o name >"$TMP/applied" 2>"$TMP/apply.err"; then
	tap_check "the rendered chart is applied and accepted" $PY "$LIB" applied "$TMP/chart.yaml" "$TMP/applied"
else
	cat "$TMP/apply.err" >&2
	tap_fail "the rendered chart is applied and accepted" "$(head -c 300 "$TMP/apply.err")"
	tap_done
	exit 1
fi
roles=$(kubectl get roles,rolebindings -n ci-sandbox -o jsonpath='{range .items[*]}{.kind}/{.metadata.name}/{.metadata.labels.app\.kubernetes\.io/managed-by}{" "}{end}')
echo "RBAC in ci-sandbox: $roles" >&2
tap_check "the sandbox namespace's only Role and RoleBinding are the chart's (managed-by Helm)" \
	test "$roles" = "Role/ci-fixer-sandbox-manager/Helm RoleBinding/ci-fixer-sandbox-binding/Helm "

# 2. the service's identity: TokenRequest for the chart's ServiceAccount
tap_check "TokenRequest for ServiceAccount default/ci-fixer-app" \
	ks_sa_kubeconfig "$TMP/app.kubeconfig" default ci-fixer-app
who=$(kubectl --kubeconfig "$TMP/app.kubeconfig" auth whoami -o jsonpath='{.status.userInfo.username}' 2>&1)
tap_check "the token authenticates as system:serviceaccount:default:ci-fixer-app" \
	test "$who" = system:serviceaccount:default:ci-fixer-app

# 3. the config file serve reads, from the ConfigMap as stored
kubectl get configmap ci-fixer-app-config -n default -o json >"$TMP/cm.json"
$PY -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["data"]["config.json"])' <"$TMP/cm.json" >"$TMP/config.json"
cat "$TMP/config.json" >&2
ns=$(J 'd["namespace"]' <"$TMP/config.json")
owner=$(J 'd["owner"]' <"$TMP/config.json")
tap_check "config.json names the restricted sandbox namespace ($ns) and the owner ($owner)" bash -c "
	[[ '$ns' == ci-sandbox && '$owner' == default.ci-fixer ]] &&
	[[ \$(kubectl get namespace '$ns' -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}') == restricted ]]"
tap_check "config.json carries the --set sandbox settings, not the built-in defaults" $PY -c '
import json,sys
d = json.load(open(sys.argv[1]))
want = {"ttl-seconds-after-finished": 123, "run-as-user": 4242, "run-as-group": 4243, "cpu-request": "100m",
        "memory-request": "200Mi", "cpu-limit": "1500m", "memory-limit": "1536Mi", "workspace-size-limit": "3Gi",
        "default-timeout": 900, "deadline-grace": 45, "max-timeout": 21660 - 45, "max-memory": "6Gi"}
bad = {k: (d.get(k), v) for k, v in want.items() if d.get(k) != v}
print("config.json differs:", bad, file=sys.stderr) if bad else None
sys.exit(1 if bad else 0)' "$TMP/config.json"
tap_check "config.json carries the placement values: pull policy, ServiceAccount, nodeSelector + gpu's, tolerations + gpu's, affinity, 2 GPUs" $PY -c '
import json,sys
d = json.load(open(sys.argv[1]))
want = {"image-pull-policy": "Always", "sandbox-service-account": "ci-sandbox-runner",
        "node-selector": {"ci-fixer.io/pool": "sandbox", "nvidia.com/gpu.present": "true"},
        "gpu-resource": "nvidia.com/gpu", "gpu-count": 2}
bad = {k: (d.get(k), v) for k, v in want.items() if d.get(k) != v}
keys = [t.get("key") for t in d.get("tolerations") or []]
if keys != ["ci-fixer.io/dedicated", "node.kubernetes.io/unreachable", "nvidia.com/gpu"]:
    bad["tolerations"] = keys
if list(d.get("affinity") or {}) != ["nodeAffinity"]:
    bad["affinity"] = d.get("affinity")
print("config.json differs:", bad, file=sys.stderr) if bad else None
sys.exit(1 if bad else 0)' "$TMP/config.json"

# 4. serve, as the Deployment runs it: the stored Deployment's args, its
# ConfigMap and token Secret volumes laid out under a local root (the API
# token Secret is created as docs/deploy.md tells operators to), plus a
# local listen address and the TokenRequest kubeconfig in place of the
# in-cluster account
printf 'api-%s\n' "$RANDOM$RANDOM$RANDOM" >"$TMP/api-token"
api_token=$(cat "$TMP/api-token")
secret=$(kubectl get deployment ci-fixer-app -n default \
	-o jsonpath='{.spec.template.spec.volumes[?(@.secret)].secret.secretName}')
kubectl create secret generic "$secret" -n default --from-file=token="$TMP/api-token" >&2
kubectl get deployment ci-fixer-app -n default -o json >"$TMP/deploy.json"
kubectl get secret "$secret" -n default -o json >"$TMP/secret.json"
mapfile -t args < <($PY "$LIB" pod-files "$TMP/deploy.json" "$TMP/root" "$TMP/cm.json" "$TMP/secret.json")
echo "pod command line: ci-fixer ${args[*]}" >&2
n=$(printf '%s\n' "${args[@]:1}" | grep -cE "^--(config|token-file|data-dir)=$TMP/root/")
tap_check "the Deployment's args: serve, then --config, --token-file, --data-dir under its volume mounts" \
	test "${args[0]:-}:$n" = serve:3
tap_check "config.json at the ConfigMap volume's mount path is the stored one" \
	cmp "$TMP/root/etc/ci-fixer/config.json" "$TMP/config.json"
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$port
"$BIN" "${args[@]}" --listen "127.0.0.1:$port" --kubeconfig "$TMP/app.kubeconfig" 2>"$TMP/serve.log" &
SERVE_PID=$!
ready=
for _ in $(seq 1 600); do
	kill -0 "$SERVE_PID" 2>/dev/null || break
	if [[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz") == 200 ]]; then
		ready=1
		break
	fi
	sleep 0.2
done
if [[ -n $ready ]]; then
	tap_pass "serve with the chart's config.json and token becomes ready (its RBAC self-check passed)"
else
	cat "$TMP/serve.log" >&2
	tap_fail "serve with the chart's config.json and token becomes ready" "$(tail -c 400 "$TMP/serve.log")"
	tap_done
	exit 1
fi
tap_check "serve's log: listening for namespace $ns, owner $owner (from config.json)" \
	grep -qE "\"listening\".*\"namespace\":\"$ns\".*\"owner\":\"$owner\"" "$TMP/serve.log"

# 5. a run; the Job is watched from before the run (resourceVersion), as admin
rv=$(kubectl get --raw "/apis/batch/v1/namespaces/$ns/jobs" | J 'd["metadata"]["resourceVersion"]')
curl -sN --cacert "$KS_CA" -H "Authorization: Bearer $KS_TOKEN" \
	"$KS_URL/apis/batch/v1/namespaces/$ns/jobs?watch=1&resourceVersion=$rv" >"$TMP/watch.json" 2>/dev/null &
WATCH_PID=$!
curl -s --max-time 300 -X POST -H "Authorization: Bearer $api_token" -H 'Content-Type: application/json' \
	-d '{"commands":[{"argv":["sh","-c","echo from-sandbox; echo to-stderr >&2; exit 0"]},{"shell":"exit 3","continueOnError":true}]}' \
	-o "$TMP/run.json" -w '%{http_code}' "$URL/v1/runs?wait=true" >"$TMP/code"
head -c 3000 "$TMP/run.json" >&2
echo >&2
tap_check "POST /v1/runs?wait=true answers 200" test "$(cat "$TMP/code")" = 200
tap_check "the run Succeeded: exit codes 0 and 3, the output of the sandbox" bash -c "
	[[ \$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d[\"phase\"], [c[\"exitCode\"] for c in d[\"commands\"]], repr(d[\"commands\"][0][\"stdout\"]), repr(d[\"commands\"][0][\"stderr\"]))' '$TMP/run.json') == \"Succeeded [0, 3] 'from-sandbox\\\\n' 'to-stderr\\\\n'\" ]]"
job_ns=$(J 'd["job"]["namespace"]' <"$TMP/run.json" 2>/dev/null)
tap_check "the run's Job was in $ns" test "$job_ns" = "$ns"
sleep 1
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null
WATCH_PID=
tap_check "the Job carries the ConfigMap's settings (config.json, sandbox-job.json)" \
	$PY "$LIB" job-settings "$TMP/watch.json" "$TMP/cm.json"
tap_check "the Job's pod template carries the placement values: pull policy Always, ServiceAccount ci-sandbox-runner, nodeSelector, 3 tolerations, affinity, 2 GPUs (limit = request)" $PY -c '
import json,sys
sys.path.insert(0, sys.argv[2])
from deploy_lib import json_stream
objs = [o.get("object", o) for o in json_stream(open(sys.argv[1]).read())]
j = [o for o in objs if o.get("kind") == "Job"][0]
p = j["spec"]["template"]["spec"]; c = p["containers"][0]; r = c["resources"]
got = (c.get("imagePullPolicy"), p.get("serviceAccountName"), p.get("automountServiceAccountToken"),
       p.get("nodeSelector"), [(t.get("key"), t.get("operator"), t.get("effect"), t.get("tolerationSeconds"))
                               for t in p.get("tolerations") or []],
       sorted(p.get("affinity") or {}), r["limits"].get("nvidia.com/gpu"), r["requests"].get("nvidia.com/gpu"))
want = ("Always", "ci-sandbox-runner", False,
        {"ci-fixer.io/pool": "sandbox", "nvidia.com/gpu.present": "true"},
        [("ci-fixer.io/dedicated", "Equal", "NoSchedule", None), ("node.kubernetes.io/unreachable", "Exists", "NoExecute", 30),
         ("nvidia.com/gpu", "Exists", "NoSchedule", None)],
        ["nodeAffinity"], "2", "2")
print("Job pod:", got, file=sys.stderr)
sys.exit(0 if got == want else 1)' "$TMP/watch.json" "$ROOT/tests/integration"
tap_check "the sandbox quota holds requests.nvidia.com/gpu = gpu.count x its pods (40)" bash -c "
	[[ \$(kubectl get resourcequota -n '$ns' -o jsonpath='{.items[0].spec.hard.requests\\.nvidia\\.com/gpu}') == 40 ]]"
tap_check "the Job carries the non-default values: TTL 123, UID 4242, memory limit 1536Mi, deadline 945" $PY -c '
import json,sys
sys.path.insert(0, sys.argv[2])
from deploy_lib import json_stream
objs = [o.get("object", o) for o in json_stream(open(sys.argv[1]).read())]
j = [o for o in objs if o.get("kind") == "Job"][0]
p = j["spec"]["template"]["spec"]; c = p["containers"][0]
uid = (c.get("securityContext") or {}).get("runAsUser", (p.get("securityContext") or {}).get("runAsUser"))
got = (j["spec"].get("ttlSecondsAfterFinished"), uid, c["resources"]["limits"].get("memory"), j["spec"].get("activeDeadlineSeconds"))
print("Job:", got, file=sys.stderr)
sys.exit(0 if got == (123, 4242, "1536Mi", 945) else 1)' "$TMP/watch.json" "$ROOT/tests/integration"

# 6. least privilege, seen by the service's own check with the same token
"$BIN" verify-rbac --kubeconfig "$TMP/app.kubeconfig" --namespace "$ns" >"$TMP/vr.out" 2>&1
rc=$?
cat "$TMP/vr.out" >&2
tap_check "ci-fixer verify-rbac with the chart's token passes (exit $rc)" test $rc -eq 0
tap_check "ci-fixer verify-rbac: create jobs and pods/exec allowed; secrets, nodes, impersonate, * denied" bash -c "
	grep -qE '^ok +allow +create +jobs.batch +$ns' '$TMP/vr.out' &&
	grep -qE '^ok +allow +create +pods/exec +$ns' '$TMP/vr.out' &&
	grep -qE '^ok +deny +list +secrets +$ns' '$TMP/vr.out' && grep -qE '^ok +deny +get +nodes ' '$TMP/vr.out' &&
	grep -qE '^ok +deny +impersonate +users ' '$TMP/vr.out' && grep -qE '^ok +deny +\\* +\\*' '$TMP/vr.out' &&
	! grep -qE '^FAIL' '$TMP/vr.out'"
app_can() { kubectl --kubeconfig "$TMP/app.kubeconfig" auth can-i "$@" 2>/dev/null; }
tap_check "with the chart's token itself: can-i create jobs -n $ns yes, delete nodes no" \
	test "$(app_can create jobs -n "$ns") $(app_can delete nodes)" = "yes no"

# 7. nothing left; SIGTERM drains
left=1
for _ in $(seq 1 150); do
	left=$(kubectl get jobs -n "$ns" -l app.kubernetes.io/managed-by=ci-fixer -o name | wc -l)
	[[ $left -eq 0 ]] && break
	sleep 0.2
done
tap_check "no sandbox Job is left in $ns" test "$left" -eq 0
kill -TERM "$SERVE_PID"
rc=
for _ in $(seq 1 300); do
	if ! kill -0 "$SERVE_PID" 2>/dev/null; then
		wait "$SERVE_PID"
		rc=$?
		break
	fi
	sleep 0.1
done
[[ -n $rc ]] && SERVE_PID=
tap_check "serve exits 0 on SIGTERM" test "${rc:-none}" = 0
tail -n 20 "$TMP/serve.log" >&2
tap_done
