/* gocore_waitq.h - the intrusive FIFO of parked waiters, one for channels
 * (sudog records in a Chan's recvq/sendq, _chan.pxd) and for the sync
 * primitives (swaiter records in a semaq, _sync.pxd): Go's waitq and the
 * list of semaRoot, written once.
 *
 * A waiter record embeds gc_waitlink as its FIRST member, so that a record
 * pointer and its link pointer are the same address (casts both ways).
 *
 * Protocol (every rule holds for both record kinds):
 *   * The queue's lock (a channel's c.lock, a semaq's q.lock; passed to
 *     every function here so that debug builds assert it is held) guards
 *     first/last and the next/prev/linked fields of the records on it.
 *     Nothing here takes or releases a lock, allocates, or touches a
 *     Python reference: callers hold the lock and may be inside nogil.
 *   * `linked` is 1 exactly while the record is on a queue, and a record
 *     is on at most one queue. Its owner (the operation that parked) reads
 *     it under the lock after it wakes: 0 means nothing left to unlink.
 *   * g is the borrowed parked G (kept alive by its parked state until
 *     goready, see _sched.pxd); claim is &g.park_claim. A waker unlinks a
 *     record and then wins its G with cas(*claim, 0, 1) (acq_rel: what the
 *     waker writes after it happens-after the waiter's enqueue). A record
 *     whose G someone else claimed - another case of the same select,
 *     deadlock detection, teardown, a coroutine closed from outside - is a
 *     zombie: whoever meets it at the head unlinks and skips it; its owner
 *     later finds linked == 0.
 *   * After winning the claim the waker owns the record until goready: it
 *     may write the record's payload and chain records through `next` (free
 *     once unlinked), and reads all it needs before goready (a thread's
 *     record lives on its C stack and dies when that thread returns).
 *   * The queue owns no reference: records live in their awaitable or on a
 *     parked thread's stack, and the awaitable or thread holds the object
 *     (channel, primitive) the queue lives in.
 * The debug counter `ctr` (GC_DBG_CHAN_WAITERS or GC_DBG_SYNC_WAITERS)
 * counts linked records; a release build compiles it away.
 */
#ifndef GOCORE_WAITQ_H
#define GOCORE_WAITQ_H

#include <Python.h>
#include <stdint.h>

#include "gocore_atomic.h"
#include "gocore_config.h"
#include "gocore_futex.h"

typedef struct gc_waitlink {
    struct gc_waitlink *next;   /* under the queue lock; the claimer's chain once unlinked */
    struct gc_waitlink *prev;   /* under the queue lock */
    PyObject *g;                /* borrowed G */
    uint32_t *claim;            /* &g.park_claim: whoever CASes it 0 -> 1 wakes g */
    int32_t linked;             /* under the queue lock */
} gc_waitlink;

typedef struct {
    gc_waitlink *first;         /* under the queue lock */
    gc_waitlink *last;
} gc_waitq;

/* Caller holds lock; w is not linked. front: at the head (a woken Mutex
 * waiter that lost the race goes back to the front), else at the tail. */
static inline void gc_waitq_push(gc_waitq *q, gc_waitlink *w, int front,
                                 gc_mutex *lock, int ctr) {
    gc_assert_msg(gc_mutex_held(lock) && !w->linked,
                  "gc_waitq_push: queue lock not held, or record already linked");
    (void)lock;
    gc_dbg_add(ctr, 1);
    if (front) {
        w->prev = NULL;
        w->next = q->first;
        if (q->first != NULL) q->first->prev = w;
        else q->last = w;
        q->first = w;
    } else {
        w->next = NULL;
        w->prev = q->last;
        if (q->last != NULL) q->last->next = w;
        else q->first = w;
        q->last = w;
    }
    w->linked = 1;
}

/* Caller holds lock; w is linked into q. */
static inline void gc_waitq_unlink(gc_waitq *q, gc_waitlink *w, gc_mutex *lock, int ctr) {
    gc_assert_msg(gc_mutex_held(lock) && w->linked,
                  "gc_waitq_unlink: queue lock not held, or record not linked");
    gc_assert_msg((w->prev != NULL || q->first == w) && (w->next != NULL || q->last == w),
                  "gc_waitq_unlink: record not linked into this queue");
    (void)lock;
    gc_dbg_add(ctr, -1);
    if (w->prev != NULL) w->prev->next = w->next;
    else q->first = w->next;
    if (w->next != NULL) w->next->prev = w->prev;
    else q->last = w->prev;
    w->next = w->prev = NULL;
    w->linked = 0;
}

/* Caller holds lock; w is linked. Unlink w and try to win its G: 1 if the
 * caller owns w now, 0 if another claimer was first (w was a zombie). */
static inline int gc_waitq_take(gc_waitq *q, gc_waitlink *w, gc_mutex *lock, int ctr) {
    gc_waitq_unlink(q, w, lock, ctr);
    return cas_u32(w->claim, 0, 1);
}

/* Caller holds lock. The first record whose G the caller wins, unlinked;
 * zombies met on the way are unlinked and skipped. NULL if none. */
static inline gc_waitlink *gc_waitq_dequeue(gc_waitq *q, gc_mutex *lock, int ctr) {
    gc_waitlink *w;
    while ((w = q->first) != NULL) {
        if (gc_waitq_take(q, w, lock, ctr)) return w;
    }
    return NULL;
}

/* Caller holds lock. The first record whose G is still unclaimed, left
 * linked (the caller decides, then gc_waitq_take); zombies at the head
 * are unlinked on the way. NULL if none. */
static inline gc_waitlink *gc_waitq_peek(gc_waitq *q, gc_mutex *lock, int ctr) {
    while (q->first != NULL && ld_acq_u32(q->first->claim) != 0)
        gc_waitq_unlink(q, q->first, lock, ctr);
    return q->first;
}

/* Caller holds lock. The records still waiting (not zombies: their G's
 * claim is still 0) whose G is not `except` (NULL: count all). For dumps:
 * O(queue length), under the queue's lock like any other walk. */
static inline int64_t gc_waitq_count(gc_waitq *q, PyObject *except) {
    int64_t n = 0;
    for (gc_waitlink *w = q->first; w != NULL; w = w->next)
        if (w->g != except && ld_acq_u32(w->claim) == 0)
            n++;
    return n;
}

#endif
