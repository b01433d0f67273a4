# cython: language_level=3, freethreading_compatible=True
# gocore/_chan.pyx - channels and select (Go's chan.go and select.go).
# Invariants and lock order: _chan.pxd.
#
# One code path per operation: try to complete at once (hand-off to a parked
# partner, the buffer, or the closed state); else enqueue a sudog and park on
# the scheduler's gopark. Lightweight goroutines park by yielding to the M
# loop (which releases the channel lock after the G has stopped); threads and
# sync goroutines park their OS thread (blocking_*). A waker moves the value
# straight into the parked partner's sudog (Go's sendDirect/recvDirect) and
# readies it into its own P's runnext, so a ping-pong pair stays on one P.
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

from gocore._includes.atomic cimport cas_u32, ld_acq_i32, ld_acq_u32
from gocore._includes.futex cimport gc_mutex, gc_mutex_trylock, gc_mutex_lock_slow, gc_mutex_unlock, gc_mutex_held
from gocore._includes.pytype cimport (gc_internal_type, gc_warn_unawaited, gc_awaited_again,
                                      gc_parked_elsewhere, gc_mark_awaited)
from gocore._includes.config cimport (GOCORE_DEBUG, gc_assert_msg, gc_dbg_add, gc_dbg_ctr,
                                      GC_DBG_CHAN_WAITERS)
from gocore._sched cimport (G, getg, getg_or_none, on_async_g, gopark_async,
                            gopark_thread, goready, check_wake, deadlock_suspect, park_sentinel,
                            check_goexit, goroutine_closed_outside, thrown_exception,
                            G_ASYNC, G_AIO, G_WAITING, W_CHAN_RECV, W_CHAN_SEND, W_SELECT,
                            W_SELECT_NO_CASES, W_CHAN_NIL, W_CHAN_NIL_SEND, WAKE_NORMAL, dbg_counters,
                            aio_waiter_g, aio_park, aio_withdraw, aio_unpark)   # aio hook

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

cdef void unlock_one(void *lock) noexcept nogil:
    """gopark's unlock function for a single channel."""
    gc_mutex_unlock(<gc_mutex *>lock)

cdef inline void waitq_enqueue(waitq *q, sudog *sg) noexcept nogil:
    """Caller holds the channel's lock."""
    gc_assert_msg(not sg.linked,
                  b"waitq_enqueue: sudog already linked (a sudog is in at most one queue)")
    gc_dbg_add(GC_DBG_CHAN_WAITERS, 1)
    sg.next = NULL
    sg.prev = q.last
    if q.last != NULL:
        q.last.next = sg
    else:
        q.first = sg
    q.last = sg
    sg.linked = 1

cdef inline void waitq_unlink(waitq *q, sudog *sg) noexcept nogil:
    """Caller holds the channel's lock; sg is on q."""
    if GOCORE_DEBUG:
        gc_assert_msg(sg.linked and (sg.prev != NULL or q.first == sg) and (sg.next != NULL or q.last == sg),
                      b"waitq_unlink: sudog not linked into this queue")
    gc_dbg_add(GC_DBG_CHAN_WAITERS, -1)
    if sg.prev != NULL:
        sg.prev.next = sg.next
    else:
        q.first = sg.next
    if sg.next != NULL:
        sg.next.prev = sg.prev
    else:
        q.last = sg.prev
    sg.next = sg.prev = NULL
    sg.linked = 0

cdef inline sudog *waitq_dequeue(waitq *q) noexcept nogil:
    """Caller holds the channel's lock. The first waiter whose G this caller
    wins (cas on its park_claim); waiters of Gs already won elsewhere (other
    cases of a select, deadlock detection) are unlinked and skipped."""
    cdef sudog *sg
    while True:
        sg = q.first
        if sg == NULL:
            return NULL
        waitq_unlink(q, sg)
        if cas_u32(sg.claim, 0, 1):
            sg.fired = 1
            return sg

cdef inline void sudog_init(sudog *sg, G gp, Chan c, int32_t case_index) noexcept:
    sg.g = <PyObject *>gp
    sg.claim = &gp.park_claim
    sg.elem = NULL
    sg.next = sg.prev = NULL
    sg.c = <void *>c
    sg.linked = 0
    sg.success = 0
    sg.fired = 0
    sg.case_index = case_index


