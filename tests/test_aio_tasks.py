"""gocore.aio, direction 2: asyncio tasks await gocore's channels, select
and sync primitives without blocking their loop (DESIGN.md §6;
docs/asyncio.md; the mechanism: gocore/_aiowait.pxi)."""
import asyncio
import random
import threading
import time

import pytest

import gocore
from gocore import (Chan, ChanClosedError, Mutex, Semaphore, WaitGroup, default, go, nilchan,
                    select)
from gocore import aio

try:
    import uvloop
except ImportError:          # pragma: no cover - optional
    uvloop = None


@pytest.fixture(autouse=True)
def aio_stopped():
    yield
    aio._runtime_stopped()


def in_thread(fn, *args):
    """Run fn(*args) in a plain thread; return (thread, result box)."""
    box = {}

    def body():
        try:
            box["r"] = fn(*args)
        except BaseException as e:      # pragma: no cover - reported by the test
            box["e"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, box


# ---------------------------------------------------------------- one loop, no runtime

@pytest.mark.timeout(30)
def test_two_tasks_rendezvous_buffer_close_no_runtime():
    """A pure asyncio program: channels between tasks of one loop, no
    gocore runtime started (no goroutine ever exists)."""
    async def main():
        ch = Chan()
        got = []

        async def producer():
            for i in range(100):
                await ch.send(i)
            ch.close()

        async def consumer():
            async for v in ch:
                got.append(v)

        await asyncio.gather(producer(), consumer())
        assert got == list(range(100))
        # recv / recv_ok on the closed channel; send raises
        assert await ch.recv() is None
        assert await ch.recv_ok() == (None, False)
        with pytest.raises(ChanClosedError):
            await ch.send(1)
        # buffered: sends complete at once until full, then wait
        b = Chan(2)
        await b.send(1)
        await b.send(2)
        t = asyncio.ensure_future(b.send(3))
        await asyncio.sleep(0.01)
        assert not t.done() and len(b) == 2
        assert await b.recv() == 1
        await t
        assert [await b.recv(), await b.recv()] == [2, 3]
        # close wakes a waiting receiver
        c = Chan()
        r = asyncio.ensure_future(c.recv_ok())
        await asyncio.sleep(0.01)
        c.close()
        assert await r == (None, False)
        return True

    assert asyncio.run(main())
    assert gocore.num_goroutine() == 1


@pytest.mark.timeout(30)
def test_select_between_tasks_and_nil_channel_blocks_until_cancelled():
    async def main():
        a, b, out = Chan(), Chan(), Chan()

        async def sel():
            res = []
            for _ in range(4):
                res.append(await select(a.recv, b.recv_ok, (out.send, "x")))
            return res

        t = asyncio.ensure_future(sel())
        await a.send(1)
        await b.send(2)
        assert await out.recv() == "x"
        await a.send(3)
        assert sorted(await t, key=repr) == sorted([(0, 1), (1, (2, True)), (2, None), (0, 3)], key=repr)
        # default
        assert await select(a.recv, default) == (1, None)
        # nil channel: blocks until cancelled
        n = asyncio.ensure_future(nilchan.recv())
        s = asyncio.ensure_future(select(nilchan.recv))
        await asyncio.sleep(0.02)
        assert not n.done() and not s.done()
        n.cancel()
        s.cancel()
        for f in (n, s):
            with pytest.raises(asyncio.CancelledError):
                await f
        return True

    assert asyncio.run(main())


@pytest.mark.timeout(30)
def test_the_loop_keeps_running_while_a_task_waits():
    """The wait does not block the loop: another task ticks meanwhile."""
    async def main():
        ch = Chan()
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        tk = asyncio.ensure_future(ticker())
        r = asyncio.ensure_future(ch.recv())
        await asyncio.sleep(0.1)
        assert not r.done()
        assert ticks > 10
        await ch.send(5)
        assert await r == 5
        tk.cancel()
        return True

    assert asyncio.run(main())


# ---------------------------------------------------------------- across threads and goroutines

@pytest.mark.timeout(60)
def test_task_and_goroutines_exchange_both_ways():
    """Goroutines (a background runtime, started from the loop's thread)
    and an asyncio task exchange values on unbuffered channels, both
    directions, with a loop that goes on running."""
    async def main():
        to_task, to_g, done = Chan(), Chan(), Chan(1)

        async def gor():
            total = 0
            for i in range(1000):
                await to_task.send(i)
                total += await to_g.recv()
            await done.send(total)

        go(gor)
        s = 0
        for i in range(1000):
            v = await to_task.recv()
            s += v
            await to_g.send(v * 2)
        return s, await done.recv()

    s, total = asyncio.run(main())
    assert s == sum(range(1000)) and total == 2 * s


@pytest.mark.timeout(60)
def test_loop_in_another_thread_woken_by_plain_thread_and_goroutine():
    ch = Chan()

    async def consumer():
        return [await ch.recv() for _ in range(200)]

    t, box = in_thread(asyncio.run, consumer())

    def sender():
        for i in range(100):
            ch.blocking_send(i)

    s = threading.Thread(target=sender)
    s.start()
    s.join(30)

    async def gsend():
        for i in range(100, 200):
            await ch.send(i)

    gocore.run(gsend)
    t.join(30)
    assert box.get("r") == list(range(200)), box


@pytest.mark.timeout(60)
def test_two_loops_in_two_threads():
    """Tasks of two different loops (two threads) talk over channels."""
    ping, pong = Chan(), Chan()

    async def a():
        for i in range(500):
            await ping.send(i)
            assert await pong.recv() == i + 1
        return "a"

    async def b():
        for _ in range(500):
            await pong.send(await ping.recv() + 1)
        return "b"

    ta, ra = in_thread(asyncio.run, a())
    tb, rb = in_thread(asyncio.run, b())
    ta.join(30)
    tb.join(30)
    assert ra.get("r") == "a" and rb.get("r") == "b", (ra, rb)


@pytest.mark.timeout(60)
def test_task_and_goroutine_select_on_the_same_channels():
    """An asyncio task and a goroutine both select on the same two
    channels; two senders' values are each received exactly once."""
    N = 2000
    a, b = Chan(), Chan()
    got_task = []
    got_g = []

    ready = Chan()

    async def task_side():
        await ready.send(None)
        while True:
            i, v = await select(a.recv_ok, b.recv_ok)
            if not v[1]:
                return
            got_task.append(v[0])

    t, box = in_thread(asyncio.run, task_side())

    async def main():
        stop = Chan()

        async def g_side():
            while True:
                i, v = await select(a.recv_ok, b.recv_ok)
                if not v[1]:
                    break
                got_g.append(v[0])
            await stop.send(None)

        async def sender(ch, base):
            for i in range(N):
                await ch.send(base + i)
                if i % 100 == 99:
                    await gocore.sleep(0.002)   # let the task's thread have the GIL now and then

        go(g_side)
        await ready.recv()              # the task is running its loop
        wg = WaitGroup()
        wg.go(sender, a, 0)
        wg.go(sender, b, N)
        await wg.wait()
        a.close()
        b.close()
        await stop.recv()

    gocore.run(main)
    t.join(30)
    assert "e" not in box, box
    assert sorted(got_task + got_g) == list(range(2 * N))
    assert got_task and got_g       # both sides took part


# ---------------------------------------------------------------- cancellation: nothing lost

@pytest.mark.timeout(300)
def test_timeout_around_recv_loses_nothing_10000_races():
    """asyncio.timeout around `await ch.recv()`, racing a sender on another
    thread: every value sent is received exactly once, in order - a
    receive that timed out consumed nothing; one whose value arrived just
    as the timeout fired returns it (the cancellation is absorbed)."""
    N = 10000
    ch = Chan()
    sent_done = threading.Event()

    def sender():
        rnd = random.Random(4)
        for i in range(N):
            if rnd.random() < 0.2:
                time.sleep(rnd.choice((0, 1e-5, 1e-4)))     # jitter: the receiver often waits
            ch.blocking_send(i)
        sent_done.set()

    async def receiver():
        got = []
        timeouts = absorbed = 0
        rnd = random.Random(1)
        while len(got) < N:
            try:
                async with asyncio.timeout(rnd.choice((0, 0, 1e-5, 5e-5, 2e-4))) as cm:
                    got.append(await ch.recv())
                absorbed += cm.expired()     # the value came as the timeout fired: kept
            except TimeoutError:
                timeouts += 1
        return got, timeouts, absorbed

    s = threading.Thread(target=sender, daemon=True)
    s.start()
    got, timeouts, absorbed = asyncio.run(receiver())
    s.join(30)
    assert sent_done.is_set()
    assert got == list(range(N))
    assert timeouts > 20            # the races really happened...
    assert absorbed > 0             # ...both ways: some cancels lost to a completed exchange
    assert ch.try_recv() is None     # no value left behind, no stray waiter


@pytest.mark.timeout(300)
def test_timeout_around_send_delivers_only_what_returned():
    """The send side: a send that timed out delivered nothing; one that
    returned delivered exactly its value."""
    N = 5000
    ch = Chan()
    received = []
    stop = object()

    def receiver():
        while True:
            v = ch.blocking_recv()
            if v is stop:
                return
            received.append(v)

    r = threading.Thread(target=receiver, daemon=True)
    r.start()

    async def sender():
        delivered = []
        rnd = random.Random(2)
        i = 0
        while len(delivered) < N:
            try:
                async with asyncio.timeout(rnd.choice((0, 1e-5, 5e-5, 2e-4))):
                    await ch.send(i)
                delivered.append(i)
            except TimeoutError:
                pass
            i += 1
        await ch.send(stop)
        return delivered, i

    delivered, attempts = asyncio.run(sender())
    r.join(30)
    assert received == delivered
    assert attempts > N


@pytest.mark.timeout(120)
def test_cancel_select_loses_nothing_goroutine_senders():
    """task.cancel() racing goroutines that send into a select: every value
    a goroutine's send completed is received by the task exactly once."""
    N = 3000

    async def main_task(a, b, results):
        rnd = random.Random(3)
        while True:
            t = asyncio.ensure_future(select(a.recv_ok, b.recv_ok))
            await asyncio.sleep(rnd.choice((0, 0, 1e-5)))
            t.cancel()
            try:
                i, (v, ok) = await t
            except asyncio.CancelledError:
                continue
            if not ok:
                return
            results.append(v)

    a, b = Chan(), Chan()
    results = []
    th, box = in_thread(asyncio.run, main_task(a, b, results))

    async def main():
        async def sender(ch, base):
            for i in range(N):
                await ch.send(base + i)

        wg = WaitGroup()
        wg.go(sender, a, 0)
        wg.go(sender, b, N)
        await wg.wait()
        a.close()

    gocore.run(main)
    th.join(60)
    assert "e" not in box, box
    assert sorted(results) == list(range(2 * N))


@pytest.mark.timeout(30)
def test_cancelled_waiter_is_withdrawn():
    """A cancelled receive leaves no waiter behind: the next value goes to
    the next receiver, not to the cancelled one."""
    async def main():
        ch = Chan()
        t = asyncio.ensure_future(ch.recv())
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert ch.try_send(1) is False   # nobody waits: the send would block
        r = asyncio.ensure_future(ch.recv())
        await asyncio.sleep(0.01)
        assert ch.try_send(2) is True
        assert await r == 2
        return True

    assert asyncio.run(main())


# ---------------------------------------------------------------- sync primitives

@pytest.mark.timeout(60)
def test_waitgroup_mutex_semaphore_from_tasks_and_goroutines():
    async def main():
        wg = WaitGroup()
        mu = Mutex()
        sem = Semaphore(2)
        inside = 0
        peak = 0
        counter = 0

        async def g_worker():
            nonlocal counter
            for _ in range(200):
                async with mu:
                    counter += 1
            wg.done()

        wg.add(4)
        for _ in range(2):
            go(g_worker)

        async def t_worker():
            nonlocal counter, inside, peak
            for _ in range(200):
                async with mu:
                    c = counter
                    await asyncio.sleep(0)
                    counter = c + 1
                await sem.acquire()
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0)
                inside -= 1
                sem.release()
            wg.done()

        await asyncio.gather(t_worker(), t_worker())
        await wg.wait()
        return counter, peak

    counter, peak = asyncio.run(main())
    assert counter == 800
    assert peak <= 2


