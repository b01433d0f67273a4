"""E1/E4 echo server on gocore: a goroutine per connection (DESIGN.md §5's
example), each parked in `await c.read(65536)` on the netpoller while its
connection is idle.  No callbacks, no per-message task: the same loop as the
Go server (echo_server.go) and asyncio's streams server."""

from gocore import go, gomaxprocs, net, run

BACKLOG = 1024


async def _handle(c):
    async with c:
        try:
            while data := await c.read(65536):
                await c.write(data)
        except ConnectionError:
            pass


def serve(runtime, host, port, ready, procs=0):
    if procs:
        gomaxprocs(procs)

    async def main():
        ln = net.listen("tcp", (host, port), backlog=BACKLOG)
        ready(ln.addr[1])
        while True:
            go(_handle, await ln.accept())

    run(main)
