/* gocore_futex.h - the runtime's only blocking syscalls: futex wait/wake,
 * and on top of them a small mutex and Go's one-shot `note`.
 *
 * Everything here is nogil and never touches Python objects.
 * Linux only (futex(2)); other platforms are not supported yet.
 */
#ifndef GOCORE_FUTEX_H
#define GOCORE_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gocore_atomic.h"

/* Sleep while *addr == val, at most timeout_ns (< 0: forever).
 * Returns 0 on wake-up or value change, ETIMEDOUT or EINTR otherwise.
 * Spurious returns are allowed: callers re-check their condition. */
static inline int futex_wait(uint32_t *addr, uint32_t val, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000LL);
        ts.tv_nsec = (long)(timeout_ns % 1000000000LL);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
    if (r == -1 && (errno == ETIMEDOUT || errno == EINTR)) return errno;
    return 0;
}

static inline void futex_wake(uint32_t *addr, int n) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ---- gc_mutex: a futex mutex (0 unlocked, 1 locked, 2 locked+waiters).
 * Holders of any gc_mutex must not block, allocate GC-tracked objects,
 * release references or wait for the GIL inside the critical section: that
 * keeps it free of lock-order cycles with the GIL (and with the
 * stop-the-world pauses of free-threaded CPython). */
typedef struct { uint32_t key; } gc_mutex;

static inline int gc_mutex_trylock(gc_mutex *m) { return cas_u32(&m->key, 0, 1); }

static inline void gc_mutex_lock_slow(gc_mutex *m) {
    for (int i = 0; i < 100; i++) {
        if (ld_rlx_u32(&m->key) == 0 && cas_u32(&m->key, 0, 1)) return;
        cpu_relax();
    }
    /* Announce a waiter (state 2) and sleep until the holder hands over. */
    while (xchg_u32(&m->key, 2) != 0)
        futex_wait(&m->key, 2, -1);
}

static inline void gc_mutex_lock(gc_mutex *m) {
    if (!cas_u32(&m->key, 0, 1)) gc_mutex_lock_slow(m);
}

static inline void gc_mutex_unlock(gc_mutex *m) {
    if (xchg_u32(&m->key, 0) == 2) futex_wake(&m->key, 1);
}

static inline int gc_mutex_held(gc_mutex *m) { return ld_rlx_u32(&m->key) != 0; }

/* ---- gc_note: Go's note, a one-shot wake-up for exactly one sleeper.
 * key: 0 = clear, 1 = woken. note_wakeup may come before note_sleep (the
 * sleeper then returns at once): that ordering is what makes park/ready free
 * of lost wake-ups. note_clear is called by the sleeper only, before it
 * publishes that it is about to sleep. */
typedef struct { uint32_t key; } gc_note;   /* 0 clear, 1 woken, 2 M0 interrupted */

static inline void note_clear(gc_note *n) { st_rel_u32(&n->key, 0); }

static inline void note_wakeup(gc_note *n) {
    /* 2 is M0's "interrupted by a signal" state (gocore_sched.h): wake too. */
    if (xchg_u32(&n->key, 1) != 1) futex_wake(&n->key, 1);
}

/* Wake the sleeper without waking it "for good": key 0 -> 2 means "poked,
 * look around" (a SIGINT for M0, an earlier timer for the timer M). The
 * sleeper sees 2 and decides under sched.lock whether a real hand-off is
 * also coming. Async-signal-safe. */
static inline void note_poke(gc_note *n) {
    if (cas_u32(&n->key, 0, 2)) futex_wake(&n->key, 1);
}

static inline void note_sleep(gc_note *n) {
    uint32_t k;
    while ((k = ld_acq_u32(&n->key)) != 1) futex_wait(&n->key, k, -1);
}

/* Sleep until woken or until deadline_ns (nanotime() clock, < 0: none).
 * Returns 1 if woken, 0 on timeout, -1 if interrupted by a signal. */
static inline int note_sleep_until(gc_note *n, int64_t deadline_ns, int64_t (*now)(void)) {
    while (ld_acq_u32(&n->key) == 0) {
        int64_t wait = -1;
        if (deadline_ns >= 0) {
            wait = deadline_ns - now();
            if (wait <= 0) return 0;
        }
        if (futex_wait(&n->key, 0, wait) == EINTR && ld_acq_u32(&n->key) == 0) return -1;
    }
    return 1;
}

#endif
