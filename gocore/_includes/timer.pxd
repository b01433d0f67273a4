# Extern declarations for csrc/gocore_timer.h.
from libc.stdint cimport int32_t, int64_t

cdef extern from "gocore_timer.h" nogil:
    int64_t GC_NEVER
    enum:
        TK_READY_G
        TK_PYOBJ
    ctypedef struct gc_timer:
        int64_t when
        int64_t period
        int32_t heap_index
        int32_t kind
        void *arg
    ctypedef struct gc_timers:
        gc_timer **heap
        int32_t len
        int64_t next_when
    int timers_add(gc_timers *ts, gc_timer *t)
    int timers_del(gc_timers *ts, gc_timer *t)
    gc_timer *timers_pop_due(gc_timers *ts, int64_t now)
