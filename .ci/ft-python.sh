#!/usr/bin/env bash
# Obtain a free-threaded CPython 3.13 ("3.13t") interpreter for gocore.
#
# Usage:  PY=$(bash .ci/ft-python.sh)         # build once, then reuse
#         bash .ci/ft-python.sh --verify      # also test venv + pip + a Cython extension
#         bash .ci/ft-python.sh --help
#
# The interpreter is built from the upstream release tarball that Debian ships
# inside its `python3.13` *source* package (suite: unstable), fetched with a
# throwaway apt configuration (own sources.list, lists and cache in a temp dir;
# the system's apt sources are not touched), configured with --disable-gil and
# installed into a fixed prefix:
#
#   GOCORE_FT_PREFIX           install prefix             (default /opt/gocore-py313t)
#   GOCORE_FT_JOBS             make -j                    (default: nproc)
#   GOCORE_FT_DEBIAN_VERSION   pin the Debian source version, e.g. 3.13.15-1
#                              (default: newest in unstable that downloads)
#   GOCORE_FT_DEBIAN_SUITE     Debian suite               (default unstable)
#   GOCORE_FT_MIRROR           Debian mirror              (default http://deb.debian.org/debian)
#   GOCORE_FT_TARBALL          use this Python-3.13.x tarball instead of downloading
#   GOCORE_FT_LOG              build log                  (default /tmp/gocore-ft-python-build.log)
#
# If $PREFIX/bin/python3.13t already exists and runs with the GIL disabled,
# the script prints its path and exits at once. Progress goes to stderr; the
# only thing printed on stdout is the interpreter's path (last line).
# Build dependencies missing from the machine are installed with apt-get from
# the system's normal Debian sources (needs root).
set -euo pipefail

PREFIX="${GOCORE_FT_PREFIX:-/opt/gocore-py313t}"
PREFIX="${PREFIX%/}"
JOBS="${GOCORE_FT_JOBS:-$(nproc 2>/dev/null || echo 2)}"
SUITE="${GOCORE_FT_DEBIAN_SUITE:-unstable}"
MIRROR="${GOCORE_FT_MIRROR:-http://deb.debian.org/debian}"
LOG="${GOCORE_FT_LOG:-/tmp/gocore-ft-python-build.log}"
PY="$PREFIX/bin/python3.13t"
MARKER="$PREFIX/.gocore-ft-python"
VERIFY=0

for arg in "$@"; do
    case "$arg" in
        --verify) VERIFY=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "ft-python: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

