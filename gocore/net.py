"""gocore.net - Go's net package over gocore's netpoller: a goroutine per
connection, no thread held while it waits.

    ln = net.listen("tcp", "127.0.0.1:0")
    while True:
        go(handle, await ln.accept())

This module: listen / dial / blocking_dial for "tcp", "tcp4", "tcp6" and
"unix"; listen_packet for "udp", "udp4", "udp6" and "unixgram";
lookup_host; wait_readable / wait_writable for any pollable fd. Listener,
Conn, PacketConn and the waits are compiled (gocore/_net.pyx); the poller
itself lives in the scheduler (gocore/_netpoll.pxi).

Addresses: Go's "host:port" strings ("[::1]:80", ":0") or (host, port)
tuples for IP networks, a path for "unix" and "unixgram". `dial`,
`lookup_host` and `write_to` resolve names off the M (the resolver pool
below); `listen` and `listen_packet` are synchronous calls and resolve a
name other than "localhost" on the calling thread.
"""
from __future__ import annotations

import _socket
import collections
import os
import socket as _pysocket
import threading
import time as _time
from collections.abc import Coroutine
from typing import Any, Union

from gocore._chan import Chan, blocking_select, nilchan, select
from gocore._net import Conn, DeadlineExceeded, ErrClosed, Listener, PacketConn
from gocore._net import wait_readable, wait_writable
from gocore._net import _conn_from_socket, _listener_from_socket, _no_await_error
from gocore._net import _packet_from_socket, _set_packet_hooks
from gocore import _sched
from gocore._sched import go
from gocore._time import Timer
from gocore.context import Context
from gocore._tls import TLSConn
from gocore._tls import tls_client
from gocore._tls import tls_server

__all__ = [
    "listen",
    "listen_packet",
    "dial",
    "blocking_dial",
    "lookup_host",
    "wait_readable",
    "wait_writable",
    "Conn",
    "Listener",
    "PacketConn",
    "ErrClosed",
    "DeadlineExceeded",
    "TLSConn",
    "tls_client",
    "tls_server",
]

Address = Union[str, "tuple[Any, ...]", "os.PathLike[str]"]

_STREAM_NETWORKS = ("tcp", "tcp4", "tcp6", "unix")
_PACKET_NETWORKS = ("udp", "udp4", "udp6", "unixgram")
_SOCK_FLAGS = _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC


