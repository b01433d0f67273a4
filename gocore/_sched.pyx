# cython: language_level=3, freethreading_compatible=True
# gocore/_sched.pyx - the M:P:G scheduler (Go's proc.go): go, run, gosched,
# findrunnable, work stealing, wakep/startm/stopm, gopark/goready, the P
# hand-off of blocking calls, deadlock detection and run()'s teardown.
# Structures, invariants and the lock order: _sched.pxd and csrc/.
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

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XDECREF
from cpython.pystate cimport PyThreadState_Get
from libc.stdint cimport uint32_t, int32_t, int64_t
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memset

from gocore._includes.atomic cimport *
from gocore._includes.futex cimport *
from gocore._includes.clock cimport nanotime, nanotime_coarse
from gocore._includes.config cimport gc_throw, GOCORE_RUNQ_CAP
from gocore._includes.config cimport (GOCORE_DEBUG, gc_assert_msg, gc_dbg_add, gc_dbg_ctr,
                                      GC_DBG_N, GC_DBG_G_OBJECTS, GC_DBG_CHAN_WAITERS,
                                      GC_DBG_SYNC_WAITERS, GC_DBG_TIMER_REFS)
from gocore._includes.runq cimport *
from gocore._includes.schedc cimport *
from gocore._includes.timer cimport *
from gocore._includes.pytype cimport gc_internal_type

import os
import signal
import sys
import threading
# signal.getsignal's C core: ~20 ns a signal, where signal.valid_signals()
# and the enum-converting signal.getsignal() cost ~80 us per run()
from _signal import getsignal as raw_getsignal

cdef extern from "Python.h":
    ctypedef enum PySendResult:
        PYGEN_RETURN
        PYGEN_ERROR
        PYGEN_NEXT
    PySendResult PyIter_Send(object iter, object arg, PyObject **presult)
    int PyErr_CheckSignals() except -1
    ctypedef void (*thread_func)(void *) noexcept nogil
    unsigned long PyThread_start_new_thread(thread_func f, void *arg) nogil
    bint PyCoro_CheckExact(object o)
    unsigned long PyThread_get_thread_ident()

cdef extern from *:
    """
    /* Per-thread: the M this thread is (NULL for plain threads) and the G it
     * runs now (borrowed). Only the owning thread reads or writes them. */
    #define GC_TLS __thread __attribute__((tls_model("initial-exec")))
    static GC_TLS gc_m *gc_tls_m;
    static GC_TLS PyObject *gc_tls_g;
    static gc_sched gc_sched_;
    """
    gc_m *gc_tls_m
    PyObject *gc_tls_g
    gc_sched gc_sched_ "gc_sched_"

cdef gc_sched *sched = &gc_sched_

WAIT_REASONS = {
    W_NONE: "running", W_CHAN_RECV: "chan receive", W_CHAN_SEND: "chan send",
    W_SELECT: "select", W_SELECT_NO_CASES: "select (no cases)",
    W_CHAN_NIL: "chan receive (nil chan)", W_SLEEP: "sleep",
    W_MUTEX: "sync.Mutex.Lock", W_RWMUTEX_R: "sync.RWMutex.RLock",
    W_RWMUTEX_W: "sync.RWMutex.Lock", W_WAITGROUP: "sync.WaitGroup.Wait",
    W_ONCE: "sync.Once.Do", W_SEMAPHORE: "semacquire", W_SYNC_COND: "sync.Cond.Wait",
    W_CHAN_NIL_SEND: "chan send (nil chan)", W_IO_READ: "IO wait", W_IO_WRITE: "IO wait",
}


class DeadlockError(RuntimeError):
    """All goroutines are asleep: the waiting call can never complete.
    `.dump` is the dump_goroutines() text taken where it was raised (the
    goroutines found asleep); a note shows it in tracebacks, as Go prints
    the goroutines at a deadlock."""

    def __init__(self, *args):
        RuntimeError.__init__(self, *args)
        from gocore._debug import attach_deadlock_dump   # lazy: _debug imports this module
        attach_deadlock_dump(self)


class GoroutineExit(BaseException):
    """Raised inside a sync goroutine blocked in gocore when run() ends, so
    that its finally blocks run (the analogue of closing a coroutine); and
    by every gocore call of a sync goroutine that outlived its run() (see
    "sync goroutines that outlive run()"). Do not swallow it."""


cdef class _ParkSentinel:
    def __repr__(self):
        return "<gocore park>"

cdef object PARK = _ParkSentinel()
cdef PyObject *PARK_PTR = <PyObject *>PARK
gc_internal_type(_ParkSentinel)     # PARK is the only one (csrc/gocore_pytype.h)

cdef object park_sentinel():
    return PARK

def get_park_sentinel():
    return PARK


# ---------------------------------------------------------------- G

cdef gc_mutex allglock              # guards the allgs list
cdef PyObject *allgs_head = NULL    # under allglock; the list owns a reference per G

cdef object _main_result = None     # Requires GIL: set by the main G's exit
cdef object _panic = None           # Requires GIL: first exception escaping a goroutine
cdef G _main_g = None               # Requires GIL: run()'s main goroutine
cdef object _thread_gs = threading.local()
cdef object _panic_hook = None
cdef object _panic_lock = threading.Lock()


@cython.no_gc
@cython.freelist(256)
cdef class G:
    def __repr__(self):
        return f"<goroutine {self.goid} {('async', 'sync', 'thread', 'aio')[self.kind]}>"   # aio hook: 'aio'

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
    gp.args = args
    gp.kwargs = kwargs
    gp.status = G_RUNNABLE
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
        gp.status = G_RUNNING
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
    gp.waitreason = reason
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
    gp.waitreason = reason
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
            queued = exitsyscall_locked(mp, <void *>gp, &gp.status, &gp.lockedm)
    if pp != NULL:
        if not queued:
            Py_DECREF(gp)                # the token's reference, unused
        pown_enter_g(mp)                 # back inside the G (with a P, unless run() ends)
    if woken == 1:
        st_rel_i32(&gp.status, G_RUNNING)
        pass_inspect_gate()
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
    if gp.kind == G_AIO:         # aio hook: an asyncio task's wait: wake its loop (_aiowait.pxi)
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
        if gqueue_put(&sched.gq, gptr) < 0:
            gc_throw(b"out of memory in the global run queue")
        gc_mutex_unlock(&sched.lock)
        wakep()


# The inspection gate (free-threaded builds). dump_goroutines() reads the
# frames of parked and runnable goroutines from its own thread; with no GIL
# such a goroutine could start running meanwhile and change those frames
# under the reader (a crash inside CPython's frame code). Protocol: a reader
# raises inspect_gate (a count: readers may overlap), fences, then reads
# each G's status. A G it finds G_RUNNING it shows without a stack (Go:
# "goroutine running on other thread; stack unavailable"); any other it may
# walk, because whoever resumes a G - execute() for an async G, the woken
# thread in gopark for a thread or sync G - stores G_RUNNING, fences, and
# then waits, detached, while the gate is up. One side or the other sees
# the other's store. On GIL builds nobody raises the gate: a goroutine
# runs only while the walker has dropped the GIL, and CPython keeps frames
# consistent across GIL switches.
cdef int32_t inspect_gate = 0

cdef void wait_inspect_gate() noexcept nogil:
    cdef uint32_t v
    while True:
        v = <uint32_t>ld_acq_i32(&inspect_gate)
        if v == 0:
            return
        futex_wait(<uint32_t *>&inspect_gate, v, -1)

cdef inline void pass_inspect_gate() noexcept:
    """Requires an attached thread (GIL). The G has just been marked
    G_RUNNING by or for the caller, which is about to run its Python code."""
    if not GC_GIL_BUILD:
        fence_seq_cst()
        if ld_acq_i32(&inspect_gate) != 0:
            with nogil:
                wait_inspect_gate()


def _inspect_begin():
    """Raise the inspection gate (see above); _inspect_end() lowers it."""
    if not GC_GIL_BUILD:
        fetch_add_i32(&inspect_gate, 1)
        fence_seq_cst()


def _inspect_end():
    if not GC_GIL_BUILD:
        if fetch_add_i32(&inspect_gate, -1) == 1:
            futex_wake(<uint32_t *>&inspect_gate, 0x7fffffff)


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


