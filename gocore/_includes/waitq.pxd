# Extern declarations for csrc/gocore_waitq.h: the intrusive FIFO of parked
# waiters shared by channels (sudog) and the sync primitives (swaiter).
# The protocol (locks, `linked`, zombies) is documented in the header.
from libc.stdint cimport uint32_t, int32_t, int64_t
from cpython.object cimport PyObject
from gocore._includes.futex cimport gc_mutex

cdef extern from "gocore_waitq.h" nogil:
    ctypedef struct gc_waitlink:
        gc_waitlink *next
        gc_waitlink *prev
        PyObject *g
        uint32_t *claim
        int32_t linked
    ctypedef struct gc_waitq:
        gc_waitlink *first
        gc_waitlink *last
    void gc_waitq_push(gc_waitq *q, gc_waitlink *w, bint front, gc_mutex *lock, int ctr)
    void gc_waitq_unlink(gc_waitq *q, gc_waitlink *w, gc_mutex *lock, int ctr)
    bint gc_waitq_take(gc_waitq *q, gc_waitlink *w, gc_mutex *lock, int ctr)
    gc_waitlink *gc_waitq_dequeue(gc_waitq *q, gc_mutex *lock, int ctr)
    gc_waitlink *gc_waitq_peek(gc_waitq *q, gc_mutex *lock, int ctr)
    int64_t gc_waitq_count(gc_waitq *q, PyObject *except_g)   # caller holds the lock
