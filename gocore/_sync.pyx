# cython: language_level=3, freethreading_compatible=True
# gocore/_sync.pyx - Go's sync package (sync/mutex.go, rwmutex.go,
# waitgroup.go, once.go; golang.org/x/sync/semaphore) on the scheduler's
# park/ready. Structures and the semaq invariants: _sync.pxd.
#
# One wait-queue primitive (Go's sema.go semacquire/semrelease): a semaq is
# a FIFO of swaiter records under a gc_mutex. Every blocking operation is
#   1. a fast path on the primitive's state (one CAS, or a short critical
#      section under q.lock), then
#   2. under q.lock: re-check, link a swaiter (embedded in the awaitable, or
#      on the C stack of a thread) and gopark with q.lock as the unlock
#      function's argument - the lock is released only after the G has
#      stopped (ASYNC) or before the thread sleeps on its note, so a release
#      that takes q.lock after us always finds the waiter (no lost wake-up);
#   3. the releaser, under q.lock, unlinks the waiter, wins its G with the
#      park_claim CAS, usually hands the resource over directly (`granted`),
#      releases q.lock and then calls goready - exactly one goready per park.
# One path per operation for both kinds of caller: op_enqueue (steps 1-2)
# and, after the park, op_woken (retry, compete again, or done). The
# awaitable's step() (lightweight goroutines: yields PARK; an asyncio
# task's wait goes on in _SyncOp.aio_wait, on a G_AIO pseudo-G, yielding
# its future: gocore/_aiowait.pxi) and thread_wait (threads and sync
# goroutines: parks the OS thread) are short shells over it, as in
# _chan.pyx. No Python-level lock, no loop that polls.
#
# Mutex fairness (Go's two modes). Normal mode: unlock clears LOCKED and
# wakes the head waiter (setting WOKEN so that further unlocks do not wake
# more until it has run), which then competes with newly arriving lockers;
# a running goroutine usually wins (fast, no hand-off through the run
# queue) and the loser goes back to the *front* of the queue. Starvation
# mode: when the head waiter has waited longer than 1 ms, unlock hands the
# lock to it directly (LOCKED stays set, `granted`), and STARVING stops new
# arrivals from barging; it ends when the queue empties or a waiter that
# waited less than 1 ms is served. Hence no waiter waits forever.
# Rejected: always handing off (a lock convoy: every lock/unlock pair costs
# a trip through the run queue) and never handing off (starvation).
#
# RWMutex and Semaphore hand off directly always (FIFO): a release grants
# the head waiter(s) as long as they fit, so a waiting writer blocks new
# readers and a big Semaphore waiter at the head blocks smaller ones behind
# it (golang.org/x/sync/semaphore). WaitGroup and Once release every waiter
# at once.
#
# Reference ownership: the queue never owns a reference (records and Gs
# are borrowed, see _sync.pxd). An awaitable owns one reference to its
# primitive (`prim`), so the primitive outlives every record linked into
# it; a parked thread's caller holds the primitive likewise.

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from libc.stdint cimport uint32_t, int32_t, int64_t

from gocore._includes.atomic cimport (cas_u32, ld_acq_u32, ld_rlx_u32, st_rel_u32,
                                      cas_i64, ld_acq_i64)
from gocore._includes.futex cimport gc_mutex, gc_mutex_trylock, gc_mutex_lock_slow, gc_mutex_unlock
from gocore._includes.waitq cimport (gc_waitlink, gc_waitq_count, gc_waitq_push, gc_waitq_unlink, gc_waitq_peek,
                                     gc_waitq_take)
from gocore._includes.clock cimport nanotime
from gocore._includes.pytype cimport (gc_internal_type, gc_warn_unawaited, gc_awaited_again,
                                      gc_parked_elsewhere, gc_mark_awaited)
from gocore._includes.config cimport GOCORE_DEBUG, gc_dbg_ctr, GC_DBG_SYNC_WAITERS
from gocore._sched cimport (G, getg, getg_or_none, on_async_g, gopark_async,
                            gopark_thread, goready, check_wake, deadlock_suspect,
                            goroutine_closed_outside, is_async_function,
                            park_sentinel, dbg_counters,
                            G_ASYNC, G_AIO, WAKE_NORMAL,
                            aio_waiter_g, aio_rearm, aio_park, aio_withdraw, aio_unpark,
                            W_MUTEX, W_RWMUTEX_R, W_RWMUTEX_W, W_WAITGROUP,
                            W_ONCE, W_SEMAPHORE)
from gocore._chan cimport close_then_throw

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

from gocore._sched import DeadlockError

cdef object PARK = park_sentinel()
cdef PyObject *PARK_PTR = <PyObject *>PARK

if GOCORE_DEBUG:
    gc_dbg_ctr = dbg_counters()     # count linked waiters in _sched's counters

cdef int64_t STARVE_NS = 1000000          # Go's starvationThresholdNs: 1 ms

# Mutex.state bits
cdef enum:
    M_LOCKED = 1        # held
    M_WOKEN = 2         # a normal-mode waiter was woken and has not run yet
    M_STARVING = 4      # hand-off mode; only while LOCKED
    M_WAITERS = 8       # q is (probably) non-empty; set/cleared under q.lock

# operations (the awaitable's op, the blocking twins' op)
cdef enum:
    OP_LOCK = 0         # Mutex.lock
    OP_RLOCK = 1        # RWMutex.rlock
    OP_WLOCK = 2        # RWMutex.lock
    OP_WG_WAIT = 3      # WaitGroup.wait
    OP_ONCE = 4         # Once.do: wait for the first caller
    OP_ACQUIRE = 5      # Semaphore.acquire

cdef inline int32_t op_reason(int32_t op) noexcept nogil:
    if op == OP_LOCK:
        return W_MUTEX
    if op == OP_RLOCK:
        return W_RWMUTEX_R
    if op == OP_WLOCK:
        return W_RWMUTEX_W
    if op == OP_WG_WAIT:
        return W_WAITGROUP
    if op == OP_ONCE:
        return W_ONCE
    return W_SEMAPHORE

cdef tuple AWAIT_FORMS = ("await m.lock()", "await rw.rlock()", "await rw.lock()",
                          "await wg.wait()", "await once.do(fn)", "await sem.acquire(k)")
cdef tuple BLOCKING_FORMS = ("m.blocking_lock()", "rw.blocking_rlock()", "rw.blocking_lock()",
                             "wg.blocking_wait()", "once.blocking_do(fn)", "sem.blocking_acquire(k)")


# ---------------------------------------------------------------- the wait queue

cdef inline void semaq_lock(semaq *q) noexcept:
    """Requires GIL. Waits for the lock with the GIL released."""
    if not gc_mutex_trylock(&q.lock):
        with nogil:
            gc_mutex_lock_slow(&q.lock)

cdef inline void semaq_unlock(semaq *q) noexcept nogil:
    gc_mutex_unlock(&q.lock)

cdef void semaq_unlock_cb(void *lock) noexcept nogil:
    """gopark's unlock function: the semaq's lock. Any thread; nogil."""
    gc_mutex_unlock(<gc_mutex *>lock)

