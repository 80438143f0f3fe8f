#!/usr/bin/env bash
# ThreadSanitizer over the kube client's concurrency (issue 8).
#
#   tests/tools/tsan.sh
#
# Builds the layers with the Makefile's own switch into build/tsan
# (make SANITIZE=thread BUILD=build/tsan), then tests/tools/tsan_kube.c
# against them, and runs it against the real kubesim of the plain build
# ($BUILD, default build: `make` first). The scenarios are those of the
# Criterion concurrency tests (one client shared by 8 threads over TLS, the
# token-file credential cache under rotation, cancellation of a watch and
# an exec from another thread, 100 concurrent execs from 100 threads),
# repeated in a plain program because Criterion 2.4's runner cannot start
# under TSan (Snaipe/Criterion#274: "Could not initialize inheritable
# arena"). Summary: the scenarios' results and the number of TSan reports.
# Exit status 0 only when every scenario passed and TSan reported nothing.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TB=build/tsan
out=$TB/tsan-logs
mkdir -p "$out"
export CIFIXER_TEST_ROOT=$PWD

if [[ ! -x $BUILD/kubesim ]]; then
	echo "$BUILD/kubesim not built (run make first)"
	exit 1
fi
echo "building the layers with -fsanitize=thread into $TB"
if ! make --no-print-directory -j2 SANITIZE=thread BUILD=$TB $TB/lib/libkube.a $TB/lib/libutil.a \
	$TB/obj/tests/lib/kubesim_harness.o >"$out/make.log" 2>&1; then
	tail -30 "$out/make.log"
	echo "tsan: build failed"
	exit 1
fi
# the same flags as the Makefile's SANITIZE=thread build
CFLAGS_T="-std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. $(pkg-config --cflags libcurl openssl libcjson) -pthread -O1 -g -fno-omit-frame-pointer -fsanitize=thread"
if ! cc $CFLAGS_T tests/tools/tsan_kube.c $TB/obj/tests/lib/kubesim_harness.o -o $TB/tsan_kube \
	-fsanitize=thread $TB/lib/libkube.a $TB/lib/libutil.a \
	$(pkg-config --libs libcurl openssl libcjson yaml-0.1) -lm >>"$out/make.log" 2>&1; then
	tail -30 "$out/make.log"
	echo "tsan: build of tsan_kube failed"
	exit 1
fi
rm -f "$out"/report.*
# halt_on_error=0: see every report; second_deadlock_stack for lock-order ones
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 history_size=4 log_path=$PWD/$out/report"
start=$SECONDS
BUILD=$BUILD timeout -k 10 900 "$TB/tsan_kube"
rc=$?
reports=$(cat "$out"/report.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer')
echo "tsan: tsan_kube exit $rc in $((SECONDS - start)) s, $reports ThreadSanitizer reports (logs: $out/report.*)"
if [[ $reports -gt 0 ]]; then
	cat "$out"/report.* | grep -E '^WARNING: ThreadSanitizer|^    #[0-3] ' | head -60
fi
[[ $rc -eq 0 && $reports -eq 0 ]]
