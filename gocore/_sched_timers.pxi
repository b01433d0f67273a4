# gocore/_sched_timers.pxi - the runtime's one timer heap (csrc/
# gocore_timer.h): sleeping goroutines (TK_READY_G) and Timer/Ticker/after
# objects (TK_PYOBJ); run_timers fires the due ones between goroutines, an
# idle M sleeps until the earliest (stopm's timer_m), timers_kick pokes it
# when a new one comes first. `include`d by _sched.pyx.
#
# Owns: the timers' clock (rt_nanotime: real, or a synctest bubble's fake
# one; see "the clock" below), and `timers` and timer_kick, both under
# timerlock (lock order: after channel locks, before sched.lock; its
# holders never wait for the GIL).
# timers.len and timers.next_when are also published atomically, for the
# lock-free "anything due?" checks of the M loop, sysmon and checkdead.
# References: the heap holds one reference to a TK_PYOBJ timer's owner,
# dropped when the timer leaves the heap (fired, deleted, swept, dropped at
# teardown); a TK_READY_G timer borrows its sleeping G.
# Out of memory: adding a timer for a caller raises MemoryError there
# (_time.pyx, _net.pyx); a ticker's re-add in run_timers cannot fail (the
# pop just freed its slot) and throws if it ever did, rather than stop the
# ticker silently.

# ---------------------------------------------------------------- the clock
#
# The timers' clock goes through rt_nanotime(): nanotime() (CLOCK_MONOTONIC),
# except while a synctest bubble runs (gocore.testing.synctest; the bubble
# is the whole runtime of one run(), see "the synctest bubble" in
# _sched_deadlock.pxi). There it is a fake clock that starts at
# BUBBLE_EPOCH and moves forward only when checkdead finds every goroutine
# durably blocked (bubble_idle_locked): the heap, run_timers, sleep/Timer
# deadlines (_time.pyx through runtime_nanotime) and the values timer
# channels send all read it. Real time stays where it means real time:
# sysmon, the deadlock holdoff, dumps' wait times, the Mutex starvation
# clock, network deadlines (refused inside a bubble: _net.pyx).
#
# bubble_on: atomic; 0 outside a bubble, so rt_nanotime() costs nanotime()
# plus a relaxed load and an always-taken branch. Set by run() (bubble_start,
# under _start_lock, before the runtime starts) and cleared by drop_timers
# at teardown (runtime stopped): every timer of a run is in one clock.
# bubble_now: atomic (st_rel/ld_acq); written by bubble_start with the
# runtime stopped and by bubble_idle_locked under sched.lock; it never goes
# backwards while a bubble runs.

cdef int32_t bubble_on = 0
cdef int64_t bubble_now = 0
# 2000-01-01T00:00:00Z in Unix nanoseconds: Go's synctest starts its clock
# there too. now() inside a bubble starts at 946684800.0.
cdef int64_t BUBBLE_EPOCH = 946684800 * <int64_t>1000000000

cdef inline int64_t rt_nanotime() noexcept nogil:
    """Any thread. The timers' clock (see above)."""
    if ld_rlx_i32(&bubble_on):
        return ld_acq_i64(&bubble_now)
    return nanotime()

cdef int64_t runtime_nanotime() noexcept nogil:
    """rt_nanotime() for the other modules (_time.pyx)."""
    return rt_nanotime()

cdef bint in_bubble() noexcept nogil:
    """Does a synctest bubble run (the timers' clock is fake)?"""
    return ld_rlx_i32(&bubble_on) != 0


# ---------------------------------------------------------------- timers

cdef gc_mutex timerlock          # guards `timers` (the heap); lock order: after channel locks, before sched.lock
cdef gc_timers timers
timers.next_when = GC_NEVER
timers.sweep_at = GC_TIMERS_SWEEP_MIN
cdef bint timer_kick = 0         # under timerlock: a new earliest timer needs an idle M poked

cdef void timer_lock() noexcept:
    """Requires GIL (waits with it released)."""
    if not gc_mutex_trylock(&timerlock):
        with nogil:
            gc_mutex_lock_slow(&timerlock)

cdef int timer_add_locked(gc_timer *t) noexcept nogil:
    """Caller holds timerlock. Queue t (not queued). -1: out of memory."""
    global timer_kick
    if GOCORE_DEBUG:
        gc_assert_msg(gc_mutex_held(&timerlock) and t.heap_index == -1,
                      b"timer_add_locked: timerlock not held, or timer already queued")
    cdef int r = timers_add(&timers, t)
    if r == 1:
        timer_kick = 1
    return r

cdef int timer_modify_locked(gc_timer *t, int64_t when) noexcept nogil:
    """Caller holds timerlock. Move t to deadline `when`, queueing it if it
    was not (a reset, a netpoll deadline moved). -1: out of memory (t is
    then not queued)."""
    global timer_kick
    if GOCORE_DEBUG:
        gc_assert_msg(gc_mutex_held(&timerlock), b"timer_modify_locked: timerlock not held")
    cdef int r = timers_modify(&timers, t, when)
    if r == 1:
        timer_kick = 1
    return r

cdef bint timer_del_locked(gc_timer *t) noexcept nogil:
    """Caller holds timerlock. 1 if t was queued and is removed."""
    gc_assert_msg(gc_mutex_held(&timerlock),
                  b"timer_del_locked: timerlock not held")
    return timers_del(&timers, t)

cdef void timer_unlock() noexcept nogil:
    """Release timerlock; poke the timer M if a new timer came first."""
    global timer_kick
    cdef bint kick = timer_kick
    timer_kick = 0
    gc_mutex_unlock(&timerlock)
    if kick:
        timers_kick()

