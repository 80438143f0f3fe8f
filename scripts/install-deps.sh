#!/usr/bin/env bash
# Install, with apt-get, exactly the Debian packages that ci-fixer's build,
# tests and demo need, and only those that are missing. Idempotent: when
# everything is present it prints nothing and installs nothing.
set -euo pipefail

pkgs=(
	build-essential      # gcc, make, libc headers
	pkg-config
	clang                # make fuzz (libFuzzer)
	git                  # test repositories, the demo
	ca-certificates
	libcurl4-openssl-dev # REST and the exec WebSocket transport (OpenSSL flavour)
	libssl-dev           # hashing, randomness, kubesim's certificates
	libcjson-dev
	libyaml-dev          # kubeconfig, manifests
	libgit2-dev          # workspace clone, checkout, diff
	libmicrohttpd-dev    # the HTTP API and kubesim's server
	libgnutls28-dev      # kubesim: client certificates through libmicrohttpd's GnuTLS session
	libsqlite3-dev       # finished-run store
	libcriterion-dev     # unit tests
	nodejs               # @kubernetes/client-node tests and benchmarks
	npm
	util-linux           # unshare, nsenter for kubesim's pod isolation
	procps
	valgrind             # make check's valgrind pass
	curl                 # tests talk to kubesim and serve with the curl command
	openssl              # the benchmarks' TLS checks
	time                 # /usr/bin/time -v: the benchmarks' CPU and peak RSS
	python3              # test and benchmark helpers (JSON, YAML, reports)
	python3-yaml         # deploy tests read rendered manifests
)

# Without a helm binary the deploy tests render the chart with
# ../shared/tools/helm-render, which builds itself from Debian's Go packages
# on first use; installing them here keeps that first use from running
# apt-get inside the tests, several at once.
if ! command -v helm >/dev/null 2>&1; then
	pkgs+=(golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
		golang-github-xeipuuv-gojsonschema-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
# drop PKG from missing (exact name): the tool is there outside dpkg
have() {
	local keep=() m
	for m in "${missing[@]}"; do
		[[ $m == "$1" ]] || keep+=("$m")
	done
	missing=("${keep[@]}")
}
command -v node >/dev/null 2>&1 && have nodejs
command -v npm >/dev/null 2>&1 && have npm
# A python3 outside dpkg (pyenv, say) counts when it has what is needed.
if command -v python3 >/dev/null 2>&1; then
	have python3
	python3 -c 'import yaml' >/dev/null 2>&1 && have python3-yaml
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: these packages are missing and installing them needs root: ${missing[*]}" >&2
	echo "install-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: apt-get not found; install by hand: ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >&2; then
	echo "install-deps: apt-get update failed (no network to the Debian mirror?)" >&2
	exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
	echo "install-deps: apt-get install failed for: ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: done" >&2
