# gocore/_aiowait.pxi - asyncio tasks wait on gocore's channels, select and
# sync primitives (DESIGN.md §6, direction 2). Included by _sched.pyx.
#
# An asyncio task that must wait in `await ch.recv()` (send, recv_ok,
# select, async for, wg.wait, a Mutex or Semaphore) cannot park an M: it
# runs on some event loop's thread, which must keep running. Instead the
# operation gets a pseudo-G of kind G_AIO, one per waiting operation, and
# runs the very protocol of a parked goroutine (_sched.pxd): park_claim = 0
# and waiter records linked under the primitive's lock; aio_park marks the
# G waiting and releases that lock; a waker wins the G with
# cas(park_claim, 0, 1), writes its result into the record and calls
# goready. What differs is the park itself: the awaitable yields an
# asyncio future to the task (which suspends on it, its loop running on),
# and goready of a G_AIO G (aio_ready) touches no run queue: it resolves
# that future on the loop's thread.
#
# The hand-off to the loop (per loop, an _AioHub):
#   * on the loop's own thread (two tasks of one loop, the common case)
#     aio_ready sets the future's result directly, as asyncio.Queue does;
#   * from any other thread (a goroutine's M, another loop, a plain
#     thread) it pushes the G on the hub's MPSC list - a Treiber stack
#     through G.allnext (aio Gs are never on allgs), CAS by wakers, one
#     xchg by the loop - and, if the list was empty, writes the hub's
#     eventfd, which the loop watches with add_reader. The loop's _drain
#     reads the eventfd, then takes the whole list and resolves each
#     future. A waker thus needs no Python call and no lock: it can be an
#     M between goroutines. Lost wake-ups: a push onto an empty list is
#     followed by a write; the drain reads (clears) the eventfd before it
#     takes the list, so every push is seen by a drain that runs after its
#     write, or by the one that took it along with an earlier push.
#
# References. An aio G is owned by its operation (the awaitable's `aiog`
# field) from aio_waiter_g until the operation ends. The parked state owns
# one more (R_park, taken by aio_park) which, as for a goroutine, passes to
# whoever wins park_claim: a waker's goready hands it to the hub's list (or
# uses it for the direct hand-off) and the drain drops it; the operation
# itself, withdrawing (aio_withdraw wins), drops it. gp.coro holds the
# future (written and read on the loop's thread only); gp.fn the hub.
#
# Cancellation (task.cancel(), asyncio.timeout): the awaitable's throw()
# tries to take its own G back with the same CAS (as deadlock detection
# and teardown do). If it wins, no waker has touched the record and none
# ever will (wakers skip claimed waiters): it unlinks the record and the
# exception goes on - nothing was exchanged. If a waker won first, the
# exchange has happened (or is being written): aio_withdraw waits until
# that waker's goready (status G_RUNNABLE, a short lock-free window) and
# the operation completes with its result instead of losing it; channels
# then absorb the cancellation (see docs/asyncio.md), sync primitives give
# back what they were handed and raise.
#
# Deadlock detection: aio Gs are counted nowhere (not nmblocked, not
# nthreadparked, not allgs). A thread running an event loop is a plain
# thread that can always make progress: plain_threads_running counts it
# as running (gocore.aio's own loop thread is counted by aio_pending).

from cpython.weakref cimport PyWeakref_NewRef

from gocore._includes.aiowait cimport (gc_aio_eventfd, gc_aio_kick, gc_aio_clear, gc_aio_close,
                                       gc_aio_yield)     # csrc/gocore_aiowait.h


