"""What every Python server of E2/E3 shares: the request parser, the fixed
response, and the calibrated pure-Python work of the E2W variant.

One parser for everyone (DESIGN.md §5): `httptools` (llhttp, the parser
uvicorn uses) when installed, else `MinimalParser` below; a run says which.
A server feeds each chunk it reads to `Requests.feed(data)`, which returns
the bytes to write back for every request completed in that chunk (none if
the chunk ended mid-request) and whether to close the connection after
writing them; a malformed request gives a 400 and close.

    E2/E3 response: HTTP/1.1 200, Content-Type text/plain, Content-Length 13,
    "Hello, World!"; keep-alive as the request asks (HTTP/1.1 by default,
    HTTP/1.0 with "Connection: keep-alive"), else "Connection: close".

Standard library only (httptools optional).
"""

import os
import time

BODY = b"Hello, World!"
_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
         + str(len(BODY)).encode() + b"\r\n")
RESP_KEEP = _HEAD + b"\r\n" + BODY                                  # HTTP/1.1 keep-alive
RESP_KEEP10 = _HEAD + b"Connection: keep-alive\r\n\r\n" + BODY      # HTTP/1.0 keep-alive
RESP_CLOSE = _HEAD + b"Connection: close\r\n\r\n" + BODY
RESP_400 = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
            b"Connection: close\r\n\r\nBad Request")

# Which parser: GOCORE_BENCH_PARSER=minimal forces the minimal one (the
# E2W variant, run on interpreters where httptools may not build).
PARSER = os.environ.get("GOCORE_BENCH_PARSER", "httptools")
if PARSER == "httptools":
    try:
        import httptools
    except ImportError:
        httptools = None
        PARSER = "minimal (httptools not installed)"
else:
    httptools = None
    PARSER = "minimal"

# E2W: iterations of `_spin` that take WORK_US microseconds (calibrated
# once per server process; 0 = no work).
WORK_US = float(os.environ.get("GOCORE_BENCH_WORK_US", "0"))
WORK_N = 0


def _spin(n):
    """Pure-Python work holding the GIL on a GIL build (a free-threaded
    build runs it on several threads at once)."""
    x = 0
    for i in range(n):
        x += i
    return x


def calibrate():
    """Set WORK_N so that _spin(WORK_N) takes WORK_US (best of 7)."""
    global WORK_N
    if WORK_US <= 0:
        return
    n = 20000
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        _spin(n)
        best = min(best, time.perf_counter() - t0)
    WORK_N = max(1, int(n * WORK_US * 1e-6 / best))


class _Cb:
    """httptools callbacks: one flag per completed request."""
    __slots__ = ("done", "parser")

    def __init__(self):
        self.done = []
        self.parser = None

    def on_message_complete(self):
        p = self.parser
        if not p.should_keep_alive():
            self.done.append(0)
        else:
            self.done.append(2 if p.get_http_version() == "1.0" else 1)


class MinimalParser:
    """Request line + headers up to CRLFCRLF, a Content-Length body;
    enough for wrk, ab and the selftests (no chunked request bodies: 400)."""
    __slots__ = ("buf", "need_body", "keep")

    def __init__(self):
        self.buf = b""
        self.need_body = -1
        self.keep = 1

    def feed(self, data, done):
        buf = self.buf + data if self.buf else data
        while True:
            if self.need_body >= 0:
                if len(buf) < self.need_body:
                    break
                buf = buf[self.need_body:]
                self.need_body = -1
                done.append(self.keep)
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    raise ValueError("request head too large")
                break
            head = buf[:end].split(b"\r\n")
            buf = buf[end + 4:]
            parts = head[0].split(b" ")
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                raise ValueError("bad request line")
            v10 = parts[2] == b"HTTP/1.0"
            keep = not v10
            length = 0
            for h in head[1:]:
                name, sep, value = h.partition(b":")
                if not sep:
                    raise ValueError("bad header")
                name = name.strip().lower()
                value = value.strip().lower()
                if name == b"connection":
                    keep = value == b"keep-alive" if v10 else value != b"close"
                elif name == b"content-length":
                    if not value.isdigit():
                        raise ValueError("bad content-length")
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise ValueError("chunked request bodies are not supported")
            self.keep = (2 if v10 else 1) if keep else 0
            self.need_body = length
        self.buf = buf


class Requests:
    """Per-connection parser state; feed() -> (bytes to write, close after)."""
    __slots__ = ("cb", "p", "mp")

    def __init__(self):
        if httptools is not None:
            self.cb = _Cb()
            self.p = httptools.HttpRequestParser(self.cb)
            self.cb.parser = self.p
            self.mp = None
        else:
            self.cb = _Cb()
            self.p = None
            self.mp = MinimalParser()

    def feed(self, data):
        done = self.cb.done
        try:
            if self.p is not None:
                self.p.feed_data(data)
            else:
                self.mp.feed(data, done)
        except Exception:
            done.clear()
            return RESP_400, True
        if not done:
            return b"", False
        out = []
        close = False
        for k in done:
            if WORK_N:
                _spin(WORK_N)
            if k == 1:
                out.append(RESP_KEEP)
            elif k == 2:
                out.append(RESP_KEEP10)
            else:
                out.append(RESP_CLOSE)
                close = True
                break
        done.clear()
        return (out[0] if len(out) == 1 else b"".join(out)), close