# ---------------------------------------------------------------- Ps and Ms

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
    the caller has counted the M in nmspinning."""
    cdef gc_m *nmp
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
    gc_mutex_unlock(&sched.lock)
    if nmp == NULL:
        gc_throw(b"cannot allocate an M")
    nmp.spinning = spinning
    nmp.nextp = pp
    note_wakeup(&nmp.park)
    if ld_acq_i32(&sched.sysmon_wait) and cas_i32(&sched.sysmon_wait, 1, 0):
        note_wakeup(&sched.sysmon_note)     # a P went busy: watch it


cdef void thread_limit_exceeded() noexcept nogil:
    with gil:
        record_panic(RuntimeError(
            f"gocore: program exceeds the {sched.maxmcount}-thread limit (a goroutine "
            f"blocked and no thread was left to run the others; see gocore.set_max_threads)"), None)


cdef gc_m *newm_locked() noexcept nogil:
    """Caller holds sched.lock. Creates an M whose thread starts parked-ready:
    the caller sets nextp and wakes its note."""
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
    if PyThread_start_new_thread(mstart, <void *>mp) == <unsigned long>(-1):
        sched.mcount -= 1
        sched.allm = mp.alllink
        free(mp)
        return NULL
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
        if ld_acq_i32(&timers.len) > 0:
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
    return w != GC_NEVER and w <= nanotime()

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
    now = nanotime()
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
            timers_add(&timers, t)
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
            or (ld_acq_i32(&timers.len) > 0 and sched.timer_m == NULL) or netpoll_needs_m()):
        gc_mutex_unlock(&sched.lock)
        startm(pp, 0)        # to run the work, or to take timer duty once it finds none
        return
    pidleput(pp)
    gc_mutex_unlock(&sched.lock)


cdef bint exitsyscall(gc_m *mp) noexcept nogil:
    """mp's sync G returns from a blocking call: take an idle P (Go's
    exitsyscall fast path). 0 if none is idle and the runtime still runs:
    the caller queues the G as a token and parks (exitsyscall_locked)."""
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


cdef bint exitsyscall_locked(gc_m *mp, void *gptr, int32_t *status, void **lockedm) noexcept nogil:
    """The slow path (Go's exitsyscall0 + stoplockedm). gptr is mp's sync G;
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
    if gqueue_put(&sched.gq, gptr) < 0:
        gc_throw(b"out of memory in the global run queue")
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


cdef extern from *:
    """
    #include <time.h>
    static inline void futex_sleep_us(long us) {
        struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
        nanosleep(&ts, NULL);
    }
    """
    void futex_sleep_us(long us) nogil


# ---------------------------------------------------------------- findrunnable

cdef extern from *:
    """
    static char gc_timers_due_marker;
    #define TIMERS_DUE ((void *)&gc_timers_due_marker)
    """
    void *TIMERS_DUE


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

cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define GC_GIL_BUILD 0
    #else
    #define GC_GIL_BUILD 1
    #endif
    """
    int GC_GIL_BUILD

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
        futex_sleep_us(delay_us)
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
                r = retake(pp, t, pp.sysmon_when)
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


cdef int retake(gc_p *pp, uint32_t tick, int64_t since) noexcept nogil:
    """GIL builds only. Take pp from its M, stuck in one G since `since`,
    and start it on another M: 1 if it did, 2 if its M runs Python and has
    not been stuck for HOG_GIL_NS yet, 0 if pp moved on meanwhile. Holding the
    GIL proves the stuck M is not using pp now."""
    cdef gc_m *mp
    cdef int64_t t0 = nanotime()
    cdef int64_t t1
    with gil:
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
    if ld_rlx_u32(&pp.schedtick) != tick:
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
            # a started sync G: the token of its parked thread (exitsyscall_locked)
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


cdef inline void execute(gc_m *mp, void *gptr) noexcept:
    """Requires GIL; mp owns gptr's queue reference. Runs the G one step."""
    global gc_tls_g
    cdef G gp = <G>gptr
    cdef PyObject *result = NULL
    cdef PySendResult r
    Py_DECREF(gp)                      # the local `gp` now holds the queue reference
    # runnable (off every queue now), or a sync G that turned async on this M
    if GOCORE_DEBUG:
        gc_assert_msg(gp.status == G_RUNNABLE or (gp.status == G_RUNNING and mp.curg == gptr),
                      b"execute: G is neither runnable nor this M's G turning async")
    st_rel_i32(&gp.status, G_RUNNING)
    pass_inspect_gate()
    mp.curg = gptr
    gc_tls_g = <PyObject *>gp
    if gp.kind == G_ASYNC:
        if gp.coro is None and start_coroutine(gp) < 0:
            gc_tls_g = NULL
            mp.curg = NULL
            goexit(gp, None, fetch_exception())
            return
        r = PyIter_Send(gp.coro, None, &result)
        gc_tls_g = NULL
        mp.curg = NULL
        if r == PYGEN_NEXT:
            if result == PARK_PTR:
                Py_DECREF(PARK)
                if gp.parkmode == PARK_YIELD:
                    gp.parkmode = PARK_WAIT
                    gp.status = G_RUNNABLE     # on a run queue from here on (_sched.pxd)
                    Py_INCREF(gp)          # the global queue's reference
                    gc_mutex_lock(&sched.lock)
                    gqueue_put(&sched.gq, gptr)
                    gc_mutex_unlock(&sched.lock)
                    if mp.p == NULL:
                        wakep()            # sysmon took our P: we may not be the one to run it
                    return
                Py_INCREF(gp)              # the parked state's reference
                gc_assert_msg(gp.status == G_RUNNING,
                              b"execute: a parking G was not running")
                mp.nparks += 1
                st_rel_i32(&gp.status, G_WAITING)
                if gp.unlockf != NULL:
                    gp.unlockf(gp.unlockarg)
                return
            foreign_yield(gp, <object>result)
            Py_DECREF(<object>result)
            return
        if r == PYGEN_RETURN:
            goexit(gp, <object>result, None)
            Py_DECREF(<object>result)
        else:
            exc = fetch_exception()
            if coro_closed_outside(exc, gp.coro):
                exc = None           # its coroutine was closed from outside: it ended cleanly
            goexit(gp, None, exc)
        return
    run_sync(mp, gp)


# ---------------------------------------------------------------- coroutines closed from outside
#
# A goroutine's coroutine object may be in the program's hands (go(coro)):
# coro.close() or coro.throw() from another goroutine or thread, while the
# goroutine is parked, finishes the coroutine behind the scheduler's back.
# The rule (issue 14 item 17): the goroutine ends cleanly. gocore's
# awaitables report it from their close()/throw() (the coroutine delegates
# both to the awaitable it is suspended on): goroutine_closed_outside()
# claims the parked G, as a waker would, so that nobody readies it, and
# ends it (gone from num_goroutine() and the dump). If a waker won the G
# first, or the coroutine was closed before it ever ran, the G is on a run
# queue: resuming it fails with CPython's "cannot reuse already awaited
# coroutine", raised before any frame runs (no traceback), and execute()
# ends the G without a panic. The exception given to throw() goes on into
# the coroutine, as the caller asked; if the coroutine catches it and goes
# on, it runs on the caller's thread, no longer a goroutine.

cdef int goroutine_closed_outside(PyObject *g) except -1:
    """Requires GIL. An awaitable's close()/throw(), g its borrowed G (or
    NULL if it never parked). Teardown closes coroutines as the G itself
    (gc_tls_g is g): nothing to do then."""
    cdef G gp
    if g == NULL or g == gc_tls_g:
        return 0
    gp = <G>g
    if gp.kind != G_ASYNC or ld_acq_i32(&gp.status) != G_WAITING:
        return 0
    if not cas_u32(&gp.park_claim, 0, 1):
        return 0                 # readied meanwhile: execute() ends it
    gp.waiting = None
    st_rel_i32(&gp.status, G_RUNNING)   # goexit's precondition; it runs nowhere
    goexit(gp, None, None)
    Py_DECREF(gp)                # the parked state's reference
    return 0


cdef bint coro_closed_outside(object exc, object coro) noexcept:
    """Requires GIL. Is exc CPython's refusal to resume the finished
    coroutine coro (raised before any of its frames ran: its traceback
    never passes through coro's code, as one it raised itself would)?"""
    if type(exc) is not RuntimeError or str(exc) != "cannot reuse already awaited coroutine":
        return 0
    try:
        code = coro.cr_code
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is code:
                return 0
            tb = tb.tb_next
    except BaseException:
        return 0
    return 1


cdef object thrown_exception(object typ, object val, object tb):
    """Requires GIL. The exception of a throw(typ[, val[, tb]]) call, for
    an awaitable's throw() to raise on into its coroutine."""
    if isinstance(typ, BaseException):
        exc = typ
    elif val is None:
        exc = typ()
    elif isinstance(val, BaseException):
        exc = val
    else:
        exc = typ(val)
    if tb is not None:
        exc = exc.with_traceback(tb)
    return exc


cdef int start_coroutine(G gp) except -1:
    """Requires GIL. First run of an ASYNC G: call its function. fn stays
    set for the G's life and coro is set once, never replaced while the G
    lives: dump_goroutines() reads them from other threads, which on a
    free-threaded build must never see an object released under them.
    args and kwargs (read by this G alone) go at once: the frame has them
    now (B8: 80 bytes less per parked goroutine)."""
    fn = gp.fn
    if gp.kwargs is not None:
        coro = fn(*gp.args, **gp.kwargs)
    elif gp.args is not None:
        coro = fn(*gp.args)
    else:
        coro = fn()
    gp.args = None
    gp.kwargs = None
    if not PyCoro_CheckExact(coro):
        if hasattr(coro, "__await__") and hasattr(coro, "send"):
            gp.coro = coro          # a Cython or other compiled coroutine
            return 0
        raise TypeError(f"go(): {fn!r} was taken for an async function but returned "
                        f"{type(coro).__name__}, not a coroutine")
    gp.coro = coro
    return 0


cdef void run_sync(gc_m *mp, G gp) noexcept:
    """Requires GIL. Runs a SYNC G's function to completion on this M."""
    global gc_tls_g
    cdef object exc = None
    cdef object res = None
    gp.thread_ident = PyThread_get_thread_ident()
    try:
        res = gp.fn(*gp.args, **gp.kwargs)
    except BaseException as e:
        exc = e
    if not mp.is_m0 and sync_g_exiting(mp):
        gc_tls_g = NULL
        mp.curg = NULL
        orphan_exit(gp, res, exc)     # its run() is over (see orphan_sync_g)
        return
    if exc is None and res is not None and not PyCoro_CheckExact(res) and hasattr(type(res), "__await__"):
        res = _await_it(res)          # go(ch.send, v): a gocore awaitable, not a coroutine
    if exc is None and PyCoro_CheckExact(res):
        # a plain callable that returned a coroutine (go(lambda: worker(i)),
        # go(ch.send, v)): run it as a lightweight goroutine from here on
        gp.kind = G_ASYNC
        gp.coro = res
        st_rel_i32(&mp.goexit, GOEXIT_NONE)
        Py_INCREF(gp)
        execute(mp, <void *>gp)
        return
    gc_tls_g = NULL
    mp.curg = NULL
    if isinstance(exc, GoroutineExit):
        exc = None
    goexit(gp, res, exc)
    st_rel_i32(&mp.goexit, GOEXIT_NONE)     # the M's next G starts afresh


cdef object fetch_exception():
    """Requires GIL, an exception set: take it (with its traceback)."""
    try:
        raise_current()
    except BaseException as e:
        return e

cdef extern from *:
    """
    static int raise_current_impl(void) { return -1; }   /* the error is already set */
    """
    int raise_current_impl() except -1

cdef int raise_current() except -1:
    return raise_current_impl()


_ASYNC_BRIDGE = ("to call asyncio code from a goroutine, use gocore.aio.call "
                 "(the asyncio bridge)")
# packages of other event loops: the awaitable a goroutine's chain reached
# in one of them is the one to name (asyncio.sleep(), not its inner yield)
_FOREIGN_LOOPS = frozenset(("asyncio", "trio", "anyio", "curio", "tornado", "twisted", "uvloop"))


def _foreign_awaitable(coro, what):
    """Name what a goroutine's coroutine awaited when it yielded `what` to
    the scheduler: walk the await chain (cr_await / gi_yieldfrom) from the
    goroutine's coroutine; name the outermost awaitable that belongs to
    another event loop's package, else the innermost one."""
    name = None
    o = getattr(coro, "cr_await", None)
    depth = 0
    while o is not None and depth < 1000:
        depth += 1
        frame = getattr(o, "cr_frame", None) or getattr(o, "gi_frame", None)
        if frame is not None:       # a suspended coroutine or generator
            mod = frame.f_globals.get("__name__", "")
            qual = getattr(o, "__qualname__", frame.f_code.co_name)
            name = f"{mod}.{qual}()" if mod else f"{qual}()"
            if mod.partition(".")[0] in _FOREIGN_LOOPS:
                return name
        else:
            name = repr(o)
        o = getattr(o, "cr_await", None) or getattr(o, "gi_yieldfrom", None)
    if name is None or (what is not None and name.startswith("<")):
        return repr(what)           # e.g. an asyncio Future, yielded by its __await__
    return name


cdef void foreign_yield(G gp, object what) noexcept:
    """An ASYNC G awaited something that is not gocore's (an asyncio future,
    a bare yield): that is a bug in the goroutine: it panics. The message
    names the awaitable (asyncio.sleep(0) yields a bare None) and the way
    to call asyncio code."""
    try:
        name = _foreign_awaitable(gp.coro, what)
    except Exception:
        name = repr(what)
    yielded = "" if name == repr(what) else f" (it yielded {what!r} to the scheduler)"
    err = TypeError(
        f"goroutine {gp.goid} awaited {name}, which is not a gocore awaitable"
        f"{yielded}; gocore goroutines can await only "
        "gocore operations (channels, select, sleep, sync primitives) and other "
        f"coroutines built on them; {_ASYNC_BRIDGE}")
    try:
        gp.coro.close()
    except BaseException:
        pass
    goexit(gp, None, err)


cdef void goexit(G gp, object result, object exc) noexcept:
    """Requires GIL; gp has finished (returned or raised)."""
    global _main_result
    gc_assert_msg(gp.status == G_RUNNING,
                  b"goexit: G was not running")
    gp.status = G_DEAD                   # its coroutine goes with the G itself (see start_coroutine)
    fetch_add_i64(&sched.ngoroutines, -1)
    allgs_remove(gp)
    if exc is not None:
        record_panic(exc, gp)
    elif gp.is_main:
        _main_result = result
        stop_the_world()


cdef void record_panic(object exc, G gp) noexcept:
    """Requires GIL. An exception escaped a goroutine: like a Go panic it
    ends the program - run() re-raises it; without run() the panic hook
    (default: print it and exit with status 2) handles it."""
    global _panic
    if type(exc) is RuntimeError and str(exc) == "no running event loop":
        # asyncio code run in a goroutine fails before it yields to us
        try:
            exc.add_note(f"(gocore goroutines do not run in an asyncio event loop; "
                         f"{_ASYNC_BRIDGE})")
        except Exception:
            pass
    if gp is not None and not gp.is_main and isinstance(exc, BaseException):
        try:
            exc.add_note(f"(raised in goroutine {gp.goid})")
        except Exception:
            pass
    if _main_g is None:
        # no run(): the background runtime
        hook = _panic_hook if _panic_hook is not None else default_panic_hook
        try:
            hook(exc, gp.goid if gp is not None else 0)
        except BaseException:
            pass
        return
    with _panic_lock:                    # Ms may panic at once on free-threaded builds
        if _panic is None:
            _panic = exc
    stop_the_world()


def default_panic_hook(exc, goid):
    import traceback
    sys.stderr.write(f"panic: goroutine {goid}: uncaught exception\n")
    traceback.print_exception(exc)
    sys.stderr.flush()
    os._exit(2)


def set_max_threads(n):
    """Set the bound on the number of OS threads (Ms) gocore may create and
    return the previous one (Go's debug.SetMaxThreads; default 10,000). A
    blocking call that needs a new thread past the bound ends the run with
    RuntimeError, as Go's runtime does, rather than hang."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_max_threads() needs an int, got {type(n).__name__}")
    if n < 1 or n > 1000000:
        raise ValueError(f"set_max_threads({n}): the bound must be in 1..1,000,000")
    gc_mutex_lock(&sched.lock)
    prev = sched.maxmcount if sched.maxmcount != 0 else 10000
    sched.maxmcount = n
    gc_mutex_unlock(&sched.lock)
    return prev


def set_panic_hook(hook):
    """Set what happens when an exception escapes a goroutine outside run():
    hook(exc, goroutine_id). None restores the default (print, exit 2)."""
    global _panic_hook
    if hook is not None and not callable(hook):
        raise TypeError("panic hook must be callable or None")
    _panic_hook = hook


cdef void stop_the_world() noexcept:
    """Any thread. Ask every M to leave its loop (run() is ending)."""
    cdef gc_m *mp
    st_rel_i32(&sched.stopping, 1)
    sysmon_stop()
    netpoll_stop_break()     # an M blocked in epoll_wait is on no idle list
    gc_mutex_lock(&sched.lock)
    mp = sched.midle
    while mp != NULL:
        sched.midle = mp.schedlink
        mp.in_midle = 0
        mp.nextp = NULL
        sched.nmidle -= 1
        note_wakeup(&mp.park)
        mp = sched.midle
    gc_mutex_unlock(&sched.lock)


# ---------------------------------------------------------------- sync goroutines that outlive run()
#
# DESIGN's lifecycle rule: when run() returns, every goroutine of that run
# is over. A sync goroutine parked in gocore is woken with GoroutineExit
# (teardown, below); one inside foreign code (time.sleep, a socket call)
# cannot be interrupted, so teardown *orphans* it: it leaves allgs and
# ngoroutines (num_goroutine() and the dump no longer show it), its M leaves
# sched.mcount (deadlock detection of the next run must not count it as
# running) and its M's goexit word says ORPHANED. From then on every gocore
# call of that goroutine raises GoroutineExit (check_goexit at the entry of
# the blocking_* calls and go(); goexit_self_claim where it would park), and
# what the function finally raises goes to sys.unraisablehook with its
# goroutine id (run_sync) - never to a later run(), never to the panic hook
# that ends the process.
#
# The M's goexit word (gocore_sched.h) is the only state shared between
# teardown and the goroutine's thread: teardown writes it under sched.lock
# (atomic store); the thread reads it atomically, and moves CLOSING ->
# IGNORED by CAS, and at the end of its function decides under sched.lock
# whether it was orphaned (then teardown has already removed it from allgs)
# or exits normally (EXITING: teardown then waits for its goexit instead).
# Rejected: killing the thread (no safe way in CPython), and leaving the
# goroutine counted until its call returns (the next run() saw it as running
# and its exception as its own).

cdef int64_t norphans = 0        # atomic: orphaned G objects whose function still runs (debug balance)


cdef int check_goexit() except -1:
    """Requires GIL. At the entry of a gocore call from a thread: raise
    GoroutineExit if the calling sync goroutine's run() is over."""
    cdef gc_m *mp = gc_tls_m
    if mp != NULL and ld_acq_i32(&mp.goexit) == GOEXIT_ORPHANED:
        raise GoroutineExit()
    return 0


cdef bint goexit_self_claim(gc_m *mp, G gp) noexcept:
    """gopark_thread, gp (mp's sync G) just marked G_WAITING: if its run()
    is over, claim gp for itself (1: do not sleep; wake_flags is WAKE_CLOSE
    and gp is running again). The fence pairs with orphan_sync_g's: either
    we see its goexit store, or it sees us waiting and wakes us."""
    fence_seq_cst()
    if ld_acq_i32(&mp.goexit) == GOEXIT_NONE or ld_acq_i32(&mp.goexit) == GOEXIT_EXITING:
        return 0
    if not cas_u32(&gp.park_claim, 0, 1):
        return 0                 # teardown claimed us meanwhile: its goready is coming
    # a closing G that parks again swallowed its GoroutineExit: teardown
    # stops waiting for it (issue 14 item 21)
    cas_i32(&mp.goexit, GOEXIT_CLOSING, GOEXIT_IGNORED)
    gp.wake_flags = WAKE_CLOSE
    st_rel_i32(&gp.status, G_RUNNING)
    return 1


cdef gc_m *m_running_locked(G gp) noexcept nogil:
    """Caller holds sched.lock. The M whose loop runs sync G gp (its curg),
    or NULL."""
    cdef gc_m *mp = sched.allm
    while mp != NULL:
        if mp.curg == <void *>gp and not mp.exited:
            return mp
        mp = mp.alllink
    return NULL


cdef void set_goexit_closing(G gp) noexcept:
    """Requires GIL. teardown is waking sync G gp with GoroutineExit."""
    cdef gc_m *mp
    gc_mutex_lock(&sched.lock)
    mp = m_running_locked(gp)
    if mp != NULL and ld_acq_i32(&mp.goexit) == GOEXIT_NONE:
        st_rel_i32(&mp.goexit, GOEXIT_CLOSING)
    gc_mutex_unlock(&sched.lock)


cdef bint orphan_sync_g(G gp) noexcept:
    """Requires GIL; teardown, after the unwinding grace. gp is a sync G
    still alive (inside foreign code, or it swallowed GoroutineExit).
    Returns 1 if gp is orphaned now (gone from allgs and ngoroutines), 0 if
    it is finishing on its own (EXITING: its goexit is imminent)."""
    cdef gc_m *mp
    gc_mutex_lock(&sched.lock)
    mp = m_running_locked(gp)
    if mp == NULL or ld_acq_i32(&mp.goexit) == GOEXIT_EXITING:
        gc_mutex_unlock(&sched.lock)
        return 0
    st_rel_i32(&mp.goexit, GOEXIT_ORPHANED)
    if not mp.uncounted:
        mp.uncounted = 1
        sched.mcount -= 1
    gc_mutex_unlock(&sched.lock)
    fence_seq_cst()              # pairs with goexit_self_claim's
    if ld_acq_i32(&gp.status) == G_WAITING and cas_u32(&gp.park_claim, 0, 1):
        gp.wake_flags = WAKE_CLOSE
        goready(gp)
    fetch_add_i64(&norphans, 1)
    fetch_add_i64(&sched.ngoroutines, -1)
    allgs_remove(gp)
    return 1


cdef bint sync_g_exiting(gc_m *mp) noexcept:
    """Requires GIL; mp's sync G has returned or raised. 1 if it was orphaned
    (its run() is over and teardown removed it); otherwise marks it EXITING
    so that teardown waits for its goexit rather than orphaning it."""
    cdef bint orphaned
    gc_mutex_lock(&sched.lock)
    orphaned = ld_acq_i32(&mp.goexit) == GOEXIT_ORPHANED
    if not orphaned:
        st_rel_i32(&mp.goexit, GOEXIT_EXITING)
    gc_mutex_unlock(&sched.lock)
    return orphaned


cdef void orphan_exit(G gp, object res, object exc) noexcept:
    """Requires GIL. An orphaned sync G's function is over: report what it
    raised (other than GoroutineExit) to sys.unraisablehook."""
    st_rel_i32(&gp.status, G_DEAD)
    if PyCoro_CheckExact(res):
        try:
            res.close()
        except BaseException:
            pass
    if exc is not None and not isinstance(exc, GoroutineExit):
        try:
            sys.unraisablehook(make_unraisable(
                exc, gp, f"Exception ignored in goroutine {gp.goid}, which outlived its run()"))
        except BaseException:
            pass
    fetch_add_i64(&norphans, -1)


# ---------------------------------------------------------------- runtime start / stop

cdef int32_t _gomaxprocs = 0     # 0: not chosen yet

cdef int32_t default_procs() except -1:
    env = os.environ.get("GOCORE_MAXPROCS")
    if env is not None and env.strip() != "":
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"GOCORE_MAXPROCS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"GOCORE_MAXPROCS must be a positive integer, got {env!r}")
        return n
    return os.cpu_count() or 1


def gomaxprocs(n=None):
    """Return the number of processors (Ps); with n >= 1, set it and return
    the previous value. gomaxprocs(0), as Go's GOMAXPROCS(0), only returns it.
    A new value applies from the next start of the runtime (the next run(),
    or the next background start)."""
    global _gomaxprocs
    if _gomaxprocs == 0:
        _gomaxprocs = default_procs()
    cdef int32_t old = _gomaxprocs
    if ld_acq_i32(&sched.running):
        old = sched.nprocs
    if n is None:
        return old
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"gomaxprocs(n) needs an int, got {type(n).__name__}")
    if n == 0:
        return old                   # a query, as Go's GOMAXPROCS(0)
    if n < 1 or n > 4096:
        raise ValueError(f"gomaxprocs(n) needs 1 <= n <= 4096 (or 0 to query), got {n}")
    _gomaxprocs = n
    return old


