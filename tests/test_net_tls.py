"""gocore.net TLS (TLSConn over ssl.MemoryBIO): Go's crypto/tls round trips
re-expressed (the origin is in each docstring: tls_test.go,
handshake_test.go), with certificates made at test time by trustme, and
interoperation with the standard library's own ssl sockets. Loopback only.

Where trustme cannot be installed (free-threaded 3.13t: its cryptography
dependency has no wheel there) the certificates come from the openssl
command instead: a CA and a leaf for "localhost" signed by it; without
either, the module skips."""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from gocore import Chan, WaitGroup, go, net

try:
    import trustme
except ImportError:
    trustme = None
if trustme is None and not shutil.which("openssl"):
    pytest.skip("the TLS tests need trustme (pip install 'gocore[test]') or the openssl command",
                allow_module_level=True)

pytestmark = pytest.mark.timeout(60)


class _OpensslCA:
    """trustme.CA's three calls used here, with the openssl command."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gocore-tls-test.")
        self.key, self.pem = self._p("ca.key"), self._p("ca.pem")
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-days", "2", "-subj", "/CN=gocore test CA", "-keyout", self.key, "-out", self.pem,
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _p(self, name):
        return os.path.join(self.dir, name)

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def leaf(self, host):
        key, csr, pem, ext = (self._p(f"{host}.{x}") for x in ("key", "csr", "pem", "ext"))
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{host},IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-subj", f"/CN={host}", "-keyout", key, "-out", csr)
        self._run("x509", "-req", "-in", csr, "-CA", self.pem, "-CAkey", self.key,
                  "-CAcreateserial", "-days", "2", "-out", pem, "-extfile", ext)
        return pem, key


def _new_ca():
    return trustme.CA() if trustme is not None else _OpensslCA()


def _configure_server(ca, ctx):
    if trustme is not None:
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    else:
        ctx.load_cert_chain(*ca.leaf("localhost"))


def _configure_trust(ca, ctx):
    if trustme is not None:
        ca.configure_trust(ctx)
    else:
        ctx.load_verify_locations(ca.pem)


@pytest.fixture(scope="module")
def ca():
    c = _new_ca()
    yield c
    if trustme is None:
        shutil.rmtree(c.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def server_ctx(ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _configure_server(ca, ctx)
    return ctx


@pytest.fixture(scope="module")
def client_ctx(ca):
    ctx = ssl.create_default_context()
    _configure_trust(ca, ctx)
    return ctx


async def _pair():
    """A connected pair of plain Conns (server side, client side)."""
    ln = net.listen("tcp", "127.0.0.1:0")
    accepted = Chan(1)

    async def acceptor():
        await accepted.send(await ln.accept())
    go(acceptor)
    c = await net.dial("tcp", ln.addr)
    s = await accepted.recv()
    ln.close()
    return s, c


def _tls_pair_main(body, server_ctx, client_ctx, hostname="localhost"):
    async def main():
        s, c = await _pair()
        ts = net.tls_server(s, server_ctx)
        tc = net.tls_client(c, client_ctx, server_hostname=hostname)
        try:
            return await body(ts, tc)
        finally:
            ts.close()
            tc.close()
    return main


# ---------------------------------------------------------------- round trips

def test_handshake_round_trip(rt, server_ctx, client_ctx):
    """handshake_test.go (client and server of this package talking to each
    other): explicit handshake on one side, implicit (first write/read) on
    the other; TLS 1.3 negotiated; echo of many sizes; addresses and fileno
    of the Conn underneath."""
    async def body(ts, tc):
        done = Chan(1)

        async def server():
            try:
                while data := await ts.read(65536):
                    await ts.write(data)
                await done.send(None)
            except BaseException as e:
                await done.send(e)
        go(server)
        await tc.handshake()
        assert tc.version() == "TLSv1.3"
        assert tc.cipher() is not None
        assert ("DNS", "localhost") in tc.getpeercert()["subjectAltName"]
        assert tc.remote_addr == ts.local_addr and tc.local_addr == ts.remote_addr
        assert tc.fileno() == tc.conn.fileno()
        for size in (1, 100, 16384, 16385, 100_000):
            msg = os.urandom(size)
            assert await tc.write(msg) == size
            got = bytearray()
            while len(got) < size:
                chunk = await tc.read(size - len(got))
                assert chunk, "EOF too early"
                got += chunk
            assert got == msg
        buf = bytearray(10)
        await tc.write(b"0123456789")
        n = 0
        while n < 10:
            n += await tc.read_into(memoryview(buf)[n:])
        assert buf == b"0123456789"
        await tc.close_write()                      # close_notify: the server sees EOF
        assert await done.recv() is None
        assert ts.version() == "TLSv1.3"
        return True
    assert rt.run(_tls_pair_main(body, server_ctx, client_ctx)) is True


def test_interop_with_stdlib_ssl_server(rt, ca, server_ctx, client_ctx):
    """A gocore TLS client against the standard library's blocking
    ssl.SSLSocket server in a plain thread: the bytes on the wire are
    real TLS, not just something TLSConn understands."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    seen = []

    def server():
        raw, _ = lsock.accept()
        with server_ctx.wrap_socket(raw, server_side=True) as ss:
            f = ss.makefile("rb")
            line = f.readline()
            seen.append(line)
            ss.sendall(b"pong:" + line)
            ss.unwrap()                              # close_notify, waits for the client's
    t = threading.Thread(target=server)
    t.start()

    async def main():
        c = await net.dial("tcp", ("127.0.0.1", port))
        async with net.tls_client(c, client_ctx, server_hostname="localhost") as tc:
            await tc.write(b"ping\n")
            got = b""
            while data := await tc.read():
                got += data
            return got
    try:
        assert rt.run(main) == b"pong:ping\n"
    finally:
        t.join(10)
        lsock.close()
    assert seen == [b"ping\n"]


