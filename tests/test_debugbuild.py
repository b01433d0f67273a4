"""The debug build's checks, and the bugs they found.

Under a debug build (GOCORE_DEBUG=1, see docs/testing.md) every run()
checks on its way out that the runtime's balance counters are back where
they belong; these tests exercise every counted path and check the
counters directly. The regression tests at the bottom run on every build.
"""
import gc
import resource
import threading
import time
import weakref

import pytest

import gocore
from gocore import (Chan, Mutex, Semaphore, Ticker, Timer, WaitGroup, _sched, after,
                    blocking_select, go, gosched, select, sleep)

from conftest import run_prog

debug_only = pytest.mark.skipif(not _sched.DEBUG, reason="needs a GOCORE_DEBUG=1 build")


def test_build_flavour_is_reported():
    """DEBUG says which build is installed; the debug build has the 4-slot
    local run queue and the counters, the release build neither."""
    counters = _sched._debug_counters()
    if _sched.DEBUG:
        assert _sched._sched_counters()["runq_cap"] == 4
        assert {"g_objects", "chan_waiters", "sync_waiters", "timer_refs"} <= counters.keys()
    else:
        assert _sched._sched_counters()["runq_cap"] == 256
        assert counters == {}


@debug_only
@pytest.mark.timeout(60)
def test_counters_balance_after_a_busy_run(rt):
    """Goroutines parked on channels, selects, sync primitives and timers,
    plain threads in blocking calls, goroutines left parked when main
    returns: afterwards no G object, waiter or timer reference is left."""
    async def parked_forever(c, m):
        await select(c.recv, m.recv)

    async def worker(jobs, out, mu, wg, sem):
        async for j in jobs:
            async with mu:
                pass
            await sem.acquire()
            sem.release()
            await out.send(j)
        wg.done()

    async def main():
        jobs, out = Chan(), Chan(3)
        mu, wg, sem = Mutex(), WaitGroup(), Semaphore(2)
        for _ in range(8):                    # more than the 4-slot ring: overflow and steals
            wg.add(1)
            go(worker, jobs, out, mu, wg, sem)
        th = threading.Thread(target=lambda: [jobs.blocking_send(i) for i in range(50)],
                              daemon=True)        # should the test fail, exit does not wait for it
        th.start()
        total = 0
        for _ in range(50):
            i, v = await select(out.recv, after(60).recv)   # a guard, not a timing test
            assert i == 0
            total += v
        th.join()
        jobs.close()
        await wg.wait()
        Ticker(0.001)                         # a forgotten ticker is dropped with the run
        t = Timer(10)
        t.stop()
        await sleep(0.002)
        for _ in range(20):                   # left parked: closed by the teardown
            go(parked_forever, Chan(), Chan())
        return total

    assert rt.run(main) == sum(range(50))
    c = _sched._debug_counters()
    assert (c["g_objects"], c["chan_waiters"], c["sync_waiters"], c["timer_refs"]) == (0, 0, 0, 0), c


@debug_only
@pytest.mark.timeout(60)
def test_leak_is_reported_naming_the_counter():
    """A G reference kept past run() makes run() raise DebugCheckError, and
    the interpreter-exit check abort with the counter's name."""
    r = run_prog("debug_leak.py", timeout=30)
    assert r.stdout.startswith("DebugCheckError: debug check at the end of run(): g_objects = 1"), r.stdout
    assert r.returncode != 0
    assert "gocore: fatal error: debug check at interpreter exit: g_objects = 1" in r.stderr, r.stderr


# ---------------------------------------------------------------- regressions (every build)

@pytest.mark.timeout(30)
def test_select_readied_but_not_resumed_when_main_returns(rt):
    """A select goroutine readied by a send that main returns before it
    runs: the teardown closes it, and its other case's waiter must leave
    that channel's queue (it pointed into a cached select object: a later
    send on the channel was delivered to an unrelated select)."""
    a, b = Chan(), Chan()

    async def sel():
        await select(a.recv, b.recv)

    async def main():
        go(sel)
        for _ in range(20):
            await gosched()
        await a.send(1)            # readies sel; main returns at once

    rt.run(main)

    c1, c2, got, sent_on_b = Chan(), Chan(), [], []

    async def waiter():
        got.append(await select(c1.recv, c2.recv))

    async def main2():
        go(waiter)
        for _ in range(20):
            await gosched()
        sent_on_b.append(b.try_send("on b"))      # nobody waits on b
        if not got:
            await c1.send("on c1")
        for _ in range(20):
            await gosched()

    rt.run(main2)
    assert sent_on_b == [False], "a send on b was taken by a waiter left there by the first run"
    assert got == [(0, "on c1")]


@pytest.mark.timeout(30)
def test_value_handed_to_a_goroutine_that_never_resumes_is_freed(rt):
    """A receiver readied with a value but closed before it resumes: the
    value is released with it (it used to stay referenced by the cached
    channel operation)."""
    class Value:
        pass

    v = Value()
    ref = weakref.ref(v)

    async def receiver(c):
        await c.recv()

    async def main():
        c = Chan()
        go(receiver, c)
        for _ in range(20):
            await gosched()
        await c.send(v)            # readies the receiver; main returns at once

    rt.run(main)
    del v
    for _ in range(8):             # cycle the op cache too
        rt.run(lambda: None)
    gc.collect()
    assert ref() is None


@pytest.mark.timeout(30)
def test_blocking_select_deadlock_keeps_no_goroutine(rt):
    """DeadlockError out of a select retried after a deadlock wake-up: the
    select object (cached for reuse) must not keep the goroutine alive."""
    def main():
        with pytest.raises(gocore.DeadlockError):
            blocking_select(Chan().recv, gocore.nilchan.recv)
        return 1

    assert rt.run(main) == 1
    if _sched.DEBUG:
        assert _sched._debug_counters()["g_objects"] == 0


@pytest.mark.timeout(30)
def test_idle_runtime_sleeps_after_deadlock_detection_backed_off():
    """Deadlock detection backs off while a plain thread runs (it might
    still send); the back-off deadline used to stay set once past, and an
    idle M then took it as its wake-up time over and over: a spinning M for
    the rest of the process. Found when the valgrind leg crawled."""
    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    c = Chan()

    def feeder():
        time.sleep(0.3)                  # runs outside gocore for a while
        c.blocking_send(1)

    async def main():
        threading.Thread(target=feeder, daemon=True).start()
        return await c.recv()            # nothing else runs: checkdead backs off

    async def idle():
        c0 = cpu()
        await sleep(1.0)
        return cpu() - c0

    gocore.gomaxprocs(2)
    assert gocore.run(main) == 1
    spent = gocore.run(idle)
    assert spent < 0.3, f"{spent:.2f} s of CPU while every goroutine slept for 1 s"
