"""An HTTP/1.1 "Hello, World!" server with a goroutine per connection.

Go's net/http serves each connection from its own goroutine running a
straight loop: read a request, handle it, write the response, repeat while
the connection is kept alive.  This is that loop on gocore.net, with
`httptools` (the llhttp parser uvicorn uses) when it is installed and a
minimal parser of its own otherwise.  Routes: `GET /` answers
"Hello, World!", `POST /echo` answers the request body; anything else 404.

    python examples/http_hello.py [--addr 127.0.0.1:8080]
        serve until Ctrl-C; try `curl -v http://127.0.0.1:8080/` or
        `wrk -c 100 http://127.0.0.1:8080/`
    python examples/http_hello.py --selftest
        serve on a free port, run a built-in client (keep-alive and
        pipelined requests, a connection per request, a body, a malformed
        request) and exit

gocore differences: Go's handler gets a parsed *http.Request and writes to
an http.ResponseWriter; here the connection's goroutine parses and writes
itself (about 60 lines), which is what a small framework on gocore would
hide.  Keep-alive follows the request: HTTP/1.1 unless "Connection: close",
HTTP/1.0 only with "Connection: keep-alive".
"""
import argparse
import sys
import time

from gocore import WaitGroup, go, net, run

try:
    import httptools
except ImportError:
    httptools = None

IDLE = 60.0          # seconds a kept-alive connection may stay silent


class Request:
    __slots__ = ("method", "url", "body", "keep_alive", "version")

    def __init__(self) -> None:
        self.method = b""
        self.url = b""
        self.body = b""
        self.keep_alive = True
        self.version = "1.1"


class BadRequest(Exception):
    pass


class HttptoolsParser:
    """feed(data) -> the requests completed by data."""

    def __init__(self) -> None:
        self.p = httptools.HttpRequestParser(self)
        self.cur = Request()
        self.done: list[Request] = []

    def on_url(self, url: bytes) -> None:
        self.cur.url += url

    def on_body(self, body: bytes) -> None:
        self.cur.body += body

    def on_message_complete(self) -> None:
        r = self.cur
        r.method = self.p.get_method()
        r.keep_alive = self.p.should_keep_alive()
        r.version = self.p.get_http_version()
        self.done.append(r)
        self.cur = Request()

    def feed(self, data: bytes) -> list[Request]:
        try:
            self.p.feed_data(data)
        except httptools.HttpParserError as e:
            raise BadRequest(str(e)) from None
        out, self.done = self.done, []
        return out


