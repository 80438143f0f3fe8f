#!/usr/bin/env bash
# kubesim driven by real kubectl, the oldest and the newest on the machine
# (issue 3's acceptance list): apply (re-applied: unchanged), get -o json,
# get -w, describe, create job + wait + logs, delete with and without
# cascade, auth can-i --as, create token, TTL, activeDeadlineSeconds, Pod
# Security; exec with a kubectl that speaks WebSocket (1.30+).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/kubesim.sh"

sdk=/usr/lib/google-cloud-sdk/bin
versions=()
for v in $(ls "$sdk" 2>/dev/null | sed -n 's/^kubectl\.\(1\.[0-9]*\)$/\1/p' | sort -t. -k2 -n); do
	versions+=("$v")
done
if [[ ${#versions[@]} -eq 0 ]]; then
	if command -v kubectl >/dev/null; then
		kc_oldest=$(command -v kubectl); kc_newest=$kc_oldest
	else
		tap_skip "kubectl checks" "no kubectl on this machine"
		tap_done; exit
	fi
else
	kc_oldest=$sdk/kubectl.${versions[0]}
	kc_newest=$sdk/kubectl.${versions[-1]}
fi

if ! ks_start; then
	tap_fail "kubesim starts"
	tap_done; exit 1
fi
tap_pass "kubesim starts ($KS_URL)"

wait_for() { # wait_for SECONDS CMD...: retry CMD until it succeeds
	local t=$1 i; shift
	for ((i = 0; i < t * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	"$@"
}

manifest() { # manifest NS
	cat <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $1
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: runner, namespace: $1}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: job-maker, namespace: $1}
rules:
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: runner-jobs, namespace: $1}
subjects:
- {kind: ServiceAccount, name: runner, namespace: $1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: job-maker}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: $1}
data: {a: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: $1}
stringData: {k: v}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: $1}
spec:
  selector: {app: x}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota, namespace: $1}
spec:
  hard: {pods: "20"}
---
apiVersion: v1
kind: LimitRange
metadata: {name: limits, namespace: $1}
spec:
  limits:
  - type: Container
    default: {cpu: 100m}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: $1}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $1}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox
        env: [{name: A, value: "1"}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: applied, namespace: $1}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo applied"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: $1-reader}
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: $1-reader}
subjects:
- {kind: Group, name: "system:serviceaccounts:$1", apiGroup: rbac.authorization.k8s.io}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $1-reader}
YAML
}

pdb() { # a PodDisruptionBudget (apart: kubectl's patch for its replace-strategy selector is never empty)
	cat <<YAML
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pdb, namespace: $1}
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: web}
YAML
}

