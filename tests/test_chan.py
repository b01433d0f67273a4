"""Channels: Go's rules for send, receive and close on open, closed and nil
channels, unbuffered and buffered; FIFO order; threads <-> goroutines;
blocking_* misuse inside async goroutines; deadlock detection."""
import threading
import time
import typing

import pytest

import gocore
from gocore import Chan, ChanClosedError, DeadlockError, default, go, gosched, nilchan, select

from conftest import settle, wait_until
from gocore._testhooks import wait_blocked

KINDS = {"unbuffered": 0, "buffered": 3}


@pytest.fixture(params=list(KINDS), ids=list(KINDS))
def size(request):
    return KINDS[request.param]


# ---------------------------------------------------------------- the table: open channels

@pytest.mark.timeout(20)
def test_send_recv_open(rt, size):
    """Go: on an open channel a receive gets what was sent; a buffered send
    completes at once while there is room, an unbuffered one only when a
    receiver takes the value; len() counts buffered values, cap is the size."""
    async def main():
        c = Chan(size)
        assert c.cap == size and len(c) == 0
        for i in range(size):
            await c.send(i)                  # room: completes without a receiver
            assert len(c) == i + 1
        assert c.try_send("x") is False      # full (or unbuffered, no receiver)
        if size:
            assert [await c.recv() for _ in range(size)] == list(range(size))
        assert len(c) == 0
        assert c.try_recv() is None          # nothing ready
        got = []

        async def recv():
            got.append(await c.recv())

        go(recv)
        await c.send("v")
        await wait_until(lambda: got)
        assert got == ["v"]

    rt.run(main)


@pytest.mark.timeout(20)
def test_unbuffered_send_waits_for_receiver(rt):
    """Go: an unbuffered send completes only when a receiver has taken the
    value - the sender stays blocked while no one receives."""
    async def main():
        c = Chan()
        done = []

        async def sender():
            await c.send(42)
            done.append(True)

        go(sender)
        await wait_blocked(c, send=1)
        assert done == [], "unbuffered send completed with no receiver"
        assert await c.recv() == 42
        await wait_until(lambda: done)

    rt.run(main)


@pytest.mark.timeout(20)
def test_buffered_send_blocks_when_full(rt):
    """Go: a send on a full buffered channel blocks until a receive makes room."""
    async def main():
        c = Chan(2)
        done = []

        async def sender():
            for i in range(3):
                await c.send(i)
            done.append(True)

        go(sender)
        await wait_until(lambda: len(c) == 2)
        await wait_blocked(c, send=1)
        assert done == [] and len(c) == 2
        assert await c.recv() == 0
        await wait_until(lambda: done)
        assert [await c.recv(), await c.recv()] == [1, 2]

    rt.run(main)


@pytest.mark.timeout(20)
def test_recv_blocks_until_send(rt, size):
    """Go: a receive on an empty open channel blocks until a value is sent."""
    async def main():
        c = Chan(size)
        got = []

        async def receiver():
            got.append(await c.recv_ok())

        go(receiver)
        await wait_blocked(c, recv=1)
        assert got == []
        await c.send("late")
        await wait_until(lambda: got)
        assert got == [("late", True)]

    rt.run(main)


# ---------------------------------------------------------------- the table: closed channels

@pytest.mark.timeout(20)
def test_send_on_closed_raises(rt, size):
    """Go: send on a closed channel panics - ChanClosedError, also from
    try_send, blocking_send and a send case in select."""
    async def main():
        c = Chan(size)
        c.close()
        with pytest.raises(ChanClosedError, match="send on closed channel"):
            await c.send(1)
        with pytest.raises(ChanClosedError, match="send on closed channel"):
            c.try_send(1)
        with pytest.raises(ChanClosedError, match="send on closed channel"):
            await select((c.send, 1))
        with pytest.raises(ChanClosedError, match="send on closed channel"):
            await select((c.send, 1), default)

    rt.run(main)


