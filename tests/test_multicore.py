"""Multicore: blocking-call hand-off, sysmon, the thread bound, an idle
runtime's CPU use, goroutines migrating between Ms, and (on a free-threaded
interpreter) the GIL staying off.

Timing bounds here are loose on purpose: they separate "runs in parallel /
keeps going" from "serialised / stalled" by a wide factor, never measure
speed (that is bench/'s job)."""
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import gocore
from gocore import Chan, WaitGroup, go, gosched, run, sleep

from conftest import FREE_THREADED


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2])
def test_hundred_sync_goroutines_sleep_together(procs):
    """100 plain-function goroutines each time.sleep(0.2): each blocked M
    hands its P on, so they overlap (serial would take 20 s)."""
    done = []

    def sleeper(i):
        time.sleep(0.2)
        done.append(i)

    async def main():
        wg = WaitGroup()
        t0 = time.monotonic()
        for i in range(100):
            wg.go(sleeper, i)
        await wg.wait()
        return time.monotonic() - t0

    gocore.gomaxprocs(procs)
    elapsed = run(main)
    assert sorted(done) == list(range(100))
    assert elapsed < 5.0, f"100 x sleep(0.2) took {elapsed:.2f} s: blocked goroutines were serialised"


@pytest.mark.timeout(60)
def test_goroutine_stuck_in_blocking_call_does_not_stop_its_p():
    """gomaxprocs 1: a lightweight goroutine calls time.sleep(1) (it should
    not, but libraries do). sysmon retakes the P so a ping-pong pair on the
    same P keeps exchanging messages during that second."""
    async def stuck(started):
        await started.send(None)
        time.sleep(1.0)

    async def ponger(ping, pong):
        async for v in ping:
            await pong.send(v)

    async def main():
        started = Chan()
        ping, pong = Chan(), Chan()
        go(ponger, ping, pong)
        go(stuck, started)
        await started.recv()
        t0 = time.monotonic()
        trips = 0
        while time.monotonic() - t0 < 0.9:
            await ping.send(trips)
            await pong.recv()
            trips += 1
        ping.close()
        return trips, gocore.stats()["retakes"]

    gocore.gomaxprocs(1)
    trips, retakes = run(main)
    assert retakes >= 1
    assert trips > 200, f"only {trips} round trips while a goroutine was stuck for 1 s"


@pytest.mark.timeout(60)
def test_thread_bound_raises_instead_of_hanging():
    """More goroutines blocked in blocking_recv than the thread bound: run()
    ends with a clear RuntimeError (Go: 'program exceeds N-thread limit')."""
    prog = textwrap.dedent("""
        import gocore
        from gocore import Chan, go, run
        gocore.set_max_threads(4)
        from gocore import WaitGroup
        def blocked(started, c):
            started.done()
            c.blocking_recv()
        async def main():
            # all 10 must be blocked at once: that needs 10 threads
            c, started = Chan(), WaitGroup()
            started.add(10)
            for _ in range(10):
                go(blocked, started, c)
            await started.wait()
            for _ in range(10):
                await c.send(1)
        try:
            run(main)
        except RuntimeError as e:
            print("RuntimeError:", e)
        else:
            print("no error")
    """)
    out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=30)
    assert "RuntimeError: gocore: program exceeds the 4-thread limit" in out.stdout, out.stdout + out.stderr


def test_set_max_threads_validates_and_returns_previous():
    prev = gocore.set_max_threads(500)
    try:
        assert gocore.set_max_threads(prev) == 500
    finally:
        gocore.set_max_threads(prev)
    for bad in (0, -1, 10**9):
        with pytest.raises(ValueError):
            gocore.set_max_threads(bad)
    for bad in ("8", 2.0, True, None):
        with pytest.raises(TypeError):
            gocore.set_max_threads(bad)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2])
def test_idle_runtime_uses_almost_no_cpu(procs):
    """Every goroutine asleep for 1 s: the Ms and sysmon sleep on futexes
    (no polling), so the process uses a few ms of CPU at most."""
    async def main():
        c0 = time.process_time()
        await sleep(1.0)
        return time.process_time() - c0

    gocore.gomaxprocs(procs)
    cpu = run(main)
    assert cpu < 0.1, f"an idle runtime used {cpu * 1000:.0f} ms of CPU in 1 s"


