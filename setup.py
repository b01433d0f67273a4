"""Build gocore's compiled core: one Extension per .pyx, csrc/ headers only.

GOCORE_DEBUG=1 builds invariant asserts and a 4-slot local run queue.
"""
import glob
import os
import sys

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize
except ImportError:  # pragma: no cover - pyproject.toml lists Cython as a build requirement
    sys.exit("building gocore needs Cython >= 3.1 (pip install cython)")

DEBUG = os.environ.get("GOCORE_DEBUG", "") not in ("", "0")

MODULES = ["_sched", "_chan", "_sync", "_time", "_atomic", "_testhooks", "_net"]

define_macros = [("GOCORE_DEBUG", "1" if DEBUG else "0")]
# Debug and release objects live in separate build trees: setuptools skips
# compiling an extension whose built .so is newer than its sources, so a
# shared tree would let a release wheel pick up debug objects (or the reverse).
BUILD_BASE = os.path.join("build", "debug") if DEBUG else "build"
# max-inline-insns-single: GCC's -O2 limit (70) left the channel operation's
# one park path (_chan.pyx chan_wait/chan_woken, `cdef inline`) out of line
# in every awaitable's step(): B2 +3%, B5/B6 +3-4% against the inlined
# copies it replaced (issue 15). At 200 (-O3's value) they inline again;
# B1-B7 then sit within -2.4%..+2.6% of the pre-issue-15 build.
extra_compile_args = ["-O2", "-std=gnu11", "-Wno-unused-function",
                      "--param", "max-inline-insns-single=200"]
if DEBUG:
    extra_compile_args += ["-O1", "-g"]

# What a module's C depends on besides its .pyx: every csrc header, and for
# _sched the .pxi files its .pyx includes (one per mechanism), so that an edit
# to any of them rebuilds the extension (setuptools compares timestamps).
HEADERS = sorted(glob.glob("csrc/*.h"))
DEPENDS = {"_sched": sorted(glob.glob("gocore/_sched_*.pxi")) + ["gocore/_netpoll.pxi", "gocore/_aiowait.pxi"]}

extensions = [
    Extension(
        f"gocore.{name}",
        [f"gocore/{name}.pyx"],
        include_dirs=["csrc"],
        depends=HEADERS + DEPENDS.get(name, []),
        define_macros=define_macros,
        extra_compile_args=extra_compile_args,
    )
    for name in MODULES
    if os.path.exists(f"gocore/{name}.pyx")
]

# One directives dict for every module. Each .pyx declares
# freethreading_compatible=True in its first line: every shared structure is
# guarded by atomics or C locks rather than the GIL, and the suite passes on
# 3.13t with the GIL off (docs/free-threading.md, CI's ft leg).
directives = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "embedsignature": True,
    # def methods as plain C methods (METH_O/METH_NOARGS): CPython calls them
    # through its specialised method-descriptor path, much cheaper than
    # cyfunction vectorcall on the hot channel API.
    "binding": False,
}

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        compile_time_env={},
        build_dir=os.path.join(BUILD_BASE, "cython"),
    ),
    options={"build": {"build_base": BUILD_BASE}},
)
