#!/usr/bin/env bash
# A short pass of every libFuzzer target (FUZZ_SMOKE_SECONDS each, default
# 4) inside make test, so a parser change that crashes on its own seed
# corpus or on the first mutations fails the suite. The long runs are
# `make fuzz FUZZ_SECONDS=600`.
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
if ! command -v clang >/dev/null 2>&1; then
	tap_skip "fuzz targets" "clang (libFuzzer) is not installed"
	tap_done
	exit
fi
if ! make --no-print-directory fuzz-build >&2; then
	tap_fail "fuzz targets build with clang -fsanitize=fuzzer,address,undefined"
	tap_done
	exit
fi
tap_pass "fuzz targets build with clang -fsanitize=fuzzer,address,undefined"
for b in build/fuzz/fuzz-bin/fuzz_*; do
	[[ -x $b && $b != *.d ]] || continue
	t=$(basename "$b")
	tap_check "$t runs ${FUZZ_SMOKE_SECONDS:-4}s without a crash" \
		env FUZZ_SECONDS="${FUZZ_SMOKE_SECONDS:-4}" BUILD=build/fuzz tests/fuzz/run.sh "$t"
done
tap_done
