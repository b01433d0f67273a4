"""E1/E4 echo server on gevent: `gevent.server.StreamServer`, a greenlet per
connection doing blocking-style `recv`/`sendall` on gevent's cooperative
socket (no monkey-patching needed: StreamServer hands out gevent sockets)."""

import socket

import gevent.server

BACKLOG = 1024


def _handle(sock, addr):
    # TCP_NODELAY as Go, asyncio, uvloop and trio set it on their own.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while data := sock.recv(65536):
            sock.sendall(data)
    except ConnectionError:
        pass
    finally:
        sock.close()


def serve(runtime, host, port, ready):
    server = gevent.server.StreamServer((host, port), _handle, backlog=BACKLOG)
    server.start()
    ready(server.address[1])
    server.serve_forever()