def test_interop_with_stdlib_ssl_client(rt, server_ctx, client_ctx):
    """The standard library's ssl client (a plain thread) against a gocore
    TLS server, which closes with close_notify: the client's unwrap()
    completes, so the alert really went out."""
    out = []

    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        port = ln.addr[1]

        def client():
            with socket.create_connection(("127.0.0.1", port)) as raw:
                # suppress_ragged_eofs=False: EOF without close_notify would raise
                with client_ctx.wrap_socket(raw, server_hostname="localhost",
                                            suppress_ragged_eofs=False) as cs:
                    cs.sendall(b"hello")
                    data = b""
                    while len(data) < 10:
                        data += cs.recv(100)
                    out.append(data)
                    out.append(cs.recv(100))         # b"": the server's close_notify
        t = threading.Thread(target=client)
        t.start()
        c = await ln.accept()
        ln.close()
        ts = net.tls_server(c, server_ctx)
        data = b""
        while len(data) < 5:
            data += await ts.read()
        await ts.write(data * 2)
        ts.close()
        return t
    rt.run(main).join(10)
    assert out == [b"hellohello", b""]


# ---------------------------------------------------------------- verification failures

def test_verify_hostname_mismatch(rt, server_ctx, client_ctx):
    """tls_test.go TestVerifyHostname: a certificate for "localhost" does
    not verify as "example.com": ssl.SSLCertVerificationError on the client
    (an ssl.SSLError), and the server's handshake fails on the alert."""
    async def body(ts, tc):
        errs = Chan(1)

        async def server():
            try:
                await ts.handshake()
                await errs.send(None)
            except Exception as e:
                await errs.send(e)
        go(server)
        with pytest.raises(ssl.SSLCertVerificationError) as ei:
            await tc.write(b"x")                      # the first write handshakes
        assert "hostname" in str(ei.value).lower() or "match" in str(ei.value).lower()
        with pytest.raises(ssl.SSLCertVerificationError):
            await tc.read()                           # the failure is sticky
        e = await errs.recv()
        assert isinstance(e, (ssl.SSLError, ConnectionError)), e
        return True
    assert rt.run(_tls_pair_main(body, server_ctx, client_ctx, hostname="example.com"))


def test_unknown_ca(rt, server_ctx):
    """handshake_client_test.go (an untrusted root): a client trusting
    another CA refuses the server's certificate."""
    other = ssl.create_default_context()
    other_ca = _new_ca()
    _configure_trust(other_ca, other)

    async def body(ts, tc):
        go(_swallow(ts.handshake()))
        with pytest.raises(ssl.SSLCertVerificationError) as ei:
            await tc.handshake()
        assert ei.value.verify_code != 0
        return True
    try:
        assert rt.run(_tls_pair_main(body, server_ctx, other))
    finally:
        if trustme is None:
            shutil.rmtree(other_ca.dir, ignore_errors=True)


async def _swallow(aw):
    try:
        await aw
    except (OSError, ssl.SSLError):
        pass


# ---------------------------------------------------------------- bulk, full duplex