cdef gc_p *_allp_storage = NULL
cdef int32_t _allp_cap = 0

cdef int procresize(int32_t n) except -1:
    """Requires GIL; runtime stopped. Make n fresh idle Ps. P memory is never
    freed: an M left over from an earlier run (stuck in a sync goroutine)
    may still hold a pointer to its old P."""
    global _allp_storage, _allp_cap
    cdef int32_t i
    if n > _allp_cap:
        _allp_storage = <gc_p *>calloc(n, sizeof(gc_p))
        if _allp_storage == NULL:
            raise MemoryError()
        _allp_cap = n
    else:
        memset(_allp_storage, 0, n * sizeof(gc_p))
    # under the lock pidleput requires: a straggler M of an earlier run
    # (see above) may take it meanwhile, in exitsyscall
    gc_mutex_lock(&sched.lock)
    sched.allp = _allp_storage
    sched.nprocs = n
    sched.pidle = NULL
    sched.npidle = 0
    for i in range(n - 1, -1, -1):
        sched.allp[i].id = i
        pidleput(&sched.allp[i])
    gc_mutex_unlock(&sched.lock)
    return 0


cdef int runtime_start(bint with_m0) except -1:
    """Requires GIL; runtime stopped."""
    global deadlock_holdoff, deadlock_backoff
    if _gomaxprocs == 0:
        gomaxprocs()
    deadlock_holdoff = deadlock_backoff = 0      # the last run's backoff says nothing about this one
    sched.gen += 1
    sched.stopping = 0
    sched.sigpending = 0
    sched.nmspinning = 0
    sched.nmblocked = 0
    sched.midle = NULL
    sched.nmidle = 0
    if sched.maxmcount == 0:
        sched.maxmcount = 10000
    procresize(_gomaxprocs)
    sched.sysmon_running = 0
    st_rel_i32(&sched.running, 1)
    sysmon_start()
    return 0


