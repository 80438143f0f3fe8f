#!/usr/bin/env bash
# What can be checked here without a cluster or a Docker engine:
# kustomize builds k8s-manifests/ (with rbac/) and rbac/; the plain
# Deployment is what issue 6 asks for; the Dockerfile passes hadolint's main
# rules (checked statically by deploy_lib.py: hadolint is not packaged for
# Debian) and its runtime stage installs the packages of every library the
# built binary needs; the scripts parse, pass shellcheck when present, and
# verify-rbac.sh handles its options and an unreachable cluster; the
# workflow runs kind-e2e.sh and helm lint.
set -u
. "$(dirname "$0")/deploy_common.bash"
deploy_need_tools

# --- kustomize
if command -v kubectl >/dev/null 2>&1; then
	tap_check "kubectl kustomize k8s-manifests/ builds" bash -c "kubectl kustomize '$ROOT/k8s-manifests' >'$TMP/k.yaml'"
	tap_check "kubectl kustomize rbac/ builds" bash -c "kubectl kustomize '$ROOT/rbac' >'$TMP/r.yaml'"
	objs=$($PY "$LIB" objects "$TMP/k.yaml" 2>/dev/null)
	echo "$objs" >&2
	for want in "Namespace /ci-sandbox" "ResourceQuota ci-sandbox/ci-fixer-sandbox-quota" \
		"LimitRange ci-sandbox/ci-fixer-sandbox-limits" "NetworkPolicy ci-sandbox/ci-fixer-sandbox-deny-all" \
		"ServiceAccount default/ci-fixer-app" "ServiceAccount ci-sandbox/ci-fixer-sandbox" \
		"Role ci-sandbox/ci-fixer-sandbox-manager" "RoleBinding ci-sandbox/ci-fixer-sandbox-binding" \
		"ConfigMap default/ci-fixer-app-config" "Deployment default/ci-fixer-app" "Service default/ci-fixer-app" \
		"NetworkPolicy default/ci-fixer-app" "PodDisruptionBudget default/ci-fixer-app"; do
		tap_check "kustomize k8s-manifests/: $want" grep -qxF "$want" <<<"$objs"
	done
	tap_check "k8s-manifests/ Deployment: app=ci-fixer, port 3001, probes, UID/GID 65532, token file, emptyDirs" \
		$PY - "$TMP/k.yaml" <<'PY'
import sys, yaml
d = [x for x in yaml.safe_load_all(open(sys.argv[1])) if x and x["kind"] == "Deployment"][0]
t = d["spec"]["template"]; s = t["spec"]; c = s["containers"][0]
vols = {v["name"]: v for v in s["volumes"]}
mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
tokarg = [a for a in c["args"] if a.startswith("--token-file=")]
checks = {
  "label": t["metadata"]["labels"].get("app") == "ci-fixer" and d["spec"]["selector"]["matchLabels"].get("app") == "ci-fixer",
  "port": c["ports"][0]["containerPort"] == 3001,
  "probes": c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            and c["startupProbe"]["httpGet"]["path"] == "/healthz",
  "uid": s["securityContext"]["runAsUser"] == 65532 and s["securityContext"]["runAsGroup"] == 65532
         and c["securityContext"]["runAsUser"] == 65532,
  "rofs": c["securityContext"]["readOnlyRootFilesystem"] is True,
  "tmp": "emptyDir" in vols[mounts["/tmp"]],
  "data": "emptyDir" in vols[mounts["/var/lib/ci-fixer"]] and "--data-dir=/var/lib/ci-fixer" in c["args"],
  "token": len(tokarg) == 1 and "secret" in vols[mounts[tokarg[0].split("=", 1)[1].rsplit("/", 1)[0]]],
  "config": "--config=/etc/ci-fixer/config.json" in c["args"] and "configMap" in vols[mounts["/etc/ci-fixer"]],
  "serve": c["args"][0] == "serve",
  "sa": s["serviceAccountName"] == "ci-fixer-app",
  "recreate": d["spec"]["strategy"]["type"] == "Recreate" and d["spec"]["replicas"] == 1,
}
bad = [k for k, v in checks.items() if not v]
print("failed:", bad)
sys.exit(1 if bad else 0)
PY
else
	tap_skip "kustomize checks" "kubectl not found"
fi

# --- Dockerfile
DF="$ROOT/Dockerfile"
tap_check "Dockerfile passes hadolint's main rules (DL3002/3004/3006/3007/3009/3014/3015/3020/3025/3027/4006, numeric USER)" \
	$PY "$LIB" dockerfile "$DF"
tap_check "Dockerfile stages: named build stage, slim runtime stage copying only the built program, ENTRYPOINT is it" \
	$PY "$LIB" dockerfile-stages "$DF"
