# gocore/_sched_deadlock.pxi - deadlock detection.
# `include`d by _sched.pyx: one extension, plain C calls between files.

cdef int32_t nthreadparked = 0     # atomic: plain (THREAD, non-main) Gs parked in gocore
# atomic: bumped on every park and wake-up counted in nthreadparked. Plain
# threads are invisible to the scheduler, so deadlock_suspect's two looks
# (scheduler quiet, no plain thread awake) are one snapshot only if no
# thread parked or woke in between: it compares this before and after.
cdef int64_t threadparkseq = 0
cdef int64_t deadlock_holdoff = 0     # under sched.lock: checkdead is off until this nanotime()
# gocore.aio (asyncio calls). aio_pending, atomic: calls started by
# aio.call/blocking_call whose caller is parked and not yet woken. The aio
# loop thread wakes the caller first and decrements after, so a reader that
# loads aio_pending == 0 (acquire) then sees the wake-up (a queued G, or a
# running count). checkdead and sched_quiet count a pending call as
# progress. aio_thread, atomic: the loop thread's ident (0: none);
# plain_threads_running skips it - its work is what aio_pending counts.
cdef int32_t aio_pending = 0
cdef int64_t aio_thread = 0
cdef int64_t deadlock_backoff = 0

cdef int check_wake(G gp) except -1:
    """Requires GIL. After a parked G wakes: raise what its waker asked for.
    Returns 1 when the caller must retry its operation: deadlock detection
    woke main while plain Python threads (invisible to the scheduler, they
    may still send) are alive - not a deadlock after all."""
    global deadlock_holdoff, deadlock_backoff
    cdef int32_t f = gp.wake_flags
    if f == WAKE_NORMAL:
        gp.deadlock_strikes = 0
        return 0
    gp.wake_flags = WAKE_NORMAL
    if f == WAKE_CLOSE:
        raise GoroutineExit()
    if f == WAKE_RECHECK:
        # the main thread's park was cut short, by a signal among other
        # causes: run Python's handlers now (one may raise, e.g.
        # KeyboardInterrupt), not when the operation completes
        PyErr_CheckSignals()
        return 1
    if f == WAKE_DEADLOCK:
        # Retry the operation first: a plain thread (invisible to checkdead)
        # may have acted between checkdead's claim and now - e.g. parked as
        # a sender on our channel, skipping our claimed waiter. The retry
        # asks deadlock_suspect() whether to raise if it must wait again.
        gp.deadlock_strikes = 1
        return 1
    return 0


cdef int deadlock_suspect(G gp) except -1:
    """Requires GIL; call holding no lock. For an operation retried after a
    WAKE_DEADLOCK: 1 if, should it have to wait again, that is a deadlock
    (raise DeadlockError instead of parking); 0 if plain threads are still
    running (they may yet wake us: checkdead backs off and looks again)."""
    global deadlock_holdoff, deadlock_backoff
    if gp.deadlock_strikes == 0:
        return 0
    gp.deadlock_strikes = 0
    cdef int64_t seq = ld_acq_i64(&threadparkseq)
    if not sched_quiet(1 if gc_tls_m != NULL else 0):
        return 0         # goroutines became runnable meanwhile: not a deadlock
    if plain_threads_running() > 0 or ld_acq_i64(&threadparkseq) != seq:
        # a thread is awake, or one parked or woke while we looked (it may
        # have readied a goroutine after sched_quiet): look again later
        gc_mutex_lock(&sched.lock)
        deadlock_backoff = min(max(deadlock_backoff * 2, 1000000), 100000000)
        deadlock_holdoff = nanotime() + deadlock_backoff
        gc_mutex_unlock(&sched.lock)
        return 0
    deadlock_backoff = 0
    return 1


def _deadlock_error():
    return DeadlockError("all goroutines are asleep - deadlock!")


cdef bint sched_quiet(int32_t self_running) noexcept:
    """checkdead's conditions, re-checked by the woken main goroutine: at
    most self_running Ms running (the caller's own), nothing runnable, no
    timer pending."""
    cdef int32_t running, i
    cdef bint quiet = 1
    gc_mutex_lock(&sched.lock)
    running = sched.mcount - sched.nmidle - ld_acq_i32(&sched.nmblocked) - netpoll_blocked_ms()
    if (ld_acq_i32(&aio_pending) > 0 or running > self_running or sched.gq.size != 0
            or ld_acq_i32(&timers.len) > 0 or netpoll_waiters()):
        quiet = 0
    else:
        for i in range(sched.nprocs):
            if not runq_empty(&sched.allp[i]):
                quiet = 0
                break
    gc_mutex_unlock(&sched.lock)
    return quiet