cdef void runtime_ensure_started() except *:
    """Requires GIL. The first go() outside run() starts the runtime in the
    background: Ms are created on demand by wakep()."""
    if not ld_acq_i32(&sched.running):
        with _start_lock:
            if not ld_acq_i32(&sched.running):
                runtime_start(0)


# ---------------------------------------------------------------- public API

cdef object go_impl(object fn, tuple args, dict kwargs):
    """go(): start a goroutine (see the docstring of gocore.go). args and
    kwargs are None when empty."""
    cdef G gp
    cdef gc_m *mp
    cdef gc_p *pp
    cdef int queued
    mp = gc_tls_m
    if mp != NULL and ld_acq_i32(&mp.goexit) == GOEXIT_ORPHANED:
        raise GoroutineExit()    # check_goexit(), inline: a sync G that outlived its run()
    if PyCoro_CheckExact(fn):
        if args is not None or kwargs is not None:
            raise TypeError("go(coroutine) takes no extra arguments")
        gp = newg(G_ASYNC, None, None, None)
        gp.coro = fn
    elif is_async_function(fn):
        gp = newg(G_ASYNC, fn, args, kwargs)
    elif callable(fn):
        gp = newg(G_SYNC, fn, args if args is not None else (), kwargs if kwargs is not None else {})
    else:
        raise TypeError(f"go() needs an async def function, a coroutine or a callable, "
                        f"got {type(fn).__name__}")
    while True:
        if not ld_acq_i32(&sched.running):
            with _start_lock:
                if not ld_acq_i32(&sched.running):
                    runtime_start(0)
        fetch_add_i64(&sched.ngoroutines, 1)
        if _main_g is None:
            fence_seq_cst()      # Dekker with runtime_handover(): our count, then its flag
        if not ld_acq_i32(&bg_handover) or gc_tls_m != NULL:
            break
        # run() is deciding whether to stop the idle background runtime
        # (it found no goroutine): do not count in it; wait for run() to
        # have started its own runtime, and join that one
        fetch_add_i64(&sched.ngoroutines, -1)
        with _start_lock:
            pass
    allgs_add(gp)
    Py_INCREF(gp)                        # the run queue's reference
    mp = gc_tls_m
    pp = own_p(mp)
    if pp != NULL:
        queued = runq_put(pp, <void *>gp, 1, &sched.lock, &sched.gq)
        pown_release(mp, pp)
        if queued and not GC_GIL_BUILD:
            wakep()
    else:
        gc_mutex_lock(&sched.lock)
        gqueue_put(&sched.gq, <void *>gp)
        gc_mutex_unlock(&sched.lock)
        wakep()
    return None


