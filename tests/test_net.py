"""gocore.net streams: Go's net tests re-expressed (the origin of each is in
its name or docstring: net_test.go, conn_test.go, tcpsock_test.go,
unixsock_test.go), close semantics, bad input, dump and deadlock detection
with goroutines waiting on I/O. Loopback only."""
import collections
import os
import socket
import tempfile
import threading
import time

import pytest

import gocore
from gocore import Chan, WaitGroup, go, net, sleep

from conftest import FREE_THREADED, wait_until
from gocore._testhooks import wait_parked

pytestmark = pytest.mark.timeout(60)


def _pair_main(body, network="tcp", address="127.0.0.1:0"):
    """run body(server_conn, client_conn) with a fresh connected pair."""
    async def main():
        ln = net.listen(network, address)
        accepted = Chan(1)

        async def acceptor():
            await accepted.send(await ln.accept())
        go(acceptor)
        c = await net.dial(network, ln.addr)
        s = await accepted.recv()
        ln.close()
        try:
            return await body(s, c)
        finally:
            s.close()
            c.close()
    return main


# ---------------------------------------------------------------- conn_test.go

@pytest.mark.parametrize("network", ["tcp", "tcp4", "tcp6", "unix"])
def test_conn_and_listener(rt, network, tmp_path):
    """conn_test.go TestConnAndListener: echo over every stream network,
    addresses and fileno."""
    if network == "tcp6" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    address = {"tcp": "127.0.0.1:0", "tcp4": "127.0.0.1:0", "tcp6": "[::1]:0",
               "unix": str(tmp_path / "s.sock")}[network]

    async def body(s, c):
        assert isinstance(s.fileno(), int) and s.fileno() != c.fileno()
        if network != "unix":
            assert c.remote_addr[:2] == s.local_addr[:2]
            assert s.remote_addr[:2] == c.local_addr[:2]
        else:
            assert c.remote_addr == address

        async def echo():
            while d := await s.read(100):
                await s.write(d)
            s.close()
        go(echo)
        for i in range(50):
            msg = f"hello {i}".encode()
            assert await c.write(msg) == len(msg)
            got = b""
            while len(got) < len(msg):
                got += await c.read(100)
            assert got == msg
        c.close_write()
        assert await c.read() == b""
        return True
    assert rt.run(_pair_main(body, network, address))
    if network == "unix":
        assert not os.path.exists(address), "a unix listener removes its socket file on close"


# ---------------------------------------------------------------- net_test.go

def test_close_read(rt):
    """net_test.go TestCloseRead/TestCloseWrite: close_write gives the
    peer EOF while reads go on; writing after close_write raises the
    socket's error, not ErrClosed."""
    async def body(s, c):
        await c.write(b"ping")
        c.close_write()
        assert await s.read(10) == b"ping"
        assert await s.read(10) == b""
        await s.write(b"pong")
        assert await c.read(10) == b"pong"
        with pytest.raises(OSError) as ei:
            await c.write(b"more")
        assert not isinstance(ei.value, net.ErrClosed)
        return True
    assert rt.run(_pair_main(body))


def test_close_unblocks_read(rt):
    """net_test.go TestCloseUnblocksRead: a read blocked on a Conn that is
    closed (by another goroutine) fails with ErrClosed; a read blocked when
    the peer closes returns b""."""
    async def body(s, c):
        res = Chan(2)

        async def reader(conn):
            try:
                r = await conn.read()
            except net.ErrClosed as e:
                r = e
            await res.send(r)
        go(reader, c)
        go(reader, s)
        await wait_parked(2, reason="IO wait", fn=reader)
        c.close()              # c's reader: ErrClosed; s's reader: EOF
        got = [await res.recv(), await res.recv()]
        assert any(isinstance(r, net.ErrClosed) for r in got), got
        assert b"" in got, got
        return True
    assert rt.run(_pair_main(body))


