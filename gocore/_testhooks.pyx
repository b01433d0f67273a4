# cython: language_level=3
# cython: freethreading_compatible=True
# gocore/_testhooks.pyx - the runtime's test hooks (Go's export_test.go).
# Not public API: the tests import it as gocore._testhooks; nothing else
# should. It owns nothing of the running runtime and changes nothing in it:
#
#   * Procs, runq_stress(), runq_empty_stress(): gocore_runq.h's ring compiled at 4 slots
#     (csrc/gocore_testhooks.h) on bare Ps that are not part of the running
#     scheduler, to test put/get/steal/overflow directly.
#   * chan_waiters(), wait_blocked(): how many goroutines or threads are
#     parked on a channel (its recvq/sendq, read under the channel's lock),
#     and an awaitable that waits until enough are - the tests' replacement
#     for "yield a few times and hope the other goroutine has parked".
#   * parked(), started(), alive(), wait_parked(): the same from the goroutine table
#     (wait reason, start function), for waits on anything but a channel.
#   * debug_counters(): the debug build's balance counters.
#
# Include order matters here: gocore_testhooks.h must be the first header to
# bring in gocore_runq.h (it fixes the ring's size first); it stops the build
# with #error otherwise. Nothing cimported below includes gocore_runq.h.

from libc.stdint cimport uint32_t, int32_t, int64_t

cdef extern from "gocore_testhooks.h" nogil:
    enum: TH_RUNQ_CAP
    ctypedef struct gc_p:
        uint32_t runqhead
        uint32_t runqtail
        void *runnext
    ctypedef struct gc_gqueue:
        uint32_t size
    ctypedef struct th_procs:
        gc_p *ps
        int32_t nprocs
    int th_procs_init(th_procs *tp, int32_t nprocs)
    void th_procs_free(th_procs *tp)
    int th_runq_put(th_procs *tp, int32_t p, void *gp, bint next)
    void *th_globrunq_get(th_procs *tp, int32_t p, uint32_t max)
    uint32_t th_global_len(th_procs *tp)
    void *th_ring_at(th_procs *tp, int32_t p, uint32_t i)
    uint32_t runq_len(gc_p *pp)
    bint runq_empty(gc_p *pp)
    void *runq_get(gc_p *pp)
    void *runq_steal(gc_p *pp, gc_p *victim, bint steal_runnext)
    ctypedef struct th_stress:
        th_procs procs
        int32_t *gs
        uint32_t ngs
        int64_t deadline_ns
        int32_t start
        int32_t errors
        int64_t taken
        int64_t owner_gets, global_gets, steals, stolen, thief_gets
    int th_stress_run(th_stress *st, int32_t nthieves)
    ctypedef struct th_empty:
        th_procs procs
        int64_t spurious
        int32_t errors
    int th_empty_run(th_empty *e, int32_t iters)

from libc.stdlib cimport calloc, free

from gocore._includes.atomic cimport ld_acq_u32, ld_acq_i64, cpu_relax
from gocore._includes.clock cimport nanotime
from gocore._includes.config cimport (GOCORE_DEBUG, GC_DBG_G_OBJECTS, GC_DBG_CHAN_WAITERS,
                                      GC_DBG_SYNC_WAITERS, GC_DBG_TIMER_REFS)
from gocore._includes.futex cimport (gc_mutex, gc_mutex_trylock, gc_mutex_lock,
                                     gc_mutex_lock_slow, gc_mutex_unlock)
from gocore._sched cimport dbg_counters
from gocore._chan cimport Chan
from gocore._includes.waitq cimport gc_waitlink, gc_waitq

import inspect
import os
import time

from gocore import _sched

DEBUG = bool(GOCORE_DEBUG)
BARE_RUNQ_CAP = TH_RUNQ_CAP        # the ring size of Procs (the runtime's: _sched_counters()["runq_cap"])

# Waits give up (AssertionError) after this long; valgrind runs ~30x slower.
DEFAULT_TIMEOUT = 10.0 * (20 if os.environ.get("GOCORE_VALGRIND") else 1)


