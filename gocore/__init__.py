"""gocore: Go's concurrency model for Python.

Goroutines (`go`), channels (`Chan`, `select`), `sync` and `time` primitives
and Go's `context`, run by a compiled M:P:G work-stealing scheduler.
"""


def _use_installed_build() -> bool:
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


def _missing_core(e: ImportError) -> ImportError:
    """The error for a missing compiled core: no silent pure-Python fallback."""
    return ImportError(
        "gocore's compiled core (gocore._sched) is missing or failed to load: "
        "install gocore with `pip install .` (it compiles the Cython/C "
        f"extensions) rather than importing it from a source tree ({e})")


try:
    from gocore import _sched
except ImportError as e:
    if not _use_installed_build():
        raise _missing_core(e) from e
    # sys.modules["gocore"] is the installed package now: the imports below
    # resolve in it, and `import gocore` returns it.

from gocore._chan import (
    Chan,
    ChanClosedError,
    blocking_select,
    default,
    nilchan,
    select,
)
from gocore._sync import Mutex, Once, RWMutex, Semaphore, WaitGroup
from gocore._time import Ticker, Timer, after, after_func, sleep, tick
from gocore._sched import (
    DeadlockError,
    go,
    gomaxprocs,
    gosched,
    num_goroutine,
    run,
    set_max_threads,
    set_panic_hook,
    stats,
)

from gocore import context  # noqa: E402  (Go's context package)
from gocore import net  # noqa: E402  (Go's net package: streams over the netpoller)
from gocore._debug import dump_goroutines  # noqa: E402

__all__ = [
    "go", "run", "gosched", "gomaxprocs", "num_goroutine", "set_panic_hook", "set_max_threads", "dump_goroutines", "stats",
    "Chan", "nilchan", "select", "blocking_select", "default",
    "sleep", "after", "tick", "after_func", "Timer", "Ticker",
    "WaitGroup", "Mutex", "RWMutex", "Once", "Semaphore",
    "DeadlockError", "ChanClosedError", "context", "net",
]
