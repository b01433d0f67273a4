"""gocore's sync package: WaitGroup, Mutex, RWMutex, Once, Semaphore.

Go's sync tests in spirit (sync/mutex_test.go, rwmutex_test.go,
waitgroup_test.go, once_test.go; golang.org/x/sync/semaphore). Semantics
tests run at gomaxprocs 1 and 2. Differences from Go are stated in the
docstrings: misuse that Go turns into a panic or a fatal error raises a
Python exception here.
"""
import threading
import time

import pytest

import gocore
import gocore._sync as _sync
from gocore import Chan, go, gosched, run
from gocore.atomic import Int64

WaitGroup = getattr(gocore, "WaitGroup", None) or _sync.WaitGroup
Mutex = getattr(gocore, "Mutex", None) or _sync.Mutex
RWMutex = getattr(gocore, "RWMutex", None) or _sync.RWMutex
Once = getattr(gocore, "Once", None) or _sync.Once
Semaphore = getattr(gocore, "Semaphore", None) or _sync.Semaphore

PROCS = [1, 2]


@pytest.fixture(params=PROCS, ids=lambda n: f"procs{n}")
def rt(request):
    """run(main) at the given gomaxprocs."""
    old = gocore.gomaxprocs(request.param)

    def runner(main, *args):
        return run(main, *args)

    yield runner
    gocore.gomaxprocs(old)


def in_thread(wg, fn):
    """A plain thread's body: fn(), then wg.done() (the goroutine side waits)."""
    try:
        fn()
    finally:
        wg.done()


# ---------------------------------------------------------------- Mutex

@pytest.mark.timeout(60)
def test_mutex_mutual_exclusion(rt):
    """Go's TestMutex: 100 goroutines x 1,000 increments with a yield inside
    the critical section; the count is exact."""
    async def main():
        m = Mutex()
        wg = WaitGroup()
        box = [0]
        inside = [0]

        async def worker():
            for i in range(1000):
                await m.lock()
                inside[0] += 1
                assert inside[0] == 1
                v = box[0]
                if i % 50 == 0:
                    await gosched()
                box[0] = v + 1
                inside[0] -= 1
                m.unlock()

        for _ in range(100):
            wg.go(worker)
        await wg.wait()
        return box[0]

    assert rt(main) == 100_000


@pytest.mark.timeout(30)
def test_mutex_async_with_and_try_lock(rt):
    """async with locks and unlocks (also on an exception); try_lock is Go's TryLock."""
    async def main():
        m = Mutex()
        async with m:
            assert m.locked()
            assert not m.try_lock()
        assert not m.locked()
        with pytest.raises(KeyError):
            async with m:
                raise KeyError("x")
        assert m.try_lock()
        m.unlock()
        return "ok"

    assert rt(main) == "ok"


@pytest.mark.timeout(30)
def test_mutex_unlock_by_other_goroutine(rt):
    """Go allows unlocking a Mutex from a goroutine other than the locker."""
    async def main():
        m = Mutex()
        await m.lock()
        done = Chan()

        async def other():
            m.unlock()
            await done.send(True)

        go(other)
        await done.recv()
        await m.lock()      # free again
        m.unlock()
        return True

    assert rt(main)


@pytest.mark.timeout(30)
def test_mutex_unlock_of_unlocked_raises(rt):
    """Go: fatal error "sync: unlock of unlocked mutex"; here RuntimeError."""
    async def main():
        m = Mutex()
        with pytest.raises(RuntimeError, match="sync: unlock of unlocked mutex"):
            m.unlock()
        await m.lock()
        m.unlock()
        with pytest.raises(RuntimeError, match="sync: unlock of unlocked mutex"):
            m.unlock()
        return True

    assert rt(main)


@pytest.mark.timeout(60)
def test_mutex_starvation(rt):
    """Go's TestMutexFairness: a goroutine that wants the lock now and then
    gets it while another holds it almost always (starvation mode)."""
    async def main():
        m = Mutex()
        stop = [False]
        got = Chan(1)

        async def hog():
            while not stop[0]:
                await m.lock()
                t = time.monotonic()
                while time.monotonic() - t < 0.0001:
                    await gosched()
                m.unlock()

        async def polite():
            for _ in range(10):
                await gosched()
                await m.lock()
                m.unlock()
            await got.send(True)

        go(hog)
        go(hog)
        go(polite)
        t0 = time.monotonic()
        await got.recv()
        stop[0] = True
        return time.monotonic() - t0

    assert rt(main) < 10


