#!/usr/bin/env bash
# Memory-safety leg: the channel, select and scheduler tests under valgrind
# memcheck, against a debug build of gocore (GOCORE_DEBUG=1: -O1 -g for
# readable stacks, plus the runtime's own asserts and balance checks).
#
# Usage: .ci/valgrind.sh [PYTHON] [PYTEST_ARGS...]
#   PYTHON       interpreter (default: the newest pyenv 3.12, else 3.11)
#   PYTEST_ARGS  replace the default subset (test paths relative to the repo
#                root or absolute, and any pytest options)
#
# Fails if valgrind reports any error that .ci/valgrind-cpython.supp does
# not suppress (invalid reads/writes/frees anywhere, uninitialised values
# used in gocore's code), or if a test fails. Leaks are not checked
# (--leak-check=no: the interpreter keeps much alive at exit; gocore's leak
# checks are the debug build's counters and tests/test_leaks.py).
# Threads: valgrind runs one thread at a time, so the Ms interleave but do
# not run in parallel; pytest-timeout is off (everything is ~30x slower) and
# the whole run is bounded by `timeout` instead. --fair-sched=yes: with
# valgrind's default lock a thread that never blocks (an M running a gosched
# loop keeps the GIL) can starve a thread woken from a futex for seconds.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"     # CI_REPO, ci_default_python, ci_install, ci_counts
repo=$CI_REPO
limit=${GOCORE_VALGRIND_TIMEOUT:-1800}

py=""
if [ $# -gt 0 ] && [ -z "$1" ]; then shift; fi      # an empty PYTHON: the default
if [ $# -gt 0 ] && [ -x "$1" ] && [ ! -d "$1" ]; then py=$1; shift; fi
[ -n "$py" ] || py=$(ci_default_python)
if [ -z "$py" ] || [ ! -x "$py" ]; then
    echo "valgrind leg: FAIL (no interpreter: pass one, or install 3.12 or 3.11 under pyenv)"
    exit 2
fi
if ! command -v valgrind >/dev/null; then
    echo "valgrind leg: FAIL (valgrind is not installed: apt-get install valgrind)"
    exit 2
fi

# The default subset: channels, select, the scheduler, the debug-build
# regressions and the network tests; the two million-goroutine runs are left
# out (3 of the 5 minutes, and nothing there that the other scheduler tests
# do not reach), and so is the 10,000-connection test (its smaller cousins
# run; GOCORE_VALGRIND=1 also shrinks the net stress loops).
if [ $# -gt 0 ]; then
    tests=()
    for a in "$@"; do       # paths relative to the repo root: pytest runs elsewhere
        if [ -e "$repo/${a%%::*}" ] && [ "${a#/}" = "$a" ]; then tests+=("$repo/$a"); else tests+=("$a"); fi
    done
else
    tests=("$repo/tests/test_chan.py" "$repo/tests/test_select.py" "$repo/tests/test_sched.py"
           "$repo/tests/test_debugbuild.py"
           "$repo/tests/test_net.py" "$repo/tests/test_net_timeout.py" "$repo/tests/test_net_stress.py" "$repo/tests/test_net_packet.py" "$repo/tests/test_net_dial.py" "$repo/tests/test_net_wait.py"
           -k "not test_million_goroutines_each_run_exactly_once and not test_10000_concurrent_connections")
fi

ci_workdir gocore-valgrind
start=$SECONDS
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "=== valgrind leg: py$ver ($py)"

log="$work/build.log"
if ! GOCORE_DEBUG=1 ci_install "$py" "$work/venv" "$work/wheels" "" pytest pytest-timeout hypothesis >"$log" 2>&1; then
    tail -n 30 "$log"
    echo "valgrind leg py$ver: FAIL (build/install, see above) in $((SECONDS - start))s"
    exit 1
fi
if ! (cd "$work" && "$work/venv/bin/python" -c 'import gocore._sched as s; assert s.DEBUG, "not the debug build"'); then
    echo "valgrind leg py$ver: FAIL (the installed gocore is not the debug build) in $((SECONDS - start))s"
    exit 1
fi

# From outside the source tree, so that the tests import the installed wheel.
echo "=== pytest ${tests[*]}"
set +e
(cd "$work" && PYTHONMALLOC=malloc GOCORE_VALGRIND=1 timeout -k 30 "$limit" \
    valgrind --tool=memcheck --error-exitcode=99 --fair-sched=yes \
        --errors-for-leak-kinds=none --leak-check=no \
        --suppressions="$repo/.ci/valgrind-cpython.supp" \
        --num-callers=40 --log-file="$work/vg.%p.log" \
        "$work/venv/bin/python" -m pytest -q -p no:cacheprovider --capture=sys \
        -p no:timeout -W ignore::pytest.PytestUnknownMarkWarning -W ignore::pytest.PytestConfigWarning "${tests[@]}") 2>&1 | tee "$work/test.log"
rc=${PIPESTATUS[0]}
set -e

# Every process valgrind followed wrote a log (forks too): sum their errors.
errors=0
suppressed=0
for f in "$work"/vg.*.log; do
    e=$(sed -nE 's/.*ERROR SUMMARY: ([0-9]+) errors.*/\1/p' "$f" | tail -n 1)
    s=$(sed -nE 's/.*suppressed: ([0-9]+) from.*/\1/p' "$f" | tail -n 1)
    errors=$((errors + ${e:-0}))
    suppressed=$((suppressed + ${s:-0}))
    if [ "${e:-0}" -gt 0 ]; then
        echo "=== valgrind errors in $(basename "$f") (first 3):"
        awk '/^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and|Argument)/{n++} n>=1 && n<=3' "$f" | head -n 200
    fi
done
counts=$(ci_counts "$work/test.log")
verdict=PASS
[ "$errors" -eq 0 ] || verdict=FAIL
if [ "$rc" -ne 0 ] && [ "$rc" -ne 99 ]; then verdict=FAIL; fi
echo "valgrind leg py$ver: $verdict (${counts:-no summary}; valgrind errors: $errors, suppressed CPython noise: $suppressed; rc=$rc) in $((SECONDS - start))s"
[ "$verdict" = PASS ]
