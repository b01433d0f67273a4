"""E1/E4 echo server with a thread per connection: blocking `accept` in the
main thread, one `threading.Thread` per connection doing `recv`/`sendall`.
What gocore's sync goroutines would do without a netpoller; the baseline
the goroutine-per-connection servers are meant to beat on memory."""

import socket
import threading

BACKLOG = 1024


def _handle(sock):
    try:
        while data := sock.recv(65536):
            sock.sendall(data)
    except ConnectionError:
        pass
    finally:
        sock.close()


def serve(runtime, host, port, ready):
    ln = socket.create_server((host, port), backlog=BACKLOG)
    ready(ln.getsockname()[1])
    while True:
        conn, _ = ln.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_handle, args=(conn,), daemon=True).start()
