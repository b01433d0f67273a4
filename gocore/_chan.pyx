# cython: language_level=3, freethreading_compatible=True
# gocore/_chan.pyx - channels and select (Go's chan.go and select.go).
# Invariants and lock order: _chan.pxd.
#
# One code path per operation, for every kind of caller: chan_try tries
# to complete at once (hand-off to a parked partner, the buffer, or the
# closed state), else chan_wait links a sudog and parks as the caller's
# kind does (park(): lightweight goroutines yield PARK to the M loop,
# which releases the channel lock after the G has stopped; threads and sync
# goroutines sleep on their G's note); chan_woken then takes the result or
# asks for a retry. The awaitable's step() and chan_blocking are the two
# short shells over that path ("waiter kinds" below). The hand-off itself
# (try_send_locked / try_recv_locked) is written once for single
# operations and select, parameterised by the unlock, as Go's send/recv.
# A waker moves the value straight into the parked partner's sudog (Go's
# sendDirect/recvDirect) and readies it into its own P's runnext, so a
# ping-pong pair stays on one P.
#
# select's three passes (Go's selectgo):
#   1. lock every involved channel in address order (each once) and poll the
#      cases in a random order; the first ready case wins. With `default`
#      and nothing ready, unlock and return default's index.
#   2. enqueue a sudog on every case's channel, all for the same G, and park;
#      the unlock of all channels happens after the G has stopped.
#   3. a waker claims the G with cas(park_claim, 0, 1), marks its sudog
#      `fired` and readies the G; wakers that lose the CAS unlink the sudog
#      they met and move on. After waking, the G relocks the channels and
#      unlinks its remaining sudogs.
# Rejected: a lock per select (it would serialise all selects in the
# program) and re-polling after every wake-up (unfair and lossy).

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XDECREF, Py_REFCNT
from cpython.list cimport PyList_GET_ITEM, PyList_SET_ITEM
from libc.stdint cimport uint32_t, int32_t, int64_t
from libc.stdlib cimport malloc, free

from gocore._includes.atomic cimport ld_acq_u32
from gocore._includes.futex cimport gc_mutex, gc_mutex_trylock, gc_mutex_lock_slow, gc_mutex_unlock, gc_mutex_held
from gocore._includes.waitq cimport (gc_waitlink, gc_waitq, gc_waitq_push, gc_waitq_unlink, gc_waitq_count,
                                     gc_waitq_dequeue)
from gocore._includes.pytype cimport (gc_internal_type, gc_warn_unawaited, gc_awaited_again,
                                      gc_parked_elsewhere, gc_mark_awaited)
from gocore._includes.config cimport (GOCORE_DEBUG, gc_assert_msg, gc_dbg_add, gc_dbg_ctr,
                                      GC_DBG_CHAN_WAITERS)
from gocore._sched cimport (G, getg, getg_or_none, on_async_g, gopark_async,
                            gopark_thread, goready, check_wake, deadlock_suspect, park_sentinel,
                            check_goexit, goroutine_closed_outside,
                            G_ASYNC, W_CHAN_RECV, W_CHAN_SEND, W_SELECT,
                            W_SELECT_NO_CASES, W_CHAN_NIL, W_CHAN_NIL_SEND, WAKE_NORMAL, dbg_counters,
                            aio_waiter_g, aio_park, aio_withdraw, aio_unpark)

from types import GenericAlias
from gocore._sched import DeadlockError

cdef extern from "Python.h":
    ctypedef enum PySendResult:
        PYGEN_RETURN
        PYGEN_ERROR
        PYGEN_NEXT
    ctypedef PySendResult (*sendfunc)(PyObject *, PyObject *, PyObject **)
    ctypedef PyObject *(*unaryfunc)(PyObject *)
    ctypedef struct PyAsyncMethods:
        unaryfunc am_await
        sendfunc am_send
    ctypedef void (*destructor)(PyObject *)
    ctypedef struct PyTypeObject:
        PyAsyncMethods *tp_as_async
        destructor tp_dealloc
    void PyErr_SetObject(object t, object v)
    void PyErr_SetNone(object t)

cdef extern from *:
    """
    static int gc_raise_current(void) { return -1; }   /* the error is already set */
    """
    int raise_current "gc_raise_current" () except -1

cdef object PARK = park_sentinel()
cdef PyObject *PARK_PTR = <PyObject *>PARK

if GOCORE_DEBUG:
    gc_dbg_ctr = dbg_counters()     # count linked waiters in _sched's counters


class ChanClosedError(Exception):
    """Send on a closed channel, or close of a closed or nil channel (a Go panic)."""


# ---------------------------------------------------------------- locks and queues

cdef inline void chan_lock(Chan c) noexcept:
    """Requires GIL. Waits for the lock with the GIL released."""
    if not gc_mutex_trylock(&c.lock):
        with nogil:
            gc_mutex_lock_slow(&c.lock)

cdef inline void chan_unlock(Chan c) noexcept:
    gc_mutex_unlock(&c.lock)

ctypedef void (*unlock_fn)(void *) noexcept nogil

cdef void unlock_one(void *lock) noexcept nogil:
    """gopark's unlock function for a single channel: arg is its lock."""
    gc_mutex_unlock(<gc_mutex *>lock)

cdef struct _SelectLocks:
    gc_mutex **locks        # a select's distinct channel locks, by address
    int32_t n

cdef inline void unlock_locks(gc_mutex **locks, int32_t n) noexcept nogil:
    cdef int32_t i
    for i in range(n - 1, -1, -1):
        gc_mutex_unlock(locks[i])

cdef inline void release(Chan c, _SelectLocks *sel) noexcept nogil:
    """The unlock of the operations below (Go's unlockf): c's own lock for
    a single operation (sel NULL), or every lock of a select. (A lock set
    rather than a function pointer: the single operation's unlock stays
    inline on the hot path.)"""
    if sel == NULL:
        gc_mutex_unlock(&c.lock)
    else:
        unlock_locks(sel.locks, sel.n)

# The wait queues are csrc/gocore_waitq.h's (shared with _sync), whose
# comment states the protocol; these name a channel's queue by direction.

cdef inline gc_waitq *chan_queue(Chan c, bint send) noexcept nogil:
    return &c.sendq if send else &c.recvq

cdef inline void waiter_link(Chan c, bint send, sudog *sg) noexcept nogil:
    """Caller holds c.lock. Queue sg at the tail of c's senders or receivers."""
    gc_waitq_push(chan_queue(c, send), &sg.link, 0, &c.lock, GC_DBG_CHAN_WAITERS)

cdef inline void waiter_unlink(Chan c, bint send, sudog *sg) noexcept nogil:
    """Caller holds c.lock. Unlink sg if it is still queued (its owner,
    giving up its wait; a zombie's waker unlinked it already)."""
    if sg.link.linked:
        gc_waitq_unlink(chan_queue(c, send), &sg.link, &c.lock, GC_DBG_CHAN_WAITERS)

cdef inline sudog *waiter_take(Chan c, bint send) noexcept nogil:
    """Caller holds c.lock. The first waiter (a sender if send, else a
    receiver) whose G this caller wins, unlinked and marked fired; NULL if
    none. Waiters of Gs won elsewhere are unlinked and skipped."""
    cdef sudog *sg = <sudog *>gc_waitq_dequeue(chan_queue(c, send), &c.lock, GC_DBG_CHAN_WAITERS)
    if sg != NULL:
        sg.fired = 1
    return sg

cdef inline void sudog_init(sudog *sg, G gp, Chan c, int32_t case_index) noexcept:
    sg.link.g = <PyObject *>gp
    sg.link.claim = &gp.park_claim
    sg.link.next = sg.link.prev = NULL
    sg.link.linked = 0
    sg.elem = NULL
    sg.c = <void *>c
    sg.success = 0
    sg.fired = 0
    sg.case_index = case_index


# ---------------------------------------------------------------- send and receive
# Go's send(c, sg, ep, unlockf) / recv: written once, for a single
# operation (sel NULL: c.lock) and for select (sel: the lock set of every
# channel of the select, all held). The caller holds c.lock and whatever
# release(c, sel) releases. Results: 1 done, everything released (before
# goready, so a woken partner never waits on our locks); 0 would block,
# all still HELD (the caller enqueues and parks, or moves on to select's
# next case); -1 error raised, all released.

