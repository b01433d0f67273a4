"""E2/E3 HTTP server on gocore: a goroutine per connection, straight-line
code (read, parse with the shared parser, write the responses), the same
shape as Go's net/http conn.serve loop."""

from gocore import go, gomaxprocs, net, run

from http_common import Requests, calibrate

BACKLOG = 1024


async def _handle(c):
    reqs = Requests()
    async with c:
        try:
            while data := await c.read(65536):
                out, close = reqs.feed(data)
                if out:
                    await c.write(out)
                if close:
                    return
        except ConnectionError:
            pass


def serve(runtime, host, port, ready, procs=0):
    if procs:
        gomaxprocs(procs)
    calibrate()

    async def main():
        ln = net.listen("tcp", (host, port), backlog=BACKLOG)
        ready(ln.addr[1])
        while True:
            go(_handle, await ln.accept())

    run(main)
