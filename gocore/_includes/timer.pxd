# Extern declarations for csrc/gocore_timer.h.
from libc.stdint cimport int32_t, int64_t, uint32_t

cdef extern from "gocore_timer.h" nogil:
    int64_t GC_NEVER
    int32_t GC_TIMERS_SWEEP_MIN
    enum:
        TK_READY_G
        TK_PYOBJ
    ctypedef struct gc_timer:
        int64_t when
        int64_t period
        int32_t heap_index
        int32_t kind
        void *arg
        uint32_t seq
    ctypedef struct gc_timers:
        gc_timer **heap
        int32_t len
        int64_t next_when
        int32_t sweep_at
    int timers_add(gc_timers *ts, gc_timer *t)
    int timers_del(gc_timers *ts, gc_timer *t)
    int timers_modify(gc_timers *ts, gc_timer *t, int64_t when)
    gc_timer *timers_pop_due(gc_timers *ts, int64_t now)
    bint timers_sweep_due(gc_timers *ts)

cdef extern from "gocore_timer.h":
    # with the GIL: the predicate reads reference counts
    int32_t timers_sweep(gc_timers *ts, int (*dead)(gc_timer *t) noexcept, gc_timer **out) noexcept
