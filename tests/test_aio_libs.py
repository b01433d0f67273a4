"""gocore.aio with real asyncio libraries (issue 18 item 4): httpx, aiohttp,
uvloop, installed from the project's test extras. Each test skips cleanly
when its library is missing (e.g. on a build where it does not install)."""
import asyncio
import socket
import threading
import time

import pytest

import gocore
from gocore import Chan, ChanClosedError, WaitGroup, aio, context, go

try:
    import httpx
except ImportError:          # pragma: no cover
    httpx = None
try:
    import aiohttp
    from aiohttp import web
except ImportError:          # pragma: no cover
    aiohttp = web = None
try:
    import uvloop
except ImportError:          # pragma: no cover
    uvloop = None

pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine .connect_tcp.<locals>.try_connect. was never awaited:RuntimeWarning")  # anyio, on a refused connect

needs_httpx = pytest.mark.skipif(httpx is None, reason="httpx not installed")
needs_aiohttp = pytest.mark.skipif(aiohttp is None, reason="aiohttp not installed")
needs_uvloop = pytest.mark.skipif(uvloop is None, reason="uvloop not installed")


@pytest.fixture(autouse=True)
def aio_stopped():
    yield
    aio._runtime_stopped()
    aio.set_loop_factory(None)


class LoopThread:
    """An asyncio loop of the test's own on a plain thread (the "asyncio
    side" of a program); run(coro) submits to it."""

    def __init__(self, factory=None):
        self.loop = factory() if factory else asyncio.new_event_loop()
        self.t = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.t.start()

    def run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.t.join(10)
        self.loop.close()


@pytest.fixture
def side():
    lt = LoopThread()
    yield lt
    lt.close()


async def raw_http_server(delay=0.0, stats=None):
    """A minimal keep-alive HTTP/1.1 server (asyncio streams): answers every
    GET with its path. stats (a dict) gets the peak of requests in flight."""
    inflight = 0
    handlers = set()     # _close cancels them: since 3.12 wait_closed() waits for every connection

    async def handle(r, w):
        nonlocal inflight
        handlers.add(asyncio.current_task())
        try:
            while True:
                line = await r.readline()
                if not line:
                    break
                path = line.split()[1]
                while (await r.readline()) not in (b"\r\n", b""):
                    pass
                inflight += 1
                if stats is not None:
                    stats["peak"] = max(stats.get("peak", 0), inflight)
                if delay:
                    await asyncio.sleep(delay)
                inflight -= 1
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(path), path))
                await w.drain()
        except (ConnectionError, asyncio.IncompleteReadError, IndexError):
            pass
        finally:
            handlers.discard(asyncio.current_task())
            w.close()
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    srv.gocore_test_handlers = handlers
    return srv, srv.sockets[0].getsockname()[1]


# ---------------------------------------------------------------- httpx

@needs_httpx
@pytest.mark.timeout(240)
def test_httpx_from_1000_goroutines(side):
    """1,000 goroutines each GET through one shared httpx.AsyncClient via
    aio.call; the requests overlap (the server sees many in flight at once)
    and every answer reaches its own goroutine."""
    stats = {}
    srv, port = side.run(raw_http_server(delay=0.05, stats=stats))
    url = f"http://127.0.0.1:{port}"
    N = 1000

    async def new_client():
        return httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=N))

    async def main():
        client = await aio.call(new_client)
        out = Chan(N)

        async def one(i):
            r = await aio.call(client.get, f"{url}/{i}")
            await out.send((i, r.status_code, r.text))

        t0 = time.monotonic()
        for i in range(N):
            go(one, i)
        res = [await out.recv() for _ in range(N)]
        dt = time.monotonic() - t0
        await aio.call(client.aclose)
        return res, dt

    res, dt = gocore.run(main)
    assert sorted(res) == [(i, 200, f"/{i}") for i in range(N)]
    assert stats["peak"] >= 50, stats       # concurrent, not one after another
    assert dt < 150, dt
    side.run(_close(srv))


async def _close(srv):
    srv.close()
    for t in list(getattr(srv, "gocore_test_handlers", ())):
        t.cancel()      # a handler still sleeping on a slow request
    await srv.wait_closed()


