# Extern declarations for csrc/gocore_netpoll.h (the poller's C half).
from libc.stdint cimport uint32_t, int32_t, int64_t, uint64_t, uintptr_t
from gocore._includes.futex cimport gc_mutex

cdef extern from "gocore_netpoll.h" nogil:
    uintptr_t PD_NIL
    uintptr_t PD_READY
    uintptr_t PD_WAIT
    enum: GC_NETPOLL_MAXEV
    ctypedef struct gc_pollfd:
        uint32_t index
        uint32_t seq
        int32_t fd
        int32_t closing
        int32_t epgen
        uintptr_t rg
        uintptr_t wg
        int64_t rd
        int64_t wd
        gc_mutex lock
        uint32_t rseq
        uint32_t wseq
    ctypedef struct gc_netpoller:
        int32_t epfd
        int32_t evfd
        int32_t gen
        uint32_t wakesig
        gc_mutex pollmu
        int32_t blocker
        int32_t nwait
        int64_t lastpoll
        int64_t npolls
        int64_t nblocking
        int64_t nready
    gc_netpoller gc_np
    int64_t gc_pd_inuse
    gc_pollfd *pd_alloc(int fd)
    void pd_free(gc_pollfd *pd)
    uintptr_t *pd_slot(gc_pollfd *pd, int mode)
    void *pd_unblock(gc_pollfd *pd, int mode, int ioready)
    int pd_prepare_wait(gc_pollfd *pd, int mode)
    int pd_commit(uintptr_t *slot, void *g)
    int pd_unwait(gc_pollfd *pd, int mode)
    void pd_consume_ready(gc_pollfd *pd, int mode)
    bint pd_read_may_park(gc_pollfd *pd)
    int pd_evict(gc_pollfd *pd, int mode, void *g)
    int pd_check(gc_pollfd *pd, int mode)
    int netpoll_init()
    int pd_register(gc_pollfd *pd)
    void pd_unregister(gc_pollfd *pd)
    void netpoll_break()
    int netpoll_wait(int timeout_ms, void **gs)
    int netpoll_dispatch(uint64_t tag, uint32_t ev, void **gs, int ng)
    uint64_t pd_tag(gc_pollfd *pd)
    void netpoll_after_fork_child()
