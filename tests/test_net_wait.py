"""gocore.net.wait_readable / wait_writable on fds gocore does not own:
pipes, a subprocess's stdout, a third party's socket. Go's os/pipe_test.go,
os/timeout_test.go (deadlines on pipes) and os/exec's pipe tests
re-expressed (the origin of each is in its docstring)."""
import os
import socket
import subprocess
import sys
import time

import pytest

import gocore
from gocore import Chan, go, net, sleep

pytestmark = pytest.mark.timeout(60)


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------------- os/pipe_test.go

@pytest.mark.timeout(30)
def test_wait_readable_on_pipe(rt, pipe):
    """os/pipe_test.go TestPipeEOF-ish: a goroutine parks until the pipe has
    data (no thread held: others run meanwhile), reads it, and at the
    writer's close the pipe is readable with EOF."""
    r, w = pipe

    async def main():
        got = Chan(10)

        async def reader():
            while True:
                await net.wait_readable(r)
                data = os.read(r, 100)
                await got.send(data)
                if not data:
                    return

        async def writer():
            for chunk in (b"one", b"two"):
                await sleep(0.03)
                os.write(w, chunk)
            await sleep(0.03)
            os.close(w)
        go(reader)
        go(writer)
        out = []
        while (d := await got.recv()) != b"":
            out.append(d)
        return b"".join(out)
    assert rt.run(main) == b"onetwo"


@pytest.mark.timeout(30)
def test_wait_writable_on_full_pipe(rt, pipe):
    """os/pipe_test.go TestClosedPipeRace-ish: wait_writable returns at once
    on a pipe with room, parks on a full one until the reader drains it."""
    r, w = pipe

    async def main():
        await net.wait_writable(w)
        n = 0
        try:
            while True:
                n += os.write(w, b"x" * 65536)
        except BlockingIOError:
            pass
        assert n > 0
        woke = Chan(1)

        async def waiter():
            await net.wait_writable(w)
            await woke.send(time.monotonic())
        go(waiter)
        await sleep(0.05)
        assert woke.try_recv() is None, "woke on a full pipe"
        t0 = time.monotonic()
        while True:                                   # drain
            try:
                if not os.read(r, 1 << 20):
                    break
            except BlockingIOError:
                break
        assert await woke.recv() >= t0
        return True
    assert rt.run(main)


@pytest.mark.timeout(30)
def test_two_waiters_and_both_directions(rt, pipe):
    """Two goroutines waiting on one fd at once, and a reader and a writer
    on the ends of a pipe: every wait is its own registration, so none
    hides another."""
    r, w = pipe

    async def main():
        done = Chan(3)

        async def rwait(tag):
            await net.wait_readable(r)
            await done.send(tag)
        go(rwait, "a")
        go(rwait, "b")
        await sleep(0.03)
        await net.wait_writable(w)
        os.write(w, b"!")
        got = {await done.recv(), await done.recv()}
        assert os.read(r, 10) == b"!"
        return got
    assert rt.run(main) == {"a", "b"}


# ---------------------------------------------------------------- os/timeout_test.go

@pytest.mark.timeout(30)
def test_wait_deadlines(rt, pipe):
    """os/timeout_test.go TestReadTimeout on a pipe: a wait past its
    deadline raises DeadlineExceeded (never early); a deadline already
    passed fails at once even when the fd is ready."""
    r, w = pipe

    async def main():
        t0 = time.monotonic()
        with pytest.raises(net.DeadlineExceeded):
            await net.wait_readable(r, time.monotonic() + 0.1)
        assert time.monotonic() - t0 >= 0.1
        os.write(w, b"ready")
        with pytest.raises(net.DeadlineExceeded):
            await net.wait_readable(r, time.monotonic() - 1)
        await net.wait_readable(r, time.monotonic() + 5)     # ready: at once
        assert os.read(r, 10) == b"ready"
        return True
    assert rt.run(main)


# ---------------------------------------------------------------- os/exec

