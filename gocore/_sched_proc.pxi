# gocore/_sched_proc.pxi - Ps and Ms: the idle lists (pidle, midle),
# acquirep, wakep/startm/newm, stopm, the hand-off of blocking calls
# (entersyscall/exitsyscall, Go's syscall path), findrunnable with its
# stealing and spinning, and the M loop (schedule). `include`d by _sched.pyx.
#
# Owns: sched's P and M lists and counts (under sched.lock, or atomic as
# gocore_sched.h marks them), each M's nextp hand-over and park note, and
# the global run queue's puts from the scheduler (globrunq_put).
#
# Spinning and wakep (Go's scheme). An M without work becomes "spinning"
# (counted in sched.nmspinning) while it steals; at most half the busy Ps'
# worth of Ms spin at once. Whoever makes a G runnable calls wakep(), which
# starts or wakes an M only if a P is idle and no M is spinning: a spinning
# M will find the new G, and when it does it calls wakep() itself before
# running it, so work spreads one M at a time. An M that stops spinning
# decrements nmspinning first and then re-checks every run queue before
# parking: a G queued after its check sees nmspinning == 0 and wakes someone.
# Rejected: waking an M per ready (a futex syscall per channel hand-off) and
# a condition variable around the queues (one lock for every run queue op).
#
# Readying puts the G in the current P's runnext, which thieves take only
# from a stuck P, so a ping-pong pair stays on one P; readying into runnext
# alone wakes nobody: only Gs left in the ring (which can be stolen
# usefully) call wakep(), and only on free-threaded builds. On GIL builds
# one M runs Python at a time: a woken M would wait for the GIL holding
# the Gs it stole (Go's sieve ran 1.55x slower at gomaxprocs 2). There
# other Ms start only for blocking calls (hand-off), sysmon's retakes and
# plain threads' readies. Looking for work, an M keeps the GIL (see
# findrunnable_now) and drops it only to park.
#
# Out of memory. The global queue grows by malloc. Where the runtime itself
# moves a G onto it (a ready from a thread without a P, a gosched, a sync
# G's token, checkdead's async main), nobody could be told of a failure and
# the G would be lost for good - a goroutine that never runs again: such
# puts go through globrunq_put, which throws (Go's throw). The public calls
# that can fail on memory raise MemoryError to their caller instead.

# ---------------------------------------------------------------- Ps and Ms

cdef inline void globrunq_put(void *gp) noexcept nogil:
    """Caller holds sched.lock. Queue gp on the global run queue (its queue
    reference passes to the queue). Out of memory throws: see the header."""
    if gqueue_put(&sched.gq, gp) < 0:
        gc_throw(b"out of memory in the global run queue")


cdef bint p_is_idle(gc_p *pp) noexcept nogil:
    """Debug builds; caller holds sched.lock. Is pp on sched.pidle?"""
    cdef gc_p *q = sched.pidle
    while q != NULL:
        if q == pp:
            return 1
        q = q.link
    return 0

cdef inline void pidleput(gc_p *pp) noexcept nogil:
    """Caller holds sched.lock."""
    if GOCORE_DEBUG:
        gc_assert_msg(gc_mutex_held(&sched.lock) and pp.link == NULL and not p_is_idle(pp),
                      b"pidleput: sched.lock not held, or P already on the idle list")
    pp.status = P_IDLE
    pp.m = NULL
    pp.link = sched.pidle
    sched.pidle = pp
    fetch_add_i32(&sched.npidle, 1)

cdef inline gc_p *pidleget() noexcept nogil:
    """Caller holds sched.lock."""
    gc_assert_msg(gc_mutex_held(&sched.lock),
                  b"pidleget: sched.lock not held")
    cdef gc_p *pp = sched.pidle
    if pp != NULL:
        sched.pidle = pp.link
        pp.link = NULL
        fetch_add_i32(&sched.npidle, -1)
    return pp

