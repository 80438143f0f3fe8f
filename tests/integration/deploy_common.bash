# Shared by tests/integration/deploy_*.sh (sourced; not a test itself: the
# driver runs only *.sh). Finds the repository, a chart renderer and a Python
# with PyYAML.
#
#   . "$(dirname "$0")/deploy_common.bash"
#   deploy_render OUT [helm-render/helm args...]   render chart/ (release ci-fixer, namespace default)
#   deploy_lint [-f values]                         helm lint / helm-render --lint
#   $PY deploy_lib.py CMD ...                       YAML checks (see deploy_lib.py)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${CIFIXER_TEST_ROOT:-$(cd "$here/../.." && pwd)}
. "$ROOT/tests/lib/tap.sh"
LIB="$ROOT/tests/integration/deploy_lib.py"
CHART="$ROOT/chart"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifix-deploy.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# A Python 3 that has PyYAML (Debian's python3-yaml); empty if none.
PY=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' >/dev/null 2>&1; then
		PY=$p
		break
	fi
done

# The renderer: real helm when on PATH, else the shared helm-render stand-in
# (its first run installs Go with apt-get and builds itself; that can take a
# few minutes, hence the generous limit).
HELM_RENDER="$ROOT/../shared/tools/helm-render/helm-render"
if command -v helm >/dev/null 2>&1; then
	RENDERER=helm
elif [[ -x $HELM_RENDER ]]; then
	RENDERER=helm-render
else
	RENDERER=
fi

# helm_render ARGS...: helm-render, one at a time on this machine. Its first
# use builds it (and may apt-get Go); tests running side by side would race
# on the dpkg lock and the build, so every call holds a lock file.
helm_render() {
	(
		flock 9
		timeout 900 "$HELM_RENDER" "$@"
	) 9>"${TMPDIR:-/tmp}/ci-fixer-helm-render.lock"
}

# deploy_render OUT [-f FILE] [--set K=V] [--api-versions V] [--name R] [--namespace NS]
deploy_render() {
	local out=$1 name=ci-fixer ns=default args=()
	shift
	while [[ $# -gt 0 ]]; do
		case $1 in
		--name) name=$2; shift 2 ;;
		--namespace) ns=$2; shift 2 ;;
		*) args+=("$1"); shift ;;
		esac
	done
	if [[ $RENDERER == helm ]]; then
		helm template "$name" "$CHART" --namespace "$ns" "${args[@]}" >"$out"
	else
		# helm-render spells --api-versions as -api-versions; both parse
		helm_render --name "$name" --namespace "$ns" "${args[@]}" "$CHART" >"$out"
	fi
}

# deploy_lint [-f FILE]...: lint the chart; output to stderr.
deploy_lint() {
	if [[ $RENDERER == helm ]]; then
		helm lint --strict "$CHART" "$@" >&2
	else
		helm_render --lint --name ci-fixer --namespace default "$@" "$CHART" >/dev/null
	fi
}

# deploy_need_tools: print a skip plan and exit when a tool is missing.
deploy_need_tools() {
	if [[ -z $PY ]]; then
		tap_skip "deploy checks" "python3 with PyYAML (Debian python3-yaml) not found"
		tap_done
		exit 0
	fi
	if [[ -z $RENDERER ]]; then
		tap_skip "deploy checks" "neither helm nor $HELM_RENDER found"
		tap_done
		exit 0
	fi
}

# child shells (tap_check bash -c "...") use these too
export ROOT LIB CHART TMP PY RENDERER HELM_RENDER
export -f helm_render deploy_render deploy_lint

# deploy_serve_flags: the `ci-fixer serve` flag names, comma-separated: from
# the built program's --help when there is one, else from runner/cli.c's
# option table (the one place flags, help and config keys come from).
deploy_serve_flags() {
	local bin="$ROOT/${BUILD:-build}/ci-fixer"
	if [[ -x $bin ]] && "$bin" serve --help >/dev/null 2>&1; then
		"$bin" serve --help | grep -oE '^ +(-., )?--[a-z-]+' | sed 's/.*--//' | paste -sd, -
	elif [[ -f $ROOT/runner/cli.c ]]; then
		grep -oE '^\s*\{ "[a-z-]+", [^,]+, "[A-Z_]+", K_[A-Z]+, O\([a-z_]+\), [A-Z_| ]+,' "$ROOT/runner/cli.c" |
			grep -E 'C_SERVE|C_KUBE|C_JOB' | sed -E 's/^\s*\{ "([a-z-]+)".*/\1/' | paste -sd, -
	fi
}
export -f deploy_serve_flags

# deploy_check_verify_rbac WHEN APP [verify-rbac.sh args...]: after WHEN
# (what was applied), scripts/verify-rbac.sh passes and its table and
# kubectl auth can-i --as=APP agree on two rules: create jobs in ci-sandbox
# yes, delete nodes no.
deploy_check_verify_rbac() {
	local when=$1 app=$2 rc
	shift 2
	bash "$ROOT/scripts/verify-rbac.sh" "$@" >"$TMP/vr.out" 2>&1
	rc=$?
	cat "$TMP/vr.out" >&2
	if [[ $rc -eq 0 ]]; then
		tap_pass "scripts/verify-rbac.sh passes after applying $when (exit 0)"
	else
		tap_fail "scripts/verify-rbac.sh passes after applying $when" "exit $rc"
	fi
	tap_check "verify-rbac.sh table: create jobs allowed, delete nodes denied, nothing failed" bash -c "
		grep -qE '^PASS +allow +create jobs.batch -n ci-sandbox +yes +yes' '$TMP/vr.out' &&
		grep -qE '^PASS +deny +delete nodes \(cluster-wide\) +no +no' '$TMP/vr.out' &&
		! grep -q '^FAIL' '$TMP/vr.out'"
	tap_check "kubectl auth can-i create jobs -n ci-sandbox --as=$app: yes" \
		bash -c "[[ \$(kubectl auth can-i create jobs -n ci-sandbox --as=$app) == yes ]]"
	tap_check "kubectl auth can-i delete nodes --as=$app: no" \
		bash -c "[[ \$(kubectl auth can-i delete nodes --as=$app) == no ]]"
}