@pytest.mark.timeout(60)
def test_mutex_fifo_under_starvation(rt):
    """Waiters that have waited past 1 ms get the lock in arrival order."""
    async def main():
        m = Mutex()
        order = []
        wg = WaitGroup()
        await m.lock()

        async def waiter(i):
            await m.lock()
            order.append(i)
            m.unlock()

        for i in range(5):
            wg.go(waiter, i)
            for _ in range(3):
                await gosched()
        t = time.monotonic()
        while time.monotonic() - t < 0.005:
            await gosched()
        m.unlock()
        await wg.wait()
        return order

    assert rt(main) == [0, 1, 2, 3, 4]


@pytest.mark.timeout(60)
def test_mutex_threads_with_and_goroutines(rt):
    """Plain threads use `with m:` (blocking_lock) against goroutines using
    `async with m:`; the shared count stays exact."""
    async def main():
        m = Mutex()
        box = [0]
        wg = WaitGroup()

        def thread_worker():
            for _ in range(300):
                with m:
                    v = box[0]
                    time.sleep(0)
                    box[0] = v + 1

        async def g_worker():
            for _ in range(300):
                async with m:
                    v = box[0]
                    await gosched()
                    box[0] = v + 1

        def thread_main():
            try:
                thread_worker()
            finally:
                wg.done()

        wg.add(4)
        ths = [threading.Thread(target=thread_main) for _ in range(4)]
        for t in ths:
            t.start()
        for _ in range(3):
            wg.go(g_worker)
        await wg.wait()                 # the threads' done() wakes us
        for t in ths:
            t.join()
        return box[0]

    assert rt(main) == 300 * 7


@pytest.mark.timeout(30)
def test_blocking_lock_in_async_goroutine_raises(rt):
    """A blocking_* twin that would block inside a lightweight goroutine
    raises RuntimeError naming the await form; when it would not block it
    just works."""
    async def main():
        m = Mutex()
        m.blocking_lock()           # free: fine
        with pytest.raises(RuntimeError, match=r"use `await m.lock\(\)`"):
            m.blocking_lock()
        with pytest.raises(RuntimeError, match=r"use `await m.lock\(\)`"):
            with m:
                pass
        m.unlock()
        rw = RWMutex()
        await rw.lock()
        with pytest.raises(RuntimeError, match=r"use `await rw.rlock\(\)`"):
            rw.blocking_rlock()
        with pytest.raises(RuntimeError, match=r"use `await rw.lock\(\)`"):
            rw.blocking_lock()
        rw.unlock()
        wg = WaitGroup()
        wg.blocking_wait()          # zero: fine
        wg.add(1)
        with pytest.raises(RuntimeError, match=r"use `await wg.wait\(\)`"):
            wg.blocking_wait()
        wg.done()
        sem = Semaphore(1)
        sem.blocking_acquire()
        with pytest.raises(RuntimeError, match=r"use `await sem.acquire\(k\)`"):
            sem.blocking_acquire()
        sem.release()
        return True

    assert rt(main)


@pytest.mark.timeout(30)
def test_await_outside_goroutine_raises():
    """Awaiting a sync operation that must park outside a gocore goroutine
    raises, naming the blocking_ form."""
    m = Mutex()
    m.blocking_lock()
    coro = m.lock().__await__()
    with pytest.raises(RuntimeError, match=r"plain threads and sync goroutines use m.blocking_lock\(\)"):
        next(coro)
    m.unlock()


# ---------------------------------------------------------------- RWMutex

@pytest.mark.timeout(60)
def test_rwmutex_readers_in_parallel(rt):
    """Go's TestParallelReaders: n readers hold the read lock at once."""
    async def main():
        rw = RWMutex()
        n = 10
        inside = Chan(n)
        release = Chan()
        wg = WaitGroup()

        async def reader():
            await rw.rlock()
            await inside.send(True)
            await release.recv()
            rw.runlock()

        for _ in range(n):
            wg.go(reader)
        for _ in range(n):
            await inside.recv()     # all n inside together
        assert not rw.try_lock()
        release.close()
        await wg.wait()
        assert rw.try_lock()
        rw.unlock()
        return True

    assert rt(main)


