# cython: language_level=3, freethreading_compatible=True
# gocore/_net.pyx - the compiled half of gocore.net: Conn, Listener and
# PacketConn over the scheduler's poller (_netpoll.pxi,
# csrc/gocore_netpoll.h), wait_readable/wait_writable for fds gocore does
# not own, the awaitables of their I/O and the blocking_* twins (Go's
# internal/poll). Every operation is an _IoOp; the async path
# (_IoOp.step_inner) and the blocking twins (run_blocking) share the check
# and the system call (_IoOp.try_once) and differ only in how they wait.
#
# Every operation tries its system call first and parks only on EAGAIN
# (except a read right after one that drained the socket: it parks at once
# unless an event came since, see _Fd.rdrained; that saves the recv that
# would say EAGAIN, about a third of an echo server's system calls):
#   lock the direction (read or write: a gocore Mutex per direction, taken
#   by CAS when free; Go's fdMutex rwlock/wlock) -> enter (a reference on
#   the _Fd) -> [check closing/deadline -> syscall -> EAGAIN: park on the
#   descriptor's slot] -> leave -> unlock.
#
# _Fd lifetime (Go's fdMutex reference count): one atomic word, `state`,
#   bit 0   closed: set once by close(), which also marks the poll
#           descriptor closing (waking both of its waiters at once: they
#           fail with ErrClosed) and disarms the deadline timers;
#   bits 1+ references, 2 per holder: the owner's (dropped by close()) and
#           one per operation inside (held across its syscalls and parks).
#   enter() adds a reference by CAS only while closed is clear, so no
#   operation can enter once close() began. The reference whose drop
#   leaves state == 1 (closed, none held) releases the fd: out of epoll,
#   the socket closed, the descriptor recycled. So the fd number is never
#   released while a call is inside a system call on it.
# Readers (writers) waiting for the direction's Mutex when close() comes
# get it in turn and fail at once (enter sees closed).
#
# Deadlines: absolute time.monotonic() seconds, stored in the descriptor
# (rd/wd, see gocore_netpoll.h) and enforced by a timer of the scheduler's
# heap per direction (_Deadline, created on first use). Moving a deadline
# re-arms the timer and bumps the descriptor's generation, so an earlier
# arming that fires late is ignored.

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
from libc.stdint cimport uint32_t, int32_t, int64_t, uintptr_t
from libc.string cimport memset
from libc.math cimport isnan

from gocore._includes.atomic cimport *
from gocore._includes.futex cimport gc_mutex, gc_mutex_lock, gc_mutex_unlock
from gocore._includes.clock cimport nanotime
from gocore._includes.timer cimport gc_timer, TK_PYOBJ
from gocore._includes.config cimport GOCORE_DEBUG, gc_dbg_add, gc_dbg_ctr, GC_DBG_TIMER_REFS
from gocore._includes.netpoll cimport gc_pollfd, pd_check, pd_consume_ready, pd_read_may_park
from gocore._sched cimport (G, getg, getg_or_none, on_async_g, park_sentinel, check_wake,
                            runtime_ensure_started, timer_lock, timer_add_locked,
                            timer_del_locked, timer_unlock, G_ASYNC,
                            np_waitrec, np_open, np_park_async, np_after_park, np_cancel,
                            np_block_thread, np_close, np_release, np_set_deadline,
                            np_wake_slot, np_deadline_fired, dbg_counters, in_bubble)
from gocore._sync cimport Mutex

import errno as _errno
import os as _os
import stat as _stat
import time as _time
import _socket

from gocore._includes.pyapi cimport (PySendResult, PYGEN_RETURN, PYGEN_ERROR, PYGEN_NEXT, PyIter_Send,
                                     sendfunc, PyAsyncMethods, PyTypeObject, _PyBytes_Resize)

cdef extern from *:
    """
    #include <sys/socket.h>
    #include <netinet/in.h>
    #include <netinet/tcp.h>
    #include <errno.h>
    static inline int gc_errno(void) { return errno; }
    static inline int gc_would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }
    static inline int gc_emfile(int e) { return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM; }
    static inline int gc_accept_retry(int e) { return e == ECONNABORTED || e == EINTR; }
    static inline int gc_connect_pending(int e) { return e == EINPROGRESS || e == EALREADY || e == EINTR; }
    static inline int gc_accept4(int fd) {
        return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    static inline int gc_so_error(int fd) {
        int err = 0; socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
        return err;
    }
    static inline int gc_connected(int fd) {
        struct sockaddr_storage ss; socklen_t len = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) return 0;
        return errno;
    }
    static inline void gc_nodelay(int fd) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    #define GC_MSG_NOSIGNAL MSG_NOSIGNAL
    #include <poll.h>
    #include <fcntl.h>
    #include <unistd.h>
    /* wait_readable/wait_writable: is fd ready for mode now? 1 yes (or
     * hung up / in error: the caller's own read or write will say), 0 no,
     * -1 with errno. */
    static inline int gc_poll1(int fd, int mode) {
        struct pollfd p;
        p.fd = fd;
        p.events = mode == 'r' ? POLLIN : POLLOUT;
        p.revents = 0;
        int r = poll(&p, 1, 0);
        if (r <= 0) return r;
        if (p.revents & POLLNVAL) { errno = EBADF; return -1; }
        return 1;
    }
    static inline int gc_dup_cloexec(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 0); }
    static inline void gc_close_fd(int fd) { close(fd); }
    """
    int gc_errno() nogil
    bint gc_would_block(int e) nogil
    bint gc_emfile(int e) nogil
    bint gc_accept_retry(int e) nogil
    bint gc_connect_pending(int e) nogil
    int gc_accept4(int fd) nogil
    int gc_so_error(int fd) nogil
    int gc_connected(int fd) nogil
    void gc_nodelay(int fd) nogil
    int GC_MSG_NOSIGNAL
    int gc_poll1(int fd, int mode) nogil
    int gc_dup_cloexec(int fd) nogil
    void gc_close_fd(int fd) nogil
    int EPERM
    ssize_t recv(int fd, void *buf, size_t n, int flags) nogil
    ssize_t send(int fd, const void *buf, size_t n, int flags) nogil
    int EINTR