cdef int send_closed() except -1:
    raise ChanClosedError("send on closed channel")

cdef inline int try_send_locked(Chan c, object v, _SelectLocks *sel) except -1:
    """Complete a send at once if possible: hand v to a parked receiver,
    or put it in the buffer."""
    cdef sudog *sg
    cdef PyObject *old
    if GOCORE_DEBUG:
        gc_assert_msg(gc_mutex_held(&c.lock) and 0 <= c.qcount <= c.dataqsiz,
                      b"try_send_locked: channel lock not held, or qcount outside [0, cap]")
    if c.closed:
        release(c, sel)
        return send_closed()
    sg = waiter_take(c, False)
    if sg != NULL:
        gc_assert_msg(c.qcount == 0,
                      b"try_send_locked: a receiver waited beside a non-empty buffer")
        Py_INCREF(v)
        sg.elem = <PyObject *>v
        sg.success = 1
        release(c, sel)
        goready(<G>sg.link.g)
        return 1
    if c.qcount < c.dataqsiz:
        Py_INCREF(v)
        old = PyList_GET_ITEM(c.buf, c.sendx)     # None: stays referenced by us below
        PyList_SET_ITEM(c.buf, c.sendx, v)        # steals our new reference to v
        c.sendx += 1
        if c.sendx == c.dataqsiz:
            c.sendx = 0
        c.qcount += 1
        if c.peak >= 0 and c.qcount > c.peak:
            c.peak = c.qcount             # track_peak() is on
        release(c, sel)
        Py_DECREF(<object>old)
        return 1
    return 0


cdef inline int try_recv_locked(Chan c, PyObject **out, _SelectLocks *sel) except -1:
    """Complete a receive at once if possible: *out gets an owned
    reference, or NULL for a closed, drained channel."""
    cdef sudog *sg
    cdef PyObject *v
    if GOCORE_DEBUG:
        gc_assert_msg(gc_mutex_held(&c.lock) and 0 <= c.qcount <= c.dataqsiz,
                      b"try_recv_locked: channel lock not held, or qcount outside [0, cap]")
    sg = waiter_take(c, True)
    if sg != NULL:
        gc_assert_msg(c.qcount == c.dataqsiz,
                      b"try_recv_locked: a sender waited beside a buffer that is not full")
        gc_assert_msg(sg.elem != NULL,
                      b"try_recv_locked: a waiting sender holds no value")
        if c.dataqsiz == 0:
            out[0] = sg.elem                        # move the sender's reference
        else:
            # full buffer: take its head, put the sender's value at the tail
            out[0] = PyList_GET_ITEM(c.buf, c.recvx)
            PyList_SET_ITEM(c.buf, c.recvx, <object>sg.elem)
            c.recvx += 1
            if c.recvx == c.dataqsiz:
                c.recvx = 0
            c.sendx = c.recvx
        sg.elem = NULL
        sg.success = 1
        release(c, sel)
        goready(<G>sg.link.g)
        return 1
    if c.qcount > 0:
        v = PyList_GET_ITEM(c.buf, c.recvx)
        Py_INCREF(None)
        PyList_SET_ITEM(c.buf, c.recvx, None)
        c.recvx += 1
        if c.recvx == c.dataqsiz:
            c.recvx = 0
        c.qcount -= 1
        release(c, sel)
        out[0] = v
        return 1
    if c.closed:
        release(c, sel)
        out[0] = NULL
        return 1
    return 0


cdef inline bint may_proceed(Chan c, bint send) noexcept nogil:
    """Caller holds c.lock. 0 only if the operation certainly cannot
    complete now (open, no partner queued, buffer full / empty): select's
    cheap test before the call to try_send_locked / try_recv_locked. (A
    queued partner may be a zombie: those calls then return 0.)"""
    if c.closed:
        return 1
    if send:
        return c.recvq.first != NULL or c.qcount < c.dataqsiz
    return c.sendq.first != NULL or c.qcount > 0


cdef inline object wrap_recv(PyObject *v, int mode):
    """Build recv()/recv_ok() results from an owned reference (or NULL for
    closed): takes the reference."""
    cdef object o
    if v == NULL:
        if mode == MODE_RECV_OK:
            return (None, False)
        return None
    o = <object>v
    Py_DECREF(o)
    if mode == MODE_RECV_OK:
        return (o, True)
    return o


cdef enum:
    MODE_SEND = 0
    MODE_RECV = 1
    MODE_RECV_OK = 2
    MODE_RANGE = 3      # async for: recv_ok that ends the loop when closed
    MODE_SELECT = 4     # (for park_refused's messages only)


# ---------------------------------------------------------------- waiter kinds
# How the caller of an operation parks and is woken. Every channel
# operation is one path (chan_try, chan_wait, chan_woken;
# select: _Select.pass1 / pass3) driven by a short shell per kind of
# caller: the awaitables' step() for HOW_ASYNC, chan_blocking and
# blocking_select for HOW_THREAD. The kind matters only here: who may wait
# that way (parker), the park itself (park), and the error for a caller
# that may not (park_refused). HOW_AIO (an asyncio task parking on a
# future, gocore/_aiowait.pxi) is the third kind: a value, a branch in
# each of the three, and its shell (_ChanOp.aio_wait, _Select.aio_wait);
# the operations themselves do not change.

cdef enum:
    HOW_ASYNC = 0       # a lightweight goroutine: its awaitable yields PARK to the M
                        # loop, which stops the G and then calls unlockf; after
                        # goready an M resumes the coroutine, which steps the awaitable again
    HOW_THREAD = 1      # a plain thread, sync goroutine, or main outside run():
                        # gopark_thread calls unlockf and sleeps on g.note until goready
    HOW_AIO = 2         # an asyncio task (any loop, any thread) on a G_AIO pseudo-G
                        # owned by its awaitable: aio_park marks it waiting and calls
                        # unlockf; the awaitable yields the G's future to the task;
                        # goready resolves that future and the task steps the awaitable again

cdef inline G parker(int32_t how, G aiog):
    """Requires GIL. The G that would park in this way, or None if the
    caller may not wait so (an awaitable outside a lightweight goroutine:
    its shell tries HOW_AIO; a blocking_* call inside one, which would
    block its M's thread). HOW_AIO: aiog, the operation's pseudo-G, made
    by its shell with no lock held (aio_waiter_g allocates)."""
    cdef G gp
    if how == HOW_AIO:
        return aiog
    if how == HOW_ASYNC:
        gp = getg_or_none()
        if gp is None or gp.kind != G_ASYNC:
            return None
        return gp
    if on_async_g():
        return None
    return getg()

cdef inline int park(G gp, int32_t how, unlock_fn unlockf, void *arg,
                     int32_t reason, object op) except -1:
    """Caller holds what unlockf(arg) releases (nothing if unlockf is
    NULL); gp's waiters are linked with gp.park_claim 0. HOW_ASYNC:
    prepares the park and returns 1: the caller yields PARK at once, the
    lock is released after the G has stopped, and the G's next step of
    the awaitable is the wake-up. HOW_THREAD: releases, sleeps until
    goready and returns 0 (woken). op: the operation (gp.waiting, whose
    _cancel teardown calls). HOW_AIO: as HOW_ASYNC, but gp is marked
    waiting and the lock released here; the caller yields gp.coro, its
    future."""
    if how == HOW_ASYNC:
        gopark_async(gp, unlockf, arg, reason, op)
        return 1
    if how == HOW_AIO:
        aio_park(gp, unlockf, arg)
        return 1
    gopark_thread(gp, unlockf, arg, reason, op, -1)
    return 0

def _no_await_error(what, alt):
    return RuntimeError(
        f"{what} would block a lightweight goroutine's worker thread: "
        f"use `{alt}` inside async goroutines")

cdef object park_refused(int32_t mode, int32_t how):
    """The error for a caller that must wait but may not in this way
    (mode: the operation's, or MODE_SELECT). An awaitable refused as
    HOW_ASYNC tries HOW_AIO: the error comes from there (no event loop
    runs in this thread)."""
    if how == HOW_AIO or how == HOW_ASYNC:
        if mode == MODE_SELECT:
            return RuntimeError("await select() outside a gocore goroutine or asyncio task; "
                                "plain threads use blocking_select()")
        return RuntimeError("await on a channel operation outside a gocore goroutine or "
                            "asyncio task; plain threads use blocking_send/blocking_recv")
    if mode == MODE_SELECT:
        return _no_await_error("blocking_select()", "await select(...)")
    if mode == MODE_SEND:
        return _no_await_error("blocking_send()", "await ch.send(v)")
    return _no_await_error("blocking_recv()", "await ch.recv()")