def test_closed_conn_ops_raise(rt):
    """net_test.go TestCloseError: after close every operation raises
    ErrClosed (an OSError); close twice is silent."""
    async def body(s, c):
        c.close()
        c.close()
        for op in (c.read, lambda: c.write(b"x"), lambda: c.read_into(bytearray(4))):
            with pytest.raises(net.ErrClosed):
                await op()
        for op in (c.close_write, c.fileno, lambda: c.set_deadline(None),
                   lambda: c.set_read_deadline(None)):
            with pytest.raises(net.ErrClosed):
                op()
        assert issubclass(net.ErrClosed, OSError)
        assert await s.read() == b""
        return True
    assert rt.run(_pair_main(body))


def test_listener_close_unblocks_accept(rt):
    """net_test.go TestListenCloseListen + TestAcceptIgnoreAbortedConnRequest
    spirit: close() wakes a blocked accept with ErrClosed, and the port can
    be listened on again."""
    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        port = ln.addr[1]
        res = Chan(1)

        async def acc():
            try:
                await ln.accept()
                await res.send("accepted?")
            except net.ErrClosed:
                await res.send("closed")
        go(acc)
        await wait_parked(1, reason="IO wait", fn=acc)
        ln.close()
        assert await res.recv() == "closed"
        ln2 = net.listen("tcp", f"127.0.0.1:{port}")
        ln2.close()
        with pytest.raises(net.ErrClosed):
            await ln.accept()
        return True
    assert rt.run(main)


def test_read_write_in_parallel_and_serialised(rt):
    """conn_test.go / net.Conn contract: a reader and a writer proceed in
    parallel; concurrent writers never interleave their bytes."""
    writers, per, size = 8, 20, 20000

    async def body(s, c):
        wg = WaitGroup()

        async def writer(k):
            try:
                for _ in range(per):
                    await c.write(bytes([k]) * size)
            finally:
                wg.done()
        for k in range(writers):
            wg.add(1)
            go(writer, k)
        total = writers * per * size
        buf = bytearray()
        while len(buf) < total:
            d = await s.read(65536)
            assert d
            buf += d
        await wg.wait()
        # every write's bytes are contiguous
        for i in range(0, total, size):
            chunk = buf[i:i + size]
            assert chunk == bytes([chunk[0]]) * size, f"interleaved write at {i}"
        return True
    assert rt.run(_pair_main(body))


def test_concurrent_reads_serialised(rt):
    """net.Conn contract: concurrent readers each get whole reads, one
    after another; together they see every byte once, in order per read."""
    async def body(s, c):
        got = []
        done = Chan(4)

        async def reader():
            try:
                while d := await c.read(7):
                    got.append(d)
            finally:
                await done.send(None)
        for _ in range(4):
            go(reader)
        await wait_parked(4, fn=reader)
        payload = bytes(range(256)) * 40
        await s.write(payload)
        s.close()
        for _ in range(4):
            await done.recv()
        assert sorted(b"".join(got)) == sorted(payload)
        assert len(b"".join(got)) == len(payload)
        return True
    assert rt.run(_pair_main(body))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("network", ["tcp", "unix"])
@pytest.mark.parametrize("blocking", [False, True])
def test_eof_queued_behind_a_short_read(rt, network, blocking, tmp_path):
    """A read that drains the socket (fewer bytes than asked) lets the next
    read park without a recv that would say EAGAIN. The peer's FIN may have
    arrived with the data, its event consumed before that read: the next
    read must still return b"" (and the one after it too), never park for
    an event that will not come. Also for a reader that parked first."""
    address = str(tmp_path / "s") if network == "unix" else "127.0.0.1:0"

    async def body(s, c):
        await s.write(b"abc")
        s.close()
        await sleep(0.05)           # data and FIN queued; the poller saw both
        if blocking:
            out = Chan(1)

            def reader():
                out.blocking_send([c.blocking_read(7), c.blocking_read(7), c.blocking_read(7)])
            go(reader)
            got = await out.recv()
        else:
            got = [await c.read(7), await c.read(7), await c.read(7)]
        assert got == [b"abc", b"", b""]
        return True
    assert rt.run(_pair_main(body, network, address))

    async def parked_first(s, c):
        async def late_writer():
            await sleep(0.05)       # the reader is parked by now
            await s.write(b"xy")
            s.close()
        go(late_writer)
        got = [await c.read(7), await c.read(7)]
        assert got in ([b"xy", b""], [b"x", b"y"]), got
        return True
    assert rt.run(_pair_main(parked_first, network, address))