cat >"$TMP/Dockerfile.onestage" <<'BAD'
FROM debian:bookworm AS build
RUN make
FROM build
COPY . /src
USER 65532
ENTRYPOINT ["/usr/bin/other"]
BAD
$PY "$LIB" dockerfile-stages "$TMP/Dockerfile.onestage" >"$TMP/stages.out"
cat "$TMP/stages.out" >&2
tap_check "the stage check catches a runtime stage built FROM the build stage, the context copied, a wrong ENTRYPOINT" bash -c "
	grep -q 'starts FROM the stage build' '$TMP/stages.out' && grep -q 'copies from the build context' '$TMP/stages.out' &&
	grep -q 'ENTRYPOINT /usr/bin/other is not the program' '$TMP/stages.out'"
tap_check "Dockerfile: bookworm build with make RELEASE=1, bookworm-slim runtime" bash -c "
	grep -q '^ARG BUILD_IMAGE=debian:bookworm\$' '$DF' && grep -q '^ARG RUNTIME_IMAGE=debian:bookworm-slim\$' '$DF' &&
	grep -q 'make .*RELEASE=1' '$DF'"
tap_check "Dockerfile: USER 65532:65532, ENTRYPOINT [\"/usr/local/bin/ci-fixer\"], CMD [\"serve\"]" bash -c "
	[[ \$(grep '^USER ' '$DF' | tail -1) == 'USER 65532:65532' ]] &&
	grep -qx 'ENTRYPOINT \[\"/usr/local/bin/ci-fixer\"\]' '$DF' && grep -qx 'CMD \[\"serve\"\]' '$DF'"
cat >"$TMP/Dockerfile.bad" <<'BAD'
FROM debian:latest
ADD . /src
RUN apt-get update && apt-get install -y build-essential
RUN make | tee log
USER root
ENTRYPOINT /usr/local/bin/ci-fixer
BAD
$PY "$LIB" dockerfile "$TMP/Dockerfile.bad" >"$TMP/bad.out"
cat "$TMP/bad.out" >&2
for rule in DL3007 DL3020 DL3015 DL3009 DL4006 DL3002 DL3025 "not multi-stage"; do
	tap_check "the Dockerfile check catches $rule" grep -q "$rule" "$TMP/bad.out"
done
tap_check ".dockerignore leaves out build/, .git and tests (allow-list)" bash -c "
	head -5 '$ROOT/.dockerignore' | grep -qx '\*' && ! grep -qE '^!(build|\.git|tests)' '$ROOT/.dockerignore' &&
	grep -qx '!Makefile' '$ROOT/.dockerignore' && grep -qx '!util/' '$ROOT/.dockerignore'"

# The Docker build context (.dockerignore's allow-list) holds everything
# `make RELEASE=1 build/ci-fixer` needs: copy just those paths and ask make
# for its plan (-n: nothing is compiled); the plan carries the hardening flags.
if ! make -C "$ROOT" -n RELEASE=1 BUILD=build build/ci-fixer >/dev/null 2>&1; then
	tap_skip "the Docker build context holds what make RELEASE=1 build/ci-fixer needs" \
		"the Makefile has no build/ci-fixer target yet"
else
	mkdir -p "$TMP/ctx"
	(cd "$ROOT" && sed -n 's/^!//p' .dockerignore | while read -r p; do
		p=${p%/}
		[[ -e $p ]] && cp -a --parents "$p" "$TMP/ctx/"
	done)
	rm -rf "$TMP/ctx/build"
	if make -C "$TMP/ctx" -n RELEASE=1 BUILD=build build/ci-fixer >"$TMP/plan" 2>"$TMP/plan.err"; then
		tap_pass "the Docker build context holds what make RELEASE=1 build/ci-fixer needs"
	else
		cat "$TMP/plan.err" >&2
		tap_fail "the Docker build context holds what make RELEASE=1 build/ci-fixer needs"
	fi
	tap_check "make RELEASE=1 compiles with -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE, links -pie relro now" bash -c "
		grep -q -- '-O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE' '$TMP/plan' &&
		grep -- '-o build/ci-fixer' '$TMP/plan' | grep -q -- '-pie -Wl,-z,relro,-z,now'"
fi