cdef inline object deadlock_error():
    return DeadlockError("all goroutines are asleep - deadlock!")


# ---------------------------------------------------------------- one path per operation

cdef inline int chan_try(Chan c, int32_t mode, object v, PyObject **out) except -1:
    """The attempt to complete a send (v) or receive at once, by any kind
    of caller (Go's chansend/chanrecv up to the wait). 1: done; a
    receive's result in *out (owned, or NULL for closed). 0: it must wait:
    c.lock is HELD (a nil channel, which blocks forever, holds nothing);
    chan_wait follows. Raises on a closed channel's send (unlocked)."""
    if c.is_nil:
        return 0
    chan_lock(c)
    if mode == MODE_SEND:
        if try_send_locked(c, v, NULL):
            out[0] = NULL
            return 1
        return 0
    return try_recv_locked(c, out, NULL)

cdef inline int chan_wait(Chan c, int32_t mode, object v, sudog *sg, int32_t how,
                          bint suspect, object op, G aiog) except -1:
    """After chan_try returned 0 (c.lock held; nothing for a nil channel):
    link sg for the caller's G and park as its kind does (park(); op: the
    awaitable, or None; aiog: see parker). Returns park()'s result.
    Raises, releasing c.lock, for a caller that may not wait this way and,
    when suspect (retrying after a deadlock wake-up), on having to wait
    again; but returns 2, c.lock released, for an awaitable outside a
    lightweight goroutine (its shell goes on as HOW_AIO)."""
    cdef G gp = parker(how, aiog)
    cdef bint send = mode == MODE_SEND
    if gp is None or suspect:
        return refuse_wait(c, mode, how, gp is None)
    gp.park_claim = 0
    sudog_init(sg, gp, c, 0)
    if c.is_nil:
        return park(gp, how, NULL, NULL, W_CHAN_NIL_SEND if send else W_CHAN_NIL, op)
    if send:
        Py_INCREF(v)                      # the sudog's own reference
        sg.elem = <PyObject *>v
    waiter_link(c, send, sg)
    return park(gp, how, unlock_one, &c.lock, W_CHAN_SEND if send else W_CHAN_RECV, op)

cdef int refuse_wait(Chan c, int32_t mode, int32_t how, bint refused) except -1:
    """chan_wait's error exit, out of line: unlock c, then raise - the
    caller may not wait this way (refused), or it was woken by deadlock
    detection and nothing changed: the deadlock (also for a nil channel:
    not a park that checkdead would wake again and again). An awaitable
    refused as HOW_ASYNC gets 2 instead (chan_wait)."""
    if not c.is_nil:
        chan_unlock(c)
    if refused:
        if how == HOW_ASYNC:
            return 2                  # not a lightweight goroutine: the awaitable's aio_wait
        raise park_refused(mode, how)
    raise deadlock_error()

cdef inline int chan_woken(Chan c, int32_t mode, sudog *sg, bint *suspect, PyObject **out) except -1:
    """After the park, woken. 0: done (*out as chan_try's). 1: retry
    (chan_try, then chan_wait with *suspect): deadlock detection or the
    main thread's recheck woke us (see check_wake). Raises what the waker
    asked for (check_wake), or ChanClosedError for a send woken by close."""
    cdef G gp = <G>sg.link.g
    if gp.wake_flags != WAKE_NORMAL:
        # claimed by someone other than a partner: sg may still be queued
        chan_cancel(c, mode, sg)
        if check_wake(gp):
            suspect[0] = deadlock_suspect(gp)
            return 1
    if mode == MODE_SEND:
        if not sg.success:
            Py_XDECREF(sg.elem)
            sg.elem = NULL
            raise ChanClosedError("send on closed channel")
        out[0] = NULL
        return 0
    out[0] = sg.elem if sg.success else NULL      # moves it: sg.elem is dead from here
    sg.elem = NULL
    return 0

cdef void chan_cancel(Chan c, int32_t mode, sudog *sg) noexcept:
    """Requires GIL; no lock held. The operation gives up its wait
    (teardown, a wake-up by deadlock detection, its coroutine closed):
    unlink sg if still queued, drop the value it holds (a send's own, or
    one a sender handed over to a receive that will never return it)."""
    if not c.is_nil:
        chan_lock(c)
        waiter_unlink(c, mode == MODE_SEND, sg)
        chan_unlock(c)
    if sg.elem != NULL:
        Py_DECREF(<object>sg.elem)
        sg.elem = NULL

cdef object chan_blocking(Chan c, int32_t mode, object v):
    """HOW_THREAD's shell: blocking_send / blocking_recv / blocking_recv_ok
    and `for v in ch`, the record on this C stack."""
    cdef sudog sg
    cdef PyObject *out = NULL
    cdef bint suspect = 0
    check_goexit()           # a sync goroutine that outlived its run(): GoroutineExit
    while True:
        if chan_try(c, mode, v, &out):
            break
        # the thread's G.waiting is c while it waits: what dumps and find_leaks read
        chan_wait(c, mode, v, &sg, HOW_THREAD, suspect, c, None)
        getg().waiting = None
        if chan_woken(c, mode, &sg, &suspect, &out) == 0:
            break
    if mode == MODE_SEND:
        return None
    return wrap_recv(out, mode)


cdef int finish_recv(int mode, PyObject **out) except -1:
    """*out (an owned value, or NULL for closed) becomes recv_ok()'s
    (value, True) or (None, False); `async for` ends on NULL."""
    cdef object res
    if mode == MODE_RANGE:
        if out[0] == NULL:
            raise StopAsyncIteration
        return 0
    res = wrap_recv(out[0], MODE_RECV_OK)
    Py_INCREF(res)
    out[0] = <PyObject *>res
    return 0


cdef const char *CHANOP_NAMES[4]     # for messages, by mode
CHANOP_NAMES[MODE_SEND] = b"Chan.send()"
CHANOP_NAMES[MODE_RECV] = b"Chan.recv()"
CHANOP_NAMES[MODE_RECV_OK] = b"Chan.recv_ok()"
CHANOP_NAMES[MODE_RANGE] = b"Chan.__anext__()"