# The queue is csrc/gocore_waitq.h's (shared with channels; its comment
# states the protocol); these bind it to a semaq's lock and debug counter.

cdef inline void semaq_push(semaq *q, swaiter *w, bint front) noexcept nogil:
    """Caller holds q.lock; w is not linked."""
    gc_waitq_push(&q.wq, &w.link, front, &q.lock, GC_DBG_SYNC_WAITERS)

cdef inline void semaq_unlink(semaq *q, swaiter *w) noexcept nogil:
    """Caller holds q.lock; w is linked into q."""
    gc_waitq_unlink(&q.wq, &w.link, &q.lock, GC_DBG_SYNC_WAITERS)

cdef inline swaiter *semaq_peek(semaq *q) noexcept nogil:
    """Caller holds q.lock. The first waiter whose G is still unclaimed;
    zombies met on the way are unlinked (their owners see linked == 0)."""
    return <swaiter *>gc_waitq_peek(&q.wq, &q.lock, GC_DBG_SYNC_WAITERS)

cdef inline bint semaq_take(semaq *q, swaiter *w) noexcept nogil:
    """Caller holds q.lock; w is linked. Unlink w and win its G (acq_rel
    CAS): 1 if we own w now, 0 if another claimer was faster (w is then a
    zombie its owner cleans up)."""
    return gc_waitq_take(&q.wq, &w.link, &q.lock, GC_DBG_SYNC_WAITERS)

cdef inline void waiter_init(swaiter *w, G gp) noexcept:
    """Requires GIL. w is about to be linked for gp (its t0 and n are kept)."""
    w.link.g = <PyObject *>gp
    w.link.claim = &gp.park_claim
    w.link.next = w.link.prev = NULL
    w.link.linked = 0
    w.granted = 0

cdef inline void chain_add(swaiter **head, swaiter **tail, swaiter *w) noexcept nogil:
    """Append w, claimed and unlinked (its link.next is the claimer's), to
    the list head..tail for ready_list."""
    w.link.next = NULL
    if tail[0] == NULL:
        head[0] = w
    else:
        tail[0].link.next = &w.link
    tail[0] = w

cdef inline void ready_list(swaiter *w) noexcept:
    """Requires GIL; no lock held. goready every G of a list of claimed
    records chained through next (read before goready: a thread's record
    dies with its frame)."""
    cdef swaiter *nxt
    cdef PyObject *g
    while w != NULL:
        nxt = <swaiter *>w.link.next
        g = w.link.g
        w.link.next = NULL
        goready(<G>g)
        w = nxt


# ---------------------------------------------------------------- errors

cdef object park_error(int32_t op, bint thread):
    if thread:
        return RuntimeError(
            f"{BLOCKING_FORMS[op]} would block a lightweight goroutine's worker thread: "
            f"use `{AWAIT_FORMS[op]}` inside async goroutines")
    return RuntimeError(
        f"{AWAIT_FORMS[op]} outside a gocore goroutine or asyncio task: plain threads and sync "
        f"goroutines use {BLOCKING_FORMS[op]}")

cdef int refuse_park(int32_t op, bint thread, bint suspect) except -1:
    """Requires GIL; no lock held. The operation must wait but may not:
    the wrong kind of goroutine, or (suspect) it was just woken by
    deadlock detection and nothing has changed since (_sched's
    deadlock_suspect)."""
    if suspect:
        raise DeadlockError("all goroutines are asleep - deadlock!")
    raise park_error(op, thread)

cdef inline bint can_park(G gp, bint thread) noexcept:
    """May gp park in this mode? (Requires GIL.) Not thread: a lightweight
    goroutine, or an asyncio task's pseudo-G (_SyncOp.aio_wait)."""
    if gp is None:
        return False
    if thread:
        return gp.kind != G_ASYNC
    return gp.kind == G_ASYNC or gp.kind == G_AIO


# ---------------------------------------------------------------- Mutex

cdef inline bint mutex_trylock(Mutex m) noexcept:
    """Any thread. The fast path (and normal mode's barging): take the lock
    if it is free and not being handed off. acq_rel CAS: the holder's
    critical section happens-after the previous unlock."""
    cdef uint32_t s = ld_rlx_u32(&m.state)
    if s & (M_LOCKED | M_STARVING):
        return False
    return cas_u32(&m.state, s, s | M_LOCKED)

cdef int mutex_enqueue(Mutex m, swaiter *w, G gp, bint thread, bint woken,
                       bint suspect) except -1:
    """Requires GIL. Slow path of lock: 0 acquired; 1 w linked and q.lock
    HELD (the caller parks). woken: gp was woken in normal mode and comes
    back (clears WOKEN; re-queues at the front, keeping its t0)."""
    cdef uint32_t s, s2
    semaq_lock(&m.q)
    while True:
        s = ld_acq_u32(&m.state)
        if woken and (s & M_WOKEN):
            if not cas_u32(&m.state, s, s & ~M_WOKEN):
                continue
            s &= ~M_WOKEN
        if not (s & M_LOCKED):
            # free (STARVING never outlives LOCKED, but clear it to be safe)
            if cas_u32(&m.state, s, (s | M_LOCKED) & ~M_STARVING):
                semaq_unlock(&m.q)
                return 0
            continue
        if suspect or not can_park(gp, thread):
            semaq_unlock(&m.q)
            refuse_park(OP_LOCK, thread, suspect)
        s2 = s | M_WAITERS
        if woken and nanotime() - w.t0 > STARVE_NS:
            s2 |= M_STARVING            # stop barging: the next unlock hands off
        if s2 == s or cas_u32(&m.state, s, s2):
            break
    if not woken:
        w.t0 = nanotime()
    waiter_init(w, gp)
    gp.park_claim = 0
    semaq_push(&m.q, w, woken)
    return 1

cdef int mutex_unlock_slow(Mutex m) except -1:
    """Requires GIL. Unlock with waiters, WOKEN or STARVING set (or a
    misuse). While we hold q.lock and LOCKED is set, nobody else changes
    state (fast lockers need LOCKED clear; other slow paths need q.lock),
    so plain release stores suffice until we clear LOCKED."""
    cdef uint32_t s, ns
    cdef swaiter *w
    cdef int64_t now
    semaq_lock(&m.q)
    s = ld_acq_u32(&m.state)
    if not (s & M_LOCKED):
        semaq_unlock(&m.q)
        raise RuntimeError("sync: unlock of unlocked mutex")
    while True:
        w = semaq_peek(&m.q)
        if w == NULL:
            st_rel_u32(&m.state, s & M_WOKEN)
            semaq_unlock(&m.q)
            return 0
        now = nanotime()
        if (s & M_STARVING) or now - w.t0 > STARVE_NS:
            # starvation mode: hand the lock over; LOCKED stays set
            if not semaq_take(&m.q, w):
                continue
            w.granted = 1
            ns = M_LOCKED | (s & M_WOKEN)
            if semaq_peek(&m.q) != NULL:
                ns |= M_WAITERS
                if now - w.t0 > STARVE_NS:
                    ns |= M_STARVING
            st_rel_u32(&m.state, ns)
            semaq_unlock(&m.q)
            ready_list(w)
            return 0
        if s & M_WOKEN:
            # a woken waiter is on its way: it will compete; wake no one else
            st_rel_u32(&m.state, s & ~(M_LOCKED | M_STARVING))
            semaq_unlock(&m.q)
            return 0
        if not semaq_take(&m.q, w):
            continue
        w.granted = 0
        ns = M_WOKEN
        if semaq_peek(&m.q) != NULL:
            ns |= M_WAITERS
        st_rel_u32(&m.state, ns)
        semaq_unlock(&m.q)
        ready_list(w)
        return 0

