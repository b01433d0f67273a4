"""gocore.testing.synctest: the fake-clock bubble (Go 1.25's testing/synctest).

Inside a bubble the timers' clock starts at EPOCH (2000-01-01T00:00:00Z as
Unix seconds) and moves only when every goroutine of the run is durably
blocked, straight to the earliest timer. Each test runs at gomaxprocs 1
and 2 (the `procs` fixture); times are compared exactly: the fake clock has
no jitter, so "3600 s" means 3600.0, not "about".
"""
import subprocess
import sys
import threading
import time

import pytest

import gocore
from gocore import Chan, DeadlockError, Ticker, after, context, go, select, sleep
from gocore._testhooks import wait_parked
from gocore.testing import now, synctest, wait, wait_blocking

EPOCH = 946684800.0


@pytest.fixture(params=[1, 2], ids=["procs1", "procs2"])
def procs(request):
    gocore.gomaxprocs(request.param)     # conftest's autouse fixture restores it
    return request.param


@pytest.mark.timeout(10)
def test_one_hour_sleep_returns_at_once(procs):
    async def main():
        t0 = now()
        await sleep(3600)
        return t0, now()
    w0 = time.monotonic()
    t0, t1 = synctest(main)
    assert t0 == EPOCH
    assert t1 - t0 == 3600.0
    assert time.monotonic() - w0 < 5.0


@pytest.mark.timeout(10)
def test_context_timeout_expires_in_fake_time(procs):
    async def main():
        t0 = now()
        ctx, cancel = context.with_timeout(context.background(), 3600)
        assert ctx.deadline() == (t0 + 3600, True)
        assert ctx.err() is None
        await ctx.done().recv()
        cancel()
        return now() - t0, ctx.err()
    dt, err = synctest(main)
    assert dt == 3600.0
    assert isinstance(err, context.DeadlineExceeded)


@pytest.mark.timeout(20)
def test_select_timeout_beats_slower_sender_every_time(procs):
    """The sender sleeps 10 s, the select times out after 5 s: in fake time
    the timeout wins, every time, however the machine is loaded."""
    async def main():
        wins = []
        for _ in range(100):
            ch = Chan(1)            # buffered: each sender finishes on its own

            async def sender(ch=ch):
                await sleep(10)
                await ch.send("late")
            go(sender)
            t0 = now()
            i, _ = await select(ch.recv, after(5).recv)
            wins.append((i, now() - t0))
        return wins
    wins = synctest(main)
    assert wins == [(1, 5.0)] * 100


@pytest.mark.timeout(10)
def test_ticker_counts_exact_ticks(procs):
    async def main():
        t0 = now()
        tk = Ticker(2)
        values = [await tk.c.recv() for _ in range(25)]
        tk.stop()
        return t0, values, now()
    t0, values, t1 = synctest(main)
    assert values == [t0 + 2 * (i + 1) for i in range(25)]    # what the ticks carry: fake times
    assert t1 - t0 == 50.0


@pytest.mark.timeout(10)
def test_timer_channel_sends_fake_time(procs):
    async def main():
        t0 = now()
        v = await after(90).recv()
        return t0, v
    t0, v = synctest(main)
    assert v == t0 + 90


@pytest.mark.timeout(10)
def test_wait_returns_after_the_others_parked(procs):
    """wait() returns only once every other goroutine is durably blocked:
    their side effects up to their parking point are visible, including
    those of a sync goroutine that first does 50 ms of real work. The clock
    does not move for wait()."""
    async def main():
        done = []
        block = Chan()
        relay = Chan()

        async def worker(i):
            done.append(i)
            await block.recv()

        async def chained():
            v = await relay.recv()
            done.append(v)
            await block.recv()

        async def feeder():
            await relay.send("relayed")
            done.append("fed")

        def slow_sync():
            time.sleep(0.05)               # real work: not durably blocked
            done.append("sync")
            block.blocking_recv()

        for i in range(5):
            go(worker, i)
        go(chained)
        go(feeder)
        go(slow_sync)
        t0 = now()
        await wait()
        seen = sorted(map(str, done))
        block.close()
        return t0, now(), seen
    t0, t1, seen = synctest(main)
    assert seen == sorted(["0", "1", "2", "3", "4", "relayed", "fed", "sync"])
    assert t1 == t0