class MinimalParser:
    """Request line, headers, a Content-Length body (no chunked bodies)."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[Request]:
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    raise BadRequest("request head too large")
                return out
            lines = self.buf[:end].split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3 or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1"):
                raise BadRequest(f"bad request line {lines[0][:80]!r}")
            r = Request()
            r.method, r.url = parts[0], parts[1]
            r.version = parts[2][5:].decode()
            r.keep_alive = r.version == "1.1"
            length = 0
            for h in lines[1:]:
                name, sep, value = h.partition(b":")
                if not sep:
                    raise BadRequest("bad header line")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    if not value.isdigit():
                        raise BadRequest("bad Content-Length")
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise BadRequest("chunked request bodies are not supported")
                elif name == b"connection":
                    r.keep_alive = value == b"keep-alive" if r.version == "1.0" else value != b"close"
            if len(self.buf) < end + 4 + length:
                return out                  # the body is not all here yet
            r.body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            out.append(r)


def response(status: str, body: bytes, keep_alive: bool, version: str) -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: text/plain", f"Content-Length: {len(body)}"]
    if not keep_alive:
        head.append("Connection: close")
    elif version == "1.0":
        head.append("Connection: keep-alive")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def handle_request(r: Request) -> tuple[str, bytes]:
    if r.method == b"GET" and r.url == b"/":
        return "200 OK", b"Hello, World!"
    if r.method == b"POST" and r.url == b"/echo":
        return "200 OK", r.body
    return "404 Not Found", b"not found"


async def serve_conn(c: net.Conn) -> None:
    """One goroutine per connection: read, parse, answer, while kept alive."""
    parser = HttptoolsParser() if httptools is not None else MinimalParser()
    async with c:
        try:
            while True:
                c.set_read_deadline(time.monotonic() + IDLE)
                data = await c.read(65536)
                if not data:
                    return
                try:
                    reqs = parser.feed(data)
                except BadRequest:
                    await c.write(response("400 Bad Request", b"bad request", False, "1.1"))
                    return
                out = []
                for r in reqs:                      # pipelined requests: answered in order
                    status, body = handle_request(r)
                    out.append(response(status, body, r.keep_alive, r.version))
                    if not r.keep_alive:
                        break
                if out:
                    await c.write(b"".join(out))    # one write for a pipelined batch
                if any(not r.keep_alive for r in reqs):
                    return
        except (net.DeadlineExceeded, ConnectionError):
            pass


async def serve(ln: net.Listener) -> None:
    while True:
        try:
            c = await ln.accept()
        except net.ErrClosed:
            return
        go(serve_conn, c)


async def main(addr: str) -> None:
    ln = net.listen("tcp", addr)
    print(f"listening on http://{ln.addr[0]}:{ln.addr[1]}/ (parser: "
          f"{'httptools' if httptools else 'minimal'})", flush=True)
    try:
        await serve(ln)
    finally:
        ln.close()


# ---- --selftest ----------------------------------------------------------------

async def read_response(c: net.Conn, buf: bytearray) -> tuple[int, bytes, bool]:
    """One response from c (buf keeps what follows it): status, body, closed."""
    while b"\r\n\r\n" not in buf:
        data = await c.read(65536)
        if not data:
            raise EOFError("connection closed before a response")
        buf += data
    end = buf.index(b"\r\n\r\n")
    head = bytes(buf[:end]).decode().split("\r\n")
    status = int(head[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
    length = int(headers["content-length"])
    while len(buf) < end + 4 + length:
        data = await c.read(65536)
        if not data:
            raise EOFError("connection closed mid-body")
        buf += data
    body = bytes(buf[end + 4:end + 4 + length])
    del buf[:end + 4 + length]
    return status, body, headers.get("connection") == "close"


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


async def keepalive_client(addr: tuple, n: int, wg: WaitGroup, results: list) -> None:
    try:
        async with await net.dial("tcp", addr) as c:
            buf = bytearray()
            for _ in range(n // 2):
                await c.write(GET + GET)            # two pipelined requests
                for _ in range(2):
                    results.append(await read_response(c, buf))
    except Exception as e:
        results.append((0, repr(e).encode(), True))
    finally:
        wg.done()


async def selftest() -> None:
    print("parser: " + ("httptools" if httptools else "minimal (httptools is not installed)"))
    ln = net.listen("tcp", "127.0.0.1:0")
    print("listening on 127.0.0.1 (a free port)")
    go(serve, ln)
    ok = True

    results: list = []
    wg = WaitGroup()
    wg.add(4)
    for _ in range(4):
        go(keepalive_client, ln.addr, 50, wg, results)
    await wg.wait()
    good = len(results) == 200 and all(r == (200, b"Hello, World!", False) for r in results)
    ok &= good
    print("200 keep-alive requests on 4 connections (pipelined in pairs): "
          + ("all 200 Hello, World!" if good else f"FAILED {results[:3]}"))

    good = True
    for _ in range(50):
        async with await net.dial("tcp", ln.addr) as c:
            await c.write(b"GET / HTTP/1.0\r\n\r\n")
            buf = bytearray()
            st, body, closed = await read_response(c, buf)
            good &= (st, body, closed) == (200, b"Hello, World!", True) and await c.read() == b""
    ok &= good
    print("50 requests with a new connection each: "
          + ("all 200 Hello, World!" if good else "FAILED"))

    async with await net.dial("tcp", ln.addr) as c:
        body = bytes(range(256)) * 39 + b"x" * 16       # 10,000 bytes
        await c.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n")
        await c.write(body[:5000])
        await c.write(body[5000:])
        st, got, _ = await read_response(c, bytearray())
    ok &= st == 200 and got == body
    print(f"POST with a 10000-byte body: {st}, echoed length {len(got) if got == body else 'WRONG'}")

    async with await net.dial("tcp", ln.addr) as c:
        await c.write(b"NONSENSE\r\n\r\n")
        st, _, _ = await read_response(c, bytearray())
        closed = await c.read() == b""
    ok &= st == 400 and closed
    print(f"malformed request: {st}, connection {'closed' if closed else 'NOT closed'}")
    ln.close()
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", default="127.0.0.1:8080", help="host:port to listen on")
    ap.add_argument("--selftest", action="store_true", help="serve, run a short client, exit")
    a = ap.parse_args()
    try:
        run(selftest if a.selftest else main, *([] if a.selftest else [a.addr]))
    except KeyboardInterrupt:
        pass
