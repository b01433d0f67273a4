# gocore/_sched_g.pxi - goroutines: the G object, the allgs list, the running
# G, and the park/ready protocol's scheduler half (gopark_async,
# gopark_thread, goready). `include`d by _sched.pyx.
#
# Owns: allgs (allglock; the list holds one reference per live G), the
# thread-local THREAD G of each plain thread (_thread_gs), and every G's
# status transitions outside the M loop.
# Invariants (the protocol itself is written in _sched.pxd, "Park/ready"):
#   * G.status is atomic: stored with st_rel_i32 (st_rlx_i32 before the G
#     is shared), read with ld_acq_i32 by any thread (dump, teardown,
#     checkdead through maing).
#   * exactly one goready per gopark: the caller of goready has won
#     park_claim (0 -> 1) and the G is G_WAITING (asserted).
#   * a parking G's reference: an ASYNC G's passes to "the parked state"
#     when the M loop marks it G_WAITING (execute); a THREAD/SYNC G keeps
#     running on its own thread, so nothing moves.
#   * gopark_thread runs checkdead when main or a sync goroutine parks: its
#     M stops running goroutines there (see _sched_deadlock.pxi).

# ---------------------------------------------------------------- G

cdef gc_mutex allglock              # guards the allgs list
cdef PyObject *allgs_head = NULL    # under allglock; the list owns a reference per G

cdef object _thread_gs = threading.local()


@cython.no_gc
@cython.freelist(256)
cdef class G:
    def __repr__(self):
        return f"<goroutine {self.goid} {('async', 'sync', 'thread', 'aio')[self.kind]}>"

gc_internal_type(G)                 # only newg() builds Gs


cdef inline void allgs_add(G gp) noexcept:
    global allgs_head
    Py_INCREF(gp)
    gc_mutex_lock(&allglock)
    gp.allprev = NULL
    gp.allnext = allgs_head
    if allgs_head != NULL:
        (<G>allgs_head).allprev = <PyObject *>gp
    allgs_head = <PyObject *>gp
    gc_mutex_unlock(&allglock)


cdef inline void allgs_remove(G gp) noexcept:
    global allgs_head
    gc_mutex_lock(&allglock)
    if gp.allprev != NULL:
        (<G>gp.allprev).allnext = gp.allnext
    else:
        allgs_head = gp.allnext
    if gp.allnext != NULL:
        (<G>gp.allnext).allprev = gp.allprev
    gp.allnext = gp.allprev = NULL
    gc_mutex_unlock(&allglock)
    Py_DECREF(gp)


def _all_goroutines():
    """A snapshot list of every live G (Requires GIL). References are taken
    under allglock into a C array and the list is built after unlocking:
    nothing that may allocate or release runs under the lock."""
    cdef list out = []
    cdef PyObject *p
    cdef PyObject **snap = NULL
    cdef Py_ssize_t n = 0, cap = 0, i
    while True:
        gc_mutex_lock(&allglock)
        n = 0
        p = allgs_head
        while p != NULL and n < cap:
            Py_INCREF(<object>p)
            snap[n] = p
            n += 1
            p = (<G>p).allnext
        gc_mutex_unlock(&allglock)
        if p == NULL:
            break
        # the array was too small: drop what we took and retry with more room
        for i in range(n):
            Py_DECREF(<object>snap[i])
        cap = cap * 2 + 1024
        free(snap)
        snap = <PyObject **>malloc(cap * sizeof(PyObject *))
        if snap == NULL:
            raise MemoryError()
    for i in range(n):
        out.append(<object>snap[i])
        Py_DECREF(<object>snap[i])
    free(snap)
    return out


cdef G newg(int32_t kind, object fn, tuple args, dict kwargs):
    """An ASYNC G made from a function keeps fn and args and creates its
    coroutine only when it first runs: 100,000 spawned-but-not-started Gs are
    then untracked objects rather than live coroutines that every pass of
    the cyclic GC must walk (measured: 2x on spawn-heavy work)."""
    cdef G gp = G.__new__(G)
    gp.goid = fetch_add_i64(&sched.goidgen, 1) + 1
    gp.kind = kind
    gp.fn = fn
    if kwargs:
        gp.args = (args if args is not None else (), kwargs)
        gp.has_kwargs = 1
    else:
        gp.args = args
    st_rlx_i32(&gp.status, G_RUNNABLE)  # not shared yet: published under allglock or a run queue's release
    if kind != G_THREAD:
        gc_dbg_add(GC_DBG_G_OBJECTS, 1)     # debug: down again in the G's tp_dealloc
    return gp


# ---------------------------------------------------------------- current G

