#!/usr/bin/env bash
# The Helm chart renders and lints for values.yaml and values-prod.yaml
# (real helm when on PATH, else ../shared/tools/helm-render), the rendering
# is deterministic, objects have the names issue 6 asks for, every value is
# documented, the schema refuses bad values, and the sandbox Job settings
# come from values into the ConfigMap.
set -u
. "$(dirname "$0")/deploy_common.bash"
deploy_need_tools
echo "# renderer: $RENDERER" >&2

for v in values.yaml values-prod.yaml; do
	tap_check "chart lints with $v ($RENDERER)" deploy_lint -f "$CHART/$v"
	if deploy_render "$TMP/a-$v" -f "$CHART/$v" && deploy_render "$TMP/b-$v" -f "$CHART/$v"; then
		tap_pass "chart renders with $v"
		tap_check "two renders with $v are byte-identical" cmp "$TMP/a-$v" "$TMP/b-$v"
		tap_check "every document of the $v render parses with kind and name" \
			bash -c "$PY '$LIB' objects '$TMP/a-$v' >'$TMP/o' && [[ -s '$TMP/o' ]] && ! grep -q None '$TMP/o'"
	else
		tap_fail "chart renders with $v"
		tap_fail "two renders with $v are byte-identical" "render failed"
		tap_fail "every document of the $v render parses with kind and name" "render failed"
	fi
done
def=$TMP/a-values.yaml
prod=$TMP/a-values-prod.yaml

# An upgrade render is the same as an install render (upgrade --install is
# idempotent, rollback restores the same objects).
if [[ $RENDERER == helm-render ]]; then
	deploy_render "$TMP/upg.yaml" -is-upgrade
else
	deploy_render "$TMP/upg.yaml" --is-upgrade
fi
tap_check "an upgrade render equals the install render" cmp "$def" "$TMP/upg.yaml"

# Names with release ci-fixer (issue 6).
objs=$($PY "$LIB" objects "$def")
echo "$objs" >&2
for want in "Deployment default/ci-fixer-app" "Service default/ci-fixer-app" \
	"ServiceAccount default/ci-fixer-app" "ServiceAccount ci-sandbox/ci-fixer-sandbox" \
	"Role ci-sandbox/ci-fixer-sandbox-manager" "RoleBinding ci-sandbox/ci-fixer-sandbox-binding" \
	"ConfigMap default/ci-fixer-app-config" "Namespace /ci-sandbox" \
	"NetworkPolicy default/ci-fixer-app" "NetworkPolicy ci-sandbox/ci-fixer-sandbox-deny-all" \
	"PodDisruptionBudget default/ci-fixer-app" "ResourceQuota ci-sandbox/ci-fixer-sandbox-quota" \
	"LimitRange ci-sandbox/ci-fixer-sandbox-limits" "Pod default/ci-fixer-app-test-connection"; do
	tap_check "rendered: $want" grep -qxF "$want" <<<"$objs"
done
tap_check "the helm test pod is a test hook" \
	bash -c "$PY '$LIB' get '$def' Pod ci-fixer-app-test-connection metadata.annotations | grep -q '\"helm.sh/hook\": \"test\"'"
tap_check "no ServiceMonitor without the monitoring.coreos.com/v1 API" bash -c "! grep -q 'kind: ServiceMonitor' '$prod'"
deploy_render "$TMP/sm.yaml" -f "$CHART/values-prod.yaml" --api-versions monitoring.coreos.com/v1
tap_check "values-prod renders a ServiceMonitor where monitoring.coreos.com/v1 is served" grep -q 'kind: ServiceMonitor' "$TMP/sm.yaml"

# Standard labels on every object.
tap_check "every object has the standard labels" $PY - "$def" <<'PY'
import sys, yaml
bad = 0
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d: continue
    l = d["metadata"].get("labels") or {}
    need = ["helm.sh/chart", "app.kubernetes.io/managed-by"]
    if d["kind"] != "Pod":
        need += ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version"]
    for k in need:
        if k not in l:
            print(d["kind"], d["metadata"]["name"], "lacks", k); bad = 1
