# gocore/_sched_deadlock.pxi - deadlock detection (Go's checkdead), and the
# path by which the main goroutine, woken by it, decides whether to raise
# DeadlockError. `include`d by _sched.pyx.
#
# Owns: maing (what checkdead needs of the main goroutine), the plain-thread
# accounting (nthreadparked, threadparkseq), the holdoff/backoff pair, and
# gocore.aio's pending-call count; and the synctest bubble's wait()er and
# owner (its clock is in _sched_timers.pxi). Reads, under sched.lock, the M
# counts, the run queues, the timer heap and the poller's waiters.
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
#
# A synctest bubble (gocore.testing.synctest, "the synctest bubble" below)
# hooks in at step 1: when everything is asleep, the bubble's wait()er is
# woken, or else its fake clock jumps to the earliest timer, before any
# deadlock verdict; only a bubble with neither is examined for deadlock.

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
    # global queue: the caller should run it) - or, in a synctest bubble,
    # an async wait()er, or made a timer due by moving the fake clock.
    global deadlock_holdoff, deadlock_backoff
    cdef int32_t running, i, r, pending
    gc_assert_msg(gc_mutex_held(&sched.lock),
                  b"checkdead: sched.lock not held")
    if maing.g == NULL or netpoll_waiters():     # a G waiting on a socket may yet be woken
        return 0
    if ld_rlx_i32(&bubble_on):
        r = bubble_idle_locked()     # a synctest bubble: wake wait(), or move the clock
        if r != 0:
            return r == 1
    if deadlock_holdoff != 0:
        if nanotime() < deadlock_holdoff:
            return 0
        deadlock_holdoff = 0     # over: a stale holdoff would make stopm's sleeps return at once
    pending = ld_acq_i32(&aio_pending)    # read first: see aio_pending
    running = sched.mcount - sched.nmidle - ld_acq_i32(&sched.nmblocked) - netpoll_blocked_ms()
    if running > 0:
        return 0
    if ld_acq_i32(&timers.len) > 0 or sched.gq.size != 0:
        return 0
    for i in range(sched.nprocs):
        if not runq_empty(&sched.allp[i]):
            return 0
    if pending > 0:
        # An asyncio call or a lookup will wake its goroutine. Its thread
        # wakes the caller and then decrements: if the woken goroutine went
        # back to sleep before the decrement, nobody else would call
        # checkdead again (every M asleep for good: a hang on free-threaded
        # builds). Back off and look again, as for a running plain thread.
        deadlock_backoff = min(max(deadlock_backoff * 2, 1000000), 100000000)
        deadlock_holdoff = nanotime() + deadlock_backoff
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


# ---------------------------------------------------------------- the synctest bubble
#
# gocore.testing.synctest(fn) (Go 1.25's testing/synctest) runs fn as the
# main goroutine of a run() whose timers use a fake clock (rt_nanotime,
# _sched_timers.pxi): the bubble is the whole runtime of that run. Every
# goroutine of the run belongs to it (those started by plain threads with
# go() during the run too); plain threads do not - the clock never waits for
# them, and their own waits in gocore do not hold it back.
#
# The rule. The clock moves only at the point where checkdead finds that no
# goroutine can run (step 1 above, without the main goroutine's and the
# plain threads' conditions): no M is running - each is idle, parked with
# its sync goroutine inside gocore (sched.nmblocked) or blocked in
# epoll_wait - no goroutine is runnable (no run queue holds one, no sync
# goroutine's token waits for a P), no goroutine waits on a socket and no
# asyncio call is pending. "Durably blocked" is thus exact and conservative:
# a sync goroutine running Python code or inside a blocking call outside
# gocore (time.sleep, a computation) keeps its M counted as running, and an
# M that is spinning, firing timers or waking up counts too. Then, in order:
#   1. a goroutine inside testing.wait() is woken (it is asleep too: "all
#      others are durably blocked"), and the clock stays;
#   2. else, if a timer is pending, the clock jumps to the earliest one
#      (bubble_now = timers.next_when) and checkdead's caller takes a P and
#      fires it, with every other timer due at that instant (run_timers);
#   3. else checkdead goes on to its deadlock verdict (DeadlockError in the
#      main goroutine, with its dump).
# checkdead runs wherever an M stops running goroutines (stopm, a sync
# goroutine parking its thread), so the last one to fall asleep moves the
# clock: no polling, and a 1-hour sleep returns after one scheduler round.
#
# bubble_waiter: under sched.lock; the goroutine inside testing.wait() (g is
# NULL when none: one at a time). Registered by the goroutine itself before
# it parks, taken (g = NULL) by whoever claims it: bubble_idle_locked, or
# the goroutine itself when it is closed (bubble_wait_unregister). The G is
# alive while registered: it is parked, and its parked state (an async G)
# or its own thread (a sync G) holds it. A waiter registered before its M
# has marked it G_WAITING is skipped: that M then runs checkdead itself as
# it goes idle, so the wake-up is not lost.
# bubble_owner: atomic; the thread id of the synctest() call whose run() is
# to be a bubble (0: none), written by that thread, read by every run() as
# it starts (bubble_start) - only the thread that wrote it matches.