def test_close_from_plain_thread_wakes_blocking_reader(rt):
    """close() from a plain thread wakes a sync goroutine in blocking_read
    and an async one in read, at once, with ErrClosed."""
    async def body(s, c):
        res = Chan(2)

        def sync_reader():
            try:
                c.blocking_read()
            except net.ErrClosed:
                res.blocking_send("sync closed")

        async def async_reader():
            try:
                await c.write(b"")          # a writer too: close wakes it at once
                await c.read()
            except net.ErrClosed:
                await res.send("async closed")
        go(sync_reader)
        go(async_reader)
        await sleep(0.05)
        t0 = time.monotonic()
        threading.Thread(target=c.close).start()
        got = {await res.recv(), await res.recv()}
        assert time.monotonic() - t0 < 1.0
        return got
    assert rt.run(_pair_main(body)) == {"sync closed", "async closed"}


# ---------------------------------------------------------------- tcpsock_test.go

def test_tcp_nodelay_and_addrs(rt):
    """tcpsock_test.go TestTCPListenerName / TestIPv6LinkLocalUnicastTCP
    (loopback only): Listener.addr is (host, port), TCP_NODELAY is set on
    both ends, (host, port) tuples and 'localhost' dial."""
    async def main():
        ln = net.listen("tcp4", "localhost:0")
        assert ln.addr[0] == "127.0.0.1" and ln.addr[1] > 0
        acc = Chan(1)

        async def a():
            await acc.send(await ln.accept())
        go(a)
        c = await net.dial("tcp", ("localhost", ln.addr[1]))
        s = await acc.recv()
        for conn in (c, s):
            so = socket.socket(fileno=os.dup(conn.fileno()))
            try:
                assert so.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            finally:
                so.close()
        c.close(); s.close(); ln.close()
        return True
    assert rt.run(main)


def test_dial_refused(rt):
    """tcpsock_test.go TestDialTCP-ish: a refused dial raises
    ConnectionRefusedError (the socket module's OSError)."""
    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        addr = ln.addr
        ln.close()
        with pytest.raises(ConnectionRefusedError):
            await net.dial("tcp", addr)
        with pytest.raises(ConnectionRefusedError):
            await net.dial("tcp", f"127.0.0.1:{addr[1]}", timeout=5)
        return True
    assert rt.run(main)


def test_second_listen_same_port_fails():
    """tcpsock_test.go: without reuse_port a second listen on a bound port
    raises OSError; with reuse_port on both it works."""
    ln = net.listen("tcp", "127.0.0.1:0")
    try:
        with pytest.raises(OSError):
            net.listen("tcp", f"127.0.0.1:{ln.addr[1]}")
    finally:
        ln.close()
    a = net.listen("tcp", "127.0.0.1:0", reuse_port=True)
    b = net.listen("tcp", ("127.0.0.1", a.addr[1]), reuse_port=True)
    a.close()
    b.close()


def test_read_into_and_large_messages(rt):
    """tcpsock_test.go TestTCPBig-ish: 4 MiB each way, read_into with a
    memoryview, every byte checked."""
    payload = os.urandom(1 << 22)

    async def body(s, c):
        async def w():
            await c.write(payload)
        go(w)
        buf = bytearray(len(payload))
        view = memoryview(buf)
        got = 0
        while got < len(payload):
            n = await s.read_into(view[got:])
            assert n > 0
            got += n
        assert bytes(buf) == payload
        return True
    assert rt.run(_pair_main(body))


# ---------------------------------------------------------------- unixsock_test.go

def test_unix_listener_and_dial(rt, tmp_path):
    """unixsock_test.go TestUnixConnLocalAndRemoteNames-ish: addresses are
    paths; the listener's socket file is removed on close."""
    path = str(tmp_path / "u.sock")

    async def main():
        ln = net.listen("unix", path)
        assert ln.addr == path and os.path.exists(path)
        acc = Chan(1)

        async def a():
            s = await ln.accept()
            await s.write(b"hi")
            await acc.send(s)
        go(a)
        c = await net.dial("unix", path)
        assert await c.read() == b"hi"
        assert c.remote_addr == path
        s = await acc.recv()
        c.close(); s.close(); ln.close()
        assert not os.path.exists(path)
        return True
    assert rt.run(main)