@pytest.mark.timeout(120)
def test_goroutines_migrate_between_ms_and_nothing_is_lost():
    """gomaxprocs 2: 200 goroutines each take 50 steps with gosched between
    them, recording the OS thread (M) of every step; step 25 of every 50th
    goroutine blocks in time.sleep (a call that releases the GIL and never
    returns to the scheduler). Every step happens exactly once, and
    goroutines are run by more than one M.

    How they move differs by build: on a free-threaded build idle Ms are
    woken to steal; on a GIL build readying a goroutine wakes nobody (one M
    runs Python at a time) and the goroutines move when sysmon retakes the
    P of the M stuck in time.sleep and hands it to another M."""
    steps = 50
    n = 200
    record = {}                        # goroutine -> list of thread ids
    lock = threading.Lock()

    async def worker(i, wg):
        seen = []
        for step in range(steps):
            seen.append(threading.get_ident())
            x = 0
            for k in range(200):           # some work, so that others steal
                x += k
            if i % 50 == 0 and step == 25:
                # stuck outside the runtime for longer than sysmon's
                # longest look-again delay (10 ms) plus its retake threshold
                time.sleep(0.03)
            await gosched()
        with lock:
            record[i] = seen
        wg.done()

    async def main():
        wg = WaitGroup()
        wg.add(n)
        for i in range(n):
            go(worker, i, wg)
        await wg.wait()

    gocore.gomaxprocs(2)
    run(main)
    assert sorted(record) == list(range(n))
    assert all(len(v) == steps for v in record.values())
    threads = set().union(*map(set, record.values()))
    assert len(threads) >= 2, "every step ran on one M: no stealing or retake happened"
    migrated = sum(1 for v in record.values() if len(set(v)) > 1)
    assert migrated >= 1, "no goroutine ever moved to another M"


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(sys, "_is_gil_enabled"), reason="needs Python >= 3.13")
def test_gil_state_after_import():
    """On a free-threaded interpreter importing gocore (every compiled
    module) keeps the GIL disabled; on a GIL build it is simply on."""
    prog = ("import sys, gocore, gocore.atomic, gocore.context, gocore.errgroup; "
            "print(sys._is_gil_enabled())")
    env = dict(os.environ)
    env.pop("PYTHON_GIL", None)
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", prog],
                         capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    free_threaded_build = "t" in getattr(sys, "abiflags", "")
    assert out.stdout.strip() == ("False" if free_threaded_build else "True"), out.stderr


def _run_prog(prog, *args, timeout=30):
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(prog), *map(str, args)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the program hung; its output so far: {e.stdout!r} {e.stderr!r}")


WOKEN_SYNC_WHILE_P_BUSY = """
    import sys, time, gocore
    from gocore import Chan, go, gosched, run, sleep

    def sync_receiver(c, done):
        try:
            c.blocking_recv()            # wakes while every P is busy
            done.append("received")
        finally:
            done.append("finally")

    async def spinner(done):
        while "finally" not in done and not stop:
            await gosched()              # keeps the only P busy for ever

    stop = False

    async def main(mode):
        global stop
        c, done = Chan(), []
        go(sync_receiver, c, done)
        go(spinner, done)
        await sleep(0.01)                # the receiver is parked by now
        await c.send(1)
        if mode == "exit":
            return list(done)            # main returns with the receiver woken
        t0 = time.monotonic()
        while "finally" not in done and time.monotonic() - t0 < 5:
            await gosched()
        seen = list(done)                # before the spinner stops: a P may go idle then
        stop = True
        return seen

    gocore.gomaxprocs(int(sys.argv[1]))
    print(sys.argv[2], run(main, sys.argv[2]))
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2])
def test_woken_sync_goroutine_runs_while_every_p_is_busy(procs):
    """A sync goroutine woken while goroutines keep every P busy (one
    spinning on gosched at gomaxprocs 1) queues itself as a token and runs
    when an M picks it up (Go's stoplockedm/startlockedm), rather than
    waiting for a P to go idle, which never happens here."""
    r = _run_prog(WOKEN_SYNC_WHILE_P_BUSY, procs, "wait")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "wait ['received', 'finally']"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2])
def test_run_ends_while_a_woken_sync_goroutine_waits_for_a_p(procs):
    """Main returns right after waking the sync goroutine: whether it got a
    P or still waits for one, it finishes (its finally runs) and run()
    returns."""
    r = _run_prog(WOKEN_SYNC_WHILE_P_BUSY, procs, "exit")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("exit ["), r.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", [1, 2])
def test_sync_goroutine_outliving_run_owns_no_p_in_the_next_run(procs):
    """A sync goroutine inside a foreign call when run() returns finishes on
    its own later. If it blocks in gocore during the next run(), its M is of
    an old generation and owns no P: it must not hand off or queue onto a P
    of the new run (a debug build asserts that; a release build could get
    two Ms on one P). The next run works and closes it at its end."""
    prog = """
        import sys, time, gocore
        from gocore import Chan, go, gosched, run

        events = []
        c = Chan()

        def straggler():
            events.append("started")
            try:
                time.sleep(0.3)          # run() returns meanwhile
                c.blocking_send(1)       # blocks in the next run()
            except BaseException as e:
                events.append(type(e).__name__)
                raise

        async def first():
            go(straggler)
            while not events:
                await gosched()

        async def busy(n, out):
            total = 0
            for i in range(n):
                total += i
                await gosched()
            await out.send(total)

        async def second():
            out = Chan()
            t0 = time.monotonic()
            rounds = 0
            while time.monotonic() - t0 < 1.0:
                for _ in range(8):
                    go(busy, 200, out)
                for _ in range(8):
                    assert await out.recv() == sum(range(200))
                rounds += 1
            return rounds > 0

        gocore.gomaxprocs(int(sys.argv[1]))
        run(first)
        print("second", run(second))
        time.sleep(0.1)
        print("straggler", events)
    """
    r = _run_prog(prog, procs)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["second True", "straggler ['started', 'GoroutineExit']"], r.stdout + r.stderr
