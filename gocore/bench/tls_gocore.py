"""E1T TLS echo server on gocore: a goroutine per connection, the Conn
wrapped by net.tls_server (TLS over ssl.MemoryBIO, no thread per
connection), the same read/write loop as echo_gocore.py."""

import ssl

from gocore import go, gomaxprocs, net, run

BACKLOG = 1024


async def _handle(c, ctx):
    async with net.tls_server(c, ctx) as tc:
        try:
            while data := await tc.read(65536):
                await tc.write(data)
        except (ConnectionError, ssl.SSLError):
            pass


def serve(runtime, host, port, ready, procs=0, ctx=None):
    if procs:
        gomaxprocs(procs)

    async def main():
        ln = net.listen("tcp", (host, port), backlog=BACKLOG)
        ready(ln.addr[1])
        while True:
            go(_handle, await ln.accept(), ctx)

    run(main)
