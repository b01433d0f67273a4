/* gocore_runq.h - run queues: a P's lock-free local ring with `runnext`,
 * and the global queue.
 *
 * Items are G objects (PyObject *) held as void *. A queue that holds a G
 * owns one reference to it; moving a G between queues moves that reference,
 * so nothing here touches reference counts and all of it is nogil.
 *
 * Local ring (Go's runq): single producer (the owner P), many consumers (the
 * owner and thieves).
 *   runqtail: written by the owner only, published with st_rel after the
 *             slot it covers has been written.
 *   runqhead: advanced by owner and thieves with CAS (acq_rel); a slot is
 *             taken by whoever moves head past it.
 *   slots:    written by the owner only at index tail, read by anyone at
 *             [head, tail); relaxed atomics, validated by the head CAS.
 *   runnext:  one G that runs before the ring (a G readied by the running G:
 *             keeps a ping-pong pair on one P). Owner puts with xchg; owner
 *             and thieves take with CAS to NULL.
 * Global queue: a growable ring under sched.lock.
 */
#ifndef GOCORE_RUNQ_H
#define GOCORE_RUNQ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gocore_atomic.h"
#include "gocore_config.h"
#include "gocore_futex.h"



/* Global run queue. Caller holds sched.lock for every operation. */
typedef struct {
    void **buf;
    uint32_t head;   /* index of the oldest G */
    uint32_t size;   /* number of Gs queued; also read racily (ld_rlx) as a hint */
    uint32_t cap;    /* power of two, or 0 before the first put */
} gc_gqueue;

static inline int gqueue_grow(gc_gqueue *q) {
    uint32_t ncap = q->cap ? q->cap * 2 : 1024;
    void **nbuf = (void **)malloc(sizeof(void *) * ncap);
    if (!nbuf) return -1;
    for (uint32_t i = 0; i < q->size; i++) nbuf[i] = q->buf[(q->head + i) & (q->cap - 1)];
    free(q->buf);
    q->buf = nbuf; q->head = 0; q->cap = ncap;
    return 0;
}

/* Caller holds sched.lock. Returns -1 only when memory is exhausted. */
static inline int gqueue_put(gc_gqueue *q, void *gp) {
    if (q->size == q->cap && gqueue_grow(q) < 0) return -1;
    q->buf[(q->head + q->size) & (q->cap - 1)] = gp;
    st_rlx_u32(&q->size, q->size + 1);
    return 0;
}

