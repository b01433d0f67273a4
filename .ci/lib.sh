# .ci/lib.sh - what the CI leg scripts share (sourced by .ci/run,
# .ci/debug-leg.sh, .ci/valgrind.sh and .ci/ft-leg.sh; not run by itself):
# the checkout's path, pip's quiet settings, finding a pyenv interpreter,
# a fresh venv with gocore's wheel built from the checkout and installed,
# and running the tests from outside the source tree.
#
# Each function returns a status and prints nothing of its own on success,
# so a leg keeps its own messages and summary line. Safe under `set -euo
# pipefail` and without it.

# The checkout this file belongs to (the legs build the wheel from it).
CI_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

# ci_newest_pyenv MINOR: the newest installed pyenv version of a minor
# series (3.12 -> .../3.12.N/bin/python), or nothing.
ci_newest_pyenv() {
    local minor=$1 v
    v=$(pyenv versions --bare 2>/dev/null | grep -E "^${minor//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)
    if [ -n "$v" ]; then echo "$(pyenv prefix "$v")/bin/python"; fi
}

# ci_default_python: the debug and valgrind legs' default interpreter, the
# newest pyenv 3.12, else 3.11; nothing if neither is installed.
ci_default_python() {
    local py
    py=$(ci_newest_pyenv 3.12)
    [ -n "$py" ] || py=$(ci_newest_pyenv 3.11)
    echo "$py"
}

# ci_workdir NAME: sets $work to a new temp directory, removed at exit.
ci_workdir() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    trap 'rm -rf "$work"' EXIT
}

# ci_install PY VENV WHEELS EXTRAS [PKG...]: a fresh venv at VENV from PY
# with current pip and wheel; gocore's wheel built from the checkout into
# WHEELS (GOCORE_DEBUG in the environment selects the debug build, see
# setup.py) and installed with EXTRAS (e.g. "[test]", or "") and PKG....
# Meant to run with its output sent to a log.
ci_install() {
    local py=$1 venv=$2 wheels=$3 extras=$4
    shift 4
    "$py" -m venv "$venv" &&
    "$venv/bin/pip" install -q --upgrade pip wheel &&
    "$venv/bin/pip" wheel -q --no-deps -w "$wheels" "$CI_REPO" &&
    "$venv/bin/pip" install -q "$(ls "$wheels"/gocore-*.whl)$extras" "$@"
}

# ci_tee LOG DIR CMD...: runs CMD in DIR (outside the source tree, so that
# the tests import the installed wheel), its output on the terminal and in
# LOG; returns CMD's status. Call it as `rc=0; ci_tee ... || rc=$?`.
ci_tee() {
    local log=$1 dir=$2
    shift 2
    (cd "$dir" && "$@") 2>&1 | tee "$log"
    return "${PIPESTATUS[0]}"
}

# ci_counts LOG: pytest's last "N passed/failed ..." line in LOG, or nothing.
ci_counts() {
    grep -E "[0-9]+ (passed|failed)" "$1" | tail -n 1 || true
}
