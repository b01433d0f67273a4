"""Goroutine dumps (issue 7): dump_goroutines(), the dump DeadlockError
carries, and gocore.debug.dump_on_signal().

Go's format: `goroutine N [wait reason]:` (`, M minutes` once parked for a
minute or more), then the goroutine's stack, innermost call first. Every
primitive that parks a goroutine is checked for its wait reason and for a
stack that names the function parked in it (the line marked `# parks`).
"""
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import gocore
import gocore.debug
from gocore import (Chan, DeadlockError, Mutex, Once, RWMutex, Semaphore, WaitGroup,
                    blocking_select, go, nilchan, select, sleep)
from gocore import _debug

from conftest import FREE_THREADED, popen_prog, run_prog, wait_until
from gocore._testhooks import wait_blocked, wait_parked

HEAD = re.compile(r"goroutine (\d+) \[([^\]]*)\]:( \(main\))?")
FRAME = re.compile(r"  (\S+)\(\.\.\.\)(  \((?:not started|running on another thread; stack unavailable)\))?")
WHERE = re.compile(r"        (.+):(\d+)")
CREATED = re.compile(r"  created by (\S+)(?: in goroutine (\d+))?")
WAITLINE = re.compile(r"  waiting (on .+|in select on:)|    (recv|send) (chan 0x[0-9a-f]+ \(.+|nil chan)")
# after the entry point of a goroutine running on another thread (no GIL)
UNAVAILABLE = "  (running on another thread; stack unavailable)"

with open(__file__) as _f:
    PARK_LINES = {i for i, line in enumerate(_f, 1) if line.rstrip().endswith("# parks")}


def parse(dump):
    """[{goid, state, main, frames: [(name, file, line)], created: (name,
    file, line, parent goid or 0) or None, wait: [lines]}] of a dump, each
    block checked to be well formed: the header, the frames, then the
    optional `created by` pair and `waiting` lines."""
    blocks = []
    for text in dump.split("\n\n"):
        if not text.strip():
            continue
        lines = text.rstrip("\n").split("\n")
        m = HEAD.fullmatch(lines[0])
        assert m, f"bad header {lines[0]!r} in\n{dump}"
        unavailable = False
        frames = []
        created = None
        i = 1
        while i < len(lines) and not lines[i].startswith(("  created by ", "  waiting ")):
            f = FRAME.fullmatch(lines[i])
            w = WHERE.fullmatch(lines[i + 1]) if i + 1 < len(lines) else None
            assert f and w, f"bad frame lines {lines[i:i + 2]!r} in\n{dump}"
            frames.append((f.group(1), w.group(1), int(w.group(2))))
            unavailable |= f.group(2) == UNAVAILABLE
            i += 2
        if i < len(lines) and lines[i].startswith("  created by "):
            c = CREATED.fullmatch(lines[i])
            w = WHERE.fullmatch(lines[i + 1]) if i + 1 < len(lines) else None
            assert c and w, f"bad created-by lines {lines[i:i + 2]!r} in\n{dump}"
            created = (c.group(1), w.group(1), int(w.group(2)), int(c.group(2) or 0))
            i += 2
        wait = lines[i:]
        assert all(WAITLINE.fullmatch(x) for x in wait), f"bad wait lines {wait!r} in\n{dump}"
        blocks.append({"goid": int(m.group(1)), "state": m.group(2), "main": bool(m.group(3)),
                       "frames": frames, "unavailable": unavailable, "created": created,
                       "wait": wait})
    return blocks


async def poll_until(pred, timeout=20.0):
    """wait_until, but sleeping between polls rather than yielding: main
    then leaves its P idle, and that P's M steals the goroutines queued
    behind a sync goroutine that keeps its own P (sync_time_sleep). The
    failure message has the last dump."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s: {pred}\n"
                                 f"{gocore.dump_goroutines()}")
        await sleep(0.002)


def block_of(blocks, fn_name):
    """The one block whose stack has fn_name."""
    found = [b for b in blocks if any(name == fn_name for name, _, _ in b["frames"])]
    assert len(found) == 1, f"{fn_name}: {len(found)} goroutines in {blocks}"
    return found[0]


def assert_parked_in(block, fn_name):
    """The innermost frame of this file is fn_name's `# parks` line."""
    here = [fr for fr in block["frames"] if fr[1] == __file__]
    assert here and here[0][0] == fn_name and here[0][2] in PARK_LINES, block


@contextlib.contextmanager
def procs(n):
    saved = gocore.gomaxprocs()
    gocore.gomaxprocs(n)
    try:
        yield
    finally:
        gocore.gomaxprocs(saved)


# ---------------------------------------------------------------- every wait reason

async def parked_recv(c):
    await c.recv()  # parks


async def parked_send(c):
    await c.send(1)  # parks


async def parked_range(c):
    async for _ in c:  # parks
        pass


async def parked_select(a, b):
    await select(a.recv, (b.send, 1))  # parks


async def parked_sleep():
    await sleep(60)  # parks


async def parked_mutex(m):
    await m.lock()  # parks


async def parked_rlock(rw):
    await rw.rlock()  # parks


async def parked_wlock(rw):
    await rw.lock()  # parks


async def parked_waitgroup(wg):
    await wg.wait()  # parks


async def parked_semaphore(sem):
    await sem.acquire(2)  # parks


async def once_body(gate):
    await gate.recv()  # parks


async def once_first(once, gate):
    await once.do(lambda: once_body(gate))


async def parked_once(once):
    await once.do(lambda: None)  # parks


