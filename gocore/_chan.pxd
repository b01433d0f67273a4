# gocore/_chan.pxd - channels (Go's hchan) and their waiter records (sudog).
#
# Invariants, all under c.lock (a gc_mutex):
#   * at most one of recvq and sendq is non-empty, except for waiters whose
#     G another case of a select already won (those are skipped and unlinked
#     by whoever meets them; their owner unlinks the rest after it wakes);
#   * buf holds qcount values at recvx, recvx+1, ... (mod dataqsiz); the
#     other slots hold None. The buffer list owns its values;
#   * if qcount < dataqsiz then sendq has no live waiter, and if qcount > 0
#     then recvq has none (a value never waits beside a waiting receiver);
#   * closed only goes 0 -> 1; after it both queues stay empty.
# sudog: a waiter record; its first member is the shared wait-queue link
# (csrc/gocore_waitq.h: link.g, link.claim, link.linked, and the protocol
# for zombies and claiming). A sudog is linked into at most one queue.
# sudog.elem: for a sender, one owned reference to the value until a
# receiver moves it out; for a receiver, NULL until a sender (or the buffer)
# moves one owned reference in. link.g is borrowed: a parked G is kept
# alive by its parked state (see _sched.pxd) until goready.
#
# Lock order: the locks of several channels (select) in increasing address
# order, each once; then sched.lock. A channel lock is never held while
# waiting for the GIL, releasing a reference or allocating (the values
# moved under it are only relinked), so it is never held across a blocking
# operation except the park itself, which the M loop ends with unlockf.

from libc.stdint cimport uint32_t, int8_t, int32_t, int64_t
from cpython.object cimport PyObject
from gocore._includes.futex cimport gc_mutex
from gocore._includes.waitq cimport gc_waitlink, gc_waitq
from gocore._sched cimport G, thrown_exception

cdef struct sudog:
    gc_waitlink link      # first: a sudog * is a gc_waitlink *
    PyObject *elem        # see above
    void *c               # the Chan (borrowed: the operation holds a reference)
    int32_t case_index
    int8_t success        # 1: value exchanged; 0: woken by close
    int8_t fired          # 1: this waiter was the one that woke g
    # (flags in bytes: with the 40-byte link a sudog stays 64 bytes)

cdef class Chan:
    cdef gc_mutex lock
    cdef readonly Py_ssize_t dataqsiz      # capacity
    cdef Py_ssize_t qcount                 # values in buf
    cdef Py_ssize_t sendx, recvx
    cdef list buf
    cdef gc_waitq recvq
    cdef gc_waitq sendq
    cdef int32_t closed
    cdef bint is_nil
    # under lock: the most values the buffer held since track_peak(), or
    # -1 while not tracking (the buffered send path then pays one compare)
    cdef Py_ssize_t peak

cdef inline object close_then_throw(object aw, object typ, object val, object tb):
    """An awaitable's throw() (_chan, _sync, _time): coro.throw() while the
    coroutine is suspended on aw acts as aw.close() (issue 14 item 17: the
    goroutine ends), then the exception goes on into the coroutine. (Inline
    here: compiled into each module, no C-API export.)"""
    aw.close()
    raise thrown_exception(typ, val, tb)