# ---------------------------------------------------------------- blocking twins

def test_blocking_twins_from_threads_and_sync_goroutines(rt):
    """blocking_accept/read/write/dial from a plain thread, from a sync
    goroutine and against an async peer: same descriptors, same rules."""
    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        done = Chan(3)

        def sync_server():
            s = ln.blocking_accept()
            while d := s.blocking_read(10):
                s.blocking_write(d.upper())
            s.close()
            done.blocking_send("server")

        def thread_client():
            c = net.blocking_dial("tcp", ln.addr)
            for w in (b"abc", b"defg"):
                c.blocking_write(w)
                got = b""
                while len(got) < len(w):
                    got += c.blocking_read()
                assert got == w.upper()
            c.close()
            done.blocking_send("client")
        go(sync_server)
        t = threading.Thread(target=thread_client)
        t.start()
        got = {await done.recv(), await done.recv()}
        t.join()
        ln.close()
        return got
    assert rt.run(main) == {"server", "client"}


def test_blocking_call_inside_async_goroutine_raises(rt):
    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        try:
            with pytest.raises(RuntimeError, match="await ln.accept"):
                ln.blocking_accept()
        finally:
            ln.close()
        return True
    assert rt.run(main)


# ---------------------------------------------------------------- bad input

def test_bad_input():
    with pytest.raises(ValueError):
        net.listen("tcpx", "127.0.0.1:0")
    with pytest.raises(ValueError):
        net.listen("udp", "127.0.0.1:0")
    with pytest.raises(TypeError):
        net.listen(42, "127.0.0.1:0")
    for bad in ("127.0.0.1", "::1:0", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:x",
                "[::1", "[::1]80"):
        with pytest.raises(ValueError):
            net.listen("tcp", bad)
    with pytest.raises(TypeError):
        net.listen("tcp", 8080)
    with pytest.raises(ValueError):
        net.listen("tcp4", "[::1]:0")
    with pytest.raises(TypeError):
        net.blocking_dial("tcp", ("127.0.0.1", "80"))
    with pytest.raises(ValueError):
        net.blocking_dial("tcp", "nope")
    with pytest.raises(TypeError):
        net.blocking_dial("tcp", "127.0.0.1:1", timeout="1")
    # dial checks its input at the call, before anything is awaited
    with pytest.raises(ValueError):
        net.dial("tcpx", "127.0.0.1:1")
    with pytest.raises(ValueError):
        net.dial("tcp", "::1:80")
    with pytest.raises(TypeError):
        net.dial("tcp", "127.0.0.1:1", timeout=[1])

    async def body(s, c):
        with pytest.raises(ValueError):
            c.read(-1)
        with pytest.raises(TypeError):
            c.write("str")
        with pytest.raises(TypeError):
            c.write(42)
        with pytest.raises(TypeError):
            c.read_into(b"immutable")
        with pytest.raises(TypeError):
            c.set_deadline("soon")
        with pytest.raises(ValueError):
            c.set_read_deadline(float("nan"))
        with pytest.raises(TypeError):
            net.Conn()
        return True
    gocore.gomaxprocs(1)
    assert gocore.run(_pair_main(body))


# ---------------------------------------------------------------- dump, deadlock

def test_dump_shows_io_wait(rt):
    """A goroutine parked on a read shows as [IO wait, fd N, read]."""
    async def body(s, c):
        async def reader():
            try:
                await c.read()
            except net.ErrClosed:
                pass
        go(reader)
        await wait_parked(1, reason="IO wait", fn=reader)
        dump = gocore.dump_goroutines()
        assert f"[IO wait, fd {c.fileno()}, read]" in dump, dump
        return True
    assert rt.run(_pair_main(body))


