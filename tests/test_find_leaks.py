"""gocore.testing.find_leaks() (issue 19 item 1): goroutines parked where
nothing alive can wake them, found by reachability (Go 1.26's
goroutineleak profile). Both ways for every kind of root: a goroutine
some live object can still wake is never reported (a module global, a
runnable goroutine's closure, a plain thread's local variable, a pending
timer, a chain of parked goroutines, a goroutine waiting on I/O), and one
nothing can wake is (a forgotten channel, select, Mutex, WaitGroup,
nilchan, a cycle).

The goroutines under test get their channels from small helper functions
that return without keeping them: a channel still in main's own frame is
one main could send on, which find_leaks rightly counts as live."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import gocore
from gocore import (Chan, Mutex, Once, RWMutex, Semaphore, Timer, WaitGroup, after, go,
                    gosched, nilchan, select, sleep)
from gocore._testhooks import alive, wait_parked
from gocore.net import wait_readable
from gocore.testing import find_leaks, format_leaks

from conftest import FREE_THREADED, wait_until

@pytest.fixture(autouse=True)
def needs_the_gil(request):
    if FREE_THREADED and request.node.name != "test_free_threaded_without_gil_refuses":
        pytest.skip("find_leaks() needs the GIL (a consistent snapshot of the object graph)")


@pytest.fixture(params=(1, 2), ids=("procs1", "procs2"))
def rt(request):
    """gomaxprocs 1 and 2."""
    class Rt:
        def run(self, fn, *args):
            gocore.gomaxprocs(request.param)
            return gocore.run(fn, *args)
    return Rt()


HELD = []       # a module global: what it holds is live


async def recv_forever(ch):
    await ch.recv()


async def send_forever(ch):
    await ch.send("x")


def names(leaks):
    """(function waiting, wait reason) of each leaked goroutine."""
    return sorted((g.frames[-1].code.co_name if g.frames else "?", g.state) for g in leaks)


def forget_receiver():
    go(recv_forever, Chan())


def forget_sender():
    go(send_forever, Chan())


# ---------------------------------------------------------------- found

@pytest.mark.timeout(30)
def test_forgotten_channel(rt):
    """A receiver and a sender on channels nobody else holds: leaked; the
    records are the dump's (wait reason, the line where each waits)."""
    async def main():
        forget_receiver()
        forget_sender()
        await wait_parked(2)
        leaks = find_leaks()
        return names(leaks), leaks[0], format_leaks(leaks)

    found, rec, text = rt.run(main)
    assert found == [("recv_forever", "chan receive"), ("send_forever", "chan send")]
    assert text.startswith(f"goroutine {rec.goid} [chan receive]:\n  recv_forever(...)\n")
    with open(__file__) as f:
        assert f.read().splitlines()[rec.frames[0].lineno - 1].strip() == "await ch.recv()"


async def select_two(a, b):
    await select(a.recv, (b.send, 1))


async def select_nil_and(a):
    await select(nilchan.recv, a.recv)


@pytest.mark.timeout(30)
def test_forgotten_select(rt):
    """A select whose channels nobody else holds (with or without a
    nilchan case) is leaked."""
    async def main():
        go(select_two, Chan(), Chan())
        go(select_nil_and, Chan())
        await wait_parked(2, reason="select")
        return names(find_leaks())

    assert rt.run(main) == [("select_nil_and", "select"), ("select_two", "select")]


async def lock_and_return(mu):
    await mu.lock()          # never unlocked


async def lock(mu):
    await mu.lock()


def leak_mutex():
    mu = Mutex()
    go(lock_and_return, mu)
    return mu


@pytest.mark.timeout(30)
def test_mutex_held_by_a_finished_goroutine(rt):
    async def main():
        mu = leak_mutex()
        await wait_until(lambda: alive(lock_and_return) == 0)
        go(lock, mu)
        del mu                           # main forgets it too
        await wait_parked(1, reason="sync.Mutex.Lock")
        return names(find_leaks())

    assert rt.run(main) == [("lock", "sync.Mutex.Lock")]


async def wg_wait(wg):
    await wg.wait()


async def rlock(rw):
    await rw.rlock()


async def acquire(sem):
    await sem.acquire(2)


def leak_sync_waiters():
    wg = WaitGroup()
    wg.add(1)                            # never done
    go(wg_wait, wg)
    rw = RWMutex()
    rw.try_lock()                        # the writer never unlocks
    go(rlock, rw)
    sem = Semaphore(2)
    sem.try_acquire(1)                   # never released
    go(acquire, sem)                     # wants 2


@pytest.mark.timeout(30)
def test_waitgroup_never_done_and_other_primitives(rt):
    async def main():
        leak_sync_waiters()
        await wait_parked(3)
        return names(find_leaks())

    assert rt.run(main) == [("acquire", "semacquire"), ("rlock", "sync.RWMutex.RLock"),
                            ("wg_wait", "sync.WaitGroup.Wait")]


