/* gocore_testhooks.h - the run-queue ring of gocore_runq.h compiled at 4
 * slots into gocore._testhooks, on bare Ps, and a multi-threaded harness
 * that checks every G comes out of it exactly once (Go's export_test.go
 * RunSchedLocalQueueStealTest idea, and tokio's loom-style steal tests,
 * written for this ring).
 *
 * The ring's size is a compile-time constant (GOCORE_RUNQ_CAP, 256 in a
 * release build, 4 in a debug build). This header is included by
 * _testhooks.pyx before anything else includes gocore_runq.h: it sets the
 * constant to 4 and then includes the real header, so the functions tested
 * here are gocore_runq.h's own, compiled at 4 slots in every build. The
 * gc_p of this translation unit is therefore not the runtime's gc_p
 * (different size): these Ps are never handed to the scheduler, which
 * lives in gocore._sched and never sees them.
 *
 * Ownership in the harness: a "G" is the address of a counter
 * (gs[i], int32_t). Whoever takes a G out of a queue adds 1 to it; a ring
 * that works leaves every counter at exactly 1. Nothing is reference
 * counted, so all of it runs without the GIL on real threads.
 */
#ifndef GOCORE_TESTHOOKS_H
#define GOCORE_TESTHOOKS_H

#ifdef GOCORE_RUNQ_H
#error "gocore_testhooks.h must come before gocore_runq.h (it compiles the ring at 4 slots)"
#endif

#include "gocore_config.h"
#undef GOCORE_RUNQ_CAP
#define GOCORE_RUNQ_CAP 4
#include "gocore_runq.h"
#include "gocore_clock.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

enum { TH_RUNQ_CAP = GOCORE_RUNQ_CAP };

/* nprocs bare Ps and a global queue, as the scheduler has them, but
 * detached from it. `lock` stands for sched.lock: it guards gq only. */
typedef struct {
    gc_p *ps;          /* nprocs Ps (calloc'd: empty rings, no runnext) */
    int32_t nprocs;
    gc_mutex lock;
    gc_gqueue gq;
} th_procs;

static inline int th_procs_init(th_procs *tp, int32_t nprocs) {
    tp->ps = (gc_p *)calloc((size_t)nprocs, sizeof(gc_p));
    if (tp->ps == NULL) return -1;
    for (int32_t i = 0; i < nprocs; i++) tp->ps[i].id = i;
    tp->nprocs = nprocs;
    tp->lock.key = 0;
    memset(&tp->gq, 0, sizeof(tp->gq));
    return 0;
}

static inline void th_procs_free(th_procs *tp) {
    free(tp->ps);
    free(tp->gq.buf);
    tp->ps = NULL;
    tp->gq.buf = NULL;
}

static inline int th_runq_put(th_procs *tp, int32_t p, void *gp, int next) {
    return runq_put(&tp->ps[p], gp, next, &tp->lock, &tp->gq);
}

static inline void *th_globrunq_get(th_procs *tp, int32_t p, uint32_t max) {
    gc_mutex_lock(&tp->lock);
    void *gp = globrunq_get(&tp->ps[p], &tp->gq, max, (uint32_t)tp->nprocs);
    gc_mutex_unlock(&tp->lock);
    return gp;
}

static inline uint32_t th_global_len(th_procs *tp) {
    gc_mutex_lock(&tp->lock);
    uint32_t n = tp->gq.size;
    gc_mutex_unlock(&tp->lock);
    return n;
}

/* The G in ring slot head+i of P p (i < runq_len): for inspection by a
 * single thread while nothing else touches the P. */
static inline void *th_ring_at(th_procs *tp, int32_t p, uint32_t i) {
    gc_p *pp = &tp->ps[p];
    return ld_rlx_ptr(&pp->runq[(ld_acq_u32(&pp->runqhead) + i) % GOCORE_RUNQ_CAP]);
}

