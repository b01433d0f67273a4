# Extern declarations for csrc/gocore_futex.h (futex, gc_mutex, gc_note).
from libc.stdint cimport uint32_t, int64_t

cdef extern from "gocore_futex.h" nogil:
    int futex_wait(uint32_t *addr, uint32_t val, int64_t timeout_ns)
    void futex_wake(uint32_t *addr, int n)
    ctypedef struct gc_mutex:
        uint32_t key
    bint gc_mutex_trylock(gc_mutex *m)
    void gc_mutex_lock(gc_mutex *m)
    void gc_mutex_lock_slow(gc_mutex *m)
    void gc_mutex_unlock(gc_mutex *m)
    bint gc_mutex_held(gc_mutex *m)

    ctypedef struct gc_note:
        uint32_t key
    void note_clear(gc_note *n)
    void note_wakeup(gc_note *n)
    void note_poke(gc_note *n)
    void note_sleep(gc_note *n)
    int note_sleep_until(gc_note *n, int64_t deadline_ns, int64_t (*now)() noexcept nogil)
