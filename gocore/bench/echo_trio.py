"""E1/E4 echo server on trio: `trio.serve_tcp`, a task per connection in the
server's nursery doing `receive_some` / `send_all` on a SocketStream."""

import trio

BACKLOG = 1024


async def _handle(stream):
    try:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass
    finally:
        await stream.aclose()


def serve(runtime, host, port, ready):
    async def main():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                lambda task_status: trio.serve_tcp(_handle, port, host=host, backlog=BACKLOG,
                                                   task_status=task_status))
            ready(listeners[0].socket.getsockname()[1])

    trio.run(main)