cdef inline void acquirep(gc_m *mp, gc_p *pp) noexcept nogil:
    mp.p = pp
    pp.m = <void *>mp
    pp.status = P_RUNNING
    pown_set(pp, mp, POWN_SCHED)
    # a P went busy, perhaps without startm (M0, an idle M taking an idle
    # P): wake sysmon if it sleeps. The fence pairs with sysmon_main's: it
    # sees npidle < nprocs, or we see sysmon_wait.
    fence_seq_cst()
    if ld_acq_i32(&sched.sysmon_wait) and cas_i32(&sched.sysmon_wait, 1, 0):
        note_wakeup(&sched.sysmon_note)

cdef inline void mput(gc_m *mp) noexcept nogil:
    """Caller holds sched.lock."""
    if GOCORE_DEBUG:
        gc_assert_msg(gc_mutex_held(&sched.lock) and not mp.in_midle,
                      b"mput: sched.lock not held, or M already idle")
    mp.schedlink = sched.midle
    sched.midle = mp
    mp.in_midle = 1
    sched.nmidle += 1

cdef inline gc_m *mget() noexcept nogil:
    """Caller holds sched.lock."""
    gc_assert_msg(gc_mutex_held(&sched.lock),
                  b"mget: sched.lock not held")
    cdef gc_m *mp = sched.midle
    if mp != NULL:
        sched.midle = mp.schedlink
        mp.schedlink = NULL
        mp.in_midle = 0
        sched.nmidle -= 1
    return mp

cdef inline void mremove_idle(gc_m *mp) noexcept nogil:
    """Caller holds sched.lock; mp is on sched.midle."""
    if GOCORE_DEBUG:
        gc_assert_msg(gc_mutex_held(&sched.lock) and mp.in_midle,
                      b"mremove_idle: sched.lock not held, or M not idle")
    cdef gc_m **pp = &sched.midle
    while pp[0] != NULL:
        if pp[0] == mp:
            pp[0] = mp.schedlink
            mp.schedlink = NULL
            mp.in_midle = 0
            sched.nmidle -= 1
            return
        pp = &pp[0].schedlink


cdef void wakep() noexcept nogil:
    """Any thread. Start an M for an idle P unless one is already spinning."""
    if ld_acq_i32(&sched.npidle) == 0:
        return
    if ld_acq_i32(&sched.nmspinning) != 0 or not cas_i32(&sched.nmspinning, 0, 1):
        return
    startm(NULL, 1)


cdef void startm(gc_p *pp, bint spinning) noexcept nogil:
    """Any thread. Runs pp (or an idle P) on an idle or a new M. If spinning,
    the caller has counted the M in nmspinning. A new M's thread is started
    after sched.lock is released: creating a thread allocates, and with
    tracemalloc on, CPython's raw allocator takes the GIL - a holder of
    sched.lock must never wait for it (gocore_futex.h; fork_prepare waits
    for sched.lock with the GIL held)."""
    cdef gc_m *nmp
    cdef bint fresh = 0
    gc_mutex_lock(&sched.lock)
    if pp == NULL:
        pp = pidleget()
        if pp == NULL:
            gc_mutex_unlock(&sched.lock)
            if spinning:
                fetch_add_i32(&sched.nmspinning, -1)
            return
    nmp = mget()
    if nmp == NULL:
        if sched.mcount >= sched.maxmcount or ld_acq_i32(&sched.stopping):
            # A spinning M is only extra help: without it a busy M picks the
            # work up. A hand-off (a blocked or stuck M's P with work) that
            # needs a thread past the bound is fatal, as in Go ("program
            # exceeds N-thread limit"): waiting could hang for ever.
            pidleput(pp)
            gc_mutex_unlock(&sched.lock)
            if spinning:
                fetch_add_i32(&sched.nmspinning, -1)
            elif not ld_acq_i32(&sched.stopping):
                thread_limit_exceeded()
            return
        nmp = newm_locked()
        if nmp == NULL:
            gc_throw(b"cannot allocate an M")
        fresh = 1
    gc_mutex_unlock(&sched.lock)
    nmp.spinning = spinning
    nmp.nextp = pp
    if fresh and PyThread_start_new_thread(mstart, <void *>nmp) == <unsigned long>(-1):
        gc_throw(b"cannot start an M's thread")
    note_wakeup(&nmp.park)
    if ld_acq_i32(&sched.sysmon_wait) and cas_i32(&sched.sysmon_wait, 1, 0):
        note_wakeup(&sched.sysmon_note)     # a P went busy: watch it


