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

repo=$(cd "$(dirname "$0")/.." && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

newest_pyenv() {   # newest installed pyenv version of a minor series, or nothing
    local minor=$1 v
    v=$(pyenv versions --bare 2>/dev/null | grep -E "^${minor//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)
    if [ -n "$v" ]; then echo "$(pyenv prefix "$v")/bin/python"; fi
}

py=${1:-}
if [ -z "$py" ]; then
    py=$(newest_pyenv 3.12)
    [ -n "$py" ] || py=$(newest_pyenv 3.11)
fi
if [ -z "$py" ] || [ ! -x "$py" ]; then
    echo "debug leg: FAIL (no interpreter: pass one, or install 3.12 or 3.11 under pyenv)"
    exit 2
fi

work=$(mktemp -d /tmp/gocore-debug-leg.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "=== debug leg: py$ver ($py)"

log="$work/build.log"
if ! { "$py" -m venv "$work/venv" &&
       "$work/venv/bin/pip" install -q --upgrade pip wheel &&
       GOCORE_DEBUG=1 "$work/venv/bin/pip" wheel -q --no-deps -w "$work/wheels" "$repo" &&
       "$work/venv/bin/pip" install -q "$work"/wheels/gocore-*.whl pytest pytest-timeout hypothesis; } >"$log" 2>&1; then
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

set +e
(cd "$work" && "$work/venv/bin/python" -P -m pytest "$repo/tests" -q -p no:cacheprovider --capture=sys) 2>&1 | tee "$work/test.log"
rc=${PIPESTATUS[0]}
set -e
counts=$(grep -E "[0-9]+ (passed|failed)" "$work/test.log" | tail -n 1 || true)
if [ "$rc" -eq 0 ]; then
    echo "debug leg py$ver: PASS (${counts:-no summary}) in $((SECONDS - start))s"
else
    echo "debug leg py$ver: FAIL rc=$rc (${counts:-no summary: the run aborted, see the fatal error above}) in $((SECONDS - start))s"
fi
exit "$rc"
