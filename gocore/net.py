"""gocore.net - Go's net package over gocore's netpoller: a goroutine per
connection, no thread held while it waits.

    ln = net.listen("tcp", "127.0.0.1:0")
    while True:
        go(handle, await ln.accept())

Streams (this module): listen / dial / blocking_dial for "tcp", "tcp4",
"tcp6" and "unix"; Listener and Conn (compiled in gocore/_net.pyx). The
poller itself lives in the scheduler (gocore/_netpoll.pxi).

Addresses: Go's "host:port" strings ("[::1]:80", ":0") or (host, port)
tuples for IP networks, a path for "unix". Hosts are IP literals or
"localhost"; any other name is resolved with the system resolver on the
calling thread (a goroutine-friendly resolver comes with part 2 of the
network work).
"""
from __future__ import annotations

import _socket
import os
import socket as _pysocket
import time as _time
from collections.abc import Coroutine
from typing import Any, Union

from gocore._net import Conn, DeadlineExceeded, ErrClosed, Listener
from gocore._net import _conn_from_socket, _listener_from_socket
from gocore._tls import TLSConn
from gocore._tls import tls_client
from gocore._tls import tls_server

__all__ = ["listen", "dial", "blocking_dial", "Conn", "Listener", "ErrClosed",
           "DeadlineExceeded"]
__all__ += ["TLSConn"]
__all__ += ["tls_client"]
__all__ += ["tls_server"]

Address = Union[str, "tuple[Any, ...]", "os.PathLike[str]"]

_STREAM_NETWORKS = ("tcp", "tcp4", "tcp6", "unix")
_SOCK_FLAGS = _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC


def _check_network(network: object, what: str) -> None:
    if not isinstance(network, str):
        raise TypeError(f"{what}: network must be a str, got {type(network).__name__}")
    if network not in _STREAM_NETWORKS:
        raise ValueError(f"{what}: unknown network {network!r} (stream networks: "
                         + ", ".join(_STREAM_NETWORKS) + ")")