@cython.no_gc
@cython.freelist(64)
cdef class _ChanOp:
    """The awaitable behind `await ch.send(v)`, `ch.recv()`, `ch.recv_ok()`
    and one step of `async for`; also its own waiter record when it parks.

    Awaited once, by one goroutine (DESIGN §1, lifecycle rules): __await__
    marks it, and a second `await` (again, or from another goroutine, also
    while the first is parked) raises RuntimeError before touching any
    state. When the operation finishes, step() drops the channel and
    the value (Go clears a sudog before it goes back to its cache) and
    offers the object to the op cache; a finished op stepped again raises.
    An op dropped without ever being awaited warns when it is freed, as an
    un-awaited coroutine does (chanop_dealloc)."""
    cdef Chan c             # owned until the operation finishes, then None
    cdef object value       # send: owned until it finishes, then None
    cdef int mode
    cdef int state          # 0: not started; 1: parked; 2: finished
    cdef bint suspect       # retrying after a deadlock wake-up: waiting again raises
    cdef bint awaited       # first await claims it (gc_mark_awaited: CAS on free-threaded builds); __next__ sets it; reset on reuse by the sole owner
    cdef sudog sg
    cdef G aiog             # HOW_AIO: an asyncio task's pseudo-G (owned) from aio_wait until woken or withdrawn, else None

    def __await__(self):
        # (`await` reaches chanop_am_await; this is the same rule for
        # explicit op.__await__() calls)
        if not gc_mark_awaited(&self.awaited):
            gc_awaited_again(CHANOP_NAMES[self.mode])
            raise_current()
        return self

    def __iter__(self):
        return self

    def __next__(self):
        cdef PyObject *out = NULL
        self.awaited = 1        # driven by hand: used, not forgotten
        cdef int r = self.step(&out)
        if r == 1:
            return <object>out      # PARK, or an asyncio task's future
        if out == NULL:
            raise StopIteration
        res = <object>out
        Py_DECREF(res)
        raise StopIteration(res)

    def _dump_wait(self, G gp not None):
        """For goroutine dumps (see chan_dump_info): the channel this
        parked operation waits on, or None once it finished."""
        c = self.c
        if c is None:
            return None
        d = {"type": "chan", "op": "send" if self.mode == MODE_SEND else "recv"}
        d.update(chan_dump_info(c, gp))
        return d

    cdef int step(self, PyObject **out) except -1:
        """HOW_ASYNC's shell (outside a lightweight goroutine the wait goes
        on in aio_wait, HOW_AIO's). 0: done, *out an owned result (NULL for
        None); 1: parked (yield *out: PARK, or the task's future); raises
        on error."""
        cdef Chan c = self.c
        cdef int done
        if self.state == 0:
            done = chan_try(c, self.mode, self.value, out)
        elif self.state == 1:
            if ld_acq_u32(self.sg.link.claim) == 0:
                # stepped by hand (next()) while its goroutine is still
                # parked: only that goroutine, once woken, may resume it
                return gc_parked_elsewhere(CHANOP_NAMES[self.mode], (<G>self.sg.link.g).goid)
            self.state = 2
            done = chan_woken(c, self.mode, &self.sg, &self.suspect, out) == 0
            if self.aiog is not None:       # HOW_AIO: its future is spent; a retry makes a new G
                aio_unpark(self.aiog)
                self.aiog = None
            if not done:
                self.state = 0              # retry
                done = chan_try(c, self.mode, self.value, out)
        else:
            gc_awaited_again(CHANOP_NAMES[self.mode])
            return -1
        if done:
            return self.finish(out)
        if chan_wait(c, self.mode, self.value, &self.sg, HOW_ASYNC, self.suspect, self, None) == 2:
            return self.aio_wait(out)
        self.state = 1
        out[0] = PARK_PTR
        return 1

    cdef inline int finish(self, PyObject **out) except -1:
        """The operation is over (its waiter, if any, unlinked and holding
        no value): release the channel and a send's value now rather than
        when the object is reused, and offer it to the cache. *out is
        recv()'s result already (NULL: None)."""
        if self.mode == MODE_SEND:
            self.value = None
        self.state = 2
        self.c = None
        if GC_OP_CACHE:
            gc_cache_push(&gc_op_cache, <PyObject *>self)
        if self.mode >= MODE_RECV_OK:
            return finish_recv(self.mode, out)
        return 0

    cdef int aio_wait(self, PyObject **out) except -1:
        """HOW_AIO's shell: step() must wait outside a lightweight goroutine
        (chan_wait returned 2, nothing locked). An asyncio task waits on a
        pseudo-G, made here with no lock held (it allocates), after which
        the one path runs again; its task steps us again once the future
        is resolved (step(), state 1), or throws into us when cancelled
        (aio_throw). No event loop in this thread: park_refused."""
        cdef Chan c = self.c
        self.aiog = aio_waiter_g()
        if self.aiog is None:
            raise park_refused(self.mode, HOW_AIO)
        if chan_try(c, self.mode, self.value, out):
            self.aiog = None
            return self.finish(out)
        chan_wait(c, self.mode, self.value, &self.sg, HOW_AIO, self.suspect, self, self.aiog)
        self.state = 1
        out[0] = <PyObject *>self.aiog.coro
        return 1

    def _cancel(self):
        self.cancel()

    def _waits_on(self):
        """find_leaks (_sched_api.pxi): (the channel this operation waits
        on while parked, what it holds hidden from the GC: the channel,
        a send's value, a value handed to its waiter). Read with the GIL."""
        c = self.c
        return (((c,) if self.state == 1 and c is not None and not self.c.is_nil else ()),
                (c, self.value, <object>self.sg.elem if self.sg.elem != NULL else None))

    def close(self):
        """The awaiting coroutine is closed while suspended on us (teardown
        of a goroutine readied but not resumed yet): unlink the waiter if
        still queued, and drop a value a sender handed over."""
        if self.state != 1:
            return
        if self.aiog is not None:       # HOW_AIO: take the pseudo-G back (or wait for its waker)
            aio_withdraw(self.aiog)
            aio_unpark(self.aiog)
        self.cancel()
        self.state = 2
        if self.aiog is None:
            goroutine_closed_outside(self.sg.link.g)     # closed from outside: the goroutine ends
        self.aiog = None
        self.c = None
        self.value = None

    def throw(self, typ, val=None, tb=None):
        """As close(), then the exception goes on (close_then_throw); an
        asyncio task's wait: aio_throw."""
        if self.state == 1 and self.aiog is not None:
            return self.aio_throw(typ, val, tb)
        return close_then_throw(self, typ, val, tb)

    cdef object aio_throw(self, typ, val, tb):
        """An asyncio task waiting on us is cancelled (any exception thrown
        in). If it takes its pseudo-G back, nothing was exchanged: unlink
        and raise. If a waker won first, the value was moved (a receive got
        one, a send delivered its own): complete with it - the exception is
        absorbed rather than the value lost (docs/asyncio.md)."""
        cdef PyObject *out = NULL
        cdef G gp = self.aiog
        if aio_withdraw(gp):
            aio_unpark(gp)
            self.cancel()
            self.state = 2
            self.aiog = None
            self.c = None
            self.value = None
            raise thrown_exception(typ, val, tb)
        # claim is 1 and the waker's results are visible: step() completes
        # (and drops the pseudo-G)
        if self.step(&out) == 1:
            return <object>out
        if out == NULL:
            raise StopIteration
        res = <object>out
        Py_DECREF(res)
        raise StopIteration(res)

    cdef void cancel(self):
        """Unlink the waiter if still queued (teardown, close)."""
        if (self.state == 1 or self.state == 2) and self.c is not None:
            chan_cancel(self.c, self.mode, &self.sg)

cdef int chanop_am_send(PyObject *self, PyObject *arg, PyObject **presult) except -1:
    """am_send slot (3.10+): PyIter_Send and 3.11's SEND opcode finish an
    await with the result directly, without a StopIteration object. Returns
    PYGEN_RETURN (0), PYGEN_NEXT (1) or PYGEN_ERROR (-1, exception set)."""
    cdef PyObject *out = NULL
    cdef int r = (<_ChanOp>self).step(&out)
    if r == 1:
        Py_INCREF(<object>out)
        presult[0] = out
        return 1
    if out == NULL:
        Py_INCREF(None)
        presult[0] = <PyObject *>None
    else:
        presult[0] = out
    return 0

(<PyTypeObject *>_ChanOp).tp_as_async.am_send = <sendfunc>chanop_am_send


cdef PyObject *chanop_am_await(PyObject *self) noexcept:
    """am_await slot, reached by every `await op`: __await__'s rule as a
    leaf function (the error is raised out of line)."""
    if not gc_mark_awaited(&(<_ChanOp>self).awaited):
        return gc_awaited_again(CHANOP_NAMES[(<_ChanOp>self).mode])
    Py_INCREF(<object>self)
    return self

(<PyTypeObject *>_ChanOp).tp_as_async.am_await = <unaryfunc>chanop_am_await


cdef destructor chanop_cython_dealloc = (<PyTypeObject *>_ChanOp).tp_dealloc

cdef void chanop_dealloc(PyObject *o) noexcept:
    """tp_dealloc: an op still holding its channel and never awaited is a
    forgotten `await`: warn, then free it as Cython does. A wrapper rather
    than __dealloc__, which would save and restore the exception state on
    every free (the common case is two loads and a branch)."""
    if not (<_ChanOp>o).awaited and (<PyObject *>(<_ChanOp>o).c) != <PyObject *>None:
        gc_warn_unawaited(CHANOP_NAMES[(<_ChanOp>o).mode])
    chanop_cython_dealloc(o)

(<PyTypeObject *>_ChanOp).tp_dealloc = <destructor>chanop_dealloc


