# gocore/_sched_sysmon.pxi - the monitor thread (Go's sysmon): finds Ps
# stuck in one goroutine while work waits and hands them to another M.
# `include`d by _sched.pyx.
#
# Owns: its own per-P "hold" array (no other thread reads it) and each P's
# sysmon_tick/sysmon_when; writes P.stuck (relaxed atomic, read by thieves);
# sched.sysmon_note/sysmon_wait (it sleeps while every P is idle;
# acquirep/startm wake it). One sysmon per runtime generation
# (sched.sysmon_running, under sched.lock).

# ---------------------------------------------------------------- sysmon
#
# The monitor thread (Go's sysmon). A goroutine can hold its M for a long
# time without returning to the scheduler: a blocking library call in a sync
# goroutine (time.sleep, socket.recv, requests.get), or in an async one, or
# a long computation. sysmon watches every busy P's schedtick; if it has not
# moved for RETAKE_NS (200 us) while Gs wait behind it (in its queue or the
# global one, or due timers), the P is "stuck": sysmon marks it (thieves
# may then take its runnext as well as its ring), wakes an M to steal, and
# hands the P to another M (Go's retake + handoffp) as follows.
#   * An M blocked outside Python (a call that released the GIL / detached
#     its thread state) loses its P at once: a sync goroutine's 1 ms call
#     is handed off like a long one. On GIL builds sysmon tells by taking
#     the GIL: free at once, the M is blocked (holding the GIL also proves
#     the M is not touching its P: it does so only with the GIL). On
#     free-threaded builds the M's thread state says it, and the P's owner
#     word (gocore_sched.h) proves it.
#   * An M running Python (a loop with no await: the GIL was busy, or the
#     thread state attached) keeps its P for a while: a short computation
#     is cheaper to wait for than to share the GIL with. Free-threaded
#     builds hand its P off after HOG_NS (10 ms, Go's forcePreemptNS). On
#     GIL builds sysmon's probe for the GIL itself waits out the holder's
#     switch interval (5 ms by default); if, once it holds the GIL, the P
#     has been stuck for HOG_GIL_NS (2 ms), the P goes - in effect the hog
#     keeps its P for one switch interval. Then the hog's M goes on running
#     its goroutine's step without a P, as a Go M in a system call does,
#     and the goroutines behind it run on the new M - through the GIL's
#     switch interval on GIL builds (5 ms slices), side by side on
#     free-threaded ones (Python code cannot be preempted, so for the rest
#     of the hog's step one M more than gomaxprocs runs Python there).
# A retaken M whose call or step ends finds its P gone (mp.p is NULL:
# execute's caller checks) and looks for one like any idle M (findrunnable):
# the hog's M gets one back when a P is idle, or parks. Python gives no hook
# where a blocking call returns, so the rest of that step runs without a P.
#
# Its period: 20 us after it retook a P; at most 50 us while some P it
# watches has work waiting behind a G (a candidate: the hand-off of a 1 ms
# call must not wait for a 10 ms back-off - issue 14 item 4); otherwise
# doubling to 10 ms; and it blocks on a note while every P is idle, so an
# idle runtime costs no wake-ups at all.
# Rejected: a timer signal to preempt Python code (the interpreter has no
# safe point we could use from a signal handler); keeping the P of a
# Python-running M for ever (a goroutine in a long loop stalled every other
# goroutine at gomaxprocs 1: issue 14 item 3).

cdef int64_t RETAKE_NS = 200000           # 200 us inside one G with work waiting: stuck
cdef int64_t HOG_NS = 10000000            # 10 ms: hand off even the P of an M running Python
cdef int64_t HOG_GIL_NS = 2000000         # GIL builds: 2 ms, counting the wait for the GIL
cdef int64_t GIL_BUSY_NS = 300000         # taking the GIL took longer: its holder runs Python
cdef int64_t WATCH_DELAY_US = 50          # sysmon's longest period while a stuck candidate waits


