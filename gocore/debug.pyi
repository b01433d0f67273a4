# Type stubs for gocore.debug.
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

from gocore import dump_goroutines as dump_goroutines

__all__ = ["dump_on_signal", "undo_dump_on_signal", "dump_goroutines"]

# what signal.getsignal() may return
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

def dump_on_signal(sig: int = ..., *, file: TextIO | None = None, chain: bool = False) -> _Handler: ...
def undo_dump_on_signal(sig: int = ...) -> bool: ...
