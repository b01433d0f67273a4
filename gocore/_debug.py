"""dump_goroutines(): a Go-style dump of every live goroutine, for finding
leaks and deadlocks.

    goroutine 7 [chan receive, 3 minutes]:
      consume(...)
            /path/prog.py:12
      worker(...)
            /path/prog.py:20
      created by main in goroutine 1
            /path/prog.py:31
      waiting on chan 0x7f2a3c1e4d30 (len 0, cap 0): 1 other receiver, 0 other senders waiting

The bracket holds the wait reason of a parked goroutine (the fixed
vocabulary of _sched.WAIT_REASONS: `chan receive`, `select`,
`sync.Mutex.Lock`...) or its state (`runnable`, `running`, `syscall`), and
the minutes it has been parked once that is at least one (as Go prints it).
The stack is innermost call first and holds only the goroutine's own frames.
Then, as Go prints it, where the goroutine was created (the go() call and
the goroutine that made it); last, what a parked goroutine waits on (a
channel, a select's channels, a sync primitive: wait_detail()).
dump_goroutines(format="json") gives the same as data (record_dict()).
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Collection
from typing import Any, NamedTuple

from gocore import _sched

# Frames of these modules belong to the dumping machinery, not to the
# goroutine that asked for (or was interrupted by) a dump.
_OWN_MODULES = frozenset({__name__, "gocore.debug", "gocore.testing"})


class FrameRecord(NamedTuple):
    """What a dump shows of one frame, copied while the goroutine could not
    run (a live frame may change as soon as its goroutine runs again)."""
    code: types.CodeType
    lineno: int | None
    module: str | None              # the frame's module (its globals' __name__)


class GoroutineRecord(NamedTuple):
    """One goroutine in a snapshot."""
    goid: int
    kind: str                       # "async" or "sync"
    state: str                      # what the dump shows in brackets
    minutes: int                    # whole minutes parked (0 unless waiting)
    is_main: bool
    is_current: bool                # the goroutine taking the snapshot
    frames: list[FrameRecord]       # innermost first; [] if not started;
                                    # only the entry point if stack_unavailable
    fn: Any                         # its function, if it has not started yet
    stack_unavailable: bool         # running on another thread, no GIL: not read
    # kind "asyncio" (gocore.aio's loop thread): its pending calls, as
    # (calling goroutine's id, seconds waited, the task's frames)
    calls: tuple = ()
    # where go() was called: (function's qualified name, file, line or
    # None, id of the goroutine that called it or 0 for a plain thread);
    # None for main and when not recorded
    created: tuple[Any, ...] | None = None
    # what it waits on (a waiting goroutine parked on a channel, a select
    # or a sync primitive): the dict wait_detail() documents, else None
    wait: dict[str, Any] | None = None


def frame_records(frames) -> list[FrameRecord]:
    return [FrameRecord(f.f_code, f.f_lineno, f.f_globals.get("__name__")) for f in frames]


def _coro_frames(coro) -> list[types.FrameType]:
    """The frames of a suspended coroutine chain (cr_await / gi_yieldfrom),
    innermost first."""
    frames = []
    seen = set()
    obj = coro
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        obj = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
    frames.reverse()
    return frames


def frames_up_to(frame, root_frame=None, root_code=None) -> list[types.FrameType]:
    """frame and its callers, innermost first, down to the goroutine's own
    outermost frame (root_frame, or the first frame running root_code); all
    of them if that root is not on the stack."""
    frames = []
    while frame is not None:
        frames.append(frame)
        if frame is root_frame or (root_code is not None and frame.f_code is root_code):
            break
        frame = frame.f_back
    return frames


def caller_frame() -> types.FrameType | None:
    """The innermost frame outside the dumping machinery."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in _OWN_MODULES:
        frame = frame.f_back
    return frame


