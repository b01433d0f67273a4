/* gocore_netpoll.h - the network poller's C half (Go's netpoll.go +
 * netpoll_epoll.go): one epoll instance per runtime, an eventfd to break a
 * blocking poll, and the poll descriptors (one per registered fd).
 *
 * Nothing here touches Python objects; the scheduler side (readying the Gs
 * this returns, the hooks in findrunnable/stopm/sysmon) is in
 * gocore/_netpoll.pxi.
 *
 * ---- Poll descriptors (gc_pollfd).
 * Type-stable: allocated in chunks that are never freed, recycled through a
 * free list (Go's pollCache), so a late epoll event may always dereference
 * the descriptor it names. Each one has a fixed `index` in gc_pd_chunks and
 * a `seq` bumped every time it is freed; the epoll event carries
 * (seq << 32 | index), and an event whose seq no longer matches (the fd
 * was closed, maybe reused by another descriptor) is dropped.
 *
 * ---- Reader and writer slots (rg, wg): a word each, atomic.
 *   PD_NIL    nobody waits, no readiness noted
 *   PD_READY  readiness noted (by an event, or a spurious one after reuse):
 *             the next waiter consumes it and retries its syscall
 *   PD_WAIT   a G is about to park (between its syscall's EAGAIN and the
 *             park's commit, which CASes PD_WAIT -> the G)
 *   a G       parked; owned by whoever CASes it out of the slot
 * Transitions (Go's netpollblock/netpollunblock):
 *   waiter:    READY -> NIL (consume; retry the syscall) or NIL -> WAIT;
 *              commit: WAIT -> G (parked) - if that CAS fails an unblocker
 *              came between, and the waiter readies itself;
 *              after waking: xchg -> NIL (READY means "retry now").
 *   unblocker (event: ioready=1; close or deadline: ioready=0):
 *              G -> READY/NIL: it won the G and must ready it (through the
 *              G's park_claim, which teardown may have won first);
 *              WAIT -> READY/NIL: the waiter's commit fails and it does not
 *              sleep; NIL -> READY (ioready only).
 *   At most one waiter per slot: the Conn's read (write) lock serialises
 *   readers (writers), so a second WAIT/G is a bug (gc_throw).
 *
 * ---- Lifetime: the owning object (gocore/_net.pyx's _Fd) counts its own
 * reference plus every operation inside the fd (Go's fdMutex reference
 * count); `closing` goes 0 -> 1 once (np_close) and wakes both waiters;
 * the last reference out unregisters the fd, closes it and frees the
 * descriptor: the fd number is never released to the OS while a call is
 * inside a system call on it.
 *
 * ---- Deadlines: rd/wd are 0 (none), a nanotime() value, or -1 (passed),
 * written under `lock` (with rseq/wseq bumped so that a timer armed for an
 * earlier deadline is ignored when it fires), read lock-free by the I/O
 * paths: only -1 fails a call (a deadline never fires early).
 */
#ifndef GOCORE_NETPOLL_H
#define GOCORE_NETPOLL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <fcntl.h>

#include "gocore_atomic.h"
#include "gocore_futex.h"

#define PD_NIL ((uintptr_t)0)
#define PD_READY ((uintptr_t)1)
#define PD_WAIT ((uintptr_t)2)

#define GC_PD_CHUNK 256
#define GC_PD_MAXCHUNKS 8192        /* 2M descriptors: far beyond any fd limit here */
#define GC_EVFD_TAG UINT64_MAX

typedef struct gc_pollfd {
    /* fixed at allocation */
    uint32_t index;
    /* atomic: bumped when freed (after reuse a late event is dropped) */
    uint32_t seq;
    /* set by pd_alloc before the descriptor is published; read-only after */
    int32_t fd;
    /* atomic */
    int32_t closing;        /* 0 -> 1 once (close) */
    int32_t epgen;          /* the poller generation it is registered with (fork) */
    int32_t rhup;           /* 0 -> 1 once an event reported EPOLLRDHUP/HUP/ERR (sticky):
                               stored before the event unblocks the reader slot */
    uintptr_t rg, wg;       /* the slots */
    int64_t rd, wd;         /* deadlines: written under lock, read atomically */
    /* under lock */
    gc_mutex lock;
    uint32_t rseq, wseq;    /* deadline generation: a timer carries the one it was armed for */
    /* under gc_pd_cachelock */
    struct gc_pollfd *link;
} gc_pollfd;

/* Allocation (under gc_pd_cachelock): chunks are appended, never freed. */
static gc_pollfd *gc_pd_chunks[GC_PD_MAXCHUNKS];
static uint32_t gc_pd_nchunks;      /* atomic: chunks published (read by the event path) */
static gc_pollfd *gc_pd_free;
static gc_mutex gc_pd_cachelock;
static int64_t gc_pd_inuse;         /* atomic: statistics, descriptors allocated */