cdef void thread_limit_exceeded() noexcept nogil:
    with gil:
        record_panic(RuntimeError(
            f"gocore: program exceeds the {sched.maxmcount}-thread limit (a goroutine "
            f"blocked and no thread was left to run the others; see gocore.set_max_threads)"), None)


cdef gc_m *newm_locked() noexcept nogil:
    """Caller holds sched.lock. Creates and counts an M (NULL: no memory);
    the caller starts its thread (mstart) after releasing sched.lock, sets
    nextp and wakes its note. Counted before its thread runs, as an M
    starting up is running for deadlock detection."""
    gc_assert_msg(gc_mutex_held(&sched.lock),
                  b"newm_locked: sched.lock not held")
    cdef gc_m *mp = <gc_m *>calloc(1, sizeof(gc_m))
    if mp == NULL:
        return NULL
    mp.id = sched.mcount
    mp.gen = sched.gen
    mp.fastrand = <uint32_t>(mp.id * 7919 + 104729)
    mp.alllink = sched.allm
    sched.allm = mp
    sched.mcount += 1
    return mp


cdef void mstart(void *arg) noexcept nogil:
    global gc_tls_m
    cdef gc_m *mp = <gc_m *>arg
    gc_block_signals()
    note_sleep(&mp.park)         # wait for startm to hand over nextp
    note_clear(&mp.park)
    with gil:
        gc_tls_m = mp
        set_tstate(mp, <void *>PyThreadState_Get())
        if mp.nextp != NULL:
            acquirep(mp, mp.nextp)
            mp.nextp = NULL
        try:
            schedule(mp)
        except BaseException as e:
            record_panic(e, None)
        gc_tls_m = NULL
        set_tstate(mp, NULL)         # before the thread state goes with the `with gil`
    mexit(mp)


cdef inline void set_tstate(gc_m *mp, void *ts) noexcept nogil:
    gc_mutex_lock(&sched.lock)
    mp.tstate = ts
    gc_mutex_unlock(&sched.lock)


cdef void mexit(gc_m *mp) noexcept nogil:
    """The M leaves the runtime: its P (if any) goes back to the idle list."""
    gc_mutex_lock(&sched.lock)
    if mp.p != NULL and mp.gen == sched.gen:
        pidleput(mp.p)
    mp.p = NULL
    mp.exited = 1
    if not mp.uncounted:
        sched.mcount -= 1
    gc_mutex_unlock(&sched.lock)


cdef inline bint signal_seen_since_note_clear() noexcept nogil:
    """M0, after note_clear(&m0.park): a signal handled while M0 was between
    waits poked the note before we cleared it, but its flag stays. The
    handler sets the flag, fences, then pokes; we cleared the note, fence,
    then look at the flag: we see one or the other."""
    fence_seq_cst()
    return ld_acq_i32(&sched.sigpending) != 0