# ---------------------------------------------------------------- bare Ps

cdef class Procs:
    """nprocs bare Ps (4-slot rings, runnext) and a global queue, detached
    from the running scheduler. The Gs are stand-ins numbered 0..ngs-1;
    `put(p, g)` puts G g on P p's ring, `get(p)` / `steal(p, victim)` return
    a G number or None. For one thread at a time (a per-object lock makes
    concurrent calls safe but serial); runq_stress() is the concurrent test.

    The ring's own rules are checked as bad input: a G already queued, a
    steal into a P whose ring is not empty (runq_steal's precondition), a P
    stealing from itself."""
    cdef th_procs procs
    cdef int32_t *gs          # the G stand-ins; gs[i] = 1 while G i is on a queue
    cdef uint32_t ngs
    cdef gc_mutex mu          # serialises the methods (free-threaded builds)
    cdef bint ready

    def __cinit__(self, int nprocs=2, int ngs=64):
        if nprocs < 1 or nprocs > 64:
            raise ValueError(f"Procs: nprocs must be 1..64, got {nprocs}")
        if ngs < 1 or ngs > (1 << 24):
            raise ValueError(f"Procs: ngs must be 1..{1 << 24}, got {ngs}")
        self.gs = <int32_t *>calloc(ngs, sizeof(int32_t))
        if self.gs == NULL or th_procs_init(&self.procs, nprocs) < 0:
            free(self.gs)
            self.gs = NULL
            raise MemoryError()
        self.ngs = ngs
        self.ready = True

    def __dealloc__(self):
        if self.ready:
            th_procs_free(&self.procs)
        free(self.gs)

    @property
    def nprocs(self):
        return self.procs.nprocs

    cdef int check_p(self, int p) except -1:
        if p < 0 or p >= self.procs.nprocs:
            raise IndexError(f"no P {p} (there are {self.procs.nprocs})")
        return 0

    cdef long g_index(self, void *gp) noexcept:
        """The G number of a pointer taken from a queue, marked off-queue;
        -1 for NULL, -2 for a pointer that is no queued G (a broken ring).
        Caller holds self.mu."""
        cdef int32_t *g = <int32_t *>gp
        if g == NULL:
            return -1
        if g < self.gs or g >= self.gs + self.ngs or g[0] != 1:
            return -2
        g[0] = 0
        return <long>(g - self.gs)

    cdef object result(self, long g):
        if g == -2:
            raise AssertionError("a run queue returned a pointer that is no queued G")
        return None if g == -1 else g

    def put(self, int p, int g, bint next=False):
        """runq_put (owner of P p only - the caller plays that role). Returns
        whether P p's ring is non-empty afterwards; overflow goes to the
        global queue."""
        cdef int r
        self.check_p(p)
        if g < 0 or <uint32_t>g >= self.ngs:
            raise ValueError(f"no G {g} (there are {self.ngs})")
        gc_mutex_lock(&self.mu)
        if self.gs[g] != 0:
            gc_mutex_unlock(&self.mu)
            raise ValueError(f"G {g} is already on a run queue")
        self.gs[g] = 1
        r = th_runq_put(&self.procs, p, &self.gs[g], next)
        gc_mutex_unlock(&self.mu)
        return bool(r)

    def get(self, int p):
        """runq_get: runnext first, then the ring's head; None when empty."""
        cdef long g
        self.check_p(p)
        gc_mutex_lock(&self.mu)
        g = self.g_index(runq_get(&self.procs.ps[p]))
        gc_mutex_unlock(&self.mu)
        return self.result(g)

    def steal(self, int p, int victim, bint runnext=True):
        """runq_steal: P p takes half of victim's ring (runnext too if the
        ring is empty and runnext) and returns one of them; the rest are on
        p's ring. P p's ring must be empty."""
        cdef long g
        self.check_p(p)
        self.check_p(victim)
        if p == victim:
            raise ValueError("a P does not steal from itself")
        gc_mutex_lock(&self.mu)
        if runq_len(&self.procs.ps[p]) != 0:
            gc_mutex_unlock(&self.mu)
            raise ValueError(f"P {p} steals only with an empty ring")
        g = self.g_index(runq_steal(&self.procs.ps[p], &self.procs.ps[victim], runnext))
        gc_mutex_unlock(&self.mu)
        return self.result(g)

    def global_get(self, int p, int max=0):
        """globrunq_get: moves a batch from the global queue to P p's ring
        and returns one more G (None if the global queue is empty)."""
        cdef long g
        self.check_p(p)
        if max < 0:
            raise ValueError("max must be >= 0")
        gc_mutex_lock(&self.mu)
        g = self.g_index(th_globrunq_get(&self.procs, p, <uint32_t>max))
        gc_mutex_unlock(&self.mu)
        return self.result(g)

    def ring(self, int p):
        """The Gs on P p's ring, head first (runnext not included)."""
        cdef uint32_t i, n
        cdef void *gps[TH_RUNQ_CAP]
        self.check_p(p)
        gc_mutex_lock(&self.mu)
        n = runq_len(&self.procs.ps[p])
        for i in range(n):
            gps[i] = th_ring_at(&self.procs, p, i)
        gc_mutex_unlock(&self.mu)
        return [<long>((<int32_t *>gps[i]) - self.gs) for i in range(n)]

    def runnext(self, int p):
        """The G in P p's runnext slot, or None."""
        cdef void *gp
        self.check_p(p)
        gc_mutex_lock(&self.mu)
        gp = self.procs.ps[p].runnext
        gc_mutex_unlock(&self.mu)
        return None if gp == NULL else <long>((<int32_t *>gp) - self.gs)

    def runq_len(self, int p):
        self.check_p(p)
        return runq_len(&self.procs.ps[p])

    def empty(self, int p):
        """runq_empty: no G on the ring nor in runnext."""
        self.check_p(p)
        return bool(runq_empty(&self.procs.ps[p]))

    def global_len(self):
        return th_global_len(&self.procs)

    def queued(self):
        """The G numbers currently on some queue (by the hook's bookkeeping)."""
        return [i for i in range(self.ngs) if self.gs[i]]