cdef void sysmon_main(void *arg) noexcept nogil:
    cdef int64_t gen = <int64_t>arg
    cdef int64_t delay_us = 20
    cdef int64_t now, stuck_for
    cdef int32_t i, r
    cdef bint acted, watching
    cdef gc_p *pp
    cdef uint32_t t
    # sysmon's own (no other thread reads it): per P, how long it must have
    # been stuck before the next hand-off attempt (RETAKE_NS, or HOG_NS /
    # HOG_GIL_NS once its M was seen running Python); reset when its
    # schedtick moves
    cdef int64_t *hold = <int64_t *>calloc(sched.nprocs if sched.nprocs > 0 else 1, sizeof(int64_t))
    gc_block_signals()
    if hold == NULL:
        gc_mutex_lock(&sched.lock)
        if sched.gen == gen:
            sched.sysmon_running = 0
        gc_mutex_unlock(&sched.lock)
        return
    while True:
        gc_sleep_us(delay_us)
        if ld_acq_i32(&sched.stopping) or sched.gen != gen:
            break
        if ld_acq_i32(&sched.npidle) == sched.nprocs:
            # nothing runs: sleep until startm hands a P to an M
            note_clear(&sched.sysmon_note)
            st_rel_i32(&sched.sysmon_wait, 1)
            fence_seq_cst()     # store-load: pairs with acquirep's fence
            if ld_acq_i32(&sched.npidle) == sched.nprocs and not ld_acq_i32(&sched.stopping):
                note_sleep(&sched.sysmon_note)
            st_rel_i32(&sched.sysmon_wait, 0)
            delay_us = 20
            continue
        now = nanotime()
        netpoll_sysmon(now)      # nobody polled for 10 ms: poll for them
        acted = 0
        watching = 0
        for i in range(sched.nprocs):
            pp = &sched.allp[i]
            if pp.status != P_RUNNING:
                st_rlx_i32(&pp.stuck, 0)
                continue
            t = ld_rlx_u32(&pp.schedtick)
            if t != pp.sysmon_tick:
                pp.sysmon_tick = t
                pp.sysmon_when = now
                hold[i] = RETAKE_NS
                st_rlx_i32(&pp.stuck, 0)
                continue
            if runq_empty(pp) and ld_rlx_u32(&sched.gq.size) == 0 and not timers_due():
                continue        # nothing waits for this P (due timers do wait)
            watching = 1
            stuck_for = now - pp.sysmon_when
            if stuck_for < RETAKE_NS:
                continue
            if not ld_rlx_i32(&pp.stuck):
                st_rlx_i32(&pp.stuck, 1)
                wakep()         # an M to steal what waits behind it
            if stuck_for < hold[i]:
                continue        # its M runs Python: hand off at HOG_NS / HOG_GIL_NS
            if GC_GIL_BUILD:
                r = retake(pp, t, pp.sysmon_when, gen)
            else:
                r = retake_free_threaded(pp, t, gen, stuck_for >= HOG_NS)
            if r == 1:
                acted = 1
            elif r == 2:
                hold[i] = HOG_GIL_NS if GC_GIL_BUILD else HOG_NS
        if acted:
            delay_us = 20
        elif watching:
            # a candidate is on its way to RETAKE_NS or HOG_NS: look often
            delay_us = delay_us * 2 if delay_us * 2 < WATCH_DELAY_US else WATCH_DELAY_US
        elif delay_us < 10000:
            delay_us *= 2
    free(hold)
    gc_mutex_lock(&sched.lock)
    if sched.gen == gen:
        sched.sysmon_running = 0
    gc_mutex_unlock(&sched.lock)


