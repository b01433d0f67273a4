# Type stubs for gocore.debug.
import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

from gocore import dump_goroutines as dump_goroutines

__all__ = ["dump_on_signal", "undo_dump_on_signal", "dump_goroutines"]

# what signal.getsignal() may return
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

ENV_SIGNAL: str
ENV_FILE: str
ENV_FORMAT: str

def dump_on_signal(sig: int = ..., *, file: TextIO | str | os.PathLike[str] | None = None,
                   chain: bool = False, format: str = "text") -> _Handler: ...
def undo_dump_on_signal(sig: int = ...) -> bool: ...
def install_from_env() -> bool: ...
