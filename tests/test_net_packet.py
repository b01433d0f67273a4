"""gocore.net packets: Go's net/udpsock_test.go, unixsock_test.go (the
unixgram parts) and timeout_test.go's ReadFrom cases re-expressed (the
origin of each is in its docstring). Loopback only."""
import os
import socket
import threading
import time

import pytest

import gocore
from gocore import Chan, WaitGroup, go, net, sleep

pytestmark = pytest.mark.timeout(60)
VALGRIND = os.environ.get("GOCORE_VALGRIND") == "1"     # .ci/valgrind.sh: ~30x slower


def _has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _has_ipv6_loopback()


async def _echo_once(pc):
    """Read one datagram and send it back, upper-cased, to whoever sent it
    (read_from's address goes to write_to as is)."""
    data, addr = await pc.read_from()
    await pc.write_to(data.upper(), addr)
    return addr


# ---------------------------------------------------------------- udpsock_test.go

@pytest.mark.timeout(30)
@pytest.mark.parametrize("network,host", [("udp", "127.0.0.1"), ("udp4", "127.0.0.1"),
                                          ("udp6", "::1"), ("udp", "::1")])
def test_udp_echo_and_addresses(rt, network, host):
    """udpsock_test.go TestUDPConnSpecificMethods / TestWriteToUDP: echo
    through read_from/write_to; the address read_from gives is the
    sender's local_addr and round-trips to write_to."""
    if ":" in host and not HAS_IPV6:
        pytest.skip("no IPv6 loopback")
    bracket = f"[{host}]" if ":" in host else host

    async def main():
        srv = net.listen_packet(network, f"{bracket}:0")
        cli = net.listen_packet(network, (host, 0))
        assert srv.local_addr[0] == host and srv.local_addr[1] > 0
        assert srv.network == network and isinstance(srv.fileno(), int)
        got = Chan(1)

        async def server():
            await got.send(await _echo_once(srv))
        go(server)
        assert await cli.write_to(b"ping", srv.local_addr) == 4
        data, addr = await cli.read_from()
        assert data == b"PING"
        assert addr[:2] == srv.local_addr[:2]
        assert (await got.recv())[:2] == cli.local_addr[:2]
        srv.close()
        cli.close()
        return True
    assert rt.run(main)


@pytest.mark.timeout(30)
def test_udp_forms_of_write_to(rt):
    """udpsock_test.go TestResolveUDPAddr-ish: write_to takes every form
    dial takes - "host:port", (host, port), "localhost:port" (resolved off
    the M) - and a dual-stack "udp" socket shows IPv4 peers as IPv4."""
    async def main():
        srv = net.listen_packet("udp", ":0")          # every interface, dual-stack where possible
        port = srv.local_addr[1]
        cli = net.listen_packet("udp4", "127.0.0.1:0")
        forms = [f"127.0.0.1:{port}", ("127.0.0.1", port), f"localhost:{port}",
                 ("localhost", port)]
        for i, form in enumerate(forms):
            msg = f"m{i}".encode()
            assert await cli.write_to(msg, form) == len(msg)
        seen = set()
        for _ in forms:
            data, addr = await srv.read_from()
            seen.add(data)
            assert addr == cli.local_addr, (addr, cli.local_addr)   # not ::ffff:127.0.0.1
        assert seen == {b"m0", b"m1", b"m2", b"m3"}
        # and back, to the address as read_from gave it
        assert await srv.write_to(b"back", addr) == 4
        assert await cli.read_from() == (b"back", ("127.0.0.1", port))
        srv.close()
        cli.close()
        return True
    assert rt.run(main)


@pytest.mark.timeout(30)
def test_udp_empty_and_truncated_datagrams(rt):
    """udpsock_test.go TestUDPZeroBytePayload / TestUDPReadSizeError-ish:
    an empty datagram reads as b"" (not an end of stream); a datagram
    longer than n is cut to n and the rest dropped; datagrams keep their
    boundaries."""
    async def main():
        a = net.listen_packet("udp4", "127.0.0.1:0")
        b = net.listen_packet("udp4", "127.0.0.1:0")
        await a.write_to(b"", b.local_addr)
        await a.write_to(b"0123456789", b.local_addr)
        await a.write_to(b"xy", b.local_addr)
        assert await b.read_from() == (b"", a.local_addr)
        assert await b.read_from(4) == (b"0123", a.local_addr)
        assert await b.read_from(4) == (b"xy", a.local_addr)
        a.close()
        b.close()
        return True
    assert rt.run(main)