cdef bint stopm(gc_m *mp) noexcept nogil:
    """mp holds no P. Parks it on the idle list until startm hands it a P.
    The first idle M while timers are pending sleeps only until the earliest
    one (it is sched.timer_m). Returns 0 if it woke without a P (runtime
    stopping, poked by SIGINT or an earlier timer, or its deadline passed)."""
    cdef uint32_t k
    cdef int64_t deadline = -1
    cdef int polled = netpoll_stopm(mp)     # Gs wait on sockets: block in epoll_wait instead (_netpoll.pxi)
    if polled >= 0:
        return polled
    gc_mutex_lock(&sched.lock)
    if ld_acq_i32(&sched.stopping) or mp.gen != sched.gen:
        gc_mutex_unlock(&sched.lock)
        return 0
    note_clear(&mp.park)
    mput(mp)
    if checkdead():
        # the main goroutine was readied: run it rather than sleep
        mremove_idle(mp)
        mp.nextp = pidleget()
        gc_mutex_unlock(&sched.lock)
        if mp.nextp == NULL:
            return 0
        acquirep(mp, mp.nextp)
        mp.nextp = NULL
        return 1
    if sched.timer_m == NULL:
        if ld_rlx_i32(&bubble_on):
            if timers_due():     # a bubble: only a due timer is waited for (the poll below)
                sched.timer_m = mp
                deadline = nanotime() + TIMER_POLL_NS
        elif ld_acq_i32(&timers.len) > 0:
            sched.timer_m = mp
            deadline = ld_acq_i64(&timers.next_when)
            if sched.pidle == NULL and deadline <= nanotime() + TIMER_POLL_NS:
                # Overdue and every P busy: a P's holder fires it between
                # goroutines, or sysmon retakes a stuck P. Returning at once
                # would spin; never waking could strand it if a P goes idle
                # without noticing (skipping this duty did hang at
                # gomaxprocs 2): look again in a millisecond.
                deadline = nanotime() + TIMER_POLL_NS
        if (deadlock_holdoff > nanotime() and maing.g != NULL
                and (deadline < 0 or deadlock_holdoff < deadline)):
            sched.timer_m = mp       # wake to run checkdead again when the holdoff ends
            deadline = deadlock_holdoff
    gc_mutex_unlock(&sched.lock)
    if mp.is_m0 and signal_seen_since_note_clear():
        k = 2
    else:
        k = note_sleep_deadline(&mp.park, deadline)
    if k == 2 and mp.is_m0:
        # poked or interrupted by a signal: have M0 run Python's signal
        # handlers (any signal's, not only SIGINT's) before it sleeps again
        st_rel_i32(&sched.sigpending, 1)
    if k != 1:
        gc_mutex_lock(&sched.lock)
        if sched.timer_m == mp:
            sched.timer_m = NULL
        if mp.in_midle:
            mremove_idle(mp)
            note_clear(&mp.park)
            gc_mutex_unlock(&sched.lock)
            return 0
        gc_mutex_unlock(&sched.lock)
        note_sleep(&mp.park)     # already taken off midle: the hand-off is coming
    elif deadline >= 0:
        gc_mutex_lock(&sched.lock)
        if sched.timer_m == mp:
            sched.timer_m = NULL
        gc_mutex_unlock(&sched.lock)
    note_clear(&mp.park)
    if mp.nextp == NULL:
        return 0
    acquirep(mp, mp.nextp)
    mp.nextp = NULL
    return 1


cdef int64_t TIMER_POLL_NS = 1000000    # stopm: re-check an overdue timer while every P is busy

# ---------------------------------------------------------------- hand-off