def runq_stress(int thieves=3, int ngs=100000, double timeout=30.0):
    """The ring under concurrent stealing (csrc/gocore_testhooks.h): one
    owner thread puts ngs Gs on P0 (and takes some back), `thieves` threads
    each own a P and steal from the others, everyone also takes from the
    global queue. Runs without the GIL on real threads. Returns a dict:
    `ok` (every G came out exactly once), `missing` and `duplicates` (the
    first few G numbers of each), `timed_out`, and how the Gs came out
    (owner_gets, thief_gets, steals, stolen, global_gets)."""
    cdef th_stress *st
    cdef int rc
    cdef uint32_t i
    if thieves < 1 or thieves > 63:
        raise ValueError(f"runq_stress: thieves must be 1..63, got {thieves}")
    if ngs < 1 or ngs > (1 << 24):
        raise ValueError(f"runq_stress: ngs must be 1..{1 << 24}, got {ngs}")
    if not timeout > 0:
        raise ValueError("runq_stress: timeout must be > 0")
    st = <th_stress *>calloc(1, sizeof(th_stress))
    if st == NULL:
        raise MemoryError()
    st.gs = <int32_t *>calloc(ngs, sizeof(int32_t))
    if st.gs == NULL or th_procs_init(&st.procs, thieves + 1) < 0:
        free(st.gs)
        free(st)
        raise MemoryError()
    st.ngs = ngs
    try:
        st.deadline_ns = nanotime() + <int64_t>(timeout * 1e9)
        with nogil:
            rc = th_stress_run(st, thieves)
        if rc < 0:
            raise OSError("runq_stress: could not start its threads")
        missing, dups = [], []
        for i in range(st.ngs):
            if st.gs[i] == 0 and len(missing) < 10:
                missing.append(i)
            elif st.gs[i] > 1 and len(dups) < 10:
                dups.append(i)
        nmissing = sum(1 for i in range(st.ngs) if st.gs[i] == 0)
        return {
            "ok": st.errors == 0 and nmissing == 0 and not dups and st.taken == st.ngs,
            "missing": missing,
            "nmissing": nmissing,
            "duplicates": dups,
            "errors": st.errors,
            "taken": st.taken,
            "timed_out": st.taken < st.ngs,
            "owner_gets": st.owner_gets,
            "thief_gets": st.thief_gets,
            "steals": st.steals,
            "stolen": st.stolen,
            "global_gets": st.global_gets,
        }
    finally:
        th_procs_free(&st.procs)
        free(st.gs)
        free(st)


