"""gocore.aio: goroutines call asyncio code (DESIGN.md §6, direction 1).

    from gocore import aio

    async def fetch(url):                       # a lightweight goroutine
        async with httpx.AsyncClient() as c:    # asyncio code...
            ...
    body = await aio.call(fetch, url)           # ...run from a goroutine

`await aio.call(fn, *args, **kwargs)` runs `fn(*args, **kwargs)` (an async
def function, or any callable returning an awaitable) as a task on gocore's
asyncio loop and parks the calling goroutine on a private channel until the
task ends: no worker thread is held while it waits. The task's result is
returned, its exception raised (the same object, its traceback kept).

The loop runs on one thread of its own, started by the first call (its
event loop made by `set_loop_factory`'s factory, default
asyncio.new_event_loop) and stopped when gocore's runtime stops - at the
end of run() and at interpreter exit: tasks still running then are
cancelled and their finally blocks run (up to UNWIND_S seconds).

Ownership and locking:
- `_lock` guards `_factory` and `_current` (the running _Loop, or None).
  It is never held while waiting for the loop thread.
- A _Loop's `calls` (its pending calls) is guarded by its `lock`. A call is
  in `calls` from submit() until its outcome is delivered (or abandoned):
  exactly once, by whoever pops it under the lock, so the outcome is sent
  once and `_sched`'s aio_pending count is decremented once.
- A _Call's `task` is written and read on the loop thread only (dumps read
  it racily, for display).
- The outcome travels on the call's Chan(1): one sender, one value, so the
  buffer is never full and the loop thread's try_send never blocks.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import os
import sys
import threading
import time
from typing import Any

from gocore import _sched
from gocore._chan import Chan, blocking_select, select

__all__ = ["call", "blocking_call", "set_loop_factory"]

# How long tasks cancelled because the runtime stopped may take to unwind
# (their finally blocks), and how long the stop waits for the loop thread.
UNWIND_S = 2.0
JOIN_S = 5.0

_lock = threading.Lock()
_factory: Any = None               # under _lock: the loop factory (None: asyncio's default)
_current: _Loop | None = None      # under _lock: the running loop, if any


class _Call:
    """One asyncio call: made by the caller, then run by the loop thread."""
    __slots__ = ("fn", "args", "kwargs", "ch", "goid", "since", "task", "cancelled")

    def __init__(self, fn, args, kwargs):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.ch: Chan = Chan(1)      # the outcome, (True, result) or (False, exception)
        self.goid = _sched._current_goid()
        self.since = time.monotonic()
        self.task: asyncio.Task | None = None     # loop thread only
        self.cancelled = False       # set once by the caller; read by the loop thread


async def _await(aw):
    return await aw


class _Loop:
    """gocore's asyncio loop and its thread."""

    def __init__(self, factory):
        loop = factory() if factory is not None else asyncio.new_event_loop()
        if not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"aio loop factory {factory!r} returned {type(loop).__name__}, "
                            "not an asyncio event loop")
        self.loop = loop
        self.lock = threading.Lock()
        self.calls: dict[int, _Call] = {}     # under lock: pending calls by id()
        self.closed = False                    # under lock: no new calls
        self.stopping = False                  # under lock: the runtime stopped (see _deliver)
        self.at_exit = False                   # under lock: ...at interpreter exit
        self.thread = threading.Thread(target=self._main, name="gocore-aio-loop", daemon=True)
        self.thread.start()
        self.ident = self.thread.ident or 0
        if 0 < self.ident < 1 << 63:
            _sched._aio_set_thread(self.ident)

    # -- caller side (any thread)

    def submit(self, c: _Call) -> None:
        with self.lock:
            if self.closed:
                raise RuntimeError("gocore.aio: the asyncio loop is stopping (gocore's runtime stopped)")
            self.calls[id(c)] = c
            _sched._aio_pending_add(1)
        try:
            self.loop.call_soon_threadsafe(self._start, c)
        except RuntimeError:                   # the loop closed meanwhile
            self._deliver(c, (False, RuntimeError("gocore.aio: the asyncio loop stopped")))

    def cancel(self, c: _Call) -> None:
        """Cancel c's task (idempotent; a no-op once c has finished)."""
        if c.cancelled:
            return
        c.cancelled = True
        with self.lock:
            if id(c) not in self.calls:
                return
        try:
            self.loop.call_soon_threadsafe(self._cancel, c)
        except RuntimeError:
            pass                               # closed: the stop cancelled it

    # -- loop thread

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            # stopping: cancel what is left and let it unwind
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                if not t.cancelling():   # a second cancel would cut short the unwinding of the first
                    t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=UNWIND_S))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as e:              # a task's KeyboardInterrupt/SystemExit ends the loop
            sys.unraisablehook(_unraisable(e, "Exception ignored in gocore.aio's loop thread"))
        finally:
            with self.lock:
                self.closed = True
            self._abandon("the asyncio loop stopped before the call finished")
            try:
                loop.close()
            except BaseException:               # pragma: no cover - defensive
                pass
            asyncio.set_event_loop(None)

    def _start(self, c: _Call) -> None:
        if c.cancelled:
            self._deliver(c, (False, asyncio.CancelledError()))
            return
        try:
            aw = c.fn(*c.args, **c.kwargs)
            if not inspect.isawaitable(aw):
                raise TypeError(f"aio.call({_name(c.fn)}): it returned {type(aw).__name__}, "
                                "not an awaitable: pass an async def function (and its arguments)")
            task = self.loop.create_task(aw if asyncio.iscoroutine(aw) else _await(aw))
        except BaseException as e:
            self._deliver(c, (False, e))
            return
        c.fn = c.args = c.kwargs = None        # the task holds what it needs
        c.task = task
        task.add_done_callback(functools.partial(self._done, c))

    def _cancel(self, c: _Call) -> None:
        if c.task is not None:
            c.task.cancel()

    def _done(self, c: _Call, task: asyncio.Task) -> None:
        if task.cancelled():
            try:
                task.result()
            except asyncio.CancelledError as e:
                outcome = (False, e)
        else:
            e = task.exception()
            outcome = (False, e) if e is not None else (True, task.result())
        self._deliver(c, outcome)

    def _deliver(self, c: _Call, outcome: tuple) -> None:
        with self.lock:
            if self.calls.pop(id(c), None) is None:
                return                          # delivered already (abandoned by a stop)
            # Once the runtime has stopped, a goroutine still waiting is one
            # of a background runtime at interpreter exit (run()'s teardown
            # closed its own before stopping the loop): it ends with the
            # process, as in Go, rather than panicking on a CancelledError.
            # Plain threads are told, except at exit (daemon threads woken
            # while the interpreter finalizes would only add noise).
            drop = self.stopping and (c.goid != 0 or self.at_exit)
        c.task = None
        if not drop:
            c.ch.try_send(outcome)              # wake the caller first...
        _sched._aio_pending_add(-1)             # ...then stop counting it (see _sched's aio_pending)

    def _abandon(self, why: str) -> None:
        with self.lock:
            left = list(self.calls.values())
        for c in left:
            self._deliver(c, (False, RuntimeError(f"gocore.aio: {why}")))

    # -- stopping (any thread but the loop's)

    def stop(self, at_exit: bool = False) -> None:
        with self.lock:
            self.closed = self.stopping = True
            self.at_exit = at_exit
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:
            pass                                # closed already
        if threading.get_ident() != self.ident:
            self.thread.join(JOIN_S)
        if not self.thread.is_alive():
            self._abandon("the asyncio loop stopped before the call finished")