@pytest.mark.timeout(20)
def test_recv_on_closed_drains_then_zero(rt, size):
    """Go: a receive on a closed channel first drains the buffer, then gets
    the zero value at once: recv() -> None, recv_ok() -> (None, False)."""
    async def main():
        c = Chan(size)
        for i in range(size):
            await c.send(i)
        c.close()
        assert c.closed
        assert len(c) == size
        for i in range(size):
            assert await c.recv_ok() == (i, True)
        assert await c.recv_ok() == (None, False)
        assert await c.recv() is None
        assert c.try_recv() == (None, False)
        assert await select(c.recv_ok) == (0, (None, False))
        assert await select(c.recv) == (0, None)
        assert len(c) == 0

    rt.run(main)


@pytest.mark.timeout(20)
def test_close_closed_raises(rt, size):
    """Go: closing a closed channel panics - ChanClosedError."""
    async def main():
        c = Chan(size)
        c.close()
        with pytest.raises(ChanClosedError, match="close of closed channel"):
            c.close()

    rt.run(main)


@pytest.mark.timeout(20)
def test_close_wakes_all_receivers(rt, size):
    """Go: close wakes every blocked receiver with the zero value, ok=False."""
    n = 20

    async def main():
        c = Chan(size)
        out = Chan(n)

        async def receiver():
            await out.send(await c.recv_ok())

        for _ in range(n):
            go(receiver)
        await wait_blocked(c, recv=n)
        c.close()
        return [await out.recv() for _ in range(n)]

    assert rt.run(main) == [(None, False)] * n


@pytest.mark.timeout(20)
def test_close_makes_blocked_senders_raise(rt, size):
    """Go: closing a channel with blocked senders makes them panic
    (ChanClosedError in each sender; buffered values stay receivable)."""
    n = 5

    async def main():
        c = Chan(size)
        for i in range(size):
            await c.send(i)
        out = Chan(n)

        async def sender():
            try:
                await c.send("blocked")
            except ChanClosedError as e:
                await out.send(str(e))
            else:
                await out.send("sent")

        for _ in range(n):
            go(sender)
        await wait_blocked(c, send=n)
        c.close()
        res = [await out.recv() for _ in range(n)]
        drained = [await c.recv() for _ in range(size)]
        return res, drained

    res, drained = rt.run(main)
    assert res == ["send on closed channel"] * n
    assert drained == list(range(size))


# ---------------------------------------------------------------- the table: nil channel

@pytest.mark.timeout(20)
def test_nil_channel_never_ready(rt):
    """Go: send and receive on a nil channel block forever; in select a
    nil case is never ready; try_* never succeed; close(nil) panics."""
    async def main():
        assert await select(nilchan.recv, default) == (1, None)
        assert await select(nilchan.recv_ok, (nilchan.send, 1), default) == (2, None)
        assert nilchan.try_send(1) is False
        assert nilchan.try_recv() is None
        with pytest.raises(ChanClosedError, match="close of nil channel"):
            nilchan.close()

    rt.run(main)


@pytest.mark.timeout(20)
def test_nil_channel_blocks_goroutines_forever(rt):
    """Go: goroutines blocked on a nil channel never complete while others
    progress; they are closed (finally runs) when main returns."""
    state = {}

    async def sender():
        try:
            state["send"] = "parking"
            await nilchan.send(1)
            state["send"] = "completed"
        finally:
            if state["send"] != "completed":
                state["send"] = "closed"

    async def receiver():
        try:
            state["recv"] = "parking"
            await nilchan.recv()
            state["recv"] = "completed"
        finally:
            if state["recv"] != "completed":
                state["recv"] = "closed"

    async def main():
        go(sender)
        go(receiver)
        await wait_until(lambda: state == {"send": "parking", "recv": "parking"})
        c = Chan()
        out = []

        async def worker():
            for i in range(100):
                await c.send(i)

        go(worker)
        for _ in range(100):
            out.append(await c.recv())
        assert out == list(range(100))      # others progress meanwhile
        await settle()
        assert state == {"send": "parking", "recv": "parking"}

    rt.run(main)
    assert state == {"send": "closed", "recv": "closed"}