def runq_empty_stress(int iters=100000):
    """runq_empty under a concurrent owner (csrc/gocore_testhooks.h): the P
    always holds a G while a checker thread asks whether it is empty and the
    owner moves Gs between runnext and the ring. Returns (spurious, errors):
    how many times runq_empty said "empty" wrongly, and gets that found no G."""
    cdef th_empty *e
    cdef int rc
    if iters < 1 or iters > (1 << 30):
        raise ValueError(f"runq_empty_stress: iters must be 1..{1 << 30}, got {iters}")
    e = <th_empty *>calloc(1, sizeof(th_empty))
    if e == NULL:
        raise MemoryError()
    if th_procs_init(&e.procs, 1) < 0:
        free(e)
        raise MemoryError()
    try:
        with nogil:
            rc = th_empty_run(e, iters)
        if rc < 0:
            raise OSError("runq_empty_stress: could not start its thread")
        return e.spurious, e.errors
    finally:
        th_procs_free(&e.procs)
        free(e)


# ---------------------------------------------------------------- channel waiters

cdef int waitq_count(gc_waitq *q) noexcept nogil:
    """Caller holds the channel's lock. The goroutines or threads parked on
    one of a channel's wait queues: linked waiters whose G no one has won
    yet (park_claim still 0), each G counted once (a select may wait on one
    channel with several cases). A waiter is linked under the lock before
    its G parks and the lock is released only once it has stopped (the
    park protocol of _sched.pxd), so linked and unclaimed means parked.
    The one place that knows the waiter list's layout."""
    cdef gc_waitlink *sg = q.first
    cdef gc_waitlink *e
    cdef int n = 0
    while sg != NULL:
        if ld_acq_u32(sg.claim) == 0:
            e = q.first
            while e != sg and not (e.g == sg.g and ld_acq_u32(e.claim) == 0):
                e = e.next
            if e == sg:
                n += 1
        sg = sg.next
    return n


def chan_waiters(Chan ch not None):
    """(receivers, senders) parked on ch now: goroutines or threads."""
    cdef int r, s
    if ch.is_nil:
        raise ValueError("a nil channel has no wait queues (nothing parked there is observable)")
    if not gc_mutex_trylock(&ch.lock):
        with nogil:
            gc_mutex_lock_slow(&ch.lock)
    r = waitq_count(&ch.recvq)
    s = waitq_count(&ch.sendq)
    gc_mutex_unlock(&ch.lock)
    return r, s


cdef object _yield_round():
    """One round of a wait loop: let a thread waiting for the GIL take it,
    then gosched. A loop of gosched in Python code lets other threads run
    at its backward jump (the interpreter's eval-breaker check); this loop
    is compiled and would never do so, so an M that waits for the GIL to go
    on running its G (its P handed to this M meanwhile) would wait for as
    long as the loop lasts. Releasing the GIL hands it over if another
    thread asked for it, and costs a few hundred ns otherwise."""
    with nogil:
        cpu_relax()
    return _sched.gosched()


async def wait_blocked(Chan ch not None, int recv=0, int send=0, timeout=None):
    """Inside a lightweight goroutine: yield (gosched) until at least `recv`
    receivers and `send` senders are parked on ch; returns the counts.
    Raises AssertionError after `timeout` seconds (default DEFAULT_TIMEOUT)."""
    if recv < 0 or send < 0:
        raise ValueError("wait_blocked: recv and send must be >= 0")
    deadline = time.monotonic() + (DEFAULT_TIMEOUT if timeout is None else timeout)
    while True:
        r, s = chan_waiters(ch)
        if r >= recv and s >= send:
            return r, s
        if time.monotonic() > deadline:
            raise AssertionError(f"wait_blocked: wanted {recv} receiver(s) and {send} sender(s) "
                                 f"parked on the channel, {r} and {s} are after {timeout or DEFAULT_TIMEOUT}s")
        await _yield_round()