cdef void entersyscall_block(gc_m *mp) noexcept nogil:
    """mp's G is about to block in the runtime: give its P to another M if
    the P has work, else to the idle list (Go's entersyscallblock+handoffp)."""
    cdef gc_p *pp = <gc_p *>xchg_ptr(<void **>&mp.p, NULL)   # sysmon may retake it too
    if pp == NULL:
        return
    gc_assert_msg(pp.m == <void *>mp, b"entersyscall_block: handing off a P this M does not own")
    pown_set(pp, NULL, POWN_SCHED)      # nobody's until the next acquirep
    add_rlx_i64(&sched.nhandoffs, 1)
    # Decided under sched.lock, as the P goes idle: a G queued on the global
    # queue just before (a sync G's token, by an M that found no idle P
    # since this one was in transit) or a timer added meanwhile (its kick
    # found no idle P to wake an M for) would otherwise be stranded with
    # the P idle and every M asleep.
    gc_mutex_lock(&sched.lock)
    if (not runq_empty(pp) or sched.gq.size != 0 or timers_due()
            or (ld_acq_i32(&timers.len) > 0 and sched.timer_m == NULL and not ld_rlx_i32(&bubble_on))
            or netpoll_needs_m()):
        gc_mutex_unlock(&sched.lock)
        startm(pp, 0)        # to run the work, or to take timer duty once it finds none
        return
    pidleput(pp)
    gc_mutex_unlock(&sched.lock)


cdef bint exitsyscall(gc_m *mp) noexcept nogil:
    """mp's sync G returns from a blocking call: take an idle P (Go's
    exitsyscall fast path). 0 if none is idle and the runtime still runs:
    the caller queues the G as a token and parks (exitsyscall_park)."""
    cdef gc_p *pp
    gc_mutex_lock(&sched.lock)
    pp = pidleget()
    if pp == NULL and not ld_acq_i32(&sched.stopping) and mp.gen == sched.gen:
        gc_mutex_unlock(&sched.lock)
        return 0
    gc_mutex_unlock(&sched.lock)
    if pp != NULL:
        acquirep(mp, pp)
    return 1


cdef bint exitsyscall_park(gc_m *mp, void *gptr, int32_t *status, void **lockedm) noexcept nogil:
    """The slow path (Go's exitsyscall0 + stoplockedm); takes sched.lock
    itself (the name says what it does: queue a token and park). gptr is mp's sync G;
    the caller took a queue reference for it. A sync G cannot move to another
    thread (its Python frames are on this one), so it goes on the global
    queue as a token and this M parks until the M that takes the token hands
    over its P (startlockedm). Returns 0 if it was not queued after all (a P
    went idle meanwhile, or the runtime is stopping): the caller drops the
    reference. Woken by teardown instead, mp returns without a P. status
    and lockedm are the G's fields (no Python object here: nogil)."""
    cdef gc_p *pp
    gc_mutex_lock(&sched.lock)
    pp = pidleget()
    if pp != NULL or ld_acq_i32(&sched.stopping) or mp.gen != sched.gen:
        gc_mutex_unlock(&sched.lock)
        if pp != NULL:
            acquirep(mp, pp)
        return 0
    note_clear(&mp.park)
    mp.nextp = NULL
    st_rel_i32(status, G_RUNNABLE)
    st_rel_ptr(lockedm, <void *>mp)
    globrunq_put(gptr)
    gc_mutex_unlock(&sched.lock)
    note_sleep(&mp.park)
    note_clear(&mp.park)
    if mp.nextp != NULL:
        acquirep(mp, mp.nextp)
        mp.nextp = NULL
    st_rel_i32(status, G_RUNNING)
    return 1


cdef void startlockedm(gc_m *mp, gc_m *lockedm) noexcept nogil:
    """mp took a token from a run queue for a sync G parked on lockedm: hand
    mp's P to lockedm and wake it (Go's startlockedm). mp is left without a
    P and goes looking for one (it will park: its P's work went with it)."""
    cdef gc_p *pp = <gc_p *>xchg_ptr(<void **>&mp.p, NULL)
    pp.m = NULL
    pown_set(pp, NULL, POWN_SCHED)
    lockedm.nextp = pp
    note_wakeup(&lockedm.park)

# ---------------------------------------------------------------- findrunnable