cdef object PARK = park_sentinel()
if GOCORE_DEBUG:
    gc_dbg_ctr = dbg_counters()     # count the heap's _Deadline references in _sched's counters
cdef PyObject *PARK_PTR = <PyObject *>PARK

cdef int64_t MAX_NS = 9_000_000_000_000_000_000


class ErrClosed(OSError):
    """Use of a closed network connection (Go's net.ErrClosed)."""


class DeadlineExceeded(TimeoutError):
    """An I/O deadline passed (Go's os.ErrDeadlineExceeded)."""


cdef object _err_closed():
    return ErrClosed("use of closed network connection")


cdef object _err_deadline():
    return DeadlineExceeded("i/o timeout")


cdef object _os_error(int e):
    return OSError(e, _os.strerror(e))


def _no_await_error(what, alt):
    return RuntimeError(
        f"{what} would block a lightweight goroutine's worker thread: "
        f"use `{alt}` inside async goroutines")


cdef int64_t deadline_ns(object t, str what) except? -1:
    """A time.monotonic() deadline to nanotime() (0: none). Values at or
    before 0 become 1: a deadline in the past."""
    cdef double f
    if t is None:
        return 0
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"{what} needs a time.monotonic() deadline (int or float) or None, "
                        f"got {type(t).__name__}")
    f = t
    if isnan(f):
        raise ValueError(f"{what}: deadline is NaN")
    if f >= 9e9:
        return MAX_NS
    if f <= 0:
        return 1
    return max(<int64_t>(f * 1e9), 1)


# ---------------------------------------------------------------- deadline timers

@cython.final
cdef class _Deadline:
    """One direction's deadline timer, in the scheduler's heap while armed.
    The heap holds one reference to it while it is queued (taken by arm,
    dropped by whoever removes it: disarm or the firing M). Its pd pointer
    stays valid memory for ever (descriptors are type-stable); after the
    descriptor is recycled the generation no longer matches and the firing
    does nothing."""
    cdef gc_timer t
    cdef gc_pollfd *pd
    cdef int mode
    cdef uint32_t seq

    def _fire(self, seq=0):     # run_timers passes the timer seq (unused: the generation check guards staleness)
        np_deadline_fired(self.pd, self.mode, self.seq)


cdef int set_deadline(_Fd f, int mode, int64_t when) except -1:
    """Requires GIL. Move mode's deadline to when (0: none)."""
    if when != 0 and in_bubble():
        # its timer would share the heap with the bubble's fake clock
        raise RuntimeError("network deadlines and timeouts are not supported inside "
                           "gocore.testing.synctest() (they are on the real clock, the "
                           "bubble's timers on a fake one); see docs/synctest.md")
    cdef _Deadline d = f.rdl if mode == c'r' else f.wdl
    cdef _Deadline nd = None
    cdef int64_t now
    cdef uint32_t seq
    cdef bint drop = 0
    if d is None:
        nd = _Deadline.__new__(_Deadline)
        nd.pd = f.pd
        nd.mode = mode
        nd.t.kind = TK_PYOBJ
        nd.t.arg = <void *>nd
        nd.t.period = 0
        nd.t.heap_index = -1
    timer_lock()
    if d is None:
        # published under timerlock: two threads setting a first deadline
        # at once keep one timer (None's reference is immortal on 3.12+,
        # the only versions without a GIL)
        d = f.rdl if mode == c'r' else f.wdl
        if d is None:
            d = nd
            if mode == c'r':
                f.rdl = d
            else:
                f.wdl = d
    now = nanotime()
    drop = timer_del_locked(&d.t)
    seq = np_set_deadline(f.pd, mode, when, now)
    if when > now:
        d.seq = seq
        d.t.when = when
        if timer_add_locked(&d.t) < 0:
            timer_unlock()
            if drop:
                Py_DECREF(d)
                gc_dbg_add(GC_DBG_TIMER_REFS, -1)
            raise MemoryError()
        Py_INCREF(d)                 # the heap's reference
        gc_dbg_add(GC_DBG_TIMER_REFS, 1)
    timer_unlock()
    if drop:
        Py_DECREF(d)
        gc_dbg_add(GC_DBG_TIMER_REFS, -1)
    if when != 0 and when <= now:
        np_wake_slot(f.pd, mode)     # a passed deadline unblocks the waiter (Go's idiom)
    return 0


cdef void disarm(_Deadline d) noexcept:
    if d is None:
        return
    timer_lock()
    cdef bint drop = timer_del_locked(&d.t)
    timer_unlock()
    if drop:
        Py_DECREF(d)
        gc_dbg_add(GC_DBG_TIMER_REFS, -1)


# ---------------------------------------------------------------- _Fd

