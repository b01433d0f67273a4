"""A fake-clock test bubble (Go 1.25's testing/synctest), exported by
gocore.testing: synctest(fn, *args), now(), wait() and wait_blocking().

    def test_timeout():
        async def main():
            ctx, cancel = context.with_timeout(context.background(), 3600)
            await ctx.done().recv()          # returns at once: the clock jumps
            assert isinstance(ctx.err(), context.DeadlineExceeded)
            cancel()
        gocore.testing.synctest(main)

synctest() is run() with one difference: the run's timers (sleep, after,
tick, Timer, Ticker, after_func, context deadlines) use a fake clock that
starts at 2000-01-01T00:00:00Z (now() == 946684800.0) and moves forward
only when every goroutine of the run is durably blocked - parked in gocore
on a channel, a select, a sync object or a timer - and then straight to
the earliest pending timer. The scheduler implements it (the clock in
_sched_timers.pxi, the rule in _sched_deadlock.pxi's "the synctest
bubble"); docs/synctest.md gives the rule in full and what is not faked.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from gocore import _sched

__all__ = ["synctest", "now", "wait", "wait_blocking"]

_R = TypeVar("_R")


def synctest(fn: Callable[..., Awaitable[_R]] | Coroutine[Any, Any, _R], *args: Any) -> _R:
    """Run the async function fn(*args) as the main goroutine of a bubble
    and return its result; an exception escaping any of its goroutines is
    raised here, as from gocore.run(). Called like run(): from a test,
    outside any run (inside one: RuntimeError). A bubble in which every
    goroutine is blocked with no timer pending ends with DeadlockError
    naming them."""
    if inspect.iscoroutine(fn):
        if args:
            fn.close()
            raise TypeError("synctest(coroutine) takes no extra arguments")
    elif not callable(fn):
        raise TypeError(f"synctest() needs an async def function (or a coroutine), "
                        f"got {type(fn).__name__}")
    elif not inspect.iscoroutinefunction(fn):
        raise TypeError(f"synctest() needs an async def function (or a coroutine): its main "
                        f"goroutine is a lightweight one; {fn!r} is not async "
                        f"(sync code runs in goroutines it starts with go())")
    result: _R = _sched._bubble_run(fn, args)
    return result


def now() -> float:
    """The timers' clock in seconds: inside a bubble its fake clock (what
    timer channels send and context deadlines are measured on), outside one
    time.monotonic()."""
    return _sched._bubble_now()


def wait() -> Awaitable[None]:
    """`await wait()`: return once every other goroutine of the bubble is
    durably blocked (Go's synctest.Wait); the clock does not move for it.
    One goroutine waits at a time. Outside a bubble: RuntimeError."""
    return _sched._bubble_wait()


def wait_blocking() -> None:
    """wait() for sync goroutines (go(plain_function)): blocks the calling
    goroutine's thread until every other goroutine of the bubble is
    durably blocked."""
    _sched._bubble_wait_blocking()