@pytest.mark.timeout(30)
def test_cancel_while_waiting_for_mutex_and_semaphore():
    """A cancelled lock/acquire leaves no waiter, and a lock or permits
    handed over just as the cancel came are given back."""
    async def main():
        mu = Mutex()
        await mu.lock()
        t = asyncio.ensure_future(mu.lock())
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        mu.unlock()
        assert mu.try_lock()             # nobody took it
        mu.unlock()

        sem = Semaphore(1)
        await sem.acquire()
        t = asyncio.ensure_future(sem.acquire())
        await asyncio.sleep(0.01)
        sem.release()                    # hands the permit to t...
        t.cancel()                       # ...which is cancelled before it runs: given back
        with pytest.raises(asyncio.CancelledError):
            await t
        assert sem.held == 0
        # a waitgroup wait that is cancelled
        wg = WaitGroup()
        wg.add(1)
        t = asyncio.ensure_future(wg.wait())
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        wg.done()
        await wg.wait()
        return True

    assert asyncio.run(main())


# ---------------------------------------------------------------- deadlock detection, uvloop

@pytest.mark.timeout(60)
def test_asyncio_thread_is_progress_for_deadlock_detection():
    """run()'s main waits on a channel that an asyncio task on a plain
    thread fills after a while: not a deadlock (the loop thread is a plain
    thread that can make progress)."""
    ch = Chan()
    gate = Chan()

    async def task():
        await gate.recv()                 # parked in asyncio: not a blocked goroutine
        await asyncio.sleep(0.2)
        await ch.send("late")

    t, box = in_thread(asyncio.run, task())

    async def main():
        await gate.send(None)
        return await ch.recv()

    assert gocore.run(main) == "late"
    t.join(10)


