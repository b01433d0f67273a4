#!/usr/bin/env bash
# CI leg: the test suite on free-threaded CPython 3.13 ("3.13t") with the
# GIL disabled (see docs/free-threading.md).
#
# Usage: .ci/ft-leg.sh
#
# 1. .ci/ft-python.sh builds the interpreter from Debian's python3.13 source
#    package once (about 2-4 minutes on 2 cores) and reuses it afterwards.
# 2. As .ci/run does for the GIL builds: a fresh venv in a temp dir, a wheel
#    built from this checkout and installed there with the test tools, the
#    suite run from outside the source tree.
# 3. It checks that `import gocore` leaves the GIL disabled, and runs pytest
#    with -W error::RuntimeWarning: a module without the free-threading
#    declaration would re-enable the GIL with that warning, and the suite
#    would then pass without ever running free-threaded.
# mypy cannot be installed on 3.13t here (a Rust dependency has no wheel for
# it), so tests/test_typing.py skips its two mypy tests on this leg; the GIL
# legs run them.
# Prints one summary line last; exits non-zero on any failure.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"     # CI_REPO, ci_install, ci_tee, ci_counts
repo=$CI_REPO
start=$SECONDS
echo "=== free-threaded leg: py3.13t"

if ! py=$(bash "$repo/.ci/ft-python.sh" | tail -n 1) || [ ! -x "$py" ]; then
    echo "ft leg py3.13t: FAIL (could not build or find the free-threaded interpreter) in $((SECONDS - start))s"
    exit 1
fi
echo "interpreter: $py ($(( SECONDS - start ))s)"

ci_workdir gocore-ft-leg
log="$work/build.log"
if ! { ci_install "$py" "$work/venv" "$work/wheels" "" pytest pytest-timeout &&
       "$work/venv/bin/pip" install -q --only-binary :all: hypothesis; } >"$log" 2>&1; then
    tail -n 30 "$log"
    echo "ft leg py3.13t: FAIL (build/install, see above) in $((SECONDS - start))s"
    exit 1
fi

if ! (cd "$work" && "$work/venv/bin/python" -W error::RuntimeWarning -c '
import sys
import gocore._sched as s
assert s.__file__.endswith(".so"), s.__file__
assert not sys._is_gil_enabled(), "import gocore re-enabled the GIL"
print("free-threaded core:", s.__file__, "- GIL disabled:", not sys._is_gil_enabled())
'); then
    echo "ft leg py3.13t: FAIL (the installed gocore is not a free-threaded build, or enables the GIL) in $((SECONDS - start))s"
    exit 1
fi

rc=0
ci_tee "$work/test.log" "$work" "$work/venv/bin/python" -P -W error::RuntimeWarning -m pytest "$repo/tests" -q -p no:cacheprovider || rc=$?
counts=$(ci_counts "$work/test.log")
if [ "$rc" -eq 0 ]; then
    echo "ft leg py3.13t: PASS (${counts:-no summary}) in $((SECONDS - start))s"
else
    echo "ft leg py3.13t: FAIL rc=$rc (${counts:-no summary}) in $((SECONDS - start))s"
fi
exit "$rc"
