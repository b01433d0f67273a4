# gocore/_netpoll.pxi - the network poller's scheduler side (Go's
# netpoll.go + the netpoll parts of proc.go), `include`d by _sched.pyx so
# that its hooks are plain C calls of the scheduler.
#
# The C half (epoll, eventfd, poll descriptors and their slot protocol) is
# csrc/gocore_netpoll.h; read its header comment first.
#
# Who polls (all under gc_np.pollmu, one poller at a time):
#   * an M about to park (stopm) while Gs wait on descriptors blocks in
#     epoll_wait until the next timer instead of sleeping on its note, once
#     it has won gc_np.blocker (0 -> 1). It stays off the idle-M list: a
#     hand-off never targets it. A new earliest timer (timers_kick), the
#     runtime stopping (teardown) and a signal for M0 break the wait through
#     the eventfd. Readied Gs go to an idle P that the poller acquires (they
#     run on its M), else to the global queue.
#   * an M with a P and nothing local polls with a zero timeout before it
#     steals, if nobody blocks in epoll_wait and pollmu is free (trylock:
#     one at a time); what it readies goes on its own P.
#   * sysmon polls with a zero timeout when nobody has for 10 ms while Ps
#     are busy (Gs readied onto the global queue).
# checkdead counts Gs parked on descriptors (gc_np.nwait) as progress: a
# peer, a plain thread or a deadline may still wake them. The M blocked in
# epoll_wait is counted idle there.
#
# A G's waiting record (np_waitrec) lives in its operation object (async)
# or on its thread's C stack (blocking_*), alive while the G is parked.
# nwait: +1 by the waiter when its slot goes NIL -> WAIT, -1 by the waiter
# itself once awake (or by teardown's _cancel): never by the unblocker.

from libc.stdint cimport uintptr_t
from gocore._includes.netpoll cimport *

cdef int64_t NETPOLL_SYSMON_NS = 10000000     # sysmon polls if nobody has for 10 ms


cdef inline bint np_active() noexcept nogil:
    return ld_acq_i32(&gc_np.epfd) >= 0 and ld_acq_i32(&gc_np.nwait) > 0


cdef void np_ready_one(void *gptr, gc_p *pp, int32_t *nglobal) noexcept nogil:
    """A G won from a slot: claim it (teardown may have claimed it first:
    then it is not ours) and make it runnable - an ASYNC G onto pp's ring,
    or, without pp, the global queue (counted in nglobal; caller holds
    sched.lock then); a THREAD/SYNC G's thread is woken (goready's logic,
    without the GIL: nothing here touches a reference count)."""
    if not cas_u32(&(<G>gptr).park_claim, 0, 1):
        return
    if (<G>gptr).kind != G_ASYNC:
        if (<G>gptr).kind == G_THREAD and not (<G>gptr).is_main:
            fetch_add_i32(&nthreadparked, -1)
            fetch_add_i64(&threadparkseq, 1)
        if (<G>gptr).counted_blocked:
            (<G>gptr).counted_blocked = 0
            fetch_add_i32(&sched.nmblocked, -1)
        st_rel_i32(&(<G>gptr).status, G_RUNNING)
        note_wakeup(&(<G>gptr).note)
        return
    st_rel_i32(&(<G>gptr).status, G_RUNNABLE)
    if pp != NULL:
        runq_put(pp, gptr, 0, &sched.lock, &sched.gq)
    else:
        if gqueue_put(&sched.gq, gptr) < 0:
            gc_throw(b"out of memory in the global run queue")
        nglobal[0] += 1


cdef void np_inject(void **gs, int n, gc_p *pp) noexcept nogil:
    """Ready the n Gs of one poll: onto pp (the poller's own P), or the
    global queue and wake Ms for them."""
    cdef int32_t nglobal = 0
    cdef int i
    if n == 0:
        return
    if pp != NULL:
        for i in range(n):
            np_ready_one(gs[i], pp, &nglobal)
        # The poller runs one of them; the rest wait on its P unless an idle
        # P's M steals them (goready's rule; Go's injectglist starts Ms for
        # idle Ps). Without this a free-threaded server at gomaxprocs 2 ran
        # every connection on the polling M (E2W: 1.00x of gomaxprocs 1).
        # GIL builds keep them local, as goready does: a second M would
        # only contend for the GIL.
        if n > 1 and not GC_GIL_BUILD:
            wakep()
        return
    gc_mutex_lock(&sched.lock)
    for i in range(n):
        np_ready_one(gs[i], NULL, &nglobal)
    gc_mutex_unlock(&sched.lock)
    if nglobal > 0:
        wakep()


