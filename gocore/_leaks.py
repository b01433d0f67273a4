"""find_leaks(): goroutine leaks found by reachability (Go 1.26's
goroutineleak profile, in Python terms), exported by gocore.testing.

A goroutine is *leaked* when it is parked on a channel, a select, a
Mutex/RWMutex/WaitGroup/Once/Semaphore or nilchan and nothing alive can
ever wake it: no running or runnable goroutine, no thread, no module global,
no signal handler and no pending timer can reach the object it waits on.
The scan (`_sched._leak_scan`, at the end of gocore/_sched_api.pxi) marks
the object graph from those roots; a parked goroutine becomes a root itself
once something it waits on is marked (then a live object can still wake
it, and what it holds is live too), until nothing changes. What stays
unmarked is leaked - also two goroutines each waiting on a channel only the
other holds. A goroutine sleeping or waiting on I/O is never leaked (its
timer or the network poller wakes it).

No false positives is the rule: wherever the scan cannot see what a
goroutine waits on, or what an object holds, it counts the goroutine or
the object as live. What it cannot see, and so assumes nobody holds, is
listed in docs/debugging.md ("Leaks by reachability": references held only
by C extensions, other threads' contextvars, trace functions, atexit).

The main goroutine parked on nilchan, or in a select of only nilchan cases
(Go's `select {}`: main parks for good while other goroutines serve), is
not reported: that is how a program says "run until killed", and if
nothing else can run, run()'s deadlock detection reports it. Parked on
anything else, main is reported like any goroutine.
"""

from __future__ import annotations

import sys

from gocore import _debug, _sched

__all__ = ["find_leaks", "format_leaks"]

# the wait reasons of a park nothing can end (nilchan, or a select of only nilchan cases)
_NIL_REASONS = frozenset({"chan receive (nil chan)", "chan send (nil chan)", "select (no cases)"})

_types: tuple[tuple[type, ...], tuple[type, ...]] | None = None


def _scan_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(what a thread's wait names directly, the operation objects)."""
    global _types
    if _types is None:
        from gocore import _chan, _sync
        _types = ((_chan.Chan, _sync._SyncBase),
                  (_chan._ChanOp, _chan._Select, getattr(_sync, "_SyncOp")))   # (not in the stubs)
    return _types


def find_leaks() -> list[_debug.GoroutineRecord]:
    """The goroutines that nothing alive can ever wake, as the dump's
    records (by goroutine id; format them with format_leaks()).

    Call it from anywhere in the program: an async or sync goroutine,
    a plain thread, the main thread; inside run() or with the runtime that
    go() starts in the background. With no runtime running there is no
    goroutine: []. It does not block or yield (the scan holds the GIL, so
    the program stands still meanwhile: about 0.3 s per million reachable
    objects).
    On a free-threaded build it needs the GIL enabled (PYTHON_GIL=1):
    otherwise RuntimeError."""
    direct, ops = _scan_types()
    if hasattr(sys, "_is_gil_enabled") and not sys._is_gil_enabled():
        raise RuntimeError("find_leaks() needs the GIL to take a consistent snapshot of the "
                           "object graph; on a free-threaded build run with PYTHON_GIL=1")
    found = _sched._leak_scan(direct, ops)
    goids = {goid for goid, is_main, reason in found
             if not (is_main and reason in _NIL_REASONS)}
    if not goids:
        return []
    # leaked goroutines stay parked: their records are read after the scan
    return _debug.goroutines(only=goids)


def _created_by(g: _debug.GoroutineRecord) -> str:
    """The `created by` lines of g's block, from a `created_by` field of
    the record when it has one: text (printed as it is), or a frame
    record (code, lineno)."""
    cb = getattr(g, "created_by", None)
    if not cb:
        return ""
    if isinstance(cb, str):
        text = cb if cb.lstrip().startswith("created by") else f"  created by {cb}"
        return text if text.endswith("\n") else text + "\n"
    code = getattr(cb, "code", None)
    if code is not None:
        name = getattr(code, "co_qualname", code.co_name)
        return f"  created by {name}\n        {code.co_filename}:{getattr(cb, 'lineno', '?')}\n"
    return f"  created by {cb!r}\n"


def format_leaks(leaks: list[_debug.GoroutineRecord]) -> str:
    """Each leaked goroutine as the dump prints it (`goroutine N [wait
    reason]:` and its stack), with where it was created when recorded."""
    blocks = []
    for g in leaks:
        block = _debug.format_goroutine(g)
        if "created by" not in block:
            block += _created_by(g)
        blocks.append(block)
    return "\n".join(blocks)
