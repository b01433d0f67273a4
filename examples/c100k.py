"""The guide's picture: "a server handling 100,000 concurrent connections",
a goroutine each, held and served by one process.

One gocore process listens on 127.0.0.1 and runs a goroutine per accepted
connection (the echo loop of examples/echo_server.py).  Client processes
(this file with --client, plain non-blocking sockets) open the connections,
spread over source addresses 127.0.0.2, 127.0.0.3, ... so that no source
address runs out of its ~28,000 ephemeral ports, and each client does one
echo round trip per connection so the server has certainly accepted it.
Then the server's resident memory per connection is printed, a trickle of
requests is served among the idle connections (their latency percentiles
printed), and the clients hang up: every handler sees EOF and returns.

    python examples/c100k.py [--conns 100000]

A process cannot hold more connections than its file descriptor limit
(RLIMIT_NOFILE).  The server raises its soft limit to the hard limit; where
the hard limit is lower than the target it says so and holds as many as the
limit allows (on a machine capped at 20,000 fds: about 19,960, and the
100,000 figure is then RSS-per-connection times 100,000, an extrapolation).
Raising the hard limit needs the administrator: `ulimit -Hn` as root,
LimitNOFILE= in a systemd unit, nofile in /etc/security/limits.conf.

gocore differences: none in the idea - a Go server is this program with
`net.Listen` and `go handle(conn)`.  A parked gocore goroutine is a Python
coroutine plus the runtime's records rather than a 2 KiB Go stack, so the
bytes per connection differ from Go's (bench/README.md has both).
Linux only (/proc, 127.0.0.x loopback addresses, epoll).
"""
import argparse
import errno
import gc
import math
import os
import random
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time