async def once_do(once, fn):
    await once.do(fn)


async def nothing():
    pass


def leak_once():
    """The first caller's fn waits on a forgotten channel, the second
    caller waits for the first: both leaked (a chain nothing starts)."""
    once = Once()
    ch = Chan()

    async def init():
        await ch.recv()

    go(once_do, once, init)
    return once


@pytest.mark.timeout(30)
def test_once_behind_a_leaked_first_caller(rt):
    async def main():
        once = leak_once()
        await wait_parked(1, reason="chan receive")
        go(once_do, once, nothing)
        del once
        await wait_parked(2)
        return names(find_leaks())

    assert rt.run(main) == [("once_do", "chan receive"), ("once_do", "sync.Once.Do")]


async def nil_recv():
    await nilchan.recv()


async def nil_select():
    await select(nilchan.recv, (nilchan.send, 1))


@pytest.mark.timeout(30)
def test_nilchan(rt):
    """Parked on nilchan (or a select of nilchan cases only): nothing can
    wake it, although nilchan itself is a module global."""
    async def main():
        go(nil_recv)
        go(nil_select)
        await wait_parked(2)
        return names(find_leaks())

    assert rt.run(main) == [("nil_recv", "chan receive (nil chan)"),
                            ("nil_select", "select (no cases)")]


@pytest.mark.timeout(30)
def test_main_on_nilchan_is_not_reported(rt):
    """Main parked on nilchan is Go's `select {}` (serve until killed): not
    reported, while another goroutine on nilchan is; with nothing else left
    to run, deadlock detection then ends the run."""
    seen = []

    async def look():
        await wait_parked(2)             # main and nil_recv
        seen.append(names(find_leaks()))

    async def main():
        go(nil_recv)
        go(look)
        await nilchan.recv()

    with pytest.raises(gocore.DeadlockError):
        rt.run(main)
    assert seen == [[("nil_recv", "chan receive (nil chan)")]]


async def swap(mine, other):
    await mine.recv()
    await other.send(1)


def make_cycle():
    a, b = Chan(), Chan()
    go(swap, a, b)
    go(swap, b, a)


@pytest.mark.timeout(30)
def test_cycle(rt):
    """Two goroutines each waiting on a channel only the other holds: each
    could wake the other, but nothing alive can start it - both leaked."""
    async def main():
        make_cycle()
        await wait_parked(2)
        return names(find_leaks())

    assert rt.run(main) == [("swap", "chan receive"), ("swap", "chan receive")]


async def relay(src, dst):
    await dst.send(await src.recv())


@pytest.mark.timeout(30)
def test_chain(rt):
    """relay waits on b and holds a, recv_forever waits on a: with b held
    by a global, both can be woken; with b forgotten, both are leaked."""
    async def main():
        a, b = Chan(), Chan()
        HELD.append(b)
        go(relay, b, a)
        go(recv_forever, a)
        c, d = Chan(), Chan()
        go(relay, d, c)
        go(recv_forever, c)
        del a, b, c, d
        await wait_parked(4)
        found = names(find_leaks())
        await HELD.pop().send(1)         # the live chain ends
        await wait_until(lambda: alive(recv_forever) == 1)
        return found

    try:
        assert rt.run(main) == [("recv_forever", "chan receive"), ("relay", "chan receive")]
    finally:
        HELD.clear()


@pytest.mark.timeout(30)
def test_sync_goroutines():
    """A sync goroutine parked in a blocking_* call on a forgotten channel
    is leaked; one whose local variable holds a channel and who waits on a
    live WaitGroup keeps that channel's receiver live. find_leaks works
    from a sync goroutine (here main)."""
    def blocking_recv(ch):
        ch.blocking_recv()

    def holder(wg):
        ch = Chan()
        go(recv_forever, ch)
        wg.blocking_wait()
        ch.close()

    def main():
        go(blocking_recv, Chan())
        wg = WaitGroup()
        wg.add(1)
        go(holder, wg)
        deadline = time.monotonic() + 10
        while gocore._testhooks.parked() < 3:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        found = names(find_leaks())
        wg.done()
        return found

    for procs in (1, 2):
        gocore.gomaxprocs(procs)
        assert gocore.run(main) == [("blocking_recv", "chan receive")]


# ---------------------------------------------------------------- not found: something alive holds it

@pytest.mark.timeout(30)
def test_held_by_a_module_global(rt):
    async def main():
        ch = Chan()
        HELD.append(ch)
        go(recv_forever, ch)
        del ch
        forget_receiver()
        await wait_parked(2)
        found = names(find_leaks())
        HELD.pop().close()
        return found

    try:
        assert rt.run(main) == [("recv_forever", "chan receive")]     # the forgotten one only
    finally:
        HELD.clear()