cdef void mutex_cancel(Mutex m, swaiter *w) noexcept:
    """Requires GIL. w's owner gives up (teardown, deadlock wake): unlink it;
    if it was granted the lock, pass the lock on; if it was woken, clear
    WOKEN and let the next waiter have a go."""
    cdef uint32_t s
    semaq_lock(&m.q)
    if w.link.linked:
        semaq_unlink(&m.q, w)
        if semaq_peek(&m.q) == NULL:
            while True:
                s = ld_acq_u32(&m.state)
                if (s & (M_WAITERS | M_STARVING)) == 0 or \
                        cas_u32(&m.state, s, s & ~(M_WAITERS | M_STARVING)):
                    break
        semaq_unlock(&m.q)
        return
    semaq_unlock(&m.q)


# ---------------------------------------------------------------- RWMutex

cdef swaiter *rw_grant_locked(RWMutex rw) noexcept:
    """Caller holds rw.q.lock. Hand the lock to the head waiters that fit
    (FIFO): consecutive readers while no writer holds it, or one writer
    when the lock is free. Returns the claimed records chained by next."""
    cdef swaiter *w
    cdef swaiter *head = NULL
    cdef swaiter *tail = NULL
    while True:
        w = semaq_peek(&rw.q)
        if w == NULL:
            break
        if w.n == 1:
            if rw.writer or rw.readers > 0:
                break
        elif rw.writer:
            break
        if not semaq_take(&rw.q, w):
            continue
        w.granted = 1
        if w.n == 1:
            rw.writer = 1
        else:
            rw.readers += 1
        chain_add(&head, &tail, w)
        if w.n == 1:
            break
    return head

cdef int rw_enqueue(RWMutex rw, swaiter *w, G gp, bint thread, bint write,
                    bint suspect) except -1:
    """Requires GIL. 0 acquired; 1 w linked and q.lock HELD."""
    semaq_lock(&rw.q)
    if semaq_peek(&rw.q) == NULL and not rw.writer and (not write or rw.readers == 0):
        if write:
            rw.writer = 1
        else:
            rw.readers += 1
        semaq_unlock(&rw.q)
        return 0
    if suspect or not can_park(gp, thread):
        semaq_unlock(&rw.q)
        refuse_park(OP_WLOCK if write else OP_RLOCK, thread, suspect)
    waiter_init(w, gp)
    w.n = 1 if write else 0
    gp.park_claim = 0
    semaq_push(&rw.q, w, False)
    return 1

cdef void rw_cancel(RWMutex rw, swaiter *w) noexcept:
    """Requires GIL. Unlink w; waiters behind it may fit now."""
    cdef swaiter *ready = NULL
    semaq_lock(&rw.q)
    if w.link.linked:
        semaq_unlink(&rw.q, w)
        ready = rw_grant_locked(rw)
    semaq_unlock(&rw.q)
    ready_list(ready)


# ---------------------------------------------------------------- WaitGroup

cdef enum:
    WG_WAITERS_MASK = 0xffffffff

cdef int wg_add(WaitGroup wg, int64_t delta) except -1:
    """Any thread (Requires GIL for the errors). CAS loop on the counter; the
    one whose add brings it to zero with waiters recorded wakes them."""
    cdef int64_t s = 0, v = 0
    while True:
        s = ld_acq_i64(&wg.state)
        v = (s >> 32) + delta
        if v < 0:
            raise ValueError("sync: negative WaitGroup counter")
        if v > 0x7fffffff:
            raise OverflowError("sync: WaitGroup counter overflow")
        if cas_i64(&wg.state, s, (v << 32) | (s & WG_WAITERS_MASK)):
            break
    if v == 0 and (s & WG_WAITERS_MASK) != 0:
        wg_wake_all(wg)
    return 0

cdef void wg_wake_all(WaitGroup wg) noexcept:
    """Requires GIL. The counter reached zero: release every waiter and
    clear the waiter count (waiters change it only under q.lock)."""
    cdef swaiter *head = NULL
    cdef swaiter *tail = NULL
    cdef swaiter *w
    cdef int64_t s
    semaq_lock(&wg.q)
    while True:
        w = semaq_peek(&wg.q)
        if w == NULL:
            break
        if not semaq_take(&wg.q, w):
            continue
        w.granted = 1
        chain_add(&head, &tail, w)
    while True:
        s = ld_acq_i64(&wg.state)
        if cas_i64(&wg.state, s, s & ~(<int64_t>WG_WAITERS_MASK)):
            break
    semaq_unlock(&wg.q)
    ready_list(head)

cdef int wg_enqueue(WaitGroup wg, swaiter *w, G gp, bint thread, bint suspect) except -1:
    """Requires GIL. 0 counter is zero; 1 w linked and q.lock HELD."""
    cdef int64_t s
    semaq_lock(&wg.q)
    while True:
        s = ld_acq_i64(&wg.state)
        if (s >> 32) == 0:
            semaq_unlock(&wg.q)
            return 0
        if suspect or not can_park(gp, thread):
            semaq_unlock(&wg.q)
            refuse_park(OP_WG_WAIT, thread, suspect)
        if cas_i64(&wg.state, s, s + 1):
            break
    waiter_init(w, gp)
    gp.park_claim = 0
    semaq_push(&wg.q, w, False)
    return 1

cdef void wg_cancel(WaitGroup wg, swaiter *w) noexcept:
    cdef int64_t s
    semaq_lock(&wg.q)
    if w.link.linked:
        semaq_unlink(&wg.q, w)
        while True:
            s = ld_acq_i64(&wg.state)
            if (s & WG_WAITERS_MASK) == 0 or cas_i64(&wg.state, s, s - 1):
                break
    semaq_unlock(&wg.q)


# ---------------------------------------------------------------- Once

cdef int once_begin(Once o) except -1:
    """Requires GIL. 0: done; 1: the caller runs fn; 2: another caller is
    running it (wait)."""
    cdef int r
    if ld_acq_u32(&o.is_done):
        return 0
    semaq_lock(&o.q)
    if o.is_done:
        r = 0
    elif o.running:
        r = 2
    else:
        o.running = 1
        r = 1
    semaq_unlock(&o.q)
    return r

