"""Deadlines: Go's net/timeout_test.go re-expressed (the Go test each one
follows is in its name or docstring). Deadlines are absolute
time.monotonic() values; DeadlineExceeded is a TimeoutError. Loopback only."""
import time

import pytest

import gocore
from gocore import Chan, go, net, sleep

from gocore._testhooks import wait_parked
from test_net import _pair_main

pytestmark = pytest.mark.timeout(60)


def test_deadline_exceeded_is_timeout_error():
    assert issubclass(net.DeadlineExceeded, TimeoutError)


def test_read_timeout(rt):
    """timeout_test.go TestReadTimeout: a read waiting past its deadline
    fails with DeadlineExceeded, not early; later reads fail at once until
    the deadline moves; moving it lets reads go on."""
    async def body(s, c):
        t0 = time.monotonic()
        c.set_read_deadline(t0 + 0.1)
        with pytest.raises(net.DeadlineExceeded):
            await c.read()
        assert time.monotonic() - t0 >= 0.1, "a deadline never fires early"
        with pytest.raises(net.DeadlineExceeded):
            await c.read()             # still passed: fails at once
        await s.write(b"data")
        with pytest.raises(net.DeadlineExceeded):
            await c.read()             # even with data ready
        c.set_read_deadline(None)
        assert await c.read() == b"data"
        return True
    assert rt.run(_pair_main(body))


def test_past_deadline_fails_at_once(rt):
    """timeout_test.go TestReadTimeout/TestWriteTimeout with a deadline in
    the past: read, write and accept fail at once, even when ready."""
    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        c = await net.dial("tcp", ln.addr)
        ln.set_deadline(time.monotonic() - 1)
        with pytest.raises(net.DeadlineExceeded):
            await ln.accept()          # a connection is pending
        ln.set_deadline(None)
        s = await ln.accept()
        await s.write(b"x")
        await sleep(0.01)
        c.set_deadline(0.0)
        with pytest.raises(net.DeadlineExceeded):
            await c.read()
        with pytest.raises(net.DeadlineExceeded):
            await c.write(b"y")
        c.set_deadline(None)
        assert await c.read() == b"x"
        for x in (c, s, ln):
            x.close()
        return True
    assert rt.run(main)


def test_write_timeout_with_full_buffer(rt):
    """timeout_test.go TestWriteTimeoutFluctuation: a writer blocked on a
    full socket buffer fails with DeadlineExceeded when its deadline passes."""
    async def body(s, c):
        c.set_write_deadline(time.monotonic() + 0.2)
        t0 = time.monotonic()
        with pytest.raises(net.DeadlineExceeded):
            while True:
                await c.write(b"z" * 65536)   # nobody reads s
        assert time.monotonic() - t0 >= 0.19
        return True
    assert rt.run(_pair_main(body))


def test_accept_timeout(rt):
    """timeout_test.go TestAcceptTimeout."""
    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        ln.set_deadline(time.monotonic() + 0.05)
        with pytest.raises(net.DeadlineExceeded):
            await ln.accept()
        ln.close()
        return True
    assert rt.run(main)


def test_set_read_deadline_now_unblocks_reader(rt):
    """timeout_test.go TestReadTimeoutMustNotReturn / Go's idiom
    conn.SetReadDeadline(time.Now()): a deadline set while a read waits
    applies to it and wakes it."""
    async def body(s, c):
        res = Chan(1)

        async def reader():
            try:
                await c.read()
                await res.send("read?")
            except net.DeadlineExceeded:
                await res.send("timeout")
        go(reader)
        await wait_parked(1, reason="IO wait", fn=reader)
        c.set_read_deadline(time.monotonic())
        assert await res.recv() == "timeout"
        return True
    assert rt.run(_pair_main(body))


def test_moving_deadline_later_while_waiting(rt):
    """timeout_test.go TestVariousDeadlines / an idle timeout: moving the
    deadline later while a read waits lets it go on past the first one."""
    async def body(s, c):
        res = Chan(1)
        c.set_read_deadline(time.monotonic() + 0.05)

        async def reader():
            try:
                await res.send(await c.read())
            except net.DeadlineExceeded as e:
                await res.send(e)
        go(reader)
        await wait_parked(1, reason="IO wait", fn=reader)
        c.set_read_deadline(time.monotonic() + 5)
        await sleep(0.15)                # past the first deadline
        await s.write(b"late")
        assert await res.recv() == b"late"
        return True
    assert rt.run(_pair_main(body))


def test_idle_timeout_pattern(rt):
    """An idle timeout is a deadline pushed forward after each read."""
    async def body(s, c):
        async def peer():
            for _ in range(5):
                await sleep(0.02)
                await s.write(b".")
        go(peer)
        got = b""
        with pytest.raises(net.DeadlineExceeded):
            while True:
                c.set_read_deadline(time.monotonic() + 0.2)
                got += await c.read()
        assert got == b"....."
        return True
    assert rt.run(_pair_main(body))


def test_read_deadline_does_not_affect_writes(rt):
    """timeout_test.go TestReadWriteDeadlineRace-ish: the read and write
    deadlines are independent."""
    async def body(s, c):
        c.set_read_deadline(time.monotonic() - 1)
        assert await c.write(b"w") == 1
        assert await s.read() == b"w"
        with pytest.raises(net.DeadlineExceeded):
            await c.read()
        return True
    assert rt.run(_pair_main(body))


def test_blocking_read_deadline_from_thread():
    """The blocking twins honour deadlines too (timeout_test.go
    TestReadTimeout through a plain thread)."""
    ln = net.listen("tcp", "127.0.0.1:0")
    c = net.blocking_dial("tcp", ln.addr)
    s = ln.blocking_accept()
    c.set_read_deadline(time.monotonic() + 0.1)
    t0 = time.monotonic()
    with pytest.raises(net.DeadlineExceeded):
        c.blocking_read()
    assert time.monotonic() - t0 >= 0.1
    for x in (c, s, ln):
        x.close()


def test_dial_timeout_and_cancelled_ctx(rt):
    """timeout_test.go TestDialTimeout: dial's timeout raises TimeoutError
    (a listener with a full backlog never completes the handshake is not
    portable: a past timeout stands in); a cancelled ctx fails at once
    with ctx.err()."""
    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        ctx, cancel = gocore.context.with_cancel(gocore.context.background())
        cancel()
        with pytest.raises(gocore.context.Canceled):
            await net.dial("tcp", ln.addr, ctx=ctx)
        c = await net.dial("tcp", ln.addr, timeout=5)
        c.close()
        ln.close()
        return True
    assert rt.run(main)