def wait_detail(waiting: Any, g: Any) -> dict[str, Any] | None:
    """What a parked goroutine waits on, as data (docs/debugging.md, "As
    data"): {"type": "chan", "op", "id", "nil", "len", "cap", "closed",
    "receivers", "senders"} for a channel operation; {"type": "select",
    "cases": [...]} with one such dict (without "type") per channel case;
    {"type": "Mutex" | "RWMutex" | "WaitGroup" | "Semaphore" | "Once",
    "id", ..., "waiters"} for a sync primitive. Waiter counts leave the
    goroutine itself out. The objects read their fields under their own
    locks (_chan.pyx / _sync.pyx, "dumps"); call with the inspection gate
    up. None for anything else (sleep, I/O: the bracket says it all)."""
    describe = getattr(type(waiting), "_dump_wait", None)
    if describe is None:
        return None
    try:
        return describe(waiting, g)
    except Exception:  # pragma: no cover - a dump must not fail for a detail
        return None


def _state(kind, status, reason, is_current) -> str:
    if is_current:
        return "running"
    if status == "waiting":
        return reason
    if kind == "sync" and status == "running":
        # running on another thread while we hold the interpreter: inside a
        # call of its own outside gocore (time.sleep, a socket read, a C
        # library), which Go shows as a goroutine in a system call
        return "syscall"
    return status