cdef void once_finish(Once o) noexcept:
    """Requires GIL. fn returned or raised: mark done, release the waiters."""
    cdef swaiter *head = NULL
    cdef swaiter *tail = NULL
    cdef swaiter *w
    semaq_lock(&o.q)
    o.running = 0
    st_rel_u32(&o.is_done, 1)          # publishes fn's effects to ld_acq readers
    while True:
        w = semaq_peek(&o.q)
        if w == NULL:
            break
        if not semaq_take(&o.q, w):
            continue
        w.granted = 1
        chain_add(&head, &tail, w)
    semaq_unlock(&o.q)
    ready_list(head)

cdef int once_enqueue(Once o, swaiter *w, G gp, bint thread, bint suspect) except -1:
    """Requires GIL. 0 done already; 1 w linked and q.lock HELD."""
    semaq_lock(&o.q)
    if o.is_done or not o.running:
        semaq_unlock(&o.q)
        return 0
    if suspect or not can_park(gp, thread):
        semaq_unlock(&o.q)
        refuse_park(OP_ONCE, thread, suspect)
    waiter_init(w, gp)
    gp.park_claim = 0
    semaq_push(&o.q, w, False)
    return 1

cdef void plain_cancel(_SyncBase p, swaiter *w) noexcept:
    semaq_lock(&p.q)
    if w.link.linked:
        semaq_unlink(&p.q, w)
    semaq_unlock(&p.q)


# ---------------------------------------------------------------- Semaphore

cdef swaiter *sem_grant_locked(Semaphore sem) noexcept:
    """Caller holds sem.q.lock. Grant head waiters in FIFO order while they
    fit; a head that does not fit blocks the ones behind it."""
    cdef swaiter *w
    cdef swaiter *head = NULL
    cdef swaiter *tail = NULL
    while True:
        w = semaq_peek(&sem.q)
        if w == NULL or sem.size - sem.cur < w.n:
            break
        if not semaq_take(&sem.q, w):
            continue
        w.granted = 1
        sem.cur += w.n
        chain_add(&head, &tail, w)
    return head

cdef int sem_enqueue(Semaphore sem, swaiter *w, G gp, bint thread, int64_t k,
                     bint suspect) except -1:
    """Requires GIL. 0 acquired; 1 w linked and q.lock HELD."""
    semaq_lock(&sem.q)
    if sem.size - sem.cur >= k and semaq_peek(&sem.q) == NULL:
        sem.cur += k
        semaq_unlock(&sem.q)
        return 0
    if suspect or not can_park(gp, thread):
        semaq_unlock(&sem.q)
        refuse_park(OP_ACQUIRE, thread, suspect)
    waiter_init(w, gp)
    w.n = k
    gp.park_claim = 0
    semaq_push(&sem.q, w, False)
    return 1

cdef int64_t sem_check(Semaphore sem, object k, str what) except -1:
    cdef int64_t n = weight(k, what)
    if n > sem.size:
        raise ValueError(f"{what}: weight {n} exceeds the semaphore's size {sem.size}")
    return n

cdef void sem_cancel(Semaphore sem, swaiter *w) noexcept:
    cdef swaiter *ready = NULL
    semaq_lock(&sem.q)
    if w.link.linked:
        semaq_unlink(&sem.q, w)
        ready = sem_grant_locked(sem)
    semaq_unlock(&sem.q)
    ready_list(ready)

cdef int64_t weight(object k, str what) except -1:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{what} needs an int weight, got {type(k).__name__}")
    if k < 0:
        raise ValueError(f"{what} needs a weight >= 0, got {k}")
    if k > (1 << 62):
        raise ValueError(f"{what}: weight {k} is too large")
    return k


# ---------------------------------------------------------------- dispatch

cdef int op_enqueue(_SyncBase p, int32_t op, swaiter *w, G gp, bint thread,
                    bint again, bint suspect) except -1:
    """The slow path of every operation: 0 done (no lock held); 1 w linked
    with p.q.lock HELD: the caller parks. again: gp was woken without a
    hand-off and tries once more (Mutex normal mode only)."""
    if op == OP_LOCK:
        return mutex_enqueue(<Mutex>p, w, gp, thread, again, suspect)
    if op == OP_RLOCK:
        return rw_enqueue(<RWMutex>p, w, gp, thread, False, suspect)
    if op == OP_WLOCK:
        return rw_enqueue(<RWMutex>p, w, gp, thread, True, suspect)
    if op == OP_WG_WAIT:
        return wg_enqueue(<WaitGroup>p, w, gp, thread, suspect)
    if op == OP_ONCE:
        return once_enqueue(<Once>p, w, gp, thread, suspect)
    return sem_enqueue(<Semaphore>p, w, gp, thread, w.n, suspect)

cdef void op_cancel(_SyncBase p, int32_t op, swaiter *w) noexcept:
    """Requires GIL. The waiter's G was claimed by someone other than the
    primitive (deadlock detection, teardown), or its coroutine is being
    closed while parked: unlink the record if it is still queued."""
    if op == OP_LOCK:
        mutex_cancel(<Mutex>p, w)
    elif op == OP_RLOCK or op == OP_WLOCK:
        rw_cancel(<RWMutex>p, w)
    elif op == OP_WG_WAIT:
        wg_cancel(<WaitGroup>p, w)
    elif op == OP_ACQUIRE:
        sem_cancel(<Semaphore>p, w)
    else:
        plain_cancel(p, w)

cdef void op_giveback(_SyncBase p, int32_t op, swaiter *w) noexcept:
    """Requires GIL. A woken waiter will never run its continuation (its
    coroutine is closed): return what was handed to it."""
    cdef swaiter *ready = NULL
    cdef Mutex m
    cdef RWMutex rw
    cdef Semaphore sem
    cdef uint32_t s
    if op == OP_LOCK:
        m = <Mutex>p
        if w.granted:
            try:
                mutex_unlock_slow(m)
            except BaseException:
                pass
        else:
            # woken, not granted: clear WOKEN and let the next one compete
            while True:
                s = ld_acq_u32(&m.state)
                if cas_u32(&m.state, s, s & ~M_WOKEN):
                    break
            if mutex_trylock(m):
                try:
                    mutex_unlock_slow(m)
                except BaseException:
                    pass
    elif op == OP_RLOCK or op == OP_WLOCK:
        if w.granted:
            rw = <RWMutex>p
            semaq_lock(&rw.q)
            if op == OP_WLOCK:
                rw.writer = 0
            else:
                rw.readers -= 1
            ready = rw_grant_locked(rw)
            semaq_unlock(&rw.q)
            ready_list(ready)
    elif op == OP_ACQUIRE:
        if w.granted:
            sem = <Semaphore>p
            semaq_lock(&sem.q)
            sem.cur -= w.n
            ready = sem_grant_locked(sem)
            semaq_unlock(&sem.q)
            ready_list(ready)