/* ---- The concurrent harness.
 *
 * P0's owner puts ngs Gs (every fifth with next=1, so runnext is taken and
 * stolen too), taking one back with runq_get after every third put, then
 * drains P0 and the global queue; when its ring is full it waits a moment
 * for a thief before the next put overflows it. Each of nthieves threads
 * owns P1..Pn: it empties its own ring with runq_get, steals half of P0's
 * ring or (every other time) another thief's (runnext too on odd rounds)
 * and every eighth round takes a batch from the global queue - the three ways findrunnable gets work. With 4
 * slots, the owner's puts overflow to the global queue all the time.
 * Everyone stops when ngs Gs have come out, or at the deadline (a lost G
 * would otherwise keep them looking forever).
 *
 * Shared: gs[] (fetch_add), taken, the stats (atomic adds), start (the
 * gate: threads spin until every one has started, so they overlap),
 * deadline_ns (set before the threads start; zeroed to stop them). */
typedef struct {
    th_procs procs;
    int32_t *gs;
    uint32_t ngs;
    int64_t deadline_ns;
    int32_t start;
    int32_t errors;          /* a G taken twice, or a pointer that is no G */
    int64_t taken;
    int64_t owner_gets, global_gets, steals, stolen, thief_gets;
} th_stress;

typedef struct { th_stress *st; int32_t p; } th_worker;

static inline void th_take(th_stress *st, void *gp) {
    int32_t *g = (int32_t *)gp;
    if (g < st->gs || g >= st->gs + st->ngs || fetch_add_i32(g, 1) != 0)
        fetch_add_i32(&st->errors, 1);
    fetch_add_i64(&st->taken, 1);
}

static inline int th_done(th_stress *st) {
    return ld_acq_i64(&st->taken) >= (int64_t)st->ngs || nanotime() > ld_rlx_i64(&st->deadline_ns);
}

static void th_gate(th_stress *st) {
    fetch_add_i32(&st->start, 1);
    while (ld_acq_i32(&st->start) <= st->procs.nprocs - 1) cpu_relax();
}

static void *th_owner_main(void *arg) {
    th_worker *w = (th_worker *)arg;
    th_stress *st = w->st;
    void *gp;
    th_gate(st);
    for (uint32_t i = 0; i < st->ngs; i++) {
        th_runq_put(&st->procs, 0, &st->gs[i], i % 5 == 0);
        if (i % 3 == 2 && (gp = runq_get(&st->procs.ps[0])) != NULL) {
            add_rlx_i64(&st->owner_gets, 1);
            th_take(st, gp);
        }
        /* A full ring: give the thieves a moment to steal before the next
         * put overflows it (else, on a busy machine, the owner can finish
         * alone before a thief is scheduled at all). */
        for (int spin = 0; spin < 256 && runq_len(&st->procs.ps[0]) == GOCORE_RUNQ_CAP; spin++)
            cpu_relax();
    }
    while (!th_done(st)) {
        if ((gp = runq_get(&st->procs.ps[0])) != NULL) {
            add_rlx_i64(&st->owner_gets, 1);
            th_take(st, gp);
        } else if ((gp = th_globrunq_get(&st->procs, 0, 0)) != NULL) {
            add_rlx_i64(&st->global_gets, 1);
            th_take(st, gp);
        } else {
            cpu_relax();
        }
    }
    return NULL;
}

static void *th_thief_main(void *arg) {
    th_worker *w = (th_worker *)arg;
    th_stress *st = w->st;
    gc_p *pp = &st->procs.ps[w->p];
    int32_t n = st->procs.nprocs;
    uint32_t rnd = 0x9e3779b9u * (uint32_t)(w->p + 1);
    void *gp;
    th_gate(st);
    for (uint32_t round = 0; !th_done(st); round++) {
        while ((gp = runq_get(pp)) != NULL) {          /* its own ring first */
            add_rlx_i64(&st->thief_gets, 1);
            th_take(st, gp);
        }
        rnd ^= rnd << 13; rnd ^= rnd >> 17; rnd ^= rnd << 5;
        /* P0 (where the Gs are put) half the time, else any P but its own */
        int32_t victim = 0;
        if ((rnd & 1) && n > 2) {
            victim = 1 + (int32_t)((rnd >> 1) % (uint32_t)(n - 2));
            if (victim >= w->p) victim++;
        }
        if ((gp = runq_steal(pp, &st->procs.ps[victim], round & 1)) != NULL) {
            add_rlx_i64(&st->steals, 1);
            add_rlx_i64(&st->stolen, 1 + (int64_t)runq_len(pp));
            th_take(st, gp);
        } else if (round % 8 == 7 && (gp = th_globrunq_get(&st->procs, w->p, 0)) != NULL) {
            add_rlx_i64(&st->global_gets, 1);
            th_take(st, gp);
        } else {
            cpu_relax();
        }
    }
    return NULL;
}