cdef object go_fastcall(PyObject *self, PyObject **args, Py_ssize_t nargs, PyObject *kwnames):
    """go's C entry point (METH_FASTCALL | METH_KEYWORDS): the common
    go(fn, x) call builds no kwargs dict and no args tuple beyond fn's."""
    cdef tuple rest = None
    cdef dict kw = None
    cdef Py_ssize_t i, nkw
    if nargs < 1:
        raise TypeError("go() needs a function to run: go(fn, *args, **kwargs)")
    if nargs > 1:
        rest = PyTuple_New(nargs - 1)
        for i in range(1, nargs):
            Py_INCREF(<object>args[i])
            PyTuple_SET_ITEM(rest, i - 1, <object>args[i])
    if kwnames != NULL:
        nkw = len(<object>kwnames)
        if nkw:
            kw = {}
            for i in range(nkw):
                kw[(<object>kwnames)[i]] = <object>args[nargs + i]
    return go_impl(<object>args[0], rest, kw)


cdef extern from "Python.h":
    ctypedef struct PyMethodDef:
        const char *ml_name
        void *ml_meth
        int ml_flags
        const char *ml_doc
    int METH_FASTCALL
    int METH_KEYWORDS
    object PyCFunction_NewEx(PyMethodDef *ml, object self, object module)
    tuple PyTuple_New(Py_ssize_t n)
    void PyTuple_SET_ITEM(object t, Py_ssize_t i, object o)

cdef PyMethodDef go_def
go_def.ml_name = "go"
go_def.ml_meth = <void *>go_fastcall
go_def.ml_flags = METH_FASTCALL | METH_KEYWORDS
go_def.ml_doc = (b"go(fn, *args, **kwargs)\n--\n\n"
                 b"Start a goroutine and return None, as Go's go statement. fn is an\n"
                 b"async def function (a lightweight goroutine, resumed by any worker\n"
                 b"thread), a coroutine object, or a plain callable (a sync goroutine,\n"
                 b"run on a worker thread; when it blocks in gocore its processor is\n"
                 b"handed to another thread).")
go = PyCFunction_NewEx(&go_def, None, __name__)


# A native (interpreted) coroutine that awaits any awaitable: go(ch.send, v)
# and other callables returning a gocore awaitable run through it. Built with
# exec because a Cython `async def` is not a native coroutine.
_ns = {}
exec("async def await_it(aw):\n    return await aw\n", _ns)
cdef object _await_it = _ns["await_it"]
del _ns

cdef object _iscoroutinefunction = None

cdef extern from *:
    """
    /* 1: a Python function whose code is an async def (CO_COROUTINE),
     * 2: a generator function, 3: an async generator function, 0: another
     * Python function, -1: not a plain Python function. */
    static inline int gc_pyfunc_is_async(PyObject *fn) {
        if (!PyFunction_Check(fn)) return -1;
        PyCodeObject *co = (PyCodeObject *)PyFunction_GET_CODE(fn);
        if (co->co_flags & CO_COROUTINE) return 1;
        if (co->co_flags & CO_ASYNC_GENERATOR) return 3;
        if (co->co_flags & CO_GENERATOR) return 2;
        return 0;
    }
    """
    int gc_pyfunc_is_async(object fn)

cdef object _isgenfunction = None

cdef int reject_generator_function(object fn, str who, int kind) except -1:
    """go()/run() on a generator function would call it, get a generator
    that nothing iterates, and silently do nothing: refuse it."""
    what = "an async generator function" if kind == 3 else "a generator function"
    raise TypeError(f"{who}() needs an async def function, a coroutine or a plain function; "
                    f"{fn!r} is {what} (calling it only builds a generator, which never runs)")

cdef bint is_async_function(object fn, str who="go") except -1:
    """1 for an async def function (or a callable that inspect calls one),
    0 for another callable; raises TypeError for a generator or async
    generator function."""
    global _iscoroutinefunction, _isgenfunction
    cdef int r = gc_pyfunc_is_async(fn)
    if r >= 2:
        reject_generator_function(fn, who, r)
    if r >= 0:
        return r
    if not callable(fn):
        return 0
    g = _isgenfunction
    if g is None:
        with _panic_lock:               # one import, even on a free-threaded build
            if _isgenfunction is None:
                import inspect
                _isgenfunction = (inspect.isgeneratorfunction, inspect.isasyncgenfunction)
            g = _isgenfunction
    if g[1](fn):
        reject_generator_function(fn, who, 3)
    if g[0](fn):
        reject_generator_function(fn, who, 2)
    f = _iscoroutinefunction
    if f is None:
        with _panic_lock:               # one import, even on a free-threaded build
            if _iscoroutinefunction is None:
                import inspect
                _iscoroutinefunction = inspect.iscoroutinefunction
            f = _iscoroutinefunction
    return f(fn)


cdef class _Gosched:
    """await gosched(): the G goes to the global queue and others run."""
    cdef bint yielded

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        cdef G gp
        if self.yielded:
            raise StopIteration
        gp = getg_or_none()
        if gp is None or gp.kind != G_ASYNC:
            raise StopIteration         # a thread: nothing to yield to
        self.yielded = True
        gp.parkmode = PARK_YIELD
        return PARK


def gosched():
    """Yield the processor (Go's runtime.Gosched): `await gosched()`."""
    return _Gosched.__new__(_Gosched)

gc_internal_type(_Gosched)          # only gosched() builds them


def num_goroutine():
    """Live goroutines, including main."""
    cdef int64_t n = ld_acq_i64(&sched.ngoroutines)
    if _main_g is None:
        n += 1          # the main thread
    return n


cdef chain_signal(int signum):
    if gc_sigchain_add(signum) < 0:
        raise OSError(f"gocore: cannot chain the handler of signal {signum}")


def _signal_handler_installed(signum):
    """Main thread, after signal.signal(signum, ...): inside run(), have the
    handler wake an idle main thread too (a no-op outside run())."""
    chain_signal(signum)


def run(fn, *args, **kwargs):
    """Run fn as the main goroutine on this thread until it returns; return
    its result. An exception escaping any goroutine is re-raised here. When
    main returns, the remaining goroutines are closed and the Ms stop."""
    global _main_g, _main_result, _panic, gc_tls_m
    cdef G gp
    cdef gc_m *m0 = NULL
    cdef gc_p *pp
    cdef int64_t me = <int64_t>PyThread_get_thread_ident()
    if gc_tls_g != NULL or gc_tls_m != NULL or ld_acq_i64(&run_owner) == me:
        check_goexit()
        raise RuntimeError("gocore.run() is already running: run() cannot be nested")
    if PyCoro_CheckExact(fn):
        if args or kwargs:
            raise TypeError("run(coroutine) takes no extra arguments")
        gp = newg(G_ASYNC, None, None, None)
        gp.coro = fn
    elif is_async_function(fn, "run"):
        gp = newg(G_ASYNC, fn, args, kwargs if kwargs else None)
    elif callable(fn):
        gp = newg(G_SYNC, fn, args, kwargs)
    else:
        raise TypeError(f"run() needs an async def function, a coroutine or a callable, "
                        f"got {type(fn).__name__}")
    gp.is_main = True
    # One run() at a time in a process: the first caller owns it.
    if not cas_i64(&run_owner, 0, me):
        raise RuntimeError("gocore.run() is already running in another thread; a process "
                           "runs one run() at a time (start goroutines with go() instead)")
    try:
        m0 = <gc_m *>calloc(1, sizeof(gc_m))
        if m0 == NULL:
            raise MemoryError()
        with _start_lock:
            adopt = runtime_handover()
            if not adopt:
                runtime_start(1)
            _main_g = gp
            st_rel_i32(&bg_handover, 0)
    except BaseException:
        st_rel_i32(&bg_handover, 0)
        st_rel_i64(&run_owner, 0)
        free(m0)
        raise
    _main_result = None
    _panic = None
    m0.is_m0 = 1
    m0.gen = sched.gen
    m0.fastrand = 0x2545F491
    m0.id = -1
    sched.m0 = m0
    set_maing(gp)
    gc_mutex_lock(&sched.lock)
    sched.mcount += 1                    # M0 counts as a running M
    gc_mutex_unlock(&sched.lock)
    fetch_add_i64(&sched.ngoroutines, 1)
    allgs_add(gp)
    is_main_thread = threading.current_thread() is threading.main_thread()
    if is_main_thread:
        gc_sigchain_begin(&sched.sigpending, &m0.park)
        for signum in range(1, signal.NSIG):
            if callable(raw_getsignal(signum)):     # a Python handler
                chain_signal(signum)
    gc_tls_m = m0
    set_tstate(m0, <void *>PyThreadState_Get())
    try:
        try:
            pp = m0_getp(m0)
            if pp != NULL:
                acquirep(m0, pp)
                Py_INCREF(gp)
                runq_put(m0.p, <void *>gp, 1, &sched.lock, &sched.gq)
                schedule(m0)
        except BaseException as e:      # SIGINT's KeyboardInterrupt
            if _panic is None:
                _panic = e
        finally:
            gc_tls_m = NULL
            set_tstate(m0, NULL)         # m0 is freed below; sysmon looks only under sched.lock
            teardown(m0)
            if is_main_thread:
                gc_sigchain_end()
        if _panic is not None:
            exc = _panic
            _panic = None
            raise exc
        res = _main_result
        _main_result = None
        return res
    finally:
        _main_g = None
        st_rel_i64(&run_owner, 0)
        free(m0)
        if GOCORE_DEBUG:
            gp = None                    # the main G is done with: only leaks remain
            debug_check("the end of run()", 0)


