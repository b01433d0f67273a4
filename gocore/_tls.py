"""TLS for gocore.net: TLSConn, over ssl.MemoryBIO + ssl.SSLObject.

No thread per connection: OpenSSL only ever sees two memory buffers.  The
ciphertext moves between them and the socket through the Conn's own
read/write (so it parks the goroutine on the netpoller, obeys the Conn's
deadlines and is woken by close() like any other Conn I/O).

Locking protocol (one TLSConn is shared by any number of goroutines and
threads, as a Conn is):

- ``_lk`` (a threading.Lock) guards the SSLObject, both MemoryBIOs,
  ``_pending``, ``_rbuf``, ``_closed``, ``_eof`` and ``_wshut``.  It is held only around
  calls into OpenSSL and buffer moves, NEVER across a park: the code that
  holds it contains no yield.  CPython's _ssl drops the GIL inside SSL_read
  and SSL_write, and gocore runs goroutines on several threads, so the
  SSLObject needs it even with the GIL.
- ``_hsmu`` (gocore Mutex) serialises handshakes; held across parks.
  ``_hs_done`` is set once, under ``_hsmu``, after which nobody takes
  ``_hsmu`` again (it is read unlocked as a fast path: seeing True is
  enough; the SSL state it implies is then read under ``_lk``, which the
  handshake released after writing it).
- ``_rmu`` (gocore Mutex) serialises readers (Go's c.in): only its holder
  moves ciphertext from the socket into the incoming BIO, so records enter
  it in the order they arrived.
- ``_wmu`` (gocore Mutex) serialises writes to the socket (Go's c.out).
  Ciphertext is produced in order under ``_lk``, appended to ``_pending``
  (or taken straight out by a writer), and only the holder of ``_wmu``
  sends it, so the wire sees it in the order OpenSSL produced it.  A reader
  whose SSL_read produced output (a TLS 1.3 KeyUpdate answer) appends it to
  ``_pending`` and try-locks ``_wmu``; if that fails, the holder finds it:
  every holder re-checks ``_pending`` after unlocking.  No goroutine waits
  for ``_wmu`` on behalf of reading, so a reader never waits on a writer
  stuck behind a peer that does not read.

Lock order: a mutex (``_hsmu``, ``_rmu``, ``_wmu``) may be held while taking
``_lk``, never the reverse; ``_hsmu`` before the others; ``_rmu`` and
``_wmu`` are never waited for while the other is held (``_wmu`` is only
try-locked by a reader).

The operations are written once, as generators that yield the I/O they need
(("r", n): read ciphertext, ("w", bytes): write it, ("L", mutex): lock);
``_drive`` runs one with ``await`` (lightweight goroutines) and
``_drive_blocking`` with the blocking twins (plain threads, sync goroutines).
"""
from __future__ import annotations

import errno
import os
import ssl
import threading
from collections.abc import Generator
from typing import Any, Literal

from gocore._net import Conn, ErrClosed, _no_await_error
# Private in gocore._sched (not in its stub): "inside a lightweight goroutine?"
from gocore._sched import _on_async_g  # type: ignore[attr-defined]
from gocore._sync import Mutex

__all__ = ["TLSConn", "tls_client", "tls_server"]

_READ = "r"
_WRITE = "w"
_LOCK = "L"
# Ciphertext read from the socket per system call: a full TLS record is
# 16 KiB + overhead; reading several at once saves calls on bulk transfers.
_RAW_READ = 65536
# Plaintext encrypted per step of a large write: bounds the ciphertext held
# in memory at once (a multi-MB write is not copied whole into the BIO).
_WRITE_CHUNK = 256 * 1024

_Steps = Generator[tuple[str, Any], Any, Any]


def _err_closed() -> ErrClosed:
    return ErrClosed("use of closed network connection")


