# gocore/_sync.pxd - Go's sync package: WaitGroup, Mutex, RWMutex, Once,
# Semaphore, all on one wait-queue primitive (Go's sema.go).
#
# semaq: a FIFO queue of swaiter records under q.lock (a gc_mutex).
#   * a swaiter is linked into at most one semaq; `linked` says whether it is
#     (read and written under q.lock only);
#   * swaiter.g is borrowed: a parked G is kept alive by its parked state
#     (see _sched.pxd) until goready; the record itself is embedded in the
#     awaitable (_SyncOp, kept alive by the waiting coroutine's frame and by
#     g.waiting) or lives on a parked thread's C stack (blocking_* forms);
#   * a waker removes a record from the queue and then wins its G with
#     cas(*claim, 0, 1) (acq_rel: the winner's later writes to the record
#     and the G happen-after the waiter's enqueue). A record whose G was
#     claimed by someone else (deadlock detection, teardown) is a zombie:
#     whoever meets it unlinks it and skips it; its owner finds linked == 0
#     and has nothing to undo;
#   * after a successful claim the waker owns the record until goready:
#     it may chain records through `next` and must read them before
#     goready (a thread's record dies when its thread returns);
#   * `granted` is set by the waker before goready when it has handed the
#     resource over directly (the woken G owns the lock / the permits);
#     otherwise (Mutex in normal mode only) the woken G must compete again.
#
# Each primitive keeps the state its fast paths touch in one word updated
# by CAS, and everything that involves waiters under q.lock; the per-class
# comments in _sync.pyx say which.
#
# Lock order: q.lock is a leaf: nothing else is taken while it is held
# (goready, which takes sched.lock, is called only after q.lock is
# released). No q.lock holder waits for the GIL, releases a reference,
# allocates a GC-tracked object or raises; the park's unlockf releases it
# after the G has stopped (an ASYNC G) or before the thread sleeps.

from libc.stdint cimport uint32_t, int32_t, int64_t
from cpython.object cimport PyObject
from gocore._includes.futex cimport gc_mutex

cdef struct swaiter:
    PyObject *g           # borrowed G
    uint32_t *claim       # &g.park_claim: whoever CASes it 0 -> 1 wakes g
    swaiter *next
    swaiter *prev
    int64_t n             # Semaphore: permits wanted; RWMutex: 1 writer, 0 reader
    int64_t t0            # nanotime() of the first enqueue (Mutex starvation)
    int32_t linked        # under q.lock
    int32_t granted       # written by the claimer before goready

cdef struct semaq:
    gc_mutex lock
    swaiter *first        # under lock
    swaiter *last         # under lock


cdef class _SyncBase:
    cdef semaq q


cdef class Mutex(_SyncBase):
    # LOCKED | WOKEN | STARVING | WAITERS; atomic CAS; see _sync.pyx
    cdef uint32_t state


cdef class RWMutex(_SyncBase):
    cdef int64_t readers      # under q.lock: readers holding the lock
    cdef int32_t writer       # under q.lock: 1 while a writer holds it


cdef class WaitGroup(_SyncBase):
    # counter << 32 | waiters: counter by CAS from add(); waiters under q.lock (by CAS)
    cdef int64_t state


cdef class Once(_SyncBase):
    cdef uint32_t is_done     # atomic: 0 -> 1 once fn returned (or raised); st_rel / ld_acq
    cdef int32_t running      # under q.lock: 1 while the first caller runs fn


cdef class Semaphore(_SyncBase):
    cdef readonly int64_t size    # set at creation
    cdef int64_t cur              # under q.lock: permits held