def _unraisable(exc, msg):
    class _U:
        pass
    u = _U()
    u.exc_type, u.exc_value, u.exc_traceback = type(exc), exc, exc.__traceback__
    u.err_msg, u.object = msg, None
    return u


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _loop() -> _Loop:
    """The running loop; starts one on first use."""
    global _current
    with _lock:
        if _current is None or _current.closed:
            _current = _Loop(_factory)
        return _current


def _runtime_stopped(at_exit: bool = False) -> None:
    """gocore's runtime stopped (the end of run(), via _sched's teardown;
    interpreter exit): stop the loop, cancelling what is left. Never raises."""
    global _current
    try:
        with _lock:
            r, _current = _current, None
        if r is not None:
            r.stop(at_exit)
            with _lock:
                if _current is None:
                    _sched._aio_set_thread(0)
    except BaseException as e:                 # pragma: no cover - defensive
        sys.unraisablehook(_unraisable(e, "Exception ignored stopping gocore.aio's loop"))


atexit.register(_runtime_stopped, True)


def _after_fork_in_child() -> None:
    """os.fork(): the child has no loop thread (only the forking thread
    survives) and none of the parent's calls: forget them, so its first
    call starts a fresh loop (DESIGN.md §1: the child starts with no
    runtime)."""
    global _lock, _current
    _lock = threading.Lock()        # the parent may have held it while forking
    _current = None
    _sched._aio_set_thread(0)
    _sched._aio_pending_add(-_sched._aio_pending_add(0))


os.register_at_fork(after_in_child=_after_fork_in_child)