cdef void *findrunnable_now(gc_m *mp) noexcept nogil:
    """mp holds a P. One look for work that never blocks: the local queue,
    due timers, the global queue, then stealing (if not too many Ms spin
    already). Returns a G (its queue reference passes to mp), TIMERS_DUE,
    or NULL. Safe with or without the GIL: schedule() calls it first with
    the GIL held, so that an M with work elsewhere never drops the GIL just
    to find it. (Dropping and retaking the GIL every few goroutines starves
    a thread waiting for it: CPython's waiter asks for a switch only if
    nobody took the GIL for 5 ms, and the dropper retakes it first.)"""
    cdef gc_p *pp = mp.p
    cdef gc_p *victim
    cdef void *gp
    cdef int32_t n, i, k, start
    gp = runq_get(pp)
    if gp != NULL:
        return gp                # (schedule() fires due timers before every G)
    if timers_due():
        return TIMERS_DUE
    if ld_rlx_u32(&sched.gq.size) != 0:
        gc_mutex_lock(&sched.lock)
        gp = globrunq_get(pp, &sched.gq, 0, sched.nprocs)
        gc_mutex_unlock(&sched.lock)
        if gp != NULL:
            return gp
    gp = netpoll_try(mp)         # sockets ready? (zero timeout, one M at a time)
    if gp != NULL:
        return gp
    n = sched.nprocs
    if n > 1 and (mp.spinning or 2 * ld_acq_i32(&sched.nmspinning) < n - ld_acq_i32(&sched.npidle)):
        if not mp.spinning:
            mp.spinning = 1
            fetch_add_i32(&sched.nmspinning, 1)
        for k in range(4):
            start = gc_fastrand(&mp.fastrand) % n
            for i in range(n):
                victim = &sched.allp[(start + i) % n]
                if victim == pp:
                    continue
                gp = runq_steal(pp, victim, k == 3 and ld_rlx_i32(&victim.stuck))
                if gp != NULL:
                    add_rlx_i64(&sched.nsteals, 1)
                    resetspinning(mp)
                    return gp
    return NULL


cdef void *findrunnable(gc_m *mp) noexcept nogil:
    """Find a G to run for mp (which may hold no P), stealing, or park the M.
    Returns NULL when mp must go back to the loop top (runtime stopping,
    SIGINT pending for M0), TIMERS_DUE when mp (holding a P) should run
    timers. The returned G's queue reference passes to mp."""
    cdef gc_p *pp
    cdef void *gp
    while True:
        if ld_acq_i32(&sched.stopping) or mp.gen != sched.gen:
            return NULL
        if mp.is_m0 and ld_acq_i32(&sched.sigpending):
            return NULL
        pp = mp.p
        if pp == NULL:
            if timers_due() or any_work():
                # woken for a timer, or sysmon took our P while our G ran
                # and that G left work behind (a gosched onto the global
                # queue): take an idle P to run it. If none is idle, the
                # busy Ms run timers between goroutines and find the work.
                gc_mutex_lock(&sched.lock)
                pp = pidleget()
                gc_mutex_unlock(&sched.lock)
                if pp != NULL:
                    acquirep(mp, pp)
                    continue
            if not stopm(mp):
                if mp.is_m0 and ld_acq_i32(&sched.sigpending):
                    return NULL
            continue
        gp = findrunnable_now(mp)
        if gp != NULL:
            return gp
        # nothing: give up the P (rechecking the global queue under the lock)
        gc_mutex_lock(&sched.lock)
        if sched.gq.size != 0:
            gp = globrunq_get(pp, &sched.gq, 0, sched.nprocs)
            gc_mutex_unlock(&sched.lock)
            resetspinning(mp)
            return gp
        mp.p = NULL
        pidleput(pp)
        gc_mutex_unlock(&sched.lock)
        if mp.spinning:
            mp.spinning = 0
            fetch_add_i32(&sched.nmspinning, -1)
            # a G queued while we spun saw nmspinning > 0 and woke nobody
            if any_work():
                gc_mutex_lock(&sched.lock)
                pp = pidleget()
                gc_mutex_unlock(&sched.lock)
                if pp != NULL:
                    acquirep(mp, pp)
                    mp.spinning = 1
                    fetch_add_i32(&sched.nmspinning, 1)
                    continue
        if not stopm(mp) and mp.is_m0 and ld_acq_i32(&sched.sigpending):
            return NULL


