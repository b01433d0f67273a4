# Extern declarations for csrc/gocore_aiowait.h (asyncio waiters' eventfd).

cdef extern from "gocore_aiowait.h" nogil:
    int gc_aio_eventfd()
    void gc_aio_kick(int fd)
    void gc_aio_clear(int fd)
    void gc_aio_close(int fd)
    void gc_aio_yield()
