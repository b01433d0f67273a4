# Type stubs for gocore.testing (the pytest plugin's hooks are not listed).
from collections.abc import Callable, Collection, Iterable
from typing import Any, Final

from gocore._debug import GoroutineRecord
from gocore._synctest import now as now, synctest as synctest, wait as wait, wait_blocking as wait_blocking

__all__ = ["GoroutineLeakError", "snapshot", "check_no_leaks", "check_no_leaks_async",
           "LeakCheck", "DEFAULT_TIMEOUT", "find_leaks", "format_leaks", "LEAKCHECK_MODES",
           "synctest", "now", "wait", "wait_blocking"]

DEFAULT_TIMEOUT: Final[float]
LEAKCHECK_MODES: Final[tuple[str, ...]]

# a function name (qualified, optionally prefixed by its module) or a Python function
IgnoreItem = str | Callable[..., Any]

class GoroutineLeakError(AssertionError):
    goroutines: tuple[int, ...]
    dump: str
    def __init__(self, message: str, goroutines: tuple[int, ...] = (), dump: str = "") -> None: ...

def snapshot() -> frozenset[int]: ...
def check_no_leaks(timeout: float = ..., *, ignore: Iterable[IgnoreItem] | IgnoreItem = (),
                   baseline: Collection[int] | None = None) -> None: ...
async def check_no_leaks_async(timeout: float = ..., *, ignore: Iterable[IgnoreItem] | IgnoreItem = (),
                               baseline: Collection[int] | None = None) -> None: ...

def find_leaks() -> list[GoroutineRecord]: ...
def format_leaks(leaks: list[GoroutineRecord]) -> str: ...

class LeakCheck:
    timeout: float
    ignore: list[IgnoreItem]
    enabled: bool
    mode: str
    baseline: frozenset[int] | None
    def __init__(self, timeout: float = ..., ignore: Iterable[IgnoreItem] = (),
                 enabled: bool = True, mode: str = "grace") -> None: ...
