"""Type-checked, never run: every public name of gocore used the way its
stubs promise. tests/test_typing.py runs `mypy --strict` over this file with
the README's examples. `assert_type` pins what each call gives; a line
ending in `# type: ignore[code]` is a misuse the stubs must reject (strict
mode's warn_unused_ignores fails the test if one is ever accepted).
"""
from __future__ import annotations

import time
from typing import Any, assert_type

import gocore
from gocore import (
    Chan, ChanClosedError, DeadlockError, Mutex, Once, RWMutex, Semaphore, Ticker, Timer,
    WaitGroup, after, after_func, blocking_select, context, default, dump_goroutines, go,
    gomaxprocs, gosched, nilchan, num_goroutine, run, select, set_panic_hook, sleep, stats, tick,
)
from gocore.atomic import Bool, Int64, Value
from gocore.errgroup import ErrGroup


async def worker(ch: Chan[int], n: int, *, label: str = "") -> str:
    await ch.send(n)
    return label


def sync_worker(ch: Chan[int], n: int) -> None:
    ch.blocking_send(n)


async def goroutines(ch: Chan[int]) -> None:
    go(worker, ch, 1)
    go(worker, ch, 1, label="x")
    go(sync_worker, ch, 2)
    go(worker(ch, 3))                    # a coroutine object
    go(ch.send, 4)                       # a callable returning an awaitable
    go(lambda: None)
    go(worker, ch)                       # type: ignore[call-overload]
    go(worker, ch, "1")                  # type: ignore[call-overload]
    go(worker, ch, 1, colour="red")      # type: ignore[call-arg]
    go(42)                               # type: ignore[call-overload]
    await gosched()
    assert_type(gomaxprocs(), int)
    assert_type(gomaxprocs(2), int)
    assert_type(num_goroutine(), int)
    assert_type(dump_goroutines(), str)
    assert_type(stats(), dict[str, int])
    assert_type(gocore.metrics(), dict[str, Any])
    assert_type(dump_goroutines(format="json"), str)


async def main_async() -> int:
    return 1


def main_sync(x: int) -> str:
    return str(x)


def main_awaitable(ch: Chan[int]) -> Any:
    return ch.recv()


def runs() -> None:
    assert_type(run(main_async), int)
    assert_type(run(main_async()), int)
    assert_type(run(main_sync, 3), str)
    run(main_sync)                       # type: ignore[call-overload]
    run(main_sync, "3")                  # type: ignore[call-overload]
    set_panic_hook(lambda exc, goid: print(goid, exc))
    set_panic_hook(None)


async def channels() -> None:
    ch: Chan[int] = Chan(3)
    unbuffered = Chan[str]()
    assert_type(unbuffered, Chan[str])
    await ch.send(1)
    await ch.send("one")                 # type: ignore[arg-type]
    assert_type(await ch.recv(), int | None)
    assert_type(await ch.recv_ok(), tuple[int | None, bool])
    v, ok = await ch.recv_ok()
    assert_type(ok, bool)
    assert_type(ch.try_send(2), bool)
    r = ch.try_recv()
    assert_type(r, tuple[int | None, bool] | None)
    assert_type(len(ch), int)
    assert_type(ch.cap, int)
    assert_type(ch.closed, bool)
    ch.track_peak()
    assert_type(ch.peak, int | None)
    ch.close()
    async for i in ch:
        assert_type(i, int)
    for j in ch:
        assert_type(j, int)
    ch.blocking_send(3)
    assert_type(ch.blocking_recv(), int | None)
    assert_type(ch.blocking_recv_ok(), tuple[int | None, bool])
    assert_type(nilchan, Chan[Any])
    Chan("3")                            # type: ignore[arg-type]
    ch.cap = 3                           # type: ignore[misc]


async def selects(a: Chan[int], b: Chan[str]) -> None:
    i, v = await select(a.recv, b.recv_ok, (a.send, 1), default)
    assert_type(i, int)
    assert_type(v, Any)
    assert_type(await select(a.recv, after(1.0).recv), tuple[int, Any])
    assert_type(blocking_select(a.recv, default), tuple[int, Any])
    await select(default)
    await select()                       # type: ignore[call-arg]
    await select(42)                     # type: ignore[arg-type]
    await select("recv")                 # type: ignore[arg-type]
    await select(a.send)                 # type: ignore[arg-type]
    await select((a.send,))              # type: ignore[arg-type]
    await select((a.recv, 1))            # type: ignore[arg-type]
    await select(gosched)                # type: ignore[arg-type]
    await select(lambda: None)           # type: ignore[arg-type, return-value]


async def timers() -> None:
    await sleep(0.1)
    await sleep(1)
    assert_type(after(0.5), Chan[float])
    assert_type(tick(0.5), Chan[float])
    t = Timer(1.0)
    assert_type(t.c, Chan[float])
    assert_type(t.stop(), bool)
    assert_type(t.reset(2.0), bool)
    assert_type(after_func(1.0, lambda: None), Timer)
    after_func(1.0, main_async)
    tk = Ticker(0.5)
    assert_type(tk.c, Chan[float])
    assert_type(tk.stop(), None)
    tk.reset(0.25)
    assert isinstance(tk, Timer)