# ---------------------------------------------------------------- run() and the background runtime
#
# Without run(), the first go() starts the runtime "in the background" (its
# Ms run goroutines while the calling thread uses blocking_* calls). A later
# run() (from any thread) hands over as follows, so that it never fails
# because of it (issue 14 item 8):
#   * a background runtime with no goroutine left is stopped and run()
#     starts a fresh one (gomaxprocs set meanwhile applies);
#   * one with goroutines alive is adopted: run()'s thread joins it as M0
#     and its goroutines become goroutines of this run - like goroutines a
#     plain thread starts with go() during run() - so they are closed when
#     run() returns, and a later go() starts a new background runtime.
# The decision and the start happen under _start_lock. go() counts its
# goroutine (ngoroutines, seq_cst) before it looks at bg_handover, and run()
# raises bg_handover before it looks at ngoroutines: either run() sees the
# goroutine (and adopts), or go() sees the hand-over and waits on
# _start_lock, then joins run()'s runtime. Only Ms (a timer's after_func)
# do not wait: run() is waiting for them to leave their loops.
# run_owner (a thread id, CAS from 0) admits one run() at a time: a second
# thread gets "already running in another thread", a goroutine "nested".

cdef object _start_lock = threading.RLock()   # runtime start/stop decisions (see above)
cdef int32_t bg_handover = 0     # atomic: run() is deciding about the background runtime
cdef int64_t run_owner = 0       # atomic: thread id of the thread inside run(), or 0


cdef bint runtime_handover() except -1:
    """Requires GIL; caller holds _start_lock and owns run_owner. 1 if run()
    adopts the background runtime, 0 if run() must start one (none runs, or
    the idle background one was stopped here). Leaves bg_handover raised
    for the caller to lower once its runtime is up."""
    if not ld_acq_i32(&sched.running):
        return 0
    st_rel_i32(&bg_handover, 1)
    fence_seq_cst()              # pairs with go()'s fetch_add on ngoroutines
    if ld_acq_i64(&sched.ngoroutines) == 0:
        teardown(NULL)
        return 0
    return 1


cdef gc_p *m0_getp(gc_m *m0) except? NULL:
    """Requires GIL. A P for M0 (NULL: the runtime is stopping). A fresh
    runtime has every P idle; an adopted one may have none idle (its
    goroutines keep them busy): then M0 queues a token on the global queue,
    as a sync goroutine back from a blocking call does (exitsyscall_locked),
    and sleeps until the M that takes the token hands over its P
    (startlockedm). The token is a bare G (kind SYNC, started, lockedm =
    m0) in no other list. M0 withdraws it (xchg lockedm to NULL; the
    scheduler then drops it) to run signal handlers or when the runtime
    stops."""
    cdef gc_p *pp
    cdef G tok
    cdef uint32_t k
    while True:
        gc_mutex_lock(&sched.lock)
        pp = pidleget()
        if pp != NULL or ld_acq_i32(&sched.stopping):
            gc_mutex_unlock(&sched.lock)
            return pp
        gc_mutex_unlock(&sched.lock)
        tok = G.__new__(G)
        tok.kind = G_SYNC
        tok.thread_ident = PyThread_get_thread_ident()
        tok.status = G_RUNNABLE
        gc_dbg_add(GC_DBG_G_OBJECTS, 1)     # down in its tp_dealloc
        note_clear(&m0.park)
        m0.nextp = NULL
        tok.lockedm = <void *>m0
        Py_INCREF(tok)                      # the global queue's reference
        gc_mutex_lock(&sched.lock)
        if gqueue_put(&sched.gq, <void *>tok) < 0:
            gc_throw(b"out of memory in the global run queue")
        gc_mutex_unlock(&sched.lock)
        while True:
            with nogil:
                k = note_sleep_deadline(&m0.park, nanotime() + 10000000)
            if k != 1 and (k == 2 or ld_acq_i32(&sched.stopping) or ld_acq_i32(&sched.sigpending)):
                if xchg_ptr(&tok.lockedm, NULL) != NULL:
                    break                   # withdrawn: run the handlers, then try again
                with nogil:
                    note_sleep(&m0.park)    # taken: the hand-over is under way
                k = 1
            if k == 1:
                note_clear(&m0.park)
                pp = m0.nextp
                m0.nextp = NULL
                return pp
        st_rel_i32(&sched.sigpending, 0)
        PyErr_CheckSignals()


# ---------------------------------------------------------------- fork
#
# os.fork() copies one thread: the child has no Ms, no sysmon and none of
# the parent's goroutines can run there. DESIGN: the child starts with no
# runtime, and go()/run() work in it (multiprocessing's fork start method,
# pre-fork servers). Before the fork the parent takes timerlock, sched.lock
# and allglock (in the lock order; their holders never wait for the GIL),
# so the child inherits consistent structures; the parent releases them
# after. The child forgets the runtime without running any goroutine code:
# the parent's Gs, Ms and timers are leaked, not closed (closing would run
# their finally blocks a second time, in the child). Every parent G still
# listed is marked claimed (park_claim = 1), so that a channel operation in
# the child that finds one of their waiters skips it instead of readying a
# goroutine of the parent. Known gaps: a channel lock, or a plain thread's
# waiter, of a thread the child does not have; and a child forked inside a
# goroutine runs on that goroutine's frames: it must end with os._exit()
# (as multiprocessing's children do), not return into the parent's runtime.

def _before_fork():
    timer_lock()
    with nogil:
        gc_mutex_lock(&sched.lock)
        gc_mutex_lock(&allglock)


def _after_fork_parent():
    gc_mutex_unlock(&allglock)
    gc_mutex_unlock(&sched.lock)
    timer_unlock()


def _after_fork_child():
    global allgs_head, gc_tls_m, gc_tls_g, _main_g, _main_result, _panic, _start_lock
    global bg_handover, run_owner, norphans, nthreadparked, threadparkseq, inspect_gate
    global deadlock_holdoff, deadlock_backoff, timer_kick, _thread_gs
    cdef PyObject *p
    cdef gc_m *mp
    # the parent's goroutines: never to run here (their references leak)
    p = allgs_head
    while p != NULL:
        st_rel_u32(&(<G>p).park_claim, 1)
        p = (<G>p).allnext
    allgs_head = NULL
    # the parent's timers: dropped unfired (references leak, as above)
    while timers_pop_due(&timers, GC_NEVER) != NULL:
        pass
    timers.next_when = GC_NEVER
    timer_kick = 0
    # its Ms do not exist here; one of them may be this very thread
    mp = sched.allm
    while mp != NULL:
        mp.uncounted = 1
        st_rel_i32(&mp.goexit, GOEXIT_ORPHANED)
        mp = mp.alllink
    if sched.m0 != NULL:
        sched.m0.uncounted = 1
    while gqueue_get(&sched.gq) != NULL:
        pass
    sched.allm = NULL
    sched.midle = NULL
    sched.nmidle = 0
    sched.mcount = 0
    sched.m0 = NULL
    sched.timer_m = NULL
    sched.nmspinning = 0
    sched.nmblocked = 0
    sched.ngoroutines = 0
    sched.stopping = 0
    sched.sigpending = 0
    sched.sysmon_running = 0
    sched.sysmon_wait = 0
    note_clear(&sched.sysmon_note)
    sched.gen += 1                   # anything left of the parent's Ms is a straggler
    st_rel_i32(&sched.running, 0)
    maing.g = NULL
    nthreadparked = 0
    threadparkseq = 0
    inspect_gate = 0
    deadlock_holdoff = deadlock_backoff = 0
    bg_handover = 0
    run_owner = 0
    norphans = 0
    if GOCORE_DEBUG:
        memset(gc_dbg_store, 0, GC_DBG_N * sizeof(int64_t))
    gc_tls_m = NULL                  # this thread is no M and runs no goroutine here
    gc_tls_g = NULL
    _main_g = None
    _main_result = None
    _panic = None
    _start_lock = threading.RLock()
    _thread_gs = threading.local()   # this thread may be the child's main thread now
    gc_sigchain_end()                # run()'s signal handlers, if forked inside it
    # the locks the parent held across fork (see _before_fork)
    st_rel_u32(&allglock.key, 0)
    st_rel_u32(&sched.lock.key, 0)
    st_rel_u32(&timerlock.key, 0)


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                    after_in_child=_after_fork_child)


