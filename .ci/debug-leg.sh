#!/usr/bin/env bash
# CI leg: the test suite against a debug build of gocore (GOCORE_DEBUG=1:
# invariant asserts, a 4-slot local run queue, balance counters checked at
# the end of every run() and at interpreter exit; see docs/testing.md).
#
# Usage: .ci/debug-leg.sh [PYTHON]
#   PYTHON  interpreter to test with (default: the newest pyenv 3.12, else 3.11)
#
# Like .ci/run: a fresh venv in a temp dir, a wheel built from this checkout
# and installed there, the suite run from outside the source tree. It checks
# that the installed module really is the debug build before testing.
# pytest runs with --capture=sys: a runtime assert aborts the process, and
# with fd-level capture its message would be lost with pytest's temp files.
# Prints one summary line last; exits non-zero on any failure.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"     # CI_REPO, ci_default_python, ci_install, ci_tee, ci_counts
repo=$CI_REPO

py=${1:-}
[ -n "$py" ] || py=$(ci_default_python)
if [ -z "$py" ] || [ ! -x "$py" ]; then
    echo "debug leg: FAIL (no interpreter: pass one, or install 3.12 or 3.11 under pyenv)"
    exit 2
fi

ci_workdir gocore-debug-leg
start=$SECONDS
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "=== debug leg: py$ver ($py)"

log="$work/build.log"
if ! GOCORE_DEBUG=1 ci_install "$py" "$work/venv" "$work/wheels" "" pytest pytest-timeout hypothesis >"$log" 2>&1; then
    tail -n 30 "$log"
    echo "debug leg py$ver: FAIL (build/install, see above) in $((SECONDS - start))s"
    exit 1
fi

# The installed module must be the compiled debug build (not a release
# object reused from a build tree, not a source checkout).
if ! (cd "$work" && "$work/venv/bin/python" -c '
import gocore._sched as s
assert s.__file__.endswith(".so"), s.__file__
assert s.DEBUG is True, "gocore._sched.DEBUG is False: a release build was installed"
assert s._sched_counters()["runq_cap"] == 4, s._sched_counters()["runq_cap"]
print("debug core:", s.__file__)
'); then
    echo "debug leg py$ver: FAIL (the installed gocore is not the debug build) in $((SECONDS - start))s"
    exit 1
fi

rc=0
ci_tee "$work/test.log" "$work" "$work/venv/bin/python" -P -m pytest "$repo/tests" -q -p no:cacheprovider --capture=sys || rc=$?
counts=$(ci_counts "$work/test.log")
if [ "$rc" -eq 0 ]; then
    echo "debug leg py$ver: PASS (${counts:-no summary}) in $((SECONDS - start))s"
else
    echo "debug leg py$ver: FAIL rc=$rc (${counts:-no summary: the run aborted, see the fatal error above}) in $((SECONDS - start))s"
fi
exit "$rc"