def goroutines(current_frame: types.FrameType | None = None,
               only: Collection[int] | None = None) -> list[GoroutineRecord]:
    """A snapshot of every live goroutine (or of those whose ids are in
    only), by id. current_frame is where the calling goroutine's stack
    starts (default: the caller's frame)."""
    if current_frame is None:
        current_frame = caller_frame()
    # Without a GIL a goroutine running on another thread changes its frames
    # while we would read them: show it without a stack, as Go does. The
    # others cannot start running until _inspect_end() (see the inspection
    # gate in _sched.pyx).
    no_gil = not getattr(sys, "_is_gil_enabled", lambda: True)()
    threads = info = gp = None
    out = []
    _sched._inspect_begin()
    try:
        for info in _sched._goroutine_info(True):
            (goid, kind, status, reason, waited, coro, fn, is_main, ident,
             is_current) = info[:10]
            if status == "dead" or (only is not None and goid not in only):
                continue
            created, waiting, gp = info[10:] if len(info) > 10 else (None, None, None)
            wait = wait_detail(waiting, gp) if waiting is not None else None
            root_code = getattr(fn, "__code__", None)
            unavailable = no_gil and status == "running" and not is_current
            if unavailable:
                # only its entry point, which no running code changes
                entry = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None) or root_code
                module = getattr(fn, "__module__", None) if entry is root_code else None
                records = [] if entry is None else [FrameRecord(entry, entry.co_firstlineno, module)]
            elif is_current:
                root = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                records = frame_records(frames_up_to(current_frame, root,
                                                     None if coro is not None else root_code))
            elif coro is not None:
                records = frame_records(_coro_frames(coro))
            elif kind == "sync" and ident:
                # a sync goroutine that has started: its thread's stack
                if threads is None:
                    threads = sys._current_frames()
                records = frame_records(frames_up_to(threads.get(ident), None, root_code))
            else:
                records = []
            minutes = int(waited // 60) if status == "waiting" else 0
            started = coro is not None or bool(ident)
            out.append(GoroutineRecord(goid, kind, _state(kind, status, reason, is_current),
                                       minutes, bool(is_main), bool(is_current),
                                       records, None if started else fn, unavailable,
                                       (), created, wait))
    finally:
        _sched._inspect_end()
        # sys._current_frames() holds this very frame: drop the dict, else
        # frame -> dict -> frame is a cycle that keeps our locals (the last
        # G and its tuple) alive until the cyclic GC runs
        threads = info = gp = None
    if only is None:
        rec = _aio_record(no_gil)
        if rec is not None:
            out.append(rec)
    return out


def _aio_record(no_gil: bool) -> GoroutineRecord | None:
    """gocore.aio's loop thread as a goroutine-like record (kind
    "asyncio", goid 0), its pending calls' task stacks in `calls`; None if
    no loop runs. The tasks run on the loop thread: without a GIL only each
    one's entry point is shown."""
    aio = sys.modules.get("gocore.aio")
    info = aio._dump_record(no_gil) if aio is not None else None
    if info is None:
        return None
    _, pending = info
    calls = []
    for goid, waited, coro, fn in pending:
        if coro is None:                    # not started yet: the function
            code = getattr(fn, "__code__", None)
            frames = [] if code is None else [FrameRecord(code, code.co_firstlineno, None)]
        elif no_gil:
            code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
            frames = [] if code is None else [FrameRecord(code, code.co_firstlineno, None)]
        else:
            frames = frame_records(_coro_frames(coro))
        calls.append((goid, waited, frames))
    n = len(calls)
    state = f"{n} pending call" + ("" if n == 1 else "s")
    return GoroutineRecord(0, "asyncio", state, 0, False, False, [], None, no_gil, tuple(calls))


UNAVAILABLE = "  (running on another thread; stack unavailable)"


def format_frames(frames: list[FrameRecord], suffix: str = "") -> list[str]:
    lines = []
    for f in frames:
        code = f.code
        lines.append(f"  {getattr(code, 'co_qualname', code.co_name)}(...){suffix}")
        lines.append(f"        {code.co_filename}:{f.lineno}")
    return lines


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _format_chan(d: dict[str, Any]) -> str:
    if d.get("nil"):
        return "nil chan"
    return (f"chan {d['id']} (len {d['len']}, cap {d['cap']}"
            f"{', closed' if d['closed'] else ''}): "
            f"{_plural(d['receivers'], 'other receiver')}, "
            f"{_plural(d['senders'], 'other sender')} waiting")


def format_wait(w: dict[str, Any]) -> list[str]:
    """The `waiting on` lines of a dump block (after the stack)."""
    t = w.get("type")
    if t == "chan":
        return [f"  waiting on {_format_chan(w)}"]
    if t == "select":
        return ["  waiting in select on:"] + [
            f"    {c['op']} {_format_chan(c)}" for c in w["cases"]]
    head = f"  waiting on {'' if t == 'Semaphore' else 'sync.'}{t} {w['id']}: "
    others = _plural(w["waiters"], "other waiter")
    if t == "Mutex":
        return [head + f"{'locked' if w['locked'] else 'unlocked'}, {others}"]
    if t == "RWMutex":
        return [head + f"{_plural(w['readers'], 'reader')}, "
                f"{'writer holds it' if w['writer'] else 'no writer'}, {others}"]
    if t == "WaitGroup":
        return [head + f"counter {w['counter']}, {others}"]
    if t == "Semaphore":
        return [head + f"{w['available']} of {w['size']} available, {others}"]
    if t == "Once":
        state = "done" if w["done"] else ("running" if w["running"] else "not started")
        return [head + f"{state}, {others}"]
    return []


def format_created(created: tuple[Any, ...]) -> list[str]:
    """Go's `created by f in goroutine N` and the go() call's file:line."""
    name, filename, line, parent = created
    return [f"  created by {name}" + (f" in goroutine {parent}" if parent else ""),
            f"        {filename}:{line if line is not None else '?'}"]


def format_goroutine(g: GoroutineRecord) -> str:
    """`goroutine N [state]:` then the stack (Go's traceback format)."""
    if g.kind == "asyncio":
        return format_aio(g)
    head = g.state + (f", {g.minutes} minutes" if g.minutes >= 1 else "")
    lines = [f"goroutine {g.goid} [{head}]:" + (" (main)" if g.is_main else "")]
    # a goroutine running on another thread without a GIL: its entry point
    lines.extend(format_frames(g.frames, UNAVAILABLE if g.stack_unavailable else ""))
    if not g.frames and g.fn is not None:
        # not started yet: where its function begins
        name = getattr(g.fn, "__qualname__", None) or repr(g.fn)
        lines.append(f"  {name}(...)  (not started)")
        code = getattr(g.fn, "__code__", None)
        if code is not None:
            lines.append(f"        {code.co_filename}:{code.co_firstlineno}")
    if g.created is not None:
        lines.extend(format_created(g.created))
    if g.wait is not None:
        lines.extend(format_wait(g.wait))
    return "\n".join(lines) + "\n"


def format_aio(g: GoroutineRecord) -> str:
    """gocore.aio's loop thread: `asyncio loop [N pending calls]:`, then
    per call the goroutine waiting in aio.call and the task's stack."""
    lines = [f"asyncio loop (gocore.aio) [{g.state}]:"]
    for goid, waited, frames in g.calls:
        who = f"goroutine {goid}" if goid else "a plain thread"
        lines.append(f"  call from {who}, {waited:.1f} s:")
        lines.extend("  " + line for line in
                     format_frames(frames, UNAVAILABLE if g.stack_unavailable else ""))
    return "\n".join(lines) + "\n"


def format_goroutines(gs) -> str:
    """The blocks of format_goroutine, separated by blank lines."""
    return "\n".join(format_goroutine(g) for g in gs)


def _frame_dict(f: FrameRecord) -> dict[str, Any]:
    code = f.code
    return {"function": getattr(code, "co_qualname", code.co_name),
            "file": code.co_filename, "line": f.lineno}


def record_dict(g: GoroutineRecord) -> dict[str, Any]:
    """One goroutine as JSON-ready data (docs/debugging.md, "As data")."""
    if g.kind == "asyncio":
        return {"id": 0, "kind": "asyncio", "state": g.state,
                "stack_unavailable": g.stack_unavailable,
                "calls": [{"goroutine": goid, "seconds": round(waited, 3),
                           "frames": [_frame_dict(f) for f in frames]}
                          for goid, waited, frames in g.calls]}
    not_started = None
    if not g.frames and g.fn is not None:
        code = getattr(g.fn, "__code__", None)
        not_started = {"function": getattr(g.fn, "__qualname__", None) or repr(g.fn),
                       "file": getattr(code, "co_filename", None),
                       "line": getattr(code, "co_firstlineno", None)}
    created = None
    if g.created is not None:
        name, filename, line, parent = g.created
        created = {"function": name, "file": filename, "line": line, "goroutine": parent}
    return {"id": g.goid, "kind": g.kind, "state": g.state, "minutes": g.minutes,
            "main": g.is_main, "current": g.is_current,
            "stack_unavailable": g.stack_unavailable,
            "frames": [_frame_dict(f) for f in g.frames],
            "not_started": not_started, "created_by": created, "wait": g.wait}


def dump_goroutines(format: str = "text") -> str:
    """Every live goroutine: `goroutine N [wait reason or state]:` and its
    Python stack (innermost call first), as Go prints them, then where it
    was created and what it waits on. format="json": the same as a JSON
    array of objects (docs/debugging.md, "As data")."""
    if format not in ("text", "json"):
        raise ValueError(f'dump_goroutines(format=...) takes "text" or "json", got {format!r}')
    gs = goroutines(caller_frame())
    if format == "json":
        return json.dumps([record_dict(g) for g in gs])
    return format_goroutines(gs)


# A traceback shows at most this many goroutines of a DeadlockError's dump
# (its .dump attribute keeps them all).
DEADLOCK_NOTE_GOROUTINES = 50


def attach_deadlock_dump(err: Any) -> None:
    """Give a DeadlockError being raised its `.dump` (taken here, while the
    goroutines found asleep are still parked) and a note showing it. Never
    raises: a failing dump must not hide the deadlock."""
    try:
        gs = goroutines(caller_frame())
        err.goroutines = [record_dict(g) for g in gs]
        err.dump = format_goroutines(gs)
        shown = format_goroutines(gs[:DEADLOCK_NOTE_GOROUTINES]).rstrip("\n")
        if len(gs) > DEADLOCK_NOTE_GOROUTINES:
            shown += (f"\n\n... and {len(gs) - DEADLOCK_NOTE_GOROUTINES} more "
                      "goroutines (the exception's .dump lists them all)")
    except Exception as e:  # pragma: no cover - defensive
        err.dump = shown = f"(no goroutine dump: {e!r})"
        err.goroutines = []
    if shown:
        err.add_note(shown)