cdef frozenset threading_wait_codes():
    """The code objects of threading's waiting functions (computed once, at
    import: no lazy global for free-threaded builds to race on)."""
    codes = set()
    # (Thread._wait_for_tstate_lock is gone in 3.13, where join() waits in C)
    for cls, name in ((threading.Condition, "wait"), (threading.Thread, "_wait_for_tstate_lock"),
                      (threading.Thread, "join"), (threading.Semaphore, "acquire"),
                      (threading.Barrier, "wait")):
        code = getattr(getattr(cls, name, None), "__code__", None)
        if code is not None:
            codes.add(code)
    return frozenset(codes)

cdef frozenset _threading_wait_codes = threading_wait_codes()

cdef Py_ssize_t plain_threads_running() except -1:
    """Requires GIL. Python threads other than main that are alive and not
    asleep: neither parked inside gocore nor waiting in a threading
    primitive (Condition/Event/Queue waits, Thread.join, Semaphore) - those
    can only be woken by a running thread, or by their own timeout (a
    threading.Timer), which deadlock detection does not wait for. Ms never
    appear in threading.enumerate() unless as dummy threads, which are
    skipped."""
    cdef Py_ssize_t n = 0
    main = threading.main_thread()
    frames = sys._current_frames()
    aio_ident = ld_acq_i64(&aio_thread)
    for t in threading.enumerate():
        if t is main or isinstance(t, threading._DummyThread) or not t.is_alive():
            continue
        if aio_ident != 0 and t.ident == aio_ident:
            continue             # gocore.aio's loop: counted by aio_pending instead
        f = frames.get(t.ident)
        if f is not None and f.f_code in _threading_wait_codes:
            continue
        n += 1
    return n - ld_acq_i32(&nthreadparked)


cdef gc_gref maing              # under sched.lock: the main goroutine, for checkdead

cdef bint checkdead() noexcept nogil:
    global deadlock_holdoff
    """Caller holds sched.lock; called as an M goes idle and as the main
    thread parks. Deadlock detection (Go's checkdead): if no M is running
    (every M is idle or parked inside a blocking call of a sync goroutine),
    no G is runnable, no timer is pending and the main goroutine waits, then
    nothing can ever wake it: claim it and wake it with WAKE_DEADLOCK, so
    the call it waits in raises DeadlockError. Returns 1 if it readied an
    ASYNC main G (onto the global queue: the caller should run it).

    A goroutine in a call outside the runtime (time.sleep in a sync
    goroutine, a long computation) keeps its M running, so it is never
    taken for asleep. Plain threads that are not inside a gocore call are
    invisible here; see docs/design-decisions.md."""
    global deadlock_holdoff
    cdef int32_t running, i
    gc_assert_msg(gc_mutex_held(&sched.lock),
                  b"checkdead: sched.lock not held")
    if maing.g == NULL or netpoll_waiters():     # a G waiting on a socket may yet be woken
        return 0
    if deadlock_holdoff != 0:
        if nanotime() < deadlock_holdoff:
            return 0
        deadlock_holdoff = 0     # over: a stale holdoff would make stopm's sleeps return at once
    if ld_acq_i32(&aio_pending) > 0:
        return 0                 # an asyncio call will wake its goroutine (read first: see aio_pending)
    running = sched.mcount - sched.nmidle - ld_acq_i32(&sched.nmblocked) - netpoll_blocked_ms()
    if running > 0:
        return 0
    if ld_acq_i32(&timers.len) > 0 or sched.gq.size != 0:
        return 0
    for i in range(sched.nprocs):
        if not runq_empty(&sched.allp[i]):
            return 0
    if ld_acq_i32(maing.status) != G_WAITING:
        return 0
    if not cas_u32(maing.claim, 0, 1):
        return 0
    maing.wake_flags[0] = WAKE_DEADLOCK
    if maing.kind == G_ASYNC:
        st_rel_i32(maing.status, G_RUNNABLE)
        gqueue_put(&sched.gq, maing.g)
        return 1
    st_rel_i32(maing.status, G_RUNNING)
    note_wakeup(maing.note)
    return 0


cdef void set_maing(G gp) noexcept:
    """Requires GIL. Record gp (alive as long as it is recorded) as the
    goroutine deadlock detection watches; None clears it."""
    gc_mutex_lock(&sched.lock)
    if gp is None:
        maing.g = NULL
    else:
        maing.g = <void *>gp
        maing.kind = gp.kind
        maing.status = &gp.status
        maing.claim = &gp.park_claim
        maing.wake_flags = &gp.wake_flags
        maing.note = &gp.note
    gc_mutex_unlock(&sched.lock)
