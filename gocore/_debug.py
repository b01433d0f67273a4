"""dump_goroutines(): a Go-style dump of every live goroutine, for finding
leaks and deadlocks.

    goroutine 1 [chan receive]:
      main()
            /path/prog.py:12
"""

from __future__ import annotations

import sys
import types
from typing import Any

from gocore import _sched


def _coro_frames(coro: Any) -> list[types.FrameType]:
    """The frames of a suspended coroutine chain, innermost first."""
    frames: list[types.FrameType] = []
    seen: set[int] = set()
    obj = coro
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        obj = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
    frames.reverse()
    return frames


def _thread_frames(ident: int, fn: Any) -> list[types.FrameType]:
    """A sync goroutine's frames on its worker thread, innermost first, down
    to its own function (the worker loop below it is not the goroutine's)."""
    frame = sys._current_frames().get(ident)
    outermost = getattr(fn, "__code__", None)
    frames = []
    while frame is not None:
        frames.append(frame)
        if frame.f_code is outermost:
            break
        frame = frame.f_back
    return frames


def _format_frames(frames: list[types.FrameType]) -> list[str]:
    lines = []
    for f in frames:
        code = f.f_code
        lines.append(f"  {getattr(code, 'co_qualname', code.co_name)}(...)")
        lines.append(f"        {code.co_filename}:{f.f_lineno}")
    return lines


def dump_goroutines() -> str:
    """Every live goroutine: `goroutine N [state or wait reason]:` and its
    Python stack (innermost call first), as Go prints them."""
    out = []
    for (goid, kind, status, reason, waited, coro, fn, is_main, ident, is_self) in _sched._goroutine_info():
        head = "running" if is_self else reason
        if waited >= 60:
            head += f", {int(waited // 60)} minutes"
        out.append(f"goroutine {goid} [{head}]:" + (" (main)" if is_main else ""))
        if is_self:
            frame: types.FrameType | None = sys._getframe(1)
            frames = []
            while frame is not None:
                frames.append(frame)
                frame = frame.f_back
        elif coro is not None:
            frames = _coro_frames(coro)
        elif kind == "sync" and status == "running" and ident:
            frames = _thread_frames(ident, fn)
        else:
            frames = []
        lines = _format_frames(frames)
        if not lines and fn is not None:
            name = getattr(fn, "__qualname__", repr(fn))
            code = getattr(fn, "__code__", None)
            lines = [f"  {name}(...)  (not started)"]
            if code is not None:
                lines.append(f"        {code.co_filename}:{code.co_firstlineno}")
        out.extend(lines)
        out.append("")
    return "\n".join(out)