run_checks() { # run_checks KUBECTL TAG
	local K=$1 tag=$2 ns="ci-$2" out tmp
	tmp=$KS_DIR/$tag
	mkdir -p "$tmp"
	tap_check "$tag: get ns lists default and kube-system" \
		bash -c "$K get ns -o name | grep -qx namespace/default && $K get ns -o name | grep -qx namespace/kube-system"
	manifest "$ns" >"$tmp/m.yaml"
	if $K apply -f "$tmp/m.yaml" >"$tmp/apply1" 2>&1 && [[ $(grep -c created "$tmp/apply1") -eq 14 ]]; then
		tap_pass "$tag: apply -f multi-document manifest creates 14 objects"
	else
		tap_fail "$tag: apply -f multi-document manifest creates 14 objects" "$(cat "$tmp/apply1")"
	fi
	if $K apply -f "$tmp/m.yaml" >"$tmp/apply2" 2>&1 && [[ $(grep -c unchanged "$tmp/apply2") -eq 14 ]]; then
		tap_pass "$tag: re-apply reports every object unchanged"
	else
		tap_fail "$tag: re-apply reports every object unchanged" "$(cat "$tmp/apply2")"
	fi
	pdb "$ns" >"$tmp/pdb.yaml"
	tap_check "$tag: apply a PodDisruptionBudget" $K apply -f "$tmp/pdb.yaml"
	local kind
	for kind in namespace/$ns serviceaccount/runner role/job-maker rolebinding/runner-jobs configmap/cfg secret/sec \
		service/svc resourcequota/quota limitrange/limits networkpolicy/deny deployment/web job/applied \
		poddisruptionbudget/pdb clusterrole/$ns-reader clusterrolebinding/$ns-reader; do
		out=$($K -n "$ns" get "$kind" -o json 2>&1)
		if grep -q "\"name\": \"${kind#*/}\"" <<<"$out"; then
			tap_pass "$tag: get $kind -o json"
		else
			tap_fail "$tag: get $kind -o json" "$out"
		fi
		tap_check "$tag: describe $kind" bash -c "$K -n $ns describe $kind | grep -q '^Name:'"
	done
	tap_check "$tag: applied job completes" $K -n "$ns" wait --for=condition=complete job/applied --timeout=60s

	# get -w sees a new Job
	timeout 20 $K -n "$ns" get jobs -w >"$tmp/watch" 2>&1 &
	local wpid=$!
	sleep 1
	$K -n "$ns" create job watched --image=busybox -- true >/dev/null 2>&1
	wait_for 15 grep -q watched "$tmp/watch" >/dev/null
	tap_check "$tag: get -w shows the new job" grep -q watched "$tmp/watch"
	kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null

	# create job, wait, logs
	tap_check "$tag: create job hello" $K -n "$ns" create job hello --image=busybox -- sh -c 'echo hi'
	tap_check "$tag: wait --for=condition=complete job/hello" $K -n "$ns" wait --for=condition=complete job/hello --timeout=60s
	out=$($K -n "$ns" logs job/hello 2>&1)
	if [[ $out == hi ]]; then tap_pass "$tag: logs job/hello prints hi"; else tap_fail "$tag: logs job/hello prints hi" "got: $out"; fi

	# delete job: pods go; --cascade=orphan: pods stay
	$K -n "$ns" create job del1 --image=busybox -- sleep 30 >/dev/null 2>&1
	$K -n "$ns" create job del2 --image=busybox -- sleep 30 >/dev/null 2>&1
	wait_for 20 bash -c "[[ \$($K -n $ns get pods -l job-name=del1 -o name | wc -l) -eq 1 && \$($K -n $ns get pods -l job-name=del2 -o name | wc -l) -eq 1 ]]" >/dev/null
	tap_check "$tag: delete job del1" $K -n "$ns" delete job del1
	tap_check "$tag: delete job removes its pods" wait_for 40 bash -c "[[ -z \$($K -n $ns get pods -l job-name=del1 -o name) ]]"
	tap_check "$tag: delete job --cascade=orphan" $K -n "$ns" delete job del2 --cascade=orphan
	sleep 1
	tap_check "$tag: orphaned pod stays" bash -c "[[ \$($K -n $ns get pods -l job-name=del2 -o name | wc -l) -eq 1 ]]"
	out=$($K -n "$ns" get pods -l job-name=del2 -o jsonpath='{.items[0].metadata.ownerReferences}' 2>&1)
	if [[ -z $out ]]; then tap_pass "$tag: orphaned pod lost its ownerReference"; else tap_fail "$tag: orphaned pod lost its ownerReference" "$out"; fi
	$K -n "$ns" delete pods -l job-name=del2 --grace-period=0 --force >/dev/null 2>&1

	# RBAC through impersonation
	out=$($K auth can-i create jobs -n "$ns" --as="system:serviceaccount:$ns:runner" 2>&1)
	if [[ $out == yes ]]; then tap_pass "$tag: can-i create jobs --as runner: yes"; else tap_fail "$tag: can-i create jobs --as runner: yes" "$out"; fi
	out=$($K auth can-i create pods -n "$ns" --as="system:serviceaccount:$ns:runner" 2>&1)
	if [[ $out == no ]]; then tap_pass "$tag: can-i create pods --as runner: no"; else tap_fail "$tag: can-i create pods --as runner: no" "$out"; fi
	out=$($K auth can-i create jobs -n "$ns" --as="system:serviceaccount:$ns:default" 2>&1)
	if [[ $out == no ]]; then tap_pass "$tag: can-i create jobs --as default: no"; else tap_fail "$tag: can-i create jobs --as default: no" "$out"; fi
	out=$($K auth can-i get configmaps -n default --as="system:serviceaccount:$ns:default" 2>&1)
	if [[ $out == yes ]]; then tap_pass "$tag: can-i through a Group ClusterRoleBinding: yes"; else tap_fail "$tag: can-i through a Group ClusterRoleBinding: yes" "$out"; fi

	# create token: it authenticates as the ServiceAccount
	local tok
	tok=$($K -n "$ns" create token runner 2>"$tmp/tokerr")
	if [[ -n $tok ]]; then tap_pass "$tag: create token"; else tap_fail "$tag: create token" "$(cat "$tmp/tokerr")"; fi
	local as_sa=($K --kubeconfig=/dev/null --server="$KS_URL" --certificate-authority="$KS_CA" --token="$tok")
	tap_check "$tag: the token may list jobs in $ns" "${as_sa[@]}" -n "$ns" get jobs
	out=$("${as_sa[@]}" -n "$ns" get pods 2>&1)
	if grep -q "User \"system:serviceaccount:$ns:runner\" cannot list resource \"pods\"" <<<"$out"; then
		tap_pass "$tag: the token is the ServiceAccount (pods forbidden for it)"
	else
		tap_fail "$tag: the token is the ServiceAccount (pods forbidden for it)" "$out"
	fi
	out=$($K --kubeconfig=/dev/null --server="$KS_URL" --certificate-authority="$KS_CA" --token=bogus get ns 2>&1)
	if grep -qi unauthorized <<<"$out"; then tap_pass "$tag: a bad token gets 401"; else tap_fail "$tag: a bad token gets 401" "$out"; fi

	# TTL and deadline
	cat >"$tmp/ttl.yaml" <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: ttl, namespace: $ns}
