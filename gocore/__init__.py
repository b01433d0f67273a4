"""gocore: Go's concurrency model for Python.

Goroutines (`go`), channels (`Chan`, `select`), `sync` and `time` primitives
and Go's `context`, run by a compiled M:P:G work-stealing scheduler.
"""

def _missing_core(e: ImportError) -> ImportError:
    """The error for a missing compiled core: no silent pure-Python fallback.
    The usual cause is a checkout on sys.path (python -m from its root puts
    the current directory first) shadowing the installed wheel."""
    import os
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    checkout = os.path.exists(os.path.join(os.path.dirname(here), "setup.py"))
    hint = ("install gocore with `pip install .` (it compiles the Cython/C "
            "extensions) rather than importing it from a source tree")
    if checkout and not sys.flags.safe_path:
        hint = (f"this is the source package of a checkout ({here}), found first on "
                "sys.path; if gocore is installed, run from another directory or "
                "with `python -P` (e.g. `python -P -m gocore.bench`, "
                "`python -P -m pytest tests`) so that the installed build is imported; "
                "else " + hint)
    return ImportError(f"gocore's compiled core (gocore._sched) is missing or failed "
                       f"to load: {hint} ({e})")


try:
    from gocore import _sched
except ImportError as e:  # no silent pure-Python fallback
    raise _missing_core(e) from e

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
from gocore._debug import dump_goroutines  # noqa: E402

__all__ = [
    "go", "run", "gosched", "gomaxprocs", "num_goroutine", "set_panic_hook", "set_max_threads", "dump_goroutines", "stats",
    "Chan", "nilchan", "select", "blocking_select", "default",
    "sleep", "after", "tick", "after_func", "Timer", "Ticker",
    "WaitGroup", "Mutex", "RWMutex", "Once", "Semaphore",
    "DeadlockError", "ChanClosedError", "context",
]
