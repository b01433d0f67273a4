# Extern declarations for csrc/gocore_sched.h: M and the global sched.
from libc.stdint cimport uint32_t, int32_t, int64_t
from gocore._includes.futex cimport gc_mutex, gc_note
from gocore._includes.runq cimport gc_p, gc_gqueue

cdef extern from "gocore_sched.h" nogil:
    ctypedef struct gc_m:
        int32_t id
        int32_t is_m0
        int32_t spinning
        uint32_t fastrand
        gc_p *p
        void *curg
        int64_t gen
        int64_t nparks
        int64_t nunparks
        gc_p *nextp
        gc_note park
        void *tstate
        gc_m *schedlink
        int32_t in_midle
        int32_t exited
        int32_t uncounted
        int32_t goexit
        gc_m *alllink
    ctypedef struct gc_sched:
        gc_mutex lock
        gc_gqueue gq
        gc_m *midle
        int32_t nmidle
        gc_p *pidle
        int32_t mcount
        int32_t maxmcount
        gc_m *allm
        int64_t gen
        int32_t npidle
        int32_t nmspinning
        int32_t nmblocked
        int32_t running
        int32_t stopping
        int32_t sigpending
        int64_t ngoroutines
        int64_t goidgen
        int32_t nprocs
        gc_p *allp
        gc_m *m0
        gc_m *timer_m
        gc_note sysmon_note
        int32_t sysmon_wait
        int32_t sysmon_running
        int64_t nretakes
        int64_t nhandoffs
        int64_t nsteals
        int64_t nparks
        int64_t nunparks
    enum:
        GOEXIT_NONE
        GOEXIT_CLOSING
        GOEXIT_IGNORED
        GOEXIT_ORPHANED
        GOEXIT_EXITING
    uint32_t gc_fastrand(uint32_t *state)
    int gc_tstate_detached(void *ts)

    uint32_t note_sleep_deadline(gc_note *n, int64_t deadline_ns)
    ctypedef struct gc_gref:
        void *g
        int32_t kind
        int32_t *status
        uint32_t *claim
        int32_t *wake_flags
        gc_note *note

    # P ownership while a G runs (free-threaded builds; no-ops with the GIL)
    enum:
        POWN_SCHED
        POWN_ING
        POWN_USING
    void pown_set(gc_p *pp, gc_m *mp, int st)
    void pown_enter_g(gc_m *mp)
    bint pown_leave_g(gc_m *mp)
    gc_p *pown_acquire(gc_m *mp)
    void pown_release(gc_m *mp, gc_p *pp)
    bint pown_retake(gc_p *pp)

    int GC_GIL_BUILD            # 1 with the GIL, 0 on free-threaded builds