spec:
  ttlSecondsAfterFinished: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: ["true"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: deadline, namespace: $ns}
spec:
  activeDeadlineSeconds: 2
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: ["sleep", "60"]}]
YAML
	tap_check "$tag: apply ttl and deadline jobs" $K apply -f "$tmp/ttl.yaml"
	# the Job may already be gone (TTL 2 s) when a slow kubectl starts
	# waiting: then its Completed event, which outlives it, says it completed
	ttl_done() {
		$K -n "$ns" wait --for=condition=complete job/ttl --timeout=60s && return 0
		$K -n "$ns" get events --field-selector involvedObject.kind=Job,involvedObject.name=ttl,reason=Completed \
			-o name | grep -q .
	}
	tap_check "$tag: ttl job completes" ttl_done
	tap_check "$tag: ttl job disappears after ttlSecondsAfterFinished" wait_for 30 bash -c "! $K -n $ns get job ttl"
	tap_check "$tag: deadline job fails" $K -n "$ns" wait --for=condition=failed job/deadline --timeout=60s
	out=$($K -n "$ns" get job deadline -o jsonpath='{.status.conditions[?(@.type=="Failed")].reason}' 2>&1)
	if [[ $out == DeadlineExceeded ]]; then tap_pass "$tag: deadline job reason DeadlineExceeded"; else tap_fail "$tag: deadline job reason DeadlineExceeded" "$out"; fi
	tap_check "$tag: deadline job's pod is killed" wait_for 40 bash -c "[[ -z \$($K -n $ns get pods -l job-name=deadline -o name) ]]"

	# Pod Security restricted
	$K create ns "$ns-r" >/dev/null 2>&1
	$K label ns "$ns-r" pod-security.kubernetes.io/enforce=restricted >/dev/null 2>&1
	cat >"$tmp/pod.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: nonroot-missing, namespace: $ns-r}
spec:
  containers:
  - name: c
    image: busybox
    command: ["true"]
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: ["ALL"]}
      seccompProfile: {type: RuntimeDefault}
YAML
	out=$($K apply -f "$tmp/pod.yaml" 2>&1)
	if grep -qF 'pods "nonroot-missing" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)' <<<"$out"; then
		tap_pass "$tag: restricted namespace rejects a pod without runAsNonRoot"
	else
		tap_fail "$tag: restricted namespace rejects a pod without runAsNonRoot" "$out"
	fi
}

