"""The test hooks themselves (gocore._testhooks): a channel's waiter counts,
wait_blocked, the goroutine-table hooks and the debug counters. The other
tests wait on these instead of yielding a fixed number of times, so they
must count what they claim to."""
import threading
import time

import pytest

import gocore
from gocore import Chan, go, nilchan, select
from gocore import _testhooks as hooks
from gocore._testhooks import wait_blocked, wait_parked


@pytest.mark.timeout(20)
def test_chan_waiters_counts_parked_receivers_and_senders(rt):
    async def main():
        c, d = Chan(), Chan(1)
        assert hooks.chan_waiters(c) == (0, 0)

        async def receiver():
            await c.recv()

        for _ in range(3):
            go(receiver)
        assert await wait_blocked(c, recv=3) == (3, 0)
        await d.send(0)                          # d is full now

        async def sender():
            await d.send(1)

        go(sender)
        assert await wait_blocked(d, send=1) == (0, 1)
        for i in range(3):
            await c.send(i)
        assert hooks.chan_waiters(c) == (0, 0)    # the woken are unlinked at once
        assert await d.recv() == 0
        assert await d.recv() == 1
        assert hooks.chan_waiters(d) == (0, 0)

    rt.run(main)


@pytest.mark.timeout(20)
def test_a_select_on_one_channel_twice_counts_once(rt):
    async def main():
        c, other = Chan(), Chan()
        got = []

        async def sel():
            got.append(await select(c.recv, c.recv_ok, other.recv))

        go(sel)
        assert await wait_blocked(c, recv=1) == (1, 0)
        assert hooks.chan_waiters(other) == (1, 0)
        await c.send("x")
        while not got:
            await gocore.gosched()
        # the select's other waiters are gone once it returned
        assert hooks.chan_waiters(c) == (0, 0) and hooks.chan_waiters(other) == (0, 0)

    rt.run(main)


@pytest.mark.timeout(20)
def test_chan_waiters_counts_a_plain_thread(rt):
    c = Chan()
    out = []
    t = threading.Thread(target=lambda: out.append(c.blocking_recv()))

    async def main():
        t.start()
        assert await wait_blocked(c, recv=1) == (1, 0)
        await c.send("t")

    rt.run(main)
    t.join(5)
    assert out == ["t"]


@pytest.mark.timeout(20)
def test_wait_blocked_times_out_with_a_clear_error(rt):
    async def main():
        c = Chan()
        t0 = time.monotonic()
        with pytest.raises(AssertionError, match="1 receiver"):
            await wait_blocked(c, recv=1, timeout=0.2)
        assert time.monotonic() - t0 >= 0.2

    rt.run(main)


def test_wait_hooks_bad_input():
    with pytest.raises(TypeError):
        hooks.chan_waiters(42)
    with pytest.raises(ValueError, match="nil channel"):
        hooks.chan_waiters(nilchan)

    async def main():
        with pytest.raises(ValueError):
            await wait_blocked(Chan(), recv=-1)
        with pytest.raises(ValueError):
            await wait_parked(-1)

    gocore.run(main)


@pytest.mark.timeout(20)
def test_parked_and_started(rt):
    async def main():
        c = Chan()
        mu = gocore.Mutex()
        await mu.lock()

        async def on_chan():
            await c.recv()

        async def on_mutex():
            await mu.lock()
            mu.unlock()

        async def sleeper():
            await gocore.sleep(30)

        assert hooks.started(on_chan) == 0
        for _ in range(2):
            go(on_chan)
        go(on_mutex)
        go(sleeper)
        assert await wait_parked(4) >= 4
        assert hooks.parked(fn=on_chan) == 2 and hooks.started(on_chan) == 2
        assert hooks.parked(reason="chan receive") == 2
        assert hooks.parked(reason="sync.Mutex.Lock", fn=on_mutex) == 1
        assert hooks.parked(reason="sleep") == 1
        assert hooks.parked(reason="select") == 0
        mu.unlock()
        await c.send(1)
        await c.send(2)
        while hooks.alive(on_chan) or hooks.alive(on_mutex):
            await gocore.gosched()
        assert hooks.parked(fn=on_chan) == 0 and hooks.started(on_chan) == 0
        assert hooks.alive(sleeper) == 1 and hooks.started(sleeper) == 1
        return "ok"                      # the sleeper is closed at run()'s end

    assert rt.run(main) == "ok"


def test_debug_counters():
    c = hooks.debug_counters()
    if not hooks.DEBUG:
        assert c == {}
        return
    assert set(c) == {"g_objects", "chan_waiters", "sync_waiters", "timer_refs"}

    async def main():
        ch = Chan()

        async def r():
            await ch.recv()

        go(r)
        await wait_blocked(ch, recv=1)
        assert hooks.debug_counters()["chan_waiters"] >= 1
        await ch.send(0)

    gocore.run(main)