cdef class _Fd:
    """An fd registered with the poller: the base of Conn, Listener and
    PacketConn (owning a socket), and of a wait_readable/wait_writable
    (owning a duplicate of the caller's fd, sock None)."""
    cdef gc_pollfd *pd
    cdef readonly int fd_
    cdef object sock            # the _socket.socket owning fd (closed by release), or None: fd_ is ours to close
    cdef Mutex rmu, wmu         # serialise readers / writers (Go's fdMutex)
    cdef _Deadline rdl, wdl     # created on first use (Requires GIL)
    cdef int32_t state          # atomic: closed bit | 2 * references (module comment)
    cdef readonly int family
    # Under rmu (readers are serialised): the last read syscall returned
    # fewer bytes than asked (not 0), so it left the socket's receive queue
    # empty. With edge-triggered epoll any byte that arrives later produces
    # an event, so the next read may park at once without a recv that would
    # say EAGAIN - unless the reader slot holds READY (an event came). Every
    # read syscall is preceded by clearing READY (read_ready_consume), so a
    # READY found here is newer than the last recv. Cleared whenever a
    # reader comes back from a wait: then it must try the syscall.
    cdef bint rdrained

    cdef int init_fd(self, int fd, object sock) except -1:
        """Take fd (and sock, its owner, or None) and register it. On failure
        the caller still owns fd."""
        self.sock = sock
        self.fd_ = fd
        self.family = sock.family if sock is not None else -1
        self.rmu = Mutex()
        self.wmu = Mutex()
        self.pd = np_open(fd)
        self.state = 2               # the owner's reference
        return 0

    cdef inline bint closed(self) noexcept:
        return ld_acq_i32(&self.state) & 1

    cdef inline int enter(self) except -1:
        cdef int32_t old
        while True:
            old = ld_acq_i32(&self.state)
            if old & 1:
                raise _err_closed()
            if cas_i32(&self.state, old, old + 2):
                return 0

    cdef inline void leave(self) noexcept:
        if fetch_add_i32(&self.state, -2) == 3:
            self.release()

    cdef void release(self) noexcept:
        """The last reference: the fd leaves epoll and is closed."""
        np_release(self.pd)
        self.close_fd()

    cdef void close_fd(self) noexcept:
        if self.sock is None:
            gc_close_fd(self.fd_)
            return
        try:
            self.sock.close()
        except BaseException:
            pass

    cdef void do_close(self) noexcept:
        cdef int32_t old
        while True:
            old = ld_acq_i32(&self.state)
            if old & 1:
                return
            if cas_i32(&self.state, old, old | 1):
                break
        np_close(self.pd)
        disarm(self.rdl)
        disarm(self.wdl)
        self.on_close()
        self.leave()                 # the owner's reference

    cdef void on_close(self) noexcept:
        pass

    def close(self):
        """Close: wake every goroutine blocked on it with ErrClosed; the fd
        is released once no call is inside a system call on it. Closing
        twice is silent."""
        self.do_close()

    def fileno(self):
        """The socket's fd (ErrClosed after close)."""
        if self.closed():
            raise _err_closed()
        return self.fd_

    def set_deadline(self, t):
        """Read and write deadline: an absolute time.monotonic() value, or
        None for none. A passed deadline fails waiting and later calls
        with DeadlineExceeded until it is moved."""
        cdef int64_t ns = deadline_ns(t, "set_deadline(t)")
        if self.closed():
            raise _err_closed()
        set_deadline(self, c'r', ns)
        set_deadline(self, c'w', ns)

    def __enter__(self):
        return self

    def __exit__(self, t, v, tb):
        self.do_close()
        return False

    async def __aenter__(self):
        return self

    async def __aexit__(self, t, v, tb):
        self.do_close()
        return False

    def __dealloc__(self):
        if self.pd != NULL and not self.closed():
            # dropped without close(): no operation can be inside (each
            # holds a reference to us), so release the fd now (a socket
            # object closes its own fd when it goes)
            np_close(self.pd)
            np_release(self.pd)
            self.pd = NULL
            if self.sock is None:
                gc_close_fd(self.fd_)


cdef class _Endpoint(_Fd):
    """What Conn and PacketConn share: read and write deadlines, local_addr."""
    # the address, computed on first use and published by CAS (any thread
    # may ask first); it owns one reference once published, dropped at dealloc
    cdef PyObject *laddr_p

    def set_read_deadline(self, t):
        cdef int64_t ns = deadline_ns(t, "set_read_deadline(t)")
        if self.closed():
            raise _err_closed()
        set_deadline(self, c'r', ns)

    def set_write_deadline(self, t):
        cdef int64_t ns = deadline_ns(t, "set_write_deadline(t)")
        if self.closed():
            raise _err_closed()
        set_deadline(self, c'w', ns)

    @property
    def local_addr(self):
        """The local address: (host, port, ...) for IP networks, a path for unix."""
        return self._cached_addr(&self.laddr_p, 0)

    cdef object _cached_addr(self, PyObject **slot, bint peer):
        cdef PyObject *p = <PyObject *>ld_acq_ptr(<void **>slot)
        if p != NULL:
            return <object>p
        a = self._addr(peer)
        Py_INCREF(a)
        if not cas_ptr(<void **>slot, NULL, <void *>a):
            Py_DECREF(a)             # another thread published first
            return <object>ld_acq_ptr(<void **>slot)
        return a

    cdef object _addr(self, bint peer):
        self.enter()
        try:
            a = self.sock.getpeername() if peer else self.sock.getsockname()
        finally:
            self.leave()
        if isinstance(a, bytes):
            a = _os.fsdecode(a)
        return a

    def __dealloc__(self):
        cdef PyObject *p = self.laddr_p
        if p != NULL:
            self.laddr_p = NULL
            Py_DECREF(<object>p)