run_checks "$kc_oldest" "old"
[[ $kc_newest != "$kc_oldest" ]] && run_checks "$kc_newest" "new"

# A successful token check is remembered for 10 s and a failure not at all,
# as kube-apiserver's token cache (TokenSuccessCacheTTL 10 s,
# TokenFailureCacheTTL 0): a deleted ServiceAccount's token still
# authenticates (403 here: it may not list pods) for those 10 s, then 401.
$kc_newest create ns tcache >/dev/null 2>&1
$kc_newest -n tcache create sa gone >/dev/null 2>&1
tc_tok=$($kc_newest -n tcache create token gone 2>/dev/null)
tc_code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$KS_CA" -H "Authorization: Bearer $tc_tok" \
	"$KS_URL/api/v1/namespaces/tcache/pods"; }
c1=$(tc_code)
$kc_newest -n tcache delete sa gone >/dev/null 2>&1
t0=$(date +%s)
c2=$(tc_code)
c3=$c2
for _ in $(seq 1 50); do c3=$(tc_code); [[ $c3 == 401 ]] && break; sleep 0.5; done
t1=$(date +%s)
if [[ $c1 == 403 && $c2 == 403 && $c3 == 401 && $((t1 - t0)) -le 20 ]]; then
	tap_pass "a deleted ServiceAccount's token: 403 while cached, 401 within 10 s ($((t1 - t0)) s)"
else
	tap_fail "token cache after the ServiceAccount's deletion" "$c1 $c2 $c3 after $((t1 - t0)) s"
fi

# exec needs WebSocket (kubectl 1.30+)
K=$kc_newest
minor=$($K version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -1)
if [[ -z $minor || $minor -lt 30 ]]; then
	tap_skip "exec checks" "newest kubectl ($K) is older than 1.30"
else
	$K create job ex --image=busybox -- sleep 300 >/dev/null 2>&1
	wait_for 30 bash -c "$K get pods -l job-name=ex -o jsonpath='{.items[0].status.phase}' | grep -q Running" >/dev/null
	pod=$($K get pods -l job-name=ex -o jsonpath='{.items[0].metadata.name}')
	$K exec "$pod" -- sh -c 'echo out; echo err >&2; exit 3' >"$KS_DIR/ex.out" 2>"$KS_DIR/ex.err"
	rc=$?
	if [[ $rc -eq 3 ]] && grep -qx out "$KS_DIR/ex.out" && grep -qx err "$KS_DIR/ex.err"; then
		tap_pass "exec prints stdout and stderr and exits 3"
	else
		tap_fail "exec prints stdout and stderr and exits 3" "rc=$rc out=$(cat "$KS_DIR/ex.out") err=$(cat "$KS_DIR/ex.err")"
	fi
	head -c $((10 * 1024 * 1024)) /dev/urandom >"$KS_DIR/in.bin"
	$K exec -i "$pod" -- cat <"$KS_DIR/in.bin" >"$KS_DIR/back.bin" 2>"$KS_DIR/cat.err"
	if cmp -s "$KS_DIR/in.bin" "$KS_DIR/back.bin"; then
		tap_pass "exec -i cat round-trips 10 MiB"
	else
		tap_fail "exec -i cat round-trips 10 MiB" "got $(stat -c %s "$KS_DIR/back.bin") bytes; $(tail -3 "$KS_DIR/cat.err")"
	fi
	$K delete job ex >/dev/null 2>&1
fi

# SIGTERM stops every pod (a unique sleep argument finds the pod's process)
marker="313.$$$RANDOM"
$K create job last --image=busybox -- sleep "$marker" >/dev/null 2>&1
wait_for 30 bash -c "$K get pods -l job-name=last -o jsonpath='{.items[0].status.phase}' | grep -q Running" >/dev/null
running_before=$(pgrep -fc "sleep $marker")
pid=$KS_PID
ks_stop
sleep 0.5
if [[ $running_before -ge 1 ]] && ! kill -0 "$pid" 2>/dev/null && ! pgrep -f "sleep $marker" >/dev/null; then
	tap_pass "SIGTERM stops kubesim and its pods"
else
	tap_fail "SIGTERM stops kubesim and its pods"
fi
tap_done
