"""gocore: Go's concurrency model for Python.

Goroutines (`go`), channels (`Chan`, `select`), `sync` and `time` primitives
and Go's `context`, run by a compiled M:P:G work-stealing scheduler.
"""


try:
    from gocore import _sched
except ImportError as e:
    # a source checkout without a compiled core: gocore/_bootstrap.py either
    # loads an installed build in its place (sys.modules["gocore"] is then
    # that package, in which the imports below resolve) or raises a clear
    # ImportError - never a pure-Python fallback
    from gocore._bootstrap import load_installed_build_or_raise
    load_installed_build_or_raise(e)

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
    metrics,
)

from gocore import context  # noqa: E402  (Go's context package)
from gocore import net  # noqa: E402  (Go's net package: streams over the netpoller)
from gocore._debug import dump_goroutines  # noqa: E402

__all__ = [
    "go", "run", "gosched", "gomaxprocs", "num_goroutine", "set_panic_hook", "set_max_threads", "dump_goroutines", "stats", "metrics",
    "Chan", "nilchan", "select", "blocking_select", "default",
    "sleep", "after", "tick", "after_func", "Timer", "Ticker",
    "WaitGroup", "Mutex", "RWMutex", "Once", "Semaphore",
    "DeadlockError", "ChanClosedError", "context", "net",
]

# GOCORE_DUMP_SIGNAL=USR1: a goroutine dump on that signal (gocore/debug.py)
import os as _os  # noqa: E402
if _os.environ.get("GOCORE_DUMP_SIGNAL"):
    from gocore import debug as _debug_signal
    _debug_signal.install_from_env()
    del _debug_signal
del _os