def _split_host_port(address: object, what: str) -> tuple[str, int]:
    """Go's net.SplitHostPort, plus (host, port) tuples. -> (host, port)."""
    if isinstance(address, tuple):
        if len(address) < 2:
            raise ValueError(f"{what}: address tuple needs (host, port), got {address!r}")
        host, port = address[0], address[1]
        if not isinstance(host, str):
            raise TypeError(f"{what}: host must be a str, got {type(host).__name__}")
    elif isinstance(address, str):
        if address.startswith("["):
            end = address.find("]")
            if end < 0:
                raise ValueError(f"{what}: missing ']' in address {address!r}")
            host = address[1:end]
            rest = address[end + 1:]
            if not rest.startswith(":"):
                raise ValueError(f"{what}: missing port in address {address!r}")
            port = rest[1:]
        else:
            i = address.rfind(":")
            if i < 0:
                raise ValueError(f"{what}: missing port in address {address!r}")
            host, port = address[:i], address[i + 1:]
            if ":" in host:
                raise ValueError(f"{what}: too many colons in address {address!r} "
                                 "(write an IPv6 host as [::1]:80)")
        if not port.isdigit():
            raise ValueError(f"{what}: invalid port in address {address!r}")
        port = int(port)
    else:
        raise TypeError(f"{what}: address must be a 'host:port' str or a (host, port) tuple, "
                        f"got {type(address).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"{what}: port must be an int, got {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"{what}: port {port} out of range 0-65535")
    return host, port


def _family_ok(network: str, fam: int) -> bool:
    return (network == "tcp" or (network == "tcp4" and fam == _socket.AF_INET)
            or (network == "tcp6" and fam == _socket.AF_INET6))


def _resolve(network: str, host: str, port: int, what: str,
             passive: bool) -> list[tuple[int, Any]]:
    """[(family, sockaddr)] to try in turn."""
    if host == "":
        if passive:
            if network == "tcp4" or (network == "tcp" and not _pysocket.has_ipv6):
                return [(_socket.AF_INET, ("0.0.0.0", port))]
            return [(_socket.AF_INET6, ("::", port))]
        host = "localhost"           # Go dials the local system for an empty host
    if host == "localhost":
        out = []
        if network in ("tcp", "tcp4"):
            out.append((_socket.AF_INET, ("127.0.0.1", port)))
        if network in ("tcp", "tcp6") and _pysocket.has_ipv6:
            out.append((_socket.AF_INET6, ("::1", port)))
        return out[:1] if passive else out
    import ipaddress
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        ip = None
    if ip is not None:
        fam = _socket.AF_INET6 if ip.version == 6 else _socket.AF_INET
        if not _family_ok(network, fam):
            raise ValueError(f"{what}: address {host!r} is not an {network} address")
        return [(fam, (host, port))]
    fam = {"tcp4": _socket.AF_INET, "tcp6": _socket.AF_INET6}.get(network, _socket.AF_UNSPEC)
    infos = _socket.getaddrinfo(host, port, fam, _socket.SOCK_STREAM)
    found: list[tuple[int, Any]] = []
    for f, _t, _p, _c, sa in infos:
        if (f, sa) not in found and _family_ok(network, f):
            found.append((f, sa))
    if not found:
        raise OSError(f"{what}: no suitable address for {host!r}")
    return found


def listen(network: str, address: Address, *, backlog: int | None = None,
           reuse_port: bool = False) -> Listener:
    """A Listener bound and listening now. TCP listeners set SO_REUSEADDR;
    reuse_port=True sets SO_REUSEPORT. backlog defaults to SOMAXCONN."""
    _check_network(network, "listen()")
    if backlog is None:
        backlog = _socket.SOMAXCONN
    elif isinstance(backlog, bool) or not isinstance(backlog, int):
        raise TypeError(f"listen(): backlog must be an int, got {type(backlog).__name__}")
    if network == "unix":
        path = os.fsdecode(address) if isinstance(address, (str, bytes, os.PathLike)) else None
        if path is None:
            raise TypeError(f"listen('unix', path): path must be a str, got {type(address).__name__}")
        if not path:
            raise ValueError("listen('unix', path): empty path")
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _SOCK_FLAGS)
        try:
            s.bind(path)
            s.listen(backlog)
        except BaseException:
            s.close()
            raise
        return _listener_from_socket(s, network, None if path.startswith("\0") else path)
    host, port = _split_host_port(address, "listen()")
    fam, sa = _resolve(network, host, port, "listen()", True)[0]
    s = _socket.socket(fam, _socket.SOCK_STREAM | _SOCK_FLAGS)
    try:
        s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        if reuse_port:
            s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
        if fam == _socket.AF_INET6:
            s.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY,
                         1 if network == "tcp6" or sa[0] != "::" else 0)
        s.bind(sa)
        s.listen(backlog)
    except BaseException:
        s.close()
        raise
    return _listener_from_socket(s, network)


def _targets(network: str, address: object, what: str) -> list[tuple[int, Any]]:
    _check_network(network, what)
    if network == "unix":
        if not isinstance(address, (str, bytes, os.PathLike)):
            raise TypeError(f"{what}: unix path must be a str, got {type(address).__name__}")
        return [(_socket.AF_UNIX, os.fsdecode(address))]
    host, port = _split_host_port(address, what)
    return _resolve(network, host, port, what, False)


def _check_timeout(timeout: object, what: str) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{what}: timeout must be seconds (int or float) or None, "
                        f"got {type(timeout).__name__}")
    if timeout != timeout:
        raise ValueError(f"{what}: timeout is NaN")
    return _time.monotonic() + timeout


def _start_connect(fam: int, sa: Any, network: str) -> tuple[Conn, int]:
    s = _socket.socket(fam, _socket.SOCK_STREAM | _SOCK_FLAGS)
    try:
        if fam != _socket.AF_UNIX:
            s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        c = _conn_from_socket(s, network, sa if fam != _socket.AF_UNIX else sa)
    except BaseException:
        s.close()
        raise
    err = s.connect_ex(sa)
    return c, err