# ---------------------------------------------------------------- the operations
# Each returns with c's lock released. Results: 1 done, 0 would block (lock
# still HELD so the caller can enqueue and park), -1 error raised.

cdef inline int try_send_locked(Chan c, object v) except -1:
    """Caller holds c.lock. Complete a send at once if possible."""
    cdef sudog *sg
    cdef PyObject *old
    if GOCORE_DEBUG:
        gc_assert_msg(gc_mutex_held(&c.lock) and 0 <= c.qcount <= c.dataqsiz,
                      b"try_send_locked: channel lock not held, or qcount outside [0, cap]")
    if c.closed:
        chan_unlock(c)
        raise ChanClosedError("send on closed channel")
    sg = waitq_dequeue(&c.recvq)
    if sg != NULL:
        gc_assert_msg(c.qcount == 0,
                      b"try_send_locked: a receiver waited beside a non-empty buffer")
        Py_INCREF(v)
        sg.elem = <PyObject *>v
        sg.success = 1
        chan_unlock(c)
        goready(<G>sg.g)
        return 1
    if c.qcount < c.dataqsiz:
        Py_INCREF(v)
        old = PyList_GET_ITEM(c.buf, c.sendx)     # None: stays referenced by us below
        PyList_SET_ITEM(c.buf, c.sendx, v)        # steals our new reference to v
        c.sendx += 1
        if c.sendx == c.dataqsiz:
            c.sendx = 0
        c.qcount += 1
        chan_unlock(c)
        Py_DECREF(<object>old)
        return 1
    return 0


cdef inline int try_recv_locked(Chan c, PyObject **out) except -1:
    """Caller holds c.lock. Complete a receive at once if possible: *out gets
    an owned reference, or NULL for a closed, drained channel."""
    cdef sudog *sg
    cdef PyObject *v
    if GOCORE_DEBUG:
        gc_assert_msg(gc_mutex_held(&c.lock) and 0 <= c.qcount <= c.dataqsiz,
                      b"try_recv_locked: channel lock not held, or qcount outside [0, cap]")
    sg = waitq_dequeue(&c.sendq)
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
        chan_unlock(c)
        goready(<G>sg.g)
        return 1
    if c.qcount > 0:
        v = PyList_GET_ITEM(c.buf, c.recvx)
        Py_INCREF(None)
        PyList_SET_ITEM(c.buf, c.recvx, None)
        c.recvx += 1
        if c.recvx == c.dataqsiz:
            c.recvx = 0
        c.qcount -= 1
        chan_unlock(c)
        out[0] = v
        return 1
    if c.closed:
        chan_unlock(c)
        out[0] = NULL
        return 1
    return 0


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