@needs_httpx
@pytest.mark.timeout(60)
def test_httpx_errors_come_back_as_themselves():
    """Exceptions both ways: httpx's ConnectError reaches the goroutine (the
    same class, its traceback kept); a goroutine's close of a channel
    reaches an asyncio task's send as ChanClosedError."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                   # nothing listens there

    async def get(url):
        async with httpx.AsyncClient() as c:
            return await c.get(url)

    async def main():
        with pytest.raises(httpx.ConnectError) as ei:
            await aio.call(get, f"http://127.0.0.1:{port}/")
        return ei.value

    e = gocore.run(main)
    assert isinstance(e, httpx.ConnectError)

    async def task_side():
        ch = Chan()

        async def closer():
            await gocore.sleep(0.05)
            ch.close()

        go(closer)
        with pytest.raises(ChanClosedError):
            await ch.send(1)                   # parked in asyncio, woken by the close
        return True

    assert asyncio.run(task_side())


@needs_httpx
@pytest.mark.timeout(60)
def test_teardown_with_httpx_requests_pending(side):
    """run() ends while goroutines wait in aio.call on slow requests: the
    tasks are cancelled and unwind, run() returns promptly."""
    srv, port = side.run(raw_http_server(delay=30))
    url = f"http://127.0.0.1:{port}/slow"
    started = Chan(10)

    async def fetch():
        async with httpx.AsyncClient(timeout=60) as c:
            return await c.get(url)

    async def waiter():
        await started.send(None)
        await aio.call(fetch)

    async def main():
        for _ in range(10):
            go(waiter)
        for _ in range(10):
            await started.recv()
        await gocore.sleep(0.2)                # the requests are in flight

    t0 = time.monotonic()
    gocore.run(main)
    assert time.monotonic() - t0 < 10
    assert _pending() == 0
    side.run(_close(srv))


def _pending():
    from gocore import _sched
    return _sched._aio_pending_add(0)


@needs_httpx
@needs_uvloop
@pytest.mark.timeout(60)
def test_uvloop_loop_factory_with_httpx(side):
    srv, port = side.run(raw_http_server())
    aio.set_loop_factory(uvloop.new_event_loop)

    async def get():
        async with httpx.AsyncClient() as c:
            r = await c.get(f"http://127.0.0.1:{port}/uv")
            return type(asyncio.get_running_loop()).__module__, r.text

    async def main():
        return await aio.call(get)

    mod, text = gocore.run(main)
    assert mod.startswith("uvloop") and text == "/uv"
    side.run(_close(srv))


# ---------------------------------------------------------------- aiohttp

@needs_aiohttp
@pytest.mark.timeout(120)
def test_aiohttp_server_hands_work_to_goroutines_and_client_from_goroutines():
    """An aiohttp server (its own loop, a plain thread) whose handler sends
    each job to goroutines over a Chan and awaits the reply; goroutines
    call it back with an aiohttp ClientSession through aio.call."""
    jobs = Chan()
    ready = threading.Event()
    box = {}

    async def handler(request):
        reply = Chan(1)
        await jobs.send((int(request.match_info["n"]), reply))
        return web.Response(text=str(await reply.recv()))

    async def serve():
        app = web.Application()
        app.add_routes([web.get("/sq/{n}", handler)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["port"] = site._server.sockets[0].getsockname()[1]
        box["runner"] = runner
        ready.set()

    lt = LoopThread()
    try:
        lt.run(serve())
        ready.wait(10)
        base = f"http://127.0.0.1:{box['port']}"

        async def new_session():
            return aiohttp.ClientSession()

        async def main():
            async def worker():
                async for n, reply in jobs:
                    await reply.send(n * n)

            wg = WaitGroup()
            for _ in range(4):
                wg.go(worker)
            session = await aio.call(new_session)

            async def get(i):
                async with session.get(f"{base}/sq/{i}") as r:
                    return r.status, await r.text()

            res = Chan(200)

            async def client(i):
                await res.send((i, await aio.call(get, i)))

            for i in range(200):
                go(client, i)
            got = sorted([await res.recv() for _ in range(200)])
            await aio.call(session.close)
            jobs.close()
            await wg.wait()
            return got

        got = gocore.run(main)
        assert got == [(i, (200, str(i * i))) for i in range(200)]
        lt.run(box["runner"].cleanup())
    finally:
        lt.close()


# ---------------------------------------------------------------- ctx bound on a real request

@needs_httpx
@pytest.mark.timeout(60)
def test_ctx_timeout_cancels_a_slow_httpx_request(side):
    srv, port = side.run(raw_http_server(delay=30))

    async def fetch():
        async with httpx.AsyncClient(timeout=60) as c:
            return await c.get(f"http://127.0.0.1:{port}/slow")

    async def main():
        ctx, cancel = context.with_timeout(context.background(), 0.2)
        t0 = time.monotonic()
        try:
            with pytest.raises(context.DeadlineExceeded):
                await aio.call(fetch, ctx=ctx)
        finally:
            cancel()
        return time.monotonic() - t0

    assert gocore.run(main) < 5
    side.run(_close(srv))