# The runtime stage's packages against the binary built here (when there is
# one; a Docker build uses the same bookworm toolchain and libraries):
#  - exactly the packages of the libraries it links (DT_NEEDED, what the
#    linker kept with Debian's default --as-needed), besides ca-certificates
#    and what debian:bookworm-slim already has: nothing missing, nothing extra;
#  - every library `ldd` resolves (the whole closure) comes from one of
#    those packages or their Depends/Pre-Depends (apt-cache depends --recurse),
#    so the runtime image has it; ldd finds none missing here.
BIN=$ROOT/${BUILD:-build}/ci-fixer
[[ ${BUILD:-build} == /* ]] && BIN=$BUILD/ci-fixer
BIN=${DEPLOY_TEST_BIN:-$BIN}
# in debian:bookworm-slim already (Priority: required upstream)
BASE_PKGS="libc6 libgcc-s1 zlib1g libstdc++6 libzstd1 liblzma5 libbz2-1.0 libselinux1"
pkg_of() { # pkg_of LIBPATH: the Debian package owning it (merged /usr aware)
	local p
	p=$(dpkg-query -S "$(readlink -f "$1")" 2>/dev/null | head -1 | cut -d: -f1)
	[[ -z $p ]] && p=$(dpkg-query -S "$1" 2>/dev/null | head -1 | cut -d: -f1)
	[[ -z $p ]] && p=$(dpkg-query -S "/usr$(readlink -f "$1" | sed 's|^/usr||')" 2>/dev/null | head -1 | cut -d: -f1)
	echo "${p:-?}"
}
if [[ -x $BIN ]] && readelf -d "$BIN" 2>/dev/null | grep -qE 'Shared library: \[lib(a|t|ub)san'; then
	# make check's sanitizer build links libasan/libubsan (and, without
	# --as-needed, more): not what the Dockerfile builds; make test checks it
	tap_skip "Dockerfile runtime stage matches build/ci-fixer's libraries" \
		"$BIN is a sanitizer build; make test checks the plain one"
elif [[ -x $BIN ]] && command -v readelf >/dev/null && command -v dpkg-query >/dev/null && command -v ldd >/dev/null; then
	runtime_pkgs=$(sed -n '/^FROM \${RUNTIME_IMAGE}/,$p' "$DF" | sed -n '/apt-get install/,/rm -rf/p' |
		tr ' \\' '\n\n' | grep -E '^lib' | sort -u)
	echo "runtime packages: $(echo $runtime_pkgs)" >&2
	needed_pkgs=
	for lib in $(readelf -d "$BIN" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
		path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|x86_64|AArch64/ {print $NF; exit}')
		[[ -n $path ]] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
		pkg=$(pkg_of "$path")
		echo "  DT_NEEDED $lib -> $path -> $pkg" >&2
		grep -qxF "$pkg" <<<"${BASE_PKGS// /$'\n'}" || needed_pkgs+="$pkg"$'\n'
	done
	needed_pkgs=$(printf '%s' "$needed_pkgs" | sort -u)
	missing=$(comm -13 <(echo "$runtime_pkgs") <(echo "$needed_pkgs") | paste -sd' ' -)
	extra=$(comm -23 <(echo "$runtime_pkgs") <(echo "$needed_pkgs") | paste -sd' ' -)
	tap_check "runtime stage installs exactly the packages of build/ci-fixer's libraries${missing:+ (missing: $missing)}${extra:+ (not linked: $extra)}" \
		test -z "$missing$extra"
	ldd "$BIN" >"$TMP/ldd" 2>&1
	cat "$TMP/ldd" >&2
	tap_check "ldd build/ci-fixer: no library not found" bash -c "! grep -q 'not found' '$TMP/ldd'"
	if apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
		--no-enhances $runtime_pkgs 2>/dev/null | grep -vE '^[ <]' | sort -u >"$TMP/closure" && [[ -s $TMP/closure ]]; then
		uncovered=
		for f in $(awk '$2 == "=>" && $3 ~ /^\// {print $3}' "$TMP/ldd"); do
			pkg=$(pkg_of "$f")
			grep -qxF "$pkg" "$TMP/closure" || grep -qxF "$pkg" <<<"${BASE_PKGS// /$'\n'}" || uncovered+=" $f($pkg)"
		done
		tap_check "every library ldd resolves comes with the runtime packages' dependencies${uncovered:+ (not:$uncovered)}" \
			test -z "$uncovered"
	else
		tap_skip "every library ldd resolves comes with the runtime packages' dependencies" \
			"apt-cache has no package lists (run apt-get update)"
	fi
else
	tap_skip "Dockerfile runtime stage matches build/ci-fixer's libraries" "no built ${BUILD:-build}/ci-fixer (or readelf/dpkg/ldd) here"
fi

# --- scripts and workflow
for s in scripts/verify-rbac.sh scripts/kind-e2e.sh; do
	tap_check "$s parses (bash -n) and is executable" bash -c "bash -n '$ROOT/$s' && test -x '$ROOT/$s'"
	if command -v shellcheck >/dev/null 2>&1; then
		tap_check "$s passes shellcheck" shellcheck "$ROOT/$s"
	else
		tap_skip "$s passes shellcheck" "shellcheck not found"
	fi
done
# What kind-e2e.sh looks for in the ConfigMap after upgrade (--set
# config.maxConcurrent=2) and rollback (defaults) is what the chart renders.
e2e_up=$(grep -o "config.maxConcurrent=2 *\$" "$ROOT/scripts/kind-e2e.sh" | head -1)
e2e_pat2=$(sed -n "s/.*config\\\\.json}' | grep -q '\(.*\)' ||.*/\1/p" "$ROOT/scripts/kind-e2e.sh" | sed -n 1p)
e2e_pat4=$(sed -n "s/.*config\\\\.json}' | grep -q '\(.*\)' ||.*/\1/p" "$ROOT/scripts/kind-e2e.sh" | sed -n 2p)
echo "kind-e2e.sh ConfigMap patterns: [$e2e_pat2] [$e2e_pat4] ($e2e_up)" >&2
if deploy_render "$TMP/e2e-up.yaml" --set config.maxConcurrent=2 && deploy_render "$TMP/e2e-def.yaml"; then
	tap_check "kind-e2e.sh's ConfigMap checks match the chart's config.json (upgrade and rollback)" bash -c "
		[[ -n '$e2e_pat2' && -n '$e2e_pat4' && -n '$e2e_up' ]] &&
		$PY '$LIB' config '$TMP/e2e-up.yaml' >/dev/null &&
		grep -qF '$e2e_pat2' '$TMP/e2e-up.yaml' && ! grep -qF '$e2e_pat2' '$TMP/e2e-def.yaml' &&
		grep -qF '$e2e_pat4' '$TMP/e2e-def.yaml' && ! grep -qF '$e2e_pat4' '$TMP/e2e-up.yaml'"
else
	tap_fail "kind-e2e.sh's ConfigMap checks match the chart's config.json" "render failed"
fi
tap_check "verify-rbac.sh --help exits 0 and names its options" bash -c "
	'$ROOT/scripts/verify-rbac.sh' --help | grep -q -- '--app-sa' && '$ROOT/scripts/verify-rbac.sh' --help | grep -q -- '--kubeconfig'"
tap_check "verify-rbac.sh: an unknown option exits 2" bash -c "'$ROOT/scripts/verify-rbac.sh' --bogus; [[ \$? -eq 2 ]]"
tap_check "verify-rbac.sh: --jobs 0 exits 2" bash -c "'$ROOT/scripts/verify-rbac.sh' --jobs 0; [[ \$? -eq 2 ]]"
tap_check "verify-rbac.sh: a malformed --app-sa exits 2" bash -c "'$ROOT/scripts/verify-rbac.sh' --app-sa x:y:z; [[ \$? -eq 2 ]]"
cat >"$TMP/nowhere.kubeconfig" <<'KC'
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
KC
if command -v kubectl >/dev/null 2>&1; then
	tap_check "verify-rbac.sh: an unreachable cluster exits 2 (not a pass)" bash -c \
		"timeout 60 '$ROOT/scripts/verify-rbac.sh' --kubeconfig '$TMP/nowhere.kubeconfig'; [[ \$? -eq 2 ]]"
else
	tap_skip "verify-rbac.sh: an unreachable cluster exits 2" "kubectl not found"
fi
tap_check "verify-rbac.sh checks at least 15 dangerous permissions" bash -c \
	"[[ \$(grep -cE '^(\[\[.*\]\] && )?deny ' '$ROOT/scripts/verify-rbac.sh') -ge 15 ]]"
tap_check "kind-e2e.sh --help works; without Docker/kind it exits 2, not 0" bash -c "
	'$ROOT/scripts/kind-e2e.sh' --help | grep -q 'helm rollback' &&
	{ command -v docker >/dev/null && command -v kind >/dev/null && exit 0;
	  PATH=/nonexistent:/usr/bin:/bin; '$ROOT/scripts/kind-e2e.sh' --cluster none 2>/dev/null; [[ \$? -eq 2 ]]; }"
tap_check ".github/workflows/e2e.yaml runs kind-e2e.sh and helm lint for both values files" $PY - \
	"$ROOT/.github/workflows/e2e.yaml" <<'PY'
import sys, yaml
w = yaml.safe_load(open(sys.argv[1]))
runs = "\n".join(s.get("run", "") for j in w["jobs"].values() for s in j["steps"])
ok = ("scripts/kind-e2e.sh" in runs and "helm lint --strict chart/\n" in runs
      and "helm lint --strict chart/ -f chart/values-prod.yaml" in runs)
sys.exit(0 if ok else 1)
PY
tap_check "docs/deploy.md says what cannot run here and what is checked instead" bash -c "
	grep -qi 'cannot run here' '$ROOT/docs/deploy.md' && grep -q 'kubesim' '$ROOT/docs/deploy.md'"
tap_done