@pytest.mark.timeout(60)
def test_rwmutex_writer_exclusion_stress(rt):
    """Go's HammerRWMutex: writers exclusive, readers never see a writer.
    Readers share the lock, so on a free-threaded build they really run at
    once: their count is a gocore.atomic.Int64 (as Go's test uses atomics)."""
    async def main():
        rw = RWMutex()
        readers, writers, errors = Int64(), Int64(), Int64()
        wg = WaitGroup()

        async def reader():
            for i in range(200):
                async with rw.rlocker():
                    readers.add(1)
                    if writers.load():
                        errors.add(1)
                    if i % 7 == 0:
                        await gosched()
                    readers.add(-1)

        async def writer():
            for i in range(100):
                async with rw:
                    if writers.add(1) != 1 or readers.load():
                        errors.add(1)
                    if i % 5 == 0:
                        await gosched()
                    writers.add(-1)

        for _ in range(8):
            wg.go(reader)
        for _ in range(3):
            wg.go(writer)
        await wg.wait()
        return {"readers": readers.load(), "writers": writers.load(), "errors": errors.load()}

    assert rt(main) == {"readers": 0, "writers": 0, "errors": 0}


@pytest.mark.timeout(30)
def test_rwmutex_waiting_writer_blocks_new_readers(rt):
    """As Go: once a writer waits, a new rlock waits behind it, and the
    writer gets the lock before that reader."""
    async def main():
        rw = RWMutex()
        order = []
        await rw.rlock()
        wg = WaitGroup()

        async def writer():
            await rw.lock()
            order.append("w")
            rw.unlock()

        async def reader():
            await rw.rlock()
            order.append("r")
            rw.runlock()

        wg.go(writer)
        for _ in range(5):
            await gosched()
        assert not rw.try_rlock()       # a writer waits
        wg.go(reader)
        for _ in range(5):
            await gosched()
        assert order == []
        rw.runlock()
        await wg.wait()
        return order

    assert rt(main) == ["w", "r"]


@pytest.mark.timeout(30)
def test_rwmutex_misuse_raises(rt):
    """unlock while only read-locked, runlock while write-locked, and
    either on an unlocked RWMutex raise RuntimeError (Go: fatal error)."""
    async def main():
        rw = RWMutex()
        with pytest.raises(RuntimeError, match="sync: Unlock of unlocked RWMutex"):
            rw.unlock()
        with pytest.raises(RuntimeError, match="sync: RUnlock of unlocked RWMutex"):
            rw.runlock()
        await rw.rlock()
        with pytest.raises(RuntimeError, match="only read-locked"):
            rw.unlock()
        rw.runlock()
        await rw.lock()
        with pytest.raises(RuntimeError, match="write-locked"):
            rw.runlock()
        rw.unlock()
        assert rw.try_rlock() and rw.try_rlock()
        rw.runlock()
        rw.runlock()
        return True

    assert rt(main)


@pytest.mark.timeout(60)
def test_rwmutex_threads(rt):
    """Threads use `with rw:` and `with rw.rlocker():` alongside goroutines."""
    async def main():
        rw = RWMutex()
        box = [0]
        wg = WaitGroup()

        def t_writer():
            for _ in range(200):
                with rw:
                    v = box[0]
                    time.sleep(0)
                    box[0] = v + 1
                with rw.rlocker():
                    _ = box[0]

        async def g_writer():
            for _ in range(200):
                async with rw:
                    v = box[0]
                    await gosched()
                    box[0] = v + 1

        ths = [threading.Thread(target=in_thread, args=(wg, t_writer)) for _ in range(2)]
        wg.add(2)
        for t in ths:
            t.start()
        for _ in range(2):
            wg.go(g_writer)
        wg.go(t_writer)                 # and a sync goroutine
        await wg.wait()
        for t in ths:
            t.join()
        return box[0]

    assert rt(main) == 1000


# ---------------------------------------------------------------- WaitGroup

@pytest.mark.timeout(30)
def test_waitgroup_reuse(rt):
    """Go's TestWaitGroup: two rounds on one WaitGroup; waiters are released
    only when the counter reaches zero."""
    async def main():
        wg1 = WaitGroup()
        wg2 = WaitGroup()
        n = 16
        for _ in range(2):
            wg1.add(n)
            wg2.add(n)
            exited = Chan(n)

            async def g():
                wg1.done()
                await wg2.wait()
                await exited.send(True)

            for _ in range(n):
                go(g)
            await wg1.wait()
            for i in range(n):
                assert exited.try_recv() is None, "WaitGroup released too early"
                wg2.done()
            for _ in range(n):
                await exited.recv()
        return True

    assert rt(main)