cdef struct bubble_gref:
    void *g
    int32_t kind
    int32_t *status
    uint32_t *claim
    int32_t *wake_flags
    uint8_t *counted_blocked
    gc_note *note

cdef bubble_gref bubble_waiter
cdef int64_t bubble_owner = 0


cdef int32_t bubble_idle_locked() noexcept nogil:
    """Caller holds sched.lock (checkdead); a bubble runs. If every
    goroutine is durably blocked (see above), wake the wait()er or move the
    clock to the earliest timer. Returns 1 when an async G was queued or a
    timer is due (the caller should take a P and run), 2 when a sync
    waiter's thread was woken (it finds its own P), 0 when it did nothing."""
    cdef int32_t running, i
    cdef int64_t w
    cdef void *gptr
    if ld_acq_i32(&aio_pending) > 0:
        return 0                 # read first, as in checkdead
    running = sched.mcount - sched.nmidle - ld_acq_i32(&sched.nmblocked) - netpoll_blocked_ms()
    if running > 0 or sched.gq.size != 0:
        return 0
    for i in range(sched.nprocs):
        if not runq_empty(&sched.allp[i]):
            return 0
    if (bubble_waiter.g != NULL and ld_acq_i32(bubble_waiter.status) == G_WAITING
            and cas_u32(bubble_waiter.claim, 0, 1)):
        gptr = bubble_waiter.g
        bubble_waiter.g = NULL
        bubble_waiter.wake_flags[0] = WAKE_NORMAL
        if bubble_waiter.kind == G_ASYNC:
            st_rel_i32(bubble_waiter.status, G_RUNNABLE)
            globrunq_put(gptr)   # the parked state's reference passes to the queue
            return 1
        # a sync G: goready's thread half (its M leaves nmblocked)
        if bubble_waiter.counted_blocked[0]:
            bubble_waiter.counted_blocked[0] = 0
            fetch_add_i32(&sched.nmblocked, -1)
        st_rel_i32(bubble_waiter.status, G_RUNNING)
        note_wakeup(bubble_waiter.note)
        return 2
    if ld_acq_i32(&timers.len) > 0:
        w = ld_acq_i64(&timers.next_when)
        if w > ld_acq_i64(&bubble_now):
            st_rel_i64(&bubble_now, w)
        return 1
    return 0


cdef int bubble_start(bint adopt) except -1:
    """Requires GIL; run(), under _start_lock, before its runtime starts.
    Make this run a bubble if the calling thread asked for one (synctest)."""
    cdef int64_t owner = ld_acq_i64(&bubble_owner)
    if owner == 0 or owner != <int64_t>PyThread_get_thread_ident():
        return 0
    if adopt:
        raise RuntimeError(
            "gocore.testing.synctest(): goroutines started with go() outside run() are "
            "still alive (the background runtime); a bubble needs a runtime of its own: "
            "let them finish first")
    gc_mutex_lock(&sched.lock)
    bubble_waiter.g = NULL
    gc_mutex_unlock(&sched.lock)
    st_rel_i64(&bubble_now, BUBBLE_EPOCH)
    st_rel_i32(&bubble_on, 1)
    return 0


def _bubble_run(fn, tuple args):
    """gocore.testing.synctest's core: run(fn, *args) as a bubble."""
    cdef int64_t me = <int64_t>PyThread_get_thread_ident()
    check_goexit()
    if gc_tls_g != NULL or gc_tls_m != NULL or ld_acq_i64(&run_owner) == me:
        raise RuntimeError("gocore.testing.synctest() called inside gocore.run(): call it "
                           "from a test (outside any run), as run() itself; it runs its own")
    st_rel_i64(&bubble_owner, me)
    try:
        return run(fn, *args)
    finally:
        st_rel_i64(&bubble_owner, 0)


