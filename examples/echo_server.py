"""A TCP echo server with a goroutine per connection (DESIGN.md §5's example).

Each accepted connection gets its own lightweight goroutine, written as
straight-line code: read, write back, repeat.  While a connection is idle its
goroutine is parked on gocore's netpoller, like one waiting on a channel, and
holds no thread: one process serves thousands of connections on
`gomaxprocs()` threads, as a Go server does.

    python examples/echo_server.py [--addr 127.0.0.1:7000] [--idle SECONDS]
        serve until Ctrl-C; try it with `nc 127.0.0.1 7000`
    python examples/echo_server.py --selftest
        serve on a free port, run a short built-in client against it (also a
        goroutine per connection), check every byte and exit

An idle timeout is a read deadline pushed forward before each read (Go's
idiom): a connection silent for `--idle` seconds gets `DeadlineExceeded`
and is closed.

gocore differences: Go's handler would take a `net.Conn` and use
`io.Copy(c, c)`; here `await c.read(65536)` returns the bytes read (`b""` at
EOF) and `await c.write(data)` writes all of them.  Deadlines are absolute
`time.monotonic()` values, not `time.Time`.
"""
import argparse
import sys
import time

from gocore import WaitGroup, go, net, run

IDLE = 60.0  # seconds a connection may stay silent (--idle)


async def handle(c: net.Conn, idle: float) -> None:
    async with c:                                   # closes the connection on exit
        try:
            while True:
                c.set_read_deadline(time.monotonic() + idle)
                data = await c.read(65536)          # parks this goroutine until bytes arrive
                if not data:                        # b"": the client closed its side
                    return
                await c.write(data)                 # writes every byte
        except net.DeadlineExceeded:
            pass                                    # idle too long: close
        except ConnectionError:
            pass                                    # the client reset the connection


async def serve(ln: net.Listener, idle: float) -> None:
    """Accept until the listener is closed: one goroutine per connection."""
    while True:
        try:
            c = await ln.accept()
        except net.ErrClosed:
            return
        go(handle, c, idle)


async def main(addr: str, idle: float) -> None:
    ln = net.listen("tcp", addr)                    # bound and listening now
    print("listening on", ln.addr, flush=True)
    try:
        await serve(ln, idle)
    finally:
        ln.close()


# ---- --selftest: a built-in client ---------------------------------------------

CLIENTS = 20
ROUNDS = 50


async def client(addr: tuple, k: int, wg: WaitGroup, failures: list) -> None:
    """One client connection: ROUNDS messages of varying sizes, each echo
    read back in full and compared."""
    try:
        async with await net.dial("tcp", addr) as c:
            for i in range(ROUNDS):
                msg = bytes([(k + i) % 251]) * (1 + (k * 997 + i * 131) % 8192)
                await c.write(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = await c.read(65536)
                    if not chunk:
                        raise EOFError("server closed early")
                    got += chunk
                if got != msg:
                    raise AssertionError(f"client {k} round {i}: echo differs")
    except Exception as e:  # reported by selftest(); a failure is a failed run
        failures.append(f"client {k}: {e!r}")
    finally:
        wg.done()


async def selftest(idle: float) -> None:
    ln = net.listen("tcp", "127.0.0.1:0")
    print("listening on 127.0.0.1 (a free port)")
    go(serve, ln, idle)
    failures: list = []
    wg = WaitGroup()
    wg.add(CLIENTS)
    for k in range(CLIENTS):
        go(client, ln.addr, k, wg, failures)
    await wg.wait()
    print(f"{CLIENTS} clients x {ROUNDS} messages of 1..8192 bytes: "
          + ("every byte echoed" if not failures else f"FAILED: {failures}"))

    # The idle timeout: a client that says nothing is closed by the server
    # after `idle` seconds (its read sees EOF), not before.
    t0 = time.monotonic()
    async with await net.dial("tcp", ln.addr) as c:
        eof = await c.read(1) == b""
    waited = time.monotonic() - t0
    print(f"a silent client was closed by the server after its idle timeout: "
          f"{eof and waited >= idle}")
    ln.close()                                      # serve() returns: accept raises ErrClosed
    if failures or not eof:
        sys.exit(1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", default="127.0.0.1:7000", help="host:port to listen on")
    ap.add_argument("--idle", type=float, default=None,
                    help=f"close connections silent this long (default {IDLE:g} s; 0.2 s with --selftest)")
    ap.add_argument("--selftest", action="store_true", help="serve, run a short client, exit")
    a = ap.parse_args()
    try:
        if a.selftest:
            run(selftest, 0.2 if a.idle is None else a.idle)
        else:
            run(main, a.addr, IDLE if a.idle is None else a.idle)
    except KeyboardInterrupt:
        pass
