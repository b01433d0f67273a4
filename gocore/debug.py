"""Debugging aids: a goroutine dump on a signal, as a Go program prints
one on SIGQUIT.

    import gocore.debug
    gocore.debug.dump_on_signal()          # then: kill -USR1 <pid>

The dump is dump_goroutines()'s text. Python runs signal handlers on the
main thread only, between bytecodes; gocore's main thread runs them even
while it is parked in run() or in a blocking_* call, so a hung program
still answers. The goroutine the main thread was running when the signal
came shows as [running] with the interrupted stack.

From outside, without changing the program: GOCORE_DUMP_SIGNAL=USR1 (a
signal name, with or without SIG, or its number) installs the handler when
gocore is imported, and GOCORE_DUMP_FILE=/path makes it (and any
dump_on_signal() call without file=) write each dump to that file, which
each signal replaces atomically (written beside it, then renamed), so a
reader never sees half a dump. GOCORE_DUMP_FORMAT=json writes
dump_goroutines(format="json")'s data instead of the text.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import types
import warnings
from typing import Any, Callable, TextIO, Union

from gocore import _debug, _sched
from gocore._debug import dump_goroutines

__all__ = ["dump_on_signal", "undo_dump_on_signal", "dump_goroutines"]

ENV_SIGNAL = "GOCORE_DUMP_SIGNAL"
ENV_FILE = "GOCORE_DUMP_FILE"
ENV_FORMAT = "GOCORE_DUMP_FORMAT"

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


def _signal_dump_json(signum: int, frame: types.FrameType | None) -> str:
    """The JSON a dump signal writes: {"signal", "pid", "goroutines"}, the
    goroutines as dump_goroutines(format="json") gives them."""
    gs = _debug.goroutines(frame)
    return json.dumps({"signal": signal.Signals(signum).name, "pid": os.getpid(),
                       "goroutines": [_debug.record_dict(g) for g in gs]}) + "\n"


def _write_replacing(path: str, text: str) -> None:
    """Write text to path atomically: a reader sees the old file or the
    whole new one (a temporary file in the same directory, renamed)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def dump_on_signal(sig: int = signal.SIGUSR1, *, file: TextIO | str | os.PathLike[str] | None = None,
                   chain: bool = False, format: str = "text") -> _Handler:
    """Install a handler for sig that writes a Go-style dump of every
    goroutine to file: a text stream, or a path whose file each signal
    replaces atomically with the latest dump (default: the path in
    $GOCORE_DUMP_FILE if set, else sys.stderr as it is when the signal
    comes). format="json" writes the dump as data (see dump_goroutines).
    chain=True also calls the handler it replaces (if that is a Python
    function). Returns the replaced handler; undo_dump_on_signal(sig) puts
    it back. Must be called from the main thread (Python's rule for signal
    handlers)."""
    sig = _check_signal(sig)
    if format not in ("text", "json"):
        raise ValueError(f'dump_on_signal(format=...) takes "text" or "json", got {format!r}')
    if file is None and os.environ.get(ENV_FILE):
        file = os.environ[ENV_FILE]
    path: str | None = None
    if isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        if not path:
            raise ValueError("dump_on_signal(file=...): empty path")
        file = None
    elif file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"dump_on_signal(file=...) needs a text stream or a path, "
                        f"got {type(file).__name__}")
    render = _signal_dump_json if format == "json" else _signal_dump
    if sig in _installed:
        previous = _installed[sig][1]      # a second install replaces the first
    else:
        previous = signal.getsignal(sig)

    def handler(signum: int, frame: types.FrameType | None) -> None:
        if path is not None:
            try:
                _write_replacing(path, render(signum, frame))
            except OSError as e:        # a bad path must not kill the program
                print(f"gocore.debug: cannot write the goroutine dump to {path}: {e}",
                      file=sys.stderr)
        else:
            out = file if file is not None else sys.stderr
            if out is not None:
                out.write(render(signum, frame))
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


def _signal_from_env(value: str) -> int:
    """A signal named in $GOCORE_DUMP_SIGNAL: USR1, SIGUSR1 or a number."""
    v = value.strip()
    if v.isdigit():
        return int(v)
    name = v.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ValueError(f"{ENV_SIGNAL}={value!r}: not a signal name or number") from None


def install_from_env() -> bool:
    """`import gocore` calls this: with $GOCORE_DUMP_SIGNAL set, install
    dump_on_signal for it (file: $GOCORE_DUMP_FILE, format:
    $GOCORE_DUMP_FORMAT, default text). A bad value, or an import outside
    the main thread, warns rather than failing the import. True if
    installed."""
    value = os.environ.get(ENV_SIGNAL)
    if not value:
        return False
    try:
        sig = _signal_from_env(value)
        dump_on_signal(sig, chain=True, format=os.environ.get(ENV_FORMAT) or "text")
    except (ValueError, TypeError) as e:
        warnings.warn(f"gocore: {ENV_SIGNAL} ignored: {e}", RuntimeWarning, stacklevel=2)
        return False
    return True