TARGET = 100_000
PER_CLIENT = 10_000      # connections per client process (each has its own fd limit)
RESERVE = 32             # fds kept free in the server beyond those open at start
PING = b"c100k-ping"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def raise_nofile() -> tuple[int, int]:
    """Raise the soft fd limit as far as the hard limit allows; return both."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ---- the server: a goroutine per connection ---------------------------------------

def server(target: int) -> None:
    from gocore import Chan, WaitGroup, go, net, run
    from gocore.atomic import Int64

    soft0 = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    soft, hard = raise_nofile()
    limit = hard if hard != resource.RLIM_INFINITY else 1 << 30
    n = min(target, limit - open_fds() - RESERVE)
    print(f"target {target:,} connections; RLIMIT_NOFILE soft {soft0:,} -> {soft:,}, "
          f"hard {hard:,}")
    if n < target:
        print(f"the fd limit allows {n:,} connections in this process, not {target:,}: "
              f"holding {n:,} (raise the hard limit to hold more)")
    live = Int64()          # handlers running
    handlers = WaitGroup()  # every handler returned

    async def handle(c: net.Conn) -> None:
        live.add(1)
        try:
            async with c:
                while data := await c.read(4096):   # parked on the netpoller while idle
                    await c.write(data)
        except ConnectionError:
            pass
        finally:
            live.add(-1)
            handlers.done()

    async def accept_loop(ln: net.Listener) -> None:
        while True:
            try:
                c = await ln.accept()
            except net.ErrClosed:
                return
            handlers.add(1)
            go(handle, c)

    async def main() -> None:
        ln = net.listen("tcp", "127.0.0.1:0", backlog=4096)
        port = ln.addr[1]
        go(accept_loop, ln)
        gc.collect()
        before = rss()

        nproc = max(1, math.ceil(n / PER_CLIENT))
        counts = [n // nproc + (1 if i < n % nproc else 0) for i in range(nproc)]
        clients = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--client",
                                     str(port), str(k), f"127.0.0.{2 + i}"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                   for i, k in enumerate(counts)]
        # The clients' pipes are read by a plain thread (blocking reads),
        # which hands each line to this goroutine over a channel.
        lines: Chan = Chan(len(clients))

        def read_answers() -> None:
            for p in clients:
                lines.blocking_send(p.stdout.readline().strip())

        t0 = time.monotonic()
        threading.Thread(target=read_answers, daemon=True).start()
        for p in clients:
            ready = await lines.recv()
            if not ready.startswith("ready"):
                raise SystemExit(f"a client failed: {ready!r}")
        took = time.monotonic() - t0
        gc.collect()
        after = rss()
        print(f"holding {live.load():,} connections, a goroutine each, from {nproc} client "
              f"processes over 127.0.0.2-127.0.0.{1 + nproc} (opened in {took:.1f} s)")
        per = (after - before) / n
        print(f"server RSS: {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB with "
              f"{n:,} connections: {per:,.0f} bytes per connection")
        if n < TARGET:
            why = ("the fd limit stops this process short of it" if n < target
                   else f"--conns {n:,}")
            print(f"x {TARGET:,} connections = {per * TARGET / 2**20:,.0f} MiB "
                  f"(extrapolated, linear; {why})")

        # A trickle of requests among the idle connections.
        for p in clients:
            p.stdin.write("trickle 100\n")
            p.stdin.flush()
        threading.Thread(target=read_answers, daemon=True).start()
        lat = []
        for p in clients:
            ans = await lines.recv()
            lat += [float(x) for x in ans.split()[1].split(",")]
        lat.sort()
        p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)]
        print(f"served {len(lat):,} requests among them: p50 {p50:.2f} ms, p99 {p99:.2f} ms")

        for p in clients:
            p.stdin.write("quit\n")
            p.stdin.flush()
        await handlers.wait()   # every client hung up: each handler saw EOF and returned
        ln.close()
        codes = [p.wait() for p in clients]
        print(f"clients hung up: every handler returned ({live.load()} left); "
              f"client exit codes {sorted(set(codes))}")

    run(main)


# ---- a client process: plain non-blocking sockets -------------------------------

def client(port: int, count: int, src: str) -> None:
    raise_nofile()
    sel = selectors.DefaultSelector()
    conns: list[socket.socket] = []
    pending = 0
    opened = 0
    # A connection's state while it opens: bytes of the ping echoed so far.
    while opened < count or pending:
        while opened < count and pending < 512:
            s = socket.socket()
            s.setsockopt(socket.IPPROTO_IP, 24, 1)   # IP_BIND_ADDRESS_NO_PORT
            s.bind((src, 0))
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            sel.register(s, selectors.EVENT_WRITE, 0)
            conns.append(s)
            opened += 1
            pending += 1
        events = sel.select(timeout=30)
        if not events:
            raise TimeoutError(f"no progress for 30 s with {pending} connections opening")
        for key, ev in events:
            s, got = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, os.strerror(err))
                s.send(PING)
                sel.modify(s, selectors.EVENT_READ, 0)
                continue
            data = s.recv(64)
            if not data:
                raise ConnectionError("server closed a connection")
            got += len(data)
            if got < len(PING):
                sel.modify(s, selectors.EVENT_READ, got)
            else:
                sel.unregister(s)
                pending -= 1
    print(f"ready {len(conns)}", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "trickle":
            lat = []
            for _ in range(int(cmd[1])):
                s = random.choice(conns)
                s.setblocking(True)
                t0 = time.perf_counter()
                s.sendall(PING)
                got = b""
                while len(got) < len(PING):
                    got += s.recv(64)
                lat.append((time.perf_counter() - t0) * 1000)
                s.setblocking(False)
                if got != PING:
                    raise AssertionError("echo differs")
                time.sleep(0.002)
            print("lat " + ",".join(f"{x:.3f}" for x in lat), flush=True)
        elif cmd[0] == "quit":
            break
    for s in conns:
        s.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conns", type=int, default=TARGET,
                    help="connections to hold (default %(default)s; fewer if the fd limit says so)")
    a = ap.parse_args()
    if a.conns < 1:
        ap.error("--conns must be at least 1")
    server(a.conns)