async def sync_primitives() -> None:
    wg = WaitGroup()
    wg.add()
    wg.add(2)
    wg.done()
    wg.go(worker, Chan[int](), 1)
    wg.go(worker, Chan[int]())           # type: ignore[call-arg]
    await wg.wait()
    wg.blocking_wait()
    assert_type(wg.count, int)

    m = Mutex()
    await m.lock()
    m.unlock()
    assert_type(m.try_lock(), bool)
    assert_type(m.locked(), bool)
    m.blocking_lock()
    async with m:
        pass
    with m as held:
        assert_type(held, Mutex)

    rw = RWMutex()
    await rw.rlock()
    rw.runlock()
    await rw.lock()
    rw.unlock()
    assert_type(rw.try_rlock(), bool)
    assert_type(rw.try_lock(), bool)
    rw.blocking_rlock()
    rw.blocking_lock()
    async with rw:
        pass
    with rw:
        pass
    async with rw.rlocker():
        pass
    with rw.rlocker():
        pass
    rw.locked()                          # type: ignore[attr-defined]
    m = rw                               # type: ignore[assignment]

    once = Once()
    await once.do(lambda: None)
    await once.do(main_async)
    once.blocking_do(lambda: None)
    assert_type(once.done, bool)

    sem = Semaphore(3)
    Semaphore()
    await sem.acquire()
    await sem.acquire(2)
    assert_type(sem.try_acquire(), bool)
    sem.blocking_acquire(1)
    sem.release(3)
    assert_type(sem.size, int)
    assert_type(sem.held, int)
    async with sem:
        pass
    with sem:
        pass


def errors() -> None:
    try:
        pass
    except (DeadlockError, ChanClosedError) as e:
        assert_type(e, DeadlockError | ChanClosedError)
    assert issubclass(DeadlockError, RuntimeError)
    assert gocore.context is context


async def contexts() -> None:
    root = context.background()
    assert_type(root, context.Context)
    assert_type(context.todo(), context.Context)
    ctx, cancel = context.with_cancel(root)
    assert_type(cancel, context.CancelFunc)
    tctx, tcancel = context.with_timeout(ctx, 0.5)
    dctx, dcancel = context.with_deadline(ctx, time.monotonic() + 1)
    vctx = context.with_value(tctx, "k", 1)
    assert_type(vctx.value("k"), Any)
    assert_type(dctx.done(), Chan[None])
    assert_type(dctx.err(), BaseException | None)
    assert_type(dctx.deadline(), tuple[float | None, bool])
    i, _ = await select(ctx.done().recv, default)
    err = ctx.err()
    if isinstance(err, context.DeadlineExceeded):
        assert isinstance(err, TimeoutError)
    elif isinstance(err, context.Canceled):
        pass
    cancel()
    tcancel()
    dcancel()
    context.with_timeout(ctx, "1s")      # type: ignore[arg-type]


async def errgroups(urls: list[str]) -> None:
    async def fetch(ctx: context.Context, url: str) -> bytes:
        return url.encode()

    g, ctx = ErrGroup.with_context(context.background())
    assert_type(g, ErrGroup)
    g.set_limit(4)
    for url in urls:
        g.go(fetch, ctx, url)
    g.go(fetch, ctx)                     # type: ignore[call-arg]
    assert_type(g.try_go(fetch, ctx, "u"), bool)
    await g.wait()
    ErrGroup().blocking_wait()


def atomics() -> None:
    n = Int64()
    assert_type(n.add(1), int)
    assert_type(n.load(), int)
    n.store(3)
    assert_type(n.swap(4), int)
    assert_type(n.compare_and_swap(4, 5), bool)
    b = Bool(True)
    assert_type(b.load(), bool)
    assert_type(b.swap(False), bool)
    assert_type(b.compare_and_swap(False, True), bool)
    v: Value[str] = Value()
    v.store("x")
    v.store(1)                           # type: ignore[arg-type]
    assert_type(v.load(), str | None)
    assert_type(v.swap("y"), str | None)
    assert_type(v.compare_and_swap("y", "z"), bool)


async def aio_calls() -> None:
    from gocore import aio

    async def square(n: int, *, label: str = "") -> int:
        return n * n

    assert_type(await aio.call(square, 3), int)
    assert_type(await aio.call(square, 3, label="x"), int)
    assert_type(await aio.call(square, 3, ctx=context.background()), int)
    assert_type(aio.blocking_call(square, 3), int)
    await aio.call(square, "3")          # type: ignore[call-overload]
    await aio.call(time.monotonic)       # type: ignore[call-overload]
    aio.set_loop_factory(None)
    aio.set_loop_factory(3)              # type: ignore[arg-type]

