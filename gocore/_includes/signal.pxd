# Extern declarations for csrc/gocore_signal.h (signal blocking and chaining).
from libc.stdint cimport int32_t
from gocore._includes.futex cimport gc_note

cdef extern from "gocore_signal.h" nogil:
    void gc_block_signals()
    void gc_sigchain_begin(int32_t *flag, gc_note *m0note)
    int gc_sigchain_add(int sig)
    void gc_sigchain_end()
