# Extern declarations for csrc/gocore_config.h.
from libc.stdint cimport int64_t

cdef extern from "gocore_config.h" nogil:
    int GOCORE_DEBUG
    int GOCORE_RUNQ_CAP
    void gc_throw(const char *msg)
    void gc_assert(bint cond)
    void gc_assert_msg(bint cond, const char *what)   # what: the invariant, for the message
    # debug counters (see the header); gc_dbg_add is a no-op in release builds
    enum:
        GC_DBG_G_OBJECTS
        GC_DBG_CHAN_WAITERS
        GC_DBG_SYNC_WAITERS
        GC_DBG_TIMER_REFS
        GC_DBG_N
    int64_t *gc_dbg_ctr
    void gc_dbg_add(int which, int64_t d)