cdef extern from *:
    """
    /* A few finished _ChanOps (and _Selects), for reuse instead of a new
     * allocation. An op enters the cache when its operation finishes
     * (gc_cache_push, from step(): the op has already dropped its
     * channel, value and cases), while the awaiting frame still holds it;
     * `await ch.recv()` drops it right after, so a later operation finds it
     * unreferenced (refcount 1: only the cache) and takes it out
     * (gc_cache_pop: the slot's reference passes to the caller). An op
     * still referenced (kept by the caller) is never reused. A popped op
     * belongs to its new operation alone: if that operation is never
     * awaited, its last reference goes and its tp_dealloc warns at once.
     * Several slots because a ping-pong pair has one op parked while the
     * other runs. GIL builds only: the GIL serialises the cache, and on
     * free-threaded builds a refcount of 1 does not prove that no other
     * thread holds the object. */
    #ifdef Py_GIL_DISABLED
    #define GC_OP_CACHE 0
    #else
    #define GC_OP_CACHE 1
    #endif
    #define GC_OP_SLOTS 4
    /* hole: the slot the last pop emptied, where the next push looks first */
    typedef struct { PyObject *slot[GC_OP_SLOTS]; unsigned hole; } gc_objcache;
    static gc_objcache gc_op_cache, gc_sel_cache;   /* _ChanOp and _Select objects */
    /* take out a cached object nobody else references (owned), or NULL */
    static inline PyObject *gc_cache_pop(gc_objcache *c) {
        for (unsigned i = 0; i < GC_OP_SLOTS; i++) {
            PyObject *o = c->slot[i];
            if (o != NULL && Py_REFCNT(o) == 1) {
                c->slot[i] = NULL;
                c->hole = i;
                return o;
            }
        }
        return NULL;
    }
    /* offer a finished object (not in the cache): kept if a slot is free */
    static inline void gc_cache_push(gc_objcache *c, PyObject *o) {
        if (c->slot[c->hole] == NULL) {     /* the usual case: one pop, one push */
            Py_INCREF(o);
            c->slot[c->hole] = o;
            return;
        }
        for (int i = 0; i < GC_OP_SLOTS; i++) {
            if (c->slot[i] == NULL) {
                Py_INCREF(o);
                c->slot[i] = o;
                return;
            }
        }
    }
    """
    ctypedef struct gc_objcache:
        pass
    int GC_OP_CACHE
    gc_objcache gc_op_cache
    gc_objcache gc_sel_cache
    PyObject *gc_cache_pop(gc_objcache *c)
    void gc_cache_push(gc_objcache *c, PyObject *o)


cdef inline _ChanOp new_op(Chan c, int mode, object value):
    cdef _ChanOp op
    cdef PyObject *o = NULL
    if GC_OP_CACHE:
        o = gc_cache_pop(&gc_op_cache)
    if o != NULL:
        op = <_ChanOp>o
        Py_DECREF(op)              # the cache's reference, passed to us: `op` holds one
        op.state = 0
        op.suspect = 0
        op.awaited = 0
    else:
        op = _ChanOp.__new__(_ChanOp)
    op.c = c
    op.mode = mode
    op.value = value
    return op


# ---------------------------------------------------------------- dumps
#
# What a goroutine dump shows of the channel a goroutine waits on
# (_debug.py calls the _dump_wait methods below with the inspection gate
# up, so the parked goroutine's operation cannot finish meanwhile). len,
# closed and the waiter counts are read under c.lock, one channel at a
# time (no other lock held: the lock order is respected trivially); cap is
# set at creation. The counts leave out the dumped goroutine itself and
# zombie records (a select case another case already won).

cdef dict chan_dump_info(Chan c, G gp):
    cdef Py_ssize_t n
    cdef int32_t closed
    cdef int64_t nrecv, nsend
    if c.is_nil:
        return {"id": "nil", "nil": True}
    chan_lock(c)
    n = c.qcount
    closed = c.closed
    nrecv = gc_waitq_count(&c.recvq, <PyObject *>gp)
    nsend = gc_waitq_count(&c.sendq, <PyObject *>gp)
    chan_unlock(c)
    return {"id": f"{id(c):#x}", "nil": False, "len": n, "cap": c.dataqsiz,
            "closed": bool(closed), "receivers": nrecv, "senders": nsend}


# ---------------------------------------------------------------- Chan

@cython.final
cdef class Chan:
    """A Go channel. Chan(0) (the default) is unbuffered: a send completes
    only when a receiver takes the value. Chan(n) buffers n values."""

    __class_getitem__ = classmethod(GenericAlias)

    def __cinit__(self, size=0):
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"Chan(size) needs an int, got {type(size).__name__}")
        if size < 0:
            raise ValueError(f"Chan(size) needs size >= 0, got {size}")
        if size > (1 << 40):
            raise ValueError(f"Chan(size): size {size} is too large")
        self.dataqsiz = size
        self.buf = [None] * size if size else None
        self.peak = -1

    def send(self, v):
        """`await ch.send(v)`: blocks until a receiver takes v (or there is
        room in the buffer). Raises ChanClosedError on a closed channel."""
        return new_op(self, MODE_SEND, v)

    def recv(self):
        """`await ch.recv()`: the next value; None once closed and drained."""
        return new_op(self, MODE_RECV, None)

    def recv_ok(self):
        """`await ch.recv_ok()`: (value, True), or (None, False) once closed
        and drained."""
        return new_op(self, MODE_RECV_OK, None)

    def close(self):
        """Close the channel: receivers drain the buffer, then get (None,
        False); blocked senders raise ChanClosedError."""
        cdef sudog *sg
        cdef sudog *ready = NULL
        cdef int send
        if self.is_nil:
            raise ChanClosedError("close of nil channel")
        chan_lock(self)
        if self.closed:
            chan_unlock(self)
            raise ChanClosedError("close of closed channel")
        self.closed = 1
        # collect every waiter we win, linked through link.next (we are
        # their only owner once dequeued), and ready them after unlocking
        for send in range(2):
            while True:
                sg = waiter_take(self, send)
                if sg == NULL:
                    break
                sg.success = 0
                sg.link.next = <gc_waitlink *>ready
                ready = sg
        chan_unlock(self)
        while ready != NULL:
            sg = ready
            ready = <sudog *>sg.link.next    # read before goready: sg may be freed after
            sg.link.next = NULL
            goready(<G>sg.link.g)

    def try_send(self, v):
        """Send without blocking: True if sent, False if it would block.
        Raises ChanClosedError on a closed channel."""
        if self.is_nil:
            return False
        chan_lock(self)
        if try_send_locked(self, v, NULL):
            return True
        chan_unlock(self)
        return False

    def try_recv(self):
        """Receive without blocking: (value, True), (None, False) if closed
        and drained, or None if nothing is ready."""
        cdef PyObject *v = NULL
        if self.is_nil:
            return None
        chan_lock(self)
        if try_recv_locked(self, &v, NULL):
            return wrap_recv(v, MODE_RECV_OK)
        chan_unlock(self)
        return None

    def blocking_send(self, v):
        """send() for plain threads and sync goroutines: parks the thread."""
        return chan_blocking(self, MODE_SEND, v)

    def blocking_recv(self):
        """recv() for plain threads and sync goroutines."""
        return chan_blocking(self, MODE_RECV, None)

    def blocking_recv_ok(self):
        """recv_ok() for plain threads and sync goroutines."""
        return chan_blocking(self, MODE_RECV_OK, None)

    def __len__(self):
        return self.qcount

    def __bool__(self):
        """Always True, as a Go channel is a reference: `done = done or
        Chan()` must not replace an empty channel (len() is its count)."""
        return True

    @property
    def cap(self):
        return self.dataqsiz

    @property
    def closed(self):
        return bool(self.closed)

    def track_peak(self):
        """Start recording the buffer's peak occupancy (see `peak`), from
        the current length; called again, start over. Off (the default) it
        costs one compare per buffered send."""
        if self.is_nil:
            raise ValueError("track_peak(): nilchan has no buffer")
        chan_lock(self)
        self.peak = self.qcount
        chan_unlock(self)

    @property
    def peak(self):
        """The most values the buffer held at once since track_peak(), or
        None if it was not called (size buffers from data: a peak well below
        cap means the buffer is larger than the traffic needs)."""
        cdef Py_ssize_t v
        chan_lock(self)
        v = self.peak
        chan_unlock(self)
        return None if v < 0 else v

    def __aiter__(self):
        return _ChanRange.__new__(_ChanRange, self)

    def __iter__(self):
        """`for v in ch` from threads and sync goroutines: blocking receives
        until the channel is closed and drained."""
        while True:
            t = chan_blocking(self, MODE_RECV_OK, None)
            if not t[1]:
                return
            yield t[0]

    def __repr__(self):
        if self.is_nil:
            return "<gocore.nilchan>"
        return f"<gocore.Chan cap={self.dataqsiz} len={self.qcount}{' closed' if self.closed else ''}>"

    def _dump_wait(self, G gp not None):
        """For goroutine dumps: a thread or sync goroutine parked in a
        blocking_* operation has the channel itself as its waiting object
        (chan_blocking)."""
        d = {"type": "chan", "op": None}
        d.update(chan_dump_info(self, gp))
        return d

    def __dealloc__(self):
        pass   # the buffer list owns the values; no waiter can outlive its reference to us