async def parked_nil_recv():
    await nilchan.recv()  # parks


async def parked_nil_send():
    await nilchan.send(1)  # parks


async def inner_helper(c):
    await c.recv()  # parks


async def parked_nested(c):
    await inner_helper(c)


def sync_recv(c):
    c.blocking_recv()  # parks


def sync_send(c):
    c.blocking_send(1)  # parks


def sync_select(a, b):
    blocking_select(a.recv, b.recv)  # parks


def sync_mutex(m):
    with m:  # parks
        pass


def sync_waitgroup(wg):
    wg.blocking_wait()  # parks


def sync_semaphore(sem):
    sem.blocking_acquire(2)  # parks


def sync_nil_recv():
    nilchan.blocking_recv()  # parks


def sync_time_sleep(stop):
    # Waits outside gocore (shown as [syscall]) in short steps: main's
    # timers must keep firing while this M keeps re-entering Python
    # (a liveness bug once, see docs/testing.md).
    while not stop.is_set():
        time.sleep(0.005)


EXPECTED = {
    "parked_recv": "chan receive",
    "parked_send": "chan send",
    "parked_range": "chan receive",
    "parked_select": "select",
    "parked_sleep": "sleep",
    "parked_mutex": "sync.Mutex.Lock",
    "parked_rlock": "sync.RWMutex.RLock",
    "parked_wlock": "sync.RWMutex.Lock",
    "parked_waitgroup": "sync.WaitGroup.Wait",
    "parked_semaphore": "semacquire",
    "once_body": "chan receive",          # the first once.do caller, inside fn
    "parked_once": "sync.Once.Do",        # a second caller waits for the first
    "parked_nil_recv": "chan receive (nil chan)",
    "parked_nil_send": "chan send (nil chan)",
    "inner_helper": "chan receive",
    "sync_recv": "chan receive",
    "sync_send": "chan send",
    "sync_select": "select",
    "sync_mutex": "sync.Mutex.Lock",
    "sync_waitgroup": "sync.WaitGroup.Wait",
    "sync_semaphore": "semacquire",
    "sync_nil_recv": "chan receive (nil chan)",
    "sync_time_sleep": "syscall",         # inside a call outside gocore
}


@pytest.mark.timeout(60)
def test_every_wait_reason_and_stack(rt):
    """Goroutines parked in each primitive (async and sync) show Go's wait
    reason and a stack whose innermost frame of ours is the parking line."""
    stop = threading.Event()
    seen = {}

    async def main():
        mu, rw_w, rw_r = Mutex(), RWMutex(), RWMutex()
        await mu.lock()
        await rw_w.lock()            # readers wait
        await rw_r.rlock()           # a writer waits
        wg = WaitGroup()
        wg.add(1)
        sem = Semaphore(2)
        await sem.acquire(2)
        once, gate = Once(), Chan()
        for fn, args in [(parked_recv, (Chan(),)), (parked_send, (Chan(),)),
                         (parked_range, (Chan(),)), (parked_select, (Chan(), Chan())),
                         (parked_sleep, ()), (parked_mutex, (mu,)), (parked_rlock, (rw_w,)),
                         (parked_wlock, (rw_r,)), (parked_waitgroup, (wg,)),
                         (parked_semaphore, (sem,)), (once_first, (once, gate)),
                         (parked_nil_recv, ()), (parked_nil_send, ()),
                         (parked_nested, (Chan(),)),
                         (sync_recv, (Chan(),)), (sync_send, (Chan(),)),
                         (sync_select, (Chan(), Chan())), (sync_mutex, (mu,)),
                         (sync_waitgroup, (wg,)), (sync_semaphore, (sem,)),
                         (sync_nil_recv, ()), (sync_time_sleep, (stop,))]:
            go(fn, *args)
        await poll_until(lambda: "once_body" in gocore.dump_goroutines())
        go(parked_once, once)

        def all_parked():
            blocks = parse(gocore.dump_goroutines())
            for name, state in EXPECTED.items():
                found = [b for b in blocks if any(f[0] == name for f in b["frames"])]
                if len(found) != 1 or found[0]["state"] != state:
                    return False
            seen["blocks"] = blocks
            return True

        await poll_until(all_parked)
        seen["main_blocks"] = parse(gocore.dump_goroutines())
        stop.set()
        gate.close()        # the rest is closed by run() as main returns

    try:
        rt.run(main)
    finally:
        stop.set()      # even if main failed: a sleeper left running fails every later test
    blocks = seen["blocks"]
    for name, state in EXPECTED.items():
        b = block_of(blocks, name)
        assert b["state"] == state, (name, b)
        if name == "sync_time_sleep":     # between two sleeps now and then
            assert b["frames"][0][0] == name, b
        else:
            assert_parked_in(b, name)
    assert [f[0] for f in block_of(blocks, "inner_helper")["frames"]] == \
        ["inner_helper", "parked_nested"]          # innermost first, whole chain
    once_chain = [f[0] for f in block_of(blocks, "once_body")["frames"]]
    assert once_chain[0] == "once_body" and once_chain[-1] == "once_first", once_chain
    main_block = [b for b in seen["main_blocks"] if b["main"]]
    assert len(main_block) == 1 and main_block[0]["state"] == "running"
    assert main_block[0]["frames"][0][0].endswith("main")
    # the main goroutine's stack ends at main: nothing of pytest below it
    assert all(f[1] == __file__ for f in main_block[0]["frames"]), main_block