# ---------------------------------------------------------------- FIFO

@pytest.mark.timeout(20)
def test_fifo_per_channel(rt, size):
    """Go: values are received in the order they were sent (one sender)."""
    n = 2000

    async def producer(c):
        for i in range(n):
            await c.send(i)
        c.close()

    async def main():
        c = Chan(size)
        go(producer, c)
        return [v async for v in c]

    assert rt.run(main) == list(range(n))


@pytest.mark.timeout(30)
def test_fifo_receivers_served_in_arrival_order(rt):
    """Go: blocked receivers are served in arrival order (recvq is FIFO).
    Each receiver records its arrival just before parking; main starts the
    next one only once the previous has recorded."""
    n = 8

    async def main():
        c = Chan()
        arrived, served = [], Chan(n)

        async def receiver(i):
            arrived.append(i)
            v = await c.recv()
            await served.send((i, v))

        for i in range(n):
            go(receiver, i)
            await wait_until(lambda: len(arrived) == i + 1)
            await wait_blocked(c, recv=i + 1)
        for k in range(n):
            await c.send(k)
        pairs = sorted([await served.recv() for _ in range(n)], key=lambda p: p[1])
        return arrived, pairs

    arrived, pairs = rt.run(main)
    assert [i for i, _ in pairs] == arrived


@pytest.mark.timeout(30)
def test_fifo_senders_served_in_arrival_order(rt, size):
    """Go: blocked senders are served in arrival order (sendq is FIFO),
    after the values already buffered."""
    n = 8

    async def main():
        c = Chan(size)
        for k in range(size):
            await c.send(("buf", k))
        arrived = []

        async def sender(i):
            arrived.append(i)
            await c.send(("snd", i))

        for i in range(n):
            go(sender, i)
            await wait_until(lambda: len(arrived) == i + 1)
            await wait_blocked(c, send=i + 1)
        got = [await c.recv() for _ in range(size + n)]
        return arrived, got

    arrived, got = rt.run(main)
    assert got[:size] == [("buf", k) for k in range(size)]
    assert got[size:] == [("snd", i) for i in arrived]


# ---------------------------------------------------------------- misc API

@pytest.mark.timeout(10)
def test_chan_generic_annotation():
    """DESIGN §1: Chan[int] works as a type annotation."""
    def f(c: Chan[int]) -> Chan[str]:
        return c

    hints = typing.get_type_hints(f)
    assert typing.get_origin(hints["c"]) is Chan
    assert typing.get_args(hints["c"]) == (int,)
    assert isinstance(Chan(), Chan)


@pytest.mark.timeout(20)
def test_try_send_try_recv(rt):
    """try_send -> bool; try_recv -> (value, True), (None, False) when closed
    and drained, None when nothing is ready (Go's select with default)."""
    async def main():
        c = Chan(1)
        assert c.try_recv() is None
        assert c.try_send("a") is True
        assert c.try_send("b") is False
        assert c.try_recv() == ("a", True)
        assert c.try_recv() is None
        c.close()
        assert c.try_recv() == (None, False)

    rt.run(main)


@pytest.mark.timeout(20)
def test_async_for_ranges_until_closed(rt, size):
    """Go's `for v := range ch`: async for ends when the channel is closed
    and drained; None values are delivered, not taken as the end."""
    async def main():
        c = Chan(size)

        async def producer():
            for v in [1, None, 2, None]:
                await c.send(v)
            c.close()

        go(producer)
        return [v async for v in c]

    assert rt.run(main) == [1, None, 2, None]


# ---------------------------------------------------------------- blocking_* inside async goroutines

