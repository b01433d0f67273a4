"""E2/E3 HTTP server on trio: serve_tcp, a task per connection doing
receive_some / parse (shared parser) / send_all."""

import trio

from http_common import Requests, calibrate

BACKLOG = 1024


async def _handle(stream):
    reqs = Requests()
    try:
        while data := await stream.receive_some(65536):
            out, close = reqs.feed(data)
            if out:
                await stream.send_all(out)
            if close:
                break
    except trio.BrokenResourceError:
        pass
    finally:
        await stream.aclose()


def serve(runtime, host, port, ready):
    calibrate()

    async def main():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                lambda task_status: trio.serve_tcp(_handle, port, host=host, backlog=BACKLOG,
                                                   task_status=task_status))
            ready(listeners[0].socket.getsockname()[1])

    trio.run(main)