/* Runs the harness on 1 + nthieves threads (at most 63 thieves). Returns 0,
 * or -1 if a thread could not be started (nothing ran then). */
static int th_stress_run(th_stress *st, int32_t nthieves) {
    pthread_t tids[64];
    th_worker ws[64];
    int32_t started = 0;
    if (nthieves < 1 || nthieves > 63) return -1;
    for (int32_t i = 0; i <= nthieves; i++) {
        ws[i].st = st;
        ws[i].p = i;
        if (pthread_create(&tids[i], NULL, i == 0 ? th_owner_main : th_thief_main, &ws[i]) != 0)
            break;
        started++;
    }
    if (started <= nthieves) {
        /* release the gate so the started threads see the deadline passed */
        st_rel_i64(&st->deadline_ns, 0);
        st_rel_i32(&st->start, st->procs.nprocs);
    }
    for (int32_t i = 0; i < started; i++) pthread_join(tids[i], NULL);
    return started <= nthieves ? -1 : 0;
}

/* ---- runq_empty under a concurrent owner (Go's RunSchedLocalQueueEmptyTest
 * idea). The P always holds at least one G: G0 is put (maybe into runnext)
 * before each round; then, at the same moment, a checker thread asks
 * runq_empty while the owner puts G1 (maybe into runnext, which moves G0 to
 * the ring) and takes one G back. A correct runq_empty never says "empty"
 * here: spuriously empty Ps let runnable Gs and idle Ms coexist (an M that
 * looks for work and finds every P "empty" parks).
 *
 * Shared: round (owner -> checker: start round r), checked (checker ->
 * owner: round r checked), ready (the two-party barrier of a round),
 * spurious (checker only, read after the join). */
typedef struct {
    th_procs procs;          /* one P */
    int32_t gs[2];
    int32_t round, checked, ready, stop;
    int64_t spurious;
    int32_t errors;          /* a get that found nothing (the P lost a G) */
} th_empty;

static void *th_empty_checker(void *arg) {
    th_empty *e = (th_empty *)arg;
    for (int32_t r = 1;; r++) {
        while (ld_acq_i32(&e->round) != r) {
            if (ld_acq_i32(&e->stop)) return NULL;
            cpu_relax();
        }
        fetch_add_i32(&e->ready, 1);
        while (ld_acq_i32(&e->ready) != 2) cpu_relax();
        if (runq_empty(&e->procs.ps[0])) e->spurious++;
        st_rel_i32(&e->checked, r);
    }
}

/* Runs iters rounds on the calling thread and one checker thread. Returns
 * 0, or -1 if the checker could not be started. */
static int th_empty_run(th_empty *e, int32_t iters) {
    pthread_t tid;
    gc_p *pp = &e->procs.ps[0];
    if (pthread_create(&tid, NULL, th_empty_checker, e) != 0) return -1;
    for (int32_t r = 1; r <= iters; r++) {
        int next0 = (r & 1) == 0, next1 = (r & 2) == 0;
        st_rel_i32(&e->ready, 0);
        th_runq_put(&e->procs, 0, &e->gs[0], next0);
        st_rel_i32(&e->round, r);
        fetch_add_i32(&e->ready, 1);
        while (ld_acq_i32(&e->ready) != 2) cpu_relax();
        th_runq_put(&e->procs, 0, &e->gs[1], next1);
        if (runq_get(pp) == NULL) e->errors++;
        while (ld_acq_i32(&e->checked) != r) cpu_relax();
        if (runq_get(pp) == NULL) e->errors++;
        if (!runq_empty(pp)) e->errors++;
    }
    st_rel_i32(&e->stop, 1);
    pthread_join(tid, NULL);
    return 0;
}

#endif