@pytest.mark.timeout(30)
def test_wait_readable_on_subprocess_stdout(rt):
    """os/exec's StdoutPipe: a goroutine reads a child's output as it comes,
    parked between lines, and sees EOF when the child exits."""
    code = ("import sys, time\n"
            "for i in range(3):\n"
            "    time.sleep(0.05); sys.stdout.write(f'line {i}\\n'); sys.stdout.flush()\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    os.set_blocking(p.stdout.fileno(), False)

    async def main():
        out = b""
        waits = 0
        while True:
            await net.wait_readable(p.stdout, time.monotonic() + 10)
            waits += 1
            try:
                data = os.read(p.stdout.fileno(), 4096)
            except BlockingIOError:
                continue
            if not data:
                return out, waits
            out += data
    try:
        out, waits = rt.run(main)
    finally:
        p.stdout.close()
        p.wait()
    assert out == b"line 0\nline 1\nline 2\n"
    assert waits >= 2


# ---------------------------------------------------------------- a third party's socket

@pytest.mark.timeout(30)
def test_wait_on_foreign_socket(rt):
    """A non-blocking socket gocore does not own (socket.socketpair): wait
    for it, then use its own methods."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    async def main():
        async def peer():
            await sleep(0.03)
            b.send(b"ping")
        go(peer)
        await net.wait_readable(a)
        assert a.recv(10) == b"ping"
        await net.wait_writable(a)
        a.send(b"pong")
        await net.wait_readable(b.fileno())
        return b.recv(10)
    try:
        assert rt.run(main) == b"pong"
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- fds the owner closes

@pytest.mark.timeout(30)
def test_owner_closes_fd_after_and_during_waits(rt, pipe):
    """The rule for fds gocore does not own: each wait registers its own
    duplicate and drops it when it ends. So once a wait is over the owner
    may close the fd and its number may be reused by a socket gocore
    registers itself (which keeps working); and a wait whose fd the owner
    closes meanwhile ends on its deadline (documented: the close bypasses
    gocore)."""
    r, w = pipe
    before = _open_fds()

    async def main():
        os.write(w, b"x")
        await net.wait_readable(r)
        os.close(r)                                   # the owner closes: its number is free
        ln = net.listen("tcp", "127.0.0.1:0")         # may well take that number
        c = await net.dial("tcp", ln.addr)
        s = await ln.accept()
        await c.write(b"still polled")
        assert await s.read() == b"still polled"
        for x in (c, s, ln):
            x.close()
        r2, w2 = os.pipe()
        os.set_blocking(r2, False)
        res = Chan(1)

        async def waiter():
            try:
                await net.wait_readable(r2, time.monotonic() + 0.2)
                await res.send("ready")
            except net.DeadlineExceeded:
                await res.send("deadline")
        go(waiter)
        await sleep(0.05)
        os.close(r2)                                  # closed under the waiter
        assert await res.recv() == "deadline"
        os.close(w2)
        return True
    assert rt.run(main)
    assert _open_fds() <= before, "a wait left an fd open"


@pytest.mark.timeout(30)
def test_wait_shows_in_dump_and_teardown_closes_it(pipe):
    """The dump shows a waiting goroutine as [IO wait] with the caller's fd
    and direction; it is never counted as deadlocked; when run() ends it
    is closed (its finally runs) and its duplicate fd is released."""
    r, w = pipe
    log = []
    before = _open_fds()

    async def main():
        async def waiter():
            try:
                await net.wait_readable(r)
            finally:
                log.append("finally")
        go(waiter)
        await sleep(0.05)
        dump = gocore.dump_goroutines()
        assert f"IO wait, fd {r}, read" in dump, dump
    gocore.run(main)
    assert log == ["finally"]
    assert _open_fds() <= before


# ---------------------------------------------------------------- bad input

@pytest.mark.timeout(30)
def test_wait_refuses_regular_files_and_bad_input(tmp_path):
    """A regular file (always ready, so never polled) and a directory raise
    ValueError at the call; an fd that is not open OSError; anything but
    an int fd or an object with fileno() TypeError; a bad deadline
    TypeError/ValueError."""
    f = tmp_path / "regular.txt"
    f.write_bytes(b"data")
    before = _open_fds()
    with open(f, "rb") as fh:
        for fn in (net.wait_readable, net.wait_writable):
            with pytest.raises(ValueError, match="regular file"):
                fn(fh)
            with pytest.raises(ValueError, match="regular file"):
                fn(fh.fileno())
    d = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(ValueError, match="directory"):
            net.wait_readable(d)
    finally:
        os.close(d)
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        net.wait_readable(r)                          # not open (any more)
    for bad in ("3", None, 3.0, True, [3]):
        with pytest.raises(TypeError):
            net.wait_readable(bad)
    with pytest.raises(ValueError):
        net.wait_readable(-1)
    closed = socket.socket()
    closed.close()
    with pytest.raises(ValueError):
        net.wait_readable(closed)                     # fileno() is -1 once closed

    class BadFileno:
        def fileno(self):
            return "3"
    with pytest.raises(TypeError):
        net.wait_readable(BadFileno())
    r, w = os.pipe()
    try:
        with pytest.raises(TypeError):
            net.wait_readable(r, "soon")
        with pytest.raises(ValueError):
            net.wait_readable(r, float("nan"))
    finally:
        os.close(r)
        os.close(w)
    assert _open_fds() <= before
