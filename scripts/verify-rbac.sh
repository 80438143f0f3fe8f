#!/usr/bin/env bash
# verify-rbac.sh: check, against a live cluster and with kubectl only, that
# ci-fixer's permissions are exactly what its runs need:
#   1. the ServiceAccounts, the Role and the RoleBinding exist, the sandbox
#      account mounts no token and no binding names it;
#   2. `kubectl auth can-i ... --as=<the service's account>` says yes for
#      every verb a run uses in the sandbox namespace;
#   3. and no for a list of dangerous permissions (the escalation paths named
#      by the Kubernetes RBAC good-practices page: secrets, nodes and
#      nodes/proxy, cluster-wide RBAC, escalate/bind, impersonation, token
#      minting, namespace relabelling, bare pods, CSR approval, admission
#      webhooks, other namespaces).
# Prints a table and exits 0 only if every check passes (1 if one fails,
# 2 on a usage error or when kubectl cannot reach the cluster).
#
# The identity running this script needs to read ServiceAccounts, Roles and
# RoleBindings, and to impersonate (kubectl --as): an operator's admin
# credentials. `kubectl auth can-i --as` sends a SelfSubjectAccessReview
# with Impersonate-User; for a system:serviceaccount:NS:NAME user the API
# server adds the system:serviceaccounts groups itself
# (staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go).
set -uo pipefail

usage() {
	cat <<'USAGE'
usage: scripts/verify-rbac.sh [options]
  -n, --namespace NS     sandbox namespace (Role, RoleBinding, sandbox account)  [ci-sandbox]
  --app-sa USER          the service's identity: system:serviceaccount:NS:NAME or NS:NAME
                                                    [system:serviceaccount:default:ci-fixer-app]
  --sandbox-sa NAME      sandbox pods' ServiceAccount (in the sandbox namespace) [ci-fixer-sandbox]
  --role NAME            the Role                                              [ci-fixer-sandbox-manager]
  --binding NAME         the RoleBinding                                       [ci-fixer-sandbox-binding]
  --kubeconfig FILE      kubeconfig to use (default: kubectl's)
  --context NAME         kubeconfig context to use
  --kubectl PATH         kubectl binary                                        [kubectl]
  -j, --jobs N           can-i checks run at a time (one kubectl each)         [4]
  -h, --help
Exit status: 0 all checks passed, 1 a check failed, 2 usage or connection error.
USAGE
}

ns=ci-sandbox
app_sa=system:serviceaccount:default:ci-fixer-app
sandbox_sa=ci-fixer-sandbox
role=ci-fixer-sandbox-manager
binding=ci-fixer-sandbox-binding
kubectl_bin=${KUBECTL:-kubectl}
jobs_max=4
kargs=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-n | --namespace) ns=${2:?}; shift 2 ;;
	--namespace=*) ns=${1#*=}; shift ;;
	--app-sa) app_sa=${2:?}; shift 2 ;;
	--app-sa=*) app_sa=${1#*=}; shift ;;
	--sandbox-sa) sandbox_sa=${2:?}; shift 2 ;;
	--sandbox-sa=*) sandbox_sa=${1#*=}; shift ;;
	--role) role=${2:?}; shift 2 ;;
	--role=*) role=${1#*=}; shift ;;
	--binding) binding=${2:?}; shift 2 ;;
	--binding=*) binding=${1#*=}; shift ;;
	--kubeconfig) kargs+=(--kubeconfig "${2:?}"); shift 2 ;;
	--kubeconfig=*) kargs+=(--kubeconfig "${1#*=}"); shift ;;
	--context) kargs+=(--context "${2:?}"); shift 2 ;;
	--context=*) kargs+=(--context "${1#*=}"); shift ;;
	--kubectl) kubectl_bin=${2:?}; shift 2 ;;
	--kubectl=*) kubectl_bin=${1#*=}; shift ;;
	-j | --jobs) jobs_max=${2:?}; shift 2 ;;
	--jobs=*) jobs_max=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "verify-rbac: unknown option: $1" >&2; usage >&2; exit 2 ;;
	esac
done

if [[ ! $jobs_max =~ ^[1-9][0-9]?$ ]]; then
	echo "verify-rbac: --jobs must be a number from 1 to 99, got '$jobs_max'" >&2
	exit 2
fi

# The service's identity: accept NS:NAME as a short form.
if [[ $app_sa != system:serviceaccount:* ]]; then
	app_sa=system:serviceaccount:$app_sa
