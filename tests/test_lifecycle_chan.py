"""Lifecycle rules of gocore's awaitables (DESIGN.md §1 "Lifecycle rules",
issue 14): an awaitable is awaited once, by one goroutine; a forgotten
`await` warns; finished operations keep nothing alive; a parked select
picks among same-channel cases at random; a nil-channel wait in main is a
deadlock; internal classes cannot be built from Python; awaiting asyncio
code names it; a Chan is always truthy."""
import gc
import os
import subprocess
import sys
import textwrap
import time
import warnings
import weakref

import pytest

import gocore
import gocore._chan as _chan
import gocore._sched as _sched
import gocore._sync as _sync
import gocore._time as _time
from gocore import Chan, DeadlockError, Mutex, Semaphore, WaitGroup, go, nilchan, select

from conftest import settle, wait_until
from gocore import _testhooks as hooks
from gocore._testhooks import wait_blocked, wait_parked


class Obj:
    """A value that can be weakly referenced."""


def run_py(code, timeout=30):
    """Run code in a child interpreter that imports the gocore under test."""
    env = dict(os.environ)
    env.pop("GOCORE_MAXPROCS", None)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(gocore.__file__)))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, env=env)


# ---------------------------------------------------------------- item 1: nil channels in main

@pytest.mark.timeout(60)
@pytest.mark.parametrize("op", ["recv", "send"])
@pytest.mark.parametrize("procs", [1, 2])
def test_nilchan_await_in_main_is_deadlock(op, procs):
    """`await nilchan.recv()` (or send) in main with nothing else able to
    run raises DeadlockError at once, like every other wait, instead of
    spinning a core (Go: "all goroutines are asleep"). In a subprocess: the
    old behaviour never returns."""
    arg = "" if op == "recv" else "1"
    r = run_py(f"""
        import resource, time, gocore
        async def main():
            await gocore.nilchan.{op}({arg})
        gocore.gomaxprocs({procs})
        t0 = time.monotonic()
        try:
            gocore.run(main)
        except gocore.DeadlockError as e:
            ru = resource.getrusage(resource.RUSAGE_SELF)
            print("deadlock", round(time.monotonic() - t0, 3), round(ru.ru_utime + ru.ru_stime, 3))
        """, timeout=20)
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()
    assert words[0] == "deadlock", r.stdout
    assert float(words[1]) < 5.0, r.stdout       # detected promptly, not after a long spin


# ---------------------------------------------------------------- item 2: Go's TestPseudoRandomSend

@pytest.mark.timeout(30)
def test_pseudo_random_send_parked(rt):
    """Go's TestPseudoRandomSend on an unbuffered channel: a select of
    (c.send, 1) and (c.send, 0) parks before the receiver arrives; which
    case fires is random, so 100 rounds see both values."""
    n = 100

    async def main():
        c = Chan()
        got = []

        async def receiver():
            for _ in range(n):
                await wait_blocked(c, send=1)    # let the select park first
                got.append(await c.recv())

        go(receiver)
        for _ in range(n):
            await select((c.send, 1), (c.send, 0))
        await wait_until(lambda: len(got) == n)
        return got

    got = rt.run(main)
    ones = sum(got)
    # P(fewer than 15 of either value) for a fair coin is about 1e-12
    assert 15 <= ones <= n - 15, f"{ones} ones and {n - ones} zeros"


@pytest.mark.timeout(30)
def test_pseudo_random_recv_parked(rt):
    """The receive side: two receive cases on one channel, parked, then a
    sender: both indices fire."""
    n = 100

    async def main():
        c = Chan()
        idx = []

        async def sender():
            for i in range(n):
                await wait_blocked(c, recv=1)    # let the select park first
                await c.send(i)

        go(sender)
        for _ in range(n):
            i, _v = await select(c.recv, c.recv)
            idx.append(i)
        return idx

    idx = rt.run(main)
    assert 15 <= sum(idx) <= n - 15, idx