class TLSConn:
    """A TLS connection over a gocore.net.Conn: the methods of Conn plus
    handshake(); made by tls_client() or tls_server()."""

    __slots__ = ("_conn", "_ssl", "_in", "_out", "_lk", "_hsmu", "_rmu", "_wmu",
                 "_hs_done", "_hs_err", "_pending", "_closed", "_eof", "_wshut", "_rbuf",
                 "__weakref__")

    def __init__(self, conn: Conn, context: ssl.SSLContext, server_side: bool,
                 server_hostname: str | None) -> None:
        if not isinstance(conn, Conn):
            raise TypeError(f"TLS needs a gocore.net.Conn, got {type(conn).__name__}")
        if not isinstance(context, ssl.SSLContext):
            raise TypeError(f"context must be an ssl.SSLContext, got {type(context).__name__}")
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        # ValueError here for a client context that checks hostnames and got none.
        self._ssl = context.wrap_bio(self._in, self._out, server_side=server_side,
                                     server_hostname=server_hostname)
        self._conn = conn
        self._lk = threading.Lock()
        self._hsmu = Mutex()
        self._rmu = Mutex()
        self._wmu = Mutex()
        self._hs_done = False
        self._hs_err: BaseException | None = None
        self._pending: list[bytes] = []
        self._closed = False
        self._eof = False          # EOF from the socket given to the incoming BIO
        self._wshut = False        # close_notify sent (close_write / close)
        self._rbuf = b""           # plaintext decrypted early by _notify_locked, read first

    # --- the operations, as generators of I/O steps --------------------------------

    def _handshake_steps(self) -> _Steps:
        mu = self._hsmu
        if not mu.try_lock():
            yield _LOCK, mu
        try:
            if self._hs_err is not None:
                raise self._hs_err          # a failed handshake stays failed (Go: handshakeErr)
            if self._hs_done:
                return
            lk, sobj, out_bio = self._lk, self._ssl, self._out
            while True:
                err = None
                with lk:
                    if self._closed:
                        raise _err_closed()
                    try:
                        sobj.do_handshake()
                        done = True
                    except ssl.SSLWantReadError:
                        done = False
                    except ssl.SSLError as e:
                        err = e
                        done = False
                    out = out_bio.read()
                if err is not None:
                    self._hs_err = err
                    if out:                  # the alert OpenSSL queued: tell the peer why
                        try:
                            yield _WRITE, out
                        except OSError:
                            pass
                    raise err
                if out:
                    yield _WRITE, out
                if done:
                    break
                data = yield _READ, _RAW_READ
                with lk:
                    if data:
                        self._in.write(data)
                    else:                   # EOF mid-handshake: do_handshake raises SSLEOFError
                        self._eof = True
                        self._in.write_eof()
            self._hs_done = True
        finally:
            mu.unlock()

    def _read_steps(self, n: int, buf: Any) -> _Steps:
        if not self._hs_done:
            yield from self._handshake_steps()
        mu = self._rmu
        if not mu.try_lock():
            yield _LOCK, mu
        got: bool
        flush: bool
        r: Any
        try:
            lk, sobj, in_bio, out_bio = self._lk, self._ssl, self._in, self._out
            while True:
                with lk:
                    if self._closed:
                        raise _err_closed()
                    if self._rbuf:               # decrypted by _notify_locked: comes first
                        early = self._rbuf[:n]
                        self._rbuf = self._rbuf[n:]
                        if buf is None:
                            return early
                        memoryview(buf).cast("B")[:len(early)] = early
                        return len(early)
                    # Without read-ahead (CPython never sets it) OpenSSL keeps
                    # undecrypted records in the BIO, so with the BIO empty and
                    # nothing decrypted pending, SSL_read could only say "want
                    # read": skip the call and its exception.
                    if in_bio.pending or self._eof or sobj.pending():
                        try:
                            r = sobj.read(n) if buf is None else sobj.read(n, buf)
                            got = True
                        except ssl.SSLWantReadError:
                            got = False
                        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                            # close_notify, or EOF without it: both are EOF here
                            r = b"" if buf is None else 0
                            got = True
                        if out_bio.pending:      # post-handshake output (KeyUpdate answer)
                            self._pending.append(out_bio.read())
                            flush = True
                        else:
                            flush = False
                    else:
                        got = flush = False
                if flush:
                    yield from self._flush_try()
                if got:
                    return r
                data = yield _READ, _RAW_READ
                with lk:
                    if data:
                        in_bio.write(data)
                    else:
                        self._eof = True
                        in_bio.write_eof()
        finally:
            mu.unlock()

    def _write_steps(self, data: Any) -> _Steps:
        if not self._hs_done:
            yield from self._handshake_steps()
        mv = memoryview(data).cast("B")
        total = len(mv)
        mu = self._wmu
        if not mu.try_lock():
            yield _LOCK, mu
        try:
            lk, sobj, out_bio = self._lk, self._ssl, self._out
            off = 0
            while off < total:
                chunk = mv[off:off + _WRITE_CHUNK]
                with lk:
                    if self._closed:
                        raise _err_closed()
                    if self._wshut:
                        raise BrokenPipeError(errno.EPIPE, "write after close_write()")
                    k = 0
                    while k < len(chunk):    # a memory BIO takes all, but do not rely on it
                        k += sobj.write(chunk[k:])
                    out = out_bio.read()
                    if self._pending:        # produced earlier: goes first
                        self._pending.append(out)
                        out = b"".join(self._pending)
                        self._pending.clear()
                yield _WRITE, out
                off += len(chunk)
            yield from self._flush_locked()
        finally:
            mu.unlock()
        if self._pending:                   # appended by a reader that found _wmu taken
            yield from self._flush_try()
        return total

    def _flush_locked(self) -> _Steps:
        """Send _pending; the caller holds _wmu."""
        while True:
            with self._lk:
                if not self._pending:
                    return
                out = b"".join(self._pending)
                self._pending.clear()
            yield _WRITE, out

    def _flush_try(self) -> _Steps:
        """Send _pending if _wmu is free; else its holder will (it re-checks
        _pending after unlocking, so nothing is left behind)."""
        mu = self._wmu
        while True:
            if not mu.try_lock():
                return
            try:
                yield from self._flush_locked()
            finally:
                mu.unlock()
            with self._lk:
                if not self._pending:
                    return

    def _close_write_steps(self) -> _Steps:
        if self._closed:
            raise _err_closed()
        if not self._hs_done:
            raise OSError(errno.ENOTCONN, "tls: close_write() before the handshake completed")
        mu = self._wmu
        if not mu.try_lock():
            yield _LOCK, mu
        try:
            out = self._notify_locked()
            if out:
                yield _WRITE, out
        finally:
            mu.unlock()
        self._conn.close_write()

    def _notify_locked(self) -> bytes:
        """close_notify (and anything pending before it) as bytes to send;
        b"" if already sent. The caller holds _wmu."""
        with self._lk:
            if self._wshut:
                return b""
            self._wshut = True
            # unwrap() calls SSL_shutdown twice, and the second call reads
            # the peer's records looking for its close_notify, discarding
            # application data on the way (and failing later reads). So
            # first decrypt every complete record already in the incoming
            # BIO into _rbuf (readers take it first; only a partial record
            # can stay, inside OpenSSL, where the shutdown does not reach it).
            sobj = self._ssl
            while True:
                try:
                    data = sobj.read(65536)
                except ssl.SSLError:        # want read, close_notify, EOF or a bad record:
                    break                   # the reader meets the same state next
                if not data:
                    break
                self._rbuf += data
            try:
                sobj.unwrap()               # queues close_notify; then wants the peer's
            except ssl.SSLError:
                pass
            out = b"".join(self._pending) + self._out.read()
            self._pending.clear()
            return out

    # --- drivers -------------------------------------------------------------------

    async def _drive(self, gen: _Steps) -> Any:
        conn = self._conn
        res: Any
        try:
            op, arg = gen.send(None)
            while True:
                try:
                    if op is _READ:
                        res = await conn.read(arg)
                    elif op is _WRITE:
                        res = await conn.write(arg)
                    else:
                        res = await arg.lock()
                except BaseException as e:
                    op, arg = gen.throw(e)
                else:
                    op, arg = gen.send(res)
        except StopIteration as e:
            return e.value
        finally:
            gen.close()

    def _drive_blocking(self, gen: _Steps, what: str, alt: str) -> Any:
        if _on_async_g():
            gen.close()
            raise _no_await_error(what, alt)
        conn = self._conn
        res: Any
        try:
            op, arg = gen.send(None)
            while True:
                try:
                    if op is _READ:
                        res = conn.blocking_read(arg)
                    elif op is _WRITE:
                        res = conn.blocking_write(arg)
                    else:
                        res = arg.blocking_lock()
                except BaseException as e:
                    op, arg = gen.throw(e)
                else:
                    op, arg = gen.send(res)
        except StopIteration as e:
            return e.value
        finally:
            gen.close()

    # --- the Conn API ----------------------------------------------------------------

    async def handshake(self) -> None:
        """Run the TLS handshake (the first read or write does it if this was
        not awaited). Certificate and hostname failures raise ssl.SSLError
        subclasses (ssl.SSLCertVerificationError)."""
        if not self._hs_done:
            await self._drive(self._handshake_steps())

    def blocking_handshake(self) -> None:
        if not self._hs_done or _on_async_g():
            self._drive_blocking(self._handshake_steps(), "blocking_handshake()",
                                 "await tls.handshake()")

    @staticmethod
    def _check_n(n: object) -> int:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"read(n): n must be an int, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"read(n): n must be >= 0, got {n}")
        return n

    @staticmethod
    def _check_buffer(buffer: object) -> int:
        if isinstance(buffer, (bytes, str)):
            raise TypeError(f"read_into() needs a writable buffer (bytearray, memoryview), "
                            f"got {type(buffer).__name__}")
        mv = memoryview(buffer)            # type: ignore[arg-type]
        if mv.readonly:
            raise TypeError("read_into() needs a writable buffer")
        return mv.nbytes

    @staticmethod
    def _check_data(data: object) -> None:
        if isinstance(data, str):
            raise TypeError("write() needs bytes-like data, not str (encode it first)")
        memoryview(data)                    # type: ignore[arg-type]

    async def read(self, n: int = 65536) -> bytes:
        """1..n bytes of plaintext; b"" at EOF (with or without close_notify)."""
        if self._check_n(n) == 0:
            return b""
        return await self._drive(self._read_steps(n, None))  # type: ignore[no-any-return]

    async def read_into(self, buffer: bytearray | memoryview) -> int:
        n = self._check_buffer(buffer)
        if n == 0:
            return 0
        return await self._drive(self._read_steps(n, buffer))  # type: ignore[no-any-return]

    async def write(self, data: bytes | bytearray | memoryview) -> int:
        """Encrypt and write all of data; returns len(data)."""
        self._check_data(data)
        return await self._drive(self._write_steps(data))  # type: ignore[no-any-return]

    def blocking_read(self, n: int = 65536) -> bytes:
        if self._check_n(n) == 0 and not _on_async_g():
            return b""
        return self._drive_blocking(self._read_steps(n, None), "blocking_read()",  # type: ignore[no-any-return]
                                    "await tls.read(n)")

    def blocking_read_into(self, buffer: bytearray | memoryview) -> int:
        n = self._check_buffer(buffer)
        if n == 0 and not _on_async_g():
            return 0
        return self._drive_blocking(self._read_steps(n, buffer), "blocking_read_into()",  # type: ignore[no-any-return]
                                    "await tls.read_into(buffer)")

    def blocking_write(self, data: bytes | bytearray | memoryview) -> int:
        self._check_data(data)
        return self._drive_blocking(self._write_steps(data), "blocking_write()",  # type: ignore[no-any-return]
                                    "await tls.write(data)")

    async def close_write(self) -> None:
        """Send close_notify and shut down the socket's writing side; reading
        goes on (the peer sees EOF). Unlike Conn.close_write it is awaited:
        the alert is written like data. Later writes raise BrokenPipeError."""
        await self._drive(self._close_write_steps())

    def blocking_close_write(self) -> None:
        self._drive_blocking(self._close_write_steps(), "blocking_close_write()",
                             "await tls.close_write()")

    def close(self) -> None:
        """Send close_notify if the handshake is done and no write is in
        progress (best effort: one non-blocking send), then close the Conn,
        waking every goroutine blocked on it with ErrClosed. Idempotent."""
        with self._lk:
            if self._closed:
                return
            self._closed = True
            notify = self._hs_done and not self._wshut
        if notify and self._wmu.try_lock():
            try:
                out = self._notify_locked()
                if out:
                    try:
                        # Non-blocking fd: sends now or not at all. A partial
                        # send only happens with < 30 bytes of send buffer left.
                        os.write(self._conn.fileno(), out)
                    except OSError:
                        pass
            finally:
                self._wmu.unlock()
        self._conn.close()

    def set_deadline(self, t: float | None) -> None:
        self._conn.set_deadline(t)

    def set_read_deadline(self, t: float | None) -> None:
        self._conn.set_read_deadline(t)

    def set_write_deadline(self, t: float | None) -> None:
        self._conn.set_write_deadline(t)

    @property
    def local_addr(self) -> Any:
        return self._conn.local_addr

    @property
    def remote_addr(self) -> Any:
        return self._conn.remote_addr

    @property
    def network(self) -> str:
        return self._conn.network

    @property
    def conn(self) -> Conn:
        """The underlying Conn (do not read or write it directly)."""
        return self._conn

    def fileno(self) -> int:
        return self._conn.fileno()

    # --- the negotiated session (after the handshake) --------------------------------

    def version(self) -> str | None:
        with self._lk:
            return self._ssl.version()

    def cipher(self) -> tuple[str, str, int] | None:
        with self._lk:
            return self._ssl.cipher()

    def selected_alpn_protocol(self) -> str | None:
        with self._lk:
            return self._ssl.selected_alpn_protocol()

    def getpeercert(self, binary_form: bool = False) -> Any:
        with self._lk:
            return self._ssl.getpeercert(binary_form)

    def __enter__(self) -> TLSConn:
        return self

    def __exit__(self, t: Any, v: Any, tb: Any) -> Literal[False]:
        self.close()
        return False

    async def __aenter__(self) -> TLSConn:
        return self

    async def __aexit__(self, t: Any, v: Any, tb: Any) -> Literal[False]:
        self.close()
        return False

    def __repr__(self) -> str:
        state = "handshaken" if self._hs_done else "handshake pending"
        return f"<gocore.net.TLSConn over {self._conn!r}, {state}>"


def tls_client(conn: Conn, context: ssl.SSLContext | None = None,
               server_hostname: str | None = None) -> TLSConn:
    """The client side of TLS over conn. context defaults to
    ssl.create_default_context() (system CAs, hostname checked: then
    server_hostname is required). No I/O until handshake() or the first
    read or write."""
    if context is None:
        context = ssl.create_default_context()
    if server_hostname is not None and not isinstance(server_hostname, str):
        raise TypeError(f"server_hostname must be a str, got {type(server_hostname).__name__}")
    if context.check_hostname and not server_hostname:
        raise ValueError("tls_client(): the context checks hostnames: pass server_hostname= "
                         "(or a context with check_hostname = False)")
    return TLSConn(conn, context, False, server_hostname)


def tls_server(conn: Conn, context: ssl.SSLContext) -> TLSConn:
    """The server side of TLS over conn; context holds the certificate
    (ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER) + load_cert_chain)."""
    return TLSConn(conn, context, True, None)
