"""python -m gocore.bench.aiobench: the cost of crossing between asyncio and
gocore (issue 18; docs/asyncio.md), each against the nearest asyncio idiom
measured in the same run.

  call      `await aio.call(empty)` from a goroutine (a round trip to gocore's
            asyncio loop thread and back) vs `asyncio.run_coroutine_threadsafe
            (empty(), loop).result()` from a plain thread to a loop thread
  handoff   an asyncio task's `await ch.recv()` fed by another task's
            `await ch.send(v)` (Chan(0) and Chan(1024)) vs asyncio.Queue between
            two tasks (maxsize 1 and unbounded); ns per item
  http      1,000 concurrent GETs with one httpx.AsyncClient: from 1,000
            goroutines each `await aio.call(client.get, url)` vs from 1,000
            asyncio tasks (skipped without httpx); against a small keep-alive
            HTTP server in a subprocess (5 ms per request); ms for the 1,000.
            httpx itself dominates this figure (its connection pool: a raw
            asyncio client does the same requests in a small fraction of
            the time), so it shows that the bridge adds little, not what
            either side could do with a lighter client

Each figure is the median of --reps repetitions (the spread, min..max, is
printed too). Timing on a loaded machine is noisy: compare figures of one
run, not across runs.

    python -m gocore.bench.aiobench [--reps 5] [--only call,handoff,http]
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time

import gocore
from gocore import Chan, aio

now_ns = time.perf_counter_ns


async def empty():
    return None


# ---------------------------------------------------------------- call

def bench_aio_call(n):
    async def main():
        await aio.call(empty)                  # start the loop thread
        t0 = now_ns()
        for _ in range(n):
            await aio.call(empty)
        return (now_ns() - t0) / n

    return gocore.run(main)


def bench_run_coroutine_threadsafe(n):
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    try:
        asyncio.run_coroutine_threadsafe(empty(), loop).result()
        t0 = now_ns()
        for _ in range(n):
            asyncio.run_coroutine_threadsafe(empty(), loop).result()
        return (now_ns() - t0) / n
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join()
        loop.close()


# ---------------------------------------------------------------- handoff

def bench_chan_handoff(n, cap):
    async def main():
        ch = Chan(cap)

        async def producer():
            for i in range(n):
                await ch.send(i)

        async def consumer():
            s = 0
            for _ in range(n):
                s += await ch.recv()
            return s

        t0 = now_ns()
        _, s = await asyncio.gather(producer(), consumer())
        dt = now_ns() - t0
        assert s == n * (n - 1) // 2
        return dt / n

    return asyncio.run(main())


def bench_queue_handoff(n, maxsize):
    async def main():
        q = asyncio.Queue(maxsize)

        async def producer():
            for i in range(n):
                await q.put(i)

        async def consumer():
            s = 0
            for _ in range(n):
                s += await q.get()
            return s

        t0 = now_ns()
        _, s = await asyncio.gather(producer(), consumer())
        dt = now_ns() - t0
        assert s == n * (n - 1) // 2
        return dt / n

    return asyncio.run(main())


# ---------------------------------------------------------------- http

SERVER = textwrap.dedent('''
    import asyncio, sys
    BODY = b"ok"
    RESP = (b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nContent-Type: text/plain\\r\\n\\r\\n" + BODY)
    async def handle(r, w):
        try:
            while True:
                line = await r.readline()
                if not line:
                    break
                while True:                       # headers
                    h = await r.readline()
                    if h in (b"\\r\\n", b""):
                        break
                await asyncio.sleep(0.005)        # a slow upstream: requests overlap
                w.write(RESP)
                await w.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            w.close()
    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
        print(srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(3600)
    asyncio.run(main())
''')


def start_server():
    p = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline())
    return p, f"http://127.0.0.1:{port}/"


def limits():
    import httpx
    return httpx.Limits(max_connections=1000, max_keepalive_connections=1000)


def bench_http_goroutines(url, n):
    import httpx

    async def new_client():
        return httpx.AsyncClient(limits=limits(), timeout=60)

    async def main():
        client = await aio.call(new_client)
        await aio.call(client.get, url)        # warm: one connection
        done = Chan(n)

        async def one():
            r = await aio.call(client.get, url)
            await done.send(r.status_code)

        t0 = now_ns()
        for _ in range(n):
            gocore.go(one)
        codes = [await done.recv() for _ in range(n)]
        dt = now_ns() - t0
        await aio.call(client.aclose)
        assert codes == [200] * n, set(codes)
        return dt / 1e6

    return gocore.run(main)


def bench_http_tasks(url, n):
    import httpx

    async def main():
        async with httpx.AsyncClient(limits=limits(), timeout=60) as client:
            await client.get(url)

            async def one():
                r = await client.get(url)
                return r.status_code

            t0 = now_ns()
            codes = await asyncio.gather(*(one() for _ in range(n)))
            dt = now_ns() - t0
        assert codes == [200] * n, set(codes)
        return dt / 1e6

    return asyncio.run(main())


# ---------------------------------------------------------------- runner

def measure(fn, reps):
    xs = [fn() for _ in range(reps)]
    return statistics.median(xs), min(xs), max(xs)


def row(name, unit, m):
    med, lo, hi = m
    print(f"  {name:<58} {med:>10,.0f} {unit:<5} (min {lo:,.0f}, max {hi:,.0f})", flush=True)
    return med


def main(argv=None):
    ap = argparse.ArgumentParser(description="gocore <-> asyncio crossing costs (issue 18)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default="call,handoff,http")
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--requests", type=int, default=1000)
    a = ap.parse_args(argv)
    only = set(a.only.split(","))
    print(f"python {sys.version.split()[0]}, gomaxprocs {gocore.gomaxprocs()}, {os.cpu_count()} CPUs; "
          f"medians of {a.reps} repetitions")
    if "call" in only:
        print(f"call round trip of an empty coroutine ({a.calls:,} calls):")
        c = row("await aio.call(empty)  [goroutine -> gocore's loop]", "ns", measure(
            lambda: bench_aio_call(a.calls), a.reps))
        r = row("run_coroutine_threadsafe(empty(), loop).result()  [thread]", "ns", measure(
            lambda: bench_run_coroutine_threadsafe(a.calls), a.reps))
        print(f"  ratio aio.call / run_coroutine_threadsafe: {c / r:.2f}")
    if "handoff" in only:
        print(f"hand-off between two asyncio tasks ({a.items:,} items):")
        for cap, qsize in ((0, 1), (1024, 0)):
            c = row(f"await ch.send / await ch.recv, Chan({cap})", "ns", measure(
                lambda: bench_chan_handoff(a.items, cap), a.reps))
            q = row(f"await q.put / await q.get, asyncio.Queue({qsize})", "ns", measure(
                lambda: bench_queue_handoff(a.items, qsize), a.reps))
            print(f"  ratio Chan({cap}) / Queue({qsize}): {c / q:.2f}")
    if "http" in only:
        try:
            import httpx  # noqa: F401
        except ImportError:
            print("http: skipped (httpx not installed)")
            return 0
        p, url = start_server()
        try:
            print(f"{a.requests:,} concurrent httpx GETs, one AsyncClient, 5 ms server delay:")
            g = row(f"{a.requests:,} goroutines, await aio.call(client.get, url)", "ms", measure(
                lambda: bench_http_goroutines(url, a.requests), a.reps))
            t = row(f"{a.requests:,} asyncio tasks, await client.get(url)", "ms", measure(
                lambda: bench_http_tasks(url, a.requests), a.reps))
            print(f"  ratio goroutines / tasks: {g / t:.2f}")
        finally:
            p.kill()
            p.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