def _check(fn, ctx, what: str) -> None:
    if not callable(fn):
        if inspect.iscoroutine(fn):
            raise TypeError(f"{what}() takes an async function and its arguments, not a "
                            f"coroutine object: {what}(fn, *args), not {what}(fn(*args))")
        raise TypeError(f"{what}() needs an async def function (or a callable returning an "
                        f"awaitable), got {type(fn).__name__}")
    if ctx is not None and not (callable(getattr(ctx, "done", None)) and callable(getattr(ctx, "err", None))):
        raise TypeError(f"{what}(ctx=...) needs a gocore.context.Context, got {type(ctx).__name__}")


def _outcome(ok: bool, v: Any) -> Any:
    if ok:
        return v
    try:
        raise v
    finally:
        v = None                                # no frame -> exception -> frame cycle


async def call(fn, /, *args, ctx=None, **kwargs):
    """Run `fn(*args, **kwargs)` (an async def function, or a callable
    returning an awaitable) as a task on gocore's asyncio loop and park the
    calling lightweight goroutine until it ends; return its result or raise
    its exception. With ctx (a gocore.context.Context), the task is
    cancelled when ctx is done and ctx.err() is raised once it has unwound
    (at once, without starting it, if ctx is done already). If the goroutine
    is closed while it waits (run() ends), the task is cancelled."""
    if not _sched._on_async_g():
        raise RuntimeError("`await aio.call(...)` works inside a lightweight (async def) goroutine; "
                           "sync goroutines and plain threads use aio.blocking_call(...), and "
                           "asyncio code awaits the coroutine itself")
    _check(fn, ctx, "aio.call")
    if ctx is not None:
        err = ctx.err()
        if err is not None:
            raise err
    c = _Call(fn, args, kwargs)
    r = _loop()
    r.submit(c)
    try:
        if ctx is None:
            ok, v = await c.ch.recv()
        else:
            i, res = await select(c.ch.recv, ctx.done().recv)
            if i == 1:
                r.cancel(c)
                await c.ch.recv()               # the task has unwound
                raise ctx.err()
            ok, v = res
    except BaseException:
        r.cancel(c)     # closed (GeneratorExit), GoroutineExit...: the task must not outlive us
        raise
    return _outcome(ok, v)


def blocking_call(fn, /, *args, ctx=None, **kwargs):
    """aio.call for sync goroutines and plain threads: runs fn's coroutine on
    gocore's asyncio loop and blocks the calling thread until it ends. Inside
    a lightweight goroutine it raises RuntimeError: use `await aio.call`."""
    if _sched._on_async_g():
        raise RuntimeError("aio.blocking_call() would block a lightweight goroutine's worker thread: "
                           "use `await aio.call(...)` inside async goroutines")
    _check(fn, ctx, "aio.blocking_call")
    if ctx is not None:
        err = ctx.err()
        if err is not None:
            raise err
    r = _loop()
    if threading.get_ident() == r.ident:
        raise RuntimeError("aio.blocking_call() on gocore's asyncio loop thread would wait for "
                           "itself: await the coroutine directly")
    c = _Call(fn, args, kwargs)
    r.submit(c)
    try:
        if ctx is None:
            ok, v = c.ch.blocking_recv()
        else:
            i, res = blocking_select(c.ch.recv, ctx.done().recv)
            if i == 1:
                r.cancel(c)
                c.ch.blocking_recv()
                raise ctx.err()
            ok, v = res
    except BaseException:
        r.cancel(c)
        raise
    return _outcome(ok, v)


def set_loop_factory(factory) -> None:
    """Choose how gocore's asyncio loop is made: a callable returning a new
    event loop (uvloop.new_event_loop, say); None restores asyncio's default.
    Takes effect when the loop next starts; while one runs it raises
    RuntimeError (set it before the first aio.call, or after run() returns)."""
    global _factory
    if factory is not None and not callable(factory):
        raise TypeError(f"set_loop_factory() needs a callable returning an event loop, or None; "
                        f"got {type(factory).__name__}")
    with _lock:
        if _current is not None and not _current.closed:
            raise RuntimeError("aio.set_loop_factory(): gocore's asyncio loop is running already; "
                               "set the factory before the first aio call, or after run() returns")
        _factory = factory


def _dump_record(stack_unavailable: bool):
    """For dump_goroutines(): (thread ident, [(caller goid, seconds waited,
    coroutine or None)]) of the running loop, or None."""
    r = _current
    if r is None:
        return None
    with r.lock:
        calls = list(r.calls.values())
    now = time.monotonic()
    out = []
    for c in calls:
        task = c.task
        coro = task.get_coro() if task is not None else None
        out.append((c.goid, now - c.since, coro, c.fn))
    return r.ident, out