# ---------------------------------------------------------------- item 6: awaited once, by one goroutine

@pytest.mark.timeout(20)
def test_recv_op_awaited_by_two_goroutines(rt):
    """`op = c.recv()` awaited by two goroutines: the second await raises
    RuntimeError at once; the first still gets the value."""
    async def main():
        c = Chan()
        op = c.recv()
        got, errs = [], []

        async def first():
            got.append(await op)

        async def second():
            try:
                got.append(("second", await op))
            except RuntimeError as e:
                errs.append(str(e))

        go(first)
        await wait_blocked(c, recv=1)
        go(second)
        await wait_until(lambda: errs or got)
        assert got == [] and len(errs) == 1, (got, errs)
        assert "awaited" in errs[0]
        await c.send("v")
        await wait_until(lambda: got)
        assert got == ["v"]

    rt.run(main)


@pytest.mark.timeout(20)
def test_quit_op_shared_by_five_goroutines_raises(rt):
    """A quit awaitable built once and awaited by five goroutines: four of
    them raise at once rather than missing close()'s wake-up."""
    async def main():
        quit = Chan()
        op = quit.recv()
        woke, errs = [], []

        async def worker():
            try:
                await op
                woke.append(1)
            except RuntimeError:
                errs.append(1)

        for _ in range(5):
            go(worker)
        await wait_until(lambda: len(errs) == 4)
        quit.close()
        await wait_until(lambda: woke)
        await settle()
        assert (len(woke), len(errs)) == (1, 4)

    rt.run(main)


@pytest.mark.timeout(20)
def test_op_awaited_twice_raises_and_keeps_values(rt):
    """Awaiting a finished operation again raises; it does not perform a
    second operation (which would take, or send, another value)."""
    async def main():
        c = Chan(3)
        s = c.send("a")
        await s
        with pytest.raises(RuntimeError, match="awaited"):
            await s
        assert len(c) == 1
        await c.send("b")
        r = c.recv()
        assert await r == "a"
        with pytest.raises(RuntimeError, match="awaited"):
            await r
        assert await c.recv() == "b"

    rt.run(main)


@pytest.mark.timeout(20)
def test_parked_op_awaited_twice_raises(rt):
    """An operation that parked, then completed, awaited again: raises."""
    async def main():
        c = Chan()
        op = c.recv()

        async def sender():
            await wait_blocked(c, recv=1)
            await c.send(1)
            await c.send(2)

        go(sender)
        assert await op == 1
        with pytest.raises(RuntimeError, match="awaited"):
            await op
        assert await c.recv() == 2

    rt.run(main)


@pytest.mark.timeout(20)
def test_shared_send_op_raises(rt):
    """A send awaitable shared by two goroutines: the second raises
    RuntimeError (not ChanClosedError on an open channel)."""
    async def main():
        c = Chan()
        op = c.send(7)
        errs = []

        async def s():
            try:
                await op
            except RuntimeError:
                errs.append(1)

        go(s)
        go(s)
        await wait_until(lambda: errs)
        assert await c.recv() == 7
        await settle()
        assert errs == [1]
        assert c.try_recv() is None

    rt.run(main)


@pytest.mark.timeout(20)
def test_shared_select_raises(rt):
    """A select awaitable shared by two goroutines: the second raises
    RuntimeError at once (never "select woke without a winner")."""
    async def main():
        a, b = Chan(), Chan()
        sel = select(a.recv, b.recv)
        got, errs = [], []

        async def w():
            try:
                got.append(await sel)
            except RuntimeError as e:
                errs.append(str(e))

        go(w)
        await wait_blocked(a, recv=1)
        go(w)
        await wait_until(lambda: errs)
        assert "awaited" in errs[0]
        await b.send("x")
        await wait_until(lambda: got)
        assert got == [(1, "x")]
        with pytest.raises(RuntimeError, match="awaited"):
            await sel

    rt.run(main)


