#!/usr/bin/env bash
# Memcheck over the kube unit tests, the kube integration tests and the
# sandbox integration tests (issue 4 and issue 8: "valgrind clean").
#
#   BUILD=build tests/tools/valgrind.sh [program-regex]
#
# Criterion 2.4 has no no-fork mode: its runner re-executes the test
# program once per test (argv[0] "boxfort-worker"), so memcheck must follow
# children. It follows only those: every other executable a test starts
# (kubesim, sh, git, kubectl, plugin scripts) runs natively
# (--trace-children-skip), since only our test programs are checked here.
# One log per process goes to $BUILD/valgrind/; the summary at the end adds
# up their "ERROR SUMMARY" lines (definite leaks count as errors) and the
# Criterion results.
#
# Environment:
#   VALGRIND_SKIP   programs left out (regex on the name); default: the two
#                   volume tests, 1,000 sequential execs and 2 x 100 MiB,
#                   whose code paths the other exec tests cover and which
#                   take far past their timeouts at memcheck's speed.
#                   VALGRIND_SKIP=none runs everything.
#   VALGRIND_TIMEOUT  wall-clock limit per program (default 900 s).
# Two runs may share $BUILD/valgrind when their regexes select different
# programs (each program's files are replaced, not the directory).
# Exit status 0 only when every program ran, no test failed and memcheck
# counted no error.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
FILTER=${1:-.}
SKIP=${VALGRIND_SKIP:-'test_kube_exec_(big|seq)$'}
[[ $SKIP == none ]] && SKIP='^$'
LIMIT=${VALGRIND_TIMEOUT:-900}
out=$BUILD/valgrind
# CIFIXER_VALGRIND: the few volume tests move less data under memcheck
export CIFIXER_TEST_ROOT=$PWD CIFIXER_VALGRIND=1

command -v valgrind >/dev/null || { echo "valgrind not installed"; echo "0 passed, 1 failed"; exit 1; }

progs=()
for p in "$BUILD"/tests/unit/test_kube_* "$BUILD"/tests/integration/test_kube_* \
	"$BUILD"/tests/integration/test_sandbox_*; do
	[[ -f $p && -x $p && $p != *.d ]] || continue
	b=$(basename "$p")
	[[ $b == test_kubelet_* ]] && continue # kubesim's node half, not the kube client
	[[ $p =~ $FILTER ]] || continue
	n=$(basename "$(dirname "$p")")_$b # unit_test_kube_exec, integration_test_kube_exec
	if [[ $n =~ $SKIP ]]; then
		echo "skipped under valgrind: $n (VALGRIND_SKIP)"
		continue
	fi
	progs+=("$p")
done
if [[ ${#progs[@]} -eq 0 ]]; then
	echo "no test programs under $BUILD/tests (run make -j2 tests first)"
	exit 1
fi
mkdir -p "$out"

# Other engineers' `make` relinks $BUILD/tests/* and $BUILD/kubesim while we
# run (a relink mid-run made Criterion find no test, or fail to re-execute
# itself): run private copies. The tests find kubesim and ci-fixer under
# $CIFIXER_TEST_ROOT/$BUILD, so BUILD points at the stage for them.
stage=$out/stage
mkdir -p "$stage/bin"
for b in kubesim ci-fixer; do
	# copy, then rename: a running copy is never overwritten in place
	[[ -x $BUILD/$b ]] && cp -f "$BUILD/$b" "$stage/.$b.$$" && mv -f "$stage/.$b.$$" "$stage/$b"
done
export BUILD=$stage

# Executables memcheck must not follow: anything outside the build tree and
# the programs of other layers inside it.
skip_children='/bin/*,/sbin/*,/usr/*,/lib/*,/lib64/*,/opt/*,/tmp/*,/var/*,/etc/*,/root/*,/home/*,/run/*,/proc/*'
skip_children+=',*/kubesim,*/ci-fixer,*.sh,*.py,*.bash,sh,bash,env'

total_err=0 total_pass=0 total_fail=0 bad_progs=()
for p in "${progs[@]}"; do
	n=$(basename "$(dirname "$p")")_$(basename "$p")
	rm -f "$out/$n".*
	cp -f "$p" "$stage/bin/.$n.$$" && mv -f "$stage/bin/.$n.$$" "$stage/bin/$n"
	start=$SECONDS
	timeout -k 10 "$LIMIT" valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite --show-leak-kinds=definite --num-callers=30 \
		--trace-children=yes --trace-children-skip="$skip_children" \
		--suppressions=tests/tools/valgrind.supp --log-file="$out/$n.%p.log" \
		"$PWD/$stage/bin/$n" --jobs=1 --tap="$out/$n.tap" >"$out/$n.out" 2>&1
	rc=$?
	errs=0
	for l in "$out/$n".*.log; do
		[[ -f $l ]] || continue
		e=$(grep -oE 'ERROR SUMMARY: [0-9]+' "$l" | tail -1 | grep -oE '[0-9]+$')
		if [[ -z $e ]]; then
			# a process that never finished its log (killed): count it
			grep -q 'boxfort-worker\|Command:' "$l" && e=0
		fi
		errs=$((errs + ${e:-0}))
	done
	ok=$(grep -cE '^ok ' "$out/$n.tap" 2>/dev/null); ok=${ok:-0}
	nok=$(grep -cE '^not ok ' "$out/$n.tap" 2>/dev/null); nok=${nok:-0}
	total_err=$((total_err + errs)); total_pass=$((total_pass + ok)); total_fail=$((total_fail + nok))
	status=ok
	if [[ $errs -gt 0 || $nok -gt 0 ]]; then
		status=FAIL
	elif [[ $ok -eq 0 || ($rc -ne 0 && $rc -ne 99) ]]; then
		status="FAIL (exit $rc)"
		total_fail=$((total_fail + 1))
	fi
	[[ $status == ok ]] || bad_progs+=("$n")
	printf '%-34s %3d tests ok %3d failed %4d memcheck errors %5ds  %s\n' "$n" "$ok" "$nok" "$errs" \
		$((SECONDS - start)) "$status"
done

for n in "${bad_progs[@]}"; do
	echo "---- $n"
	grep -E '^not ok' "$out/$n.tap" 2>/dev/null | head -10
	for l in "$out/$n".*.log; do
		if grep -qE 'ERROR SUMMARY: [1-9]' "$l"; then
			echo "  $l:"
			grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and|[0-9,]+ bytes in [0-9,]+ blocks are definitely|   (at|by) 0x)' "$l" |
				head -30 | sed 's/^/    /'
		fi
	done
done
echo "valgrind: ${#progs[@]} programs, $total_pass tests passed, $total_fail failed, $total_err memcheck errors (logs: $out/)"
[[ $total_err -eq 0 && $total_fail -eq 0 && ${#bad_progs[@]} -eq 0 ]]