@pytest.mark.timeout(60)
@pytest.mark.skipif(uvloop is None, reason="uvloop not installed")
def test_uvloop_tasks_and_goroutines():
    async def main():
        ch = Chan()

        async def g():
            for i in range(300):
                await ch.send(i)
            ch.close()

        go(g)
        got = [v async for v in ch]
        t = asyncio.ensure_future(ch.recv_ok())
        assert await t == (None, False)
        return got

    assert uvloop.run(main()) == list(range(300))


@pytest.mark.timeout(30)
def test_closed_coroutine_withdraws_its_waiter():
    """A coroutine closed while it waits (its task dropped, the loop
    shutting down) unlinks its waiter: the channel has no receiver left,
    and a value handed to it just before is not stuck anywhere."""
    async def main():
        ch = Chan()

        async def f():
            return await ch.recv()

        c = f()
        fut = c.send(None)               # parks: yields the task's future
        assert isinstance(fut, asyncio.Future)
        c.close()
        assert ch.try_send(1) is False   # no receiver left
        # select and a sync primitive alike
        mu = Mutex()
        await mu.lock()

        async def g():
            async with mu:
                pass

        c = g()
        c.send(None)
        c.close()
        mu.unlock()
        assert mu.try_lock()
        mu.unlock()

        async def h():
            return await select(ch.recv, ch.recv_ok)

        c = h()
        c.send(None)
        c.close()
        assert ch.try_send(2) is False
        return True

    assert asyncio.run(main())


