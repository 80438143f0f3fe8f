# TAP helpers for test scripts (source this file). Each check prints one
# "ok N - name" or "not ok N - name" line on stdout; diagnostics go to
# stderr (kept in the driver's log). Finish with tap_done.
#
#   . "$(dirname "$0")/../lib/tap.sh"
#   tap_check "kubectl get pods works" kubectl get pods
#   tap_skip "needs npm" "npm not found"; tap_done
_tap_n=0
_tap_failed=0

# tap_check NAME CMD...: run CMD, ok if it exits 0 (its output goes to stderr).
tap_check() {
	local name=$1
	shift
	_tap_n=$((_tap_n + 1))
	if "$@" >&2; then
		echo "ok $_tap_n - $name"
	else
		echo "not ok $_tap_n - $name"
		_tap_failed=$((_tap_failed + 1))
	fi
}

tap_pass() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1"; }
tap_fail() {
	_tap_n=$((_tap_n + 1))
	echo "not ok $_tap_n - $1"
	[ $# -gt 1 ] && echo "    $2" >&2
	_tap_failed=$((_tap_failed + 1))
}
tap_skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP ${2:-}"; }

# tap_done: print the plan; exit status 0 only if nothing failed.
tap_done() {
	echo "1..$_tap_n"
	[ "$_tap_failed" -eq 0 ]
}