# ---------------------------------------------------------------- the operations

cdef enum:
    OP_READ = 0
    OP_READ_INTO = 1
    OP_WRITE = 2
    OP_ACCEPT = 3
    OP_CONNECT = 4
    OP_READ_FROM = 5
    OP_WRITE_TO = 6
    OP_WAIT = 7

cdef enum:
    S_NEW = 0
    S_LOCKING = 1     # awaiting the direction's Mutex (self.sub)
    S_PARKED = 2      # parked on the descriptor's slot
    S_SLEEPING = 3    # accept's back-off after EMFILE (self.sub is a sleep)
    S_DONE = 4

cdef enum:
    READBUF = 65536


@cython.no_gc
@cython.freelist(64)
cdef class _IoOp:
    """The awaitable behind `await conn.read()` and the other operations;
    also the waiting record (np_waitrec) of its G while it parks."""
    cdef _Fd f
    cdef int kind
    cdef int mode
    cdef int state
    cdef bint locked            # holds f's Mutex for mode
    cdef bint entered           # holds a reference on f
    cdef bint has_view
    cdef Py_ssize_t n           # read sizes; OP_WAIT: the caller's fd (for the dump)
    cdef Py_ssize_t done
    cdef object data            # write: the bytes; read_into: the target
    cdef object addr            # write_to: the sockaddr
    cdef object sub             # the awaitable we delegate to (Mutex.lock, sleep)
    cdef Py_buffer view
    cdef G gp
    cdef np_waitrec rec

    @property
    def fd(self):
        if self.kind == OP_WAIT:
            return self.n
        return self.f.fd_ if self.f is not None else -1

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        cdef PyObject *res = NULL
        if self.step(&res) == 1:
            Py_DECREF(<object>res)        # PARK (a borrowed copy below)
            return PARK
        r = <object>res
        Py_DECREF(r)
        raise StopIteration(r)

    def send(self, v):
        return self.__next__()

    def _cancel(self):
        """Teardown: the G is parked and will never resume."""
        if self.state == S_PARKED:
            self.state = S_DONE
            np_cancel(self.gp, self.f.pd, self.mode)
        self.abandon()

    def close(self):
        """The awaiting coroutine is closed while suspended on us."""
        self._cancel()

    def __dealloc__(self):
        if self.f is not None:
            self._cancel()

    cdef void abandon(self) noexcept:
        cdef object sub
        if self.sub is not None:
            sub = self.sub
            self.sub = None
            try:
                # a Mutex.lock op gives back a lock handed to it meanwhile
                closer = getattr(sub, "close", None) or getattr(sub, "_cancel", None)
                if closer is not None:
                    closer()
            except BaseException:
                pass
        self.state = S_DONE
        self.finish()

    cdef void finish(self) noexcept:
        """Give back what the operation holds: its reference, the lock; a
        wait_* its fd duplicate (out of epoll, closed)."""
        cdef Mutex mu
        if self.has_view:
            self.has_view = 0
            PyBuffer_Release(&self.view)
        if self.entered:
            self.entered = 0
            self.f.leave()
        if self.locked:
            self.locked = 0
            mu = self.f.rmu if self.mode == c'r' else self.f.wmu
            if not cas_u32(&mu.state, 1, 0):
                try:
                    mu.unlock()
                except BaseException:
                    pass
        if self.kind == OP_WAIT:
            self.f.do_close()        # idempotent: finish may run again (dealloc)

    cdef int step(self, PyObject **res) except -1:
        """Run the operation as far as it goes: 1 with res = PARK (the G
        parks or waits in a sub-awaitable), 0 with res = the result (a new
        reference). Raises on failure, having given everything back."""
        try:
            return self.step_inner(res)
        except BaseException:
            if self.state == S_PARKED:
                # np_after_park raised (teardown's GoroutineExit): out of the slot already
                pass
            self.state = S_DONE
            self.sub = None
            self.finish()
            raise

    cdef int step_inner(self, PyObject **res) except -1:
        cdef _Fd f = self.f
        cdef Mutex mu
        cdef PyObject *r = NULL
        cdef PySendResult sr
        cdef int c
        if self.state == S_PARKED:
            self.state = S_NEW
            np_after_park(self.gp, f.pd, self.mode)
            self.woke()
        elif self.state == S_LOCKING or self.state == S_SLEEPING:
            sr = PyIter_Send(self.sub, None, &r)
            if sr == PYGEN_NEXT:
                res[0] = r
                return 1
            if sr == PYGEN_ERROR:
                raise_current()
            Py_DECREF(<object>r)
            self.sub = None
            if self.state == S_LOCKING:
                self.locked = 1
            self.state = S_NEW
        elif self.state == S_DONE:
            raise RuntimeError("gocore: a network operation was awaited twice")
        elif self.gp is None:
            gp = getg_or_none()
            if gp is None or (<G>gp).kind != G_ASYNC:
                raise RuntimeError("await on a network operation outside a gocore goroutine; "
                                   "plain threads and sync goroutines use the blocking_* methods")
            self.gp = <G>gp
        if not self.locked:
            mu = f.rmu if self.mode == c'r' else f.wmu
            if cas_u32(&mu.state, 0, 1):
                self.locked = 1
            else:
                self.sub = mu.lock()
                self.state = S_LOCKING
                return self.step_inner(res)
        if not self.entered:
            f.enter()
            self.entered = 1
        while True:
            c = self.try_once(res)
            if c == 0:
                self.state = S_DONE
                self.finish()
                return 0
            if c == 2:                   # EMFILE: back off (accept)
                self.sub = _sleep((<Listener>f).next_backoff())
                self.state = S_SLEEPING
                self.finish()            # hold nothing while we sleep
                return self.step_inner(res)
            c = np_park_async(self.gp, f.pd, self.mode, &self.rec, self)
            if c != 0:
                self.woke()              # readiness (or close) came while parking
            if c == 0:
                self.state = S_PARKED
                Py_INCREF(PARK)
                res[0] = PARK_PTR
                return 1

    cdef inline void woke(self) noexcept:
        """Back from a wait, or readiness found while preparing one (both
        waiting styles): the next read must try its syscall (_Fd.rdrained)."""
        if self.mode == c'r':
            self.f.rdrained = 0

    cdef int try_once(self, PyObject **res) except -1:
        """What both waiting styles (step_inner, run_blocking) do before
        each system call: fail if the descriptor is closing (ErrClosed) or
        its deadline passed (DeadlineExceeded: even when the fd is ready),
        else attempt()."""
        cdef int c = pd_check(self.f.pd, self.mode)
        if c == 1:
            raise _err_closed()
        if c == 2:
            raise _err_deadline()
        return self.attempt(res)

    cdef int attempt(self, PyObject **res) except -1:
        """One system call: 0 done (res set), 1 EAGAIN (park), 2 EMFILE."""
        cdef _Fd f = self.f
        cdef ssize_t r
        cdef int e
        cdef char *p
        cdef object b
        cdef PyObject *bp
        cdef char buf[READBUF]
        if self.kind == OP_READ or self.kind == OP_READ_INTO:
            # READY is consumed before every read syscall (see _Fd.rdrained)
            if f.rdrained:
                if pd_read_may_park(f.pd):
                    return 1             # nothing arrived since the queue was drained: park
            else:
                pd_consume_ready(f.pd, c'r')
        while True:
            if self.kind == OP_READ:
                if self.n <= READBUF:
                    r = recv(f.fd_, buf, self.n, 0)
                    if r >= 0:
                        f.rdrained = 0 < r < self.n
                        b = PyBytes_FromStringAndSize(buf, r)
                        Py_INCREF(b)
                        res[0] = <PyObject *>b
                        return 0
                else:
                    b = PyBytes_FromStringAndSize(NULL, self.n)
                    r = recv(f.fd_, PyBytes_AS_STRING(b), self.n, 0)
                    if r >= 0:
                        f.rdrained = 0 < r < self.n
                        bp = <PyObject *>b
                        Py_INCREF(b)
                        b = None
                        _PyBytes_Resize(&bp, r)
                        res[0] = bp
                        return 0
            elif self.kind == OP_READ_INTO:
                if not self.has_view:
                    PyObject_GetBuffer(self.data, &self.view, PyBUF_WRITABLE)
                    self.has_view = 1
                r = recv(f.fd_, self.view.buf, self.view.len, 0)
                if r >= 0:
                    f.rdrained = 0 < r < self.view.len
                    b = r
                    Py_INCREF(b)
                    res[0] = <PyObject *>b
                    return 0
            elif self.kind == OP_WRITE:
                if not self.has_view:
                    PyObject_GetBuffer(self.data, &self.view, PyBUF_SIMPLE)
                    self.has_view = 1
                    self.n = self.view.len
                p = <char *>self.view.buf
                while self.done < self.n:
                    r = send(f.fd_, p + self.done, self.n - self.done, GC_MSG_NOSIGNAL)
                    if r < 0:
                        break
                    self.done += r
                if self.done >= self.n:
                    b = self.n
                    Py_INCREF(b)
                    res[0] = <PyObject *>b
                    return 0
            elif self.kind == OP_ACCEPT:
                r = gc_accept4(f.fd_)
                if r >= 0:
                    b = (<Listener>f).make_conn(<int>r)
                    Py_INCREF(b)
                    res[0] = <PyObject *>b
                    return 0
                e = gc_errno()
                if gc_emfile(e):
                    return 2
                if gc_accept_retry(e):
                    continue
                if gc_would_block(e):
                    return 1
                raise _os_error(e)
            elif self.kind == OP_READ_FROM:
                try:
                    b = f.sock.recvfrom(self.n)
                except BlockingIOError:
                    return 1
                b = (b[0], (<PacketConn>f).from_addr(b[1]))
                Py_INCREF(b)
                res[0] = <PyObject *>b
                return 0
            elif self.kind == OP_WRITE_TO:
                try:
                    b = f.sock.sendto(self.data, self.addr)
                except BlockingIOError:
                    return 1
                Py_INCREF(b)
                res[0] = <PyObject *>b
                return 0
            elif self.kind == OP_WAIT:
                r = gc_poll1(f.fd_, self.mode)
                if r == 0:
                    return 1
                if r > 0:
                    res[0] = <PyObject *>None
                    Py_INCREF(None)
                    return 0
            else:   # OP_CONNECT: wait until the socket is writable, then ask it
                if self.done == 0:
                    self.done = 1
                    return 1             # connect() said EINPROGRESS: wait first
                e = gc_so_error(f.fd_)
                if e != 0 and not gc_connect_pending(e):
                    raise _os_error(e)
                if e == 0 and gc_connected(f.fd_) == 0:
                    res[0] = <PyObject *>None
                    Py_INCREF(None)
                    return 0
                return 1
            e = gc_errno()
            if e == EINTR:
                continue
            if gc_would_block(e):
                return 1
            raise _os_error(e)