cdef void timer_unlock_cb(void *arg) noexcept nogil:
    """gopark's unlock function for a G parked on a timer (sleep)."""
    timer_unlock()

cdef void timer_sweep(int (*dead)(gc_timer *t) noexcept) noexcept:
    """Requires GIL. If the heap has grown enough since the last sweep
    (timers_sweep_due), remove every TK_PYOBJ timer for which dead(t) says
    that nothing but the heap can reach its owner, and release the heap's
    reference to each (after timerlock: releasing may free objects). dead()
    runs under timerlock with the GIL: it reads, never allocates. The owners
    of collectable timers call this when they queue a new one (Timer)."""
    cdef gc_timer **out
    cdef int32_t k, i
    if ld_rlx_i32(&timers.len) < ld_rlx_i32(&timers.sweep_at):
        return                              # a hint; decided under the lock
    timer_lock()
    if not timers_sweep_due(&timers):
        timer_unlock()
        return
    out = <gc_timer **>malloc(sizeof(gc_timer *) * timers.len)
    if out == NULL:
        timer_unlock()
        return                              # no memory: the dead stay queued until due
    k = timers_sweep(&timers, dead, out)
    timer_unlock()
    for i in range(k):
        Py_XDECREF(<PyObject *>out[i].arg)  # the heap's reference, maybe the last
    gc_dbg_add(GC_DBG_TIMER_REFS, -k)
    free(out)

cdef void timers_kick() noexcept nogil:
    """Any thread. The earliest deadline moved up: poke the M sleeping until
    the old one, or wake an M if none sleeps on timers."""
    cdef gc_m *tm
    if ld_rlx_i32(&bubble_on) and not timers_due():
        return       # a bubble's future timer needs no M: only checkdead moves its clock
    if netpoll_timer_kick():     # an M blocks in epoll_wait: it recomputes its timeout
        return
    gc_mutex_lock(&sched.lock)
    tm = sched.timer_m
    if tm != NULL:
        note_poke(&tm.park)
    gc_mutex_unlock(&sched.lock)
    if tm == NULL:
        wakep()

cdef inline bint timers_due() noexcept nogil:
    cdef int64_t w = ld_acq_i64(&timers.next_when)
    return w != GC_NEVER and w <= rt_nanotime()

cdef void run_timers(gc_p *pp) noexcept:
    """Requires GIL; the M holds pp. Fire due timers: ready sleeping Gs,
    call _fire(seq) of timer objects (Timer, Ticker, after, after_func). At
    most one batch, and no more than pp can take without spilling: a G
    readied onto a full ring (or kicked out of runnext into it) spills to
    the global queue's tail, where it waits behind every goroutine queued
    there (seen: 1 wake-up in 60 was 200 ms late with 100,000 new
    goroutines queued, at gomaxprocs 2). Readying k Gs takes k ring slots
    if runnext is occupied, else k - 1. schedule() checks for due timers
    between every two goroutines (and runs runnext first), so the rest
    fire in the next rounds."""
    cdef int32_t kinds[64]
    cdef void *args[64]
    cdef uint32_t seqs[64]
    cdef int32_t n = 0, i, budget
    cdef gc_timer *t
    cdef int64_t now
    cdef G gp
    budget = <int32_t>(GOCORE_RUNQ_CAP - runq_len(pp))
    if ld_acq_ptr(&pp.runnext) == NULL:
        budget += 1
    if budget > 64:
        budget = 64
    if budget <= 0:
        return                   # this round runs runnext, which frees room
    timer_lock()
    now = rt_nanotime()
    while n < budget:
        t = timers_pop_due(&timers, now)
        if t == NULL:
            break
        kinds[n] = t.kind
        args[n] = t.arg
        seqs[n] = t.seq
        if t.period > 0:
            # a ticker: next tick after now, dropping ticks a slow receiver missed
            t.when += t.period * ((now - t.when) // t.period + 1)
            if timers_add(&timers, t) < 0:       # cannot fail: the pop freed a slot
                gc_throw(b"out of memory re-adding a ticker to the timer heap")
            if t.kind == TK_PYOBJ:
                Py_INCREF(<object>t.arg)    # the heap keeps its reference; we fire with our own
                gc_dbg_add(GC_DBG_TIMER_REFS, 1)
        n += 1
    timer_unlock()
    for i in range(n):
        if kinds[i] == TK_READY_G:
            gp = <G>args[i]
            if cas_u32(&gp.park_claim, 0, 1):
                goready(gp)
        else:
            obj = <object>args[i]
            Py_DECREF(obj)                   # the reference popped from the heap (we hold `obj`)
            gc_dbg_add(GC_DBG_TIMER_REFS, -1)
            try:
                obj._fire(seqs[i])
            except BaseException as e:
                record_panic(e, None)
            obj = None


cdef void drop_timers() noexcept:
    """Requires GIL; runtime stopped. Timers die with the program's run, as
    in Go: forgotten Tickers (tick()) and Timers are dropped. Sleeping
    goroutines removed theirs when they were closed. A synctest bubble
    ends here too (its clock goes with its timers)."""
    cdef gc_timer *t
    owners = []
    st_rel_i32(&bubble_on, 0)      # a bubble ends with its run: the next one has the real clock
    while True:
        timer_lock()
        t = timers_pop_due(&timers, GC_NEVER)
        timer_unlock()
        if t == NULL:
            break
        if t.kind == TK_PYOBJ:
            owners.append(<object>t.arg)
            Py_DECREF(<object>t.arg)         # the heap's reference: `owners` holds it now
            gc_dbg_add(GC_DBG_TIMER_REFS, -1)
    del owners
