# gocore/_sched.pxd - the scheduler's objects and their invariants
# (the role Go's runtime2.go plays).
#
# G  a goroutine. ASYNC: a coroutine resumed with PyIter_Send by whichever M
#    runs it; it parks by yielding PARK_SENTINEL to the M loop. SYNC: a plain
#    function run on an M's own OS thread; it parks that thread on g.note.
#    THREAD: stands for a plain OS thread (or the main thread without run())
#    inside a blocking_* call; it too parks on g.note.
# P  a logical processor (csrc/gocore_runq.h): local ring of 256 G slots,
#    runnext, status. gomaxprocs Ps exist while the runtime runs.
# M  an OS thread (csrc/gocore_sched.h). It holds a P to run Gs; it keeps the
#    GIL while its P has work and releases it (nogil) to find work, steal,
#    or park on its note.
#
# G status and who owns the G's "queue reference" (one strong reference):
#   G_RUNNABLE  on exactly one run queue (a P's runnext or ring, or the global
#               queue), which owns the reference.
#   G_RUNNING   the M running it owns the reference; never on a run queue.
#   G_WAITING   parked; the reference is owned by the parked state and passes
#               to whoever wins g.park_claim and calls goready().
#   G_DEAD      finished; the reference has been dropped.
# Besides, sched's allgs list owns one reference to every live G.
#
# Park/ready (Go's gopark/goready), the protocol channels and timers use:
#   1. The G sets park_claim = 0 and registers waiter records while holding
#      the lock of what it waits on (a channel's lock).
#   2. It stops running: an ASYNC G yields PARK_SENTINEL; the M loop then
#      stores status = G_WAITING and only then calls g.unlockf(g.unlockarg),
#      releasing that lock. A THREAD/SYNC G calls unlockf itself and sleeps on
#      g.note (whose wake-up cannot be lost: note_wakeup may come first).
#   3. A waker finds a waiter under the same lock, wins the G with
#      cas(park_claim, 0, 1) (a select G has several waiters: exactly one
#      waker wins, the others skip that waiter), writes the result into the
#      waiter record and calls goready(g) - exactly one goready per gopark.
#   Hence a G is never readied before it has stopped running, and never sits
#   on a run queue while it runs. One exception, a token rather than a G to
#   run: a started SYNC G whose thread woke up and found no idle P queues
#   itself with lockedm set while its thread parks (exitsyscall); the M that
#   takes it from a run queue hands over its P instead of running it.
#
# Lock order (take left before right; never the reverse):
#   channel locks (in address order) -> sched.lock -> allglock
# No gc_mutex holder waits for the GIL, releases a reference or allocates a
# GC-tracked object while holding it.

from libc.stdint cimport uint8_t, uint32_t, int32_t, int64_t
from cpython.object cimport PyObject
from gocore._includes.futex cimport gc_note
from gocore._includes.timer cimport gc_timer

cdef enum GStatus:
    G_IDLE = 0
    G_RUNNABLE = 1
    G_RUNNING = 2
    G_WAITING = 3
    G_DEAD = 4

cdef enum GKind:
    G_ASYNC = 0
    G_SYNC = 1
    G_THREAD = 2
    G_AIO = 3       # an asyncio task's wait in a gocore operation (_aiowait.pxi)

# Why a G waits: the strings in WAIT_REASONS (in _sched.pyx) appear in
# dump_goroutines().
cdef enum WaitReason:
    W_NONE = 0
    W_CHAN_RECV
    W_CHAN_SEND
    W_SELECT
    W_SELECT_NO_CASES
    W_CHAN_NIL
    W_SLEEP
    W_MUTEX
    W_RWMUTEX_R
    W_RWMUTEX_W
    W_WAITGROUP
    W_ONCE
    W_SEMAPHORE
    W_SYNC_COND
    W_CHAN_NIL_SEND
    W_IO_READ
    W_IO_WRITE
    W_SYNCTEST_WAIT     # gocore.testing.wait(): until the rest of the bubble sleeps