@pytest.mark.timeout(30)
def test_waitgroup_negative_counter(rt):
    """Go panics "sync: negative WaitGroup counter"; here ValueError, and
    the counter is left unchanged."""
    async def main():
        wg = WaitGroup()
        with pytest.raises(ValueError, match="sync: negative WaitGroup counter"):
            wg.done()
        wg.add(2)
        with pytest.raises(ValueError, match="sync: negative WaitGroup counter"):
            wg.add(-3)
        assert wg.count == 2
        wg.add(-2)
        await wg.wait()
        return True

    assert rt(main)


@pytest.mark.timeout(30)
def test_waitgroup_bad_input():
    wg = WaitGroup()
    with pytest.raises(TypeError, match=r"WaitGroup.add\(n\) needs an int, got str"):
        wg.add("1")
    with pytest.raises(TypeError, match=r"WaitGroup.add\(n\) needs an int, got bool"):
        wg.add(True)
    with pytest.raises(OverflowError, match="sync: WaitGroup counter overflow"):
        wg.add(1 << 40)
    with pytest.raises(TypeError, match=r"WaitGroup.go\(\) needs a callable, got int"):
        wg.go(42)
    assert wg.count == 0


@pytest.mark.timeout(30)
def test_waitgroup_go_refuses_generator_functions():
    """wg.go(fn) classifies fn as go() does (the one is_async_function):
    a generator function, which would only build a generator nothing
    iterates, is refused with go()'s TypeError and the counter is left
    unchanged. (Before, wg.go had its own check and started a sync
    goroutine that silently did nothing.)"""
    def gen():
        yield 1

    async def agen():
        yield 1

    wg = WaitGroup()
    with pytest.raises(TypeError, match=r"WaitGroup.go\(\) needs .*is a generator function"):
        wg.go(gen)
    with pytest.raises(TypeError, match=r"WaitGroup.go\(\) needs .*is an async generator function"):
        wg.go(agen)
    assert wg.count == 0


@pytest.mark.timeout(60)
def test_waitgroup_go_async_sync_and_raising(rt):
    """wg.go runs async fns as lightweight goroutines and plain fns as sync
    goroutines and calls done() when they return."""
    async def main():
        wg = WaitGroup()
        results = []

        async def a(i, k=0):
            await gosched()
            results.append(("a", i, k))

        def s(i):
            results.append(("s", i))

        for i in range(20):
            wg.go(a, i, k=1)
            wg.go(s, i)
            wg.go(lambda i=i: a(i))          # plain callable returning a coroutine
        await wg.wait()
        return len(results), wg.count

    assert rt(main) == (60, 0)


@pytest.mark.timeout(30)
def test_waitgroup_go_exception_propagates():
    """An exception in a wg.go goroutine is a panic: run() re-raises it; the
    WaitGroup was still decremented."""
    wg = WaitGroup()

    async def bad():
        raise KeyError("boom")

    async def main():
        wg.go(bad)
        await wg.wait()
        await gosched()

    with pytest.raises(KeyError, match="boom"):
        run(main)
    assert wg.count == 0


@pytest.mark.timeout(60)
def test_waitgroup_threads_and_goroutines(rt):
    """Plain threads call done() and blocking_wait(); goroutines wait()."""
    async def main():
        wg = WaitGroup()
        n = 8
        wg.add(n)
        seen = []
        lock = threading.Lock()
        gate = WaitGroup()
        gate.add(1)

        def th(i):
            gate.blocking_wait()         # parks the thread until the goroutine opens the gate
            with lock:
                seen.append(i)
            wg.done()

        ths = [threading.Thread(target=th, args=(i,)) for i in range(n)]
        for t in ths:
            t.start()
        await gosched()
        gate.done()
        await wg.wait()
        for t in ths:
            t.join()
        return sorted(seen)

    assert rt(main) == list(range(8))


@pytest.mark.timeout(30)
def test_waitgroup_sync_goroutine_blocking_wait(rt):
    """A sync goroutine parks in blocking_wait while async ones finish."""
    async def main():
        wg = WaitGroup()
        out = Chan(1)

        def waiter():
            wg.blocking_wait()
            out.blocking_send(wg.count)

        wg.add(3)
        go(waiter)

        async def worker():
            await gosched()
            wg.done()

        for _ in range(3):
            go(worker)
        return await out.recv()

    assert rt(main) == 0


