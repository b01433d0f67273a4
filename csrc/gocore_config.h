/* gocore_config.h - build switches and the runtime's fatal-error path.
 *
 * GOCORE_DEBUG (set by `GOCORE_DEBUG=1 pip install .`) turns on gc_assert()
 * and the debug counters below, and shrinks the local run queue to 4 slots
 * so that overflow to the global queue and stealing are exercised by
 * ordinary tests. In a release build every gc_assert() and gc_dbg_add()
 * compiles to nothing: their arguments are not evaluated.
 */
#ifndef GOCORE_CONFIG_H
#define GOCORE_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>

#ifndef GOCORE_DEBUG
#define GOCORE_DEBUG 0
#endif

#if GOCORE_DEBUG
#define GOCORE_RUNQ_CAP 4
#else
#define GOCORE_RUNQ_CAP 256
#endif

/* Runtime bugs, never user mistakes: print and abort (Go's throw). */
static inline void gc_throw(const char *msg) {
    fprintf(stderr, "gocore: fatal error: %s\n", msg);
    fflush(stderr);
    abort();
}

/* gc_assert(cond) in C; gc_assert_msg(cond, what) from Cython, whose
 * generated conditions are temporaries (`what` names the invariant). */
#if GOCORE_DEBUG
static inline void gc_assert_fail(const char *what, const char *file, int line) {
    fprintf(stderr, "gocore: fatal error: assertion failed: %s (%s:%d)\n", what, file, line);
    fflush(stderr);
    abort();
}
#define gc_assert(cond) do { if (!(cond)) gc_assert_fail(#cond, __FILE__, __LINE__); } while (0)
#define gc_assert_msg(cond, what) do { if (!(cond)) gc_assert_fail((what), __FILE__, __LINE__); } while (0)
#else
#define gc_assert(cond) ((void)0)
#define gc_assert_msg(cond, what) ((void)0)
#endif

/* ---- Debug counters (balance checks, GOCORE_DEBUG only).
 *
 * One array, owned by gocore._sched; every compiled module points
 * gc_dbg_ctr at it when imported (each .so has its own copy of this
 * header's statics). Each counter goes up where something is taken and
 * down where it is given back; _sched checks them where the runtime is
 * quiescent (end of run(), interpreter exit) and throws naming the one
 * that does not balance. Relaxed atomics: only the final sums matter. */
enum {
    GC_DBG_G_OBJECTS = 0,   /* goroutine G objects alive (THREAD Gs not counted) */
    GC_DBG_CHAN_WAITERS,    /* sudogs linked into channel wait queues */
    GC_DBG_SYNC_WAITERS,    /* swaiters linked into sync wait queues (semaq) */
    GC_DBG_TIMER_REFS,      /* references the timer heap holds on Timer/Ticker objects */
    GC_DBG_N
};

static int64_t *gc_dbg_ctr;   /* NULL in release builds: never dereferenced there */

static inline void gc_dbg_add(int which, int64_t d) {
#if GOCORE_DEBUG
    atomic_fetch_add_explicit((_Atomic int64_t *)&gc_dbg_ctr[which], d, memory_order_relaxed);
#else
    (void)which; (void)d;
#endif
}

#endif
