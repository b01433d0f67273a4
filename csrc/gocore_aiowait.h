/* gocore_aiowait.h - the C half of asyncio tasks waiting in gocore
 * operations (gocore/_aiowait.pxi has the protocol): the eventfd through
 * which a waker on any thread tells an event loop that some of its waiters'
 * pseudo-Gs are on the hub's list.
 *
 * An eventfd is a counter: several kicks between two drains make one
 * readable state and one read clears it. No Python objects here; every
 * function may run without the GIL.
 */
#ifndef GOCORE_AIOWAIT_H
#define GOCORE_AIOWAIT_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* a fresh eventfd for one loop's hub; -1 on failure (errno set) */
static inline int gc_aio_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/* make the eventfd readable (any thread) */
static inline void gc_aio_kick(int fd) {
    uint64_t one = 1;
    ssize_t r;
    do { r = write(fd, &one, sizeof one); } while (r < 0 && errno == EINTR);
}

/* consume the counter (EAGAIN when it is 0: nothing to do) */
static inline void gc_aio_clear(int fd) {
    uint64_t v;
    ssize_t r;
    do { r = read(fd, &v, sizeof v); } while (r < 0 && errno == EINTR);
}

static inline void gc_aio_close(int fd) { close(fd); }

/* aio_withdraw's wait for a waker between its claim and its goready */
static inline void gc_aio_yield(void) { sched_yield(); }

#endif /* GOCORE_AIOWAIT_H */