static inline gc_pollfd *pd_by_index(uint32_t index) {
    uint32_t c = index / GC_PD_CHUNK;
    if (c >= ld_acq_u32(&gc_pd_nchunks)) return NULL;
    return &gc_pd_chunks[c][index % GC_PD_CHUNK];
}

/* A fresh descriptor for fd, or NULL (ENOMEM). */
static inline gc_pollfd *pd_alloc(int fd) {
    gc_pollfd *pd;
    gc_mutex_lock(&gc_pd_cachelock);
    if (gc_pd_free == NULL) {
        uint32_t c = gc_pd_nchunks;
        gc_pollfd *chunk;
        if (c >= GC_PD_MAXCHUNKS ||
                (chunk = (gc_pollfd *)calloc(GC_PD_CHUNK, sizeof(gc_pollfd))) == NULL) {
            gc_mutex_unlock(&gc_pd_cachelock);
            errno = ENOMEM;
            return NULL;
        }
        for (int i = GC_PD_CHUNK - 1; i >= 0; i--) {
            chunk[i].index = c * GC_PD_CHUNK + (uint32_t)i;
            chunk[i].fd = -1;
            chunk[i].link = gc_pd_free;
            gc_pd_free = &chunk[i];
        }
        gc_pd_chunks[c] = chunk;
        st_rel_u32(&gc_pd_nchunks, c + 1);
    }
    pd = gc_pd_free;
    gc_pd_free = pd->link;
    pd->link = NULL;
    gc_mutex_unlock(&gc_pd_cachelock);
    pd->fd = fd;
    st_rel_i32(&pd->closing, 0);
    st_rel_i32(&pd->epgen, -1);
    st_rel_i32(&pd->rhup, 0);
    __atomic_store_n(&pd->rg, PD_NIL, __ATOMIC_RELEASE);
    __atomic_store_n(&pd->wg, PD_NIL, __ATOMIC_RELEASE);
    gc_mutex_lock(&pd->lock);
    st_rel_i64(&pd->rd, 0);
    st_rel_i64(&pd->wd, 0);
    pd->rseq++;
    pd->wseq++;
    gc_mutex_unlock(&pd->lock);
    add_rlx_i64(&gc_pd_inuse, 1);
    return pd;
}

/* Back to the free list; late events carrying the old seq are dropped. */
static inline void pd_free(gc_pollfd *pd) {
    __atomic_fetch_add(&pd->seq, 1, __ATOMIC_ACQ_REL);
    pd->fd = -1;
    gc_mutex_lock(&pd->lock);
    pd->rseq++;
    pd->wseq++;
    gc_mutex_unlock(&pd->lock);
    gc_mutex_lock(&gc_pd_cachelock);
    pd->link = gc_pd_free;
    gc_pd_free = pd;
    gc_mutex_unlock(&gc_pd_cachelock);
    add_rlx_i64(&gc_pd_inuse, -1);
}

/* The tag epoll carries for pd: its current seq and its index. */
static inline uint64_t pd_tag(gc_pollfd *pd) {
    return ((uint64_t)__atomic_load_n(&pd->seq, __ATOMIC_ACQUIRE) << 32) | pd->index;
}

static inline uintptr_t *pd_slot(gc_pollfd *pd, int mode) {
    return mode == 'r' ? &pd->rg : &pd->wg;
}

/* The unblocker's side (see the header comment). Returns the G it won
 * (the caller readies it), or NULL. */
