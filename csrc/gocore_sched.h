/* gocore_sched.h - the C structs of the scheduler: M (an OS thread) and the
 * global `sched`. P and the run queues are in gocore_runq.h, signal
 * chaining in gocore_signal.h. Their invariants and the lock order are
 * written in gocore/_sched.pxd.
 *
 * Declarations only: the state itself (the sched instance, per-thread M
 * and G) is defined in gocore_schedstate.h, which the _sched extension
 * alone includes.
 */
#ifndef GOCORE_SCHED_H
#define GOCORE_SCHED_H

#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "gocore_atomic.h"
#include "gocore_futex.h"
#include "gocore_runq.h"

typedef struct gc_m {
    /* owner M only */
    int32_t id;
    int32_t is_m0;          /* the thread inside run(); handles SIGINT */
    int32_t spinning;       /* counted in sched.nmspinning */
    uint32_t fastrand;
    gc_p *p;                /* the P it holds, or NULL */
    void *curg;             /* borrowed: the G running on this M */
    int64_t gen;            /* sched.gen when started; an M of an older run() exits */
    int64_t nparks;         /* statistics, owner only (read racily): Gs parked on this M */
    int64_t nunparks;       /* statistics: goready calls made on this M; written by the owner only, relaxed atomics (metrics() reads it) */
    /* set by the M that wakes this one, read by it after note_sleep returns */
    gc_p *nextp;
    gc_note park;
    /* under sched.lock */
    void *tstate;           /* its PyThreadState while it is in the runtime, else NULL:
                             * sysmon reads tstate->state (free-threaded builds) to
                             * tell an M blocked outside Python from one running it */
    struct gc_m *schedlink; /* next in sched.midle */
    int32_t in_midle;
    int32_t exited;         /* left its loop; never touches the runtime again */
    int32_t uncounted;      /* no longer in sched.mcount: its sync G outlived its run()
                             * (teardown orphaned it) or the process forked; mexit
                             * must not count it out again */
    /* atomic: the run() this M served is over (Go has no analogue: a goroutine
     * cannot outlive main there). GOEXIT_CLOSING: teardown woke its parked sync G
     * with GoroutineExit; a second park raises it again at once (as a closing
     * coroutine may not wait either) and tells teardown to stop waiting.
     * GOEXIT_ORPHANED: run() has returned; every gocore call of its G raises
     * GoroutineExit and what the G raises goes to sys.unraisablehook. Written
     * by teardown (and by the M itself, CLOSING -> IGNORED); read by the M. */
    int32_t goexit;
    struct gc_m *alllink;   /* next in sched.allm (never removed while the runtime lives) */
} gc_m;

/* ---- P ownership while a G runs (free-threaded builds).
 *
 * An M touches its P's owner-side state (the run queue ring, runnext,
 * schedtick) from the scheduler loop and, while a G runs, from go(),
 * goready() and a sync G's blocking park. On GIL builds sysmon retakes a P
 * only while holding the GIL, which proves the stuck M is not inside one of
 * those; free-threaded builds have no such proof, so the P carries an owner
 * word, (uintptr_t)m | state, changed only by atomic store/CAS:
 *   POWN_SCHED  m runs scheduler code; nobody else may take the P.
 *   POWN_ING    m runs a G and is not touching the P: sysmon may CAS the
 *               word to 0 and hand the P to another M (Go's retake).
 *   POWN_USING  m's G is inside pown_acquire/pown_release, using the P.
 * Transitions: acquirep stores m|SCHED; before running a G m stores m|ING;
 * pown_acquire CASes m|ING -> m|USING (or finds m|SCHED: already its own);
 * pown_release stores m|ING back; after the G, pown_leave_g CASes m|ING ->
 * m|SCHED. A failed CAS means sysmon took the P: the M drops its pointer
 * (only the M itself writes mp->p) and goes on without one. Because the
 * word names the M, a stale m|ING can never be mistaken for another M's. */
enum { POWN_SCHED = 0, POWN_ING = 1, POWN_USING = 2 };
#define POWN(mp, st) ((void *)((uintptr_t)(mp) | (uintptr_t)(st)))

#ifdef Py_GIL_DISABLED
static inline void pown_set(gc_p *pp, gc_m *mp, int st) {
    st_rel_ptr(&pp->owner, POWN(mp, st));
}

/* Before running a G. */
static inline void pown_enter_g(gc_m *mp) {
    if (mp->p != NULL) st_rel_ptr(&mp->p->owner, POWN(mp, POWN_ING));
}

/* After the G returned control: 0 if sysmon took the P meanwhile. */
static inline int pown_leave_g(gc_m *mp) {
    gc_p *pp = mp->p;
    if (pp == NULL || cas_ptr(&pp->owner, POWN(mp, POWN_ING), POWN(mp, POWN_SCHED)))
        return 1;
    mp->p = NULL;
    return 0;
}

/* The calling M's P, pinned against sysmon until pown_release; NULL if it
 * has none (or it was just retaken: use the global queue). */
static inline gc_p *pown_acquire(gc_m *mp) {
    gc_p *pp = mp->p;
    if (pp == NULL) return NULL;
    void *v = ld_acq_ptr(&pp->owner);
    if (v == POWN(mp, POWN_SCHED)) return pp;
    if (v == POWN(mp, POWN_ING) && cas_ptr(&pp->owner, v, POWN(mp, POWN_USING))) return pp;
    return NULL;
}

static inline void pown_release(gc_m *mp, gc_p *pp) {
    if (ld_rlx_ptr(&pp->owner) == POWN(mp, POWN_USING))
        st_rel_ptr(&pp->owner, POWN(mp, POWN_ING));
}