cdef inline void resetspinning(gc_m *mp) noexcept nogil:
    if mp.spinning:
        mp.spinning = 0
        if fetch_add_i32(&sched.nmspinning, -1) == 1:
            wakep()    # we were the last spinner: keep one looking for the rest


cdef bint any_work() noexcept nogil:
    cdef int32_t i
    if ld_rlx_u32(&sched.gq.size) != 0:
        return 1
    for i in range(sched.nprocs):
        if not runq_empty(&sched.allp[i]):
            return 1
    return 0


# ---------------------------------------------------------------- the M loop

cdef int schedule(gc_m *mp) except -1:
    """Requires GIL. Run Gs until the runtime stops (or SIGINT for M0)."""
    cdef void *gp
    cdef gc_p *pp
    cdef gc_m *lockedm
    while True:
        if ld_rlx_i32(&sched.stopping) or mp.gen != sched.gen:
            return 0
        if mp.is_m0 and ld_rlx_i32(&sched.sigpending):
            st_rel_i32(&sched.sigpending, 0)
            PyErr_CheckSignals()
        gp = NULL
        pp = mp.p
        if pp != NULL and timers_due():
            run_timers(pp)
        if pp != NULL:
            st_rlx_u32(&pp.schedtick, pp.schedtick + 1)
            # fairness: every 61st G comes from the global queue
            if pp.schedtick % 61 == 0 and ld_rlx_u32(&sched.gq.size) != 0:
                gc_mutex_lock(&sched.lock)
                gp = globrunq_get(pp, &sched.gq, 1, sched.nprocs)
                gc_mutex_unlock(&sched.lock)
            if gp == NULL:
                gp = findrunnable_now(mp)     # keeps the GIL (see there)
        if gp == NULL:
            with nogil:
                gp = findrunnable(mp)
            if gp == NULL:
                continue
        if mp.spinning:
            # found work: stop spinning, and if it was the last spinner,
            # wake another M for what may be left (Go's resetspinning)
            resetspinning(mp)
        if gp == TIMERS_DUE:
            run_timers(mp.p)
            continue
        if (<G>gp).kind == G_SYNC and (<G>gp).thread_ident != 0:
            # a started sync G: the token of its parked thread (exitsyscall_park)
            lockedm = <gc_m *>xchg_ptr(&(<G>gp).lockedm, NULL)
            if lockedm != NULL:
                startlockedm(mp, lockedm)
            Py_DECREF(<object>gp)        # the token's queue reference
            continue
        if mp.is_m0 and (<G>gp).kind == G_SYNC and not (<G>gp).is_main:
            # M0 is the thread inside run(): a sync goroutine would capture
            # it (run() could not return while the function blocks), so M0
            # lends its P to another M for it and goes looking for work
            lend_p(mp, gp)
            continue
        if GOCORE_DEBUG:
            gc_assert_msg(mp.p != NULL and mp.p.m == <void *>mp and mp.p.status == P_RUNNING,
                          b"schedule: executing without owning a running P")
        pown_enter_g(mp)
        execute(mp, gp)
        pown_leave_g(mp)             # 0: sysmon took the P meanwhile (mp.p is now NULL)


cdef void lend_p(gc_m *mp, void *gptr) noexcept:
    """Requires GIL; mp holds a P and owns gptr's queue reference. Put the G
    in the P's runnext and hand the P to another (idle or new) M."""
    cdef gc_p *pp = mp.p
    runq_put(pp, gptr, 1, &sched.lock, &sched.gq)
    if cas_ptr(<void **>&mp.p, <void *>pp, NULL):
        pp.m = NULL
        with nogil:
            startm(pp, 0)