def test_large_transfer_both_ways(rt, server_ctx, client_ctx):
    """tls_test.go TestConnCloseWrite / conn_test.go-style bulk transfer:
    6 MB each way at once, a reader and a writer goroutine on each TLSConn
    in parallel (the SSLObject is shared by both directions), every byte
    checked by hash; close_write ends each direction."""
    size = 6 * 1024 * 1024

    async def body(ts, tc):
        results = Chan(4)
        wg = WaitGroup()

        def pattern(seed):
            return hashlib.sha256(seed).digest() * (size // 32)

        async def writer(t, seed):
            data = pattern(seed)
            mv = memoryview(data)
            for off in range(0, size, 300_000):     # uneven chunks across record boundaries
                await t.write(mv[off:off + 300_000])
            await t.close_write()
            wg.done()

        async def reader(t, seed):
            h = hashlib.sha256()
            n = 0
            while data := await t.read(70_000):
                h.update(data)
                n += len(data)
            await results.send((seed, n, h.hexdigest()))
            wg.done()
        wg.add(4)
        go(writer, tc, b"c2s")
        go(writer, ts, b"s2c")
        go(reader, ts, b"c2s")
        go(reader, tc, b"s2c")
        await wg.wait()
        got = sorted([await results.recv(), await results.recv()])
        return got, {seed: hashlib.sha256(pattern(seed)).hexdigest() for seed in (b"c2s", b"s2c")}
    got, want = rt.run(_tls_pair_main(body, server_ctx, client_ctx))
    assert got == [(b"c2s", size, want[b"c2s"]), (b"s2c", size, want[b"s2c"])]


# ---------------------------------------------------------------- deadlines and close

def test_read_deadline(rt, server_ctx, client_ctx):
    """tls_test.go TestDeadlineOnWrite's read twin: a read deadline passes
    while the peer is silent (DeadlineExceeded, not early); moving it
    later lets reading go on."""
    async def body(ts, tc):
        go(_swallow(ts.handshake()))
        await tc.handshake()
        t0 = time.monotonic()
        tc.set_read_deadline(t0 + 0.2)
        with pytest.raises(net.DeadlineExceeded):
            await tc.read()
        assert time.monotonic() - t0 >= 0.19
        tc.set_read_deadline(None)
        await ts.write(b"late")
        assert await tc.read() == b"late"
        return True
    assert rt.run(_tls_pair_main(body, server_ctx, client_ctx))


def test_write_deadline(rt, server_ctx, client_ctx):
    """tls_test.go TestDeadlineOnWrite: a writer to a peer that does not
    read fills the socket buffers and fails at its write deadline."""
    async def body(ts, tc):
        go(_swallow(ts.handshake()))
        await tc.handshake()
        tc.set_write_deadline(time.monotonic() + 0.3)
        with pytest.raises(net.DeadlineExceeded):
            while True:
                await tc.write(b"x" * 65536)
        return True
    assert rt.run(_tls_pair_main(body, server_ctx, client_ctx))


def test_handshake_deadline_against_silent_server(rt, client_ctx):
    """dial-then-handshake timeout (tls_test.go TestDialTimeout): a server
    that accepts but never speaks TLS; the handshake fails at the deadline."""
    async def main():
        s, c = await _pair()
        tc = net.tls_client(c, client_ctx, server_hostname="localhost")
        tc.set_deadline(time.monotonic() + 0.2)
        try:
            with pytest.raises(net.DeadlineExceeded):
                await tc.handshake()
        finally:
            tc.close()
            s.close()
        return True
    assert rt.run(main)


def test_close_during_handshake(rt, client_ctx):
    """tls_test.go TestConnCloseBreakingWrite, at the handshake: closing the
    TLSConn from another goroutine wakes the goroutine parked in the
    handshake with ErrClosed, at once; later calls raise ErrClosed."""
    async def main():
        s, c = await _pair()
        tc = net.tls_client(c, client_ctx, server_hostname="localhost")
        out = Chan(1)

        async def hs():
            try:
                await tc.handshake()
                await out.send(None)
            except BaseException as e:
                await out.send(e)
        go(hs)
        assert await s.read(5)                     # the ClientHello arrived: it is parked
        t0 = time.monotonic()
        tc.close()
        e = await out.recv()
        assert isinstance(e, net.ErrClosed), e
        assert time.monotonic() - t0 < 2.0
        tc.close()                                  # twice: silent
        with pytest.raises(net.ErrClosed):
            await tc.write(b"x")
        with pytest.raises(net.ErrClosed):
            await tc.read()
        s.close()
        return True
    assert rt.run(main)


def test_eof_without_close_notify(rt, server_ctx, client_ctx):
    """tls_test.go TestConnReadNonzeroAndEOF's truncation case: the peer's
    socket closes with no close_notify; read returns b"" (accepted as
    EOF), and again after that."""
    async def body(ts, tc):
        go(_swallow(ts.handshake()))
        await tc.handshake()
        await ts.write(b"last words")
        ts.conn.close()                             # the raw socket: no alert
        assert await tc.read() == b"last words"
        assert await tc.read() == b""
        assert await tc.read_into(bytearray(5)) == 0
        return True
    assert rt.run(_tls_pair_main(body, server_ctx, client_ctx))


def test_close_sends_close_notify(rt, server_ctx, client_ctx):
    """close() sends close_notify: the peer's read ends with b"" after
    the data; writing to a TLSConn after close_write raises BrokenPipeError
    while reading goes on (half-close, tls_test.go TestConnCloseWrite)."""
    async def body(ts, tc):
        go(_swallow(ts.handshake()))
        await tc.handshake()
        await tc.write(b"request")
        await tc.close_write()
        with pytest.raises(BrokenPipeError):
            await tc.write(b"more")
        got = b""
        while data := await ts.read():
            got += data
        assert got == b"request"
        await ts.write(b"response")
        ts.close()
        got = b""
        while data := await tc.read():
            got += data
        assert got == b"response"
        return True
    assert rt.run(_tls_pair_main(body, server_ctx, client_ctx))


def test_close_write_keeps_unread_data(rt, server_ctx, client_ctx):
    """Half-close with records already read from the socket but not yet by
    the application: close_write must not lose them (Python's unwrap() runs
    SSL_shutdown twice, and the second call consumes and discards incoming
    application records; TLSConn decrypts them first). Failed before the
    fix: the later reads got 10 bytes and then an SSLEOFError."""
    size = 200_000
    data = os.urandom(size)

    async def body(ts, tc):
        go(_swallow(ts.handshake()))
        await tc.handshake()
        await ts.write(data)
        await ts.close_write()
        first = await tc.read(10)                   # one raw read is in the BIO now
        assert tc._in.pending or tc._ssl.pending()  # the situation under test
        await tc.close_write()
        got = first
        while chunk := await tc.read(7000):         # partial records too
            got += chunk
        assert len(got) == size and got == data
        assert await ts.read() == b""
        return True
    assert rt.run(_tls_pair_main(body, server_ctx, client_ctx))


# ---------------------------------------------------------------- blocking twins

def test_blocking_twins_from_sync_goroutine(rt, server_ctx, client_ctx):
    """blocking_handshake / blocking_write / blocking_read / blocking_read_into
    / blocking_close_write from a sync goroutine against an async server;
    in a lightweight goroutine they raise RuntimeError naming the await form."""
    async def body(ts, tc):
        async def server():
            try:
                while data := await ts.read():
                    await ts.write(data.upper())
            finally:
                ts.close()
        go(server)
        out = Chan(1)

        def client():                               # a sync goroutine: its own thread
            try:
                tc.blocking_handshake()
                tc.blocking_write(b"abc")
                got = b""
                while len(got) < 3:
                    got += tc.blocking_read(10)
                tc.blocking_write(bytearray(b"xyz"))
                buf = bytearray(3)
                n = 0
                while n < 3:
                    n += tc.blocking_read_into(memoryview(buf)[n:])
                tc.blocking_close_write()
                tail = tc.blocking_read()
                out.blocking_send((got, bytes(buf), tail))
            except BaseException as e:
                out.blocking_send(e)
        go(client)
        res = await out.recv()
        assert res == (b"ABC", b"XYZ", b""), res
        for call in (lambda: tc.blocking_read(), lambda: tc.blocking_write(b"x"),
                     lambda: tc.blocking_handshake()):
            with pytest.raises(RuntimeError, match="await tls"):
                call()
        return True
    assert rt.run(_tls_pair_main(body, server_ctx, client_ctx))


def test_blocking_twins_from_plain_thread(server_ctx, client_ctx):
    """The blocking twins from a plain thread, with the other side's
    goroutine in run(): a client written in threaded style."""
    import gocore

    async def main():
        ln = net.listen("tcp", "127.0.0.1:0")
        res = []

        def client():
            c = net.blocking_dial("tcp", ln.addr)
            with net.tls_client(c, client_ctx, server_hostname="localhost") as tc:
                tc.blocking_write(b"ping")
                res.append(tc.blocking_read())
        t = threading.Thread(target=client)
        t.start()
        async with net.tls_server(await ln.accept(), server_ctx) as ts:
            ln.close()
            assert await ts.read() == b"ping"
            await ts.write(b"pong")
            assert await ts.read() == b""
        return t, res
    t, res = gocore.run(main)
    t.join(10)
    assert res == [b"pong"]


# ---------------------------------------------------------------- bad input

def test_bad_input(rt, server_ctx, client_ctx):
    """Clear TypeError/ValueError at the call, never a crash."""
    async def body(ts, tc):
        with pytest.raises(TypeError):
            net.tls_client(object(), client_ctx, server_hostname="x")
        with pytest.raises(TypeError):
            net.tls_server(tc.conn, "not a context")
        with pytest.raises(ValueError, match="server_hostname"):
            net.tls_client(tc.conn)                   # default context checks hostnames
        with pytest.raises(ValueError):
            await tc.read(-1)
        with pytest.raises(TypeError):
            await tc.write("str")
        with pytest.raises(TypeError):
            await tc.read_into(b"immutable")
        assert await tc.read(0) == b""
        with pytest.raises(OSError):                  # before the handshake
            await tc.close_write()
        return True
    assert rt.run(_tls_pair_main(body, server_ctx, client_ctx))