cdef int op_woken(_SyncBase p, int32_t op, swaiter *w, bint *suspect, bint *again) except -1:
    """Requires GIL; no lock held. After the park, woken (both shells).
    0: done (the waiter holds what it waited for). 1: call op_enqueue
    again - with *suspect after a wake-up by deadlock detection or the main
    thread's recheck (see check_wake), with *again for a Mutex waiter woken
    in normal mode (it competes again). Raises what the waker asked for."""
    cdef G gp = <G>w.link.g
    again[0] = False
    if gp.wake_flags != WAKE_NORMAL:
        op_cancel(p, op, w)
        if check_wake(gp):
            suspect[0] = deadlock_suspect(gp)
            return 1
    if w.granted or op != OP_LOCK:
        return 0
    again[0] = True
    return 1


cdef int thread_wait(_SyncBase p, int32_t op, int64_t n) except -1:
    """Requires GIL. The blocking_* forms' shell: op_enqueue / op_woken
    with the record on this C stack and the OS thread parked."""
    cdef swaiter w
    cdef G gp = getg()
    cdef bint again = False
    cdef bint suspect = False
    w.n = n
    w.t0 = 0
    w.link.linked = 0
    w.granted = 0
    while True:
        if op_enqueue(p, op, &w, gp, True, again, suspect) == 0:
            return 0
        # G.waiting is p while the thread waits: what dumps and find_leaks read
        gopark_thread(gp, semaq_unlock_cb, <void *>&p.q.lock, op_reason(op), p, -1)
        gp.waiting = None
        if op_woken(p, op, &w, &suspect, &again) == 0:
            return 0


# ---------------------------------------------------------------- the awaitable

cdef extern from *:
    """
    static int gc_raise_current(void) { return -1; }   /* the error is already set */
    """
    int raise_current "gc_raise_current" () except -1


cdef const char *SYNCOP_NAMES[6]
SYNCOP_NAMES[OP_LOCK] = b"Mutex.lock()"
SYNCOP_NAMES[OP_RLOCK] = b"RWMutex.rlock()"
SYNCOP_NAMES[OP_WLOCK] = b"RWMutex.lock()"
SYNCOP_NAMES[OP_WG_WAIT] = b"WaitGroup.wait()"
SYNCOP_NAMES[OP_ONCE] = b"Once.do()"
SYNCOP_NAMES[OP_ACQUIRE] = b"Semaphore.acquire()"


@cython.no_gc
@cython.freelist(64)
cdef class _SyncOp:
    """The awaitable behind `await m.lock()`, `rw.rlock()`, `rw.lock()`,
    `wg.wait()`, `sem.acquire(k)` and Once's waiters; also its own waiter
    record when it parks. Owns one reference to its primitive.
    Awaited once, by one goroutine (DESIGN §1): a second `await` raises in
    __await__ before touching any state, a parked op stepped by hand from
    elsewhere raises in step(), and one dropped without ever being awaited
    warns (syncop_dealloc)."""
    cdef _SyncBase prim
    cdef int32_t op
    cdef int32_t state          # 0 new; 1 parked; 2 done; 3 closed
    cdef bint suspect           # retrying after a deadlock wake-up: waiting again raises
    cdef bint awaited           # first await claims it (gc_mark_awaited: CAS on free-threaded builds); __next__ sets it
    cdef swaiter w
    cdef G aiog                 # an asyncio task's pseudo-G (owned) while its wait lasts (aio_wait), else None

    def _dump_wait(self, G gp not None):
        """For goroutine dumps (sync_dump_info): the primitive it waits on."""
        return sync_dump_info(self.prim, gp) if self.prim is not None else None

    def __await__(self):
        # (`await` reaches syncop_am_await; the same rule for op.__await__())
        if not gc_mark_awaited(&self.awaited):
            gc_awaited_again(SYNCOP_NAMES[self.op])
            raise_current()
        return self

    def __iter__(self):
        return self

    def __next__(self):
        self.awaited = 1        # driven by hand: used, not forgotten
        if self.step() == 1:
            return PARK if self.aiog is None else self.aiog.coro     # or an asyncio task's future
        raise StopIteration

    cdef int step(self) except -1:
        """The awaitable's shell (outside a lightweight goroutine the wait
        goes on in aio_wait). 0: done; 1: parked (yield PARK, or the
        task's future); raises on error."""
        cdef _SyncBase p = self.prim
        cdef bint again = False
        cdef G gp
        if self.state == 1:
            if ld_acq_u32(self.w.link.claim) == 0:
                # stepped by hand (next()) while its goroutine is still parked
                return gc_parked_elsewhere(SYNCOP_NAMES[self.op], (<G>self.w.link.g).goid)
            self.state = 2
            if self.aiog is not None:
                aio_unpark(self.aiog)       # woken: its future is spent
            if op_woken(p, self.op, &self.w, &self.suspect, &again) == 0:
                if self.aiog is not None:
                    self.aiog = None
                return 0
            self.state = 0
        elif self.state != 0:
            gc_awaited_again(SYNCOP_NAMES[self.op])
            return -1
        elif self.op == OP_LOCK and mutex_trylock(<Mutex>p):
            self.state = 2
            return 0
        gp = getg_or_none()
        if gp is None or gp.kind != G_ASYNC:
            return self.aio_wait(again)
        if op_enqueue(p, self.op, &self.w, gp, False, again, self.suspect) == 0:
            self.state = 2
            return 0
        gopark_async(gp, semaq_unlock_cb, <void *>&p.q.lock, op_reason(self.op), self)
        self.state = 1
        return 1

    cdef int aio_wait(self, bint again) except -1:
        """The shell's wait outside a lightweight goroutine (no lock held):
        an asyncio task waits on a pseudo-G made (or, for a Mutex waiter
        that competes again, given a fresh future) before op_enqueue takes
        q.lock, as both allocate. No event loop in this thread: op_enqueue
        refuses the park (park_error). The task steps us again once the
        future is resolved (step(), state 1); cancelled, it throws into us:
        close() takes the G back, or gives back what a waker handed over."""
        cdef _SyncBase p = self.prim
        if self.aiog is None:
            self.aiog = aio_waiter_g()
        else:
            aio_rearm(self.aiog)
        if op_enqueue(p, self.op, &self.w, self.aiog, False, again, self.suspect) == 0:
            self.state = 2
            self.aiog = None
            return 0
        aio_park(self.aiog, semaq_unlock_cb, <void *>&p.q.lock)
        self.state = 1
        return 1

    def _cancel(self):
        """Teardown: the G is parked and will never resume; unlink the record."""
        if self.state == 1:
            op_cancel(self.prim, self.op, &self.w)

    def _waits_on(self):
        """find_leaks (_sched_api.pxi): (the primitive it waits on, the same
        as a reference it holds)."""
        return ((self.prim,), (self.prim,)) if self.prim is not None else None

    def close(self):
        """The awaiting coroutine is being closed (teardown) while suspended
        on us: unlink the record, or give back what a waker handed us."""
        if self.state != 1:
            return
        self.state = 3
        if self.aiog is not None:
            # an asyncio task's wait: take the pseudo-G back and unlink; or
            # a waker won it first: give back what it handed over
            if aio_withdraw(self.aiog):
                op_cancel(self.prim, self.op, &self.w)
            else:
                op_giveback(self.prim, self.op, &self.w)
            aio_unpark(self.aiog)
            self.aiog = None
            return
        op_cancel(self.prim, self.op, &self.w)
        if not self.w.link.linked and ld_acq_u32(self.w.link.claim) != 0 and \
                (<G>self.w.link.g).wake_flags == WAKE_NORMAL:
            op_giveback(self.prim, self.op, &self.w)
        goroutine_closed_outside(self.w.link.g)     # closed from outside: the goroutine ends

    def throw(self, typ, val=None, tb=None):
        """As close(), then the exception goes on (close_then_throw)."""
        return close_then_throw(self, typ, val, tb)