@pytest.mark.timeout(20)
def test_blocking_calls_in_async_goroutine_raise(rt):
    """DESIGN §1: inside a lightweight goroutine, a blocking_* call that
    would block - and `for v in ch` - raises RuntimeError naming `await`;
    the same calls succeed when they need not block, and blocking_select
    with default is always allowed."""
    async def main():
        c = Chan()
        with pytest.raises(RuntimeError, match="await ch.recv"):
            c.blocking_recv()
        with pytest.raises(RuntimeError, match="await ch.recv"):
            c.blocking_recv_ok()
        with pytest.raises(RuntimeError, match="await ch.send"):
            c.blocking_send(1)
        with pytest.raises(RuntimeError, match="await"):
            for _ in c:
                pass
        with pytest.raises(RuntimeError, match="await select"):
            gocore.blocking_select(c.recv)
        with pytest.raises(RuntimeError, match="await"):
            nilchan.blocking_recv()
        assert gocore.blocking_select(c.recv, default) == (1, None)
        b = Chan(1)
        b.blocking_send(5)                     # room: does not block
        assert b.blocking_recv() == 5          # ready: does not block
        b.blocking_send(6)
        assert gocore.blocking_select(b.recv_ok) == (0, (6, True))
        b.close()
        assert b.blocking_recv_ok() == (None, False)
        assert list(b) == []                   # closed: the loop never blocks

    rt.run(main)


# ---------------------------------------------------------------- threads <-> goroutines

@pytest.mark.timeout(30)
def test_thread_to_goroutine_and_back(rt):
    """DESIGN §1: plain threads use blocking_send and `for v in ch` and
    interoperate with async goroutines both ways inside run(): a thread
    feeds main, main feeds another thread."""
    n = 200

    def feeder(to_g):
        for i in range(n):
            to_g.blocking_send(i)
        to_g.close()

    def collector(from_g, results):
        results.extend(v for v in from_g)      # `for v in ch` until closed

    async def main():
        to_g, from_g, results = Chan(), Chan(4), []
        ts = [threading.Thread(target=feeder, args=(to_g,)),
              threading.Thread(target=collector, args=(from_g, results))]
        for t in ts:
            t.start()
        async for v in to_g:
            await from_g.send(v * 10)
        from_g.close()
        await wait_until(lambda: not any(t.is_alive() for t in ts))
        return results

    assert rt.run(main) == [i * 10 for i in range(n)]


@pytest.mark.timeout(30)
def test_thread_recv_ok_and_blocking_select_send(rt):
    """A plain thread receives with blocking_recv_ok and sends through a
    blocking_select send case; a goroutine is on the other end."""
    async def main():
        a, b = Chan(), Chan()
        out = []

        def th():
            out.append(a.blocking_recv_ok())
            out.append(gocore.blocking_select((b.send, "via select"), nilchan.recv))
            out.append(a.blocking_recv_ok())

        t = threading.Thread(target=th)
        t.start()
        await a.send("x")
        assert await b.recv() == "via select"
        a.close()
        await wait_until(lambda: not t.is_alive())
        return out

    assert rt.run(main) == [("x", True), (0, None), (None, False)]


