"""Debugging aids: a goroutine dump on a signal, as a Go program prints
one on SIGQUIT.

    import gocore.debug
    gocore.debug.dump_on_signal()          # then: kill -USR1 <pid>

The dump is dump_goroutines()'s text. Python runs signal handlers on the
main thread only, between bytecodes; gocore's main thread runs them even
while it is parked in run() or in a blocking_* call, so a hung program
still answers. The goroutine the main thread was running when the signal
came shows as [running] with the interrupted stack.
"""

from __future__ import annotations

import signal
import sys
import types
from typing import Any, Callable, TextIO, Union

from gocore import _debug, _sched
from gocore._debug import dump_goroutines

__all__ = ["dump_on_signal", "undo_dump_on_signal", "dump_goroutines"]

_Handler = Union[Callable[[int, "types.FrameType | None"], Any], int, None]

# signal number -> (our handler, the handler it replaced); main thread only
_installed: dict[int, tuple[Callable[..., None], _Handler]] = {}


def _check_signal(sig: object) -> signal.Signals:
    """sig as a Signals member, or a clear exception."""
    if isinstance(sig, bool) or not isinstance(sig, int):
        raise TypeError(f"dump_on_signal(sig) needs a signal number such as "
                        f"signal.SIGUSR1, got {type(sig).__name__} {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"dump_on_signal(sig): {sig} is not a signal number on this system")
    sig = signal.Signals(sig)
    if sig in (signal.SIGKILL, signal.SIGSTOP):
        raise ValueError(f"dump_on_signal(sig): {sig.name} cannot be caught")
    return sig


def _signal_dump(signum: int, frame: types.FrameType | None) -> str:
    """The text a dump signal prints: the goroutines, then, outside run(),
    the main thread's stack (a hung program's main thread may be waiting
    in a blocking_* call: it is no goroutine, but where it waits matters)."""
    gs = _debug.goroutines(frame)
    text = f"{signal.Signals(signum).name}: goroutine dump\n\n{_debug.format_goroutines(gs)}"
    # (in run() the main thread is M0: between goroutines, its stack is run()'s caller's)
    if frame is not None and _sched._current_m() is None:
        lines = _debug.format_frames(_debug.frame_records(_debug.frames_up_to(frame)))
        text += ("\n" if gs else "") + "main thread (not a goroutine):\n" + "\n".join(lines) + "\n"
    return text + "\n"


def dump_on_signal(sig: int = signal.SIGUSR1, *, file: TextIO | None = None,
                   chain: bool = False) -> _Handler:
    """Install a handler for sig that writes a Go-style dump of every
    goroutine to file (default: sys.stderr as it is when the signal
    comes). chain=True also calls the handler it replaces (if that is a
    Python function). Returns the replaced handler; undo_dump_on_signal(sig)
    puts it back. Must be called from the main thread (Python's rule for
    signal handlers)."""
    sig = _check_signal(sig)
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"dump_on_signal(file=...) needs a text stream, got {type(file).__name__}")
    if sig in _installed:
        previous = _installed[sig][1]      # a second install replaces the first
    else:
        previous = signal.getsignal(sig)

    def handler(signum: int, frame: types.FrameType | None) -> None:
        out = file if file is not None else sys.stderr
        if out is not None:
            out.write(_signal_dump(signum, frame))
            out.flush()
        if chain and callable(previous):
            previous(signum, frame)

    signal.signal(sig, handler)
    _sched._signal_handler_installed(sig)    # inside run(): wake an idle main thread too
    _installed[sig] = (handler, previous)
    return previous


def undo_dump_on_signal(sig: int = signal.SIGUSR1) -> bool:
    """Put back the handler dump_on_signal(sig) replaced. False (and no
    change) if no dump handler of ours is installed for sig, for instance
    because something else replaced it since."""
    sig = _check_signal(sig)
    entry = _installed.get(sig)
    if entry is None or signal.getsignal(sig) is not entry[0]:
        _installed.pop(sig, None)
        return False
    signal.signal(sig, entry[1] if entry[1] is not None else signal.SIG_DFL)
    del _installed[sig]
    return True