@pytest.mark.timeout(30)
def test_not_started_goroutine_is_runnable():
    """A goroutine that has not run yet: [runnable] and where its function
    begins (Go prints the function's entry)."""
    out = {}

    async def fresh():
        pass

    async def main():
        go(fresh)
        out["dump"] = gocore.dump_goroutines()     # no await: fresh cannot have run

    with procs(1):
        gocore.run(main)
    b = block_of(parse(out["dump"]), "test_not_started_goroutine_is_runnable.<locals>.fresh")
    assert b["state"] == "runnable"
    assert "(not started)" in out["dump"]
    assert b["frames"][0][1:] == (__file__, fresh.__code__.co_firstlineno)


def test_dump_outside_run_is_empty_without_goroutines():
    assert gocore.dump_goroutines() == ""


@pytest.mark.parametrize("waited, shown", [
    (0.0, "chan receive"), (59.9, "chan receive"), (60.0, "chan receive, 1 minutes"),
    (3725.0, "chan receive, 62 minutes")])
def test_minutes_waiting(monkeypatch, waited, shown):
    """Go adds `, N minutes` to a goroutine parked for one minute or more
    (and writes `1 minutes`). The runtime's snapshot is faked here: nobody
    waits a minute in a test."""
    async def slow():
        pass

    info = [(7, "async", "waiting", "chan receive", waited, None, slow, False, 0, False),
            (8, "async", "runnable", "runnable", 0.0, None, slow, False, 0, False)]
    monkeypatch.setattr(_debug._sched, "_goroutine_info", lambda extra=False: info)
    blocks = parse(gocore.dump_goroutines())
    assert [(b["goid"], b["state"]) for b in blocks] == [(7, shown), (8, "runnable")]


# ---------------------------------------------------------------- DeadlockError

async def forgotten(c):
    await c.recv()  # parks


@pytest.mark.timeout(30)
def test_deadlock_error_carries_the_dump(rt):
    """DeadlockError.dump is the dump taken where it was raised: main (the
    raiser, running) and every goroutine found asleep; a note shows it in
    tracebacks, as Go prints the goroutines at `all goroutines are asleep`."""
    async def main():
        go(forgotten, Chan())
        await wait_parked(1, fn=forgotten)
        try:
            await Chan().send(1)
        except DeadlockError as e:
            return e

    e = rt.run(main)
    assert str(e) == "all goroutines are asleep - deadlock!"
    blocks = parse(e.dump)
    assert len(blocks) == 2
    b = block_of(blocks, "forgotten")
    assert b["state"] == "chan receive"
    assert_parked_in(b, "forgotten")
    main_block = [b for b in blocks if b["main"]][0]
    assert main_block["frames"][0][0] == "test_deadlock_error_carries_the_dump.<locals>.main"
    assert e.__notes__ == [e.dump.rstrip("\n")]


@pytest.mark.timeout(60)
def test_deadlock_note_is_capped_dump_is_not():
    """Thousands of goroutines asleep: the traceback note shows the first
    50, `.dump` has them all."""
    n = 60

    async def main():
        c = Chan()
        for _ in range(n):
            go(forgotten, c)
        await wait_blocked(c, recv=n)
        try:
            await Chan().recv()
        except DeadlockError as e:
            return e

    with procs(1):
        e = gocore.run(main)
    assert len(parse(e.dump)) == n + 1
    note = e.__notes__[0]
    assert len(re.findall(r"^goroutine \d+ \[", note, re.M)) == 50
    assert note.endswith(f"... and {n + 1 - 50} more goroutines (the exception's .dump lists them all)")


@pytest.mark.timeout(30)
def test_deadlock_outside_run_dump():
    """The main thread's blocking call (no run()) deadlocks: the dump lists
    the goroutines found asleep."""
    r = run_prog("dump_hung.py", "deadlock", timeout=20)
    assert r.returncode == 0, r.stderr
    b = block_of(parse(r.stdout), "stuck_receiver")
    assert b["state"] == "chan receive"


@pytest.mark.timeout(30)
def test_uncaught_deadlock_traceback_shows_the_goroutines():
    r = run_prog("deadlock_norun.py", "uncaught", timeout=20)
    assert r.returncode == 1
    tail = r.stderr.split("DeadlockError: all goroutines are asleep - deadlock!\n", 1)[1]
    assert tail.startswith("goroutine "), r.stderr
    assert block_of(parse(tail), "main")["main"]


# ---------------------------------------------------------------- dump_on_signal