cdef G getg_or_none():
    if gc_tls_g == NULL:
        return None
    return <G>gc_tls_g

cdef bint on_async_g() noexcept:
    return gc_tls_g != NULL and (<G>gc_tls_g).kind == G_ASYNC

cdef G getg():
    """The running G; on a plain thread, that thread's THREAD G."""
    if gc_tls_g != NULL:
        return <G>gc_tls_g
    cdef G gp = getattr(_thread_gs, "g", None)
    if gp is None:
        gp = newg(G_THREAD, None, None, None)
        st_rlx_i32(&gp.status, G_RUNNING)   # not shared yet: others meet it in a waiter list, under its lock
        gp.is_main = threading.current_thread() is threading.main_thread()
        _thread_gs.g = gp
    return gp


# ---------------------------------------------------------------- park / ready

cdef inline gc_p *own_p(gc_m *mp) noexcept nogil:
    """The calling M's P, pinned (pown_acquire) until pown_release; NULL on a
    plain thread, on an M without a P, and on an M left over from an earlier
    run(): its sync goroutine outlived that run, and its P pointer names a
    P that procresize has reset and given to this run's Ms."""
    if mp == NULL:
        return NULL
    if mp.gen != ld_acq_i64(&sched.gen):
        mp.p = NULL          # only this M writes its own stale pointer
        return NULL
    return pown_acquire(mp)


cdef void gopark_async(G gp, void (*unlockf)(void *) noexcept nogil, void *arg,
                       int32_t reason, object w) noexcept:
    """Requires GIL; Caller holds what unlockf releases. Prepares gp (the
    running ASYNC G) to park; the caller then yields PARK to the M loop,
    which marks gp waiting and calls unlockf(arg)."""
    if GOCORE_DEBUG:
        gc_assert_msg(gp.kind == G_ASYNC and gc_tls_g == <PyObject *>gp,
                      b"gopark_async: not the running ASYNC G")
        gc_assert_msg(ld_acq_i32(&gp.status) == G_RUNNING and gp.park_claim == 0,
                      b"gopark_async: G not running, or park_claim not reset to 0")
    gp.unlockf = unlockf
    gp.unlockarg = arg
    gp.waitsince_ns = nanotime_coarse()
    st_rlx_i32(&gp.waitreason, reason)     # atomic: metrics() reads it without a lock
    gp.parkmode = PARK_WAIT
    gp.waiting = w
    gp.wake_flags = WAKE_NORMAL