@pytest.mark.timeout(30)
def test_threads_select_with_goroutines(rt):
    """blocking_select from several plain threads against async goroutines:
    every value is delivered exactly once."""
    n_threads, per = 4, 100

    def thread_main(a, b, out):
        got = []
        while len(got) < per:
            i, v = gocore.blocking_select(a.recv, b.recv)
            got.append(v)
        out.blocking_send(got)

    async def feeder(c, base):
        for i in range(n_threads * per // 2):
            await c.send(base + i)

    async def main():
        a, b, out = Chan(), Chan(3), Chan()
        ts = [threading.Thread(target=thread_main, args=(a, b, out)) for _ in range(n_threads)]
        for t in ts:
            t.start()
        go(feeder, a, 0)
        go(feeder, b, 100_000)
        res = []
        for _ in range(n_threads):
            res.extend(await out.recv())
        for t in ts:
            while t.is_alive():
                await gosched()
        return res

    res = rt.run(main)
    half = n_threads * per // 2
    assert sorted(res) == list(range(half)) + [100_000 + i for i in range(half)]


@pytest.mark.timeout(30)
def test_thread_pure_thread_pair_inside_run(rt):
    """Two plain threads exchanging over an unbuffered Chan while run() is
    active: the unbuffered hand-off works between plain threads too."""
    async def main():
        c = Chan()
        got = []
        t1 = threading.Thread(target=lambda: [c.blocking_send(i) for i in range(100)] and c.close())
        t2 = threading.Thread(target=lambda: got.extend(c))
        t1.start()
        t2.start()
        while t1.is_alive() or t2.is_alive():
            await gosched()
        return got

    assert rt.run(main) == list(range(100))


# ---------------------------------------------------------------- deadlock detection

@pytest.mark.timeout(20)
def test_deadlock_main_alone(rt):
    """Go: `fatal error: all goroutines are asleep - deadlock!`. gocore
    raises DeadlockError at main's waiting await inside run(); main may
    catch it and go on."""
    async def main():
        try:
            await Chan().recv()
        except DeadlockError as e:
            return str(e)

    assert rt.run(main) == "all goroutines are asleep - deadlock!"


@pytest.mark.timeout(20)
def test_deadlock_uncaught_leaves_run(rt):
    """An uncaught DeadlockError leaves run() like any exception of main."""
    async def main():
        await select(Chan().recv, nilchan.recv)

    with pytest.raises(DeadlockError, match="all goroutines are asleep - deadlock!"):
        rt.run(main)


@pytest.mark.timeout(20)
def test_deadlock_cycle_of_goroutines(rt):
    """Go: goroutines waiting on each other in a cycle, with main waiting
    for them, is a deadlock; their finally blocks run once main is done."""
    finals = []

    async def link(a, b):
        try:
            await a.recv()
            await b.send(1)
        finally:
            finals.append(1)

    async def main():
        cs = [Chan() for _ in range(4)]
        for i in range(4):
            go(link, cs[i], cs[(i + 1) % 4])
        with pytest.raises(DeadlockError, match="deadlock"):
            await Chan().recv()
        return "caught"

    assert rt.run(main) == "caught"
    assert finals == [1] * 4


@pytest.mark.timeout(20)
def test_no_deadlock_while_goroutine_in_foreign_call(rt):
    """DESIGN §1: no false positive while a goroutine is inside a call
    outside the runtime (time.sleep in a sync goroutine), then sends."""
    def slow(c):
        time.sleep(0.3)
        c.blocking_send("late")

    async def main():
        c = Chan()
        go(slow, c)
        return await c.recv()

    assert rt.run(main) == "late"


@pytest.mark.timeout(20)
def test_no_deadlock_while_plain_thread_may_send(rt):
    """No false positive while a plain thread (invisible to the scheduler)
    is about to send."""
    async def main():
        c = Chan()

        def later():
            time.sleep(0.3)
            c.blocking_send("from thread")

        t = threading.Thread(target=later)
        t.start()
        v = await c.recv()
        t.join()
        return v

    assert rt.run(main) == "from thread"


@pytest.mark.timeout(20)
def test_no_deadlock_while_goroutines_runnable(rt):
    """No false positive while goroutines are runnable: main waits on a
    value produced after many yields by another goroutine."""
    async def slowpoke(c):
        for _ in range(2000):
            await gosched()
        await c.send("done")

    async def main():
        c = Chan()
        go(slowpoke, c)
        return await c.recv()

    assert rt.run(main) == "done"


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(gocore, "sleep"), reason="gocore.sleep not implemented yet")
def test_no_deadlock_while_timer_pending(rt):
    """DESIGN §1: a pending timer is progress - no DeadlockError while a
    goroutine sleeps before sending."""
    async def sleeper(c):
        await gocore.sleep(0.2)
        await c.send("woke")

    async def main():
        c = Chan()
        go(sleeper, c)
        return await c.recv()

    assert rt.run(main) == "woke"