# ---------------------------------------------------------------- goroutines

def _matches(row, fn, reason):
    # row: _sched._goroutine_info()'s tuple (goid, kind, status, reason,
    # waited, coro, fn, is_main, thread_ident, is_current)
    if fn is not None and row[6] is not fn:
        return False
    if reason is not None and row[3] != reason and not row[3].startswith(reason + ","):
        return False
    return True


def parked(reason=None, fn=None):
    """Goroutines parked now (status waiting): with wait reason `reason`
    (as dump_goroutines() shows it: "chan receive", "select", "sleep",
    "sync.Mutex.Lock", "IO wait", ...) and/or started with function `fn`
    (`go(fn, ...)`), if given."""
    return sum(1 for row in _sched._goroutine_info()
               if row[2] == "waiting" and _matches(row, fn, reason))


def started(fn):
    """Goroutines started with `go(fn, ...)` that have begun to run (an
    async one's coroutine has run to its first suspension or further; a
    sync one runs on its thread) and not finished."""
    n = 0
    for row in _sched._goroutine_info():
        if row[6] is not fn or row[2] == "dead":
            continue
        coro = row[5]
        if row[8] != 0 or (coro is not None and not (
                inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED)):
            n += 1
    return n


def alive(fn):
    """Goroutines started with `go(fn, ...)` that have not finished."""
    return sum(1 for row in _sched._goroutine_info() if row[6] is fn and row[2] != "dead")


async def wait_parked(int n, reason=None, fn=None, timeout=None):
    """Inside a lightweight goroutine: yield until at least n goroutines
    are parked (see parked() for `reason` and `fn`); returns how many are.
    Raises AssertionError after `timeout` seconds."""
    if n < 0:
        raise ValueError("wait_parked: n must be >= 0")
    deadline = time.monotonic() + (DEFAULT_TIMEOUT if timeout is None else timeout)
    while True:
        k = parked(reason, fn)
        if k >= n:
            return k
        if time.monotonic() > deadline:
            raise AssertionError(f"wait_parked: wanted {n} goroutine(s) parked "
                                 f"(reason={reason!r}, fn={fn!r}), {k} are after "
                                 f"{timeout or DEFAULT_TIMEOUT}s; {_not_parked(reason, fn)}")
        await _yield_round()


def _not_parked(reason, fn):
    """wait_parked's failure report: the matching goroutines not parked
    (goid, status) and where the scheduler's work sits, for a CI log."""
    rows = [(row[0], row[3]) for row in _sched._goroutine_info()
            if row[2] != "waiting" and (fn is None or row[6] is fn)]
    import gocore
    m = gocore.metrics()
    keys = ("goroutines", "runq", "global_runq", "procs_idle", "threads", "threads_idle",
            "threads_spinning", "timers")
    return (f"not parked: {rows[:20]}{' ...' if len(rows) > 20 else ''}; "
            f"metrics: { {k: m[k] for k in keys if k in m} }")


# ---------------------------------------------------------------- debug counters

def debug_counters():
    """Debug builds: the balance counters of csrc/gocore_config.h as every
    compiled module updates them (read through _sched's dbg_counters()).
    Release builds: {} (the counters are compiled out)."""
    cdef int64_t *c
    if not GOCORE_DEBUG:
        return {}
    c = dbg_counters()
    return {
        "g_objects": ld_acq_i64(&c[GC_DBG_G_OBJECTS]),
        "chan_waiters": ld_acq_i64(&c[GC_DBG_CHAN_WAITERS]),
        "sync_waiters": ld_acq_i64(&c[GC_DBG_SYNC_WAITERS]),
        "timer_refs": ld_acq_i64(&c[GC_DBG_TIMER_REFS]),
    }