cdef int netpoll_stopm(gc_m *mp) noexcept nogil:
    """stopm's hook, mp holding no P: block in epoll_wait until the next
    timer if Gs wait on descriptors and no other M does. -1: not polling
    (the caller parks on its note as before); 0: polled, woke without a P;
    1: polled and acquired a P for the Gs it readied."""
    cdef void *gs[2 * GC_NETPOLL_MAXEV]
    cdef int n, timeout_ms
    cdef int64_t when, now
    cdef gc_p *pp = NULL
    if not np_active() or ld_acq_i32(&sched.stopping) or mp.gen != ld_acq_i64(&sched.gen):
        return -1
    if not cas_i32(&gc_np.blocker, 0, 1):
        return -1
    gc_mutex_lock(&gc_np.pollmu)
    fence_seq_cst()      # blocker=1 before we look at timers / the stop flag (timers_kick, teardown look the other way)
    if ld_acq_i32(&sched.stopping):
        st_rel_i32(&gc_np.blocker, 0)
        gc_mutex_unlock(&gc_np.pollmu)
        return 0
    if mp.is_m0 and ld_acq_i32(&sched.sigpending):
        timeout_ms = 0
    elif any_work() or timers_due():
        timeout_ms = 0
    else:
        when = ld_acq_i64(&timers.next_when)
        if when == GC_NEVER or ld_rlx_i32(&bubble_on):
            timeout_ms = -1      # (a bubble's timers are in fake time: not waited for here)
        else:
            now = nanotime()
            if when <= now:
                timeout_ms = 0
            elif when - now > <int64_t>3600000000000:
                timeout_ms = 3600 * 1000
            else:
                timeout_ms = <int>((when - now + 999999) // 1000000)   # never early
    add_rlx_i64(&gc_np.nblocking, 1)
    n = netpoll_wait(timeout_ms, gs)
    st_rel_i64(&gc_np.lastpoll, nanotime())
    st_rel_i32(&gc_np.blocker, 0)
    if n > 0:
        gc_mutex_lock(&sched.lock)
        pp = pidleget()
        gc_mutex_unlock(&sched.lock)
        if pp != NULL:
            acquirep(mp, pp)
        np_inject(gs, n, pp)
    gc_mutex_unlock(&gc_np.pollmu)
    return 1 if pp != NULL else 0


cdef void *netpoll_try(gc_m *mp) noexcept nogil:
    """findrunnable_now's hook, mp holding a P with nothing local: a
    zero-timeout poll before stealing (one M at a time, and not while one
    blocks in epoll_wait). Returns a G from mp's P (its queue reference
    passes to mp) or NULL."""
    cdef void *gs[2 * GC_NETPOLL_MAXEV]
    cdef int n
    if not np_active() or ld_acq_i32(&gc_np.blocker):
        return NULL
    if not gc_mutex_trylock(&gc_np.pollmu):
        return NULL
    if ld_acq_i32(&sched.stopping):          # teardown quiesces under pollmu
        gc_mutex_unlock(&gc_np.pollmu)
        return NULL
    n = netpoll_wait(0, gs)
    st_rel_i64(&gc_np.lastpoll, nanotime())
    np_inject(gs, n, mp.p)
    gc_mutex_unlock(&gc_np.pollmu)
    if n == 0:
        return NULL
    return runq_get(mp.p)


cdef void netpoll_sysmon(int64_t now) noexcept nogil:
    """sysmon's hook (some P busy): poll if nobody has for 10 ms."""
    cdef void *gs[2 * GC_NETPOLL_MAXEV]
    cdef int n
    cdef int64_t last
    if not np_active() or ld_acq_i32(&gc_np.blocker):
        return
    last = ld_acq_i64(&gc_np.lastpoll)
    if now - last < NETPOLL_SYSMON_NS:
        return
    if not gc_mutex_trylock(&gc_np.pollmu):
        return
    if not ld_acq_i32(&sched.stopping):      # teardown quiesces under pollmu
        n = netpoll_wait(0, gs)
        st_rel_i64(&gc_np.lastpoll, nanotime())
        np_inject(gs, n, NULL)
    gc_mutex_unlock(&gc_np.pollmu)


cdef inline bint netpoll_timer_kick() noexcept nogil:
    """timers_kick's hook: 1 if an M blocks in epoll_wait and was broken
    (it recomputes its timeout from the new earliest timer)."""
    fence_seq_cst()      # the timer is in the heap before we look (netpoll_stopm looks the other way)
    if ld_acq_i32(&gc_np.blocker):
        netpoll_break()
        return 1
    return 0


cdef inline int32_t netpoll_blocked_ms() noexcept nogil:
    """checkdead: Ms to count as idle (the one blocked in epoll_wait)."""
    return 1 if ld_acq_i32(&gc_np.blocker) else 0


cdef inline bint netpoll_needs_m() noexcept nogil:
    """entersyscall_block: a P going idle must go to an M that will poll
    if Gs wait on descriptors and no M blocks in epoll_wait."""
    return np_active() and not ld_acq_i32(&gc_np.blocker)


cdef inline bint netpoll_waiters() noexcept nogil:
    """checkdead: a G waits on a descriptor: something outside (a peer, a
    plain thread, a deadline) may still wake it - never a deadlock."""
    return ld_acq_i32(&gc_np.nwait) > 0


cdef inline void netpoll_stop_break() noexcept nogil:
    """stop_the_world: `stopping` is set; break a blocking poller (it
    checks `stopping` after announcing itself, so one side sees the other)."""
    fence_seq_cst()
    netpoll_break()


cdef void netpoll_quiesce() noexcept nogil:
    """teardown, once `stopping` is set: break a blocking poller, then wait
    for any poll in progress (sysmon's) to finish, so that nothing readies
    a G after this."""
    netpoll_break()
    gc_mutex_lock(&gc_np.pollmu)
    gc_mutex_unlock(&gc_np.pollmu)


# ---------------------------------------------------------------- the API of _net.pyx

cdef void np_commit_cb(void *arg) noexcept nogil:
    """gopark's unlockf for a G parking on a slot (it has stopped running):
    publish it in the slot; if an unblocker came between its EAGAIN and
    now, ready it at once instead (Go's netpollblockcommit returning
    false)."""
    cdef np_waitrec *rec = <np_waitrec *>arg
    cdef void *g = rec.g
    if pd_commit(rec.slot, g):
        if gc_tls_m == NULL and not ld_acq_i32(&gc_np.blocker):
            wakep()      # a plain thread: make sure some M polls (a sync G's
                         # M does it in entersyscall_block, netpoll_needs_m)
        return
    if cas_u32(&(<G>g).park_claim, 0, 1):
        with gil:
            goready(<G>g)


cdef gc_pollfd *np_open(int fd) except NULL:
    """Requires GIL. A descriptor for fd (non-blocking), registered with the
    epoll instance (created on first use)."""
    cdef gc_pollfd *pd = pd_alloc(fd)
    if pd == NULL:
        raise MemoryError()
    if pd_register(pd) < 0:
        e = errno_()
        pd_free(pd)
        raise OSError(e, os.strerror(e))
    return pd


cdef extern from "errno.h":
    int errno
cdef inline int errno_() noexcept nogil:
    return errno


cdef int np_park_async(G gp, gc_pollfd *pd, int mode, np_waitrec *rec, object op) except -1:
    """Requires GIL; gp is the running ASYNC G, its syscall said EAGAIN.
    Returns 1: readiness was noted meanwhile (retry the syscall now); 2:
    the descriptor is closing or its deadline passed (check and raise);
    0: parked - the caller yields the park sentinel, then calls
    np_after_park once resumed. op (gp.waiting) must have a _cancel()
    calling np_cancel."""
    cdef int r
    if pd_register(pd) < 0:       # a fork child re-registers inherited descriptors
        e = errno_()
        raise OSError(e, os.strerror(e))
    r = pd_prepare_wait(pd, mode)
    if r == 1:
        return 1
    if r < 0:
        gc_throw(b"netpoll: two waiters on one slot (reads or writes not serialised)")
    fetch_add_i32(&gc_np.nwait, 1)
    fence_seq_cst()      # WAIT stored before we look at closing/deadline; the closer stores, fences, looks at the slot
    if pd_check(pd, mode) != 0:      # close or a deadline came before WAIT was visible
        pd_unwait(pd, mode)
        fetch_add_i32(&gc_np.nwait, -1)
        return 2
    rec.slot = pd_slot(pd, mode)
    rec.g = <void *>gp
    gp.park_claim = 0
    gopark_async(gp, np_commit_cb, <void *>rec, W_IO_READ if mode == c'r' else W_IO_WRITE, op)
    return 0


cdef int np_after_park(G gp, gc_pollfd *pd, int mode) except -1:
    """Requires GIL; gp resumed after np_park_async (or after a failed
    commit). Empties the slot; raises GoroutineExit if teardown woke it."""
    pd_unwait(pd, mode)
    fetch_add_i32(&gc_np.nwait, -1)
    gp.waiting = None
    check_wake(gp)
    return 0


cdef void np_cancel(G gp, gc_pollfd *pd, int mode) noexcept:
    """gp, parked on pd, is being closed without resuming (teardown's
    close_goroutine calls the operation's _cancel; or the operation object
    dies parked): take it out of the slot (unless an unblocker already won
    it) and stop counting it. The caller calls this at most once per park."""
    if not pd_evict(pd, mode, <void *>gp):
        pd_unwait(pd, mode)
    fetch_add_i32(&gc_np.nwait, -1)


cdef int np_block_thread(G gp, gc_pollfd *pd, int mode, object what) except -1:
    """Requires GIL; gp is a THREAD or SYNC G (blocking_* twins) whose
    syscall said EAGAIN. Parks its thread on the slot, handing its P off at
    once (gopark_thread). Returns when the caller should retry (readiness,
    close or deadline: the caller checks); raises GoroutineExit at
    teardown."""
    cdef np_waitrec rec
    cdef int r
    if pd_register(pd) < 0:
        e = errno_()
        raise OSError(e, os.strerror(e))
    r = pd_prepare_wait(pd, mode)
    if r == 1:
        return 0
    if r < 0:
        gc_throw(b"netpoll: two waiters on one slot (reads or writes not serialised)")
    fetch_add_i32(&gc_np.nwait, 1)
    fence_seq_cst()      # as in np_park_async
    if pd_check(pd, mode) != 0:
        pd_unwait(pd, mode)
        fetch_add_i32(&gc_np.nwait, -1)
        return 0
    rec.slot = pd_slot(pd, mode)
    rec.g = <void *>gp
    gp.park_claim = 0
    try:
        gopark_thread(gp, np_commit_cb, <void *>&rec, W_IO_READ if mode == c'r' else W_IO_WRITE,
                      what, -1)
    finally:
        if not pd_evict(pd, mode, <void *>gp):   # normally already out: an unblocker won it
            pd_unwait(pd, mode)
        fetch_add_i32(&gc_np.nwait, -1)
        gp.waiting = None
    check_wake(gp)
    return 0


cdef void np_wake_slot(gc_pollfd *pd, int mode) noexcept:
    """Requires GIL (an M with a P, or any thread): unblock pd's waiter in
    mode without readiness (close, deadline): it wakes and re-checks.
    The caller has stored what the waiter will find (closing, a passed
    deadline); the fence orders that store before our look at the slot
    (Dekker with the waiter's WAIT-then-check, see np_park_async)."""
    fence_seq_cst()
    cdef void *g = pd_unblock(pd, mode, 0)
    if g != NULL and cas_u32(&(<G>g).park_claim, 0, 1):
        goready(<G>g)


cdef bint np_close(gc_pollfd *pd) noexcept:
    """Requires GIL. Mark pd closing (1 the first time, 0 after) and wake
    both of its waiters at once; they see `closing` and fail with
    ErrClosed. Deadline timers armed before are ignored when they fire."""
    if not cas_i32(&pd.closing, 0, 1):
        return 0
    gc_mutex_lock(&pd.lock)
    pd.rseq += 1
    pd.wseq += 1
    gc_mutex_unlock(&pd.lock)
    np_wake_slot(pd, c'r')
    np_wake_slot(pd, c'w')
    return 1


cdef void np_release(gc_pollfd *pd) noexcept:
    """The last reference is gone (closing, nothing inside the fd): take fd
    out of epoll and recycle pd. The caller closes the fd afterwards."""
    pd_unregister(pd)
    pd_free(pd)


cdef uint32_t np_set_deadline(gc_pollfd *pd, int mode, int64_t when, int64_t now) noexcept nogil:
    """Set the read or write deadline: 0 clears, a value at or before now
    marks it passed (the caller then wakes the waiter: np_wake_slot).
    Returns the deadline generation a timer armed for `when` must carry."""
    cdef uint32_t seq
    cdef int64_t v = -1 if (when != 0 and when <= now) else when
    gc_mutex_lock(&pd.lock)
    if mode == c'r':
        pd.rseq += 1
        seq = pd.rseq
        st_rel_i64(&pd.rd, v)
    else:
        pd.wseq += 1
        seq = pd.wseq
        st_rel_i64(&pd.wd, v)
    gc_mutex_unlock(&pd.lock)
    return seq


cdef void np_deadline_fired(gc_pollfd *pd, int mode, uint32_t seq) noexcept:
    """Requires GIL. A deadline timer armed for generation seq fired: if
    the deadline was not moved since, mark it passed and wake the waiter."""
    cdef bint hit = 0
    gc_mutex_lock(&pd.lock)
    if mode == c'r' and pd.rseq == seq and ld_acq_i64(&pd.rd) > 0:
        st_rel_i64(&pd.rd, -1)
        hit = 1
    elif mode == c'w' and pd.wseq == seq and ld_acq_i64(&pd.wd) > 0:
        st_rel_i64(&pd.wd, -1)
        hit = 1
    gc_mutex_unlock(&pd.lock)
    if hit:
        np_wake_slot(pd, mode)


def _netpoll_stats():
    """Poller counters (racy snapshot): polls, blocking polls, Gs readied,
    Gs waiting on descriptors, descriptors in use."""
    return {"polls": gc_np.npolls, "blocking_polls": gc_np.nblocking, "readied": gc_np.nready,
            "io_waiters": ld_acq_i32(&gc_np.nwait), "descriptors": gc_pd_inuse,
            "epoll_fd": ld_acq_i32(&gc_np.epfd)}


cdef extern from *:
    """
    static void gc_np_sigbreak(void) { netpoll_break(); }
    static void gc_np_install_sigbreak(void) { gc_sig_netbreak = gc_np_sigbreak; }
    """
    void gc_np_install_sigbreak() nogil

gc_np_install_sigbreak()


def _netpoll_late_event_check(int fd_a, int fd_b):
    """Tests: an event tagged for a freed descriptor is dropped even when
    the descriptor was reused for another fd at once (type-stable memory,
    LIFO free list); an event with the current tag is delivered. Returns
    (reused, slot after the stale event, slot after a current one)."""
    cdef void *gs[2]
    cdef gc_pollfd *a = pd_alloc(fd_a)
    cdef gc_pollfd *b
    cdef uint64_t old_tag
    cdef uintptr_t after_stale, after_fresh
    if a == NULL:
        raise MemoryError()
    old_tag = pd_tag(a)
    pd_free(a)
    b = pd_alloc(fd_b)
    if b == NULL:
        raise MemoryError()
    netpoll_dispatch(old_tag, EPOLLIN_, gs, 0)
    after_stale = b.rg
    netpoll_dispatch(pd_tag(b), EPOLLIN_, gs, 0)
    after_fresh = b.rg
    pd_free(b)
    return (a == b, after_stale, after_fresh)


cdef extern from "sys/epoll.h":
    uint32_t EPOLLIN_ "EPOLLIN"


def _netpoll_after_fork_child():
    netpoll_after_fork_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_netpoll_after_fork_child)
