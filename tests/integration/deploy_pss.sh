#!/usr/bin/env bash
# Every rendered workload (chart with values.yaml and values-prod.yaml, and
# the plain manifests of k8s-manifests/) satisfies Pod Security "restricted"
# and the conventions beyond it (read-only root filesystem, UID >= 10000,
# pinned image), and each container has cpu/memory requests and limits;
# long-running workloads have liveness, readiness and startup probes. The
# `helm test` hook pod is checked for all but probes (it runs once and exits).
# The checker is shown to fail on bad pods, so the checks can fail.
set -u
. "$(dirname "$0")/deploy_common.bash"
deploy_need_tools

flags=$(deploy_serve_flags)
for v in values.yaml values-prod.yaml; do
	if deploy_render "$TMP/$v" -f "$CHART/$v"; then
		tap_check "chart ($v): every workload is restricted, with requests, limits and probes" \
			$PY "$LIB" pss "$TMP/$v"
		tap_check "chart ($v): sandbox Job settings in the ConfigMap are restricted-compatible" \
			$PY "$LIB" sandbox-config "$TMP/$v" "$flags"
	else
		tap_fail "chart ($v): every workload is restricted, with requests, limits and probes" "render failed"
		tap_fail "chart ($v): sandbox Job settings in the ConfigMap are restricted-compatible" "render failed"
	fi
done
tap_check "chart: the Deployment and the test pod are the workloads checked" bash -c \
	"$PY '$LIB' objects '$TMP/values.yaml' | grep -cE '^(Deployment|Pod) ' | grep -qx 2"

if command -v kubectl >/dev/null 2>&1; then
	if kubectl kustomize "$ROOT/k8s-manifests" >"$TMP/plain.yaml"; then
		tap_check "k8s-manifests: every workload is restricted, with requests, limits and probes" \
			$PY "$LIB" pss "$TMP/plain.yaml"
		tap_check "k8s-manifests: sandbox Job settings in the ConfigMap are restricted-compatible" \
			$PY "$LIB" sandbox-config "$TMP/plain.yaml" "$flags"
		tap_check "k8s-manifests config.json equals the chart's default config.json" \
			cmp <($PY "$LIB" config "$TMP/plain.yaml") <($PY "$LIB" config "$TMP/values.yaml")
		tap_check "k8s-manifests sandbox-job.json equals the chart's default sandbox-job.json" \
			cmp <($PY "$LIB" config "$TMP/plain.yaml" sandbox-job.json) <($PY "$LIB" config "$TMP/values.yaml" sandbox-job.json)
	else
		tap_fail "k8s-manifests: kubectl kustomize"
	fi
else
	tap_skip "k8s-manifests: restricted workloads" "kubectl not found"
fi

# Pod-level settings the restricted namespace labels enforce.
tap_check "sandbox namespace labels enforce, warn and audit restricted (chart and k8s-manifests)" $PY - \
	"$TMP/values.yaml" "$ROOT/k8s-manifests/sandbox-namespace.yaml" <<'PY'
import sys, yaml
for f in sys.argv[1:]:
    ns = [d for d in yaml.safe_load_all(open(f)) if d and d["kind"] == "Namespace"]
    assert len(ns) == 1, f
    l = ns[0]["metadata"]["labels"]
    for m in ("enforce", "warn", "audit"):
        assert l.get(f"pod-security.kubernetes.io/{m}") == "restricted", (f, m)
PY

# The checker fails where it must: one broken pod per rule.
cat >"$TMP/good.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: good}
spec:
  template:
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: c
          image: x:1
          resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}
          livenessProbe: {httpGet: {path: /, port: 1}}
          readinessProbe: {httpGet: {path: /, port: 1}}
          startupProbe: {httpGet: {path: /, port: 1}}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
YAML
tap_check "checker accepts a minimal restricted Deployment" $PY "$LIB" pss "$TMP/good.yaml"
mutate() { # NAME PYTHON-STATEMENT-ON-d (the Deployment) and c (its container)
	$PY - "$TMP/good.yaml" "$2" >"$TMP/bad-$1.yaml" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
s = d["spec"]["template"]["spec"]; c = s["containers"][0]
exec(sys.argv[2])
yaml.safe_dump(d, sys.stdout)
PY
	! $PY "$LIB" pss "$TMP/bad-$1.yaml" >&2
}
tap_check "checker refuses privileged" mutate priv 'c["securityContext"]["privileged"] = True'
tap_check "checker refuses allowPrivilegeEscalation unset" mutate ape 'del c["securityContext"]["allowPrivilegeEscalation"]'
tap_check "checker refuses capabilities not dropping ALL" mutate caps 'c["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}'
tap_check "checker refuses runAsNonRoot missing" mutate nonroot 'del s["securityContext"]["runAsNonRoot"]'
tap_check "checker refuses seccomp missing" mutate seccomp 'del s["securityContext"]["seccompProfile"]'
tap_check "checker refuses hostPath volumes" mutate hostpath 's["volumes"] = [{"name": "h", "hostPath": {"path": "/"}}]'
tap_check "checker refuses hostNetwork" mutate hostnet 's["hostNetwork"] = True'
tap_check "checker refuses a missing memory limit" mutate limits 'del c["resources"]["limits"]["memory"]'
tap_check "checker refuses a missing readiness probe" mutate probe 'del c["readinessProbe"]'
tap_check "checker refuses a writable root filesystem" mutate rofs 'c["securityContext"]["readOnlyRootFilesystem"] = False'
tap_check "checker refuses a :latest image" mutate latest 'c["image"] = "x:latest"'
tap_check "checker refuses UID 0" mutate uid0 's["securityContext"]["runAsUser"] = 0'
tap_done