sys.exit(bad)
PY

# Values: every one documented, the keys issue 6 names present in both files.
tap_check "every value in values.yaml has a ## @param line" $PY "$LIB" documented "$CHART/values.yaml"
tap_check "every value in values-prod.yaml has a ## @param line" $PY "$LIB" documented "$CHART/values-prod.yaml"
keys=(replicaCount image.repository image.pullPolicy image.tag service.type service.port resources
	sandbox.image sandbox.resources sandbox.namespace sandbox.ttlSecondsAfterFinished
	sandbox.activeDeadlineSeconds sandbox.runAsUser nodeSelector tolerations affinity gpu.enabled
	rbac.create serviceAccount.create serviceAccount.name serviceAccount.annotations
	networkPolicy.enabled metrics.serviceMonitor.enabled)
tap_check "values.yaml sets every key issue 6 names" $PY "$LIB" has-keys "$CHART/values.yaml" "${keys[@]}"
tap_check "values-prod.yaml sets every key issue 6 names" $PY "$LIB" has-keys "$CHART/values-prod.yaml" "${keys[@]}"
tap_check "sandbox defaults: issue 6 image, ttlSecondsAfterFinished 300" \
	bash -c "grep -qx '  image: nikolaik/python-nodejs:python3.11-nodejs20-bullseye' '$CHART/values.yaml' && grep -qx '  ttlSecondsAfterFinished: 300' '$CHART/values.yaml'"
tap_check "Chart.yaml: apiVersion v2, name ci-fixer, SemVer version, quoted appVersion" bash -c "
	grep -qx 'apiVersion: v2' '$CHART/Chart.yaml' && grep -qx 'name: ci-fixer' '$CHART/Chart.yaml' &&
	grep -qE '^version: [0-9]+\.[0-9]+\.[0-9]+$' '$CHART/Chart.yaml' && grep -qE '^appVersion: \"[^\"]+\"$' '$CHART/Chart.yaml'"
tap_check "values.schema.json is draft-07 JSON" \
	$PY -c "import json,sys; s=json.load(open('$CHART/values.schema.json')); sys.exit(0 if 'draft-07' in s['\$schema'] else 1)"

# The schema refuses bad values (each render must fail).
for bad in replicaCount=2 image.tag=latest securityContext.privileged=true \
	securityContext.allowPrivilegeEscalation=true podSecurityContext.runAsNonRoot=false \
	service.type=ExternalName sandbox.namespace=Bad_NS unknownKey=1 sandbox.imagePullPolicy=Sometimes \
	gpu.resourceName=gpu sandbox.affinity.nodeAfinity.x=1; do
	tap_check "schema refuses --set $bad" bash -c "! deploy_render '$TMP/bad.yaml' --set '$bad' 2>'$TMP/bad.err' && grep -q \"don't meet the specifications of the schema\" '$TMP/bad.err'"
done

# ... and a toleration Kubernetes would refuse (lists cannot be --set here)
printf 'sandbox:\n  tolerations:\n    - {key: ci, operator: Maybe}\n' >"$TMP/bad-tol.yaml"
tap_check "schema refuses a toleration with operator Maybe" bash -c "! deploy_render '$TMP/bad.yaml' -f '$TMP/bad-tol.yaml' 2>'$TMP/bad.err' && grep -q \"don't meet the specifications of the schema\" '$TMP/bad.err'"

# The service's config and the sandbox Job settings come from values into
# the ConfigMap: config.json in the service's own format (keys = serve
# flags), sandbox-job.json for review.
flags=$(deploy_serve_flags)
echo "serve flags: $flags" >&2
tap_check "the serve flags are known (built program or runner/cli.c)" test -n "$flags"
tap_check "ConfigMap: config.json keys are serve flags, sandbox-job.json complete (values.yaml)" \
	$PY "$LIB" sandbox-config "$def" "$flags"