_PENDING = (0, getattr(os, "EINPROGRESS", 115), getattr(os, "EAGAIN", 11))


def dial(network: str, address: Address, *, timeout: float | None = None,
         ctx: Any = None) -> Coroutine[Any, Any, Conn]:
    """`await net.dial(network, address)`: connect; each resolved address
    is tried in turn until one connects. timeout (seconds) bounds the whole
    dial (TimeoutError); a cancelled ctx aborts it with ctx.err(). Bad
    input raises here, at the call."""
    targets = _targets(network, address, "dial()")
    deadline = _check_timeout(timeout, "dial()")
    return _dial(network, address, targets, deadline, ctx)


async def _dial(network: str, address: Address, targets: list[tuple[int, Any]],
                deadline: float | None, ctx: Any) -> Conn:
    import errno as _errno
    watcher = None
    if ctx is not None:
        e = ctx.err()
        if e is not None:
            raise e
    last: BaseException | None = None
    for fam, sa in targets:
        c, err = _start_connect(fam, sa, network)
        try:
            if err not in (0, _errno.EINPROGRESS, _errno.EAGAIN):
                raise OSError(err, os.strerror(err), sa if isinstance(sa, str) else None)
            if err != 0:
                if deadline is not None:
                    c.set_write_deadline(deadline)
                if ctx is not None:
                    watcher = _watch_ctx(ctx, c)
                try:
                    await c._connect_wait()
                finally:
                    if watcher is not None:
                        watcher.close()
                c.set_write_deadline(None)
            return c
        except DeadlineExceeded as e:
            c.close()
            if ctx is not None and ctx.err() is not None:
                raise ctx.err() from None
            raise TimeoutError(f"dial {network} {address}: i/o timeout") from e
        except OSError as e:
            c.close()
            last = e
        except BaseException:
            c.close()
            raise
    assert last is not None
    raise last


class _CtxWatch:
    """dial's ctx watcher: a goroutine that moves the connect's deadline to
    the past when ctx is cancelled (Go's dial does the same)."""

    def __init__(self, ctx: Any, conn: Conn) -> None:
        from gocore import Chan, go, select
        self.stop: Chan[None] = Chan()

        async def watch() -> None:
            i, _ = await select(ctx.done().recv, self.stop.recv)
            if i == 0:
                try:
                    conn.set_write_deadline(0.0)
                except ErrClosed:
                    pass
        go(watch)

    def close(self) -> None:
        self.stop.close()


def _watch_ctx(ctx: Any, conn: Conn) -> _CtxWatch:
    return _CtxWatch(ctx, conn)


def blocking_dial(network: str, address: Address, *, timeout: float | None = None,
                  ctx: Any = None) -> Conn:
    """dial() for plain threads and sync goroutines."""
    import errno as _errno
    targets = _targets(network, address, "blocking_dial()")
    deadline = _check_timeout(timeout, "blocking_dial()")
    if ctx is not None and ctx.err() is not None:
        raise ctx.err()
    last: BaseException | None = None
    for fam, sa in targets:
        c, err = _start_connect(fam, sa, network)
        try:
            if err not in (0, _errno.EINPROGRESS, _errno.EAGAIN):
                raise OSError(err, os.strerror(err), sa if isinstance(sa, str) else None)
            if err != 0:
                if deadline is not None:
                    c.set_write_deadline(deadline)
                watcher = _watch_ctx(ctx, c) if ctx is not None else None
                try:
                    c._blocking_connect_wait()
                finally:
                    if watcher is not None:
                        watcher.close()
                c.set_write_deadline(None)
            return c
        except DeadlineExceeded as e:
            c.close()
            if ctx is not None and ctx.err() is not None:
                raise ctx.err() from None
            raise TimeoutError(f"dial {network} {address}: i/o timeout") from e
        except OSError as e:
            c.close()
            last = e
        except BaseException:
            c.close()
            raise
    assert last is not None
    raise last