@cython.final
cdef class _ChanRange:
    """`async for v in ch`: Go's `for v := range ch`."""
    cdef Chan c

    def __cinit__(self, Chan c not None):
        self.c = c

    def __aiter__(self):
        return self

    def __anext__(self):
        return new_op(self.c, MODE_RANGE, None)


cdef Chan _make_nil():
    cdef Chan c = Chan(0)
    c.is_nil = True
    return c

nilchan = _make_nil()


# ---------------------------------------------------------------- select

class _Default:
    __slots__ = ()
    def __repr__(self):
        return "gocore.default"

default = _Default()


cdef enum:
    CASE_RECV = 0
    CASE_RECV_OK = 1
    CASE_SEND = 2


cdef struct selcase:
    PyObject *c          # borrowed Chan (None for `default`): the cases tuple owns it
    PyObject *v          # borrowed value of a send case
    int32_t kind

@cython.no_gc
@cython.freelist(16)
cdef class _Select:
    """The awaitable behind `await select(...)` (and blocking_select). Its
    arrays point into inline storage for up to 8 cases (malloc beyond).
    Awaited once, by one goroutine, and cleared when it finishes, as
    _ChanOp (see there); `cases` is set only once every case parsed, so a
    select refused for a malformed case does not warn as never awaited."""
    cdef tuple cases              # owns every channel and value the arrays borrow; None once finished
    cdef int32_t ncases
    cdef int32_t default_index    # -1 if none
    cdef int32_t nlocks
    cdef int state                # 0 not started; 1 parked; 2 woken (pass3); 3 finished
    cdef bint suspect             # retrying after a deadlock wake-up: waiting again raises
    cdef bint awaited             # as _ChanOp.awaited; blocking_select sets it too
    cdef selcase *cs
    cdef sudog *sgs
    cdef int32_t *order           # poll order (random permutation)
    cdef int32_t *lockorder       # case indices of the distinct channels, by address
    cdef gc_mutex **locks         # their locks, in the same order
    cdef _SelectLocks lockset     # (locks, nlocks) for the park's unlock function
    cdef void *heap               # malloc block for > 8 cases, else NULL
    cdef G gp
    cdef G aiog                   # HOW_AIO: an asyncio task's pseudo-G (owned) from aio_wait until woken or withdrawn, else None
    cdef object result
    cdef selcase in_cs[8]
    cdef sudog in_sgs[8]
    cdef int32_t in_order[8]
    cdef int32_t in_lockorder[8]
    cdef gc_mutex *in_locks[8]

    def __dealloc__(self):
        if self.heap != NULL:
            free(self.heap)
            self.heap = NULL
        if not self.awaited and self.cases is not None:
            gc_warn_unawaited(b"select()")

    def _dump_wait(self, G gp not None):
        """For goroutine dumps: each case's channel (chan_dump_info), in
        the order written; None once the select finished."""
        cdef int32_t i
        if self.cases is None:
            return None
        cases = []
        for i in range(self.ncases):
            if i == self.default_index or self.cs[i].c == NULL:
                continue
            d = {"op": "send" if self.cs[i].kind == CASE_SEND else "recv"}
            d.update(chan_dump_info(<Chan>self.cs[i].c, gp))
            cases.append(d)
        return {"type": "select", "cases": cases}

    def __await__(self):
        if not gc_mark_awaited(&self.awaited):
            gc_awaited_again(b"select()")
            raise_current()
        return self

    def __iter__(self):
        return self

    def __next__(self):
        cdef PyObject *out = NULL
        self.awaited = 1        # driven by hand: used, not forgotten
        if self.step(&out) == 1:
            return <object>out      # PARK, or an asyncio task's future
        res = <object>out
        Py_DECREF(res)
        raise StopIteration(res)

    cdef int step(self, PyObject **out) except -1:
        """HOW_ASYNC's shell (outside a lightweight goroutine the wait goes
        on in aio_wait, HOW_AIO's). 0: done, *out an owned (index, value);
        1: parked (*out: PARK, or the task's future)."""
        cdef int r
        if self.state != 0:
            if self.state != 1:
                gc_awaited_again(b"select()")
                return -1
            if ld_acq_u32(&self.gp.park_claim) == 0:
                # stepped by hand while its goroutine is still parked
                return gc_parked_elsewhere(b"select()", self.gp.goid)
            self.pass3()            # done, or state 0 again: retry
            if self.aiog is not None:       # HOW_AIO: its future is spent; a retry makes a new G
                aio_unpark(self.aiog)
                self.aiog = None
        if self.state == 0:
            r = self.pass1(HOW_ASYNC)
            if r == 2:
                return self.aio_wait(out)
            if r:
                self.do_park(HOW_ASYNC)
                out[0] = PARK_PTR
                return 1
        return self.take_result(out)

    cdef int aio_wait(self, PyObject **out) except -1:
        """HOW_AIO's shell: pass1 found the caller is no lightweight
        goroutine (it returned 2, nothing locked). As _ChanOp.aio_wait: a
        pseudo-G made with no lock held, then pass1 again; resumed by
        step() (state 1) or cancelled through aio_throw."""
        self.aiog = aio_waiter_g()
        if self.aiog is None:
            raise park_refused(MODE_SELECT, HOW_AIO)
        if self.pass1(HOW_AIO):
            self.do_park(HOW_AIO)
            out[0] = <PyObject *>self.aiog.coro
            return 1
        self.aiog = None
        return self.take_result(out)

    cdef inline int take_result(self, PyObject **out) noexcept:
        """Done: *out = the result (owned), and the select is finished."""
        res = self.result
        self.result = None
        self.finished()
        Py_INCREF(res)
        out[0] = <PyObject *>res
        return 0

    cdef inline void finished(self) noexcept:
        """The select is over (no waiter linked, no value held by its
        sudogs): drop the cases - and with them every channel and sent
        value - now, and offer the object to the cache."""
        self.state = 3
        self.cases = None
        self.gp = None
        if GC_OP_CACHE:
            gc_cache_push(&gc_sel_cache, <PyObject *>self)

    cdef void compute_lockorder(self) noexcept:
        """The distinct non-nil channels by address (insertion sort: selects
        are small), and their locks in that order."""
        cdef int32_t i, j, k, ndistinct = 0
        cdef PyObject *c
        cdef bint dup
        for i in range(self.ncases):
            c = self.cs[i].c
            if (<Chan>c).is_nil:
                continue
            dup = False
            for j in range(ndistinct):
                if self.cs[self.lockorder[j]].c == c:
                    dup = True
                    break
            if dup:
                continue
            k = ndistinct
            while k > 0 and <size_t>self.cs[self.lockorder[k - 1]].c > <size_t>c:
                self.lockorder[k] = self.lockorder[k - 1]
                k -= 1
            self.lockorder[k] = i
            ndistinct += 1
        self.nlocks = ndistinct
        for i in range(ndistinct):
            self.locks[i] = &(<Chan>self.cs[self.lockorder[i]].c).lock
        self.lockset.locks = self.locks
        self.lockset.n = ndistinct

    cdef inline void lock_all(self) noexcept:
        cdef int32_t i
        for i in range(self.nlocks):
            if not gc_mutex_trylock(self.locks[i]):
                with nogil:
                    gc_mutex_lock_slow(self.locks[i])

    cdef inline void unlock_all(self) noexcept:
        unlock_locks(self.locks, self.nlocks)

    cdef int pass1(self, int32_t how) except -1:
        """Passes 1 and 2, for any kind of caller. 0: done (self.result
        set). 1: the caller must park (park(), unlock_select): a waiter is
        linked on every case's channel for self.gp, every channel locked.
        2 (HOW_ASYNC only): it must park but is no lightweight goroutine,
        nothing locked: step() goes on as HOW_AIO."""
        cdef int32_t n = self.ncases
        cdef int32_t i, j, k, t, win = -1
        cdef int32_t *order = self.order
        cdef _SelectLocks *sel = NULL
        cdef Chan c
        cdef PyObject *v = NULL
        cdef G gp
        cdef int r
        self.gp = None          # a retry after a deadlock wake-up kept it: this attempt may raise
        for i in range(n):
            order[i] = i
        for i in range(n - 1, 0, -1):       # Fisher-Yates: uniform among ready cases
            j = fastrand_n(i + 1)
            t = order[i]; order[i] = order[j]; order[j] = t
        # Poll the cases in the random order, twice at most. First the
        # optimistic pass (crossbeam's idea, sel NULL): each case under its
        # own channel's lock. A case found ready completes at that instant,
        # exactly as it would under all the locks, and the common ready
        # select takes one lock instead of all of them. Nothing ready: lock
        # every channel (address order, sel = the lock set) and poll again,
        # since a case may have become ready meanwhile; then enqueue.
        while True:
            for k in range(n):
                i = order[k]
                if i == self.default_index:
                    continue
                c = <Chan>self.cs[i].c
                if c.is_nil:
                    continue
                if sel == NULL:
                    chan_lock(c)
                if not may_proceed(c, self.cs[i].kind == CASE_SEND):
                    r = 0
                elif self.cs[i].kind == CASE_SEND:
                    r = try_send_locked(c, <object>self.cs[i].v, sel)
                else:
                    r = try_recv_locked(c, &v, sel)
                if r:
                    win = i
                    break
                if sel == NULL:
                    chan_unlock(c)
            if win >= 0 or sel != NULL:
                break
            if self.default_index >= 0:
                self.result = (self.default_index, None)
                return 0
            if self.nlocks < 0:
                self.compute_lockorder()
            self.lock_all()
            sel = &self.lockset
        if win >= 0:                        # done, every lock released
            if self.cs[win].kind == CASE_SEND:
                self.result = (win, None)
            else:
                self.result = (win, wrap_recv(v, MODE_RECV_OK if self.cs[win].kind == CASE_RECV_OK else MODE_RECV))
            return 0
        # pass 2: enqueue on every case's channel; the caller parks
        if self.suspect:
            self.unlock_all()
            raise deadlock_error()
        gp = parker(how, self.aiog)
        if gp is None:
            self.unlock_all()
            if how == HOW_ASYNC:
                return 2
            raise park_refused(MODE_SELECT, how)
        self.gp = gp
        gp.park_claim = 0
        # Enqueue in the random poll order, not case order: a waker takes
        # the first waiter of a queue, so when several cases wait on one
        # channel this order decides which fires (Go's lockorder over a
        # random pollorder; its TestPseudoRandomSend).
        for k in range(n):
            i = order[k]
            c = <Chan>self.cs[i].c
            if c.is_nil:
                self.sgs[i].c = NULL
                continue
            sudog_init(&self.sgs[i], gp, c, i)
            if self.cs[i].kind == CASE_SEND:
                v = self.cs[i].v
                Py_INCREF(<object>v)
                self.sgs[i].elem = v
            waiter_link(c, self.cs[i].kind == CASE_SEND, &self.sgs[i])
        self.state = 1
        return 1

    cdef inline int do_park(self, int32_t how) except -1:
        """After pass1 returned 1: park (see park())."""
        return park(self.gp, how, unlock_select, <void *>&self.lockset,
                    W_SELECT if self.nlocks > 0 else W_SELECT_NO_CASES, self)

    cdef inline int32_t unlink_waiters(self, bint drop_all) noexcept:
        """Requires GIL; no lock held. Unlink the waiters still queued (all
        channels locked at once) and drop the values the sudogs hold: the
        send cases' (not fired, or fired by close), or every one if
        drop_all (also a value handed to a receive that will not return
        it). Returns the case whose waiter fired, or -1."""
        cdef int32_t i, win = -1
        cdef sudog *sg
        self.lock_all()
        for i in range(self.ncases):
            sg = &self.sgs[i]
            if sg.c == NULL:
                continue
            waiter_unlink(<Chan>sg.c, self.cs[i].kind == CASE_SEND, sg)
            if sg.fired:
                win = i
        self.unlock_all()
        for i in range(self.ncases):
            sg = &self.sgs[i]
            if sg.c != NULL and sg.elem != NULL and (drop_all or self.cs[i].kind == CASE_SEND):
                Py_DECREF(<object>sg.elem)
                sg.elem = NULL
        return win

    cdef int pass3(self) except -1:
        """After the wake-up: unlink the losing waiters, take the winner's
        result. 0: done (self.result set); 1: start over with pass1 (state
        0, suspect set: see check_wake)."""
        cdef int32_t i, win
        cdef sudog *sg
        cdef G gp = self.gp
        self.state = 2
        self.gp = None
        win = self.unlink_waiters(gp.wake_flags != WAKE_NORMAL)
        if gp.wake_flags != WAKE_NORMAL and check_wake(gp):
            for i in range(self.ncases):
                self.sgs[i].c = NULL
                self.sgs[i].link.linked = 0
                self.sgs[i].fired = 0
            self.gp = gp
            self.state = 0
            self.suspect = deadlock_suspect(gp)
            return 1
        if win < 0:
            raise RuntimeError("gocore: select woke without a winner")
        sg = &self.sgs[win]
        if self.cs[win].kind == CASE_SEND:
            if not sg.success:
                raise ChanClosedError("send on closed channel")
            self.result = (win, None)
        else:
            self.result = (win, wrap_recv(sg.elem if sg.success else NULL,
                                          MODE_RECV_OK if self.cs[win].kind == CASE_RECV_OK else MODE_RECV))
            sg.elem = NULL
        return 0

    def _cancel(self):
        self.cancel()

    def _waits_on(self):
        """find_leaks (_sched_api.pxi): (the channels of its cases, but
        nilchan; the cases tuple and the values its waiters hold), or None
        once finished. Read with the GIL."""
        cdef int32_t i
        if self.cases is None:
            return None
        chans = []
        held = [self.cases]
        for i in range(self.ncases):
            if self.cs[i].c != NULL and <object>self.cs[i].c is not None and not (<Chan>self.cs[i].c).is_nil:
                chans.append(<object>self.cs[i].c)
            if self.sgs[i].c != NULL and self.sgs[i].elem != NULL:
                held.append(<object>self.sgs[i].elem)
        return tuple(chans), tuple(held)

    def close(self):
        """The awaiting coroutine is closed while suspended on us: teardown
        of a goroutine that a waker readied but that never ran again. The
        waiters of the cases that did not fire are still linked into their
        channels and point into this object (cached, then reused or freed):
        unlink them, drop the values we hold and the G."""
        if self.state == 1:
            if self.aiog is not None:   # HOW_AIO: take the pseudo-G back (or wait for its waker)
                aio_withdraw(self.aiog)
                aio_unpark(self.aiog)
            self.cancel()
            self.state = 2
            if self.gp is not None and self.aiog is None:
                goroutine_closed_outside(<PyObject *>self.gp)   # closed from outside: the goroutine ends
        self.gp = None
        self.aiog = None

    def throw(self, typ, val=None, tb=None):
        """As close(), then the exception goes on (close_then_throw); an
        asyncio task's wait: aio_throw."""
        if self.state == 1 and self.aiog is not None:
            return self.aio_throw(typ, val, tb)
        return close_then_throw(self, typ, val, tb)

    cdef object aio_throw(self, typ, val, tb):
        """An asyncio task waiting in select is cancelled: as
        _ChanOp.aio_throw - withdrawn, or completed with the case that
        fired (its value is not lost)."""
        cdef PyObject *out = NULL
        if aio_withdraw(self.aiog):
            aio_unpark(self.aiog)
            self.cancel()
            self.aiog = None
            self.finished()
            raise thrown_exception(typ, val, tb)
        # claim is 1 and the winner's results are visible: step() completes
        if self.step(&out) == 1:
            return <object>out
        res = <object>out
        Py_DECREF(res)
        raise StopIteration(res)

    cdef void cancel(self):
        if self.state == 1:
            self.unlink_waiters(True)