def _check_network(network: object, what: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(network, str):
        raise TypeError(f"{what}: network must be a str, got {type(network).__name__}")
    if network not in allowed:
        kind = "stream" if allowed is _STREAM_NETWORKS else "packet"
        raise ValueError(f"{what}: unknown network {network!r} ({kind} networks: "
                         + ", ".join(allowed) + ")")


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


def _unix_path(address: object, what: str) -> str:
    if not isinstance(address, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: unix path must be a str, got {type(address).__name__}")
    return os.fsdecode(address)


def _family_ok(network: str, fam: int) -> bool:
    """"tcp4"/"udp4" take IPv4 only, "tcp6"/"udp6" IPv6 only, the rest both."""
    if network.endswith("4"):
        return fam == _socket.AF_INET
    if network.endswith("6"):
        return fam == _socket.AF_INET6
    return fam in (_socket.AF_INET, _socket.AF_INET6)


def _network_family(network: str) -> int:
    """getaddrinfo's family hint for a network."""
    if network.endswith("4"):
        return _socket.AF_INET
    if network.endswith("6"):
        return _socket.AF_INET6
    return _socket.AF_UNSPEC


def _ip_family(host: str) -> int:
    """AF_INET / AF_INET6 for an IP literal (an IPv6 one may carry a %zone),
    0 for anything else (a name to resolve)."""
    try:
        _socket.inet_pton(_socket.AF_INET, host)
        return _socket.AF_INET
    except OSError:
        pass
    try:
        _socket.inet_pton(_socket.AF_INET6, host.split("%", 1)[0])
        return _socket.AF_INET6
    except OSError:
        return 0


def _literal_targets(network: str, host: str, port: int, what: str,
                     passive: bool) -> list[tuple[int, Any]] | None:
    """[(family, sockaddr)] for a host that needs no resolver, or None for a
    name to resolve. "" is the wildcard address to listen on and the local
    system to dial (Go's: its loopback addresses); an IP literal is itself;
    listen takes "localhost" as the loopback address without a lookup (a
    synchronous call should not wait for a resolver), dial resolves it."""
    if host == "" and passive:
        if network.endswith("4") or (not network.endswith("6") and not _pysocket.has_ipv6):
            return [(_socket.AF_INET, ("0.0.0.0", port))]
        return [(_socket.AF_INET6, ("::", port))]
    if host == "" or (host == "localhost" and passive):
        out = []
        if not network.endswith("6"):
            out.append((_socket.AF_INET, ("127.0.0.1", port)))
        if not network.endswith("4") and _pysocket.has_ipv6:
            out.append((_socket.AF_INET6, ("::1", port)))
        return out[:1] if passive else out
    fam = _ip_family(host)
    if fam == 0:
        return None
    if not _family_ok(network, fam):
        raise ValueError(f"{what}: address {host!r} is not an {network} address")
    return [(fam, (host, port))]


def _filter_infos(network: str, host: str, infos: list[Any], what: str) -> list[tuple[int, Any]]:
    """getaddrinfo's answer -> [(family, sockaddr)] the network can use,
    de-duplicated, in the resolver's order."""
    found: list[tuple[int, Any]] = []
    for f, _t, _p, _c, sa in infos:
        if (f, sa) not in found and _family_ok(network, f):
            found.append((f, sa))
    if not found:
        raise OSError(f"{what}: no suitable address for {host!r}")
    return found


def _resolve_here(network: str, host: str, port: int, what: str) -> list[tuple[int, Any]]:
    """listen and listen_packet: synchronous calls, so a name (other than
    "localhost") is resolved on the calling thread."""
    targets = _literal_targets(network, host, port, what, True)
    if targets is not None:
        return targets
    socktype = _socket.SOCK_DGRAM if network.startswith("udp") else _socket.SOCK_STREAM
    infos = _socket.getaddrinfo(host, port, _network_family(network), socktype)
    return _filter_infos(network, host, infos, what)


# ---------------------------------------------------------------- the resolver

_RESOLVER_THREADS = 4        # at most this many getaddrinfo calls at once
_RESOLVER_IDLE = 10.0        # seconds a resolver thread waits for work before it leaves


class _Lookup:
    """One getaddrinfo request. `ch` (capacity 1) receives the answer - the
    list, or the exception - exactly once, from the resolver thread.
    `abandoned` is set by the asker when it stops waiting (timeout, ctx);
    a thread that has not started the call yet skips it."""

    __slots__ = ("args", "ch", "abandoned")

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args
        self.ch: Chan[Any] = Chan(1)
        self.abandoned = False


class _Resolver:
    """getaddrinfo off the M: a small pool of plain threads.

    getaddrinfo is a blocking C call that may take seconds (a DNS server
    that does not answer). In a lightweight goroutine it would hold the
    worker thread and its processor; in a sync goroutine it would hold the
    processor until sysmon noticed the stuck M and started another thread.
    A plain thread holds neither: the asking goroutine parks on the
    lookup's channel like on any other, the thread runs getaddrinfo and
    sends the answer (Go's cgo resolver likewise gives each lookup a
    thread, bounded by a semaphore).

    Bounded: at most _RESOLVER_THREADS threads, started on demand, each
    leaving after _RESOLVER_IDLE idle seconds; further lookups queue in
    arrival order, and their time in the queue counts against the asker's
    timeout.

    Deadlock detection: an idle thread waits in Condition.wait, which
    deadlock detection counts as asleep - so a thread just notified of a
    job would look asleep too. Every lookup is therefore counted, from
    submit until its answer is sent (or it is skipped, abandoned), in the
    scheduler's count of outside wake-ups to come (the one gocore.aio's
    asyncio calls use, _sched._aio_pending_add): while it is non-zero no
    goroutine is declared deadlocked. The answer is sent before the count
    drops, so a reader that sees 0 also sees the woken goroutine.

    State, all under `cond`'s lock: `jobs` (the queue), `nthreads`
    (threads alive), `nidle` (threads waiting for a job), `pending`
    (lookups counted and not yet answered or skipped). A fork child starts
    with an empty pool (_reset)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """A fresh, empty pool (also a fork child's: the parent's threads
        do not exist there)."""
        self.cond = threading.Condition(threading.Lock())
        self.jobs: collections.deque[_Lookup] = collections.deque()
        self.nthreads = 0
        self.nidle = 0
        self.pending = 0

    def _after_fork(self) -> None:
        # the parent's lookups (and threads) do not exist here: stop counting
        # them (gocore.aio's fork handler may have zeroed the count already)
        _sched._aio_pending_add(-min(self.pending, max(_sched._aio_pending_add(0), 0)))
        self._reset()

    def submit(self, *args: Any) -> _Lookup:
        job = _Lookup(args)
        with self.cond:
            self.jobs.append(job)
            self.pending += 1
            _sched._aio_pending_add(1)
            spawn = len(self.jobs) > self.nidle and self.nthreads < _RESOLVER_THREADS
            if spawn:
                self.nthreads += 1
            else:
                self.cond.notify()
        if spawn:
            try:
                threading.Thread(target=self._worker, name="gocore-resolver", daemon=True).start()
            except BaseException:
                with self.cond:
                    self.nthreads -= 1
                raise
        return job

    def _worker(self) -> None:
        cond = self.cond
        while True:
            with cond:
                self.nidle += 1
                while not self.jobs:
                    if not cond.wait(_RESOLVER_IDLE) and not self.jobs:
                        self.nidle -= 1
                        self.nthreads -= 1
                        return
                self.nidle -= 1
                job = self.jobs.popleft()
            try:
                if job.abandoned:
                    continue
                try:
                    res: Any = _socket.getaddrinfo(*job.args)
                except BaseException as e:       # gaierror, UnicodeError (an IDNA name)...
                    res = e
                job.ch.try_send(res)             # wake the asker first...
            finally:
                with cond:
                    self.pending -= 1
                _sched._aio_pending_add(-1)             # ...then stop counting it



_resolver = _Resolver()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_resolver._after_fork)


async def _select(blocking: bool, *cases: Any) -> tuple[int, Any]:
    """select, or blocking_select for the blocking twins (see _run_now)."""
    if blocking:
        return blocking_select(*cases)
    return await select(*cases)


def _run_now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run one of this module's coroutines in its blocking mode
    (blocking=True): each wait inside blocks the thread instead of
    suspending, so it completes in one step. The async API and its
    blocking twin thus share one body."""
    try:
        coro.send(None)
    except StopIteration as s:
        return s.value
    coro.close()
    raise AssertionError("gocore.net: a blocking operation suspended")


def _timeout_error(what: str) -> TimeoutError:
    return TimeoutError(f"{what}: i/o timeout")


async def _lookup(host: str, port: int | None, family: int, socktype: int,
                  deadline: float | None, ctx: Any, blocking: bool, what: str) -> list[Any]:
    """getaddrinfo(host, port, family, socktype) on the resolver pool, the
    asker parked meanwhile. Out of time: TimeoutError; ctx done: ctx.err()."""
    if ctx is not None and (e := ctx.err()) is not None:
        raise e
    if deadline is not None and deadline <= _time.monotonic():
        raise _timeout_error(f"{what}: lookup {host}")
    job = _resolver.submit(host, port, family, socktype)
    cases = [job.ch.recv]
    i_ctx = i_timer = -1
    timer = None
    if ctx is not None and ctx.done() is not nilchan:
        i_ctx = len(cases)
        cases.append(ctx.done().recv)
    if deadline is not None:
        timer = Timer(deadline - _time.monotonic())
        i_timer = len(cases)
        cases.append(timer.c.recv)
    try:
        i, v = await _select(blocking, *cases)
    finally:
        if timer is not None:
            timer.stop()
        job.abandoned = True         # read only by a thread that has not started it
    if i == 0:
        if isinstance(v, BaseException):
            raise v
        infos: list[Any] = v
        return infos
    if i == i_ctx:
        raise ctx.err()
    assert i == i_timer
    raise _timeout_error(f"{what}: lookup {host}")


def _check_ctx(ctx: object, what: str) -> None:
    if ctx is not None and not isinstance(ctx, Context):
        raise TypeError(f"{what}: ctx must be a gocore.context.Context or None, "
                        f"got {type(ctx).__name__}")


def _check_timeout(timeout: object, what: str) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{what}: timeout must be seconds (int or float) or None, "
                        f"got {type(timeout).__name__}")
    if timeout != timeout:
        raise ValueError(f"{what}: timeout is NaN")
    return _time.monotonic() + timeout


def lookup_host(host: str, *, timeout: float | None = None,
                ctx: Any = None) -> Coroutine[Any, Any, list[str]]:
    """`await net.lookup_host(host)`: the host's addresses as strings,
    de-duplicated, in the resolver's order (Go's net.LookupHost). An IP
    literal gives itself. Resolved off the M; timeout (seconds) and ctx
    bound it as for dial. A failed lookup raises socket.gaierror."""
    if not isinstance(host, str):
        raise TypeError(f"lookup_host(): host must be a str, got {type(host).__name__}")
    if not host:
        raise ValueError("lookup_host(): empty host")
    _check_ctx(ctx, "lookup_host()")
    return _lookup_host(host, _check_timeout(timeout, "lookup_host()"), ctx)


async def _lookup_host(host: str, deadline: float | None, ctx: Any) -> list[str]:
    if _ip_family(host):
        return [host]
    infos = await _lookup(host, None, _socket.AF_UNSPEC, _socket.SOCK_STREAM, deadline, ctx,
                          False, "lookup_host()")
    return list(dict.fromkeys(sa[0] for _f, _t, _p, _c, sa in infos))


# ---------------------------------------------------------------- listen

def _bound_socket(fam: int, socktype: int, sa: Any, network: str,
                  reuse_port: bool = False) -> Any:
    """A non-blocking socket of fam bound to sa. TCP sets SO_REUSEADDR (and
    SO_REUSEPORT if asked), UDP SO_BROADCAST (Go's defaults). An IPv6 socket
    takes IPv4 too (dual-stack) only for the wildcard address of "tcp" and
    "udp", as Go's."""
    s = _socket.socket(fam, socktype | _SOCK_FLAGS)
    try:
        if fam != _socket.AF_UNIX:
            if socktype == _socket.SOCK_STREAM:
                s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                if reuse_port:
                    s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
            else:
                s.setsockopt(_socket.SOL_SOCKET, _socket.SO_BROADCAST, 1)
        if fam == _socket.AF_INET6:
            s.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY,
                         1 if network.endswith("6") or sa[0] != "::" else 0)
        s.bind(sa)
    except BaseException:
        s.close()
        raise
    return s