cdef int retake(gc_p *pp, uint32_t tick, int64_t since, int64_t gen) noexcept nogil:
    """GIL builds only. Take pp from its M, stuck in one G since `since`,
    and start it on another M: 1 if it did, 2 if its M runs Python and has
    not been stuck for HOG_GIL_NS yet, 0 if pp moved on meanwhile. Holding the
    GIL proves the stuck M is not using pp now.
    The wait for the GIL can outlast the runtime: run() may have torn down
    and freed its M0 (still pp.m) meanwhile. Teardown sets sched.stopping
    before it frees anything and a new generation starts only with the GIL
    held, so checking both once the GIL is ours makes pp.m safe to read."""
    cdef gc_m *mp
    cdef int64_t t0 = nanotime()
    cdef int64_t t1
    with gil:
        if ld_acq_i32(&sched.stopping) or sched.gen != gen:
            return 0
        t1 = nanotime()
        if t1 - t0 > GIL_BUSY_NS and t1 - since < HOG_GIL_NS:
            # The GIL was not free: the stuck M is running Python, not
            # waiting in a blocking call. A short computation is cheaper to
            # wait for than to share the GIL with: hand off at HOG_GIL_NS,
            # measured now that we hold the GIL. Waiting for it took the
            # holder's switch interval (5 ms by default), which counts: an
            # M that kept the GIL that long in one step loses its P.
            return 2
        mp = <gc_m *>pp.m
        if (mp != NULL and mp.curg != NULL and pp.status == P_RUNNING
                and ld_rlx_u32(&pp.schedtick) == tick
                and cas_ptr(<void **>&mp.p, <void *>pp, NULL)):
            pp.m = NULL
            pp.sysmon_tick = tick + 1        # a fresh start for the new owner
            st_rlx_i32(&pp.stuck, 0)
            add_rlx_i64(&sched.nretakes, 1)
            startm(pp, 0)
            return 1
    return 0


cdef bint m_outside_python(gc_p *pp, int64_t gen) noexcept nogil:
    """Free-threaded builds: is the M holding pp blocked outside Python
    (its thread state detached: a blocking call such as time.sleep or
    socket.recv)? Under sched.lock, which keeps the M's thread state alive
    (set_tstate); a stopping runtime or a new generation answers 0."""
    cdef gc_m *mp
    cdef bint outside = 0
    gc_mutex_lock(&sched.lock)
    if not ld_acq_i32(&sched.stopping) and sched.gen == gen:
        mp = <gc_m *>pp.m
        if mp != NULL and mp.tstate != NULL:
            outside = gc_tstate_detached(mp.tstate)
    gc_mutex_unlock(&sched.lock)
    return outside


cdef int retake_free_threaded(gc_p *pp, uint32_t tick, int64_t gen, bint force) noexcept nogil:
    """Free-threaded builds. Take pp from its M if that M is inside a G and
    not touching pp (the P ownership word, gocore_sched.h), and start it on
    another M: 1 if it did. The M must be blocked outside Python, unless
    force (stuck for HOG_NS): 2 if it runs Python and force is not set.
    After a forced hand-off the hog's M runs its step without a P, beside
    the gomaxprocs Ms that have one."""
    if ld_rlx_u32(&pp.schedtick) != tick or ld_acq_i32(&sched.stopping) or sched.gen != gen:
        return 0
    if not force and not m_outside_python(pp, gen):
        return 2
    if pown_retake(pp):
        pp.m = NULL
        pp.sysmon_tick = tick + 1        # a fresh start for the new owner
        st_rlx_i32(&pp.stuck, 0)
        add_rlx_i64(&sched.nretakes, 1)
        startm(pp, 0)
        return 1
    return 0


cdef void sysmon_start() noexcept:
    """Requires GIL; the runtime is starting. One sysmon per generation."""
    gc_mutex_lock(&sched.lock)
    if sched.sysmon_running:
        gc_mutex_unlock(&sched.lock)
        return
    sched.sysmon_running = 1
    gc_mutex_unlock(&sched.lock)
    st_rel_i32(&sched.sysmon_wait, 0)
    if PyThread_start_new_thread(sysmon_main, <void *>sched.gen) == <unsigned long>(-1):
        gc_mutex_lock(&sched.lock)
        sched.sysmon_running = 0
        gc_mutex_unlock(&sched.lock)


cdef void sysmon_stop() noexcept nogil:
    """Wake sysmon so it sees the runtime stopping (or a new generation)."""
    if cas_i32(&sched.sysmon_wait, 1, 0):
        note_wakeup(&sched.sysmon_note)
