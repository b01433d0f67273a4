"""Go's context package on gocore: cancellation, deadlines, values."""
import time

import pytest

import gocore
from gocore import Chan, after, context, default, go, select, sleep


@pytest.mark.timeout(10)
def test_background_never_done(rt):
    async def main():
        bg = context.background()
        i, _ = await select(bg.done().recv, after(0.02).recv)
        return i, bg.err(), bg.deadline(), bg.done() is bg.done(), bg.value("k")
    assert rt.run(main) == (1, None, (None, False), True, None)


@pytest.mark.timeout(10)
def test_todo_is_a_root(rt):
    assert context.todo().err() is None


@pytest.mark.timeout(10)
def test_cancel_closes_done_and_sets_err(rt):
    async def main():
        ctx, cancel = context.with_cancel(context.background())
        assert ctx.err() is None
        d = ctx.done()
        cancel()
        v, ok = await d.recv_ok()
        cancel()                       # idempotent
        return ok, type(ctx.err()), d is ctx.done()
    assert rt.run(main) == (False, context.Canceled, True)


@pytest.mark.timeout(10)
def test_cancel_parent_cancels_descendants(rt):
    """Cancelling a parent cancels its children and theirs (with_value in
    between is transparent)."""
    async def main():
        root, cancel = context.with_cancel(context.background())
        a, _ = context.with_cancel(root)
        b = context.with_value(a, "k", 1)
        c, _ = context.with_timeout(b, 10)
        cancel()
        for ctx in (a, b, c):
            await ctx.done().recv()
        return [type(x.err()) for x in (a, b, c)]
    assert rt.run(main) == [context.Canceled] * 3


@pytest.mark.timeout(10)
def test_child_cancel_leaves_parent(rt):
    async def main():
        root, cancel_root = context.with_cancel(context.background())
        child, cancel = context.with_cancel(root)
        cancel()
        res = root.err(), type(child.err())
        cancel_root()
        return res
    assert rt.run(main) == (None, context.Canceled)


@pytest.mark.timeout(10)
def test_with_timeout_expires(rt):
    async def main():
        ctx, cancel = context.with_timeout(context.background(), 0.03)
        t = time.monotonic()
        await ctx.done().recv()
        dt = time.monotonic() - t
        cancel()                       # the first error sticks
        return type(ctx.err()), isinstance(ctx.err(), TimeoutError), dt
    kind, is_timeout, dt = rt.run(main)
    assert kind is context.DeadlineExceeded and is_timeout and 0.02 <= dt < 2


@pytest.mark.timeout(10)
def test_deadline_in_the_past_is_expired_at_once(rt):
    async def main():
        ctx, cancel = context.with_deadline(context.background(), time.monotonic() - 1)
        return type(ctx.err())
    assert rt.run(main) is context.DeadlineExceeded


@pytest.mark.timeout(10)
def test_child_deadline_never_exceeds_parent(rt):
    async def main():
        parent, c1 = context.with_timeout(context.background(), 0.05)
        child, c2 = context.with_timeout(parent, 100)
        pd, _ = parent.deadline()
        cd, ok = child.deadline()
        await child.done().recv()
        c1(); c2()
        return ok, cd <= pd + 1e-9, type(child.err())
    assert rt.run(main) == (True, True, context.DeadlineExceeded)


@pytest.mark.timeout(10)
def test_values(rt):
    a = context.with_value(context.background(), "user", "ann")
    b = context.with_value(a, "req", 7)
    assert (b.value("user"), b.value("req"), b.value("nope")) == ("ann", 7, None)
    c = context.with_value(b, "user", "bob")     # shadows the ancestor's value
    assert c.value("user") == "bob" and b.value("user") == "ann"


@pytest.mark.timeout(10)
def test_worker_stops_on_cancel(rt):
    """The Go idiom: a worker selects on ctx.done() and its work."""
    async def main():
        ctx, cancel = context.with_cancel(context.background())
        ticks = Chan(100)
        stopped = Chan(1)

        async def worker():
            n = 0
            while True:
                i, _ = await select(ctx.done().recv, default)
                if i == 0:
                    await stopped.send(n)
                    return
                n += 1
                await sleep(0.001)
        go(worker)
        await sleep(0.03)
        cancel()
        return await stopped.recv()
    assert rt.run(main) > 0


@pytest.mark.timeout(20)
def test_no_timer_leak_after_cancel(rt):
    async def main():
        for _ in range(2000):
            ctx, cancel = context.with_timeout(context.background(), 100)
            cancel()
        return gocore.stats()["timers"]
    assert rt.run(main) == 0


@pytest.mark.timeout(10)
def test_bad_input():
    with pytest.raises(TypeError, match="None parent"):
        context.with_cancel(None)
    with pytest.raises(TypeError, match="None parent"):
        context.with_value(None, "k", 1)
    with pytest.raises(TypeError, match="key is None"):
        context.with_value(context.background(), None, 1)
    with pytest.raises(TypeError, match="key is None"):
        context.background().value(None)
    with pytest.raises(TypeError, match="deadline"):
        context.with_deadline(context.background(), "soon")
    with pytest.raises(TypeError, match="timeout"):
        context.with_timeout(context.background(), None)


@pytest.mark.timeout(10)
def test_nan_timeout_names_the_call_and_registers_nothing():
    """Issue 14 item 16: with_timeout(ctx, nan) raises naming with_timeout
    (it used to surface Timer()'s message), with_deadline likewise, and a
    failed call leaves no child registered with the parent (1,000 failed
    calls used to leave 1,000)."""
    parent, cancel = context.with_cancel(context.background())
    for _ in range(1000):
        with pytest.raises(ValueError, match=r"^context\.with_timeout: timeout is NaN$"):
            context.with_timeout(parent, float("nan"))
        with pytest.raises(ValueError, match=r"^context\.with_deadline: deadline is NaN$"):
            context.with_deadline(parent, float("nan"))
    assert not parent._children
    assert parent.err() is None
    cancel()


@pytest.mark.timeout(10)
def test_failed_timer_start_leaves_nothing_with_the_parent(monkeypatch):
    """If the deadline's timer cannot be started, with_deadline raises and
    its would-be context is detached from the parent, not left behind."""
    def no_timer(d, fn):
        raise MemoryError("no timer")
    monkeypatch.setattr(context, "after_func", no_timer)
    parent, cancel = context.with_cancel(context.background())
    for _ in range(100):
        with pytest.raises(MemoryError, match="no timer"):
            context.with_timeout(parent, 5)
    assert not parent._children
    assert parent.err() is None
    cancel()
