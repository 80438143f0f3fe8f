#!/bin/sh
# test.sh: the example project's test suite. Prints one line per check and
# exits 1 if any check fails (what a CI pipeline runs).
. ./calc.sh

failed=0
check() {
	name=$1 want=$2
	shift 2
	got=$("$@")
	if [ "$got" = "$want" ]; then
		echo "ok   $name"
	else
		echo "FAIL $name: $* gave $got, want $want"
		failed=$((failed + 1))
	fi
}

check "add 2 3" 5 add 2 3
check "add -1 1" 0 add -1 1
check "mul 4 5" 20 mul 4 5
check "mean 2 4 6" 4 mean 2 4 6

if [ "$failed" -ne 0 ]; then
	echo "$failed check(s) failed" >&2
	exit 1
fi
echo "all checks passed"