tap_check "ConfigMap: config.json keys are serve flags, sandbox-job.json complete (values-prod.yaml)" \
	$PY "$LIB" sandbox-config "$prod" "$flags"
# The real program parses config.json (the config file is read before the
# flags, so `serve --config F --help` exits 0 only when F is accepted).
CIFIXER=$ROOT/${BUILD:-build}/ci-fixer
[[ ${BUILD:-build} == /* ]] && CIFIXER=$BUILD/ci-fixer
if [[ -x $CIFIXER ]]; then
	for v in values.yaml values-prod.yaml; do
		$PY "$LIB" config "$TMP/a-$v" >"$TMP/config-$v.json"
		tap_check "ci-fixer serve accepts the config.json rendered from $v" \
			bash -c "'$CIFIXER' serve --config '$TMP/config-$v.json' --help >/dev/null"
	done
	$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); d["sandboxImage"]="x"; print(json.dumps(d))' \
		"$TMP/config-values.yaml.json" >"$TMP/config-bad.json"
	tap_check "ci-fixer serve refuses a config.json with a key it does not know" \
		bash -c "! '$CIFIXER' serve --config '$TMP/config-bad.json' --help >/dev/null 2>&1"
else
	tap_skip "ci-fixer serve accepts the rendered config.json" "$CIFIXER not built"
fi
if [[ -f $ROOT/sandbox/model.c ]]; then
	for v in values.yaml values-prod.yaml; do
		tap_check "sandbox-job.json ($v) states the service's built-in Job settings (sandbox_config_init)" \
			$PY "$LIB" builtin "$TMP/a-$v" "$ROOT/sandbox/model.c"
	done
else
	tap_skip "sandbox-job.json states the service's built-in Job settings" "sandbox/model.c not found"
fi
deploy_render "$TMP/set.yaml" --set sandbox.ttlSecondsAfterFinished=120 --set sandbox.image=busybox:1.36.1 \
	--set sandbox.runAsUser=12345 --set gpu.enabled=true --set config.maxConcurrent=7 \
	--set sandbox.imagePullPolicy=Always --set sandbox.nodeSelector.pool=ci --set gpu.nodeSelector.gpu=a100
cfg=$($PY "$LIB" config "$TMP/set.yaml")
job=$($PY "$LIB" config "$TMP/set.yaml" sandbox-job.json)
echo "$cfg $job" >&2
tap_check "ConfigMap follows --set sandbox.* and config.*" $PY -c "
import json,sys; c=json.loads(sys.argv[1]); s=json.loads(sys.argv[2])
ok = (s['ttlSecondsAfterFinished']==120 and s['image']=='busybox:1.36.1' and c['image']=='busybox:1.36.1'
      and s['runAsUser']==12345 and s['gpu']['enabled'] is True
      and any(t.get('key')=='nvidia.com/gpu' for t in s['tolerations'])
      and c['max-concurrent']==7 and c['namespace']=='ci-sandbox' and s['serviceAccountName']=='ci-fixer-sandbox'
      and c['image-pull-policy']=='Always' and s['imagePullPolicy']=='Always'
      and c['gpu-count']==1 and c['gpu-resource']=='nvidia.com/gpu'
      and any(t.get('key')=='nvidia.com/gpu' for t in c['tolerations']) and c['tolerations']==s['tolerations']
      and c['node-selector']=={'pool': 'ci', 'gpu': 'a100'} and c['node-selector']==s['nodeSelector'])
sys.exit(0 if ok else 1)" "$cfg" "$job"
tap_check "gpu.enabled adds the GPU to the sandbox quota" grep -q 'requests.nvidia.com/gpu: "20"' "$TMP/set.yaml"
tap_check "gpu.enabled off: config.json asks for no GPU and adds no GPU toleration" \
	$PY -c "import json,sys; c=json.loads(sys.argv[1]); sys.exit(0 if c['gpu-count']==0 and c['tolerations']==[] and c['node-selector']=={} else 1)" \
	"$($PY "$LIB" config "$def")"
if [[ -x $CIFIXER ]]; then
	$PY "$LIB" config "$TMP/set.yaml" >"$TMP/config-set.json"
	tap_check "ci-fixer serve accepts the config.json with gpu.enabled, nodeSelector and pull policy set" \
		bash -c "'$CIFIXER' serve --config '$TMP/config-set.json' --help >/dev/null"
fi
deploy_render "$TMP/sa.yaml" --set sandbox.serviceAccount.name=team-a-runner
tap_check "sandbox.serviceAccount.name: the account created is the one config.json gives the service" bash -c "
	$PY '$LIB' objects '$TMP/sa.yaml' | grep -qx 'ServiceAccount ci-sandbox/team-a-runner' &&
	$PY '$LIB' config '$TMP/sa.yaml' | grep -q '\"sandbox-service-account\": \"team-a-runner\"'"

# checksum/config rolls the pod when, and only when, the config changes.
sum() { $PY "$LIB" get "$1" Deployment ci-fixer-app 'spec.template.metadata.annotations.checksum/config'; }
tap_check "checksum/config changes with the config" bash -c "[[ '$(sum "$def")' != '$(sum "$TMP/set.yaml")' ]]"
deploy_render "$TMP/res.yaml" --set resources.limits.cpu=3
tap_check "checksum/config stays when only the Deployment changes" bash -c "[[ '$(sum "$def")' == '$(sum "$TMP/res.yaml")' ]]"

# Other releases and namespaces.
deploy_render "$TMP/other.yaml" --name prod --namespace ci --set sandbox.namespace=ci-jobs
tap_check "release prod: prefixed names, subject in the release namespace, owner ci.prod-ci-fixer" bash -c "
	$PY '$LIB' objects '$TMP/other.yaml' | grep -qx 'Role ci-jobs/prod-ci-fixer-sandbox-manager' &&
	$PY '$LIB' objects '$TMP/other.yaml' | grep -qx 'ServiceAccount ci-jobs/ci-fixer-sandbox' &&
	$PY '$LIB' get '$TMP/other.yaml' RoleBinding prod-ci-fixer-sandbox-binding subjects | grep -q '\"namespace\": \"ci\"' &&
	$PY '$LIB' config '$TMP/other.yaml' | grep -q '\"owner\": \"ci.prod-ci-fixer\"'"
tap_check "sandbox namespace equal to the release namespace with createNamespace is refused" \
	bash -c "! deploy_render '$TMP/x.yaml' --namespace ci-sandbox 2>/dev/null"
tap_check "rbac.create=false renders no Role or RoleBinding" bash -c "
	deploy_render '$TMP/norbac.yaml' --set rbac.create=false && ! grep -qE '^kind: (Role|RoleBinding)$' '$TMP/norbac.yaml'"
tap_check "image.digest pins the image by digest" bash -c "
	deploy_render '$TMP/dig.yaml' --set image.digest=sha256:$(printf 'a%.0s' {1..64}) &&
	grep -q 'image: \"ci-fixer@sha256:aaaa' '$TMP/dig.yaml'"
tap_check "auth.token makes the chart create the token Secret (and only then)" bash -c "
	deploy_render '$TMP/tok.yaml' --set auth.token=s3cret && grep -q '^kind: Secret$' '$TMP/tok.yaml' &&
	! grep -q '^kind: Secret$' '$def'"
if [[ $RENDERER == helm-render ]]; then
	helm_render --notes --name ci-fixer "$CHART" >"$TMP/notes.txt"
	tap_check "NOTES.txt renders and tells how to verify RBAC" \
		grep -q 'scripts/verify-rbac.sh --namespace ci-sandbox' "$TMP/notes.txt"
else
	tap_check "NOTES.txt exists" test -s "$CHART/templates/NOTES.txt"
fi
tap_done