cdef extern from *:
    """
    static inline int gc_raise_current(void) { return -1; }
    """
    int raise_current "gc_raise_current" () except -1


cdef int ioop_am_send(PyObject *self, PyObject *arg, PyObject **presult) except -1:
    """am_send (3.10+): finish without a StopIteration."""
    if (<_IoOp>self).step(presult) == 1:
        return 1        # PYGEN_NEXT
    return 0            # PYGEN_RETURN


(<PyTypeObject *>_IoOp).tp_as_async.am_send = <sendfunc>ioop_am_send


cdef inline _IoOp new_op(_Fd f, int kind, int mode):
    cdef _IoOp o = _IoOp.__new__(_IoOp)
    o.f = f
    o.kind = kind
    o.mode = mode
    return o


from gocore._time import sleep as _sleep


cdef int blocking_acquire(_IoOp o) except -1:
    """The blocking twins: take the direction's lock (blocking the thread)
    and a reference on the fd (step_inner does this for the async path)."""
    cdef Mutex mu = o.f.rmu if o.mode == c'r' else o.f.wmu
    if not cas_u32(&mu.state, 0, 1):
        mu.blocking_lock()
    o.locked = 1
    o.f.enter()
    o.entered = 1
    return 0


cdef object run_blocking(_IoOp o, str what, str alt):
    """The blocking_* twins: run o (a fresh operation) with the thread
    parked on the descriptor (gopark_thread: a sync goroutine's P is handed
    off at once). Inside a lightweight goroutine: RuntimeError."""
    cdef G gp
    cdef PyObject *res = NULL
    cdef int c
    if on_async_g():
        raise _no_await_error(what, alt)
    runtime_ensure_started()
    gp = getg()
    o.gp = gp
    try:
        blocking_acquire(o)
        while True:
            c = o.try_once(&res)
            if c == 0:
                r = <object>res
                Py_DECREF(r)
                return r
            if c == 2:
                o.finish()
                _time.sleep((<Listener>o.f).next_backoff())
                blocking_acquire(o)
                continue
            np_block_thread(gp, o.f.pd, o.mode, o)
            o.woke()
    finally:
        o.state = S_DONE
        o.finish()