@pytest.fixture
def restore_signals():
    """Put SIGUSR1/SIGUSR2 back as they were (and forget our handlers)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    yield
    for s, h in saved.items():
        signal.signal(s, h if h is not None else signal.SIG_DFL)
        gocore.debug._installed.pop(s, None)


@pytest.mark.timeout(30)
def test_dump_on_signal_in_run(rt, restore_signals):
    """SIGUSR1 during run() writes the dump: the goroutine the main thread
    was running shows [running] with the interrupted stack. At gomaxprocs 2
    main may run on another M while M0 idles: M0 must still wake for it."""
    buf = io.StringIO()
    gocore.debug.dump_on_signal(file=buf)

    async def main():
        go(forgotten, Chan())
        await wait_parked(1, fn=forgotten)
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_until(lambda: buf.getvalue())

    rt.run(main)
    text = buf.getvalue()
    assert text.startswith("SIGUSR1: goroutine dump\n\n"), text
    blocks = parse(text.split("\n\n", 1)[1])
    assert block_of(blocks, "forgotten")["state"] == "chan receive"
    assert [b["main"] for b in blocks].count(True) == 1


@pytest.mark.timeout(60)
def test_dump_while_goroutines_run_on_other_threads():
    """Dumps taken again and again while goroutines park, wake and run on
    the other M and on sync goroutines' threads. Without a GIL, reading a
    goroutine's frames while it runs crashed CPython (a segfault inside the
    frame code, about one run in two on 3.13t): a running goroutine is
    shown without a stack there, and the others cannot resume mid-read."""
    stop = Chan()
    done = WaitGroup()

    async def nested(depth, a, b):
        if depth:
            return await nested(depth - 1, a, b)
        sum(range(200))           # running Python, not parked, on the other M
        i, _ = await gocore.select(stop.recv, (a.send, 1))
        if i == 0:
            return False
        await b.recv()
        return True

    async def pinger(a, b):
        while await nested(8, a, b):
            pass

    async def ponger(a, b):
        while True:
            i, _ = await gocore.select(stop.recv, a.recv)
            if i == 0:
                return
            await b.send(1)

    def sync_worker(c):
        while True:
            i, _ = gocore.blocking_select(stop.recv, (c.send, 1))
            if i == 0:
                return

    async def sync_drain(c):
        while True:
            i, _ = await gocore.select(stop.recv, c.recv)
            if i == 0:
                return

    async def main():
        for _ in range(4):
            a, b = Chan(), Chan()
            done.go(pinger, a, b)
            done.go(ponger, a, b)
        for _ in range(2):
            c = Chan(4)
            done.go(sync_worker, c)
            done.go(sync_drain, c)
        unavailable = 0
        for _ in range(1000):
            blocks = parse(gocore.dump_goroutines())
            assert len(blocks) == 1 + 4 * 2 + 2 * 2, blocks
            unavailable += sum(b["unavailable"] for b in blocks)
            await gocore.gosched()
        stop.close()
        await done.wait()
        if not FREE_THREADED:
            assert unavailable == 0

    gocore.gomaxprocs(2)
    gocore.run(main)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("install", ["before run", "inside run"])
def test_signal_handler_runs_while_main_thread_looks_for_work(install, restore_signals):
    """A signal with a Python handler, sent while the main goroutine runs on
    another M: the main thread (M0, the only one that takes signals) may be
    between waits then, looking for work in C code, not in a wait a signal
    interrupts. Its handler must still run at once, not when M0 next happens
    to wake. Without the fix one round in a few hundred was lost.
    "inside run": gocore.debug.dump_on_signal() called while run() runs."""
    seen = []
    rounds = 400
    gil_build = not FREE_THREADED

    class Dumps:
        def write(self, text):
            if text.startswith("SIGUSR2: goroutine dump"):
                seen.append(text)

        def flush(self):
            pass

    def count():
        return len(seen)

    if install == "before run":
        signal.signal(signal.SIGUSR2, lambda s, f: seen.append(s))

    async def short():
        for _ in range(5):
            await gocore.gosched()

    async def main():
        if install == "inside run":
            # signal.signal() works on the main thread only, and main may
            # start on another M (free-threaded builds wake one at once)
            for _ in range(2000):
                if threading.current_thread() is threading.main_thread():
                    break
                await gocore.sleep(0.001)
            else:
                pytest.skip("main never ran on the main thread")
            gocore.debug.dump_on_signal(signal.SIGUSR2, file=Dumps())
        on_other_m = 0
        for i in range(rounds):
            for _ in range(20 if gil_build else 0):
                if gocore._sched._current_m() != -1:
                    break
                # block M0 in a foreign call: sysmon hands the P to another
                # M, which picks main up after its gosched (on free-threaded
                # builds sysmon leaves it, and go() below wakes an M anyway)
                time.sleep(0.015)
                await gocore.gosched()
            on_other_m += gocore._sched._current_m() != -1
            go(short)
            go(short)          # M0 wakes and looks for work meanwhile
            await gocore.gosched()
            os.kill(os.getpid(), signal.SIGUSR2)
            await wait_until(lambda: count() > i, timeout=2.0)
        if gil_build:
            assert on_other_m > rounds // 2, on_other_m

    gocore.gomaxprocs(2)
    gocore.run(main)
    assert count() == rounds
    # after run() the handler is Python's own again, and still works
    os.kill(os.getpid(), signal.SIGUSR2)
    assert count() == rounds + 1


@pytest.mark.timeout(30)
def test_dump_on_signal_writes_to_stderr_by_default(capsys, restore_signals):
    """Default file: sys.stderr when the signal comes. Outside run(), the
    main thread is no goroutine: its stack follows the goroutines."""
    gocore.debug.dump_on_signal(signal.SIGUSR2)
    os.kill(os.getpid(), signal.SIGUSR2)
    time.sleep(0.01)          # the handler runs at the next bytecode boundary
    err = capsys.readouterr().err
    assert err.startswith("SIGUSR2: goroutine dump\n\nmain thread (not a goroutine):\n"), err
    assert "test_dump_on_signal_writes_to_stderr_by_default(...)" in err


@pytest.mark.timeout(30)
def test_undo_dump_on_signal(restore_signals):
    def mine(signum, frame):
        pass

    signal.signal(signal.SIGUSR2, mine)
    assert gocore.debug.dump_on_signal(signal.SIGUSR2) is mine      # the replaced handler
    ours = signal.getsignal(signal.SIGUSR2)
    assert ours is not mine
    assert gocore.debug.dump_on_signal(signal.SIGUSR2) is mine      # a second install replaces ours
    assert gocore.debug.undo_dump_on_signal(signal.SIGUSR2) is True
    assert signal.getsignal(signal.SIGUSR2) is mine
    assert gocore.debug.undo_dump_on_signal(signal.SIGUSR2) is False
    # replaced by someone else since: left alone
    gocore.debug.dump_on_signal(signal.SIGUSR2)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    assert gocore.debug.undo_dump_on_signal(signal.SIGUSR2) is False
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN


@pytest.mark.timeout(30)
def test_dump_on_signal_chain(restore_signals):
    calls = []
    signal.signal(signal.SIGUSR2, lambda s, f: calls.append(s))
    buf = io.StringIO()
    gocore.debug.dump_on_signal(signal.SIGUSR2, file=buf, chain=True)
    os.kill(os.getpid(), signal.SIGUSR2)
    time.sleep(0.01)
    assert calls == [signal.SIGUSR2] and buf.getvalue().startswith("SIGUSR2: goroutine dump")


@pytest.mark.parametrize("sig, exc", [
    ("SIGUSR1", TypeError), (1.5, TypeError), (True, TypeError), (None, TypeError),
    (0, ValueError), (99999, ValueError), (-3, ValueError),
    (signal.SIGKILL, ValueError), (signal.SIGSTOP, ValueError)])
def test_dump_on_signal_bad_input(sig, exc, restore_signals):
    with pytest.raises(exc, match="dump_on_signal"):
        gocore.debug.dump_on_signal(sig)
    with pytest.raises(exc, match="dump_on_signal"):
        gocore.debug.undo_dump_on_signal(sig)


def test_dump_on_signal_bad_file_and_thread(restore_signals):
    with pytest.raises(TypeError, match="text stream"):
        gocore.debug.dump_on_signal(file=42)
    errors = []

    def other_thread():
        try:
            gocore.debug.dump_on_signal()
        except ValueError as e:
            errors.append(e)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert errors and "main thread" in str(errors[0])


def read_until(proc, needles, timeout=20.0):
    """proc's stderr until every needle is in it (a reader thread: no
    blocking read without a timeout)."""
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = "".join(chunks)
        if all(n in text for n in needles):
            return text
        time.sleep(0.02)
    raise AssertionError(f"no {needles} in stderr within {timeout}s: {''.join(chunks)!r}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["run", "norun"])
def test_hung_program_dumps_on_sigusr1(mode):
    """A program stuck waiting (in run(): main parked, a sync goroutine in
    time.sleep; without run(): the main thread in blocking_select) answers
    SIGUSR1 at once with its goroutines."""
    proc = popen_prog("dump_hung.py", mode)
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.1)
        proc.send_signal(signal.SIGUSR1)
        if mode == "run":
            text = read_until(proc, ["stuck_sleeper(...)", "main(...)"])
            blocks = parse(text.split("\n\n", 1)[1])
            # [running] if the signal interrupted its time.sleep on the main thread
            assert block_of(blocks, "stuck_sleeper")["state"] in ("syscall", "running")
            assert block_of(blocks, "main")["state"] == "chan receive"
        else:
            text = read_until(proc, ["stuck_receiver(...)", "main thread (not a goroutine):\n  <module>"])
            goroutines = text.split("\n\n", 1)[1].split("main thread")[0]
            assert block_of(parse(goroutines), "stuck_receiver")["state"] == "chan receive"
        assert proc.poll() is None          # still running: the dump does not end it
    finally:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["interrupt-run", "interrupt-norun"])
def test_parked_main_thread_runs_signal_handlers_at_once(mode):
    """Python runs handlers on the main thread only: parked in gocore (M0
    idle in run(), or a blocking_* call without run()), it must wake for
    them, and a handler's exception ends the wait (the channel stays
    usable). Before, both waited until the 5 s wait ended by itself."""
    r = run_prog("dump_hung.py", mode, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    m = re.fullmatch(r"interrupted after ([\d.]+)s", lines[0])
    assert m and float(m.group(1)) < 2.5, r.stdout
    if mode == "interrupt-norun":
        assert lines[1:] == ["still works"]


# ---------------------------------------------------------------- creation site (issue 19)

def go_line(tag):
    """The line of this file that ends with `# go here: <tag>`."""
    with open(__file__) as f:
        found = [i for i, line in enumerate(f, 1) if line.rstrip().endswith(f"# go here: {tag}")]
    assert len(found) == 1, (tag, found)
    return found[0]


async def created_child(c):
    await c.recv()  # parks


def created_sync_child(c):
    c.blocking_recv()  # parks


async def created_spawner(c, done):
    go(created_child, c)  # go here: from a goroutine
    await done.send(gocore._sched._current_goid())


@pytest.mark.timeout(30)
def test_created_by_names_the_go_call(rt):
    """Each goroutine's block ends with Go's `created by <function> in
    goroutine <N>` and the file:line of the go() call: main's own go(), a
    goroutine's go() (its id as the parent), a sync goroutine's."""
    out = {}

    async def main():
        c, done = Chan(), Chan()
        go(created_sync_child, c)  # go here: sync
        go(created_spawner, c, done)  # go here: spawner
        out["spawner"] = await done.recv()
        await wait_parked(1, fn=created_child)
        await wait_blocked(c, recv=2)
        out["main"] = gocore._sched._current_goid()
        out["dump"] = gocore.dump_goroutines()
        c.close()

    rt.run(main)
    blocks = parse(out["dump"])
    qual = "test_created_by_names_the_go_call.<locals>.main"
    b = block_of(blocks, "created_sync_child")
    assert b["created"] == (qual, __file__, go_line("sync"), out["main"]), b
    b = block_of(blocks, "created_child")
    assert b["created"] == ("created_spawner", __file__, go_line("from a goroutine"),
                            out["spawner"]), b
    main_block = [b for b in blocks if b["main"]][0]
    assert main_block["created"] is None          # run() made it: no go() call


@pytest.mark.timeout(30)
def test_created_by_outside_run_has_no_parent():
    """go() from a plain thread (the background runtime): `created by` the
    calling function, with no `in goroutine N` (the caller is no goroutine)."""
    c = Chan()

    def spawn():
        go(created_child, c)  # go here: plain thread
    spawn()
    try:
        deadline = time.monotonic() + 20
        while True:
            found = [b for b in parse(gocore.dump_goroutines())
                     if any(f[0] == "created_child" for f in b["frames"])]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        assert len(found) == 1, found
        assert found[0]["created"] == ("test_created_by_outside_run_has_no_parent.<locals>.spawn",
                                       __file__, go_line("plain thread"), 0), found
    finally:
        c.close()


# ---------------------------------------------------------------- what each goroutine waits on (issue 19)

def chan_line(c, others_recv, others_send, prefix="  waiting on "):
    return (f"{prefix}chan {id(c):#x} (len {len(c)}, cap {c.cap}): "
            f"{others_recv} other receiver{'' if others_recv == 1 else 's'}, "
            f"{others_send} other sender{'' if others_send == 1 else 's'} waiting")


def blocks_of(blocks, fn_name):
    return [b for b in blocks if any(f[0] == fn_name for f in b["frames"])]


@pytest.mark.timeout(30)
def test_dump_shows_the_channel_and_its_waiters(rt):
    """Three receivers on one unbuffered channel: each names the channel
    (its id), len/cap, and the two *other* receivers; two senders on a full
    Chan(1): len 1, one other sender. A sync goroutine's blocking_recv
    shows its channel too."""
    out = {}

    async def main():
        a, b = Chan(), Chan(1)
        await b.send(0)
        for _ in range(3):
            go(parked_recv, a)
        go(sync_recv, a)
        for _ in range(2):
            go(parked_send, b)
        await wait_blocked(a, recv=4)
        await wait_blocked(b, send=2)
        out["dump"] = gocore.dump_goroutines()
        out["a"], out["b"] = chan_line(a, 3, 0), chan_line(b, 0, 1)
        a.close()
        await b.recv()
        await b.recv()

    rt.run(main)
    blocks = parse(out["dump"])
    recvs = blocks_of(blocks, "parked_recv") + blocks_of(blocks, "sync_recv")
    assert len(recvs) == 4
    for blk in recvs:
        assert blk["wait"] == [out["a"]], blk
    sends = blocks_of(blocks, "parked_send")
    assert len(sends) == 2
    for blk in sends:
        assert blk["wait"] == [out["b"]], blk
    main_block = [b for b in blocks if b["main"]][0]
    assert main_block["wait"] == []            # running: waits on nothing


@pytest.mark.timeout(30)
def test_dump_shows_each_select_case(rt):
    """A parked select lists each case's channel; a nil case shows `nil
    chan`; waiter counts leave the select itself out."""
    out = {}

    async def sel(a, b):
        await select(a.recv, (b.send, 1), nilchan.recv)  # parks

    async def main():
        a, b = Chan(), Chan(2)
        await b.send(1)
        await b.send(2)                        # full: the send case waits
        go(sel, a, b)
        go(parked_recv, a)
        await wait_blocked(a, recv=2)
        out["dump"] = gocore.dump_goroutines(format="json")
        out["text"] = gocore.dump_goroutines()
        out["lines"] = ["  waiting in select on:", chan_line(a, 1, 0, "    recv "),
                        chan_line(b, 0, 0, "    send "), "    recv nil chan"]
        a.close()
        await b.recv()

    rt.run(main)
    blk = block_of(parse(out["text"]), "test_dump_shows_each_select_case.<locals>.sel")
    assert blk["wait"] == out["lines"], blk
    recs = [g for g in json.loads(out["dump"]) if g["frames"] and g["frames"][0]["function"].endswith("sel")]
    assert len(recs) == 1
    cases = recs[0]["wait"]["cases"]
    assert [c["op"] for c in cases] == ["recv", "send", "recv"]
    assert cases[0]["receivers"] == 1 and cases[1]["len"] == 2 and cases[1]["cap"] == 2
    assert cases[2] == {"op": "recv", "id": "nil", "nil": True}


@pytest.mark.timeout(30)
def test_dump_shows_sync_primitive_state(rt):
    """Mutex (locked, waiters), RWMutex (readers, writer), WaitGroup
    (counter), Semaphore (available/size) and Once (running), as data."""
    out = {}

    async def main():
        mu, rw = Mutex(), RWMutex()
        await mu.lock()
        await rw.rlock()
        await rw.rlock()
        wg = WaitGroup()
        wg.add(3)
        sem = Semaphore(3)
        await sem.acquire(2)
        once, gate = Once(), Chan()
        go(parked_mutex, mu)
        go(sync_mutex, mu)
        go(parked_wlock, rw)
        go(parked_waitgroup, wg)
        go(parked_semaphore, sem)
        go(once_first, once, gate)
        await wait_parked(1, fn=once_first)       # inside fn: once_body's recv
        go(parked_once, once)
        for fn in (parked_wlock, parked_waitgroup, parked_semaphore, parked_once):
            await wait_parked(1, fn=fn)
        await poll_until(lambda: '"type": "Mutex"' in gocore.dump_goroutines(format="json")
                         and gocore.dump_goroutines().count("waiting on sync.Mutex") == 2)
        out["gs"] = json.loads(gocore.dump_goroutines(format="json"))
        out["ids"] = {k: f"{id(v):#x}" for k, v in
                      dict(mu=mu, rw=rw, wg=wg, sem=sem, once=once).items()}
        gate.close()
        mu.unlock()
        rw.runlock()
        rw.runlock()
        wg.add(-3)
        sem.release(2)

    rt.run(main)

    def wait_of(fn_name):
        found = [g["wait"] for g in out["gs"] if any(f["function"] == fn_name for f in g["frames"])]
        assert len(found) == 1, (fn_name, out["gs"])
        return found[0]

    ids = out["ids"]
    assert wait_of("parked_mutex") == {"type": "Mutex", "id": ids["mu"], "locked": True, "waiters": 1}
    assert wait_of("sync_mutex") == {"type": "Mutex", "id": ids["mu"], "locked": True, "waiters": 1}
    assert wait_of("parked_wlock") == {"type": "RWMutex", "id": ids["rw"], "readers": 2,
                                       "writer": False, "waiters": 0}
    assert wait_of("parked_waitgroup") == {"type": "WaitGroup", "id": ids["wg"], "counter": 3,
                                           "waiters": 0}
    assert wait_of("parked_semaphore") == {"type": "Semaphore", "id": ids["sem"], "available": 1,
                                           "size": 3, "waiters": 0}
    assert wait_of("parked_once") == {"type": "Once", "id": ids["once"], "done": False,
                                      "running": True, "waiters": 0}


# ---------------------------------------------------------------- JSON (issue 19)

@pytest.mark.timeout(30)
def test_json_dump_round_trips_and_matches_the_text(rt):
    """format="json" is the text dump's content as data: the same
    goroutines, states, stacks, creation sites and wait objects."""
    out = {}

    async def main():
        c = Chan()
        go(parked_recv, c)
        go(parked_sleep)
        await wait_parked(1, fn=parked_recv)
        await wait_parked(1, fn=parked_sleep)
        out["json"] = gocore.dump_goroutines(format="json")
        out["text"] = gocore.dump_goroutines()
        out["c"] = f"{id(c):#x}"
        c.close()

    rt.run(main)
    gs = json.loads(out["json"])
    assert json.loads(json.dumps(gs)) == gs
    blocks = parse(out["text"])
    # (parked_sleep is closed by run() at the end: sleeps are timers)
    assert [(g["id"], g["state"], g["main"]) for g in gs] == \
        [(b["goid"], b["state"], b["main"]) for b in blocks]
    for g, b in zip(gs, blocks):
        frames = [(f["function"], f["file"], f["line"]) for f in g["frames"]]
        if g["current"]:            # main: the two dumps were taken on two lines
            frames[0] = frames[0][:2] + (frames[0][2] + 1,)
        assert frames == b["frames"]
        if b["created"] is None:
            assert g["created_by"] is None
        else:
            cb = g["created_by"]
            assert (cb["function"], cb["file"], cb["line"], cb["goroutine"]) == b["created"]
        assert set(g) == {"id", "kind", "state", "minutes", "main", "current",
                          "stack_unavailable", "frames", "not_started", "created_by", "wait"}
    recv = [g for g in gs if g["state"] == "chan receive"][0]
    assert recv["wait"] == {"type": "chan", "op": "recv", "id": out["c"], "nil": False, "len": 0,
                            "cap": 0, "closed": False, "receivers": 0, "senders": 0}
    assert [g for g in gs if g["state"] == "sleep"][0]["wait"] is None
    assert [g for g in gs if g["main"]][0]["current"] is True


@pytest.mark.timeout(30)
def test_dump_bad_format():
    with pytest.raises(ValueError, match="text.*json"):
        gocore.dump_goroutines(format="xml")


@pytest.mark.timeout(30)
def test_deadlock_error_carries_the_records(rt):
    """DeadlockError.goroutines: the dump as data, with each waiting
    goroutine's channel."""
    async def main():
        c = Chan(2)
        await c.send(1)
        go(forgotten, Chan())
        await wait_parked(1, fn=forgotten)
        try:
            await c.send(2)
            await c.send(3)
        except DeadlockError as e:
            return e, f"{id(c):#x}"

    e, cid = rt.run(main)
    assert json.loads(json.dumps(e.goroutines)) == e.goroutines
    assert len(e.goroutines) == 2
    fg = [g for g in e.goroutines if g["frames"] and g["frames"][0]["function"] == "forgotten"][0]
    assert fg["state"] == "chan receive" and fg["wait"]["type"] == "chan"
    assert fg["wait"]["op"] == "recv" and fg["wait"]["receivers"] == 0
    assert fg["created_by"]["function"] == "test_deadlock_error_carries_the_records.<locals>.main"
    main_rec = [g for g in e.goroutines if g["main"]][0]
    assert main_rec["state"] == "running"      # the raiser: its wait ended with the error
    # the text and the records agree
    assert [b["goid"] for b in parse(e.dump)] == [g["id"] for g in e.goroutines]
    assert cid.startswith("0x")


# ---------------------------------------------------------------- a dump from outside (issue 19)

@pytest.mark.timeout(30)
def test_dump_on_signal_to_a_path(tmp_path, restore_signals):
    """file=<path>: each signal replaces the file with the latest dump."""
    path = tmp_path / "dump.txt"
    gocore.debug.dump_on_signal(signal.SIGUSR2, file=str(path))
    for _ in range(2):
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(0.01)
    text = path.read_text()
    assert text.startswith("SIGUSR2: goroutine dump\n\nmain thread (not a goroutine):\n"), text
    assert text.count("SIGUSR2: goroutine dump") == 1      # replaced, not appended
    assert not [p for p in os.listdir(tmp_path) if p != "dump.txt"]    # no temporary left


@pytest.mark.timeout(30)
def test_dump_on_signal_bad_format_and_path(restore_signals):
    with pytest.raises(ValueError, match="format"):
        gocore.debug.dump_on_signal(format="yaml")
    with pytest.raises(ValueError, match="empty path"):
        gocore.debug.dump_on_signal(file="")


def wait_for_file(path, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return open(path).read()
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no {path} within {timeout}s")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("maxprocs", [1, 2])
def test_dump_from_outside_by_environment(tmp_path, fmt, maxprocs):
    """GOCORE_DUMP_SIGNAL=USR1 + GOCORE_DUMP_FILE=<path>: a program that
    never calls gocore.debug writes its dump to that file on SIGUSR1, and
    keeps running."""
    path = str(tmp_path / "dump.out")
    env = {"GOCORE_DUMP_SIGNAL": "USR1", "GOCORE_DUMP_FILE": path,
           "GOCORE_DUMP_FORMAT": fmt, "GOCORE_MAXPROCS": str(maxprocs)}
    proc = popen_prog("dump_env.py", env=env)
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.3)                 # main goes on to park in wg.wait()
        proc.send_signal(signal.SIGUSR1)
        text = wait_for_file(path, proc)
        prog = os.path.join(os.path.dirname(__file__), "progs", "dump_env.py")
        with open(prog) as f:
            line = [i for i, ln in enumerate(f, 1) if ln.rstrip().endswith("# created here")][0]
        if fmt == "json":
            data = json.loads(text)
            assert data["signal"] == "SIGUSR1" and data["pid"] == proc.pid
            gs = data["goroutines"]
            recvs = [g for g in gs if g["frames"] and g["frames"][0]["function"] == "stuck_receiver"]
            assert len(recvs) == 2
            assert {g["created_by"]["line"] for g in recvs} == {line, line + 1}
            assert all(g["wait"]["receivers"] == 1 and g["wait"]["cap"] == 3 for g in recvs)
            main = [g for g in gs if g["main"]][0]
            assert main["wait"]["type"] == "WaitGroup" and main["wait"]["counter"] == 1
        else:
            assert text.startswith("SIGUSR1: goroutine dump\n\n"), text
            blocks = parse(text.split("\n\n", 1)[1])
            recvs = blocks_of(blocks, "stuck_receiver")
            assert sorted(b["created"][2] for b in recvs) == [line, line + 1]
            assert all(b["created"][1] == prog for b in recvs)
            main = block_of(blocks, "main")
            assert main["state"] == "sync.WaitGroup.Wait"
            assert main["wait"][0].startswith("  waiting on sync.WaitGroup 0x")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.timeout(30)
def test_dump_signal_env_bad_value_warns():
    """A bad GOCORE_DUMP_SIGNAL warns; `import gocore` still works."""
    r = subprocess.run([sys.executable, "-c", "import gocore; print('imported')"],
                       env={**os.environ, "GOCORE_DUMP_SIGNAL": "NOPE"},
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and r.stdout == "imported\n", r
    assert "GOCORE_DUMP_SIGNAL ignored" in r.stderr and "NOPE" in r.stderr


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value, shown", [("0", False), ("1", True)])
def test_created_by_switch(value, shown):
    """GOCORE_CREATED_BY=0 (read at import) turns creation-site recording
    off: no `created by` lines, `created_by` null in the JSON."""
    code = ("import json, gocore\n"
            "async def child(c):\n    await c.recv()\n"
            "async def main():\n"
            "    c = gocore.Chan()\n    gocore.go(child, c)\n    await gocore.sleep(0.01)\n"
            "    print(json.dumps([g['created_by'] for g in json.loads(gocore.dump_goroutines(format='json'))]))\n"
            "    print(gocore.dump_goroutines())\n"
            "    c.close()\n"
            "gocore.run(main)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
                       env={**os.environ, "GOCORE_CREATED_BY": value})
    assert r.returncode == 0, r.stderr
    first, text = r.stdout.split("\n", 1)
    created = json.loads(first)
    assert created[0] is None                      # main
    assert (created[1] is not None) == shown
    assert ("  created by main in goroutine 1\n" in text) == shown, text
    if shown:
        assert created[1] == {"function": "main", "file": "<string>", "line": 6, "goroutine": 1}


@pytest.mark.timeout(30)
def test_goroutine_object_stays_in_its_size_class():
    """The creation site fits in the G without growing it past 160 bytes
    (one pymalloc size class; 168 made spawning ~8% slower)."""
    out = {}

    async def main():
        # (the size only: holding the G past run() would fail debug
        # builds' balance check)
        out["size"] = type(gocore._sched._goroutine_info(True)[0][12]).__basicsize__

    gocore.run(main)
    # free-threaded builds' object header is 16 bytes longer (ob_tid and
    # friends): the bound is on the G's own fields, 144 bytes past a
    # GIL build's 16-byte header
    assert out["size"] - object.__basicsize__ <= 160 - 16, out["size"]