/* sysmon: take pp from an M inside a G; 1 if it is ours to hand on. */
static inline int pown_retake(gc_p *pp) {
    void *v = ld_acq_ptr(&pp->owner);
    if (((uintptr_t)v & 3) != POWN_ING) return 0;
    return cas_ptr(&pp->owner, v, NULL);
}
#else
static inline void pown_set(gc_p *pp, gc_m *mp, int st) { (void)pp; (void)mp; (void)st; }
static inline void pown_enter_g(gc_m *mp) { (void)mp; }
static inline int pown_leave_g(gc_m *mp) { (void)mp; return 1; }
static inline gc_p *pown_acquire(gc_m *mp) { return mp->p; }
static inline void pown_release(gc_m *mp, gc_p *pp) { (void)mp; (void)pp; }
static inline int pown_retake(gc_p *pp) { (void)pp; return 0; }
#endif

/* mp->goexit (see gc_m and _sched.pyx "sync goroutines that outlive run()");
 * GOEXIT_EXITING: its G's function is over and it is on its way out. */
enum { GOEXIT_NONE = 0, GOEXIT_CLOSING = 1, GOEXIT_IGNORED = 2, GOEXIT_ORPHANED = 3,
       GOEXIT_EXITING = 4 };

typedef struct {
    gc_mutex lock;          /* guards the fields marked "under lock" and the global queue */
    /* under lock */
    gc_gqueue gq;           /* global run queue */
    gc_m *midle;            /* idle Ms, parked on their note */
    int32_t nmidle;
    gc_p *pidle;            /* idle Ps */
    int32_t mcount;         /* Ms alive (threads in their loop) */
    int32_t maxmcount;      /* bound on mcount */
    gc_m *allm;
    int64_t gen;            /* incremented by every runtime start */
    /* atomic */
    int32_t npidle;         /* len(pidle): read without the lock by wakep */
    int32_t nmspinning;     /* Ms looking for work without having found any */
    int32_t nmblocked;      /* Ms parked inside a blocking_* call of a sync G */
    int32_t running;        /* the runtime is started */
    int32_t stopping;       /* run() is tearing down: Ms leave their loops */
    int32_t sigpending;     /* a Python-handled signal came during run(): M0 runs the handlers */
    int64_t ngoroutines;    /* live goroutines */
    int64_t goidgen;
    int32_t nprocs;         /* number of Ps (gomaxprocs of the running runtime) */
    gc_p *allp;             /* array of nprocs Ps */
    gc_m *m0;               /* the M inside run(), or NULL */
    gc_m *timer_m;          /* under lock: the idle M sleeping until the next timer, or NULL */
    /* sysmon */
    gc_note sysmon_note;    /* sysmon sleeps here while every P is idle */
    int32_t sysmon_wait;    /* atomic: 1 while sysmon sleeps on sysmon_note */
    int32_t sysmon_running; /* under lock: a sysmon thread exists for this gen */
    int64_t nretakes;       /* statistics: Ps retaken from Ms stuck in one G */
    int64_t nhandoffs;      /* statistics: Ps handed off by blocking calls */
    /* statistics (relaxed atomics) */
    int64_t nsteals;
    int64_t nparks;
    int64_t nunparks;       /* goready calls from threads without an M (an M counts its own); relaxed atomic */
} gc_sched;

/* Free-threaded builds: is the thread state `ts` detached, i.e. is its
 * thread outside Python (a blocking call, a C wait)? 3.13t keeps this in
 * the public PyThreadState.state (0 detached, 1 attached, 2 suspended).
 * GIL builds answer 0: there sysmon asks the GIL instead. */
#ifdef Py_GIL_DISABLED
static inline int gc_tstate_detached(void *ts) {
    return __atomic_load_n(&((PyThreadState *)ts)->state, __ATOMIC_ACQUIRE) == 0;
}
#else
static inline int gc_tstate_detached(void *ts) { (void)ts; return 0; }
#endif

static inline uint32_t gc_fastrand(uint32_t *state) {
    /* xorshift32: cheap randomness for victim and select order */
    uint32_t x = *state;
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    *state = x ? x : 0x9e3779b9u;
    return x;
}

/* Sleep on an M's note until woken (1), poked or interrupted by a signal
 * (2; only M0 takes signals: the other Ms block them) or deadline_ns passes
 * (0; deadline < 0: none). nogil. */
static inline uint32_t note_sleep_deadline(gc_note *n, int64_t deadline_ns) {
    uint32_t k;
    while ((k = ld_acq_u32(&n->key)) == 0) {
        int64_t wait = -1;
        if (deadline_ns >= 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            wait = deadline_ns - ((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
            if (wait <= 0) return 0;
        }
        if (futex_wait(&n->key, 0, wait) == EINTR && ld_acq_u32(&n->key) == 0)
            return 2;
    }
    return k;
}

/* What deadlock detection needs of the main goroutine, readable without the
 * GIL: pointers into its G object (kept alive by run() or by the main
 * thread's thread-local). Under sched.lock. */
typedef struct {
    void *g;
    int32_t kind;
    int32_t *status;
    uint32_t *claim;
    int32_t *wake_flags;
    gc_note *note;
} gc_gref;

/* GC_GIL_BUILD: 1 on CPython builds with the GIL, 0 on free-threaded ones. */
#ifdef Py_GIL_DISABLED
#define GC_GIL_BUILD 0
#else
#define GC_GIL_BUILD 1
#endif

#endif