@pytest.mark.timeout(30)
def test_waitgroup_deadlock_detected():
    """main waits on a WaitGroup nobody will ever decrement: DeadlockError
    at the waiting call (as Go's "all goroutines are asleep")."""
    async def main():
        wg = WaitGroup()
        wg.add(1)
        with pytest.raises(gocore.DeadlockError, match="all goroutines are asleep"):
            await wg.wait()
        wg.done()
        return "recovered"

    assert run(main) == "recovered"


@pytest.mark.timeout(30)
def test_mutex_deadlock_detected():
    """main locks a locked Mutex with no other goroutine: DeadlockError; the
    waiter was unlinked, so a later unlock/lock works."""
    async def main():
        m = Mutex()
        await m.lock()
        with pytest.raises(gocore.DeadlockError):
            await m.lock()
        m.unlock()
        await m.lock()
        m.unlock()
        return True

    assert run(main)


# ---------------------------------------------------------------- Once

@pytest.mark.timeout(30)
def test_once_concurrent_callers(rt):
    """Go's TestOnce: fn runs once; every caller returns only after it has
    finished (including an async fn that yields)."""
    async def main():
        once = Once()
        calls = []
        finished = []
        wg = WaitGroup()

        async def fn():
            calls.append(1)
            for _ in range(10):
                await gosched()
            finished.append(1)

        async def caller():
            await once.do(fn)
            assert finished == [1]

        for _ in range(10):
            wg.go(caller)
        await wg.wait()
        await once.do(fn)
        return len(calls), once.done

    assert rt(main) == (1, True)


@pytest.mark.timeout(30)
def test_once_plain_fn_and_exception(rt):
    """Go's TestOncePanic: fn raising propagates to its caller and the Once
    counts as done; later calls do nothing."""
    async def main():
        once = Once()
        calls = []

        def bad():
            calls.append(1)
            raise ValueError("first")

        with pytest.raises(ValueError, match="first"):
            await once.do(bad)
        await once.do(bad)
        await once.do(lambda: calls.append(2))
        return calls

    assert rt(main) == [1]


@pytest.mark.timeout(30)
def test_once_waiters_released_when_fn_raises(rt):
    """Concurrent callers waiting on a raising fn are released (without the
    exception) once it has raised."""
    async def main():
        once = Once()
        gate = Chan()
        released = Chan(5)

        async def fn():
            await gate.recv()
            raise KeyError("x")

        async def first():
            try:
                await once.do(fn)
            except KeyError:
                await released.send("raised")

        async def other():
            await once.do(fn)
            await released.send("ok")

        go(first)
        await gosched()
        for _ in range(4):
            go(other)
        for _ in range(5):
            await gosched()
        await gate.send(None)
        return sorted([await released.recv() for _ in range(5)])

    assert rt(main) == ["ok"] * 4 + ["raised"]