T0=$(date +%s)
log() { printf '[ft-python +%ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run a noisy command with its output appended to $LOG; on failure show the tail.
run_logged() {
    local what="$1"; shift
    log "$what"
    printf '\n===== %s: %s\n' "$(date +%T)" "$*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        log "FAILED: $what -- last lines of $LOG:"
        tail -n 60 "$LOG" >&2
        exit 1
    fi
}

# The GIL check must not be fooled by the caller's environment.
clean_py() { env -u PYTHON_GIL -u PYTHONHOME -u PYTHONPATH -u PYTHONSTARTUP "$@"; }

interpreter_ok() {
    [ -x "$PY" ] && clean_py "$PY" -c '
import sys
assert sys.version_info[:2] == (3, 13), sys.version
assert not sys._is_gil_enabled(), "GIL is enabled"
' >/dev/null 2>&1
}

# Fuller check of a fresh build: the stdlib modules people need are there.
check_modules() {
    clean_py "$PY" - <<'EOF' >&2
import sys, sysconfig, importlib
assert sysconfig.get_config_var("Py_GIL_DISABLED") == 1, "not a --disable-gil build"
assert not sys._is_gil_enabled(), "GIL is enabled"
need = ["ssl", "hashlib", "zlib", "bz2", "lzma", "ctypes", "sqlite3", "decimal",
        "uuid", "readline", "curses", "dbm", "venv", "ensurepip", "json", "socket"]
bad = []
for m in need:
    try:
        importlib.import_module(m)
    except Exception as e:
        bad.append(f"{m} ({e})")
if bad:
    sys.exit("missing stdlib modules: " + ", ".join(bad))
print(f"  {sys.executable}: {sys.version.split()[0]}, GIL disabled, stdlib modules ok")
EOF
}

# --verify: python3.13t -m venv, pip install cython, build + import a tiny
# freethreading_compatible Cython extension, and the GIL is still off.
verify() {
    local d; d=$(mktemp -d /tmp/gocore-ft-verify.XXXXXX)
    log "verify: venv + pip install cython + build a Cython extension (in $d)"
    clean_py "$PY" -m venv "$d/v" || die "venv creation failed"
    clean_py "$d/v/bin/python" -m pip install -q --disable-pip-version-check 'cython>=3.1' setuptools \
        >&2 || die "pip install cython failed"
    mkdir -p "$d/ext"
    cat >"$d/ext/fthello.pyx" <<'EOF'
# cython: freethreading_compatible=True
# cython: language_level=3
def add(long a, long b):
    return a + b
EOF
    cat >"$d/ext/setup.py" <<'EOF'
from setuptools import setup
from Cython.Build import cythonize
setup(name="fthello", ext_modules=cythonize("fthello.pyx", quiet=True))
EOF
    (cd "$d/ext" && clean_py "$d/v/bin/python" setup.py -q build_ext --inplace) >>"$LOG" 2>&1 \
        || { tail -n 40 "$LOG" >&2; die "building the Cython extension failed"; }
    (cd "$d/ext" && clean_py "$d/v/bin/python" -W error::RuntimeWarning -c '
import sys, threading, fthello, Cython
assert fthello.add(2, 3) == 5
ts = [threading.Thread(target=lambda: [fthello.add(i, i) for i in range(100000)]) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
assert not sys._is_gil_enabled(), "GIL re-enabled by the extension"
print(f"  Cython {Cython.__version__}: extension built, imported, GIL still disabled")
') >&2 || die "the Cython extension check failed"
    rm -rf "$d"
}

# ---------------------------------------------------------------- fast path
if interpreter_ok; then
    [ "$VERIFY" = 1 ] && verify
    echo "$PY"
    exit 0
fi

# Serialise concurrent runs (two shells, or CI next to a developer).
mkdir -p "$(dirname "$PREFIX")" 2>/dev/null && [ -w "$(dirname "$PREFIX")" ] \
    || die "cannot write to $(dirname "$PREFIX"); run as root or set GOCORE_FT_PREFIX=\$HOME/gocore-py313t"
exec 9>"$PREFIX.lock"
if ! flock -n 9; then
    log "another build into $PREFIX is running; waiting for it"
    flock -w 3600 9 || die "timed out waiting for $PREFIX.lock"
fi
if interpreter_ok; then
    [ "$VERIFY" = 1 ] && verify
    echo "$PY"
    exit 0
fi

if [ -e "$PREFIX" ] && [ ! -f "$MARKER" ] && [ -n "$(ls -A "$PREFIX" 2>/dev/null)" ]; then
    die "$PREFIX exists, is not empty and was not made by this script; set GOCORE_FT_PREFIX elsewhere"
fi

: >"$LOG"
log "no working free-threaded interpreter at $PY: building one (log: $LOG)"

WORK=$(mktemp -d /tmp/gocore-ft-work.XXXXXX)
STAGE="$(dirname "$PREFIX")/.$(basename "$PREFIX").stage.$$"
cleanup() { rm -rf "$WORK" "$STAGE"; }
trap cleanup EXIT

# ---------------------------------------------------------------- build deps
# Debian package -> why. From the system's own apt sources.
DEPS="build-essential pkg-config xz-utils libssl-dev zlib1g-dev libffi-dev libbz2-dev
liblzma-dev libsqlite3-dev libreadline-dev libncurses-dev uuid-dev libgdbm-dev
libgdbm-compat-dev libexpat1-dev"
missing=()
for p in $DEPS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing build dependencies (${missing[*]}); run as root or: sudo apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    run_logged "apt-get update (system sources)" apt-get -o DPkg::Lock::Timeout=600 update
    run_logged "apt-get install ${missing[*]}" \
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
else
    log "build dependencies already installed"
fi

# ---------------------------------------------------------------- source
if [ -n "${GOCORE_FT_TARBALL:-}" ]; then
    TARBALL="$GOCORE_FT_TARBALL"
    DEBVER="(local tarball)"
    [ -f "$TARBALL" ] || die "GOCORE_FT_TARBALL=$TARBALL does not exist"
else
    # Throwaway apt configuration: nothing under /etc/apt or /var/lib/apt changes.
    APTD="$WORK/apt"
    mkdir -p "$APTD/lists/partial" "$APTD/cache/archives/partial" "$APTD/src"
    echo "deb-src $MIRROR $SUITE main" >"$APTD/sources.list"
    APT_OPTS=(-o "Dir::Etc::SourceList=$APTD/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$APTD/lists" -o "Dir::Cache=$APTD/cache"
              -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
              -o "APT::Sandbox::User=root" -o "Acquire::Retries=3")
    run_logged "apt-get update (throwaway config: deb-src $MIRROR $SUITE main)" \
        apt-get "${APT_OPTS[@]}" update
    if [ -n "${GOCORE_FT_DEBIAN_VERSION:-}" ]; then
        versions="$GOCORE_FT_DEBIAN_VERSION"
    else
        # The index may list more than one version; the newest is not always on
        # the mirror yet (seen: 3.13.18-1 listed, 404), so try newest first.
        versions=$(apt-cache "${APT_OPTS[@]}" showsrc --only-source python3.13 2>>"$LOG" \
                   | awk '/^Version:/ {print $2}' | sort -rV | uniq)
        [ -n "$versions" ] || die "Debian $SUITE has no python3.13 source package (see $LOG)"
    fi
    DEBVER=""
    for v in $versions; do
        log "apt-get source --download-only python3.13=$v"
        if (cd "$APTD/src" && apt-get "${APT_OPTS[@]}" source --download-only "python3.13=$v") >>"$LOG" 2>&1; then
            DEBVER="$v"; break
        fi
        log "  python3.13=$v could not be downloaded (see $LOG)"
        rm -f "$APTD/src"/*
    done
    [ -n "$DEBVER" ] || { tail -n 20 "$LOG" >&2; die "no python3.13 source version could be downloaded"; }
    TARBALL=$(ls "$APTD/src"/python3.13_*.orig.tar.* 2>/dev/null | head -n1)
    [ -n "$TARBALL" ] || die "downloaded python3.13 $DEBVER but found no orig tarball"
fi
log "source: Debian python3.13 $DEBVER -> $(basename "$TARBALL")"

mkdir -p "$WORK/src"
tar -xf "$TARBALL" -C "$WORK/src"
SRC=$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'Python-3.13*' | head -n1)
[ -n "$SRC" ] && [ -x "$SRC/configure" ] || die "the tarball does not contain a Python-3.13.x tree"
UPVER=$(basename "$SRC"); UPVER=${UPVER#Python-}

# ---------------------------------------------------------------- build
cd "$SRC"
unset PYTHONHOME PYTHONPATH PYTHON_GIL
TB=$(date +%s)
run_logged "configure --disable-gil --prefix=$PREFIX (CPython $UPVER)" \
    ./configure --disable-gil --prefix="$PREFIX" --with-ensurepip=install --disable-test-modules
run_logged "make -j$JOBS" make -j"$JOBS"
run_logged "make install (staged)" make install DESTDIR="$STAGE"
log "compiled and installed in $(( $(date +%s) - TB ))s"

[ -x "$STAGE$PREFIX/bin/python3.13t" ] || die "make install produced no bin/python3.13t"
cat >"$STAGE$PREFIX/.gocore-ft-python" <<EOF
made by gocore .ci/ft-python.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)
cpython $UPVER
debian-source python3.13 $DEBVER ($SUITE)
configure --disable-gil --prefix=$PREFIX --with-ensurepip=install --disable-test-modules
EOF
cp "$LOG" "$STAGE$PREFIX/.gocore-ft-build.log"

# Swap the new tree in (the old one, if any, was ours and broken).
if [ -e "$PREFIX" ]; then
    mv "$PREFIX" "$PREFIX.old.$$"
fi
mv "$STAGE$PREFIX" "$PREFIX"
rm -rf "$PREFIX.old.$$"

interpreter_ok || die "the new interpreter at $PY does not run with the GIL disabled"
check_modules || die "the new interpreter lacks stdlib modules (see above)"
[ "$VERIFY" = 1 ] && verify
log "done: CPython $UPVER (free-threaded) from Debian python3.13 $DEBVER in $(( $(date +%s) - T0 ))s"
echo "$PY"