# ---------------------------------------------------------------- Conn

cdef int check_n(Py_ssize_t n, str what) except -1:
    if n < 0:
        raise ValueError(f"{what}: n must be >= 0, got {n}")
    return 0


cdef int check_data(object data, str what) except -1:
    """Bytes-like data to send: TypeError now for a str or a non-buffer."""
    if isinstance(data, str):
        raise TypeError(f"{what} needs bytes-like data, not str (encode it first)")
    if not isinstance(data, bytes):
        memoryview(data)
    return 0


cdef int check_buffer(object buffer, str what) except -1:
    """A writable buffer to receive into: TypeError now otherwise."""
    if isinstance(buffer, (bytes, str)):
        raise TypeError(f"{what} needs a writable buffer (bytearray, memoryview), "
                        f"got {type(buffer).__name__}")
    memoryview(buffer).cast("B")
    return 0


cdef class Conn(_Endpoint):
    """A stream connection (Go's net.Conn): `await read(n)`, `read_into`,
    `write`, `close`, `close_write`, deadlines, addresses; blocking_* twins
    for plain threads and sync goroutines. A reader and a writer may run in
    parallel; concurrent reads (writes) are serialised."""
    cdef PyObject *raddr_p      # as _Endpoint.laddr_p
    cdef readonly str network

    def __init__(self):
        raise TypeError("net.Conn objects come from net.dial() and Listener.accept()")

    def read(self, Py_ssize_t n=65536):
        """`await conn.read(n)`: 1..n bytes, b"" at EOF."""
        check_n(n, "read(n)")
        cdef _IoOp o = new_op(self, OP_READ, c'r')
        o.n = n
        return o

    def read_into(self, buffer):
        """`await conn.read_into(buffer)`: bytes received into a writable
        buffer (0 at EOF)."""
        check_buffer(buffer, "read_into()")
        cdef _IoOp o = new_op(self, OP_READ_INTO, c'r')
        o.data = buffer
        return o

    def write(self, data):
        """`await conn.write(data)`: write every byte; returns len(data)."""
        check_data(data, "write()")
        cdef _IoOp o = new_op(self, OP_WRITE, c'w')
        o.data = data
        return o

    def blocking_read(self, Py_ssize_t n=65536):
        return run_blocking(self.read(n), "blocking_read()", "await conn.read(n)")

    def blocking_read_into(self, buffer):
        return run_blocking(self.read_into(buffer), "blocking_read_into()",
                            "await conn.read_into(buffer)")

    def blocking_write(self, data):
        return run_blocking(self.write(data), "blocking_write()", "await conn.write(data)")

    def _connect_wait(self):
        """`await`: the socket's non-blocking connect() said EINPROGRESS;
        complete it (the write deadline bounds it)."""
        return new_op(self, OP_CONNECT, c'w')

    def _blocking_connect_wait(self):
        return run_blocking(self._connect_wait(), "blocking_dial()", "await net.dial(...)")

    def close_write(self):
        """Shut down the writing side (the peer reads EOF); reads go on."""
        self.enter()
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        finally:
            self.leave()

    @property
    def remote_addr(self):
        return self._cached_addr(&self.raddr_p, 1)

    def __dealloc__(self):
        cdef PyObject *p = self.raddr_p
        if p != NULL:
            self.raddr_p = NULL
            Py_DECREF(<object>p)

    def __repr__(self):
        state = "closed" if self.closed() else f"fd={self.fd_}"
        return f"<gocore.net.Conn {self.network} {state}>"


