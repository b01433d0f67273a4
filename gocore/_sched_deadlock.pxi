# gocore/_sched_deadlock.pxi - deadlock detection (Go's checkdead), and the
# path by which the main goroutine, woken by it, decides whether to raise
# DeadlockError. `include`d by _sched.pyx.
#
# Owns: maing (what checkdead needs of the main goroutine), the plain-thread
# accounting (nthreadparked, threadparkseq), the holdoff/backoff pair, and
# gocore.aio's pending-call count. Reads, under sched.lock, the M counts,
# the run queues, the timer heap and the poller's waiters.
#
# How it works.
#   1. Detect. checkdead() runs under sched.lock wherever an M stops running
#      goroutines: an M going idle (stopm), the main goroutine or a sync
#      goroutine parking its thread (gopark_thread: a sync G's M stops there,
#      not in stopm, so the last goroutine to park runs it, whichever it
#      is). It finds "nothing can ever run" when no M is running (each is
#      idle, parked inside a sync G's blocking call - sched.nmblocked - or
#      blocked in epoll_wait), no G is runnable, no timer is pending, no G
#      waits on a socket, no asyncio call is pending and the main goroutine
#      waits. A goroutine inside a call outside the runtime (time.sleep in a
#      sync goroutine, a long computation) keeps its M counted as running,
#      so it is never taken for asleep.
#   2. Claim. It then wins main's park_claim, as any waker would, sets
#      WAKE_DEADLOCK and readies main (an async main onto the global queue,
#      returning 1 so that the caller runs it; a thread main by its note).
#   3. Retry, never raise at once. Main's operation unlinks its waiter and
#      calls check_wake(), which for WAKE_DEADLOCK sets gp.deadlock_strikes
#      and returns 1: retry. The caller asks deadlock_suspect(gp) before it
#      retries, then retries under its own lock: if the operation completes
#      now, there was no deadlock; if it would wait again and the answer was
#      "suspect", it raises DeadlockError instead of parking.
#   4. Suspect. deadlock_suspect() looks again with the GIL and no lock held:
#      sched_quiet() re-checks step 1's conditions (allowing the caller's own
#      M to count as running), then plain_threads_running() counts Python
#      threads that are awake. Both quiet: suspect (1). Goroutines became
#      runnable: not suspect (0), main simply waits again.
#   5. Holdoff and backoff. A plain thread is awake, or one parked or woke
#      while we looked (threadparkseq moved): no verdict now. The backoff
#      doubles from 1 ms to 100 ms, and checkdead answers 0 until
#      deadlock_holdoff (now + backoff) passes. Someone must look again when
#      it ends, or a real deadlock would hang: an idle M sleeps no longer
#      than the holdoff (stopm makes it timer_m), and a main thread parked
#      outside run() - where there may be no M at all - polls: gopark_thread
#      sleeps until the holdoff, then claims itself with WAKE_RECHECK; its
#      retry parks again and that park runs checkdead. A verdict (suspect)
#      resets the backoff; so does every runtime start and fork.
#
# Why plain threads make it subtle. A `threading` thread that is not inside
# a gocore call is invisible to the scheduler: it is no M, holds no P, and
# may at any moment send on the channel main waits on. So checkdead's
# verdict is only a suspicion while such threads exist, and three races
# shape the steps above:
#   * between checkdead's claim and main's retry, a plain thread may act on
#     main's channel: finding main's waiter already claimed it skips it and
#     parks as a sender itself. Raising at once (instead of retrying) would
#     call a live program deadlocked; the retry finds that sender.
#   * sched_quiet and plain_threads_running are two looks, not one snapshot:
#     a thread may wake, ready a goroutine and park again between them.
#     Threads counted in nthreadparked bump threadparkseq on every park and
#     wake-up; a different value before and after means "look again".
#   * a thread asleep in a threading primitive (Condition/Event/Queue waits,
#     Thread.join, Semaphore, Barrier) counts as asleep: only a running
#     thread, or its own timeout, can wake it, and detection does not wait
#     for timeouts. A thread blocked for ever outside both gocore and
#     threading (input(), a socket read) keeps detection backing off for
#     ever: a hang, as a Go program with a goroutine in a blocking syscall.
# gocore.aio's loop thread is not counted as a plain thread: a call it runs
# for a parked goroutine is counted in aio_pending instead (progress).

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
cdef int64_t deadlock_backoff = 0    # under sched.lock: the current holdoff's length (0: none)


cdef gc_gref maing              # under sched.lock: the main goroutine, for checkdead

cdef bint checkdead() noexcept nogil:
    # Caller holds sched.lock; runs as an M goes idle and as the main or a
    # sync goroutine parks its thread (steps 1-2 above). If nothing can ever
    # run and the main goroutine waits, claim main and wake it with
    # WAKE_DEADLOCK. Returns 1 if it readied an ASYNC main G (onto the
    # global queue: the caller should run it).
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
        globrunq_put(maing.g)       # the parked state's reference passes to the queue
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
    gc_mutex_lock(&sched.lock)
    deadlock_backoff = 0         # a verdict: the next suspicion starts at 1 ms again
    gc_mutex_unlock(&sched.lock)
    return 1


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