@pytest.mark.timeout(30)
def test_udp_many_goroutines_one_socket(rt):
    """Several readers and writers on one PacketConn: every datagram is
    delivered once (reads and writes are serialised per direction); close()
    ends every reader, those queued for the read lock included."""
    N, W = 200, 4

    async def main():
        srv = net.listen_packet("udp4", "127.0.0.1:0")
        cli = net.listen_packet("udp4", "127.0.0.1:0")
        got = Chan(N)
        readers = WaitGroup()

        async def reader():
            while True:
                try:
                    data, _ = await srv.read_from()
                except net.ErrClosed:
                    return
                await got.send(data)    # (parsed by main: valgrind flags CPython's int("0") in gocore's frames)

        async def writer(k):
            for i in range(k, N, W):
                await cli.write_to(str(i).encode(), srv.local_addr)
                if i % 16 == 0:
                    await sleep(0.001)           # stay below the socket's receive buffer
        for _ in range(3):
            readers.go(reader)
        for k in range(W):
            go(writer, k)
        seen = set()
        srv.set_read_deadline(time.monotonic() + 10)
        for _ in range(N):
            seen.add(int(await got.recv()))
        srv.close()
        cli.close()
        # wait for the readers: a goroutine still queued on a Mutex when run()
        # returns upsets the goroutine count (a runtime issue, reported)
        await readers.wait()
        return seen
    assert rt.run(main) == set(range(200))


# ---------------------------------------------------------------- timeout_test.go (ReadFrom)

@pytest.mark.timeout(30)
def test_read_from_deadlines(rt):
    """timeout_test.go TestReadFromTimeout: a read_from waiting past its
    deadline raises DeadlineExceeded (never early); later ones fail at
    once, even with a datagram queued, until the deadline moves; moving it
    later lets reading go on; set_read_deadline(now) from another
    goroutine unblocks a reader (Go's idiom)."""
    async def main():
        pc = net.listen_packet("udp4", "127.0.0.1:0")
        peer = net.listen_packet("udp4", "127.0.0.1:0")
        t0 = time.monotonic()
        pc.set_read_deadline(t0 + 0.1)
        with pytest.raises(net.DeadlineExceeded):
            await pc.read_from()
        assert time.monotonic() - t0 >= 0.1
        await peer.write_to(b"queued", pc.local_addr)
        await sleep(0.02)
        with pytest.raises(net.DeadlineExceeded):
            await pc.read_from()                      # passed: fails though data is ready
        pc.set_read_deadline(None)
        assert await pc.read_from() == (b"queued", peer.local_addr)
        # writes are not affected by the read deadline
        pc.set_read_deadline(time.monotonic() - 1)
        assert await pc.write_to(b"w", peer.local_addr) == 1
        assert (await peer.read_from())[0] == b"w"
        # unblock a waiting reader from another goroutine
        pc.set_read_deadline(None)
        res = Chan(1)

        async def reader():
            try:
                await pc.read_from()
                await res.send("data")
            except net.DeadlineExceeded:
                await res.send("deadline")
        go(reader)
        await sleep(0.05)
        pc.set_read_deadline(time.monotonic())
        assert await res.recv() == "deadline"
        pc.close()
        peer.close()
        return True
    assert rt.run(main)


@pytest.mark.timeout(30)
def test_close_wakes_read_from(rt):
    """net_test.go TestCloseUnblocksRead for packets: close() wakes a
    read_from at once with ErrClosed; later calls raise ErrClosed; closing
    twice is silent."""
    async def main():
        pc = net.listen_packet("udp4", "127.0.0.1:0")
        res = Chan(1)

        async def reader():
            try:
                await pc.read_from()
            except net.ErrClosed as e:
                await res.send(e)
        go(reader)
        await sleep(0.05)
        t0 = time.monotonic()
        pc.close()
        e = await res.recv()
        assert isinstance(e, OSError) and (time.monotonic() - t0 < 1.0 or VALGRIND)
        pc.close()
        with pytest.raises(net.ErrClosed):
            await pc.read_from()
        with pytest.raises(net.ErrClosed):
            await pc.write_to(b"x", ("127.0.0.1", 9))
        with pytest.raises(net.ErrClosed):
            pc.fileno()
        return True
    assert rt.run(main)


# ---------------------------------------------------------------- unixsock_test.go (unixgram)