def start_spinner(ch, stop):
    async def spin():                    # runnable or running until told to stop
        while not stop:
            await gosched()
        ch.close()
    go(spin)


@pytest.mark.timeout(30)
def test_held_by_a_runnable_goroutines_closure(rt):
    async def main():
        ch = Chan()
        go(recv_forever, ch)
        stop = []
        start_spinner(ch, stop)
        del ch
        await wait_parked(1, fn=recv_forever)
        found = names(find_leaks())
        stop.append(1)
        await wait_until(lambda: alive(recv_forever) == 0)
        return found

    assert rt.run(main) == []


@pytest.mark.timeout(30)
def test_held_by_a_plain_threads_local_variable(rt):
    """While the thread runs, its local `ch` can still close the channel;
    once the thread has returned without doing so, the receiver is leaked."""
    def thread_body(ready, stop, close):
        ch = Chan()
        go(recv_forever, ch)
        ready.set()
        stop.wait(10)
        if close:
            ch.close()

    async def main():
        out = []
        for close in (True, False):
            ready, stop = threading.Event(), threading.Event()
            t = threading.Thread(target=thread_body, args=(ready, stop, close))
            t.start()
            await wait_until(ready.is_set)
            await wait_parked(1, fn=recv_forever)
            out.append(names(find_leaks()))
            stop.set()
            await wait_until(lambda: not t.is_alive())
            out.append(names(find_leaks()))
        return out

    assert rt.run(main) == [[], [], [], [("recv_forever", "chan receive")]]


class SignalHolder:
    """A Python signal handler (a bound method) that owns a channel."""

    def arm(self):
        self.ch = Chan()
        go(recv_forever, self.ch)

    def fire(self, signum, frame):
        self.ch.close()


@pytest.mark.timeout(30)
def test_held_by_a_signal_handler(rt):
    """Only the SIGUSR1 handler holds the channel: a signal can still
    close it, so its receiver is not leaked."""
    def holder():
        return signal.getsignal(signal.SIGUSR1).__self__

    async def main():
        holder().arm()
        await wait_parked(1, fn=recv_forever)
        found = names(find_leaks())
        holder().fire(signal.SIGUSR1, None)
        await wait_until(lambda: alive(recv_forever) == 0)
        return found

    old = signal.signal(signal.SIGUSR1, SignalHolder().fire)
    try:
        assert rt.run(main) == []
    finally:
        signal.signal(signal.SIGUSR1, old)


async def select_with_timer(a, t):
    await select(a.recv, t.recv)


@pytest.mark.timeout(30)
def test_held_by_a_pending_timer(rt):
    """select on a forgotten channel and after(10): the timer will send, so
    not leaked; the same with a stopped timer's channel is."""
    async def main():
        go(select_with_timer, Chan(), after(10))
        t = Timer(10)
        t.stop()
        go(select_with_timer, Chan(), t.c)
        del t
        await wait_parked(2, reason="select")
        return names(find_leaks())

    assert rt.run(main) == [("select_with_timer", "select")]


async def io_then_close(sock, ch):
    await wait_readable(sock)
    ch.close()


def start_io_waiter(sock):
    ch = Chan()
    go(recv_forever, ch)
    go(io_then_close, sock, ch)


@pytest.mark.timeout(30)
def test_held_by_a_goroutine_waiting_on_io(rt):
    a, b = socket.socketpair()
    try:
        async def main():
            start_io_waiter(a)
            await wait_parked(2)
            found = names(find_leaks())
            b.send(b"!")                 # the I/O waiter wakes and closes the channel
            await wait_until(lambda: alive(recv_forever) == 0)
            return found

        assert rt.run(main) == []
    finally:
        a.close()
        b.close()


async def send_to(out, v):
    await out.send(v)


@pytest.mark.timeout(30)
def test_value_in_flight_to_a_live_receiver(rt):
    """A parked sender on a held channel carries a channel another
    goroutine waits on: a live receiver can take it, so neither leaks."""
    async def main():
        out = Chan()
        HELD.append(out)
        ch = Chan()
        go(recv_forever, ch)
        go(send_to, out, ch)
        del ch, out
        await wait_parked(2)
        found = names(find_leaks())
        (await HELD.pop().recv()).close()
        return found

    try:
        assert rt.run(main) == []
    finally:
        HELD.clear()


@pytest.mark.timeout(30)
def test_sleeping_goroutine_is_live_and_its_channel_too(rt):
    """A sleeping goroutine will run again: what it holds is live."""
    async def sleeper(ch):
        await sleep(0.3)
        ch.close()

    async def main():
        ch = Chan()
        go(recv_forever, ch)
        go(sleeper, ch)
        del ch
        await wait_parked(2)
        found = names(find_leaks())
        await wait_until(lambda: alive(recv_forever) == 0)
        return found

    assert rt.run(main) == []


