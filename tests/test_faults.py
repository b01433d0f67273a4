"""Fault tests (issue 7): exceptions raised at every kind of suspension
point, goroutines closed while parked (their waiters must be gone: no stale
wake-ups in a later run), and finalizers that raise during shutdown.
SIGINT during run() is in test_failures.py (parked, busy, idle, sleeping).

Each check runs a whole run() and then uses the same channels and sync
primitives again: a waiter left linked by a closed goroutine would take a
later value (lost: the next receiver never gets it) or a later unlock (the
mutex stays locked), which the second run notices. Debug builds also check
their balance counters at the end of every run()."""
import gc
import sys
import time

import pytest

import gocore
from gocore import (Chan, Mutex, Once, RWMutex, Semaphore, WaitGroup, go,
                    gosched, select, sleep)
from conftest import wait_until


class Boom(Exception):
    pass


EXCEPTIONS = [Boom("at the suspension point"), SystemExit(4), KeyboardInterrupt()]


def _suspension_points():
    """name -> async fn(ready: Chan) that parks at one kind of suspension
    point, first announcing (on ready) that it is about to park; each is
    woken by the matching `wake` below."""
    async def chan_recv(ready, env):
        await ready.send(None)
        await env["c"].recv()

    async def chan_send(ready, env):
        await ready.send(None)
        await env["c"].send(1)

    async def chan_range(ready, env):
        await ready.send(None)
        async for _ in env["c"]:
            return

    async def select_recv(ready, env):
        await ready.send(None)
        await select(env["c"].recv, env["other"].recv)

    async def timer_sleep(ready, env):
        await ready.send(None)
        await sleep(0.01)

    async def mutex_lock(ready, env):
        await ready.send(None)
        await env["mu"].lock()

    async def rwmutex_rlock(ready, env):
        await ready.send(None)
        await env["rw"].rlock()

    async def waitgroup_wait(ready, env):
        await ready.send(None)
        await env["wg"].wait()

    async def semaphore_acquire(ready, env):
        await ready.send(None)
        await env["sem"].acquire(2)

    async def once_do(ready, env):
        async def slow():
            await env["gate"].recv()

        async def first():
            await env["once"].do(slow)

        go(first)
        await gosched()                  # first is inside do(slow) now
        await ready.send(None)
        await env["once"].do(lambda: None)   # waits for first's call to end

    async def yield_gosched(ready, env):
        await ready.send(None)
        await gosched()

    return {f.__name__: f for f in (chan_recv, chan_send, chan_range, select_recv, timer_sleep,
                                    mutex_lock, rwmutex_rlock, waitgroup_wait,
                                    semaphore_acquire, once_do, yield_gosched)}


POINTS = _suspension_points()


async def _env():
    mu, rw, sem = Mutex(), RWMutex(), Semaphore(2)
    await mu.lock()
    await rw.lock()
    await sem.acquire(2)
    wg = WaitGroup()
    wg.add(1)
    return {"c": Chan(), "other": Chan(), "mu": mu, "rw": rw, "wg": wg, "sem": sem,
            "once": Once(), "gate": Chan()}


async def _wake(name, env):
    """Let the goroutine parked at `name` go on."""
    if name in ("chan_recv", "select_recv", "chan_range"):
        await env["c"].send(1)
    elif name == "chan_send":
        await env["c"].recv()
    elif name == "mutex_lock":
        env["mu"].unlock()
    elif name == "rwmutex_rlock":
        env["rw"].unlock()
    elif name == "waitgroup_wait":
        env["wg"].done()
    elif name == "semaphore_acquire":
        env["sem"].release(2)
    elif name == "once_do":
        await env["gate"].send(None)
    # timer_sleep and yield_gosched go on by themselves


@pytest.mark.timeout(60)
@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("point", sorted(POINTS))
def test_exception_raised_at_each_suspension_point(rt, point, exc):
    """A goroutine resumes from its suspension point and raises (an
    Exception or a BaseException such as SystemExit or KeyboardInterrupt):
    run() re-raises it as itself, with the goroutine id noted, and closes
    the rest; the runtime works again afterwards."""
    parked = POINTS[point]

    async def victim(ready, env):
        await parked(ready, env)
        raise exc

    async def main():
        env = await _env()
        ready = Chan()
        go(victim, ready, env)
        await ready.recv()
        await gosched()                # let it park (or not: the op completes either way)
        await _wake(point, env)
        await Chan().recv()            # only the panic ends this

    with pytest.raises(type(exc)) as info:
        rt.run(main)
    assert info.value is exc
    assert any("raised in goroutine" in n for n in getattr(exc, "__notes__", []))
    exc.__notes__ = []                 # the same instance serves the next parameter
    exc.__traceback__ = None
    assert gocore.num_goroutine() == 1

    async def again():
        c = Chan(1)
        await c.send(7)
        return await c.recv()
    assert rt.run(again) == 7