@pytest.mark.timeout(30)
def test_rwmutex_once_and_wait_for_in_tasks():
    from gocore import RWMutex

    async def main():
        rw = RWMutex()
        await rw.lock()
        order = []

        async def reader(i):
            async with rw.rlocker():
                order.append(i)

        ts = [asyncio.ensure_future(reader(i)) for i in range(3)]
        await asyncio.sleep(0.01)
        assert order == []
        rw.unlock()
        await asyncio.gather(*ts)
        assert sorted(order) == [0, 1, 2]
        from gocore import Once
        once, calls = Once(), []

        async def init():
            calls.append(1)
            await asyncio.sleep(0.02)     # the other callers wait meanwhile

        await asyncio.gather(*(once.do(init) for _ in range(5)))
        assert calls == [1] and once.done
        ch = Chan()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ch.recv(), 0.01)
        assert ch.try_send(1) is False   # the timed-out receive left nothing behind
        return True

    assert asyncio.run(main())


@pytest.mark.timeout(30)
def test_aio_call_coroutine_waits_on_a_channel_fed_by_a_goroutine():
    """Both directions at once on gocore's own loop: a goroutine's aio.call
    runs a coroutine that awaits a Chan; main feeds it; no deadlock is
    reported while the call is pending."""
    async def waiter(ch):
        v = await ch.recv()              # an asyncio task on gocore's loop thread
        await asyncio.sleep(0.01)
        return v * 10

    async def main():
        ch, out = Chan(), Chan()

        async def g():
            await out.send(await aio.call(waiter, ch))

        go(g)
        await gocore.sleep(0.05)
        await ch.send(4)
        return await out.recv()

    assert gocore.run(main) == 40
