"""E2/E3 HTTP server on gevent: StreamServer, a greenlet per connection
doing recv / parse (shared parser) / sendall."""

import socket

import gevent.server

from http_common import Requests, calibrate

BACKLOG = 1024


def _handle(sock, addr):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reqs = Requests()
    try:
        while data := sock.recv(65536):
            out, close = reqs.feed(data)
            if out:
                sock.sendall(out)
            if close:
                break
    except ConnectionError:
        pass
    finally:
        sock.close()


def serve(runtime, host, port, ready):
    calibrate()
    server = gevent.server.StreamServer((host, port), _handle, backlog=BACKLOG)
    server.start()
    ready(server.address[1])
    server.serve_forever()
