"""Go's golang.org/x/sync/errgroup: a WaitGroup whose goroutines return
errors (raise exceptions); the first one is kept and re-raised by wait().

    g, ctx = ErrGroup.with_context(context.background())
    for url in urls:
        g.go(fetch, ctx, url)        # fetch: async def or plain function
    await g.wait()                   # re-raises the first exception

Exceptions raised by the group's goroutines are the group's results, not
panics: they do not stop the program. One difference from Go: `go()` never
blocks. With set_limit(n), the goroutine it starts waits for one of the n
slots before calling fn, so at most n calls run at once, as in Go, but the
caller is not held up; try_go() starts one only if a slot is free.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable, ParamSpec

from gocore import context as _context
from gocore._chan import Chan
from gocore._sched import go as _go

__all__ = ["ErrGroup"]

_P = ParamSpec("_P")


class ErrGroup:
    """A group of goroutines working on subtasks of one task."""

    def __init__(self, ctx: _context.Context | None = None) -> None:
        from gocore._sync import WaitGroup

        self._wg = WaitGroup()
        self._lock = threading.Lock()     # guards _err and _active (any goroutine or thread)
        self._err: BaseException | None = None
        self._active = 0
        self._tokens: Chan[None] | None = None  # a slot per running call when limited
        self._cancel: Callable[[], None] | None = None
        self._ctx: _context.Context | None = None
        if ctx is not None:
            self._ctx, self._cancel = _context.with_cancel(ctx)

    @classmethod
    def with_context(cls, ctx: _context.Context) -> tuple["ErrGroup", _context.Context]:
        """A group and a context derived from ctx, cancelled when a goroutine
        of the group raises or when wait() returns."""
        g = cls(ctx)
        assert g._ctx is not None
        return g, g._ctx

    def set_limit(self, n: int) -> None:
        """At most n calls of the group run at once; n < 0 removes the limit."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"set_limit(n) needs an int, got {type(n).__name__}")
        if n == 0:
            raise ValueError("set_limit(0) would let no goroutine run")
        with self._lock:
            if self._active:
                raise RuntimeError(f"errgroup: modify limit while {self._active} "
                                   "goroutines in the group are still active")
            self._tokens = None if n < 0 else Chan(n)

    def _record(self, exc: BaseException) -> None:
        with self._lock:
            first = self._err is None
            if first:
                self._err = exc
        if first and self._cancel is not None:
            self._cancel()

    def _finish(self) -> None:
        with self._lock:
            self._active -= 1
        self._wg.done()

    def go(self, fn: Callable[_P, object], /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Run fn(*args, **kwargs) in a new goroutine (async def: lightweight;
        plain function: sync). If it raises, the first exception is kept."""
        self._start(fn, args, kwargs, self._tokens, preacquired=False)

    def try_go(self, fn: Callable[_P, object], /, *args: _P.args, **kwargs: _P.kwargs) -> bool:
        """go(), only if a slot is free under the limit; False otherwise."""
        tokens = self._tokens
        if tokens is not None and not tokens.try_send(None):
            return False
        self._start(fn, args, kwargs, tokens, preacquired=True)
        return True

    def _start(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
               tokens: Chan[None] | None, preacquired: bool) -> None:
        if not callable(fn):
            raise TypeError(f"ErrGroup.go() needs a callable, got {type(fn).__name__}")
        with self._lock:
            self._active += 1
        self._wg.add(1)
        if inspect.iscoroutinefunction(fn):
            async def run_async() -> None:
                try:
                    if tokens is not None and not preacquired:
                        await tokens.send(None)
                    try:
                        await fn(*args, **kwargs)
                    finally:
                        if tokens is not None:
                            tokens.try_recv()
                except Exception as e:      # BaseExceptions (exit, closing) pass through
                    self._record(e)
                finally:
                    self._finish()
            _go(run_async)
        else:
            def run_sync() -> Any:
                # `finish` and `release` pass to _await_result with the awaitable
                release = finish = True
                try:
                    if tokens is not None and not preacquired:
                        tokens.blocking_send(None)
                    r = fn(*args, **kwargs)
                    if hasattr(type(r), "__await__"):
                        # fn returned an awaitable (g.go(ch.recv)): hand go()
                        # a coroutine that awaits it, run as a lightweight goroutine
                        release = finish = False
                        return self._await_result(r, tokens)
                except Exception as e:      # BaseExceptions (exit, closing) pass through
                    self._record(e)
                finally:
                    # in `finally`, as run_async: a BaseException (a panic)
                    # still ends this goroutine's share of the group
                    if release and tokens is not None:
                        tokens.try_recv()
                    if finish:
                        self._finish()
                return None
            _go(run_sync)

    async def _await_result(self, aw: Any, tokens: Chan[None] | None) -> None:
        try:
            await aw
        except Exception as e:
            self._record(e)
        finally:
            if tokens is not None:
                tokens.try_recv()
            self._finish()

    async def wait(self) -> None:
        """Wait for every goroutine of the group, then re-raise the first
        exception any of them raised (after cancelling the group's context)."""
        await self._wg.wait()
        self._done()

    def blocking_wait(self) -> None:
        """wait() for plain threads and sync goroutines."""
        self._wg.blocking_wait()
        self._done()

    def _done(self) -> None:
        if self._cancel is not None:
            self._cancel()
        with self._lock:
            err = self._err
        if err is not None:
            raise err