@cython.final
cdef class _AioHub:
    """One event loop's wake-up channel (see above). `head`: the woken aio
    Gs not yet drained, each entry owning one reference (R_park); pushed
    by CAS from any thread, taken by xchg on the loop's thread. `efd`: the
    eventfd watched by the loop, open until the hub is freed (every G on
    the list holds the hub through gp.fn, so a waker never writes to a
    closed descriptor). `ident`: the thread that last parked a waiter here
    (atomic; a hint that aio_ready confirms with asyncio's running loop).
    `loopref`: a weak reference (the registry maps loop -> hub)."""
    cdef void *head
    cdef int efd
    cdef int64_t ident
    cdef object loopref

    def __cinit__(self):
        self.efd = -1

    def __dealloc__(self):
        if self.efd >= 0:
            gc_aio_close(self.efd)
            self.efd = -1

    def _drain(self):
        """The loop's reader callback: resolve the futures of every G
        pushed since the last drain, oldest first."""
        cdef PyObject *p
        cdef PyObject *rev = NULL
        cdef PyObject *nxt
        cdef G gp
        gc_aio_clear(self.efd)                  # before taking the list: see the essay above
        p = <PyObject *>xchg_ptr(&self.head, NULL)
        while p != NULL:                        # the stack is newest first: reverse it
            nxt = (<G>p).allnext
            (<G>p).allnext = rev
            rev = p
            p = nxt
        while rev != NULL:
            gp = <G>rev                         # a new reference for the loop body
            rev = gp.allnext
            gp.allnext = NULL
            Py_DECREF(gp)                       # R_park, which the list owned (`gp` keeps it alive)
            aio_resolve(gp)


cdef inline void aio_resolve(G gp) noexcept:
    """Loop thread. Wake the task waiting on gp's future (if it still waits:
    a cancelled future, or an operation that has finished meanwhile, has
    nothing to wake)."""
    fut = gp.coro
    if fut is not None and not fut.done():
        fut.set_result(None)            # (an error - a closed loop - is reported as unraisable)


cdef object _aio_lock = threading.Lock()      # guards _aio_hubs and the first _aio_running
cdef object _aio_hubs = None                   # under _aio_lock: WeakKeyDictionary loop -> hub (dict for loops without weakrefs)
cdef object _aio_running = None                # asyncio's _get_running_loop, once asyncio is imported
cdef object _aio_tls = threading.local()       # .hub: this thread's last hub (a cache)


cdef _AioHub aio_hub_for(object loop):
    """Requires GIL; on loop's thread, loop running. The loop's hub, made
    (eventfd registered with add_reader) on first use."""
    global _aio_hubs
    cdef _AioHub hub
    with _aio_lock:
        if _aio_hubs is None:
            import weakref
            _aio_hubs = weakref.WeakKeyDictionary()
        try:
            hub = _aio_hubs.get(loop)
        except TypeError:                      # not weakly referenceable
            hub = None
        if hub is not None:
            return hub
        hub = _AioHub.__new__(_AioHub)
        hub.efd = gc_aio_eventfd()
        if hub.efd < 0:
            raise OSError("gocore: eventfd() failed for an asyncio waiter")
        try:
            hub.loopref = PyWeakref_NewRef(loop, None)
        except TypeError:
            raise TypeError(f"gocore: the event loop {type(loop).__name__} does not support weak "
                            "references, which gocore's asyncio waiters need")
        loop.add_reader(hub.efd, hub._drain)
        _aio_hubs[loop] = hub
        return hub


cdef G aio_waiter_g():
    """Requires GIL; call holding no lock (it allocates). A fresh G_AIO G,
    its future armed, for the asyncio task running in this thread; None if
    no asyncio event loop runs in this thread."""
    global _aio_running
    cdef _AioHub hub
    cdef G gp
    get = _aio_running
    if get is None:
        aio_mod = sys.modules.get("asyncio")
        if aio_mod is None:
            return None                        # asyncio never imported: no loop can run
        with _aio_lock:
            if _aio_running is None:
                _aio_running = aio_mod.events._get_running_loop
            get = _aio_running
    loop = get()
    if loop is None:
        return None
    hub = getattr(_aio_tls, "hub", None)
    if hub is None or hub.loopref() is not loop:
        hub = aio_hub_for(loop)
        _aio_tls.hub = hub
    st_rel_i64(&hub.ident, <int64_t>PyThread_get_thread_ident())
    gp = G.__new__(G)
    gp.kind = G_AIO
    gp.status = G_RUNNING
    gp.fn = hub
    fut = loop.create_future()
    fut._asyncio_future_blocking = True        # what the task expects of a yielded future
    gp.coro = fut
    return gp


