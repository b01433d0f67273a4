# Extern declarations for csrc/gocore_config.h.
cdef extern from "gocore_config.h" nogil:
    int GOCORE_DEBUG
    int GOCORE_RUNQ_CAP
    void gc_throw(const char *msg)
    void gc_assert(bint cond)
