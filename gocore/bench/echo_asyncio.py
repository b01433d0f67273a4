"""E1/E4 echo servers on asyncio and uvloop, in the two styles asyncio has.

- streams: `asyncio.start_server` with a handler coroutine per connection
  (`await reader.read(65536)`, `writer.write`, `await writer.drain()`): the
  closest asyncio comes to a goroutine per connection.
- proto: a `Protocol` whose `data_received` calls `transport.write` at once:
  no coroutine and no task per message, only callbacks.  The fastest echo
  asyncio or uvloop can do, and the bar issue 16 sets for gocore.

"uvloop-*" runs the same code on uvloop's loop.  Backlog 1024 everywhere.
"""

import asyncio
import sys

BACKLOG = 1024


async def _handle(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class EchoProtocol(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        self.transport.close()


def serve(runtime, host, port, ready):
    loop_name, style = runtime.split("-")

    async def main():
        loop = asyncio.get_running_loop()
        if style == "streams":
            server = await asyncio.start_server(_handle, host, port, backlog=BACKLOG)
        else:
            server = await loop.create_server(EchoProtocol, host, port, backlog=BACKLOG)
        ready(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()  # serve until killed

    if loop_name == "uvloop":
        import uvloop
        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(main())
            return
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main())