def _listening(s: Any, backlog: int) -> Any:
    try:
        s.listen(backlog)
    except BaseException:
        s.close()
        raise
    return s


def listen(network: str, address: Address, *, backlog: int | None = None,
           reuse_port: bool = False) -> Listener:
    """A Listener bound and listening now. TCP listeners set SO_REUSEADDR;
    reuse_port=True sets SO_REUSEPORT. backlog defaults to SOMAXCONN."""
    _check_network(network, "listen()", _STREAM_NETWORKS)
    if backlog is None:
        backlog = _socket.SOMAXCONN
    elif isinstance(backlog, bool) or not isinstance(backlog, int):
        raise TypeError(f"listen(): backlog must be an int, got {type(backlog).__name__}")
    if network == "unix":
        path = _unix_path(address, "listen('unix', path)")
        if not path:
            raise ValueError("listen('unix', path): empty path")
        s = _listening(_bound_socket(_socket.AF_UNIX, _socket.SOCK_STREAM, path, network), backlog)
        return _listener_from_socket(s, network, None if path.startswith("\0") else path)
    host, port = _split_host_port(address, "listen()")
    fam, sa = _resolve_here(network, host, port, "listen()")[0]
    s = _listening(_bound_socket(fam, _socket.SOCK_STREAM, sa, network, reuse_port), backlog)
    return _listener_from_socket(s, network)