fi
IFS=: read -r _ _ app_ns app_name extra <<<"$app_sa"
if [[ -z ${app_ns:-} || -z ${app_name:-} || -n ${extra:-} ]]; then
	echo "verify-rbac: --app-sa must be system:serviceaccount:NAMESPACE:NAME, got '$app_sa'" >&2
	exit 2
fi
if ! command -v "$kubectl_bin" >/dev/null 2>&1; then
	echo "verify-rbac: kubectl not found (tried '$kubectl_bin')" >&2
	exit 2
fi

k() { "$kubectl_bin" "${kargs[@]}" "$@"; }

if ! k version --request-timeout=10s >/dev/null 2>"${TMPDIR:-/tmp}/verify-rbac.$$"; then
	echo "verify-rbac: cannot reach the cluster:" >&2
	cat "${TMPDIR:-/tmp}/verify-rbac.$$" >&2
	rm -f "${TMPDIR:-/tmp}/verify-rbac.$$"
	exit 2
fi
rm -f "${TMPDIR:-/tmp}/verify-rbac.$$"

pass=0 fail=0
rows=()
# row KIND CHECK EXPECT GOT: one line of the table; a check passes when
# GOT equals EXPECT.
row() {
	local result=PASS
	if [[ $4 != "$3" ]]; then
		result=FAIL
		fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
	rows+=("$(printf '%-6s  %-8s  %-58s  %-6s  %-6s' "$result" "$1" "$2" "$3" "$4")")
}

# exists KIND NAME NS
exists() {
	if k get "$1" "$2" -n "$3" -o name >/dev/null 2>&1; then
		row object "$1 $3/$2 exists" yes yes
	else
		row object "$1 $3/$2 exists" yes no
	fi
}

# can VERB RESOURCE[/SUBRESOURCE] [kubectl flags]: yes, no, or error.
# kubectl reads TYPE/NAME as a resource *name*, so a subresource goes in
# --subresource; it prints "yes", or "no" possibly followed by " - reason"
# (staging/src/k8s.io/kubectl/pkg/cmd/auth/cani.go).
can() {
	local verb=$1 res=$2 out
	shift 2
	if [[ $res == */* ]]; then
		set -- "$verb" "${res%%/*}" --subresource="${res#*/}" "$@"
	else
		set -- "$verb" "$res" "$@"
	fi
	out=$(k auth can-i "$@" --as="$app_sa" 2>/dev/null)
	case $out in
	yes*) echo yes ;;
	no*) echo no ;;
	*) echo error ;;
	esac
}

# The can-i checks are queued, run --jobs at a time (each is one kubectl
# process and one API round trip), and reported in the order queued.
q_kind=() q_label=() q_expect=() q_args=()
queue() { # KIND LABEL EXPECT VERB RESOURCE [kubectl flags]
	q_kind+=("$1")
	q_label+=("$2")
	q_expect+=("$3")
	shift 3
	q_args+=("$(printf '%q ' "$@")")
}
# need VERB RESOURCE: the service must be allowed this in the sandbox namespace.
need() { queue allow "$1 $2 -n $ns" yes "$1" "$2" -n "$ns"; }
# deny VERB RESOURCE [kubectl flags]: the service must not be allowed this.
deny() {
	local verb=$1 res=$2 where
	shift 2
	where=${*:-cluster-wide}
	queue deny "$verb $res ($where)" no "$verb" "$res" "$@"
}
run_one() { # IDX: the answer to queued check IDX
	eval "set -- ${q_args[$1]}"
	can "$@"
}
run_queue() {
	local out i running=0
	out=$(mktemp -d "${TMPDIR:-/tmp}/verify-rbac.XXXXXX") || exit 2
	for i in "${!q_args[@]}"; do
		run_one "$i" >"$out/$i" &
		running=$((running + 1))
		if [[ $running -ge $jobs_max ]]; then
			wait -n
			running=$((running - 1))
		fi
	done
	wait
	for i in "${!q_args[@]}"; do
		row "${q_kind[$i]}" "${q_label[$i]}" "${q_expect[$i]}" "$(cat "$out/$i" 2>/dev/null || echo error)"
	done
	rm -rf "$out"
}

# 1. objects
exists serviceaccount "$app_name" "$app_ns"
exists serviceaccount "$sandbox_sa" "$ns"
exists role "$role" "$ns"
exists rolebinding "$binding" "$ns"