cdef int syncop_am_send(PyObject *self, PyObject *arg, PyObject **presult) except -1:
    """am_send slot (3.10+): finish the await without a StopIteration.
    PYGEN_RETURN (0), PYGEN_NEXT (1) or PYGEN_ERROR (-1, exception set)."""
    cdef PyObject *out
    if (<_SyncOp>self).step() == 1:
        # PARK, or an asyncio task's future
        out = PARK_PTR if (<_SyncOp>self).aiog is None else <PyObject *>(<_SyncOp>self).aiog.coro
        Py_INCREF(<object>out)
        presult[0] = out
        return 1
    Py_INCREF(None)
    presult[0] = <PyObject *>None
    return 0

(<PyTypeObject *>_SyncOp).tp_as_async.am_send = <sendfunc>syncop_am_send


cdef PyObject *syncop_am_await(PyObject *self) noexcept:
    """am_await slot, reached by every `await op`: __await__'s rule as a
    leaf function (the error is raised out of line)."""
    if not gc_mark_awaited(&(<_SyncOp>self).awaited):
        return gc_awaited_again(SYNCOP_NAMES[(<_SyncOp>self).op])
    Py_INCREF(<object>self)
    return self

(<PyTypeObject *>_SyncOp).tp_as_async.am_await = <unaryfunc>syncop_am_await


cdef destructor syncop_cython_dealloc = (<PyTypeObject *>_SyncOp).tp_dealloc

cdef void syncop_dealloc(PyObject *o) noexcept:
    """tp_dealloc: an op never awaited nor started is a forgotten `await`:
    warn, then free it as Cython does (a wrapper: __dealloc__ would save
    and restore the exception state on every free)."""
    if not (<_SyncOp>o).awaited and (<_SyncOp>o).state == 0:
        gc_warn_unawaited(SYNCOP_NAMES[(<_SyncOp>o).op])
    syncop_cython_dealloc(o)

(<PyTypeObject *>_SyncOp).tp_dealloc = <destructor>syncop_dealloc


cdef inline _SyncOp new_op(_SyncBase p, int32_t op, int64_t n):
    cdef _SyncOp o = _SyncOp.__new__(_SyncOp)
    o.prim = p
    o.op = op
    o.w.n = n
    return o


@cython.final
cdef class _Done:
    """An awaitable that completes at once with None (no state: shared)."""
    def __await__(self):
        return self
    def __iter__(self):
        return self
    def __next__(self):
        raise StopIteration

cdef int done_am_send(PyObject *self, PyObject *arg, PyObject **presult) noexcept:
    Py_INCREF(None)
    presult[0] = <PyObject *>None
    return 0

(<PyTypeObject *>_Done).tp_as_async.am_send = <sendfunc>done_am_send

cdef _Done DONE = _Done.__new__(_Done)


# ---------------------------------------------------------------- dumps
#
# What a goroutine dump shows of the primitive a goroutine waits on
# (_debug.py calls _dump_wait with the inspection gate up). Each field is
# read as its protocol says: the atomic words (Mutex.state,
# WaitGroup.state, Once.is_done) with acquire loads, the rest
# (RWMutex.readers/writer, Once.running, Semaphore.cur) and the waiter
# count under q.lock (a leaf lock; nothing else is held). The waiter count
# leaves out the dumped goroutine itself and zombie records.

cdef dict sync_dump_info(_SyncBase p, G gp):
    cdef int64_t waiters, a = 0, b = 0
    cdef uint32_t ms
    semaq_lock(&p.q)
    waiters = gc_waitq_count(&p.q.wq, <PyObject *>gp)
    if isinstance(p, RWMutex):
        a = (<RWMutex>p).readers
        b = (<RWMutex>p).writer
    elif isinstance(p, Semaphore):
        a = (<Semaphore>p).cur
    elif isinstance(p, Once):
        a = (<Once>p).running
    semaq_unlock(&p.q)
    d = {"type": None, "id": f"{id(p):#x}"}       # (the gocore class: subclasses too)
    if isinstance(p, Mutex):
        ms = ld_acq_u32(&(<Mutex>p).state)
        d["type"] = "Mutex"
        d["locked"] = bool(ms & M_LOCKED)
    elif isinstance(p, RWMutex):
        d["type"] = "RWMutex"
        d["readers"] = a
        d["writer"] = bool(b)
    elif isinstance(p, WaitGroup):
        d["type"] = "WaitGroup"
        d["counter"] = ld_acq_i64(&(<WaitGroup>p).state) >> 32
    elif isinstance(p, Semaphore):
        d["type"] = "Semaphore"
        d["available"] = (<Semaphore>p).size - a
        d["size"] = (<Semaphore>p).size
    elif isinstance(p, Once):
        d["type"] = "Once"
        d["done"] = bool(ld_acq_u32(&(<Once>p).is_done))
        d["running"] = bool(a)
    d["waiters"] = waiters
    return d


# ---------------------------------------------------------------- public classes

cdef class _SyncBase:
    """Base of the sync primitives: the wait queue (not public)."""
    def __cinit__(self):
        self.q.wq.first = self.q.wq.last = NULL

    def _dump_wait(self, G gp not None):
        """For goroutine dumps: a thread or sync goroutine parked in a
        blocking_* call has the primitive itself as its waiting object
        (thread_wait)."""
        return sync_dump_info(self, gp)