def listen_packet(network: str, address: Address) -> PacketConn:
    """A PacketConn bound now (Go's net.ListenPacket): "udp", "udp4", "udp6"
    with a "host:port" or (host, port) address (":0": every interface, a
    free port), "unixgram" with a path ("" binds an unnamed abstract
    address, Linux's autobind). A unixgram socket file is not removed on
    close (as Go's)."""
    _check_network(network, "listen_packet()", _PACKET_NETWORKS)
    if network == "unixgram":
        path = _unix_path(address, "listen_packet('unixgram', path)")
        s = _bound_socket(_socket.AF_UNIX, _socket.SOCK_DGRAM, path, network)
        return _packet_from_socket(s, network, False)
    host, port = _split_host_port(address, "listen_packet()")
    fam, sa = _resolve_here(network, host, port, "listen_packet()")[0]
    s = _bound_socket(fam, _socket.SOCK_DGRAM, sa, network)
    dual = fam == _socket.AF_INET6 and not s.getsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY)
    return _packet_from_socket(s, network, dual)


# ---------------------------------------------------------------- dial

def _dial_targets(network: str, address: object,
                  what: str) -> tuple[list[tuple[int, Any]] | None, str, int]:
    """(targets, host, port): targets None when host is a name to resolve."""
    _check_network(network, what, _STREAM_NETWORKS)
    if network == "unix":
        return [(_socket.AF_UNIX, _unix_path(address, what))], "", 0
    host, port = _split_host_port(address, what)
    return _literal_targets(network, host, port, what, False), host, port