@pytest.mark.timeout(20)
def test_next_on_parked_op_from_another_goroutine(rt):
    """Driving another goroutine's parked operation by hand (next()) is
    refused; the owner still gets its value."""
    async def main():
        c = Chan()
        op = c.recv()
        got = []

        async def owner():
            got.append(await op)

        go(owner)
        await wait_blocked(c, recv=1)
        with pytest.raises(RuntimeError):
            next(op)
        await c.send(5)
        await wait_until(lambda: got)
        assert got == [5]

    rt.run(main)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["mutex", "waitgroup", "semaphore"])
def test_sync_op_awaited_by_second_goroutine(rt, kind):
    """A sync primitive's awaitable parked in one goroutine and awaited by
    a second: the second raises RuntimeError at once (before: it returned
    at once, e.g. believing it held the mutex)."""
    async def main():
        if kind == "mutex":
            p = Mutex()
            await p.lock()
            op = p.lock()
            release = p.unlock
        elif kind == "waitgroup":
            p = WaitGroup()
            p.add(1)
            op = p.wait()
            release = p.done
        else:
            p = Semaphore(1)
            await p.acquire()
            op = p.acquire()
            release = p.release
        done, errs = [], []

        async def first():
            await op
            done.append(1)

        async def second():
            try:
                await op
                done.append(2)
            except RuntimeError as e:
                errs.append(str(e))

        go(first)
        await wait_parked(1, fn=first)
        go(second)
        await wait_until(lambda: errs or done)
        assert done == [] and len(errs) == 1, (done, errs)
        release()
        await wait_until(lambda: done)
        assert done == [1]
        with pytest.raises(RuntimeError, match="awaited"):
            await op

    rt.run(main)


# ---------------------------------------------------------------- item 12: nothing kept alive

@pytest.mark.timeout(20)
def test_select_sent_value_not_kept_alive(rt):
    """After select returned and the last reference to the sent value was
    dropped, the value is gone: the reused select object keeps no case."""
    async def main():
        c = Chan(1)
        v = Obj()
        ref = weakref.ref(v)
        await select((c.send, v), gocore.default)
        del v
        got = await c.recv()
        del got
        gc.collect()
        assert ref() is None

        # the parked path: the select waits, then a receiver takes the value
        d = Chan()
        v = Obj()
        ref = weakref.ref(v)

        async def recv():
            await wait_blocked(d, send=1)
            await d.recv()

        go(recv)
        await select((d.send, v), nilchan.recv)
        del v
        await wait_until(lambda: hooks.alive(recv) == 0)     # its frame is gone
        gc.collect()
        assert ref() is None

    rt.run(main)


@pytest.mark.timeout(20)
def test_finished_ops_release_channel(rt):
    """A channel's reference count is back to its own after a send and a
    receive (the reused operation objects hold no channel), and a value
    buffered in a dropped channel is freed with it."""
    async def main():
        c = Chan(1)
        base = sys.getrefcount(c)
        await c.send(1)
        await c.recv()
        i, _ = await select(c.recv, (c.send, 2))
        if i == 1:
            await c.recv()
        assert sys.getrefcount(c) == base

        c = Chan(1)
        v = Obj()
        ref = weakref.ref(v)
        await c.send(v)
        del v, c
        gc.collect()
        assert ref() is None

    rt.run(main)


@pytest.mark.timeout(20)
def test_parked_recv_value_not_kept(rt):
    """A receive that parked and was handed a value keeps no reference to
    it once the await returned."""
    async def main():
        c = Chan()
        box = []

        async def sender():
            await wait_blocked(c, recv=1)
            v = Obj()
            box.append(weakref.ref(v))
            await c.send(v)

        go(sender)
        v = await c.recv()
        await wait_until(lambda: box)
        del v
        gc.collect()
        assert box[0]() is None

    rt.run(main)


# ---------------------------------------------------------------- item 13: internal classes