@pytest.mark.timeout(10)
def test_wait_does_not_move_the_clock_past_sleepers(procs):
    async def main():
        woke = []

        async def sleeper():
            await sleep(10)
            woke.append(now())
        go(sleeper)
        await wait()                      # the sleeper is parked on its timer
        assert woke == []
        t0 = now()
        await sleep(11)
        return t0, woke
    t0, woke = synctest(main)
    assert t0 == EPOCH
    assert woke == [EPOCH + 10]


@pytest.mark.timeout(10)
def test_all_blocked_without_timers_is_a_deadlock(procs):
    async def stuck_forever(ch):
        await ch.recv()

    async def main():
        ch = Chan()
        go(stuck_forever, ch)
        await Chan().recv()
    with pytest.raises(DeadlockError, match="all goroutines are asleep") as ei:
        synctest(main)
    assert "stuck_forever" in ei.value.dump
    assert "main" in ei.value.dump


@pytest.mark.timeout(10)
def test_sync_goroutine_sleeps_in_fake_time(procs):
    async def main():
        out = Chan(1)

        def plain():
            t0 = now()
            v = after(3600).blocking_recv()
            out.blocking_send((t0, v, now()))
        go(plain)
        return await out.recv()
    w0 = time.monotonic()
    t0, v, t1 = synctest(main)
    assert v == t0 + 3600 and t1 == t0 + 3600
    assert time.monotonic() - w0 < 5.0


@pytest.mark.timeout(10)
def test_wait_blocking_from_a_sync_goroutine(procs):
    async def main():
        seen = []
        out = Chan(1)
        block = Chan()

        async def worker():
            seen.append("worker")
            await block.recv()

        def plain():
            go(worker)
            wait_blocking()
            out.blocking_send(list(seen))
        go(plain)
        r = await out.recv()
        block.close()
        return r
    assert synctest(main) == ["worker"]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("work", ["sleep", "busy"])
def test_real_work_holds_the_clock(procs, work):
    """A sync goroutine in time.sleep (a blocking call outside gocore) or a
    busy loop is not durably blocked: while it works, the clock stands
    still, although main's 1 s timer is pending and everyone else sleeps."""
    async def main():
        out = Chan(1)

        def plain():
            t0 = now()
            if work == "sleep":
                time.sleep(0.05)
            else:
                end = time.monotonic() + 0.05
                while time.monotonic() < end:
                    pass
            out.blocking_send((t0, now()))
        go(plain)
        s0 = now()
        await sleep(1)
        return s0, now(), await out.recv()
    s0, s1, (t0, t1) = synctest(main)
    assert t1 == t0, "the clock moved while a goroutine was working"
    assert s1 - s0 == 1.0


@pytest.mark.timeout(10)
def test_busy_async_goroutine_holds_the_clock(procs):
    async def main():
        out = Chan(1)

        async def busy():
            t0 = now()
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                pass
            await out.send((t0, now()))
        go(busy)
        await sleep(1)
        return await out.recv()
    t0, t1 = synctest(main)
    assert t1 == t0


@pytest.mark.timeout(10)
def test_synctest_inside_run_is_refused():
    async def inner():
        return 1

    async def main():
        with pytest.raises(RuntimeError, match="inside gocore.run"):
            synctest(inner)
        return "ok"
    assert gocore.run(main) == "ok"


@pytest.mark.timeout(10)
def test_synctest_from_a_sync_goroutine_is_refused():
    async def inner():
        return 1

    def plain():
        with pytest.raises(RuntimeError, match="inside gocore.run"):
            synctest(inner)
        return "ok"
    assert gocore.run(plain) == "ok"


@pytest.mark.timeout(10)
def test_bad_input():
    with pytest.raises(TypeError, match="async def"):
        synctest(42)
    with pytest.raises(TypeError, match="not async"):
        synctest(lambda: 1)

    async def f(x):
        return x
    coro = f(1)
    with pytest.raises(TypeError, match="no extra arguments"):
        synctest(coro, 2)
    assert synctest(f, 7) == 7
    assert synctest(f(8)) == 8


@pytest.mark.timeout(10)
def test_wait_outside_a_bubble_is_refused():
    async def main():
        with pytest.raises(RuntimeError, match="synctest"):
            await wait()
        return "ok"
    assert gocore.run(main) == "ok"
    with pytest.raises(RuntimeError, match="synctest"):
        wait_blocking()