cdef int gopark_thread(G gp, void (*unlockf)(void *) noexcept nogil, void *arg,
                       int32_t reason, object w, int64_t deadline_ns) except -1:
    """Requires GIL; Caller holds what unlockf releases. Parks the calling
    OS thread (a SYNC or THREAD G) until goready(gp). A SYNC G's M hands its
    P to another M first (Go's entersyscall) and takes one back after
    (exitsyscall). Returns 1 if woken, 0 on deadline_ns timeout (then the
    caller must claim gp itself or wait for the claimer's goready)."""
    cdef gc_m *mp = gc_tls_m
    cdef gc_p *pp = own_p(mp)
    cdef int woken
    cdef bint is_main, queued = 0, readied = 0
    if GOCORE_DEBUG:
        gc_assert_msg(gp.kind != G_ASYNC and ld_acq_i32(&gp.status) == G_RUNNING,
                      b"gopark_thread: an ASYNC G, or a G that is not running")
    gp.waitsince_ns = nanotime_coarse()
    st_rlx_i32(&gp.waitreason, reason)     # atomic: metrics() reads it without a lock
    gp.waiting = w
    gp.wake_flags = WAKE_NORMAL
    note_clear(&gp.note)
    st_rel_i32(&gp.status, G_WAITING)
    if mp != NULL and goexit_self_claim(mp, gp):
        # its run() is over (teardown's GoroutineExit was swallowed, or the
        # G outlived run()): do not sleep, wake at once with WAKE_CLOSE so
        # the caller unlinks its waiter and check_wake raises GoroutineExit
        if pp != NULL:
            pown_release(mp, pp)         # unpin (free-threaded): we keep running in the G
        if unlockf != NULL:
            unlockf(arg)
        return 1
    if gp.kind == G_THREAD and not gp.is_main:
        fetch_add_i32(&nthreadparked, 1)     # goready (exactly one per park) takes it back
        fetch_add_i64(&threadparkseq, 1)
    if mp != NULL:
        # the M (with a P or not: sysmon may have retaken it, or it is left
        # from an earlier run) sleeps in the runtime: checkdead counts it
        # asleep until the goready that wakes it (counting before unlockf:
        # no waker can come first)
        gp.counted_blocked = 1
        fetch_add_i32(&sched.nmblocked, 1)
    if unlockf != NULL:
        unlockf(arg)
    add_rlx_i64(&sched.nparks, 1)
    is_main = gp.is_main
    if is_main and maing.g != <void *>gp:
        set_maing(gp)
    if pp != NULL:
        Py_INCREF(gp)        # for a token, should exitsyscall find no idle P (taken here: no GIL there)
    with nogil:
        if pp != NULL:
            entersyscall_block(mp)       # hands pp on (pinned until then)
        if is_main or mp != NULL:
            # the main goroutine, or a sync goroutine, waits: it may be the
            # last one awake (Go runs checkdead wherever an M stops running
            # Gs; a sync G's M stops here, not in stopm)
            gc_mutex_lock(&sched.lock)
            readied = checkdead()
            if is_main and deadlock_holdoff != 0 and gp.kind == G_THREAD and (deadline_ns < 0 or deadlock_holdoff < deadline_ns):
                deadline_ns = deadlock_holdoff      # no M may be left to re-check: poll
            gc_mutex_unlock(&sched.lock)
            if readied:
                wakep()                  # an async main on the global queue: an M to run it
        woken = note_sleep_until(&gp.note, deadline_ns, nanotime)
        if woken != 1 and is_main and cas_u32(&gp.park_claim, 0, 1):
            gp.wake_flags = WAKE_RECHECK
            woken = 1
        elif woken != 1:
            note_sleep(&gp.note)     # claimed meanwhile: the wake-up is coming
            woken = 1
        if pp != NULL and not exitsyscall(mp):
            # every P is busy: queue gp as a token and park this thread
            # until an M picks the token up and hands its P over (or run()
            # ends); the token's queue reference was taken above
            queued = exitsyscall_park(mp, <void *>gp, &gp.status, &gp.lockedm)
    if pp != NULL:
        if not queued:
            Py_DECREF(gp)                # the token's reference, unused
        pown_enter_g(mp)                 # back inside the G (with a P, unless run() ends)
    if woken == 1:
        st_rel_i32(&gp.status, G_RUNNING)
        pass_inspect_gate()
        # after the gate: a dump that saw us waiting may still be reading
        # it. (A thread's G lives as long as the thread: holding what it
        # last waited on would keep that channel or primitive alive.)
        gp.waiting = None
    return woken


cdef void goready(G gp) noexcept:
    """Any thread; Requires GIL (or an attached thread state). The caller
    has won gp.park_claim. Makes gp runnable: an ASYNC G goes to the current
    P's runnext (or the global queue from a thread without a P); a THREAD or
    SYNC G's thread is woken."""
    cdef gc_m *mp
    cdef gc_p *pp
    cdef int queued
    cdef void *gptr = <void *>gp
    # exactly one goready per gopark: the G is parked and the caller won it
    gc_assert_msg(ld_acq_i32(&gp.status) == G_WAITING,
                  b"goready: G is not parked (G_WAITING): a second goready for one gopark?")
    gc_assert_msg(ld_acq_u32(&gp.park_claim) == 1,
                  b"goready: the caller did not win the G's park_claim")
    mp = gc_tls_m
    if mp != NULL:
        # statistics (metrics()): the M's own counter; relaxed load and
        # store (plain moves, no locked add), atomic for metrics()' reader
        st_rlx_i64(&mp.nunparks, ld_rlx_i64(&mp.nunparks) + 1)
    else:
        add_rlx_i64(&sched.nunparks, 1)
    if gp.kind == G_AIO:         # an asyncio task's wait: wake its loop (_aiowait.pxi)
        aio_ready(gp)
        return
    if gp.kind != G_ASYNC:
        if gp.kind == G_THREAD and not gp.is_main:
            fetch_add_i32(&nthreadparked, -1)   # counted as running from the wake-up on
            fetch_add_i64(&threadparkseq, 1)
        if gp.counted_blocked:
            gp.counted_blocked = 0
            fetch_add_i32(&sched.nmblocked, -1)
        st_rel_i32(&gp.status, G_RUNNING)
        note_wakeup(&gp.note)
        return
    st_rel_i32(&gp.status, G_RUNNABLE)
    mp = gc_tls_m
    pp = own_p(mp)
    if pp != NULL:
        gc_assert_msg(pp.m == <void *>mp,
                      b"goready: putting on a P this M does not own")
        queued = runq_put(pp, gptr, 1, &sched.lock, &sched.gq)
        pown_release(mp, pp)
        if queued and not GC_GIL_BUILD:
            wakep()
    else:
        gc_mutex_lock(&sched.lock)
        globrunq_put(gptr)
        gc_mutex_unlock(&sched.lock)
        wakep()