# What woke a parked G (written by the claimer before goready).
cdef enum WakeFlag:
    WAKE_NORMAL = 0
    WAKE_DEADLOCK = 1
    WAKE_CLOSE = 2
    WAKE_RECHECK = 3    # the main thread's poll while plain threads run: retry the operation

cdef enum ParkMode:
    PARK_WAIT = 0       # wait for a goready
    PARK_YIELD = 1      # gosched: back on the global queue at once


cdef class G:
    # set at creation, then read-only
    # (fields ordered so that no padding is needed: the object stays within
    # 160 bytes, one pymalloc size class; 168 made spawning ~8% slower. The
    # creation site's 20 bytes were found by folding kwargs into args and
    # packing the small enums and flags into bytes: each byte is written
    # by one party at a time under the park protocol, never atomically.)
    cdef readonly int64_t goid
    cdef object fn              # the function it was started with (None for go(coro)); never replaced
    # fn's positional arguments (a tuple, or None); if has_kwargs, the
    # pair (positional tuple, kwargs dict). Read and dropped by the G alone.
    cdef object args
    cdef object coro            # ASYNC: the coroutine, created at the G's first run
    cdef unsigned long thread_ident   # SYNC: the worker thread running it (for dumps); 0 until it starts
    # SYNC, started, woken but no P was idle (Go's stoplockedm): its M parks
    # and the G sits on a run queue as a token for it. Whoever takes the
    # token from lockedm with xchg (the scheduler picking the G: it hands
    # its P to that M; or teardown: it wakes the M to unwind) owns the wake-up.
    cdef void *lockedm
    # atomic (any M): ld_acq_i32/st_rel_i32 and the like (gocore_atomic.h),
    # never a plain load or store once the G is shared
    cdef int32_t status         # GStatus
    cdef uint32_t park_claim    # 0 while parked and unclaimed; the waker CASes it to 1
    # written by the G itself before it parks (read by dump and teardown)
    cdef int32_t waitreason     # (st_rlx_i32: metrics() reads it with ld_rlx_i32, no lock)
    # the creation site (Go's gopc), set by go() before the G is published,
    # then read-only: the calling Python frame's code object (owned; never
    # the frame, which would keep its locals alive) and instruction byte
    # offset (-1: none); the line is computed only when a dump asks
    # (PyCode_Addr2Line). created_by: the creating goroutine's id, 0 for a
    # plain thread or none recorded.
    cdef int32_t created_lasti
    cdef int64_t waitsince_ns
    cdef void (*unlockf)(void *) noexcept nogil
    cdef void *unlockarg
    cdef object waiting         # owned: the operation parked on; its _cancel() unlinks its waiters
    cdef object created_code
    cdef int64_t created_by
    # written by the claimer, read by the G after it wakes
    cdef int32_t wake_flags
    # THREAD and SYNC kinds sleep here while parked
    cdef gc_note note
    # bytes (6, then 2 of padding): kind, is_main and has_kwargs are set at creation (is_main by
    # run() before the G is shared); parkmode is written by the G itself
    # before it parks; counted_blocked by the G before it parks and by its
    # single goready after
    cdef uint8_t kind           # GKind
    cdef readonly uint8_t is_main
    cdef uint8_t parkmode       # ParkMode
    cdef uint8_t counted_blocked    # its M is counted in sched.nmblocked until goready
    cdef uint8_t has_kwargs     # args is (positional, kwargs)
    cdef uint8_t deadlock_strikes   # consecutive WAKE_DEADLOCK wake-ups (main only; 0 or 1), written by the G after it wakes (check_wake)
    # under allglock: sched's list of live Gs (the list owns a reference)
    cdef PyObject *allnext
    cdef PyObject *allprev



cdef G getg()                       # the running G; a THREAD G for plain threads (Requires GIL)
cdef G getg_or_none()               # the running G, or None on a plain thread
cdef bint on_async_g() noexcept     # inside a lightweight goroutine? (Any thread.)
cdef void gopark_async(G gp, void (*unlockf)(void *) noexcept nogil, void *arg,
                       int32_t reason, object w) noexcept
