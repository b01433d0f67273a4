# Extern declarations for csrc/gocore_clock.h.
from libc.stdint cimport int64_t

cdef extern from "gocore_clock.h" nogil:
    int64_t nanotime()
    int64_t nanotime_coarse()
    void gc_sleep_us(long us)