cdef class Mutex(_SyncBase):
    """Go's sync.Mutex. `await m.lock()` / `m.unlock()`, `async with m:`;
    threads and sync goroutines use `m.blocking_lock()` or `with m:`.

    Protocol: `state` (LOCKED, WOKEN, STARVING, WAITERS bits) changes by
    acq_rel CAS. lock's fast path CASes LOCKED in when neither LOCKED nor
    STARVING is set; unlock's fast path CASes LOCKED -> 0 (no other bit).
    Everything else happens under q.lock: setting WAITERS before a waiter
    is linked (so unlock cannot take its fast path and miss it), choosing
    between a hand-off (starvation mode) and a wake-up (normal mode), and
    a woken waiter's retry. May be unlocked by a goroutine other than the
    one that locked it (as in Go). Fair: see the essay atop _sync.pyx."""

    def lock(self):
        """`await m.lock()`: wait until the mutex is free and take it."""
        return new_op(self, OP_LOCK, 0)

    def unlock(self):
        """Release the mutex; RuntimeError if it is not locked."""
        if cas_u32(&self.state, M_LOCKED, 0):
            return
        mutex_unlock_slow(self)

    def try_lock(self):
        """Take the mutex if it is free: True if taken (Go's TryLock)."""
        return mutex_trylock(self)

    def blocking_lock(self):
        """lock() for plain threads and sync goroutines: parks the thread.
        Inside a lightweight goroutine it raises if it would block."""
        if mutex_trylock(self):
            return
        thread_wait(self, OP_LOCK, 0)

    def locked(self):
        """True while the mutex is held (a snapshot)."""
        return (ld_acq_u32(&self.state) & M_LOCKED) != 0

    def __aenter__(self):
        return new_op(self, OP_LOCK, 0)

    def __aexit__(self, t, v, tb):
        if not cas_u32(&self.state, M_LOCKED, 0):
            mutex_unlock_slow(self)
        return DONE

    def __enter__(self):
        if not mutex_trylock(self):
            thread_wait(self, OP_LOCK, 0)
        return self

    def __exit__(self, t, v, tb):
        if not cas_u32(&self.state, M_LOCKED, 0):
            mutex_unlock_slow(self)
        return False

    def __repr__(self):
        return f"<gocore.Mutex {'locked' if self.locked() else 'unlocked'}>"


cdef class RWMutex(_SyncBase):
    """Go's sync.RWMutex: many readers or one writer. `await rw.rlock()` /
    `rw.runlock()`, `await rw.lock()` / `rw.unlock()`, `try_rlock()`,
    `try_lock()`, `blocking_rlock()`, `blocking_lock()`; `async with rw:` /
    `with rw:` take the write lock, `rw.rlocker()` gives a read-lock
    context manager.

    Protocol: readers, writer and the queue are under q.lock (every
    operation is one short critical section). A reader enters only when no
    writer holds the lock and nobody is queued: a waiting writer blocks new
    readers (as Go). Releases hand the lock to the head of the FIFO:
    consecutive readers together, or one writer."""

    def rlock(self):
        """`await rw.rlock()`: take a read lock."""
        return new_op(self, OP_RLOCK, 0)

    def runlock(self):
        """Release a read lock; RuntimeError if none is held."""
        cdef swaiter *ready = NULL
        semaq_lock(&self.q)
        if self.readers <= 0:
            semaq_unlock(&self.q)
            if self.writer:
                raise RuntimeError("sync: RUnlock of RWMutex that is write-locked")
            raise RuntimeError("sync: RUnlock of unlocked RWMutex")
        self.readers -= 1
        if self.readers == 0 and self.q.wq.first != NULL:
            ready = rw_grant_locked(self)
        semaq_unlock(&self.q)
        ready_list(ready)

    def lock(self):
        """`await rw.lock()`: take the write lock."""
        return new_op(self, OP_WLOCK, 0)

    def unlock(self):
        """Release the write lock; RuntimeError if it is not write-locked."""
        cdef swaiter *ready = NULL
        semaq_lock(&self.q)
        if not self.writer:
            semaq_unlock(&self.q)
            if self.readers > 0:
                raise RuntimeError("sync: Unlock of RWMutex that is only read-locked")
            raise RuntimeError("sync: Unlock of unlocked RWMutex")
        self.writer = 0
        if self.q.wq.first != NULL:
            ready = rw_grant_locked(self)
        semaq_unlock(&self.q)
        ready_list(ready)

    def try_rlock(self):
        """Take a read lock if possible without waiting: True if taken."""
        cdef bint ok
        semaq_lock(&self.q)
        ok = not self.writer and semaq_peek(&self.q) == NULL
        if ok:
            self.readers += 1
        semaq_unlock(&self.q)
        return ok

    def try_lock(self):
        """Take the write lock if it is free: True if taken."""
        cdef bint ok
        semaq_lock(&self.q)
        ok = not self.writer and self.readers == 0 and semaq_peek(&self.q) == NULL
        if ok:
            self.writer = 1
        semaq_unlock(&self.q)
        return ok

    def blocking_rlock(self):
        """rlock() for plain threads and sync goroutines."""
        thread_wait(self, OP_RLOCK, 0)

    def blocking_lock(self):
        """lock() for plain threads and sync goroutines."""
        thread_wait(self, OP_WLOCK, 0)

    def rlocker(self):
        """A context manager taking the read lock (Go's RLocker):
        `async with rw.rlocker():` / `with rw.rlocker():`."""
        return _RLocker.__new__(_RLocker, self)

    def __aenter__(self):
        return new_op(self, OP_WLOCK, 0)

    def __aexit__(self, t, v, tb):
        self.unlock()
        return DONE

    def __enter__(self):
        thread_wait(self, OP_WLOCK, 0)
        return self

    def __exit__(self, t, v, tb):
        self.unlock()
        return False

    def __repr__(self):
        return f"<gocore.RWMutex readers={self.readers} writer={bool(self.writer)}>"


@cython.final
cdef class _RLocker:
    cdef RWMutex rw

    def __cinit__(self, RWMutex rw not None):
        self.rw = rw

    def __aenter__(self):
        return new_op(self.rw, OP_RLOCK, 0)

    def __aexit__(self, t, v, tb):
        self.rw.runlock()
        return DONE

    def __enter__(self):
        thread_wait(self.rw, OP_RLOCK, 0)
        return self

    def __exit__(self, t, v, tb):
        self.rw.runlock()
        return False


from gocore._sched import go as _go      # _sched is initialised before us (cimported)

cdef inline object get_go():
    return _go