def dial(network: str, address: Address, *, timeout: float | None = None,
         ctx: Any = None) -> Coroutine[Any, Any, Conn]:
    """`await net.dial(network, address)`: connect. A name is resolved off
    the M and each of its addresses tried in turn until one connects (the
    first error is raised if none does). timeout (seconds) bounds resolving
    and connecting (TimeoutError); when ctx is done the dial fails with
    exactly ctx.err() (at once if it already is). Bad input raises here,
    at the call."""
    targets, host, port = _dial_targets(network, address, "dial()")
    deadline = _check_timeout(timeout, "dial()")
    _check_ctx(ctx, "dial()")
    return _dial(network, address, targets, host, port, deadline, ctx, False)


def blocking_dial(network: str, address: Address, *, timeout: float | None = None,
                  ctx: Any = None) -> Conn:
    """dial() for plain threads and sync goroutines."""
    if _sched._on_async_g():
        raise _no_await_error("blocking_dial()", "await net.dial(...)")
    targets, host, port = _dial_targets(network, address, "blocking_dial()")
    deadline = _check_timeout(timeout, "blocking_dial()")
    _check_ctx(ctx, "blocking_dial()")
    c: Conn = _run_now(_dial(network, address, targets, host, port, deadline, ctx, True))
    return c


_SANE_ATTEMPT = 2.0          # seconds: the least an address gets of a shared timeout (Go's saneMinimum)


async def _dial(network: str, address: Address, targets: list[tuple[int, Any]] | None,
                host: str, port: int, deadline: float | None, ctx: Any, blocking: bool) -> Conn:
    what = f"dial {network} {address}"
    if ctx is not None and (e := ctx.err()) is not None:
        raise e
    if targets is None:
        infos = await _lookup(host, port, _network_family(network), _socket.SOCK_STREAM,
                              deadline, ctx, blocking, what)
        targets = _filter_infos(network, host, infos, what)
    # the time to share among the addresses: the timeout's and ctx's
    # deadline, whichever is first (ctx's own end is its watcher's business)
    share_until = deadline
    if ctx is not None:
        ctx_deadline, ok = ctx.deadline()
        if ok and ctx_deadline is not None and (share_until is None or ctx_deadline < share_until):
            share_until = ctx_deadline
    first: OSError | None = None
    for i, (fam, sa) in enumerate(targets):
        if ctx is not None and (e := ctx.err()) is not None:
            raise e
        now = _time.monotonic()
        if deadline is not None and deadline <= now:
            raise _timeout_error(what) from first
        attempt_deadline = deadline
        left_addrs = len(targets) - i
        if share_until is not None and left_addrs > 1:
            # Go's partialDeadline: the time left is shared among the
            # addresses left, so that one address that never answers does
            # not eat it all (each gets a sane minimum); the last one gets
            # all that is left
            left = share_until - now
            share = left / left_addrs
            attempt_deadline = now + (share if share >= _SANE_ATTEMPT else min(max(left, 0.0), _SANE_ATTEMPT))
            if deadline is not None:
                attempt_deadline = min(attempt_deadline, deadline)
        try:
            return await _dial_one(network, fam, sa, attempt_deadline, ctx, blocking, what)
        except OSError as e:
            if ctx is not None and e is ctx.err():
                raise
            if first is None:
                first = e
    assert first is not None
    if deadline is not None and _time.monotonic() >= deadline:
        raise _timeout_error(what) from first
    raise first


async def _dial_one(network: str, fam: int, sa: Any, deadline: float | None, ctx: Any,
                    blocking: bool, what: str) -> Conn:
    """One address: a non-blocking connect, waited for on the poller (the
    write deadline bounds it; ctx's watcher moves that deadline to the
    past when ctx is done, as Go's connect does)."""
    s = _socket.socket(fam, _socket.SOCK_STREAM | _SOCK_FLAGS)
    try:
        if fam != _socket.AF_UNIX:
            s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        c = _conn_from_socket(s, network, sa)
    except BaseException:
        s.close()
        raise
    try:
        err = s.connect_ex(sa)
        if err not in _PENDING:
            raise OSError(err, os.strerror(err), sa if isinstance(sa, str) else None)
        if err != 0:
            if deadline is not None:
                c.set_write_deadline(deadline)
            watch = _CtxWatch(ctx, c) if ctx is not None and ctx.done() is not nilchan else None
            try:
                if blocking:
                    c._blocking_connect_wait()
                else:
                    await c._connect_wait()
            except DeadlineExceeded:
                if watch is not None and await watch.stop(blocking):
                    raise ctx.err() from None
                raise _timeout_error(what) from None
            except BaseException:
                if watch is not None:
                    watch.stop_nowait()      # (no await here: this may be the coroutine's close)
                raise
            if watch is not None and await watch.stop(blocking):
                raise ctx.err()              # done as the connect completed: ctx wins, as Go's
            c.set_write_deadline(None)
        return c
    except BaseException:
        c.close()
        raise