cdef int aio_rearm(G gp) except -1:
    """Requires GIL; call holding no lock. Before gp parks again (a Mutex
    waiter woken in normal mode competes once more): a fresh future."""
    fut = gp.coro
    if fut is not None and not fut.done():
        return 0
    loop = (<_AioHub>gp.fn).loopref()
    if loop is None:
        raise RuntimeError("gocore: the asyncio event loop of this wait is gone")
    fut = loop.create_future()
    fut._asyncio_future_blocking = True
    gp.coro = fut
    return 0


cdef PyObject *aio_park(G gp, void (*unlockf)(void *) noexcept nogil, void *arg) noexcept:
    """Requires GIL; caller holds what unlockf releases, gp.park_claim is 0
    and gp's waiter records are linked. The asyncio side of gopark: take
    R_park, mark gp waiting (then a waker may claim it), release the lock.
    Returns the future the awaitable yields to its task (borrowed: gp owns
    it)."""
    Py_INCREF(gp)                              # R_park (see above)
    gp.waitsince_ns = nanotime_coarse()
    gp.wake_flags = WAKE_NORMAL
    st_rel_i32(&gp.status, G_WAITING)
    if unlockf != NULL:
        unlockf(arg)
    return <PyObject *>gp.coro


cdef void aio_ready(G gp) noexcept:
    """goready for a G_AIO G (any thread; Requires GIL or an attached thread
    state; no lock held; the caller won park_claim and so holds R_park).
    After the status store the operation may read the waker's results and
    end; R_park keeps gp (and its hub) alive until we are done."""
    cdef _AioHub hub = <_AioHub>gp.fn
    cdef void *old
    st_rel_i32(&gp.status, G_RUNNABLE)
    if <int64_t>PyThread_get_thread_ident() == ld_acq_i64(&hub.ident) and aio_on_loop_thread(hub):
        aio_resolve(gp)                        # two tasks of one loop: no trip through the eventfd
        Py_DECREF(gp)                          # R_park
        return
    while True:
        old = ld_acq_ptr(&hub.head)
        gp.allnext = <PyObject *>old
        if cas_ptr(&hub.head, old, <void *>gp):
            break
    if old == NULL:
        gc_aio_kick(hub.efd)


cdef bint aio_on_loop_thread(_AioHub hub) noexcept:
    """Is hub's loop the one running in this thread right now?"""
    try:
        return _aio_running is not None and _aio_running() is hub.loopref()
    except BaseException:
        return False


cdef int aio_withdraw(G gp) noexcept:
    """Requires GIL. The operation parked on gp gives up (its task was
    cancelled, its coroutine closed). 1: it won gp back - no waker has
    touched its records, none will (they skip claimed waiters); R_park is
    dropped here and the caller unlinks its records. 0: a waker won first;
    returns once that waker has called goready, so the results it wrote
    are visible (the wait - between a waker's CAS and its goready, a few
    instructions unless it readies others first - is spent without the
    GIL)."""
    if cas_u32(&gp.park_claim, 0, 1):
        st_rel_i32(&gp.status, G_RUNNING)
        Py_DECREF(gp)                          # R_park: the operation's own reference remains
        return 1
    if ld_acq_i32(&gp.status) != G_RUNNABLE:
        with nogil:
            while ld_acq_i32(&gp.status) != G_RUNNABLE:
                gc_aio_yield()
    return 0


cdef void aio_unpark(G gp) noexcept:
    """Requires GIL; loop thread. The operation is done with gp's wait:
    drop its future (a drain still to come finds nothing to resolve)."""
    gp.coro = None