cdef int selectop_am_send(PyObject *self, PyObject *arg, PyObject **presult) except -1:
    """am_send slot for select (see chanop_am_send)."""
    cdef PyObject *out = NULL
    cdef int r = (<_Select>self).step(&out)
    if r == 1:
        Py_INCREF(<object>out)
    presult[0] = out
    return r

(<PyTypeObject *>_Select).tp_as_async.am_send = <sendfunc>selectop_am_send


cdef PyObject *selectop_am_await(PyObject *self) noexcept:
    """am_await slot: __await__'s rule as a leaf function (chanop_am_await)."""
    if not gc_mark_awaited(&(<_Select>self).awaited):
        return gc_awaited_again(b"select()")
    Py_INCREF(<object>self)
    return self

(<PyTypeObject *>_Select).tp_as_async.am_await = <unaryfunc>selectop_am_await


cdef void unlock_select(void *arg) noexcept nogil:
    """gopark's unlock function for select (arg: its _SelectLocks): every
    involved channel. Reads only C fields: no GIL needed."""
    cdef _SelectLocks *sl = <_SelectLocks *>arg
    unlock_locks(sl.locks, sl.n)


cdef extern from *:
    """
    /* per thread, so that concurrent selects on a free-threaded build never
       race on it (xorshift32 state; never 0) */
    static __thread uint32_t gc_select_rand = 2463534242u;
    """
    uint32_t gc_select_rand