def _no_await_error(what, alt):
    return RuntimeError(
        f"{what} would block a lightweight goroutine's worker thread: "
        f"use `{alt}` inside async goroutines")


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
    state. When the operation finishes, `finished()` drops the channel and
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
    cdef G aiog             # aio hook: an asyncio task's pseudo-G (owned) while it waits, else None (_aiowait.pxi)

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
            return <object>out      # aio hook: PARK, or an asyncio task's future
        if out == NULL:
            raise StopIteration
        res = <object>out
        Py_DECREF(res)
        raise StopIteration(res)

    cdef int step(self, PyObject **out) except -1:
        """0: done, *out an owned result (NULL for None); 1: parked (yield
        *out = PARK); raises on error."""
        cdef Chan c = self.c
        cdef G gp
        cdef PyObject *v = NULL
        cdef int r
        if self.state != 0:
            if self.state == 1:
                return self.resume(out)
            gc_awaited_again(CHANOP_NAMES[self.mode])
            return -1
        if c.is_nil:
            gp = getg()
            if gp.kind != G_ASYNC:
                # aio hook: an asyncio task blocks until it is cancelled
                if self.aiog is None:
                    self.aiog = aio_waiter_g()
                if self.aiog is None:
                    raise RuntimeError("awaiting a channel operation outside a goroutine")
                self.aiog.park_claim = 0
                sudog_init(&self.sg, self.aiog, c, 0)
                self.state = 1
                out[0] = aio_park(self.aiog, NULL, NULL)
                return 1
            if self.suspect:
                # woken by deadlock detection and nothing changed: a nil
                # channel blocks forever, so this is the deadlock (not a
                # park that checkdead would wake again and again)
                raise DeadlockError("all goroutines are asleep - deadlock!")
            gp.park_claim = 0
            sudog_init(&self.sg, gp, c, 0)
            gopark_async(gp, NULL, NULL,
                         W_CHAN_NIL_SEND if self.mode == MODE_SEND else W_CHAN_NIL, None)
            self.state = 1
            out[0] = PARK_PTR
            return 1
        chan_lock(c)
        if self.mode == MODE_SEND:
            r = try_send_locked(c, self.value)
            if r == 1:
                self.value = None
                self.finished()
                out[0] = NULL
                return 0
        else:
            r = try_recv_locked(c, &v)
            if r == 1:
                return self.finish_recv(v, out)
        # park
        gp = getg_or_none()
        if gp is None or gp.kind != G_ASYNC:
            # aio hook: an asyncio task waits on a pseudo-G, made with no
            # lock held (it allocates): unlock, make it, start over
            if self.aiog is None:
                chan_unlock(c)
                self.aiog = aio_waiter_g()
                if self.aiog is None:
                    raise RuntimeError("await on a channel operation outside a gocore goroutine "
                                       "or asyncio task; plain threads use blocking_send/blocking_recv")
                return self.step(out)
            gp = self.aiog
        if self.suspect:
            chan_unlock(c)
            raise DeadlockError("all goroutines are asleep - deadlock!")
        gp.park_claim = 0
        sudog_init(&self.sg, gp, c, 0)
        if self.mode == MODE_SEND:
            Py_INCREF(self.value)             # the sudog's own reference
            self.sg.elem = <PyObject *>self.value
            waitq_enqueue(&c.sendq, &self.sg)
        else:
            waitq_enqueue(&c.recvq, &self.sg)
        self.state = 1
        if gp.kind == G_AIO:        # aio hook
            out[0] = aio_park(gp, unlock_one, &c.lock)
            return 1
        gopark_async(gp, unlock_one, &c.lock, W_CHAN_SEND if self.mode == MODE_SEND else W_CHAN_RECV, self)
        out[0] = PARK_PTR
        return 1

    cdef int resume(self, PyObject **out) except -1:
        cdef G gp = <G>self.sg.g
        if ld_acq_u32(self.sg.claim) == 0:
            # stepped by hand (next()) while its goroutine is still parked:
            # only that goroutine, once woken, may resume it
            return gc_parked_elsewhere(CHANOP_NAMES[self.mode], gp.goid)
        self.state = 2
        if gp.wake_flags != WAKE_NORMAL:
            self.cancel()
            if check_wake(gp):
                self.state = 0
                self.suspect = deadlock_suspect(gp)
                return self.step(out)
        if self.mode == MODE_SEND:
            self.value = None
            if not self.sg.success:
                Py_XDECREF(self.sg.elem)
                self.sg.elem = NULL
                self.finished()
                raise ChanClosedError("send on closed channel")
            self.finished()
            out[0] = NULL
            return 0
        if self.sg.success:
            return self.finish_recv(self.sg.elem, out)   # moves it: sg.elem is dead from here
        return self.finish_recv(NULL, out)

    cdef inline void finished(self) noexcept:
        """The operation is over (its waiter, if any, is unlinked and holds
        no value; a send has dropped its value): release the channel now
        rather than when the object is reused, and offer it to the cache."""
        self.state = 2
        self.c = None
        self.aiog = None            # aio hook
        if GC_OP_CACHE:
            gc_cache_push(&gc_op_cache, <PyObject *>self)

    cdef inline int finish_recv(self, PyObject *v, PyObject **out) except -1:
        cdef object res
        self.finished()
        if self.mode == MODE_RANGE:
            if v == NULL:
                raise StopAsyncIteration
            out[0] = v
            return 0
        res = wrap_recv(v, self.mode)
        if res is None:
            out[0] = NULL
            return 0
        Py_INCREF(res)
        out[0] = <PyObject *>res
        return 0

    def _cancel(self):
        self.cancel()

    def close(self):
        """The awaiting coroutine is closed while suspended on us (teardown
        of a goroutine readied but not resumed yet): unlink the waiter if
        still queued, and drop a value a sender handed over."""
        if self.state != 1:
            return
        if self.aiog is not None:   # aio hook: take the pseudo-G back (or wait for its waker)
            aio_withdraw(self.aiog)
            aio_unpark(self.aiog)
        self.cancel()
        self.state = 2
        if self.sg.elem != NULL:
            Py_DECREF(<object>self.sg.elem)
            self.sg.elem = NULL
        if self.aiog is None:
            goroutine_closed_outside(self.sg.g)     # closed from outside: the goroutine ends
        self.aiog = None
        self.c = None
        self.value = None

    def throw(self, typ, val=None, tb=None):
        """coro.throw() while the coroutine is suspended on us: as close()
        (issue 14 item 17: the goroutine ends), then the exception goes on
        into the coroutine."""
        if self.state == 1 and self.aiog is not None:
            return self.aio_throw(typ, val, tb)     # aio hook
        self.close()
        raise thrown_exception(typ, val, tb)

    cdef object aio_throw(self, typ, val, tb):
        """aio hook: an asyncio task waiting on us is cancelled (any exception
        thrown in). If it takes its pseudo-G back, nothing was exchanged:
        unlink and raise. If a waker won first, the value was moved (a
        receive got one, a send delivered its own): complete with it -
        the exception is absorbed rather than the value lost."""
        cdef PyObject *out = NULL
        cdef G gp = self.aiog
        if aio_withdraw(gp):
            aio_unpark(gp)
            self.cancel()
            self.value = None
            self.finished()
            raise thrown_exception(typ, val, tb)
        aio_unpark(gp)
        self.resume(&out)            # claim is 1 and the results are visible: completes
        if out == NULL:
            raise StopIteration
        res = <object>out
        Py_DECREF(res)
        raise StopIteration(res)

    cdef void cancel(self):
        """Unlink the waiter if still queued (teardown, deadlock wake)."""
        cdef Chan c = self.c
        if self.state != 1 and self.state != 2:
            return
        if c is None or c.is_nil:
            return
        chan_lock(c)
        if self.sg.linked:
            if self.mode == MODE_SEND:
                waitq_unlink(&c.sendq, &self.sg)
            else:
                waitq_unlink(&c.recvq, &self.sg)
        chan_unlock(c)
        if self.mode == MODE_SEND and self.sg.elem != NULL:
            Py_DECREF(<object>self.sg.elem)
            self.sg.elem = NULL


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
     * (gc_cache_push, from finished(): the op has already dropped its
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


# ---------------------------------------------------------------- blocking (threads)

cdef object blocking_send_impl(Chan c, object v):
    cdef G gp
    cdef sudog sg
    cdef bint suspect = 0
    check_goexit()           # a sync goroutine that outlived its run(): GoroutineExit
    if c.is_nil:
        block_forever_thread(W_CHAN_NIL_SEND)
    while True:
        chan_lock(c)
        if try_send_locked(c, v) == 1:
            return None
        if on_async_g():
            chan_unlock(c)
            raise _no_await_error("blocking_send()", "await ch.send(v)")
        if suspect:
            chan_unlock(c)
            raise DeadlockError("all goroutines are asleep - deadlock!")
        gp = getg()
        gp.park_claim = 0
        sudog_init(&sg, gp, c, 0)
        Py_INCREF(v)
        sg.elem = <PyObject *>v
        waitq_enqueue(&c.sendq, &sg)
        gopark_thread(gp, unlock_one, &c.lock, W_CHAN_SEND, None, -1)
        if gp.wake_flags != WAKE_NORMAL:
            thread_unlink(c, &sg, &c.sendq)
            Py_XDECREF(sg.elem)
            if check_wake(gp):
                suspect = deadlock_suspect(gp)
                continue
        if not sg.success:
            Py_XDECREF(sg.elem)
            raise ChanClosedError("send on closed channel")
        return None


cdef object blocking_recv_impl(Chan c, int mode):
    cdef G gp
    cdef sudog sg
    cdef PyObject *v = NULL
    cdef bint suspect = 0
    check_goexit()           # a sync goroutine that outlived its run(): GoroutineExit
    if c.is_nil:
        block_forever_thread(W_CHAN_NIL)
    while True:
        chan_lock(c)
        if try_recv_locked(c, &v) == 1:
            return wrap_recv(v, mode)
        if on_async_g():
            chan_unlock(c)
            raise _no_await_error("blocking_recv()", "await ch.recv()")
        if suspect:
            chan_unlock(c)
            raise DeadlockError("all goroutines are asleep - deadlock!")
        gp = getg()
        gp.park_claim = 0
        sudog_init(&sg, gp, c, 0)
        waitq_enqueue(&c.recvq, &sg)
        gopark_thread(gp, unlock_one, &c.lock, W_CHAN_RECV, None, -1)
        if gp.wake_flags != WAKE_NORMAL:
            thread_unlink(c, &sg, &c.recvq)
            Py_XDECREF(sg.elem)
            if check_wake(gp):
                suspect = deadlock_suspect(gp)
                continue
        return wrap_recv(sg.elem if sg.success else NULL, mode)


cdef void thread_unlink(Chan c, sudog *sg, waitq *q) noexcept:
    chan_lock(c)
    if sg.linked:
        waitq_unlink(q, sg)
    chan_unlock(c)


cdef void block_forever_thread(int reason) except *:
    """A thread blocks on a nil channel: only deadlock detection or the
    runtime's teardown can end this."""
    if on_async_g():
        raise _no_await_error("a blocking operation on a nil channel", "await")
    cdef G gp = getg()
    gp.park_claim = 0
    while True:
        gopark_thread(gp, NULL, NULL, reason, None, -1)
        if gp.wake_flags != WAKE_NORMAL and check_wake(gp) and deadlock_suspect(gp):
            raise DeadlockError("all goroutines are asleep - deadlock!")


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
        if self.is_nil:
            raise ChanClosedError("close of nil channel")
        chan_lock(self)
        if self.closed:
            chan_unlock(self)
            raise ChanClosedError("close of closed channel")
        self.closed = 1
        # collect every waiter we win, linked through sg.next (we are their
        # only owner once dequeued), and ready them after unlocking
        while True:
            sg = waitq_dequeue(&self.recvq)
            if sg == NULL:
                break
            sg.success = 0
            sg.next = ready
            ready = sg
        while True:
            sg = waitq_dequeue(&self.sendq)
            if sg == NULL:
                break
            sg.success = 0
            sg.next = ready
            ready = sg
        chan_unlock(self)
        while ready != NULL:
            sg = ready
            ready = sg.next          # read before goready: sg may be freed after
            sg.next = NULL
            goready(<G>sg.g)

    def try_send(self, v):
        """Send without blocking: True if sent, False if it would block.
        Raises ChanClosedError on a closed channel."""
        if self.is_nil:
            return False
        chan_lock(self)
        if try_send_locked(self, v) == 1:
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
        if try_recv_locked(self, &v) == 1:
            return wrap_recv(v, MODE_RECV_OK)
        chan_unlock(self)
        return None

    def blocking_send(self, v):
        """send() for plain threads and sync goroutines: parks the thread."""
        return blocking_send_impl(self, v)

    def blocking_recv(self):
        """recv() for plain threads and sync goroutines."""
        return blocking_recv_impl(self, MODE_RECV)

    def blocking_recv_ok(self):
        """recv_ok() for plain threads and sync goroutines."""
        return blocking_recv_impl(self, MODE_RECV_OK)

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

    def __aiter__(self):
        return _ChanRange.__new__(_ChanRange, self)

    def __iter__(self):
        """`for v in ch` from threads and sync goroutines: blocking receives
        until the channel is closed and drained."""
        cdef PyObject *v = NULL
        while True:
            v = NULL
            t = blocking_recv_impl(self, MODE_RECV_OK)
            if not t[1]:
                return
            yield t[0]

    def __repr__(self):
        if self.is_nil:
            return "<gocore.nilchan>"
        return f"<gocore.Chan cap={self.dataqsiz} len={self.qcount}{' closed' if self.closed else ''}>"

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


cdef struct _SelectLocks:
    gc_mutex **locks
    int32_t n

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
    cdef G aiog                   # aio hook: an asyncio task's pseudo-G (owned) while it waits, else None
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
            return <object>out      # aio hook: PARK, or an asyncio task's future
        res = <object>out
        Py_DECREF(res)
        raise StopIteration(res)

    cdef int step(self, PyObject **out) except -1:
        """0: done, *out an owned (index, value); 1: parked (*out = PARK)."""
        if self.state != 0:
            if self.state != 1:
                gc_awaited_again(b"select()")
                return -1
            if ld_acq_u32(&self.gp.park_claim) == 0:
                # stepped by hand while its goroutine is still parked
                return gc_parked_elsewhere(b"select()", self.gp.goid)
            if self.pass3() == 1:
                self.state = 0
                self.suspect = deadlock_suspect(self.gp)
        if self.state == 0:
            if self.pass1(True) == 1:
                # aio hook: an asyncio task yields its pseudo-G's future
                out[0] = PARK_PTR if self.aiog is None else <PyObject *>self.aiog.coro
                return 1
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
        self.aiog = None              # aio hook
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

    cdef int pass1(self, bint async_mode) except -1:
        """Passes 1 and 2. 0: done (self.result set); 1: parked (async);
        2: the thread must park (channels still locked)."""
        cdef int32_t n = self.ncases
        cdef int32_t i, j, k, t
        cdef int32_t *order = self.order
        cdef Chan c
        cdef PyObject *v
        cdef G gp
        cdef int r
        self.gp = None          # a retry after a deadlock wake-up kept it: this attempt may raise
        for i in range(n):
            order[i] = i
        for i in range(n - 1, 0, -1):       # Fisher-Yates: uniform among ready cases
            j = fastrand_n(i + 1)
            t = order[i]; order[i] = order[j]; order[j] = t
        # Optimistic pass (crossbeam's idea): try each case under its own
        # channel's lock, in the random order. A case found ready completes
        # at that instant, exactly as it would under all the locks, and the
        # common ready select takes one lock instead of all of them.
        for k in range(n):
            i = order[k]
            if i == self.default_index:
                continue
            c = <Chan>self.cs[i].c
            if c.is_nil:
                continue
            chan_lock(c)
            if self.cs[i].kind == CASE_SEND:
                if try_send_locked(c, <object>self.cs[i].v) == 1:
                    self.result = (i, None)
                    return 0
            else:
                v = NULL
                if try_recv_locked(c, &v) == 1:
                    self.result = (i, wrap_recv(v, MODE_RECV_OK if self.cs[i].kind == CASE_RECV_OK else MODE_RECV))
                    return 0
            chan_unlock(c)
        if self.default_index >= 0:
            self.result = (self.default_index, None)
            return 0
        # Nothing ready: lock every channel (address order) and poll again,
        # since a case may have become ready meanwhile; then enqueue.
        if self.nlocks < 0:
            self.compute_lockorder()
        self.lock_all()
        for k in range(n):
            i = order[k]
            if i == self.default_index:
                continue
            c = <Chan>self.cs[i].c
            if c.is_nil:
                continue
            if self.cs[i].kind == CASE_SEND:
                if try_send_locked_sel(self, c, <object>self.cs[i].v) == 1:
                    self.result = (i, None)
                    return 0
            else:
                v = NULL
                if try_recv_locked_sel(self, c, &v) == 1:
                    self.result = (i, wrap_recv(v, MODE_RECV_OK if self.cs[i].kind == CASE_RECV_OK else MODE_RECV))
                    return 0
        # pass 2: enqueue on every case's channel, then park
        if self.suspect:
            self.unlock_all()
            raise DeadlockError("all goroutines are asleep - deadlock!")
        if async_mode:
            gp = getg_or_none()
            if gp is None or gp.kind != G_ASYNC:
                # aio hook: an asyncio task waits on a pseudo-G, made with no
                # lock held (it allocates): unlock, make it, start over
                if self.aiog is None:
                    self.unlock_all()
                    self.aiog = aio_waiter_g()
                    if self.aiog is None:
                        raise RuntimeError("await select() outside a gocore goroutine or asyncio "
                                           "task; plain threads use blocking_select()")
                    return self.pass1(True)
                gp = self.aiog
        else:
            if on_async_g():
                self.unlock_all()
                raise _no_await_error("blocking_select()", "await select(...)")
            gp = getg()
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
                waitq_enqueue(&c.sendq, &self.sgs[i])
            else:
                waitq_enqueue(&c.recvq, &self.sgs[i])
        self.state = 1
        if async_mode and gp.kind == G_AIO:      # aio hook
            aio_park(gp, unlock_select, <void *>&self.lockset)
            return 1
        if async_mode:
            gopark_async(gp, unlock_select, <void *>&self.lockset,
                         W_SELECT if self.nlocks > 0 else W_SELECT_NO_CASES, self)
            return 1
        return 2

    cdef int pass3(self) except -1:
        """After the wake-up: unlink the losing waiters, take the winner's
        result. Returns 1 if the select must start over (see check_wake)."""
        cdef int32_t i, win = -1
        cdef Chan c
        cdef sudog *sg
        cdef G gp = self.gp
        self.state = 2
        self.lock_all()
        for i in range(self.ncases):
            sg = &self.sgs[i]
            if sg.c == NULL:
                continue
            if sg.linked:
                c = <Chan>sg.c
                waitq_unlink(&c.sendq if self.cs[i].kind == CASE_SEND else &c.recvq, sg)
            if sg.fired:
                win = i
        self.unlock_all()
        self.gp = None
        # drop the values of send cases that did not fire (or fired by close)
        for i in range(self.ncases):
            sg = &self.sgs[i]
            if sg.c != NULL and self.cs[i].kind == CASE_SEND and sg.elem != NULL:
                Py_DECREF(<object>sg.elem)
                sg.elem = NULL
        if gp.wake_flags != WAKE_NORMAL:
            if win >= 0 and self.sgs[win].elem != NULL:
                Py_DECREF(<object>self.sgs[win].elem)
                self.sgs[win].elem = NULL
            if check_wake(gp):
                for i in range(self.ncases):
                    self.sgs[i].c = NULL
                    self.sgs[i].linked = 0
                    self.sgs[i].fired = 0
                self.gp = gp
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

    def close(self):
        """The awaiting coroutine is closed while suspended on us: teardown
        of a goroutine that a waker readied but that never ran again. The
        waiters of the cases that did not fire are still linked into their
        channels and point into this object (cached, then reused or freed):
        unlink them, drop the values we hold and the G."""
        if self.state == 1:
            if self.aiog is not None:   # aio hook: take the pseudo-G back (or wait for its waker)
                aio_withdraw(self.aiog)
                aio_unpark(self.aiog)
            self.cancel()
            self.state = 2
            if self.gp is not None and self.aiog is None:
                goroutine_closed_outside(<PyObject *>self.gp)   # closed from outside: the goroutine ends
        self.gp = None
        self.aiog = None

    def throw(self, typ, val=None, tb=None):
        """coro.throw() while the coroutine is suspended on us: as close()
        (issue 14 item 17: the goroutine ends), then the exception goes on
        into the coroutine."""
        if self.state == 1 and self.aiog is not None:
            return self.aio_throw(typ, val, tb)     # aio hook
        self.close()
        raise thrown_exception(typ, val, tb)

    cdef object aio_throw(self, typ, val, tb):
        """aio hook: an asyncio task waiting in select is cancelled: as
        _ChanOp.aio_throw - withdrawn, or completed with the case that
        fired (its value is not lost)."""
        cdef G gp = self.aiog
        if aio_withdraw(gp):
            aio_unpark(gp)
            self.cancel()
            self.finished()
            raise thrown_exception(typ, val, tb)
        aio_unpark(gp)
        self.pass3()                 # the winner's result (or its ChanClosedError)
        res = self.result
        self.result = None
        self.finished()
        raise StopIteration(res)

    cdef void cancel(self):
        cdef int32_t i
        cdef sudog *sg
        cdef Chan c
        if self.state != 1:
            return
        self.lock_all()
        for i in range(self.ncases):
            sg = &self.sgs[i]
            if sg.c != NULL and sg.linked:
                c = <Chan>sg.c
                waitq_unlink(&c.sendq if self.cs[i].kind == CASE_SEND else &c.recvq, sg)
        self.unlock_all()
        for i in range(self.ncases):
            if self.sgs[i].c != NULL and self.sgs[i].elem != NULL:
                Py_DECREF(<object>self.sgs[i].elem)
                self.sgs[i].elem = NULL


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


cdef inline int try_send_locked_sel(_Select s, Chan c, object v) except -1:
    """try_send_locked for select: every channel of the select is locked;
    on success all are released here."""
    cdef sudog *sg
    cdef PyObject *old
    if c.closed:
        s.unlock_all()
        raise ChanClosedError("send on closed channel")
    sg = waitq_dequeue(&c.recvq)
    if sg != NULL:
        Py_INCREF(v)
        sg.elem = <PyObject *>v
        sg.success = 1
        s.unlock_all()
        goready(<G>sg.g)
        return 1
    if c.qcount < c.dataqsiz:
        Py_INCREF(v)
        old = PyList_GET_ITEM(c.buf, c.sendx)
        PyList_SET_ITEM(c.buf, c.sendx, v)
        c.sendx += 1
        if c.sendx == c.dataqsiz:
            c.sendx = 0
        c.qcount += 1
        s.unlock_all()
        Py_DECREF(<object>old)
        return 1
    return 0


cdef inline int try_recv_locked_sel(_Select s, Chan c, PyObject **out) except -1:
    cdef sudog *sg
    cdef PyObject *v
    sg = waitq_dequeue(&c.sendq)
    if sg != NULL:
        if c.dataqsiz == 0:
            out[0] = sg.elem
        else:
            out[0] = PyList_GET_ITEM(c.buf, c.recvx)
            PyList_SET_ITEM(c.buf, c.recvx, <object>sg.elem)
            c.recvx += 1
            if c.recvx == c.dataqsiz:
                c.recvx = 0
            c.sendx = c.recvx
        sg.elem = NULL
        sg.success = 1
        s.unlock_all()
        goready(<G>sg.g)
        return 1
    if c.qcount > 0:
        v = PyList_GET_ITEM(c.buf, c.recvx)
        Py_INCREF(None)
        PyList_SET_ITEM(c.buf, c.recvx, None)
        c.recvx += 1
        if c.recvx == c.dataqsiz:
            c.recvx = 0
        c.qcount -= 1
        s.unlock_all()
        out[0] = v
        return 1
    if c.closed:
        s.unlock_all()
        out[0] = NULL
        return 1
    return 0


cdef inline void unlock_locks(gc_mutex **locks, int32_t n) noexcept nogil:
    cdef int32_t i
    for i in range(n - 1, -1, -1):
        gc_mutex_unlock(locks[i])


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
        s.sgs[i].linked = 0
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
    """select() for plain threads and sync goroutines: parks the thread."""
    cdef _Select s
    cdef int r
    cdef G gp
    if not cases:
        raise TypeError("blocking_select() needs at least one case")
    check_goexit()           # a sync goroutine that outlived its run(): GoroutineExit
    s = build_select(cases)
    s.awaited = 1                 # used here, never awaited
    while True:
        r = s.pass1(False)
        if r == 0:
            break
        gp = s.gp
        gopark_thread(gp, unlock_select, <void *>&s.lockset,
                      W_SELECT if s.nlocks > 0 else W_SELECT_NO_CASES, s, -1)
        if s.pass3() == 0:
            break
        s.state = 0
        s.suspect = deadlock_suspect(s.gp)
    res = s.result
    s.result = None
    s.finished()
    return res


# Internal types: only this module builds them (csrc/gocore_pytype.h).
gc_internal_type(_ChanOp)
gc_internal_type(_ChanRange)
gc_internal_type(_Select)