cdef void teardown(gc_m *m0) except *:
    """Requires GIL. Stop every M, then close every goroutine still alive
    (their finally blocks run), and leave the runtime ready for a new run()."""
    cdef gc_m *mp
    cdef int32_t busy
    cdef G gp
    cdef void *q
    cdef int32_t i
    stop_the_world()
    netpoll_quiesce()        # no poll readies a G from here on
    set_maing(None)
    if m0 != NULL:
        m0.p = NULL
        gc_mutex_lock(&sched.lock)
        sched.mcount -= 1
        gc_mutex_unlock(&sched.lock)
    # Sync goroutines parked in gocore wake with GoroutineExit; their
    # finally blocks get up to 2 s to run before run() returns. One that
    # parks again has swallowed GoroutineExit (a bare except:): its park
    # raises it again at once and teardown stops waiting for it (its M's
    # goexit word moves CLOSING -> IGNORED); it is orphaned below.
    closing = []
    for gp in _all_goroutines():
        if gp.kind == G_SYNC and ld_acq_i32(&gp.status) == G_WAITING:
            set_goexit_closing(gp)
            if cas_u32(&gp.park_claim, 0, 1):
                gp.wake_flags = WAKE_CLOSE
                goready(gp)
                closing.append(gp)
        elif gp.kind == G_SYNC:
            # woken, but its thread waits for a P (exitsyscall_locked): wake
            # it without one; its token left on a run queue is dropped below
            mp = <gc_m *>xchg_ptr(&gp.lockedm, NULL)
            if mp != NULL:
                if ld_acq_i32(&mp.goexit) == GOEXIT_NONE:
                    st_rel_i32(&mp.goexit, GOEXIT_CLOSING)
                gp.wake_flags = WAKE_CLOSE
                st_rel_i32(&gp.status, G_RUNNING)
                mp.nextp = NULL
                note_wakeup(&mp.park)
                closing.append(gp)
    cdef int64_t unwind_deadline = nanotime() + 2000000000
    while closing and nanotime() < unwind_deadline:
        closing = [gp for gp in closing
                   if ld_acq_i32(&gp.status) != G_DEAD and not goexit_ignored(gp)]
        if closing:
            with nogil:
                futex_sleep_us(500)
    # What is left of the sync goroutines (inside foreign code, or deaf to
    # GoroutineExit) is orphaned: run() does not wait for it (see
    # "sync goroutines that outlive run()"). One on its way out is waited
    # for briefly, so that its exception still reaches this run().
    unwind_deadline = nanotime() + 1000000000
    for gp in _all_goroutines():
        if gp.kind != G_SYNC or gp.is_main or gp.thread_ident == 0:
            continue             # not started: closed with the rest below
        while (ld_acq_i32(&gp.status) != G_DEAD and not orphan_sync_g(gp)
               and nanotime() < unwind_deadline):
            with nogil:
                futex_sleep_us(200)
    # Wait until the other Ms have left their loops; an M inside a sync
    # goroutine's foreign call (time.sleep, socket...) is not waited for: it
    # exits on its own when the call returns (its gen is old by then).
    while True:
        busy = 0
        gc_mutex_lock(&sched.lock)
        mp = sched.allm
        while mp != NULL:
            if not mp.exited and mp.gen == sched.gen and not (mp.curg != NULL and (<G>mp.curg).kind == G_SYNC):
                busy += 1
            mp = mp.alllink
        gc_mutex_unlock(&sched.lock)
        if busy == 0:
            break
        stop_the_world()
        with nogil:
            futex_sleep_us(200)
    # Take every queued G out of the run queues (their references are ours).
    held = []
    gc_mutex_lock(&sched.lock)
    while True:
        q = gqueue_get(&sched.gq)
        if q == NULL:
            break
        held.append(<object>q); Py_DECREF(<object>q)
    gc_mutex_unlock(&sched.lock)
    for i in range(sched.nprocs):
        while True:
            q = runq_get(&sched.allp[i])
            if q == NULL:
                break
            held.append(<object>q); Py_DECREF(<object>q)
    sched.gen += 1                       # orphan stragglers
    st_rel_i32(&sched.running, 0)
    sched.m0 = NULL
    # Close what is left: runnable and parked goroutines alike.
    for gp in _all_goroutines():
        close_goroutine(gp)
    del held
    drop_timers()
    aio = sys.modules.get("gocore.aio")
    if aio is not None:
        aio._runtime_stopped()           # stop its asyncio loop (cancels what is left); never raises


cdef bint goexit_ignored(G gp) noexcept:
    """Requires GIL. Has sync G gp parked again after teardown woke it with
    GoroutineExit (it swallowed it)?"""
    cdef gc_m *mp
    cdef bint r
    gc_mutex_lock(&sched.lock)
    mp = m_running_locked(gp)
    r = mp != NULL and ld_acq_i32(&mp.goexit) == GOEXIT_IGNORED
    gc_mutex_unlock(&sched.lock)
    return r


cdef void drop_timers() noexcept:
    """Requires GIL; runtime stopped. Timers die with the program's run, as
    in Go: forgotten Tickers (tick()) and Timers are dropped. Sleeping
    goroutines removed theirs when they were closed."""
    cdef gc_timer *t
    owners = []
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


cdef void close_goroutine(G gp) noexcept:
    """Requires GIL; runtime stopped. Run gp's finally blocks and drop it."""
    global gc_tls_g
    cdef int32_t st = ld_acq_i32(&gp.status)
    if st == G_DEAD:
        return
    if st == G_WAITING and gp.kind == G_ASYNC:
        if gp.waiting is not None:
            try:
                gp.waiting._cancel()
            except BaseException:
                pass
        Py_DECREF(gp)                  # the parked state's reference
    if gp.kind == G_ASYNC and gp.coro is not None:
        gc_tls_g = <PyObject *>gp
        try:
            gp.coro.close()
        except BaseException as e:
            sys.unraisablehook(make_unraisable(e, gp))
        gc_tls_g = NULL
    if gp.kind != G_SYNC or st != G_RUNNING:
        gp.status = G_DEAD
        gp.coro = None
        gp.waiting = None
        fetch_add_i64(&sched.ngoroutines, -1)
        allgs_remove(gp)


cdef object make_unraisable(object exc, G gp, str msg=None):
    class _U:
        pass
    u = _U()
    u.exc_type = type(exc)
    u.exc_value = exc
    u.exc_traceback = exc.__traceback__
    u.err_msg = msg if msg is not None else f"Exception ignored while closing goroutine {gp.goid}"
    u.object = None
    return u


# ---------------------------------------------------------------- introspection hooks

def _sched_counters():
    """Counters for tests and stats(): a dict (racy snapshot)."""
    cdef int64_t mparks = 0
    cdef gc_m *mp
    gc_mutex_lock(&sched.lock)
    mp = sched.allm
    while mp != NULL:
        mparks += mp.nparks
        mp = mp.alllink
    if sched.m0 != NULL:
        mparks += sched.m0.nparks
    gc_mutex_unlock(&sched.lock)
    return {
        "goroutines": ld_acq_i64(&sched.ngoroutines),
        "ms": sched.mcount,
        "ms_idle": sched.nmidle,
        "ms_spinning": ld_acq_i32(&sched.nmspinning),
        "ms_blocked": ld_acq_i32(&sched.nmblocked),
        "ps": sched.nprocs,
        "ps_idle": ld_acq_i32(&sched.npidle),
        "steals": ld_rlx_i64(&sched.nsteals),
        "parks": ld_rlx_i64(&sched.nparks) + mparks,
        "retakes": ld_rlx_i64(&sched.nretakes),
        "handoffs": ld_rlx_i64(&sched.nhandoffs),
        "goroutines_created": ld_rlx_i64(&sched.goidgen),
        "timers": ld_acq_i32(&timers.len),
        "global_runq": ld_rlx_u32(&sched.gq.size),
        "running": ld_acq_i32(&sched.running),
        "runq_cap": GOCORE_RUNQ_CAP,
    }


def _current_goid():
    """The running goroutine's id, or 0 on a plain thread (tests)."""
    if gc_tls_g == NULL:
        return 0
    return (<G>gc_tls_g).goid


def _current_m():
    """The running M's id (-1 for M0), or None on a plain thread (tests)."""
    if gc_tls_m == NULL:
        return None
    return gc_tls_m.id


def _debug_plain_threads():
    return plain_threads_running(), ld_acq_i32(&nthreadparked)


def _goroutine_info():
    """Requires GIL. A snapshot for dump_goroutines(): one tuple per live G
    (goid, kind, status, wait reason, seconds waiting, coroutine or None,
    function or None, is_main, thread ident or 0, is the calling G)."""
    cdef G gp
    cdef int64_t now = nanotime()
    out = []
    for gp in _all_goroutines():
        st = ld_acq_i32(&gp.status)
        kind = ("async", "sync", "thread")[gp.kind]
        status = {G_RUNNABLE: "runnable", G_RUNNING: "running", G_WAITING: "waiting",
                  G_DEAD: "dead", G_IDLE: "idle"}.get(st, "?")
        reason = WAIT_REASONS.get(gp.waitreason, "?") if st == G_WAITING else status
        if st == G_WAITING and (gp.waitreason == W_IO_READ or gp.waitreason == W_IO_WRITE):
            reason = (f"IO wait, fd {getattr(gp.waiting, 'fd', -1)}, "
                      f"{'read' if gp.waitreason == W_IO_READ else 'write'}")
        if st == G_RUNNING and gp.kind == G_SYNC and gc_tls_g != <PyObject *>gp:
            reason = "running (sync goroutine; may be in a call outside the runtime: syscall)"
        waited = (nanotime_coarse() - gp.waitsince_ns) / 1e9 if st == G_WAITING else 0.0
        out.append((gp.goid, kind, status, reason, waited, gp.coro, gp.fn, gp.is_main,
                    gp.thread_ident, gc_tls_g == <PyObject *>gp))
    out.sort(key=lambda t: t[0])
    return out