_PENDING = (0, getattr(os, "EINPROGRESS", 115), getattr(os, "EAGAIN", 11))


class _CtxWatch:
    """A connect's ctx watcher (Go's connect interrupter): a goroutine that
    moves the connect's write deadline to the past when ctx is done. stop()
    ends it and says whether it fired: the dial then fails with ctx.err()
    even if the connect got through meanwhile (so a deadline it moved is
    never left on a Conn that dial returns)."""

    __slots__ = ("_stop", "_fired")

    def __init__(self, ctx: Any, conn: Conn) -> None:
        self._stop: Chan[None] = Chan()
        self._fired: Chan[bool] = Chan(1)
        stop, fired = self._stop, self._fired

        async def watch() -> None:
            i, _ = await select(ctx.done().recv, stop.recv)
            if i == 0:
                try:
                    conn.set_write_deadline(0.0)
                except ErrClosed:
                    pass
            fired.try_send(i == 0)
        go(watch)

    async def stop(self, blocking: bool) -> bool:
        self._stop.close()
        if blocking:
            return bool(self._fired.blocking_recv())
        return bool(await self._fired.recv())

    def stop_nowait(self) -> None:
        self._stop.close()


# ---------------------------------------------------------------- packets

def _packet_sockaddr(pc: PacketConn, addr: object, what: str) -> Any:
    """write_to's address -> what sendto takes on pc's socket, or None for
    a host name (resolved by _write_to_named). Takes what read_from gives
    and the forms dial takes. On a dual-stack socket an IPv4 address
    becomes its v4-mapped IPv6 form."""
    if pc.family == _socket.AF_UNIX:
        path = _unix_path(addr, what)
        if not path:
            raise ValueError(f"{what}: empty unixgram address")
        return path
    if type(addr) is tuple and len(addr) in (2, 4) and type(addr[0]) is str \
            and type(addr[1]) is int and 0 <= addr[1] <= 65535:
        host, port = addr[0], addr[1]         # read_from's form: no parsing
    else:
        host, port = _split_host_port(addr, what)
        addr = (host, port)
    fam = _ip_family(host) if host else 0
    if fam == 0:
        return None
    if fam == pc.family:
        return addr
    if fam == _socket.AF_INET and pc.dual:
        return ("::ffff:" + host, port)
    raise ValueError(f"{what}: {host!r} is an IPv{4 if fam == _socket.AF_INET else 6} address; "
                     f"this {pc.network} socket is IPv{4 if pc.family == _socket.AF_INET else 6}-only")


async def _write_to_named(pc: PacketConn, data: Any, addr: Any, blocking: bool) -> int:
    """write_to with a host name: resolve it off the M, then send to its
    first address the socket can reach."""
    what = f"write_to {pc.network} {addr}"
    host, port = _split_host_port(addr, what)
    if host == "":
        host = "localhost"
    if pc.family == _socket.AF_INET:
        fam = _socket.AF_INET
    else:
        fam = _socket.AF_UNSPEC if pc.dual else _socket.AF_INET6
    infos = await _lookup(host, port, fam, _socket.SOCK_DGRAM, None, None, blocking, what)
    for f, _t, _p, _c, sa in infos:
        if f == pc.family or (f == _socket.AF_INET and pc.dual):
            sa = _packet_sockaddr(pc, sa, what)
            return pc.blocking_write_to(data, sa) if blocking else await pc.write_to(data, sa)
    raise OSError(f"{what}: no address of {host!r} reachable from this socket")


def _write_to_named_op(pc: PacketConn, data: Any, addr: Any, blocking: bool) -> Any:
    if blocking:
        return _run_now(_write_to_named(pc, data, addr, True))
    return _write_to_named(pc, data, addr, False)


_set_packet_hooks(_packet_sockaddr, _write_to_named_op)
