/* gocore_config.h - build switches and the runtime's fatal-error path.
 *
 * GOCORE_DEBUG (set by `GOCORE_DEBUG=1 pip install .`) turns on gc_assert()
 * and shrinks the local run queue to 4 slots so that overflow to the global
 * queue and stealing are exercised by ordinary tests.
 */
#ifndef GOCORE_CONFIG_H
#define GOCORE_CONFIG_H

#include <stdio.h>
#include <stdlib.h>

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

#if GOCORE_DEBUG
#define gc_assert(cond) do { if (!(cond)) gc_throw("assertion failed: " #cond); } while (0)
#else
#define gc_assert(cond) ((void)0)
#endif

#endif
