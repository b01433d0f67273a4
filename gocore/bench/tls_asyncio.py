"""E1T TLS echo servers on asyncio and uvloop: the echo servers of
echo_asyncio.py with ssl=context (asyncio's SSLProtocol over MemoryBIO;
uvloop's own Cython SSLProtocol): streams and Protocol styles."""

import asyncio
import sys

from echo_asyncio import BACKLOG, EchoProtocol, _handle


def serve(runtime, host, port, ready, ctx=None):
    loop_name, style = runtime.split("-")

    async def main():
        loop = asyncio.get_running_loop()
        if style == "streams":
            server = await asyncio.start_server(_handle, host, port, backlog=BACKLOG, ssl=ctx)
        else:
            server = await loop.create_server(EchoProtocol, host, port, backlog=BACKLOG, ssl=ctx)
        ready(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    if loop_name == "uvloop":
        import uvloop
        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(main())
            return
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main())