cdef Conn new_conn(object sock, str network, object raddr):
    cdef Conn c = Conn.__new__(Conn)
    c.network = network
    c.init_fd(sock.fileno(), sock)
    if raddr is not None:
        Py_INCREF(raddr)
        c.raddr_p = <PyObject *>raddr
    return c


def _conn_from_socket(sock, network, raddr=None):
    """net.py: wrap a non-blocking connected (or connecting) _socket.socket."""
    return new_conn(sock, network, raddr)


# ---------------------------------------------------------------- Listener

cdef class Listener(_Fd):
    """A listening stream socket (Go's net.Listener): `await accept()`,
    `blocking_accept()`, `close()`, `addr`, `fileno()`, `set_deadline(t)`.
    Running out of file descriptors (EMFILE/ENFILE) never spins or drops
    the listener: accept backs off 5 ms, doubling to 1 s (Go's accept
    loop), while existing connections keep being served."""
    cdef readonly object addr
    cdef readonly str network
    cdef object unlink_path
    cdef double backoff
    cdef public int64_t emfile_count

    def __init__(self):
        raise TypeError("net.Listener objects come from net.listen()")

    cdef Conn make_conn(self, int fd):
        cdef object s
        self.backoff = 0
        s = _socket.socket(self.family, _socket.SOCK_STREAM, 0, fd)
        if self.family != _socket.AF_UNIX:
            gc_nodelay(fd)
        return new_conn(s, self.network, None)

    cdef double next_backoff(self):
        self.emfile_count += 1
        self.backoff = 0.005 if self.backoff == 0 else min(self.backoff * 2, 1.0)
        return self.backoff

    def accept(self):
        """`await ln.accept()`: the next connection, a Conn."""
        return new_op(self, OP_ACCEPT, c'r')

    def blocking_accept(self):
        return run_blocking(self.accept(), "blocking_accept()", "await ln.accept()")

    cdef void on_close(self) noexcept:
        if self.unlink_path is not None:
            try:
                _os.unlink(self.unlink_path)
            except OSError:
                pass

    def __repr__(self):
        state = "closed" if self.closed() else f"fd={self.fd_}"
        return f"<gocore.net.Listener {self.network} {self.addr!r} {state}>"


def _listener_from_socket(sock, network, unlink_path=None):
    """net.py: wrap a non-blocking listening _socket.socket."""
    cdef Listener ln = Listener.__new__(Listener)
    ln.network = network
    ln.init_fd(sock.fileno(), sock)
    a = sock.getsockname()
    if isinstance(a, bytes):
        a = _os.fsdecode(a)
    ln.addr = a
    ln.unlink_path = unlink_path
    return ln


# ---------------------------------------------------------------- PacketConn

# net.py's address handling for write_to (it owns address parsing and the
# resolver): set once, when gocore.net is imported - before any PacketConn
# exists, since they come from net.listen_packet - and only read after.
cdef object _sockaddr_hook = None       # (pc, addr, what) -> sockaddr, or None for a host name
cdef object _named_write_hook = None    # (pc, data, addr, blocking) -> awaitable / result


def _set_packet_hooks(sockaddr, named_write):
    global _sockaddr_hook, _named_write_hook
    _sockaddr_hook = sockaddr
    _named_write_hook = named_write


cdef class PacketConn(_Endpoint):
    """A datagram socket (Go's net.PacketConn) for "udp", "udp4", "udp6"
    and "unixgram": `await read_from(n)` -> (data, addr), `await
    write_to(data, addr)`, deadlines, `close`, `local_addr`; blocking_*
    twins. One datagram per call; a datagram longer than n is truncated
    (the rest is dropped, as Go's). read_from's address is accepted by
    write_to as is."""
    cdef readonly str network
    cdef readonly bint dual     # an IPv6 socket that takes IPv4 too: IPv4 peers are shown unmapped

    def __init__(self):
        raise TypeError("net.PacketConn objects come from net.listen_packet()")

    def read_from(self, Py_ssize_t n=65536):
        """`await pc.read_from(n)`: (data, addr) for the next datagram
        (data may be b"": an empty datagram, not an end of stream)."""
        check_n(n, "read_from(n)")
        cdef _IoOp o = new_op(self, OP_READ_FROM, c'r')
        o.n = n
        return o

    def write_to(self, data, addr):
        """`await pc.write_to(data, addr)`: send one datagram; returns
        len(data). addr: what read_from gave, or the forms dial takes (a
        host name is resolved off the M first)."""
        return self.write_to_op(data, addr, False)

    def blocking_read_from(self, Py_ssize_t n=65536):
        return run_blocking(self.read_from(n), "blocking_read_from()", "await pc.read_from(n)")

    def blocking_write_to(self, data, addr):
        if on_async_g():
            raise _no_await_error("blocking_write_to()", "await pc.write_to(data, addr)")
        r = self.write_to_op(data, addr, True)
        if isinstance(r, _IoOp):
            return run_blocking(r, "blocking_write_to()", "await pc.write_to(data, addr)")
        return r                     # a host name: resolved and sent already

    cdef object write_to_op(self, object data, object addr, bint blocking):
        """write_to's operation; for a host name, net.py's resolving path
        instead (an awaitable, or when blocking its result)."""
        check_data(data, "write_to()")
        sa = _sockaddr_hook(self, addr, "write_to()")
        if sa is None:
            return _named_write_hook(self, data, addr, blocking)
        cdef _IoOp o = new_op(self, OP_WRITE_TO, c'w')
        o.data = data
        o.addr = sa
        return o

    cdef object from_addr(self, object a):
        """recvfrom's address as read_from gives it: a str path for unix
        sockets; an IPv4 peer of a dual-stack socket as (host, port)."""
        if isinstance(a, bytes):
            return _os.fsdecode(a)
        if self.dual and type(a) is tuple:
            h = a[0]
            if h.startswith("::ffff:") and "." in h:
                return (h[7:], a[1])
        return a

    def __repr__(self):
        state = "closed" if self.closed() else f"fd={self.fd_}"
        return f"<gocore.net.PacketConn {self.network} {state}>"


