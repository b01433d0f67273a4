"""E2/E3 HTTP servers on asyncio and uvloop, in asyncio's two styles, with
the shared parser (http_common: httptools in every Python server).

- proto: a Protocol whose data_received feeds the parser and writes the
  responses at once (uvicorn's shape with httptools): callbacks only.
- streams: asyncio.start_server, a coroutine per connection reading,
  parsing, writing and draining.
"""

import asyncio
import sys

from http_common import Requests, calibrate

BACKLOG = 1024


async def _handle(reader, writer):
    reqs = Requests()
    try:
        while data := await reader.read(65536):
            out, close = reqs.feed(data)
            if out:
                writer.write(out)
                await writer.drain()
            if close:
                break
    except ConnectionError:
        pass
    finally:
        writer.close()


class HttpProtocol(asyncio.Protocol):
    __slots__ = ("transport", "reqs")

    def connection_made(self, transport):
        self.transport = transport
        self.reqs = Requests()

    def data_received(self, data):
        out, close = self.reqs.feed(data)
        if out:
            self.transport.write(out)
        if close:
            self.transport.close()

    def eof_received(self):
        self.transport.close()


def serve(runtime, host, port, ready):
    loop_name, style = runtime.split("-")
    calibrate()

    async def main():
        loop = asyncio.get_running_loop()
        if style == "streams":
            server = await asyncio.start_server(_handle, host, port, backlog=BACKLOG)
        else:
            server = await loop.create_server(HttpProtocol, host, port, backlog=BACKLOG)
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