@pytest.mark.timeout(60)
def test_closed_while_parked_leaves_no_waiter_behind(rt):
    """Goroutines parked on a channel (both directions), in a select, on a
    Mutex, an RWMutex, a Semaphore, a WaitGroup and in sleep() are closed
    when main returns. The next run uses the same objects: every value and
    every unlock reaches a live goroutine (no stale waiter takes it), and no
    timer of the closed sleepers fires into it."""
    objs = {}
    started = []

    async def first():
        env = await _env()
        objs.update(env)
        objs["s"] = Chan()              # a sender parks here

        async def recv_parked():
            started.append("recv")
            await env["c"].recv()

        async def send_parked():
            started.append("send")
            await objs["s"].send("stale")

        async def select_parked():
            started.append("select")
            await select(env["other"].recv, env["c"].recv)

        async def mutex_parked():
            started.append("mutex")
            await env["mu"].lock()

        async def rw_parked():
            started.append("rw")
            await env["rw"].rlock()

        async def sem_parked():
            started.append("sem")
            await env["sem"].acquire(1)

        async def wg_parked():
            started.append("wg")
            await env["wg"].wait()

        async def sleeper():
            started.append("sleep")
            await sleep(0.05)
            objs["woke_after_close"] = True

        for fn in (recv_parked, send_parked, select_parked, mutex_parked, rw_parked,
                   sem_parked, wg_parked, sleeper):
            go(fn)
        await wait_until(lambda: len(started) == 8)
        for _ in range(20):
            await gosched()            # all of them park

    rt.run(first)
    assert gocore.stats()["timers"] == 0, "a closed sleeper left its timer queued"

    async def second():
        env = objs
        got = Chan(8)

        async def receiver(c):
            await got.send(await c.recv())

        go(receiver, env["c"])
        await env["c"].send("to the live receiver")
        assert await got.recv() == "to the live receiver"
        go(receiver, env["other"])
        await env["other"].send("other")
        assert await got.recv() == "other"
        # the sender closed in the first run must not have left "stale" queued
        assert env["s"].try_recv() is None
        env["mu"].unlock()
        assert env["mu"].try_lock(), "the unlock went to a closed waiter"
        env["rw"].unlock()
        assert env["rw"].try_rlock(), "the unlock went to a closed reader"
        env["sem"].release(2)
        assert env["sem"].try_acquire(2), "released weight went to a closed waiter"
        env["wg"].done()
        await env["wg"].wait()
        await sleep(0.1)               # past the closed sleeper's deadline
        return objs.get("woke_after_close", False)

    assert rt.run(second) is False


class _Finalizer:
    def __init__(self, log, raises, ch=None):
        self.log, self.raises, self.ch = log, raises, ch

    def __del__(self):
        self.log.append("del")
        if self.ch is not None:
            self.ch.try_send("from __del__")     # a gocore call while the runtime shuts down
        if self.raises:
            raise RuntimeError("raised in __del__")


@pytest.mark.timeout(60)
def test_finalizers_that_raise_during_shutdown(rt, monkeypatch):
    """Goroutines closed as main returns hold objects whose __del__ raise
    (and make a gocore call): the errors go to sys.unraisablehook, as Python
    does for any finalizer, and run() returns normally; a finalizer run by
    the cyclic GC inside a goroutine does the same."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u))
    log = []
    side = Chan(10)

    started = []

    async def holder(c):
        keep = _Finalizer(log, True, side)      # dropped when the goroutine is closed
        started.append("holder")
        await c.recv()
        del keep

    async def cyclic():
        a = _Finalizer(log, True)
        a.cycle = a                            # freed by the cyclic GC only
        del a
        gc.collect()
        started.append("cyclic")
        await gosched()

    async def main():
        c = Chan()
        for _ in range(3):
            go(holder, c)
        go(cyclic)
        # every holder must have started (on free-threaded builds one may
        # still be queued on the other P when cyclic is done)
        await wait_until(lambda: len(started) == 4 and gocore.num_goroutine() <= 4)
        for _ in range(20):
            await gosched()
        return "returned"

    assert rt.run(main) == "returned"
    deadline = time.monotonic() + 2
    while len(log) < 4 and time.monotonic() < deadline:
        gc.collect()
    assert log.count("del") == 4, log
    errors = [u for u in seen if isinstance(u.exc_value, RuntimeError)]
    assert len(errors) == 4, [u.exc_value for u in seen]
    assert all(str(u.exc_value) == "raised in __del__" for u in errors)
    assert side.try_recv() == ("from __del__", True)
    assert gocore.num_goroutine() == 1