def _packet_from_socket(sock, network, dual):
    """net.py: wrap a non-blocking bound datagram _socket.socket."""
    cdef PacketConn pc = PacketConn.__new__(PacketConn)
    pc.network = network
    pc.dual = dual
    pc.init_fd(sock.fileno(), sock)
    return pc


# ---------------------------------------------------------------- wait_readable / wait_writable
#
# Any pollable fd, owned by someone else (a pipe, a subprocess's stdout, a
# third party's socket). Each wait registers its own duplicate of the fd
# (F_DUPFD_CLOEXEC) for that one wait and closes it when the wait ends,
# however it ends. Why a duplicate, and why per wait: epoll keys a
# registration on the fd number and the open file; an fd that gocore does
# not own may be closed by its owner at any time, and its number reused at
# once (by a socket gocore then registers itself). Left registered, the
# owner's fd would keep an entry gocore cannot safely remove (EPOLL_CTL_DEL
# by number would hit the new file), and a wait on the number itself
# would outlive the file. The duplicate is a number only this wait knows,
# so registering, deregistering and closing it never touches anything
# else, and two waits on one fd (or a wait on a Conn's fd) never collide.
# The price: if the owner closes its fd while a goroutine waits, the wait
# holds the file open through its duplicate and ends only on readiness or
# its deadline (Go makes the close go through the poller instead; here the
# owner's close bypasses gocore). Cost: dup, epoll_ctl ADD and DEL, close
# and a poll() per wait - a few microseconds.


cdef int fd_of(object f, str what) except -1:
    cdef object fd
    if isinstance(f, int) and not isinstance(f, bool):
        fd = f
    else:
        fileno = getattr(f, "fileno", None)
        if fileno is None or isinstance(f, bool):
            raise TypeError(f"{what} needs an int fd or an object with fileno(), "
                            f"got {type(f).__name__}")
        fd = fileno()
        if isinstance(fd, bool) or not isinstance(fd, int):
            raise TypeError(f"{what}: fileno() returned {type(fd).__name__}, not an int")
    if fd < 0 or fd > 0x7fffffff:
        raise ValueError(f"{what}: invalid fd {fd}")
    return fd


cdef _IoOp new_wait(object f, object deadline, int mode, str what):
    cdef int fd = fd_of(f, what)
    cdef int64_t ns = deadline_ns(deadline, what)
    cdef int d
    cdef _Fd p
    st = _os.fstat(fd)               # OSError (EBADF) now for an fd that is not open
    if _stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode):
        raise ValueError(
            f"{what}: fd {fd} is a {'directory' if _stat.S_ISDIR(st.st_mode) else 'regular file'}, "
            f"which cannot be polled (it is always ready; reads may still block on the disk): "
            f"read it in a sync goroutine")
    d = gc_dup_cloexec(fd)
    if d < 0:
        raise _os_error(gc_errno())
    p = _Fd.__new__(_Fd)
    try:
        p.init_fd(d, None)
    except OSError as e:
        gc_close_fd(d)
        if e.errno == EPERM:
            raise ValueError(f"{what}: fd {fd} does not support polling (epoll refuses it); "
                             f"use it in a sync goroutine") from None
        raise
    except BaseException:
        gc_close_fd(d)
        raise
    if ns != 0:
        set_deadline(p, mode, ns)
    cdef _IoOp o = new_op(p, OP_WAIT, mode)
    o.n = fd
    return o


def wait_readable(f, deadline=None):
    """`await net.wait_readable(f, deadline=None)`: park until f (an int fd
    or an object with fileno(): a pipe, a subprocess's stdout, a third
    party's socket) is readable - or at its end or in error, which the
    caller's read then reports. deadline: an absolute time.monotonic()
    value (DeadlineExceeded when it passes; a passed one fails at once).
    A regular file or a directory raises ValueError at the call, an fd
    that is not open OSError. The fd stays the caller's: see the comment
    above about closing it while a goroutine waits."""
    return new_wait(f, deadline, c'r', "wait_readable()")


def wait_writable(f, deadline=None):
    """`await net.wait_writable(f, deadline=None)`: as wait_readable, for
    writing (a pipe with room, a socket whose send buffer drained)."""
    return new_wait(f, deadline, c'w', "wait_writable()")
