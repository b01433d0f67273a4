"""gocore.metrics() (issue 19 item 3): goroutines by state, per-P run
queues, the scheduler's counters (stats()'s, reused), threads, timers, I/O
waiters, gocore.aio calls; and a channel's peak occupancy on request
(Chan.track_peak() / Chan.peak)."""
import time

import pytest

import gocore
from gocore import Chan, Mutex, go, select, sleep
from gocore._testhooks import wait_blocked, wait_parked

KEYS = {"goroutines", "goroutines_created", "procs", "procs_idle", "runq", "global_runq",
        "steals", "parks", "unparks", "handoffs", "retakes", "threads", "threads_idle",
        "threads_spinning", "threads_blocked", "timers", "io_waiters", "aio_pending"}
REASONS = {"chan", "select", "sync", "sleep", "io", "other"}


def check_shape(m):
    assert set(m) == KEYS, set(m) ^ KEYS
    g = m["goroutines"]
    assert set(g) == {"total", "running", "syscall", "runnable", "waiting", "waiting_by_reason"}
    assert set(g["waiting_by_reason"]) == REASONS
    assert sum(g["waiting_by_reason"].values()) == g["waiting"]
    assert all(isinstance(v, int) for k, v in m.items() if k not in ("goroutines", "runq"))
    assert all(isinstance(n, int) and n >= 0 for n in m["runq"])


@pytest.mark.timeout(30)
def test_metrics_outside_run():
    m = gocore.metrics()
    check_shape(m)
    assert m["goroutines"]["waiting"] == 0 and m["goroutines"]["running"] == 0


@pytest.mark.timeout(30)
def test_runnable_goroutines_on_the_run_queue():
    """gomaxprocs 1: main queues N goroutines without yielding; they are
    runnable, on its P's run queue (ring + runnext; past the ring's
    capacity, half of it moves to the global queue), and main runs."""
    out = {}
    n = 50

    async def nop():
        pass

    async def main():
        for _ in range(n):
            go(nop)
        out["m"] = gocore.metrics()      # no await since: none of them has run

    gocore.gomaxprocs(1)
    gocore.run(main)
    m = out["m"]
    check_shape(m)
    # all on its P's queue, or the overflow in the global queue (debug
    # builds have a tiny ring to exercise it)
    cap = gocore._sched._sched_counters()["runq_cap"]
    assert m["procs"] == 1 and len(m["runq"]) == 1, m
    assert m["runq"][0] + m["global_runq"] == n, m
    if n < cap:                         # release builds (ring of 256)
        assert m["runq"] == [n] and m["global_runq"] == 0, m
    g = m["goroutines"]
    assert g["runnable"] == n and g["running"] == 1 and g["waiting"] == 0, g
    assert g["total"] == n + 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 2])
def test_waiting_goroutines_by_reason(procs):
    """Parked goroutines are counted by reason class: channel, select,
    sync, sleep; the sleeper's timer is pending."""
    out = {}

    async def recv(c):
        await c.recv()

    async def sel(a, b):
        await select(a.recv, b.recv)

    async def lock(mu):
        await mu.lock()

    async def nap():
        await sleep(30)

    async def main():
        c, a, b, mu = Chan(), Chan(), Chan(), Mutex()
        await mu.lock()
        for _ in range(3):
            go(recv, c)
        go(sel, a, b)
        go(lock, mu)
        go(nap)
        await wait_blocked(c, recv=3)
        await wait_parked(1, fn=sel)
        await wait_parked(1, fn=lock)
        await wait_parked(1, fn=nap)
        out["m"] = gocore.metrics()
        c.close()
        a.close()
        mu.unlock()

    gocore.gomaxprocs(procs)
    gocore.run(main)
    m = out["m"]
    check_shape(m)
    g = m["goroutines"]
    assert g["waiting_by_reason"] == {"chan": 3, "select": 1, "sync": 1, "sleep": 1,
                                      "io": 0, "other": 0}, g
    assert g["waiting"] == 6 and g["running"] == 1 and g["total"] == 7, g
    assert m["timers"] >= 1 and m["procs"] == procs and len(m["runq"]) == procs
    assert m["threads"] >= 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 2])
def test_parks_and_unparks_count(procs):
    """A ping-pong of k round trips parks and readies each side k times:
    both counters grow by at least k (and unparks never outrun parks by
    more than the goroutines parked)."""
    k = 200
    out = {}

    async def pong(a, b):
        for _ in range(k):
            await b.send(await a.recv())

    async def main():
        a, b = Chan(), Chan()
        go(pong, a, b)
        before = gocore.metrics()
        for i in range(k):
            await a.send(i)
            await b.recv()
        out["d"] = {key: gocore.metrics()[key] - before[key] for key in ("parks", "unparks")}

    gocore.gomaxprocs(procs)
    gocore.run(main)
    assert out["d"]["parks"] >= k and out["d"]["unparks"] >= k, out


@pytest.mark.timeout(60)
def test_metrics_is_cheap_with_many_goroutines():
    """One call with 10,000 parked goroutines stays well under a
    millisecond-scale budget (generous here: the machine is shared; the
    figures are in docs/debugging.md)."""
    out = {}
    n = 10_000

    async def recv(c):
        await c.recv()

    async def main():
        c = Chan()
        for _ in range(n):
            go(recv, c)
        await wait_blocked(c, recv=n, timeout=30)
        gocore.metrics()
        t0 = time.perf_counter()
        for _ in range(10):
            m = gocore.metrics()
        out["per_call"] = (time.perf_counter() - t0) / 10
        out["m"] = m
        c.close()

    gocore.gomaxprocs(1)
    gocore.run(main)
    assert out["m"]["goroutines"]["waiting_by_reason"]["chan"] == n
    assert out["per_call"] < 0.05, out["per_call"]


# ---------------------------------------------------------------- peak occupancy

@pytest.mark.timeout(30)
def test_peak_is_off_until_asked():
    c = Chan(4)
    c.try_send(1)
    assert c.peak is None
    assert Chan().peak is None and gocore.nilchan.peak is None
    with pytest.raises(ValueError, match="nilchan"):
        gocore.nilchan.track_peak()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 2])
def test_peak_after_a_burst(procs):
    """The peak is the most values buffered at once since track_peak(),
    through every buffered send path (send, try_send, select, a blocking
    send from a sync goroutine), not the current length; track_peak()
    again starts over from the current length."""
    out = {}

    def sync_sender(c, n):
        for i in range(n):
            c.blocking_send(i)

    async def main():
        c = Chan(10)
        c.try_send(0)
        c.track_peak()
        assert c.peak == 1                  # from the current length
        for i in range(3):
            await c.send(i)
        await select((c.send, 9))
        assert c.try_send(5)
        go(sync_sender, c, 2)
        while len(c) < 8:
            await sleep(0.001)
        out["burst"] = c.peak               # 1 + 3 + 1 + 1 + 2
        for _ in range(8):
            await c.recv()
        await c.send(1)
        out["after"] = (c.peak, len(c))
        c.track_peak()
        out["reset"] = c.peak

    gocore.gomaxprocs(procs)
    gocore.run(main)
    assert out["burst"] == 8
    assert out["after"] == (8, 1)
    assert out["reset"] == 1


@pytest.mark.timeout(30)
def test_peak_unbuffered_stays_zero():
    """An unbuffered channel hands values over directly: its peak stays 0."""
    out = {}

    async def recv(c):
        await c.recv()

    async def main():
        c = Chan()
        c.track_peak()
        go(recv, c)
        await c.send(1)
        out["peak"] = c.peak

    gocore.run(main)
    assert out["peak"] == 0
