# Type stubs for gocore._sched (compiled): goroutines and the scheduler.
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, ParamSpec, TypeVar, overload

_P = ParamSpec("_P")
_R = TypeVar("_R")

DEBUG: bool   # compiled with GOCORE_DEBUG=1

class DebugCheckError(BaseException):
    """Debug builds: a runtime invariant or counter check failed."""

class DeadlockError(RuntimeError):
    dump: str   # the goroutines found asleep, as dump_goroutines() prints them

class GoroutineExit(BaseException):
    """Raised inside a sync goroutine parked in gocore when run() ends, and
    by the gocore calls of a sync goroutine that outlived its run()."""

@overload
def go(fn: Coroutine[Any, Any, Any], /) -> None: ...
@overload
def go(fn: Callable[_P, object], /, *args: _P.args, **kwargs: _P.kwargs) -> None: ...

# run(): an async def function or a plain function returning an awaitable
# gives the awaited result; a coroutine object gives its result.
@overload
def run(fn: Coroutine[Any, Any, _R], /) -> _R: ...
@overload
def run(fn: Callable[_P, Awaitable[_R]], /, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...
@overload
def run(fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...

def gosched() -> Awaitable[None]: ...
def gomaxprocs(n: int | None = None) -> int: ...   # n == 0 only queries (Go's GOMAXPROCS(0))
def num_goroutine() -> int: ...
def set_panic_hook(hook: Callable[[BaseException, int], object] | None) -> None: ...
def set_max_threads(n: int) -> int: ...
def default_panic_hook(exc: BaseException, goid: int) -> NoReturn: ...  # print, os._exit(2)
def stats() -> dict[str, int]: ...

# for gocore._debug.dump_goroutines(): (goid, kind, status, wait reason,
# seconds waiting, coroutine, function, is_main, thread ident, is the caller)
def _goroutine_info() -> list[tuple[int, str, str, str, float, Any, Any, bool, int, bool]]: ...
def _inspect_begin() -> None: ...
def _inspect_end() -> None: ...
def _signal_handler_installed(signum: int) -> None: ...
