# gocore/_sync.pxd - Go's sync package: WaitGroup, Mutex, RWMutex, Once,
# Semaphore, all on one wait-queue primitive (Go's sema.go).
#
# semaq: a FIFO of swaiter records under q.lock (a gc_mutex): the wait
# queue of csrc/gocore_waitq.h, shared with channels, whose comment states
# the protocol (the lock, `linked`, claiming with cas(*claim, 0, 1), zombie
# records, the claimer owning a record until goready). Here besides:
#   * the record is embedded in the awaitable (_SyncOp, kept alive by the
#     waiting coroutine's frame and by g.waiting) or lives on a parked
#     thread's C stack (blocking_* forms);
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
from gocore._includes.futex cimport gc_mutex
from gocore._includes.waitq cimport gc_waitlink, gc_waitq

cdef struct swaiter:
    gc_waitlink link      # first: a swaiter * is a gc_waitlink * (link.g, link.claim, link.linked)
    int64_t n             # Semaphore: permits wanted; RWMutex: 1 writer, 0 reader
    int64_t t0            # nanotime() of the first enqueue (Mutex starvation)
    int32_t granted       # written by the claimer before goready

cdef struct semaq:
    gc_mutex lock
    gc_waitq wq           # under lock


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