cdef class WaitGroup(_SyncBase):
    """Go's sync.WaitGroup: `add(n=1)`, `done()`, `await wg.wait()`,
    `wg.blocking_wait()`, and `wg.go(fn, *args)` (Go 1.25's wg.Go).

    Protocol: `state` is counter << 32 | waiters, changed by acq_rel CAS.
    add() changes the counter without a lock; the add that brings it to
    zero while waiters are recorded takes q.lock, releases every linked
    waiter and zeroes the waiter count. wait() increments the waiter count
    and links its record in one q.lock critical section, so that add either
    sees the count (and wakes it) or the waiter sees the zero counter."""

    def add(self, n=1):
        """Add n (may be negative) to the counter; ValueError if it would
        go negative (the counter is then left unchanged)."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"WaitGroup.add(n) needs an int, got {type(n).__name__}")
        if n > 0x7fffffff or n < -0x7fffffff:
            raise OverflowError("sync: WaitGroup counter overflow")
        wg_add(self, n)

    def done(self):
        """add(-1)."""
        wg_add(self, -1)

    def wait(self):
        """`await wg.wait()`: wait until the counter is zero."""
        return new_op(self, OP_WG_WAIT, 0)

    def blocking_wait(self):
        """wait() for plain threads and sync goroutines."""
        if (ld_acq_i64(&self.state) >> 32) == 0:
            return
        thread_wait(self, OP_WG_WAIT, 0)

    def go(self, fn, *args, **kwargs):
        """add(1), then start fn(*args, **kwargs) in a goroutine that calls
        done() when fn returns or raises (an async fn as a lightweight
        goroutine, a plain one as a sync goroutine)."""
        if not callable(fn):
            raise TypeError(f"WaitGroup.go() needs a callable, got {type(fn).__name__}")
        go = get_go()
        wg_add(self, 1)
        try:
            if is_async_function(fn, "WaitGroup.go"):
                go(_wg_async(self, fn, args, kwargs))
            else:
                go(_wg_sync, self, fn, args, kwargs)
        except BaseException:
            wg_add(self, -1)
            raise

    @property
    def count(self):
        """The counter (a snapshot)."""
        return ld_acq_i64(&self.state) >> 32

    def __repr__(self):
        return f"<gocore.WaitGroup count={ld_acq_i64(&self.state) >> 32}>"


# wg.go's wrappers and Once's slow path are plain Python code (compiled
# once at import) so that go() sees a real coroutine, exactly like user code.
_pysrc = '''
async def _wg_async(wg, fn, args, kwargs):
    try:
        return await fn(*args, **kwargs)
    finally:
        wg.done()

def _wg_sync(wg, fn, args, kwargs):
    try:
        r = fn(*args, **kwargs)
    except BaseException:
        wg.done()
        raise
    if _iscoroutine(r):
        return _wg_await(wg, r)      # run as a lightweight goroutine
    wg.done()
    return r

async def _wg_await(wg, coro):
    try:
        return await coro
    finally:
        wg.done()

async def _once_slow(once, fn):
    r = once._begin()
    if r == 1:
        try:
            res = fn()
            if _isawaitable(res):
                await res
        finally:
            once._finish()
    elif r == 2:
        await once._wait()
'''
import inspect as _inspect
_ns = {"_iscoroutine": _inspect.iscoroutine, "_isawaitable": _inspect.isawaitable}
exec(compile(_pysrc, "<gocore._sync>", "exec"), _ns)
cdef object _wg_async = _ns["_wg_async"]
cdef object _wg_sync = _ns["_wg_sync"]
cdef object _once_slow = _ns["_once_slow"]
del _ns, _pysrc


cdef class Once(_SyncBase):
    """Go's sync.Once: `await once.do(fn)` calls fn (plain or async def)
    only the first time; concurrent callers wait until that call returns.
    If fn raises, the exception propagates to that caller and the Once
    still counts as done (as in Go). Threads use `once.blocking_do(fn)`.

    Protocol: `done` is read with acquire on the fast path and stored with
    release after fn returns, so fn's effects are visible to every caller
    that sees done. `running` and the queue are under q.lock: the first
    caller sets running; later ones link a record and park until
    once_finish releases them all."""

    def do(self, fn):
        """`await once.do(fn)`."""
        if not callable(fn):
            raise TypeError(f"Once.do(fn) needs a callable, got {type(fn).__name__}")
        if ld_acq_u32(&self.is_done):
            return DONE
        return _once_slow(self, fn)

    def blocking_do(self, fn):
        """do() for plain threads and sync goroutines (fn must be a plain
        function)."""
        cdef int r
        if not callable(fn):
            raise TypeError(f"Once.blocking_do(fn) needs a callable, got {type(fn).__name__}")
        r = once_begin(self)
        if r == 1:
            try:
                res = fn()
                if _inspect.iscoroutine(res):
                    res.close()
                    raise TypeError("Once.blocking_do(fn): fn returned a coroutine; "
                                    "use `await once.do(fn)` for async functions")
            finally:
                once_finish(self)
        elif r == 2:
            thread_wait(self, OP_ONCE, 0)

    def _begin(self):
        return once_begin(self)

    def _finish(self):
        once_finish(self)

    def _wait(self):
        return new_op(self, OP_ONCE, 0)

    @property
    def done(self):
        """True once fn has been called and returned (or raised)."""
        return ld_acq_u32(&self.is_done) != 0

    def __repr__(self):
        return f"<gocore.Once {'done' if ld_acq_u32(&self.is_done) else 'not done'}>"


cdef class Semaphore(_SyncBase):
    """A weighted semaphore (golang.org/x/sync/semaphore): Semaphore(n);
    `await sem.acquire(k=1)`, `try_acquire(k=1)`, `release(k=1)`,
    `blocking_acquire(k=1)`; `async with sem:` / `with sem:` take 1.

    Protocol: cur and the queue are under q.lock. Waiters are served in
    FIFO order: a waiter is granted only at the head, so a big request at
    the head blocks smaller ones behind it (no starvation of big ones).
    acquire(k > n) could never succeed: it raises ValueError at once."""

    def __cinit__(self, n=1):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"Semaphore(n) needs an int, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"Semaphore(n) needs n >= 0, got {n}")
        if n > (1 << 62):
            raise ValueError(f"Semaphore(n): n {n} is too large")
        self.size = n

    def acquire(self, k=1):
        """`await sem.acquire(k)`: wait for k permits (FIFO)."""
        return new_op(self, OP_ACQUIRE, sem_check(self, k, "Semaphore.acquire(k)"))

    def try_acquire(self, k=1):
        """Take k permits if available now and nobody waits: True if taken."""
        cdef int64_t n = weight(k, "Semaphore.try_acquire(k)")
        cdef bint ok
        semaq_lock(&self.q)
        ok = self.size - self.cur >= n and semaq_peek(&self.q) == NULL
        if ok:
            self.cur += n
        semaq_unlock(&self.q)
        return ok

    def blocking_acquire(self, k=1):
        """acquire() for plain threads and sync goroutines."""
        thread_wait(self, OP_ACQUIRE, sem_check(self, k, "Semaphore.blocking_acquire(k)"))

    def release(self, k=1):
        """Return k permits; RuntimeError if more than are held."""
        cdef int64_t n = weight(k, "Semaphore.release(k)")
        cdef swaiter *ready = NULL
        semaq_lock(&self.q)
        if n > self.cur:
            semaq_unlock(&self.q)
            raise RuntimeError("semaphore: released more than held")
        self.cur -= n
        if self.q.wq.first != NULL:
            ready = sem_grant_locked(self)
        semaq_unlock(&self.q)
        ready_list(ready)

    @property
    def held(self):
        """Permits held now (a snapshot)."""
        return self.cur

    def __aenter__(self):
        return new_op(self, OP_ACQUIRE, sem_check(self, 1, "Semaphore"))

    def __aexit__(self, t, v, tb):
        self.release(1)
        return DONE

    def __enter__(self):
        thread_wait(self, OP_ACQUIRE, sem_check(self, 1, "Semaphore"))
        return self

    def __exit__(self, t, v, tb):
        self.release(1)
        return False

    def __repr__(self):
        return f"<gocore.Semaphore size={self.size} held={self.cur}>"


# Internal types: only this module builds them (csrc/gocore_pytype.h).
gc_internal_type(_SyncOp)
gc_internal_type(_Done)
gc_internal_type(_SyncBase)
gc_internal_type(_RLocker)
