"""Importing gocore from a source checkout that has no compiled core.

`gocore/__init__.py` imports the compiled scheduler first; if that fails it
calls load_installed_build_or_raise(), here, so that the package's own
module stays the public API and nothing else. Two outcomes only: an installed
build of gocore further down sys.path is loaded in the checkout's place
(said on stderr), or ImportError explains how to get a compiled core.
"""


def use_installed_build() -> bool:
    """A checkout's source package, first on sys.path (`python -m ...` from
    the checkout's root puts the current directory there), has no compiled
    core. If an installed gocore with one is further down sys.path, import
    that instead, and say so on stderr: never a pure-Python fallback, and
    never silently a build other than the one asked for. Returns False if
    there is none (the caller raises)."""
    import glob
    import importlib.util
    import os
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    if not os.path.exists(os.path.join(os.path.dirname(here), "setup.py")):
        return False                      # not a checkout: a broken install
    for entry in sys.path:
        d = os.path.join(os.path.abspath(entry or os.getcwd()), "gocore")
        if d != here and glob.glob(os.path.join(d, "_sched*.so")):
            break
    else:
        return False
    stale = max((os.path.getmtime(f) for f in glob.glob(os.path.join(here, "*.pyx"))), default=0) > \
        min(os.path.getmtime(f) for f in glob.glob(os.path.join(d, "_sched*.so")))
    sys.stderr.write(f"gocore: {here} is a source checkout without a compiled core; "
                     f"using the installed build in {d}"
                     + (" (older than the checkout's .pyx files: reinstall to test them)" if stale else "")
                     + "\n")
    spec = importlib.util.spec_from_file_location("gocore", os.path.join(d, "__init__.py"),
                                                  submodule_search_locations=[d])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gocore"] = module        # `import gocore` returns what sys.modules holds
    spec.loader.exec_module(module)
    return True


def missing_core(e: ImportError) -> ImportError:
    """The error for a missing compiled core: no silent pure-Python fallback."""
    return ImportError(
        "gocore's compiled core (gocore._sched) is missing or failed to load: "
        "install gocore with `pip install .` (it compiles the Cython/C "
        f"extensions) rather than importing it from a source tree ({e})")


def load_installed_build_or_raise(e: ImportError) -> None:
    """Called by gocore/__init__.py when `from gocore import _sched` failed
    with e: return with sys.modules["gocore"] replaced by an installed build,
    or raise the ImportError for a missing core (chained to e)."""
    if not use_installed_build():
        raise missing_core(e) from e