cdef inline int32_t fastrand_n(int32_t n) noexcept:
    """Any thread. Uniform in [0, n) (xorshift32, multiply-shift)."""
    global gc_select_rand
    cdef uint32_t x = gc_select_rand
    x ^= x << 13
    x ^= x >> 17
    x ^= x << 5
    gc_select_rand = x
    return <int32_t>((<unsigned long long>x * <unsigned long long>n) >> 32)


cdef extern from "Python.h":
    ctypedef struct PyMethodDef
    ctypedef struct PyCFunctionObject:
        PyMethodDef *m_ml
        PyObject *m_self
    bint PyCFunction_Check(object o)

# The method definitions behind ch.recv, ch.recv_ok and ch.send: a select
# case is recognised by identity, without attribute lookups.
cdef PyMethodDef *_ML_RECV = NULL
cdef PyMethodDef *_ML_RECV_OK = NULL
cdef PyMethodDef *_ML_SEND = NULL
_ML_RECV = (<PyCFunctionObject *>nilchan.recv).m_ml
_ML_RECV_OK = (<PyCFunctionObject *>nilchan.recv_ok).m_ml
_ML_SEND = (<PyCFunctionObject *>nilchan.send).m_ml


cdef inline int32_t case_kind(object f, PyObject **chan) noexcept:
    """If f is ch.recv / ch.recv_ok / ch.send of a Chan, its kind (and the
    Chan in *chan, borrowed from f), else -1."""
    cdef PyMethodDef *ml
    if not PyCFunction_Check(f):
        return -1
    chan[0] = (<PyCFunctionObject *>f).m_self
    if chan[0] == NULL or type(<object>chan[0]) is not Chan:
        return -1
    ml = (<PyCFunctionObject *>f).m_ml
    if ml == _ML_RECV:
        return CASE_RECV
    if ml == _ML_RECV_OK:
        return CASE_RECV_OK
    if ml == _ML_SEND:
        return CASE_SEND
    return -1


cdef _Select build_select(tuple cases):
    """Parse select's cases; raise TypeError at once for a malformed one."""
    cdef _Select s
    cdef PyObject *o = NULL
    cdef Py_ssize_t n = len(cases)
    cdef int32_t i, j, k, ndistinct, kind
    cdef PyObject *c
    cdef PyObject *item
    cdef char *block
    cdef bint dup
    if GC_OP_CACHE:
        o = gc_cache_pop(&gc_sel_cache)
    if o != NULL:
        s = <_Select>o                 # reuse: a finished select nobody holds
        Py_DECREF(s)                   # the cache's reference, passed to us: `s` holds one
        if s.heap != NULL:
            free(s.heap)
            s.heap = NULL
        s.suspect = 0
        s.awaited = 0
    else:
        s = _Select.__new__(_Select)
    s.ncases = <int32_t>n
    s.default_index = -1
    s.state = 0
    s.heap = NULL
    if n <= 8:
        s.cs = s.in_cs
        s.sgs = s.in_sgs
        s.order = s.in_order
        s.lockorder = s.in_lockorder
        s.locks = s.in_locks
    else:
        if n > 100000:
            raise ValueError("select(): too many cases")
        block = <char *>malloc(n * (sizeof(selcase) + sizeof(sudog) + 2 * sizeof(int32_t) + sizeof(gc_mutex *)))
        if block == NULL:
            raise MemoryError()
        s.heap = block
        s.sgs = <sudog *>block
        s.cs = <selcase *>(block + n * sizeof(sudog))
        s.locks = <gc_mutex **>(block + n * (sizeof(sudog) + sizeof(selcase)))
        s.order = <int32_t *>(block + n * (sizeof(sudog) + sizeof(selcase) + sizeof(gc_mutex *)))
        s.lockorder = s.order + n
    for i in range(n):
        s.sgs[i].c = NULL
        s.sgs[i].elem = NULL
        s.sgs[i].link.linked = 0
        s.sgs[i].fired = 0
        case = cases[i]
        kind = case_kind(case, &c)
        if kind == CASE_RECV or kind == CASE_RECV_OK:
            s.cs[i].c = c
            s.cs[i].v = NULL
            s.cs[i].kind = kind
            continue
        if kind == CASE_SEND:
            raise TypeError("select(): a send case is the tuple (ch.send, value), not ch.send alone")
        if type(case) is tuple:
            if len(<tuple>case) != 2 or case_kind((<tuple>case)[0], &c) != CASE_SEND:
                if len(<tuple>case) != 2:
                    raise TypeError(f"select(): a send case is (ch.send, value), got a {len(<tuple>case)}-tuple")
                raise TypeError(f"select(): a send case is (ch.send, value), got ({(<tuple>case)[0]!r}, ...)")
            s.cs[i].c = c
            s.cs[i].v = <PyObject *>(<tuple>case)[1]
            s.cs[i].kind = CASE_SEND
            continue
        if case is default:
            if s.default_index >= 0:
                raise TypeError("select(): more than one default case")
            s.default_index = i
            s.cs[i].c = <PyObject *>nilchan
            s.cs[i].v = NULL
            s.cs[i].kind = CASE_RECV
            continue
        raise TypeError(f"select(): a case is ch.recv, ch.recv_ok, (ch.send, value) or default, got {case!r}")
    s.nlocks = -1                 # lock order computed only if the select must wait
    s.cases = cases               # last: from here on it owns what the arrays borrow
    return s


def select(*cases):
    """`i, v = await select(ch1.recv, ch2.recv_ok, (ch3.send, x), default)`:
    wait until one case can proceed (one chosen at random among the ready
    ones) and return its index and value (recv: the value; recv_ok:
    (value, ok); send: None). With `default`, never blocks."""
    if not cases:
        raise TypeError("select() needs at least one case (use `default` alone for a no-op)")
    return build_select(cases)


def blocking_select(*cases):
    """select() for plain threads and sync goroutines: parks the thread
    (HOW_THREAD's shell)."""
    cdef _Select s
    if not cases:
        raise TypeError("blocking_select() needs at least one case")
    check_goexit()           # a sync goroutine that outlived its run(): GoroutineExit
    s = build_select(cases)
    s.awaited = 1                 # used here, never awaited
    while s.pass1(HOW_THREAD):
        s.do_park(HOW_THREAD)
        if s.pass3() == 0:
            break
    res = s.result
    s.result = None
    s.finished()
    return res


# Internal types: only this module builds them (csrc/gocore_pytype.h).
gc_internal_type(_ChanOp)
gc_internal_type(_ChanRange)
gc_internal_type(_Select)
