#!/usr/bin/env bash
# The release build (make RELEASE=1: -O2, _FORTIFY_SOURCE=2, stack
# protector, PIE, full RELRO, non-executable stack) compiles with
# -Werror: -O2 and fortify enable warnings (format truncation, maybe
# uninitialized) that the -O0 test build never sees, and make bench and
# the Dockerfile build this way. Then the binaries carry the hardening.
# It builds into $BUILD/release (a directory of its own).
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh

BUILD=${BUILD:-build}
out=${BUILD%/}/release
for t in readelf; do
	if ! command -v "$t" >/dev/null 2>&1; then
		tap_skip "release build" "$t not found"
		tap_done
		exit 0
	fi
done

# one job: this runs beside other tests; the parent make's jobserver
# variables are not ours
if env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory -j1 RELEASE=1 SANITIZE= \
	BUILD="$out" all >"$out.make.log" 2>&1; then
	tap_pass "make RELEASE=1 all builds with -Werror (log: $out.make.log)"
else
	tail -n 40 "$out.make.log" >&2
	tap_fail "make RELEASE=1 all builds with -Werror" "see $out.make.log"
	tap_done
	exit 1
fi
for b in ci-fixer kubesim; do
	f=$out/$b
	tap_check "$b is a position-independent executable" bash -c "readelf -h '$f' | grep -q 'Type:.*DYN'"
	tap_check "$b has full RELRO (GNU_RELRO and BIND_NOW)" bash -c \
		"readelf -lW '$f' | grep -q GNU_RELRO && readelf -dW '$f' | grep -qE 'BIND_NOW|FLAGS.*NOW'"
	tap_check "$b has a non-executable stack" bash -c "readelf -lW '$f' | grep -E 'GNU_STACK' | grep -qv 'RWE'"
	tap_check "$b is built with the stack protector and fortify" bash -c \
		"readelf -sW --dyn-syms '$f' | grep -q '__stack_chk_fail' && readelf -sW --dyn-syms '$f' | grep -qE '__[a-z]+_chk@'"
done
tap_done