cdef int gopark_thread(G gp, void (*unlockf)(void *) noexcept nogil, void *arg,
                       int32_t reason, object w, int64_t deadline_ns) except -1
cdef void goready(G gp) noexcept
# after a park (_sched_deadlock.pxi explains the WAKE_DEADLOCK -> retry -> suspect path)
cdef int check_wake(G gp) except -1        # 1: retry the operation
cdef int deadlock_suspect(G gp) except -1  # on a retry: 1 if waiting again means deadlock
cdef void runtime_ensure_started() except *
cdef int check_goexit() except -1          # GoroutineExit if the calling sync G outlived its run()
cdef int goroutine_closed_outside(PyObject *g) except -1   # an awaitable's close()/throw() (Requires GIL)
cdef object thrown_exception(object typ, object val, object tb)
cdef object park_sentinel()
cdef bint is_async_function(object fn, str who=*) except -1   # async def? TypeError for generator functions

# timers (the heap: _sched_timers.pxi; _time.pyx and _net.pyx build on these)
cdef int64_t runtime_nanotime() noexcept nogil       # the timers' clock (fake inside a synctest bubble)
cdef bint in_bubble() noexcept nogil                 # does a synctest bubble run?
cdef void timer_lock() noexcept                      # Requires GIL
cdef int timer_add_locked(gc_timer *t) noexcept nogil  # Caller holds timerlock
cdef bint timer_del_locked(gc_timer *t) noexcept nogil # Caller holds timerlock
cdef int timer_modify_locked(gc_timer *t, int64_t when) noexcept nogil  # Caller holds timerlock
cdef void timer_unlock() noexcept nogil
cdef void timer_unlock_cb(void *arg) noexcept nogil  # gopark unlockf
cdef void timer_sweep(int (*dead)(gc_timer *t) noexcept) noexcept  # Requires GIL

# asyncio tasks wait in gocore operations (gocore/_aiowait.pxi has
# the protocol). An awaitable outside a lightweight goroutine gets a G_AIO G
# (aio_waiter_g, before taking any lock: it allocates), links its waiters
# for it as for a goroutine, parks with aio_park (returns the future to
# yield) and, when its task is cancelled, takes the G back with
# aio_withdraw (1: nothing was exchanged).
cdef G aio_waiter_g()                       # None if no asyncio loop runs in this thread (Requires GIL)
cdef int aio_rearm(G gp) except -1          # a fresh future before parking again (no lock held)
cdef PyObject *aio_park(G gp, void (*unlockf)(void *) noexcept nogil, void *arg) noexcept
cdef int aio_withdraw(G gp) noexcept        # 1: won back, nothing exchanged; 0: a waker's results are visible
cdef void aio_unpark(G gp) noexcept         # the operation is done with gp's future

# debug builds (GOCORE_DEBUG): the counters of csrc/gocore_config.h
cdef int64_t *dbg_counters() noexcept nogil

# the network poller (_netpoll.pxi; csrc/gocore_netpoll.h): for _net.pyx
from libc.stdint cimport uintptr_t
from gocore._includes.netpoll cimport gc_pollfd

cdef struct np_waitrec:
    uintptr_t *slot
    void *g

cdef gc_pollfd *np_open(int fd) except NULL
cdef int np_park_async(G gp, gc_pollfd *pd, int mode, np_waitrec *rec, object op) except -1
cdef int np_after_park(G gp, gc_pollfd *pd, int mode) except -1
cdef void np_cancel(G gp, gc_pollfd *pd, int mode) noexcept
cdef int np_block_thread(G gp, gc_pollfd *pd, int mode, object what) except -1
cdef bint np_close(gc_pollfd *pd) noexcept
cdef void np_release(gc_pollfd *pd) noexcept
cdef uint32_t np_set_deadline(gc_pollfd *pd, int mode, int64_t when, int64_t now) noexcept nogil
cdef void np_wake_slot(gc_pollfd *pd, int mode) noexcept
cdef void np_deadline_fired(gc_pollfd *pd, int mode, uint32_t seq) noexcept
