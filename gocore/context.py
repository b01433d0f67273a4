"""Go's context package: cancellation, deadlines and request-scoped values.

    ctx, cancel = context.with_timeout(context.background(), 0.5)
    try:
        i, v = await select(ctx.done().recv, results.recv)
        if i == 0:
            raise ctx.err()            # DeadlineExceeded (a TimeoutError)
    finally:
        cancel()

Pure Python on gocore's channels and timers. A context's state is guarded by
a small lock (it may be cancelled from any goroutine or thread at once);
`done()` is a channel closed exactly once, on the first cancellation.
Cancelling a context cancels all its descendants and detaches it from its
parent, and stops its deadline timer, so cancelled contexts leak neither
goroutines nor timers.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable

from gocore._chan import Chan, nilchan
from gocore._time import Timer, _now, after_func

__all__ = [
    "Context", "Canceled", "DeadlineExceeded", "CancelFunc",
    "background", "todo", "with_cancel", "with_timeout", "with_deadline", "with_value",
]

CancelFunc = Callable[[], None]


class Canceled(Exception):
    """The context was cancelled (Go's context.Canceled)."""

    def __init__(self, msg: str = "context canceled") -> None:
        super().__init__(msg)


class DeadlineExceeded(TimeoutError):
    """The context's deadline passed (Go's context.DeadlineExceeded)."""

    def __init__(self, msg: str = "context deadline exceeded") -> None:
        super().__init__(msg)


class Context:
    """A Go context. Contexts are immutable apart from their cancellation."""

    __slots__ = ()

    def done(self) -> Chan[None]:
        """A channel closed when the context is cancelled; the same Chan on
        every call. Never closes for background() and todo()."""
        return nilchan

    def err(self) -> BaseException | None:
        """None while not cancelled, then a Canceled or DeadlineExceeded
        instance (the first cause sticks)."""
        return None

    def deadline(self) -> tuple[float | None, bool]:
        """(deadline as a time.monotonic() value, True), or (None, False)."""
        return (None, False)

    def value(self, key: Any) -> Any:
        """The value stored for key by with_value on this context or an
        ancestor, or None."""
        if key is None:
            raise TypeError("context.value: key is None")
        return None


class _EmptyCtx(Context):
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"context.{self._name}()"


_background = _EmptyCtx("background")
_todo = _EmptyCtx("todo")


def background() -> Context:
    """The root context: never cancelled, no deadline, no values."""
    return _background


def todo() -> Context:
    """A placeholder root context, for code not yet given one."""
    return _todo


class _CancelCtx(Context):
    """with_cancel / with_deadline. `_lock` guards _err, _children and the
    timer; `_done` is closed once, by whoever sets _err first."""

    __slots__ = ("_parent", "_lock", "_done", "_err", "_children", "_deadline", "_timer")

    def __init__(self, parent: Context, deadline: float | None) -> None:
        self._parent = parent
        self._lock = threading.Lock()
        self._done: Chan[None] = Chan()
        self._err: BaseException | None = None
        self._children: set[_CancelCtx] | None = set()
        self._deadline = deadline
        self._timer: Timer | None = None

    def done(self) -> Chan[None]:
        return self._done

    def err(self) -> BaseException | None:
        with self._lock:
            return self._err

    def deadline(self) -> tuple[float | None, bool]:
        if self._deadline is not None:
            return (self._deadline, True)
        return self._parent.deadline()

    def value(self, key: Any) -> Any:
        return self._parent.value(key)

    def _cancel(self, err: BaseException, detach: bool) -> None:
        with self._lock:
            if self._err is not None:
                return                      # the first error sticks
            self._err = err
            children, self._children = self._children, None
            timer, self._timer = self._timer, None
        self._done.close()
        if timer is not None:
            timer.stop()
        for child in children or ():
            child._cancel(err, False)      # children share their parent's cause
        if detach:
            parent = _nearest_cancel_ctx(self._parent)
            if parent is not None:
                with parent._lock:
                    if parent._children is not None:
                        parent._children.discard(self)

    def __repr__(self) -> str:
        kind = "with_deadline" if self._deadline is not None else "with_cancel"
        return f"context.{kind}({self._parent!r})"


class _ValueCtx(Context):
    __slots__ = ("_parent", "_key", "_val")

    def __init__(self, parent: Context, key: Any, val: Any) -> None:
        self._parent = parent
        self._key = key
        self._val = val

    def done(self) -> Chan[None]:
        return self._parent.done()

    def err(self) -> BaseException | None:
        return self._parent.err()

    def deadline(self) -> tuple[float | None, bool]:
        return self._parent.deadline()

    def value(self, key: Any) -> Any:
        if key is None:
            raise TypeError("context.value: key is None")
        ctx: Context = self
        while isinstance(ctx, _ValueCtx):
            if ctx._key == key:
                return ctx._val
            ctx = ctx._parent
        return ctx.value(key)

    def __repr__(self) -> str:
        return f"context.with_value({self._parent!r}, {self._key!r}, ...)"


def _nearest_cancel_ctx(ctx: Context) -> _CancelCtx | None:
    while isinstance(ctx, _ValueCtx):
        ctx = ctx._parent
    return ctx if isinstance(ctx, _CancelCtx) else None


def _check_parent(parent: Context, fn: str) -> None:
    if parent is None:
        raise TypeError(f"context.{fn}: cannot create a context from a None parent")
    if not isinstance(parent, Context):
        raise TypeError(f"context.{fn}: parent must be a Context, got {type(parent).__name__}")


def _propagate(parent: Context, child: _CancelCtx) -> None:
    """Arrange for child to be cancelled when parent is."""
    p = _nearest_cancel_ctx(parent)
    if p is None:
        return                              # background/todo: never cancelled
    with p._lock:
        if p._err is None:
            assert p._children is not None  # None only once _err is set
            p._children.add(child)
            return
        err = p._err
    child._cancel(err, False)


def with_cancel(parent: Context) -> tuple[Context, CancelFunc]:
    """A child of parent with its own done channel, closed when cancel() is
    called or parent is cancelled, whichever happens first. cancel is
    idempotent; call it once the work is done, to release the child."""
    _check_parent(parent, "with_cancel")
    ctx = _CancelCtx(parent, None)
    _propagate(parent, ctx)
    return ctx, lambda: ctx._cancel(Canceled(), True)


def with_deadline(parent: Context, deadline: float) -> tuple[Context, CancelFunc]:
    """with_cancel, and cancelled with DeadlineExceeded at `deadline` (a
    time.monotonic() value; inside a synctest bubble, a gocore.testing.now()
    value). A deadline later than the parent's is the
    parent's (a child never outlives its parent's deadline)."""
    _check_parent(parent, "with_deadline")
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        raise TypeError(f"context.with_deadline: deadline must be a time.monotonic() "
                        f"float, got {type(deadline).__name__}")
    if math.isnan(deadline):
        raise ValueError("context.with_deadline: deadline is NaN")
    pd, ok = parent.deadline()
    if ok and pd is not None and pd <= deadline:
        return with_cancel(parent)          # the parent's deadline comes first
    ctx = _CancelCtx(parent, float(deadline))
    _propagate(parent, ctx)
    remaining = deadline - _now()          # time.monotonic(), or a synctest bubble's clock
    if remaining <= 0:
        ctx._cancel(DeadlineExceeded(), True)
    else:
        try:
            timer: Timer | None = after_func(remaining,
                                             lambda: ctx._cancel(DeadlineExceeded(), True))
        except BaseException:
            ctx._cancel(Canceled(), True)   # never returned: leave nothing with the parent
            raise
        with ctx._lock:
            if ctx._err is None:
                ctx._timer = timer
                timer = None
        if timer is not None:               # cancelled meanwhile
            timer.stop()
    return ctx, lambda: ctx._cancel(Canceled(), True)


def with_timeout(parent: Context, timeout: float) -> tuple[Context, CancelFunc]:
    """with_deadline(parent, time.monotonic() + timeout) (inside a synctest
    bubble, its fake clock's now() + timeout)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"context.with_timeout: timeout must be a number of seconds, "
                        f"got {type(timeout).__name__}")
    if math.isnan(timeout):
        raise ValueError("context.with_timeout: timeout is NaN")
    return with_deadline(parent, _now() + timeout)


def with_value(parent: Context, key: Any, val: Any) -> Context:
    """A child of parent that carries val for key (compared with ==)."""
    _check_parent(parent, "with_value")
    if key is None:
        raise TypeError("context.with_value: key is None")
    return _ValueCtx(parent, key, val)
