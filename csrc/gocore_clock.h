/* gocore_clock.h - the runtime's one clock: CLOCK_MONOTONIC in nanoseconds.
 * It is the clock behind Python's time.monotonic(), so deadlines given as
 * monotonic() floats and timer firing times agree. Any thread, nogil. */
#ifndef GOCORE_CLOCK_H
#define GOCORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t nanotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A cheap clock (a few ns, ~4 ms resolution) for bookkeeping that needs no
 * precision, like when a goroutine started waiting (shown in dumps). */
static inline int64_t nanotime_coarse(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleep the calling thread for `us` microseconds (nanosleep; an interrupted
 * sleep returns early): polling loops of sysmon and teardown. nogil. */
static inline void gc_sleep_us(long us) {
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

#endif