static inline void *pd_unblock(gc_pollfd *pd, int mode, int ioready) {
    uintptr_t *slot = pd_slot(pd, mode);
    for (;;) {
        uintptr_t old = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        if (old == PD_READY) return NULL;
        if (old == PD_NIL && !ioready) return NULL;
        uintptr_t nw = ioready ? PD_READY : PD_NIL;
        if (__atomic_compare_exchange_n(slot, &old, nw, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return (old == PD_WAIT || old == PD_NIL) ? NULL : (void *)old;
    }
}

/* The waiter's first step: 1 if readiness was noted (consumed: retry the
 * syscall), 0 if the slot now says PD_WAIT (the caller parks, or undoes
 * with pd_unwait), -1 if another waiter is there (a bug in the caller). */
static inline int pd_prepare_wait(gc_pollfd *pd, int mode) {
    uintptr_t *slot = pd_slot(pd, mode);
    for (;;) {
        uintptr_t old = PD_READY;
        if (__atomic_compare_exchange_n(slot, &old, PD_NIL, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 1;
        old = PD_NIL;
        if (__atomic_compare_exchange_n(slot, &old, PD_WAIT, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 0;
        if (old != PD_READY && old != PD_NIL) return -1;
    }
}

/* The park's commit: 1 if the G is now in the slot (an unblocker will
 * ready it), 0 if an unblocker came first (the waiter must not sleep). */
static inline int pd_commit(uintptr_t *slot, void *g) {
    uintptr_t old = PD_WAIT;
    return __atomic_compare_exchange_n(slot, &old, (uintptr_t)g, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* After waking (or to undo a prepare): empty the slot; 1 if it said READY. */
static inline int pd_unwait(gc_pollfd *pd, int mode) {
    return __atomic_exchange_n(pd_slot(pd, mode), PD_NIL, __ATOMIC_ACQ_REL) == PD_READY;
}

/* A reader whose previous read drained the socket (gocore/_net.pyx,
 * _Fd.rdrained), about to read again with no waiter in the slot: may it
 * park without a recv that would only say EAGAIN? Consumes READY (an event
 * since the previous read: no) and looks at rhup (the peer's FIN or an
 * error was reported, maybe by an event that a read already consumed while
 * data was still queued: no, recv must see it). Otherwise any byte, FIN or
 * error still to come produces an edge-triggered event that readies the
 * slot, so parking loses nothing. */
static inline int pd_read_may_park(gc_pollfd *pd) {
    uintptr_t old = PD_READY;
    if (__atomic_compare_exchange_n(&pd->rg, &old, PD_NIL, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 0;
    return ld_acq_i32(&pd->rhup) == 0;
}

/* Any reader about to try its syscall: READY -> NIL (its syscall is the
 * retry that READY asks for), so that a READY found later is newer. */
static inline void pd_consume_ready(gc_pollfd *pd, int mode) {
    uintptr_t old = PD_READY;
    __atomic_compare_exchange_n(pd_slot(pd, mode), &old, PD_NIL, 0,
                                __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* Teardown: take g out of the slot if it is still there (1), so that no
 * event readies it after it was closed. */
static inline int pd_evict(gc_pollfd *pd, int mode, void *g) {
    uintptr_t old = (uintptr_t)g;
    return __atomic_compare_exchange_n(pd_slot(pd, mode), &old, PD_NIL, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Why an operation may not proceed: 0 ok, 1 closed, 2 deadline passed. */
static inline int pd_check(gc_pollfd *pd, int mode) {
    if (ld_acq_i32(&pd->closing)) return 1;
    if (ld_acq_i64(mode == 'r' ? &pd->rd : &pd->wd) < 0) return 2;
    return 0;
}

/* ---- The poller. */
typedef struct {
    gc_mutex initlock;
    int32_t epfd;        /* atomic: -1 until the first registration */
    int32_t evfd;
    int32_t gen;         /* atomic: bumped by every init (a fork child gets a new one) */
    uint32_t wakesig;    /* atomic: 1 while a break is written and not yet consumed */
    gc_mutex pollmu;     /* one poller at a time (blocking or not) */
    int32_t blocker;     /* atomic: an M is in (or about to enter) a blocking epoll_wait */
    int32_t nwait;       /* atomic: Gs parked (or parking) on a descriptor */
    int64_t lastpoll;    /* atomic: nanotime() of the last poll's return */
    int64_t npolls;      /* statistics (relaxed) */
    int64_t nblocking;
    int64_t nready;
} gc_netpoller;

static gc_netpoller gc_np = { {0}, -1, -1, 0, 0, {0}, 0, 0, 0, 0, 0, 0 };

/* Create the epoll instance and the eventfd (once per process image).
 * 0 or -1 with errno. */
static inline int netpoll_init(void) {
    if (ld_acq_i32(&gc_np.epfd) >= 0) return 0;
    gc_mutex_lock(&gc_np.initlock);
    if (gc_np.epfd < 0) {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) { gc_mutex_unlock(&gc_np.initlock); return -1; }
        int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ev < 0) { int e = errno; close(ep); gc_mutex_unlock(&gc_np.initlock); errno = e; return -1; }
        struct epoll_event e;
        memset(&e, 0, sizeof e);
        e.events = EPOLLIN;      /* level-triggered: readable until read */
        e.data.u64 = GC_EVFD_TAG;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) < 0) {
            int er = errno; close(ep); close(ev); gc_mutex_unlock(&gc_np.initlock); errno = er; return -1;
        }
        gc_np.evfd = ev;
        st_rel_u32(&gc_np.wakesig, 0);
        st_rel_i32(&gc_np.gen, gc_np.gen + 1);
        st_rel_i32(&gc_np.epfd, ep);
    }
    gc_mutex_unlock(&gc_np.initlock);
    return 0;
}

/* Register pd's fd with this generation's epoll (once; again after a
 * fork). 0 or -1 with errno. */
static inline int pd_register(gc_pollfd *pd) {
    if (netpoll_init() < 0) return -1;
    int32_t gen = ld_acq_i32(&gc_np.gen);
    if (ld_acq_i32(&pd->epgen) == gen) return 0;
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    e.data.u64 = pd_tag(pd);
    if (epoll_ctl(ld_acq_i32(&gc_np.epfd), EPOLL_CTL_ADD, pd->fd, &e) < 0 && errno != EEXIST)
        return -1;
    st_rel_i32(&pd->epgen, gen);
    return 0;
}

/* Before close(fd). */
static inline void pd_unregister(gc_pollfd *pd) {
    int ep = ld_acq_i32(&gc_np.epfd);
    if (ep >= 0 && ld_acq_i32(&pd->epgen) == ld_acq_i32(&gc_np.gen)) {
        struct epoll_event e;
        epoll_ctl(ep, EPOLL_CTL_DEL, pd->fd, &e);
    }
}

/* Break a blocking epoll_wait (any thread; async-signal-safe). Coalesced:
 * one write until the poller consumes it. */
static inline void netpoll_break(void) {
    if (ld_acq_i32(&gc_np.epfd) < 0) return;
    if (cas_u32(&gc_np.wakesig, 0, 1)) {
        uint64_t one = 1;
        ssize_t r = write(gc_np.evfd, &one, sizeof one);
        (void)r;
    }
}

/* One event for the descriptor tagged `tag` (seq << 32 | index): unblock
 * the slots it reports, appending the Gs won to gs[ng...]; returns the new
 * count. A tag whose seq no longer matches (the descriptor was freed since,
 * maybe reused for another fd) is a late event: dropped. */
static inline int netpoll_dispatch(uint64_t tag, uint32_t ev, void **gs, int ng) {
    gc_pollfd *pd = pd_by_index((uint32_t)tag);
    if (pd == NULL || __atomic_load_n(&pd->seq, __ATOMIC_ACQUIRE) != (uint32_t)(tag >> 32))
        return ng;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            st_rel_i32(&pd->rhup, 1);
        void *g = pd_unblock(pd, 'r', 1);
        if (g) gs[ng++] = g;
    }
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        void *g = pd_unblock(pd, 'w', 1);
        if (g) gs[ng++] = g;
    }
    return ng;
}

/* One epoll_wait (timeout_ms: 0 polls, -1 blocks) and the unblocking of
 * every slot it reports. The Gs won are stored in gs (room for 2*maxev).
 * Caller holds gc_np.pollmu. Returns the number of Gs (0 on EINTR). */
#define GC_NETPOLL_MAXEV 128
static inline int netpoll_wait(int timeout_ms, void **gs) {
    struct epoll_event evs[GC_NETPOLL_MAXEV];
    int ng = 0;
    int n = epoll_wait(ld_acq_i32(&gc_np.epfd), evs, GC_NETPOLL_MAXEV, timeout_ms);
    add_rlx_i64(&gc_np.npolls, 1);
    for (int i = 0; i < n; i++) {
        uint64_t tag = evs[i].data.u64;
        uint32_t ev = evs[i].events;
        if (tag == GC_EVFD_TAG) {
            uint64_t v;
            ssize_t r = read(gc_np.evfd, &v, sizeof v);
            (void)r;
            st_rel_u32(&gc_np.wakesig, 0);
            continue;
        }
        ng = netpoll_dispatch(tag, ev, gs, ng);
    }
    add_rlx_i64(&gc_np.nready, ng);
    return ng;
}

/* A fork child: the parent's epoll instance is shared with it; take a
 * fresh one on first use. Descriptors keep their fds and re-register
 * (epgen no longer matches); waiters were the parent's goroutines. */
static inline void netpoll_after_fork_child(void) {
    if (gc_np.epfd >= 0) close(gc_np.epfd);
    if (gc_np.evfd >= 0) close(gc_np.evfd);
    gc_np.epfd = -1;
    gc_np.evfd = -1;
    gc_np.initlock.key = 0;
    gc_np.pollmu.key = 0;
    gc_np.blocker = 0;
    gc_np.nwait = 0;
    gc_np.wakesig = 0;
    gc_np.lastpoll = 0;
    gc_pd_cachelock.key = 0;
    for (uint32_t c = 0; c < gc_pd_nchunks; c++)
        for (int i = 0; i < GC_PD_CHUNK; i++) {
            gc_pd_chunks[c][i].rg = PD_NIL;
            gc_pd_chunks[c][i].wg = PD_NIL;
            gc_pd_chunks[c][i].lock.key = 0;
        }
}

#endif
