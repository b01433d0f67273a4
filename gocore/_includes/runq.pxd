# Extern declarations for csrc/gocore_runq.h: P, its local ring, the global queue.
from libc.stdint cimport uint32_t, int32_t, int64_t
from gocore._includes.futex cimport gc_mutex

cdef extern from "gocore_runq.h" nogil:
    ctypedef struct gc_gqueue:
        uint32_t size
    enum:
        P_IDLE
        P_RUNNING
    ctypedef struct gc_p:
        int32_t id
        uint32_t schedtick
        uint32_t sysmon_tick
        int64_t sysmon_when
        int32_t stuck
        int32_t status
        gc_p *link
        void *m
        void *runnext
    uint32_t runq_len(gc_p *pp)
    bint runq_empty(gc_p *pp)
    int runq_put(gc_p *pp, void *gp, bint next, gc_mutex *schedlock, gc_gqueue *gq)
    void *runq_get(gc_p *pp)
    void *runq_steal(gc_p *pp, gc_p *victim, bint steal_runnext)
    int gqueue_put(gc_gqueue *q, void *gp)
    void *gqueue_get(gc_gqueue *q)
    void *globrunq_get(gc_p *pp, gc_gqueue *gq, uint32_t max, uint32_t nprocs)