def stats():
    """Runtime counters (a racy snapshot; cheap to read, never slows the
    runtime down): goroutines created and alive, parks, steals, hand-offs
    of Ps by blocking calls, retakes by sysmon, Ms and Ps, pending timers."""
    c = _sched_counters()
    return {
        "goroutines_created": c["goroutines_created"],
        "goroutines_alive": num_goroutine(),
        "parks": c["parks"],
        "steals": c["steals"],
        "handoffs": c["handoffs"],
        "retakes": c["retakes"],
        "threads_m": c["ms"],
        "threads_idle": c["ms_idle"],
        "procs": c["ps"],
        "procs_idle": c["ps_idle"],
        "timers": c["timers"],
        "global_runq": c["global_runq"],
    }


# ---------------------------------------------------------------- debug builds
#
# GOCORE_DEBUG=1 builds count what the runtime takes and gives back (the
# counters of csrc/gocore_config.h) and check that they balance where the
# runtime is quiescent: at the end of run() and at interpreter exit. A
# counter that does not balance is a runtime bug (a leaked G reference, a
# waiter left linked into a queue after its operation ended - the next
# operation on that queue would touch freed or reused memory), so the check
# throws naming the counter. Release builds compile all of it out except
# the DEBUG constant and _debug_counters(), which returns {}.

DEBUG = bool(GOCORE_DEBUG)

cdef extern from *:
    """
    static int64_t gc_dbg_store[GC_DBG_N];   /* the counters every module updates */
    /* Debug builds: G objects are counted as freed in a tp_dealloc wrapper
     * (installed at import, so release builds keep Cython's own dealloc). */
    static destructor gc_g_dealloc_orig;
    static int (*gc_g_counted)(PyObject *);
    static void gc_g_dealloc_hook(PyObject *o) {
        if (gc_g_counted(o)) gc_dbg_add(GC_DBG_G_OBJECTS, -1);
        gc_g_dealloc_orig(o);
    }
    static void gc_g_install_dealloc_hook(PyObject *type, int (*counted)(PyObject *)) {
        gc_g_counted = counted;
        gc_g_dealloc_orig = ((PyTypeObject *)type)->tp_dealloc;
        ((PyTypeObject *)type)->tp_dealloc = gc_g_dealloc_hook;
    }
    """
    int64_t gc_dbg_store[]
    void gc_g_install_dealloc_hook(object type, int (*counted)(PyObject *) noexcept)

cdef int64_t *dbg_counters() noexcept nogil:
    """The debug counters, for the other compiled modules (they point their
    gc_dbg_ctr here at import)."""
    return gc_dbg_store

cdef int g_counted(PyObject *o) noexcept:
    """tp_dealloc hook: was o counted in GC_DBG_G_OBJECTS (a goroutine, not
    a plain thread's THREAD G)? Reads a C field only: o's refcount is 0."""
    return (<G>o).kind != G_THREAD and (<G>o).kind != G_AIO    # aio hook: aio Gs are not goroutines

if GOCORE_DEBUG:
    gc_dbg_ctr = gc_dbg_store
    gc_g_install_dealloc_hook(G, g_counted)


cdef Py_ssize_t allgs_len() noexcept:
    cdef Py_ssize_t n = 0
    cdef PyObject *p
    gc_mutex_lock(&allglock)
    p = allgs_head
    while p != NULL:
        n += 1
        p = (<G>p).allnext
    gc_mutex_unlock(&allglock)
    return n


def _debug_counters():
    """Debug builds: the balance counters and what they are checked against
    (a racy snapshot). Release builds: {}."""
    if not GOCORE_DEBUG:
        return {}
    return {
        "g_objects": ld_acq_i64(&gc_dbg_store[GC_DBG_G_OBJECTS]),
        "chan_waiters": ld_acq_i64(&gc_dbg_store[GC_DBG_CHAN_WAITERS]),
        "sync_waiters": ld_acq_i64(&gc_dbg_store[GC_DBG_SYNC_WAITERS]),
        "timer_refs": ld_acq_i64(&gc_dbg_store[GC_DBG_TIMER_REFS]),
        "goroutines": ld_acq_i64(&sched.ngoroutines),
        "allgs": allgs_len(),
        "threads_parked": ld_acq_i32(&nthreadparked),
        "timers": ld_acq_i32(&timers.len),
        "running": ld_acq_i32(&sched.running),
    }


cdef str debug_imbalance():
    """Requires GIL. '' if the counters balance, else what does not."""
    cdef int32_t i, pyobj_timers
    cdef bint stopped
    c = _debug_counters()
    if c["goroutines"] != c["allgs"]:
        return (f"goroutines = {c['goroutines']} (live goroutines) but allgs lists "
                f"{c['allgs']}: a G was counted without being listed, or the reverse")
    stopped = not c["running"]
    if not stopped:
        return ""          # a background runtime runs: Gs, waiters and timers come and go
    if c["allgs"] == 0 and c["threads_parked"] == 0:
        # no goroutine and no plain thread waits: every waiter is unlinked
        if c["chan_waiters"] != 0:
            return (f"chan_waiters = {c['chan_waiters']} channel waiters (sudogs) still "
                    f"linked with no goroutine or thread waiting: a waiter outlived its "
                    f"operation in a channel's queue")
        if c["sync_waiters"] != 0:
            return (f"sync_waiters = {c['sync_waiters']} sync waiters still linked with "
                    f"no goroutine or thread waiting: a waiter outlived its operation "
                    f"in a Mutex/RWMutex/WaitGroup/Once/Semaphore queue")
    orphans = ld_acq_i64(&norphans)
    if c["g_objects"] != c["allgs"] + orphans:
        return (f"g_objects = {c['g_objects']} goroutine G objects alive, expected "
                f"{c['allgs']} (the goroutines still listed in allgs) + {orphans} orphaned "
                f"sync goroutines still running: a reference to a G leaked (or was dropped twice)")
    timer_lock()
    pyobj_timers = 0
    for i in range(timers.len):
        if timers.heap[i].kind == TK_PYOBJ:
            pyobj_timers += 1
    stopped = not ld_acq_i32(&sched.running)
    timer_unlock()
    if stopped and c["timer_refs"] != pyobj_timers:
        return (f"timer_refs = {c['timer_refs']} references held for queued "
                f"Timer/Ticker objects, but the heap holds {pyobj_timers}")
    if stopped:
        if sched.gq.size != 0:
            return f"global run queue holds {sched.gq.size} Gs with the runtime stopped"
        for i in range(sched.nprocs):
            if not runq_empty(&sched.allp[i]):
                return f"P {i}'s run queue is not empty with the runtime stopped"
    return ""


class DebugCheckError(BaseException):
    """Debug builds: the runtime's counters do not balance at the end of
    run() (a runtime bug). A BaseException, so that `except Exception` in
    the program cannot hide it."""


cdef int debug_check(str where, bint fatal) except -1:
    """Requires GIL. If the debug counters do not balance, raise
    DebugCheckError (the end of run(): the test that caused it fails) or,
    if fatal, throw (interpreter exit: nothing else would be noticed). A G
    that just finished on another M may still be on its way out: look again
    for up to a second before calling it a leak."""
    cdef int64_t deadline = nanotime() + 1000000000
    while True:
        msg = debug_imbalance()
        if not msg:
            return 0
        if nanotime() > deadline:
            break
        with nogil:
            futex_sleep_us(2000)
    msg = f"debug check at {where}: {msg}"
    if fatal:
        gc_throw(msg.encode())
    raise DebugCheckError(msg)


def _debug_check(where="a test"):
    """Debug builds: check the counters now (raises DebugCheckError); a
    no-op in release builds."""
    if GOCORE_DEBUG:
        debug_check(where, 0)


def _debug_exit_check():
    debug_check("interpreter exit", 1)

if GOCORE_DEBUG:
    import atexit
    atexit.register(_debug_exit_check)


# ---------------------------------------------------------------- gocore.aio hooks

def _aio_pending_add(int32_t delta):
    """gocore.aio: an asyncio call starts (+1) or has woken its caller (-1).
    Returns the new count (0 reads it)."""
    return fetch_add_i32(&aio_pending, delta) + delta


def _aio_set_thread(int64_t ident):
    """gocore.aio: its loop thread's ident (0 when it stops)."""
    st_rel_i64(&aio_thread, ident)


def _on_async_g():
    """Inside a lightweight goroutine? (blocking_* calls refuse to run there.)"""
    return on_async_g()


# ---------------------------------------------------------------- the network poller

include "_netpoll.pxi"
include "_aiowait.pxi"        # aio hook: asyncio tasks wait in gocore operations
