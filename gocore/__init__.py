"""gocore: Go's concurrency model for Python.

Goroutines (`go`), channels (`Chan`, `select`), `sync` and `time` primitives
and Go's `context`, run by a compiled M:P:G work-stealing scheduler.
"""

try:
    from gocore import _sched
except ImportError as e:  # no silent pure-Python fallback
    raise ImportError(
        "gocore's compiled core (gocore._sched) is missing or failed to load: "
        "install gocore with `pip install .` (it compiles the Cython/C "
        f"extensions) rather than importing it from a source tree ({e})"
    ) from e

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