INTERNAL = [
    (_chan, "_ChanOp"), (_chan, "_Select"), (_chan, "_ChanRange"),
    (_sync, "_SyncOp"), (_sync, "_Done"), (_sync, "_SyncBase"), (_sync, "_RLocker"),
    (_sched, "G"), (_sched, "_ParkSentinel"), (_sched, "_Gosched"),
    (_time, "_Sleep"),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mod,name", INTERNAL, ids=[f"{m.__name__}.{n}" for m, n in INTERNAL])
def test_internal_classes_refuse_construction(mod, name):
    """uvloop's rule: internal cdef classes cannot be built from Python,
    neither by calling them nor through __new__ (an unset object crashed
    the interpreter: `_ChanOp()` then `next(op)`)."""
    cls = getattr(mod, name)
    with pytest.raises(TypeError, match="internal"):
        cls()
    with pytest.raises(TypeError):
        cls.__new__(cls)
    with pytest.raises(TypeError):
        cls(None)


@pytest.mark.timeout(60)
def test_internal_class_misuse_does_not_crash():
    """The crashes of the issue, in a subprocess: each must end in an
    exception, never a signal."""
    r = run_py("""
        import copy, pickle
        import gocore, gocore._chan as ch, gocore._sync as sy, gocore._sched as sc, gocore._time as tm
        tries = [
            lambda: next(ch._ChanOp()),
            lambda: next(ch._ChanOp.__new__(ch._ChanOp)),
            lambda: next(ch._Select.__new__(ch._Select)),
            lambda: ch._ChanRange(None).__anext__(),
            lambda: next(sy._SyncOp.__new__(sy._SyncOp)),
            lambda: sy._RLocker(None).__aenter__(),
            lambda: next(tm._Sleep.__new__(tm._Sleep)),
            lambda: copy.copy(gocore.Chan().recv()),
            lambda: pickle.dumps(gocore.Chan().recv()),
            lambda: copy.copy(gocore.select(gocore.Chan().recv)),
            lambda: next(gocore.Chan().recv()),
            lambda: next(gocore.select(gocore.Chan().recv)),
            lambda: next(gocore.Mutex().lock()),
        ]
        for i, f in enumerate(tries):
            try:
                f()
            except Exception as e:
                print(i, type(e).__name__)
            else:
                print(i, "ok")
        print("survived")
        """)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "survived" in r.stdout


@pytest.mark.timeout(120)
def test_every_class_and_method_survives_misuse():
    """Every class of the five extension modules, built every way Python
    allows (calls, __new__ without __init__), with each of its methods
    called with a few bad arguments and any awaitable stepped by hand:
    exceptions only, never a crash (before: `Timer.__new__(Timer).reset(0)`
    and `_ChanOp()` stepped crashed the interpreter)."""
    r = run_py("""
        import copy, pickle
        import gocore, gocore._chan as ch, gocore._sync as sy, gocore._sched as sc
        import gocore._time as tm, gocore._atomic as at
        DUNDER = {"__next__", "__await__", "__anext__", "__aenter__", "__aexit__", "__enter__",
                  "__exit__", "__iter__", "__aiter__", "__len__", "__bool__", "__repr__",
                  "__reduce__", "__reduce_ex__"}
        calls = 0
        for m in (ch, sy, sc, tm, at):
            for name, cls in list(vars(m).items()):
                if not isinstance(cls, type) or cls.__module__ != m.__name__ or issubclass(cls, BaseException):
                    continue
                objs = []
                for make in (lambda: cls(), lambda: cls.__new__(cls), lambda: cls(None), lambda: cls(1)):
                    try:
                        objs.append(make())
                    except Exception:
                        pass
                for o in objs:
                    for an in dir(o):
                        if an.startswith("__") and an not in DUNDER:
                            continue
                        try:
                            a = getattr(o, an)
                        except Exception:
                            continue
                        if not callable(a):
                            continue
                        for args in ((), (None,), (0,), (1,), (None, None, None)):
                            calls += 1
                            try:
                                res = a(*args)
                                if hasattr(res, "__next__"):
                                    next(res)
                            except BaseException:
                                pass
                    for f in (copy.copy, pickle.dumps):
                        try:
                            f(o)
                        except Exception:
                            pass
        print("survived", calls)
        """, timeout=100)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "survived" in r.stdout


# ---------------------------------------------------------------- item 14: forgotten await

@pytest.mark.timeout(20)
@pytest.mark.parametrize("what,make", [
    ("Chan.send", lambda c, m: c.send(1)),
    ("Chan.recv", lambda c, m: c.recv()),
    ("Chan.recv_ok", lambda c, m: c.recv_ok()),
    ("select", lambda c, m: select(c.recv)),
    ("Mutex.lock", lambda c, m: m.lock()),
])
def test_forgotten_await_warns(rt, what, make):
    """An operation created and never awaited warns like an un-awaited
    coroutine: a RuntimeWarning naming the operation."""
    async def main():
        c, m = Chan(1), Mutex()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            make(c, m)              # the forgotten `await`
            gc.collect()
        msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
        assert any(what in s and "never awaited" in s for s in msgs), msgs
        # the operation did nothing
        assert len(c) == 0 and not m.locked()
        # awaited operations, blocking_select and go(ch.send, v) do not warn
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            await c.send(1)
            await c.recv()
            await select((c.send, 2))
            gocore.blocking_select(c.recv)
            await m.lock()
            m.unlock()
            go(c.send, 3)
            assert await c.recv() == 3
            gc.collect()
        assert [x for x in w if issubclass(x.category, RuntimeWarning)] == []

    rt.run(main)


# ---------------------------------------------------------------- item 15: asyncio awaitables

@pytest.mark.timeout(20)
def test_asyncio_sleep0_names_the_awaitable(rt):
    """`await asyncio.sleep(0)` in a goroutine: the error names
    asyncio's sleep (not "awaited None") and points to gocore.aio.call."""
    import asyncio

    async def main():
        await asyncio.sleep(0)

    with pytest.raises(TypeError) as ei:
        rt.run(main)
    msg = str(ei.value)
    assert "sleep" in msg and "asyncio" in msg, msg
    assert "awaited None" not in msg
    assert "gocore.aio.call" in msg


@pytest.mark.timeout(20)
def test_asyncio_future_names_the_future(rt):
    """A bare asyncio future: the error names it and the bridge."""
    import asyncio

    async def main():
        loop = asyncio.new_event_loop()
        try:
            await loop.create_future()
        finally:
            loop.close()

    with pytest.raises(TypeError) as ei:
        rt.run(main)
    assert "Future" in str(ei.value) and "gocore.aio.call" in str(ei.value)


@pytest.mark.timeout(20)
def test_asyncio_no_running_loop_note(rt):
    """`await asyncio.sleep(0.01)` fails inside asyncio first ("no running
    event loop"): the error gets a note saying how to call asyncio code."""
    import asyncio

    async def main():
        await asyncio.sleep(0.01)

    with pytest.raises(RuntimeError, match="no running event loop") as ei:
        rt.run(main)
    notes = "\n".join(getattr(ei.value, "__notes__", []))
    assert "gocore.aio.call" in notes, notes


# ---------------------------------------------------------------- item 18: bool(Chan())

def test_chan_is_always_truthy():
    """`done = done or Chan()` must not replace an empty channel: a Chan is
    always truthy (bool(ch) is not len(ch)); len() still counts values."""
    c = Chan()
    assert bool(c) is True and len(c) == 0
    b = Chan(2)
    assert bool(b) is True
    b.try_send(1)
    assert bool(b) is True and len(b) == 1
    assert bool(nilchan) is True
    done = c
    done = done or Chan()
    assert done is c