@pytest.mark.timeout(60)
def test_many_goroutines(rt):
    """2,000 parked goroutines, 200 of them on forgotten channels: exactly
    those 200 are reported."""
    async def main():
        kept = [Chan() for _ in range(1800)]
        for ch in kept:
            go(recv_forever, ch)
        for _ in range(200):
            forget_receiver()
        await wait_parked(2000)
        found = find_leaks()
        for ch in kept:
            ch.close()
        return len(found), {g.state for g in found}

    assert rt.run(main) == (200, {"chan receive"})


# ---------------------------------------------------------------- where it may be called

@pytest.mark.timeout(30)
def test_no_runtime_no_goroutines():
    assert find_leaks() == []


@pytest.mark.skipif(not FREE_THREADED, reason="a free-threaded build with the GIL disabled")
@pytest.mark.timeout(30)
def test_free_threaded_without_gil_refuses():
    async def main():
        with pytest.raises(RuntimeError, match="needs the GIL"):
            find_leaks()

    gocore.run(main)


BACKGROUND = """
import gocore, gocore._testhooks, time
from gocore import Chan, go
from gocore.testing import find_leaks

async def recv_forever(ch):
    await ch.recv()

def forget():
    go(recv_forever, Chan())

held = Chan()
go(recv_forever, held)          # the runtime starts in the background
forget()
deadline = time.monotonic() + 10
while gocore._testhooks.parked() < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
leaks = find_leaks()
print(len(leaks), leaks[0].state, leaks[0].frames[-1].code.co_name)
held.close()
"""


@pytest.mark.timeout(60)
def test_background_runtime_from_the_main_thread():
    """Outside run(), with the runtime go() started in the background: the
    main thread's variables are roots (`held`), the forgotten one leaks."""
    env = dict(os.environ, PYTHONPATH=str(Path(gocore.__file__).resolve().parent.parent))
    env.pop("GOCORE_MAXPROCS", None)
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(BACKGROUND)],
                       capture_output=True, text=True, timeout=50, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1 chan receive recv_forever"


@pytest.mark.timeout(30)
def test_format_leaks_prints_the_creation_site_when_recorded():
    """A record with a `created_by` (the dump's creation site, once records
    carry it) gets it printed after the stack."""
    from gocore._debug import GoroutineRecord

    if "created_by" in GoroutineRecord._fields:
        pytest.skip("the dump prints the creation site itself (tests/test_dump.py)")

    class Rec(GoroutineRecord):
        pass

    r = Rec(7, "async", "chan receive", 0, False, False, [], None, False)
    assert format_leaks([r]) == "goroutine 7 [chan receive]:\n"
    r.created_by = "main in goroutine 1\n        /app/x.py:3"
    assert format_leaks([r]) == ("goroutine 7 [chan receive]:\n"
                                 "  created by main in goroutine 1\n        /app/x.py:3\n")


async def churn_worker(c, done):
    await c.recv()
    done.append(1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cap", (0, 4))
def test_no_false_positive_under_churn(rt, cap):
    """Channels in flight: a producer makes a channel, starts a worker
    parked on it and sends the channel through `pipe` to a consumer, which
    wakes the worker. At every moment something alive holds each channel
    (a local, a pipe's buffer, a parked sender's value), so while the
    goroutines run, no worker may ever be reported - by find_leaks()
    called from a goroutine and from a plain thread, 30 scans or more
    interleaved with the churn."""
    SCANS = 30
    reported = []
    scans = []
    done = []
    made = []
    stop = threading.Event()

    def thread_checker():
        while not stop.is_set():
            reported.extend(g.goid for g in find_leaks())
            scans.append(1)
            time.sleep(0.001)

    async def producer(pipe):
        while len(scans) < SCANS or len(made) < 100:
            c = Chan()
            go(churn_worker, c, done)
            made.append(1)
            await pipe.send(c)
            del c
        pipe.close()

    async def consumer(pipe):
        async for c in pipe:
            await c.send(1)

    async def checker():
        while len(scans) < SCANS:
            reported.extend(g.goid for g in find_leaks())
            scans.append(1)
            await gosched()

    async def main():
        pipe = Chan(cap)
        t = threading.Thread(target=thread_checker)
        t.start()
        try:
            go(producer, pipe)
            go(consumer, pipe)
            del pipe
            go(checker)
            await wait_until(lambda: len(scans) >= SCANS and len(done) == len(made), timeout=40)
        finally:
            stop.set()
            t.join()

    rt.run(main)
    assert reported == []
    assert len(made) >= 100
