"""asyncio and goroutines in one program, both directions of gocore.aio.

    python examples/aio_bridge.py             # serve on 127.0.0.1:8080 until Ctrl-C
    python examples/aio_bridge.py --selftest  # 200 requests against itself, exit 0 if all good

The asyncio side is an aiohttp server. Its handler for /square/{n} does not
compute anything itself: it hands the job to a pool of goroutines over a
gocore Chan and awaits the reply on another Chan - `await jobs.send(...)`
and `await reply.recv()` inside an aiohttp handler, waiting without
blocking the server's event loop.

The goroutines, for each job, fetch a number from an HTTP "origin" (here
another route of the same server, /origin/{n}) with httpx's AsyncClient,
through `await aio.call(...)`: httpx runs on gocore's own asyncio loop
thread while the goroutine is parked - no worker thread is held.

Needs aiohttp and httpx (pip install aiohttp httpx).
"""
import argparse
import asyncio
import sys

import gocore
from gocore import Chan, WaitGroup, aio, go

try:
    import httpx
    from aiohttp import ClientSession, web
except ImportError as e:                       # pragma: no cover - a clear message
    sys.exit(f"aio_bridge needs aiohttp and httpx: {e}")

WORKERS = 8


# ---------------------------------------------------------------- goroutines

async def new_client() -> "httpx.AsyncClient":
    return httpx.AsyncClient(timeout=10)       # made (and used) on gocore's asyncio loop


async def worker(jobs: Chan, client: "httpx.AsyncClient", origin: str) -> None:
    """A goroutine: take jobs until the channel is closed."""
    async for n, reply in jobs:
        # asyncio code (httpx) run from a goroutine: the goroutine parks,
        # httpx runs on gocore's asyncio loop thread
        r = await aio.call(client.get, f"{origin}/origin/{n}")
        r.raise_for_status()
        value = int(r.text)
        await reply.send(value * value)        # back to the waiting aiohttp handler


async def start_pool(jobs: Chan, origin: str, wg: WaitGroup) -> None:
    """A goroutine starting the pool (aio.call needs a goroutine): one
    shared httpx client, closed once every worker is done."""
    client = await aio.call(new_client)
    pool = WaitGroup()
    for _ in range(WORKERS):
        pool.go(worker, jobs, client, origin)
    await pool.wait()
    await aio.call(client.aclose)
    wg.done()


# ---------------------------------------------------------------- asyncio side

def make_app(jobs: Chan) -> "web.Application":
    async def square(request: "web.Request") -> "web.Response":
        n = int(request.match_info["n"])
        reply: Chan = Chan(1)
        await jobs.send((n, reply))            # a gocore channel, awaited in an aiohttp handler
        result = await reply.recv()
        return web.Response(text=str(result))

    async def origin(request: "web.Request") -> "web.Response":
        await asyncio.sleep(0.001)             # a slow upstream
        return web.Response(text=request.match_info["n"])

    app = web.Application()
    app.add_routes([web.get("/square/{n}", square), web.get("/origin/{n}", origin)])
    return app


async def selftest(base: str, count: int) -> bool:
    async with ClientSession() as s:
        async def one(i: int) -> bool:
            async with s.get(f"{base}/square/{i}") as r:
                return r.status == 200 and int(await r.text()) == i * i
        results = await asyncio.gather(*(one(i) for i in range(count)))
    return all(results)


async def main(args) -> int:
    jobs: Chan = Chan()
    runner = web.AppRunner(make_app(jobs))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0 if args.selftest else args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"

    done = WaitGroup()
    done.add(1)
    go(start_pool, jobs, base, done)           # goroutines, in gocore's background runtime
    ok = True
    try:
        if args.selftest:
            ok = await selftest(base, args.count)
            print("selftest:", "ok" if ok else "FAILED", f"({args.count} requests)")
        else:
            print(f"serving on {base}/square/N (Ctrl-C to stop)")
            await asyncio.Event().wait()
    finally:
        jobs.close()                           # the workers' `async for` ends
        await done.wait()                      # a WaitGroup awaited by asyncio
        await runner.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--selftest", action="store_true")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--port", type=int, default=8080)
    a = p.parse_args()
    try:
        sys.exit(asyncio.run(main(a)))
    except KeyboardInterrupt:
        pass