@pytest.mark.timeout(30)
def test_once_blocking_do_threads():
    """Threads use blocking_do: fn runs once."""
    once = Once()
    calls = []

    def fn():
        time.sleep(0.01)
        calls.append(1)

    ths = [threading.Thread(target=once.blocking_do, args=(fn,)) for _ in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert calls == [1]
    with pytest.raises(TypeError, match=r"Once.do\(fn\) needs a callable, got int"):
        once.do(42)


# ---------------------------------------------------------------- Semaphore

@pytest.mark.timeout(30)
def test_semaphore_weights(rt):
    """Weighted acquire/release and try_acquire."""
    async def main():
        sem = Semaphore(10)
        await sem.acquire(7)
        assert not sem.try_acquire(4)
        assert sem.try_acquire(3)
        assert sem.held == 10
        sem.release(10)
        assert sem.try_acquire(10)
        sem.release(10)
        await sem.acquire(0)
        return sem.held

    assert rt(main) == 0


@pytest.mark.timeout(30)
def test_semaphore_fifo_big_waiter_blocks_small(rt):
    """golang.org/x/sync/semaphore: waiters are served FIFO; a big waiter at
    the head blocks smaller ones behind it even when they would fit."""
    async def main():
        sem = Semaphore(4)
        order = []
        wg = WaitGroup()
        await sem.acquire(3)

        async def want(k, name):
            await sem.acquire(k)
            order.append(name)
            sem.release(k)

        wg.go(want, 4, "big")
        for _ in range(5):
            await gosched()
        wg.go(want, 1, "small")
        for _ in range(5):
            await gosched()
        assert order == []              # 1 permit free, but "big" is first
        assert not sem.try_acquire(1)   # nor can anyone barge
        sem.release(3)
        await wg.wait()
        return order

    assert rt(main) == ["big", "small"]


@pytest.mark.timeout(60)
def test_semaphore_limits_concurrency(rt):
    """At most n holders at once, under contention; `async with` takes 1."""
    async def main():
        sem = Semaphore(3)
        cur = [0]
        peak = [0]
        wg = WaitGroup()
        count = threading.Lock()    # holders run in parallel on free-threaded builds

        async def worker():
            for _ in range(50):
                async with sem:
                    with count:
                        cur[0] += 1
                        peak[0] = max(peak[0], cur[0])
                    await gosched()
                    with count:
                        cur[0] -= 1

        for _ in range(20):
            wg.go(worker)
        await wg.wait()
        return peak[0], sem.held

    assert rt(main) == (3, 0)


@pytest.mark.timeout(30)
def test_semaphore_bad_input():
    """acquire(k > n) could never succeed: ValueError at once; releasing
    more than held raises (x/sync panics)."""
    sem = Semaphore(2)
    with pytest.raises(ValueError, match="weight 3 exceeds the semaphore's size 2"):
        sem.acquire(3)
    with pytest.raises(ValueError, match="weight 3 exceeds the semaphore's size 2"):
        sem.blocking_acquire(3)
    with pytest.raises(ValueError, match=r"needs a weight >= 0, got -1"):
        sem.acquire(-1)
    with pytest.raises(TypeError, match="needs an int weight, got float"):
        sem.try_acquire(1.5)
    with pytest.raises(RuntimeError, match="semaphore: released more than held"):
        sem.release()
    with pytest.raises(ValueError, match=r"Semaphore\(n\) needs n >= 0, got -1"):
        Semaphore(-1)
    with pytest.raises(TypeError, match=r"Semaphore\(n\) needs an int, got str"):
        Semaphore("2")
    sem.blocking_acquire(2)
    with pytest.raises(RuntimeError, match="semaphore: released more than held"):
        sem.release(3)
    sem.release(2)


@pytest.mark.timeout(30)
def test_semaphore_threads(rt):
    """Threads use `with sem:` / blocking_acquire alongside goroutines."""
    async def main():
        sem = Semaphore(2)
        cur = [0]
        peak = [0]
        lock = threading.Lock()
        wg = WaitGroup()

        def t_worker():
            for _ in range(50):
                with sem:
                    with lock:
                        cur[0] += 1
                        peak[0] = max(peak[0], cur[0])
                    time.sleep(0)
                    with lock:
                        cur[0] -= 1

        async def g_worker():
            for _ in range(50):
                await sem.acquire()
                with lock:
                    cur[0] += 1
                    peak[0] = max(peak[0], cur[0])
                await gosched()
                with lock:
                    cur[0] -= 1
                sem.release()

        ths = [threading.Thread(target=in_thread, args=(wg, t_worker)) for _ in range(3)]
        wg.add(3)
        for t in ths:
            t.start()
        for _ in range(3):
            wg.go(g_worker)
        await wg.wait()
        for t in ths:
            t.join()
        return peak[0] <= 2, sem.held

    assert rt(main) == (True, 0)


# ---------------------------------------------------------------- teardown

@pytest.mark.timeout(30)
def test_parked_waiters_closed_at_teardown():
    """Goroutines still parked on sync primitives when main returns are
    closed (their finally blocks run) and unlink their waiters, so the
    primitives stay usable."""
    m = Mutex()
    rw = RWMutex()
    wg = WaitGroup()
    sem = Semaphore(1)
    finals = []

    async def parked(aw, name):
        try:
            await aw
        finally:
            finals.append(name)

    async def main():
        await m.lock()
        await rw.lock()
        wg.add(1)
        await sem.acquire()
        go(parked, m.lock(), "m")
        go(parked, rw.rlock(), "rw")
        go(parked, wg.wait(), "wg")
        go(parked, sem.acquire(), "sem")
        for _ in range(10):
            await gosched()

    run(main)
    assert sorted(finals) == ["m", "rw", "sem", "wg"]
    m.unlock()
    assert m.try_lock()
    m.unlock()
    rw.unlock()
    assert rw.try_rlock()
    rw.runlock()
    wg.done()
    sem.release()
    assert sem.try_acquire()