/* Caller holds sched.lock. */
static inline void *gqueue_get(gc_gqueue *q) {
    if (q->size == 0) return NULL;
    void *gp = q->buf[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    st_rlx_u32(&q->size, q->size - 1);
    return gp;
}

/* ---- P: a logical processor. */
enum { P_IDLE = 0, P_RUNNING = 1 };

typedef struct gc_p {
    /* owner only (the M that holds this P) */
    int32_t id;
    uint32_t schedtick;        /* scheduling rounds; written by the owner, read by sysmon (relaxed) */
    /* under sched.lock */
    int32_t status;            /* P_IDLE / P_RUNNING; read racily by sysmon */
    struct gc_p *link;         /* next in sched.pidle */
    void *m;                   /* the gc_m holding this P, NULL when idle */
    /* sysmon only */
    uint32_t sysmon_tick;      /* schedtick when sysmon last saw it change */
    int64_t sysmon_when;       /* nanotime() of that observation */
    /* set by sysmon, read by thieves (relaxed): the P's M has been inside one
     * G for a while with work queued behind it, so runnext may be stolen */
    int32_t stuck;
    /* atomic, free-threaded builds only: (uintptr_t)owner M | POWN_* state,
     * the protocol that lets sysmon take a P from an M stuck in one G; see
     * "P ownership" in gocore_sched.h. Unused (0) on GIL builds. */
    void *owner;
    /* thieves (atomic) */
    uint32_t runqhead;
    uint32_t runqtail;
    void *runnext;
    void *runq[GOCORE_RUNQ_CAP];
} gc_p;

static inline uint32_t runq_len(gc_p *pp) {
    uint32_t h = ld_acq_u32(&pp->runqhead), t = ld_acq_u32(&pp->runqtail);
    return t - h;
}

/* Any thread: a racy "has work" hint used by thieves and deadlock checks.
 * It never says empty while the P holds a G all along: reading "ring empty"
 * and then "runnext empty" is not enough, as between the two reads the
 * owner may put with next=1 (the old runnext moves to the ring) and take
 * the new runnext back. Re-reading the tail after runnext catches that
 * (the take's CAS on runnext, read here as NULL, is ordered after the
 * tail's store). tests/test_runq.py::test_runq_empty_never_wrong_under_a_concurrent_owner */
static inline int runq_empty(gc_p *pp) {
    for (;;) {
        uint32_t h = ld_acq_u32(&pp->runqhead);
        uint32_t t = ld_acq_u32(&pp->runqtail);
        void *next = ld_acq_ptr(&pp->runnext);
        if (ld_acq_u32(&pp->runqtail) == t) return h == t && next == NULL;
    }
}

/* Owner P only. Moves half the ring plus gp to the global queue when the
 * ring is full. Returns 0 if it did, 1 if the ring changed under it (retry). */
static inline int runq_put_slow(gc_p *pp, void *gp, uint32_t h, uint32_t t,
                                gc_mutex *schedlock, gc_gqueue *gq) {
    void *batch[GOCORE_RUNQ_CAP / 2 + 1];
    uint32_t n = (t - h) / 2;
    gc_assert(n == GOCORE_RUNQ_CAP / 2);
    for (uint32_t i = 0; i < n; i++)
        batch[i] = ld_rlx_ptr(&pp->runq[(h + i) % GOCORE_RUNQ_CAP]);
    if (!cas_u32(&pp->runqhead, h, h + n)) return 1;
    batch[n] = gp;
    gc_mutex_lock(schedlock);
    for (uint32_t i = 0; i <= n; i++)
        if (gqueue_put(gq, batch[i]) < 0) gc_throw("out of memory growing the global run queue");
    gc_mutex_unlock(schedlock);
    return 0;
}

/* Owner P only. Puts gp on the ring's tail, or in runnext if next (the old
 * runnext then goes to the tail). Overflow goes to the global queue.
 * Returns 1 if the ring (not counting runnext) is non-empty afterwards. */
static inline int runq_put(gc_p *pp, void *gp, int next, gc_mutex *schedlock, gc_gqueue *gq) {
    if (next) {
        gp = xchg_ptr(&pp->runnext, gp);
        if (gp == NULL) return runq_len(pp) != 0;
    }
    for (;;) {
        uint32_t h = ld_acq_u32(&pp->runqhead);
        uint32_t t = pp->runqtail;
        if (t - h < GOCORE_RUNQ_CAP) {
            st_rlx_ptr(&pp->runq[t % GOCORE_RUNQ_CAP], gp);
            st_rel_u32(&pp->runqtail, t + 1);
            return 1;
        }
        if (runq_put_slow(pp, gp, h, t, schedlock, gq) == 0) return 1;
    }
}

/* Owner P only. runnext first, then the ring's head. NULL when empty. */
static inline void *runq_get(gc_p *pp) {
    void *next = ld_acq_ptr(&pp->runnext);
    if (next != NULL && cas_ptr(&pp->runnext, next, NULL)) return next;
    for (;;) {
        uint32_t h = ld_acq_u32(&pp->runqhead);
        uint32_t t = pp->runqtail;
        if (t == h) return NULL;
        void *gp = ld_rlx_ptr(&pp->runq[h % GOCORE_RUNQ_CAP]);
        if (cas_u32(&pp->runqhead, h, h + 1)) return gp;
    }
}

/* Any thread. Takes half of victim's ring into batch[bhead...] (a ring of the
 * same capacity), and runnext too if the ring is empty and steal_runnext.
 * Returns how many it took. */
static inline uint32_t runq_grab(gc_p *victim, void **batch, uint32_t bhead, int steal_runnext) {
    for (;;) {
        uint32_t h = ld_acq_u32(&victim->runqhead);
        uint32_t t = ld_acq_u32(&victim->runqtail);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (steal_runnext) {
                void *next = ld_acq_ptr(&victim->runnext);
                if (next != NULL && cas_ptr(&victim->runnext, next, NULL)) {
                    st_rlx_ptr(&batch[bhead % GOCORE_RUNQ_CAP], next);
                    return 1;
                }
            }
            return 0;
        }
        if (n > GOCORE_RUNQ_CAP / 2) continue;   /* h and t read at different times */
        for (uint32_t i = 0; i < n; i++)
            st_rlx_ptr(&batch[(bhead + i) % GOCORE_RUNQ_CAP],
                       ld_rlx_ptr(&victim->runq[(h + i) % GOCORE_RUNQ_CAP]));
        if (cas_u32(&victim->runqhead, h, h + n)) return n;
    }
}

/* Owner of pp only (pp's ring must be empty). Steals half of victim's work
 * into pp and returns one G to run, or NULL. */
static inline void *runq_steal(gc_p *pp, gc_p *victim, int steal_runnext) {
    uint32_t t = pp->runqtail;
    uint32_t n = runq_grab(victim, pp->runq, t, steal_runnext);
    if (n == 0) return NULL;
    n--;
    void *gp = ld_rlx_ptr(&pp->runq[(t + n) % GOCORE_RUNQ_CAP]);
    if (n == 0) return gp;
    st_rel_u32(&pp->runqtail, t + n);
    return gp;
}

/* Owner P only, caller holds sched.lock: moves up to max Gs (at most half the
 * ring's capacity) from the global queue into pp's ring and returns one more
 * to run. */
static inline void *globrunq_get(gc_p *pp, gc_gqueue *gq, uint32_t max, uint32_t nprocs) {
    uint32_t n = gq->size;
    if (n == 0) return NULL;
    n = n / nprocs + 1;
    if (n > gq->size) n = gq->size;
    if (max > 0 && n > max) n = max;
    if (n > GOCORE_RUNQ_CAP / 2) n = GOCORE_RUNQ_CAP / 2;
    void *gp = gqueue_get(gq);
    for (uint32_t i = 1; i < n; i++) {
        void *g2 = gqueue_get(gq);
        uint32_t t = pp->runqtail;
        if (t - ld_acq_u32(&pp->runqhead) >= GOCORE_RUNQ_CAP) { gqueue_put(gq, g2); break; }
        st_rlx_ptr(&pp->runq[t % GOCORE_RUNQ_CAP], g2);
        st_rel_u32(&pp->runqtail, t + 1);
    }
    return gp;
}

#endif