@pytest.mark.timeout(30)
def test_unixgram_echo_and_addresses(rt, tmp_path):
    """unixsock_test.go TestUnixgramAutobind / TestUnixgramWrite: paths are
    the addresses; "" binds an unnamed (autobind) address that replies
    reach; the socket file stays after close (as Go's)."""
    spath = str(tmp_path / "srv.sock")
    cpath = str(tmp_path / "cli.sock")

    async def main():
        srv = net.listen_packet("unixgram", spath)
        assert srv.local_addr == spath
        got = Chan(2)

        async def server():
            while True:
                try:
                    await got.send(await _echo_once(srv))
                except net.ErrClosed:
                    return
        go(server)
        named = net.listen_packet("unixgram", cpath)
        clients = [named]
        if not VALGRIND:      # (valgrind reads an autobind's unset sun_path: a false report)
            auto = net.listen_packet("unixgram", "")
            assert auto.local_addr.startswith("\0")   # Linux abstract autobind name
            clients.append(auto)
        for cli in clients:
            assert await cli.write_to(b"hi", spath) == 2
            assert await cli.read_from() == (b"HI", spath)
            assert await got.recv() == cli.local_addr
        for x in (srv, *clients):
            x.close()
        return True
    assert rt.run(main)
    assert os.path.exists(spath)


# ---------------------------------------------------------------- blocking twins

@pytest.mark.timeout(30)
def test_packet_blocking_twins(rt):
    """blocking_read_from / blocking_write_to from a plain thread and a
    sync goroutine, against an async peer; inside a lightweight goroutine
    they raise RuntimeError naming the await form."""
    async def main():
        srv = net.listen_packet("udp4", "127.0.0.1:0")
        done = Chan(2)

        def sync_echo():
            data, addr = srv.blocking_read_from()
            srv.blocking_write_to(data[::-1], addr)
            done.blocking_send("sync")

        def thread_client():
            cli = net.listen_packet("udp4", "127.0.0.1:0")
            cli.set_read_deadline(time.monotonic() + 10)
            assert cli.blocking_write_to(b"abc", f"localhost:{srv.local_addr[1]}") == 3
            assert cli.blocking_read_from() == (b"cba", srv.local_addr)
            cli.close()
            done.blocking_send("thread")
        go(sync_echo)
        t = threading.Thread(target=thread_client)
        t.start()
        got = {await done.recv(), await done.recv()}
        t.join()
        with pytest.raises(RuntimeError, match="await pc.read_from"):
            srv.blocking_read_from()
        with pytest.raises(RuntimeError, match="await pc.write_to"):
            srv.blocking_write_to(b"x", srv.local_addr)
        srv.close()
        return got
    assert rt.run(main) == {"sync", "thread"}


# ---------------------------------------------------------------- bad input

@pytest.mark.timeout(30)
def test_packet_bad_input(rt):
    """Bad input raises ValueError/TypeError at the call."""
    with pytest.raises(ValueError):
        net.listen_packet("tcp", "127.0.0.1:0")
    with pytest.raises(ValueError):
        net.listen_packet("udpx", "127.0.0.1:0")
    with pytest.raises(ValueError):
        net.listen("udp", "127.0.0.1:0")
    with pytest.raises(ValueError):
        net.dial("udp", "127.0.0.1:1")                  # dial is for streams here
    with pytest.raises(TypeError):
        net.listen_packet(None, "127.0.0.1:0")
    with pytest.raises(ValueError):
        net.listen_packet("udp", "127.0.0.1")           # no port
    with pytest.raises(ValueError):
        net.listen_packet("udp4", "[::1]:0")
    with pytest.raises(TypeError):
        net.listen_packet("unixgram", 42)
    with pytest.raises(TypeError):
        net.PacketConn()

    async def main():
        pc = net.listen_packet("udp4", "127.0.0.1:0")
        try:
            with pytest.raises(ValueError):
                pc.read_from(-1)
            with pytest.raises(TypeError):
                pc.write_to("str", pc.local_addr)
            with pytest.raises(TypeError):
                pc.write_to(42, pc.local_addr)
            with pytest.raises(TypeError):
                pc.write_to(b"x", 42)
            with pytest.raises(ValueError):
                pc.write_to(b"x", "nope")                 # no port
            with pytest.raises(ValueError):
                pc.write_to(b"x", ("127.0.0.1", 70000))
            with pytest.raises(ValueError):
                pc.write_to(b"x", ("::1", 9))             # IPv6 to an IPv4 socket
            with pytest.raises(TypeError):
                pc.set_read_deadline("soon")
        finally:
            pc.close()
        return True
    assert rt.run(main)
