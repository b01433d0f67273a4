/* gocore_timer.h - the runtime's timers: one binary min-heap shared by all
 * Ps, ordered by `when` (nanotime() clock), guarded by sched.timerlock.
 *
 * A gc_timer is embedded in the object that owns it (a sleeping goroutine's
 * awaitable, a Timer/Ticker): the heap holds borrowed pointers, and whoever
 * puts a timer in the heap guarantees its memory outlives its stay there
 * (the owner removes it before it dies, or holds itself alive while queued).
 * `next_when` mirrors heap[0]->when for lock-free "anything due?" checks:
 * written under timerlock with st_rel, read with ld_acq by any M.
 *
 * Collectable timers (Go 1.23): an owner that holds itself alive while
 * queued may be the heap's only link to the program (a Timer whose channel
 * nobody references). timers_sweep() drops such entries in bulk, as Go's
 * cleantimers drops zombies: the caller's predicate says which are dead,
 * and the sweep runs when the heap has grown past `sweep_at`, twice its
 * smallest size since the last sweep plus GC_TIMERS_SWEEP_MIN, so that its
 * O(len) cost is amortised over at least as many additions.
 */
#ifndef GOCORE_TIMER_H
#define GOCORE_TIMER_H

#include <stdint.h>
#include <stdlib.h>

#include "gocore_atomic.h"
#include "gocore_config.h"

#define GC_NEVER INT64_MAX
#define GC_TIMERS_SWEEP_MIN 1024

enum { TK_READY_G = 0, TK_PYOBJ = 1 };

typedef struct gc_timer {
    int64_t when;        /* under timerlock */
    int64_t period;      /* 0: one-shot */
    int32_t heap_index;  /* under timerlock; -1 when not in the heap */
    int32_t kind;        /* TK_READY_G: ready the parked G in `arg`; TK_PYOBJ: call arg._fire(seq) with the GIL */
    void *arg;           /* borrowed (see above) */
    uint32_t seq;        /* the owner's generation, written under timerlock: a TK_PYOBJ
                            firing gets the seq it was popped with, so that its owner
                            can drop a firing that a stop or reset overtook */
} gc_timer;

typedef struct {
    gc_timer **heap;     /* under timerlock */
    int32_t len;         /* under timerlock; read with ld_acq by checkdead */
    int32_t cap;
    int64_t next_when;   /* atomic mirror of heap[0]->when, GC_NEVER if empty */
    int32_t sweep_at;    /* written under timerlock (st_rlx), read with ld_rlx as a hint:
                            timers_sweep_due() once len reaches it */
} gc_timers;

static inline void timers_swap(gc_timers *ts, int32_t i, int32_t j) {
    gc_timer *a = ts->heap[i], *b = ts->heap[j];
    ts->heap[i] = b; b->heap_index = i;
    ts->heap[j] = a; a->heap_index = j;
}

static inline void timers_up(gc_timers *ts, int32_t i) {
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (ts->heap[p]->when <= ts->heap[i]->when) break;
        timers_swap(ts, i, p);
        i = p;
    }
}

static inline void timers_down(gc_timers *ts, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < ts->len && ts->heap[l]->when < ts->heap[m]->when) m = l;
        if (r < ts->len && ts->heap[r]->when < ts->heap[m]->when) m = r;
        if (m == i) return;
        timers_swap(ts, i, m);
        i = m;
    }
}

static inline void timers_publish(gc_timers *ts) {
    st_rel_i64(&ts->next_when, ts->len ? ts->heap[0]->when : GC_NEVER);
    st_rel_i32(&ts->len, ts->len);
}

/* Caller holds timerlock; t not in the heap. Returns 1 if t is now the
 * earliest timer (an idle M may need waking), -1 when out of memory. */
static inline int timers_add(gc_timers *ts, gc_timer *t) {
    if (ts->len == ts->cap) {
        int32_t ncap = ts->cap ? ts->cap * 2 : 64;
        gc_timer **nh = (gc_timer **)realloc(ts->heap, sizeof(gc_timer *) * ncap);
        if (!nh) return -1;
        ts->heap = nh; ts->cap = ncap;
    }
    t->heap_index = ts->len;
    ts->heap[ts->len] = t;
    st_rlx_i32(&ts->len, ts->len + 1);
    timers_up(ts, t->heap_index);
    timers_publish(ts);
    return t->heap_index == 0;
}

/* Caller holds timerlock. Removes t if queued; returns 1 if it was. */
static inline int timers_del(gc_timers *ts, gc_timer *t) {
    int32_t i = t->heap_index;
    if (i < 0) return 0;
    int32_t last = ts->len - 1;
    if (i != last) timers_swap(ts, i, last);
    st_rlx_i32(&ts->len, last);
    t->heap_index = -1;
    if (i != last) { timers_down(ts, i); timers_up(ts, i); }
    timers_publish(ts);
    if (ts->sweep_at > 2 * last + GC_TIMERS_SWEEP_MIN)   /* track the smallest size */
        st_rlx_i32(&ts->sweep_at, 2 * last + GC_TIMERS_SWEEP_MIN);
    return 1;
}

/* Caller holds timerlock. Sets t's deadline to `when`, moving it within the
 * heap if queued (O(log n), no removal) or adding it if not. Returns as
 * timers_add: 1 if t is now the earliest timer, -1 when out of memory. */
static inline int timers_modify(gc_timers *ts, gc_timer *t, int64_t when) {
    t->when = when;
    if (t->heap_index < 0)
        return timers_add(ts, t);
    timers_up(ts, t->heap_index);
    timers_down(ts, t->heap_index);
    timers_publish(ts);
    return t->heap_index == 0;
}

/* Caller holds timerlock. Pops the earliest timer if due at `now`. */
static inline gc_timer *timers_pop_due(gc_timers *ts, int64_t now) {
    if (ts->len == 0 || ts->heap[0]->when > now) return NULL;
    gc_timer *t = ts->heap[0];
    timers_del(ts, t);
    return t;
}

/* Caller holds timerlock. Has the heap grown enough since the last sweep? */
static inline int timers_sweep_due(gc_timers *ts) {
    return ts->len >= ts->sweep_at;
}

/* Caller holds timerlock. Removes every timer t with dead(t) (which must
 * not touch the heap), storing them in out[] (room for ts->len; their
 * heap_index becomes -1), and rebuilds the heap in O(len). Returns how many
 * were removed. */
static inline int32_t timers_sweep(gc_timers *ts, int (*dead)(gc_timer *t), gc_timer **out) {
    int32_t i, live = 0, k = 0;
    for (i = 0; i < ts->len; i++) {
        gc_timer *t = ts->heap[i];
        if (dead(t)) {
            t->heap_index = -1;
            out[k++] = t;
        } else {
            t->heap_index = live;
            ts->heap[live++] = t;
        }
    }
    st_rlx_i32(&ts->len, live);
    for (i = live / 2 - 1; i >= 0; i--)
        timers_down(ts, i);
    timers_publish(ts);
    st_rlx_i32(&ts->sweep_at, 2 * live + GC_TIMERS_SWEEP_MIN);
    return k;
}

#endif