@pytest.mark.timeout(10)
def test_one_wait_at_a_time(procs):
    async def main():
        errors = []
        done = Chan(2)

        async def waiter():
            try:
                await wait()
            except RuntimeError as e:
                errors.append(str(e))
            await done.send(None)
        go(waiter)
        go(waiter)
        await done.recv()
        await done.recv()
        return errors
    errors = synctest(main)
    assert len(errors) == 1 and "already waiting" in errors[0]


@pytest.mark.timeout(10)
def test_goroutine_left_in_wait_is_closed(procs):
    """A goroutine still inside wait() when main returns is closed with the
    run (its finally runs), and the next bubble's wait() works."""
    log = []

    async def waiter(block):
        try:
            await wait()
            await block.recv()
        finally:
            log.append("closed")

    async def main():
        block = Chan()
        go(waiter, block)
        await sleep(1)           # the waiter's wait() returns first (the sleep is pending)
        go(waiter, block)
        await wait_parked(1, reason="synctest.Wait")    # inside wait() when main returns
        return "done"
    assert synctest(main) == "done"
    assert log == ["closed", "closed"]

    async def again():
        await wait()
        return now()
    assert synctest(again) == EPOCH


BACKGROUND = """
import gocore
from gocore import Chan, go
from gocore.testing import synctest

async def stuck(ch):
    await ch.recv()

async def main():
    return 1

go(stuck, Chan())          # the background runtime, with a goroutine alive
try:
    synctest(main)
except RuntimeError as e:
    print("refused:", e)
"""


@pytest.mark.timeout(60)
def test_background_goroutines_are_refused():
    """A bubble needs a runtime of its own: goroutines of the background
    runtime (started by go() outside run()) cannot join it. A subprocess:
    the background runtime cannot be undone."""
    r = subprocess.run([sys.executable, "-c", BACKGROUND], capture_output=True,
                       text=True, timeout=50)
    assert r.returncode == 0, r.stderr
    assert "refused:" in r.stdout and "background runtime" in r.stdout


@pytest.mark.timeout(10)
def test_exception_propagates_as_from_run(procs):
    class Boom(Exception):
        pass

    async def failing():
        await sleep(100)
        raise Boom("from a goroutine")

    async def main():
        go(failing)
        await sleep(1000)
    with pytest.raises(Boom, match="from a goroutine"):
        synctest(main)


@pytest.mark.timeout(10)
def test_real_clock_after_synctest(procs):
    async def bubble():
        await sleep(3600)
        return now()
    assert synctest(bubble) == EPOCH + 3600

    async def main():
        t0 = now()
        m0 = time.monotonic()
        v = await after(0.02).recv()
        return t0, m0, v, time.monotonic()
    t0, m0, v, m1 = gocore.run(main)
    assert abs(t0 - m0) < 0.5             # now() outside a bubble: time.monotonic()
    assert m0 + 0.02 <= v <= m1            # timer values: the real clock again


@pytest.mark.timeout(10)
def test_plain_thread_does_not_hold_the_clock(procs):
    """Plain threads are outside the bubble: one that is awake (not asleep
    in a threading primitive, so deadlock detection would hold off for it)
    does not stop the clock."""
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            time.sleep(0.001)
    t = threading.Thread(target=spin)
    t.start()
    try:
        async def main():
            await sleep(3600)
            return now()
        assert synctest(main) == EPOCH + 3600
    finally:
        stop.set()
        t.join()


@pytest.mark.timeout(10)
def test_example_one_hour_timeout_in_milliseconds():
    """The documentation's example: a 1-hour timeout, tested in well under
    a second of wall time."""
    async def slow_service(out):
        await sleep(2 * 3600)               # it would answer in two hours
        await out.send("answer")

    async def main():
        out = Chan(1)
        go(slow_service, out)
        ctx, cancel = context.with_timeout(context.background(), 3600)
        try:
            i, v = await select(ctx.done().recv, out.recv)
        finally:
            cancel()
        return i, ctx.err(), now() - EPOCH
    w0 = time.perf_counter()
    i, err, elapsed = synctest(main)
    wall = time.perf_counter() - w0
    assert i == 0 and isinstance(err, context.DeadlineExceeded)
    assert elapsed == 3600.0
    assert wall < 1.0