@pytest.mark.timeout(30)
def test_no_deadlock_while_waiting_on_io_woken_by_plain_thread(rt):
    """Deadlock detection never fires while a goroutine waits on I/O: main
    waits on a channel that only a goroutine reading a socket will send
    on, and the only writer to that socket is a plain thread (0.3 s later)."""
    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        raw = socket.create_connection(ln.addr)
        s = await ln.accept()
        ch = Chan()

        async def reader():
            await ch.send(await s.read())
        go(reader)

        def later():
            time.sleep(0.3)
            raw.sendall(b"from a thread")
        threading.Thread(target=later, daemon=True).start()
        got = await ch.recv()
        s.close(); ln.close(); raw.close()
        return got
    assert rt.run(main) == b"from a thread"


def test_deadlock_still_detected_after_io(rt):
    """Once nothing waits on I/O any more, a real deadlock is reported."""
    async def body(s, c):
        await c.write(b"x")
        assert await s.read() == b"x"
        with pytest.raises(gocore.DeadlockError):
            await Chan().recv()
        return True
    assert rt.run(_pair_main(body))


@pytest.mark.timeout(30)
def test_teardown_closes_goroutines_parked_on_io(rt):
    """When run() returns, goroutines parked on I/O (async and sync) are
    closed, their finally blocks run, and the conns can still be closed
    from the calling thread."""
    log = []
    conns = []

    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        conns.append(ln)

        async def reader(c):
            try:
                await c.read()
            finally:
                log.append("async finally")

        def sync_reader(c):
            try:
                c.blocking_read()
            finally:
                log.append("sync finally")

        async def acceptor():
            try:
                await ln.accept()
            finally:
                log.append("accept finally")
        for fn in (reader, sync_reader):
            c = await net.dial("tcp", ln.addr)
            conns.append(c)
            go(fn, c)
        s = await ln.accept()
        conns.append(s)
        go(acceptor)
        await sleep(0.05)
    rt.run(main)
    for c in conns:
        c.close()
    assert sorted(log) == ["accept finally", "async finally", "sync finally"]
    # the runtime is reusable and the poller still works
    assert rt.run(_pair_main(_echo_once))


async def _echo_once(s, c):
    await c.write(b"again")
    return await s.read() == b"again"


# ---------------------------------------------------------------- one poll readies many

@pytest.mark.skipif(not FREE_THREADED,
                    reason="GIL builds keep a poll's goroutines on the polling M (goready's rule)")
@pytest.mark.timeout(60)
def test_goroutines_readied_by_one_poll_spread_over_ps():
    """Go's injectglist: the goroutines one poll readies are offered to idle
    Ps, not all left on the polling M's P. 16 connections whose handlers each
    do about 1 ms of Python per request (under sysmon's 10 ms hand-off), all
    made ready at once by a client thread: at gomaxprocs 2 the handlers
    run on both Ms (E2W before the fix: every request on the polling M)."""
    nconn, rounds = 16, 40
    threads = collections.Counter()

    def work():
        t = time.perf_counter() + 0.001
        while time.perf_counter() < t:
            pass

    async def handler(s):
        for _ in range(rounds):
            if not await s.read(1):
                break
            threads[threading.get_ident()] += 1
            work()
            await s.write(b"y")
        s.close()

    def client(addr, errors):
        # a plain thread with blocking sockets, as a load generator would be
        try:
            cs = [socket.create_connection(addr[:2]) for _ in range(nconn)]
            for _ in range(rounds):
                for c in cs:          # every request in flight before any reply
                    c.sendall(b"x")
                for c in cs:
                    assert c.recv(1) == b"y"
            for c in cs:
                c.close()
        except BaseException as e:
            errors.append(e)

    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        errors = []
        t = threading.Thread(target=client, args=(ln.addr, errors))
        t.start()
        wg = WaitGroup()
        for _ in range(nconn):
            s = await ln.accept()
            wg.add(1)
            async def serve(s=s):
                try:
                    await handler(s)
                finally:
                    wg.done()
            go(serve)
        await wg.wait()
        ln.close()
        t.join()
        assert not errors, errors

    saved = gocore.gomaxprocs(2)
    try:
        gocore.run(main)
    finally:
        gocore.gomaxprocs(saved)
    assert len(threads) >= 2, f"every handler ran on one thread: {threads}"
    # measured: 50/50 with the fix; 58-90% on one M before it
    assert max(threads.values()) < 0.9 * nconn * rounds, f"one M ran nearly all: {threads}"