automount=$(k get serviceaccount "$sandbox_sa" -n "$ns" -o jsonpath='{.automountServiceAccountToken}' 2>/dev/null)
row object "serviceaccount $ns/$sandbox_sa automountServiceAccountToken" false "${automount:-unset}"

ref=$(k get rolebinding "$binding" -n "$ns" -o jsonpath='{.roleRef.kind}/{.roleRef.name}' 2>/dev/null)
row object "rolebinding $binding refers to Role $role" "Role/$role" "${ref:-none}"
subj=$(k get rolebinding "$binding" -n "$ns" -o jsonpath='{range .subjects[*]}{.kind}/{.namespace}/{.name}{" "}{end}' 2>/dev/null)
subj=${subj% }
row object "rolebinding $binding binds only the service" "ServiceAccount/$app_ns/$app_name" "${subj:-none}"

# No binding in the sandbox namespace, and no cluster-wide binding, names
# the sandbox account (reading ClusterRoleBindings needs cluster read access;
# "error" is reported if it is missing).
bound=none
if rb=$(k get rolebindings -n "$ns" -o jsonpath='{range .items[*]}{.metadata.name}{" "}{range .subjects[*]}{.kind}/{.namespace}/{.name}{" "}{end}{"\n"}{end}' 2>/dev/null) &&
	crb=$(k get clusterrolebindings -o jsonpath='{range .items[*]}{.metadata.name}{" "}{range .subjects[*]}{.kind}/{.namespace}/{.name}{" "}{end}{"\n"}{end}' 2>/dev/null); then
	hits=$(printf '%s\n%s\n' "$rb" "$crb" | grep -E " ServiceAccount/$ns/$sandbox_sa( |\$)" | awk '{print $1}' | paste -sd, -)
	[[ -n $hits ]] && bound=$hits
else
	bound=error
fi
row object "no binding names serviceaccount $ns/$sandbox_sa" none "$bound"

# 2. what a run needs (deploy-conventions.md; sandbox/ uses exactly these)
for v in create get list watch delete; do need "$v" jobs.batch; done
for v in get list watch; do need "$v" pods; done
need create pods/exec # WebSocket exec needs create since 1.35
need get pods/exec    # the WebSocket upgrade is a GET
need get pods/log
need list events
need watch events

# 3. what it must not be able to do
deny delete nodes
deny get nodes/proxy
deny create nodes/proxy
deny get secrets -n "$ns"
deny list secrets -n "$ns"
deny watch secrets -n "$ns"
deny list secrets -n "$app_ns"
deny list secrets --all-namespaces
deny create clusterrolebindings
deny create clusterroles
deny create rolebindings -n "$ns"
deny create roles -n "$ns"
deny escalate roles -n "$ns"
deny bind roles -n "$ns"
deny escalate clusterroles
deny bind clusterroles
deny impersonate users
deny impersonate groups
deny impersonate serviceaccounts -n "$ns"
deny create serviceaccounts/token -n "$ns"
deny create serviceaccounts -n "$ns"
deny patch namespaces
deny update namespaces
deny create pods -n "$ns"
deny patch pods/ephemeralcontainers -n "$ns"
deny create pods/attach -n "$ns"
deny create pods/portforward -n "$ns"
deny update certificatesigningrequests/approval
deny create mutatingwebhookconfigurations.admissionregistration.k8s.io
deny create validatingwebhookconfigurations.admissionregistration.k8s.io
deny create cronjobs.batch -n "$ns"
deny get configmaps -n "$ns"
[[ $app_ns != "$ns" ]] && deny create jobs.batch -n "$app_ns"
deny delete jobs.batch -n kube-system
deny create persistentvolumes
deny '*' '*' --all-namespaces
run_queue

printf 'ci-fixer RBAC: service %s, sandbox namespace %s\n\n' "$app_sa" "$ns"
printf '%-6s  %-8s  %-58s  %-6s  %-6s\n' RESULT KIND CHECK EXPECT GOT
printf '%-6s  %-8s  %-58s  %-6s  %-6s\n' ------ -------- "$(printf -- '-%.0s' {1..58})" ------ ------
printf '%s\n' "${rows[@]}"
echo
if [[ $fail -eq 0 ]]; then
	echo "verify-rbac: all $pass checks passed: the service can do what a run needs and none of the dangerous things listed"
	exit 0
fi
echo "verify-rbac: $fail of $((pass + fail)) checks FAILED"
exit 1