cdef int bubble_wait_register(G gp) except -1:
    """Requires GIL. gp (running, about to park with park_claim 0) becomes
    the bubble's wait()er."""
    cdef bint busy
    gc_mutex_lock(&sched.lock)
    busy = bubble_waiter.g != NULL
    if not busy:
        bubble_waiter.g = <void *>gp
        bubble_waiter.kind = gp.kind
        bubble_waiter.status = &gp.status
        bubble_waiter.claim = &gp.park_claim
        bubble_waiter.wake_flags = &gp.wake_flags
        bubble_waiter.counted_blocked = &gp.counted_blocked
        bubble_waiter.note = &gp.note
    gc_mutex_unlock(&sched.lock)
    if busy:
        raise RuntimeError("gocore.testing.wait(): another goroutine of the bubble is "
                           "already waiting (one wait() at a time, as Go's synctest.Wait)")
    return 0


cdef void bubble_wait_unregister(G gp) noexcept:
    """Requires GIL. gp leaves wait() without bubble_idle_locked's wake-up
    (closed, or woken by teardown): drop the registration if still there."""
    if gp is None:
        return
    gc_mutex_lock(&sched.lock)
    if bubble_waiter.g == <void *>gp:
        bubble_waiter.g = NULL
    gc_mutex_unlock(&sched.lock)


cdef int bubble_check(str what) except -1:
    if not ld_rlx_i32(&bubble_on) or gc_tls_g == NULL:
        raise RuntimeError(f"gocore.testing.{what} is for goroutines inside "
                           f"gocore.testing.synctest()")
    return 0


@cython.no_gc
cdef class _BubbleWait:
    """The awaitable behind `await testing.wait()`: parks its goroutine
    until every other goroutine of the bubble is durably blocked. Awaited
    once, by the goroutine that called wait(). state (atomic: close() may
    come from another thread): 0 new, 1 parked, 2 done; whoever moves it
    from 1 to 2 (the woken goroutine, or close()) owns gp."""
    cdef int32_t state
    cdef G gp

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        cdef G gp = getg_or_none()
        if ld_acq_i32(&self.state) == 0:
            bubble_check("wait()")
            if gp.kind != G_ASYNC:
                raise RuntimeError("await gocore.testing.wait() needs an async goroutine; "
                                   "sync goroutines call gocore.testing.wait_blocking()")
            gp.park_claim = 0
            bubble_wait_register(gp)
            self.gp = gp
            st_rel_i32(&self.state, 1)
            gopark_async(gp, NULL, NULL, W_SYNCTEST_WAIT, self)
            return PARK
        if gp is not self.gp or not cas_i32(&self.state, 1, 2):
            raise RuntimeError("gocore.testing.wait(): each wait() is awaited once, by its caller")
        self.gp = None
        if gp.wake_flags != WAKE_NORMAL:
            bubble_wait_unregister(gp)
            check_wake(gp)
        raise StopIteration

    def _cancel(self):
        """teardown: the goroutine is closed while waiting."""
        bubble_wait_unregister(self.gp)

    def close(self):
        """The awaiting coroutine is closed from outside while it waits."""
        if not cas_i32(&self.state, 1, 2):
            return
        gp = self.gp
        self.gp = None
        bubble_wait_unregister(gp)
        goroutine_closed_outside(<PyObject *>gp)

    def throw(self, typ, val=None, tb=None):
        self.close()
        raise thrown_exception(typ, val, tb)

gc_internal_type(_BubbleWait)       # built by _bubble_wait() alone


def _bubble_wait():
    """`await gocore.testing.wait()` (see _BubbleWait)."""
    return _BubbleWait.__new__(_BubbleWait)


def _bubble_wait_blocking():
    """gocore.testing.wait_blocking(): wait() for sync goroutines."""
    cdef G gp
    check_goexit()
    bubble_check("wait_blocking()")
    gp = <G>gc_tls_g
    if gp.kind != G_SYNC:
        raise RuntimeError("gocore.testing.wait_blocking() is for sync goroutines; "
                           "async goroutines `await gocore.testing.wait()`")
    gp.park_claim = 0
    bubble_wait_register(gp)
    gopark_thread(gp, NULL, NULL, W_SYNCTEST_WAIT, None, -1)
    if gp.wake_flags != WAKE_NORMAL:
        bubble_wait_unregister(gp)
        check_wake(gp)           # GoroutineExit: run() is ending
    return None


def _bubble_now():
    """gocore.testing.now(): the timers' clock in seconds - the fake clock
    inside a bubble, time.monotonic() outside."""
    if ld_rlx_i32(&bubble_on):
        return ld_acq_i64(&bubble_now) / 1e9
    return nanotime() / 1e9      # CLOCK_MONOTONIC: time.monotonic()'s clock
