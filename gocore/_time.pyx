# cython: language_level=3, freethreading_compatible=True
# gocore/_time.pyx - Go's time package on the scheduler's timer heap:
# sleep, after, tick, after_func, Timer, Ticker.
#
# Timers live in one heap owned by the scheduler (_sched.pyx, csrc/
# gocore_timer.h): no thread per timer. An idle M sleeps exactly until the
# earliest deadline; busy Ms fire due timers between goroutines.
#
# Ownership: a gc_timer is embedded in its owner. `sleep` parks its G with
# the timer queued; the awaitable lives in the G's frame, so it outlives its
# stay in the heap (teardown removes it via _cancel). A Timer or Ticker holds
# one reference to itself while it is queued (taken by whoever queues it,
# dropped by whoever removes it: stop(), reset(), the firing M, or a sweep),
# so a Timer whose channel someone still holds, or an after_func, fires even
# if the Timer object itself is dropped. As in Go 1.23, a timer nothing can
# reach any more (the heap's reference is the Timer's only one, and the
# Timer's the channel's only one) is dropped by timer_sweep: Timer creation
# runs it once the heap has doubled since the last one (amortised O(1)).

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF
from libc.stdint cimport int32_t, int64_t, uint32_t
from cpython.object cimport PyTypeObject
from libc.math cimport isnan

from gocore._includes.atomic cimport ld_acq_i32, st_rel_i32, cas_i32
from gocore._includes.futex cimport gc_mutex, gc_mutex_trylock, gc_mutex_lock_slow, gc_mutex_unlock
from gocore._includes.config cimport GOCORE_DEBUG, gc_dbg_add, gc_dbg_ctr, GC_DBG_TIMER_REFS
from gocore._includes.timer cimport gc_timer, TK_READY_G, TK_PYOBJ
from gocore._includes.pytype cimport gc_internal_type
from gocore._sched cimport (G, getg_or_none, gopark_async, check_wake, park_sentinel,
                            runtime_nanotime, in_bubble,
                            goroutine_closed_outside,
                            runtime_ensure_started, timer_lock, timer_add_locked,
                            timer_modify_locked,
                            timer_del_locked, timer_unlock, timer_unlock_cb, timer_sweep,
                            dbg_counters,
                            G_ASYNC, W_SLEEP, WAKE_NORMAL)
from gocore._chan cimport Chan, close_then_throw

import time as _pytime

cdef object PARK = park_sentinel()

if GOCORE_DEBUG:
    gc_dbg_ctr = dbg_counters()     # count the heap's Timer references in _sched's counters
cdef object _monotonic = _pytime.monotonic

cdef int64_t MAX_NS = 9_000_000_000_000_000_000    # ~285 years: "never" without overflow


cpdef double _now():
    """The timers' clock in seconds: time.monotonic(), or inside a synctest
    bubble (gocore.testing.synctest) its fake clock. What timer channels
    send; context deadlines are measured on it."""
    if in_bubble():
        return runtime_nanotime() / 1e9
    return _monotonic()


cdef int64_t duration_ns(object d, str what) except? -1:
    """Seconds (int or float) to nanoseconds, clamped; TypeError/ValueError
    for bad input."""
    cdef double f
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        raise TypeError(f"{what} needs a duration in seconds (int or float), got {type(d).__name__}")
    f = d
    if isnan(f):
        raise ValueError(f"{what}: duration is NaN")
    if f <= 0:
        return 0
    if f >= 9e9:
        return MAX_NS
    return <int64_t>(f * 1e9)


cdef inline int64_t deadline_after(int64_t ns) noexcept:
    # the timers' clock: nanotime(), or a synctest bubble's fake clock
    cdef int64_t now = runtime_nanotime()
    if ns >= MAX_NS - now:
        return MAX_NS
    return now + ns


@cython.no_gc
@cython.freelist(32)
cdef class _Sleep:
    """The awaitable behind `await sleep(d)`: awaited once, by one goroutine
    (DESIGN §1). `state` goes 0 (new) -> 1 (claimed: the claimer's timer
    queued, or about to be) -> 2 (done) only: the CAS from 0 lets exactly
    one goroutine claim it, also when two threads of a free-threaded build
    race; anyone else awaiting it gets RuntimeError at once and leaves the
    claimer's sleep alone."""
    cdef gc_timer t
    cdef int64_t ns
    cdef int32_t state
    cdef G gp            # the claimer, set once state is 1

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        cdef G gp
        cdef int32_t st = ld_acq_i32(&self.state)
        if st == 0:
            if self.ns <= 0:
                if not cas_i32(&self.state, 0, 2):
                    raise_reused()
                raise StopIteration
            gp = getg_or_none()
            if gp is None or gp.kind != G_ASYNC:
                raise RuntimeError("await sleep() outside a gocore goroutine; "
                                   "plain threads and sync goroutines use time.sleep()")
            if not cas_i32(&self.state, 0, 1):
                raise_reused()
            self.gp = gp
            self.t.kind = TK_READY_G
            self.t.arg = <void *>gp
            self.t.period = 0
            timer_lock()
            self.t.when = deadline_after(self.ns)
            gp.park_claim = 0
            if timer_add_locked(&self.t) < 0:
                timer_unlock()
                st_rel_i32(&self.state, 2)
                raise MemoryError()
            gopark_async(gp, timer_unlock_cb, NULL, W_SLEEP, self)
            return PARK
        gp = getg_or_none()
        if st != 1 or gp is not self.gp:
            raise_reused()
        # the claimer, woken: by its timer, or early (closing, deadlock)
        st_rel_i32(&self.state, 2)
        if gp.wake_flags != WAKE_NORMAL:
            sleep_cancel(self)
            check_wake(gp)
        self.gp = None
        raise StopIteration

    def _cancel(self):
        sleep_cancel(self)

    def close(self):
        """The awaiting coroutine is closed while asleep on us: from outside
        (issue 14 item 17) the goroutine ends; its timer goes."""
        if ld_acq_i32(&self.state) != 1:
            return
        sleep_cancel(self)
        st_rel_i32(&self.state, 2)
        if self.gp is not None:
            goroutine_closed_outside(<PyObject *>self.gp)
        self.gp = None

    def throw(self, typ, val=None, tb=None):
        """As close(), then the exception goes on (close_then_throw)."""
        return close_then_throw(self, typ, val, tb)


cdef void sleep_cancel(_Sleep s) noexcept:
    """Remove s's timer if queued. (A function, not a cdef method: _Sleep
    has no vtable, so that it stays 80 bytes, one pymalloc size class.)"""
    if ld_acq_i32(&s.state) == 0:
        return
    timer_lock()
    timer_del_locked(&s.t)              # no-op unless queued (heap_index >= 0)
    timer_unlock()


cdef int raise_reused() except -1:
    raise RuntimeError("gocore: a sleep() awaitable was awaited twice, or by two "
                       "goroutines; call sleep(d) for each await")


def sleep(d):
    """`await sleep(seconds)`: park this goroutine for at least d seconds.
    d <= 0 returns at once (as Go). Each call's awaitable is awaited once."""
    cdef _Sleep s = _Sleep.__new__(_Sleep)
    s.ns = duration_ns(d, "sleep()")
    s.t.heap_index = -1             # not queued (sleep_cancel may look before the claim)
    return s

gc_internal_type(_Sleep)        # built by sleep() alone (csrc/gocore_pytype.h)


cdef extern from *:
    """
    /* Is o referenced by its caller's reference alone? Exact under the GIL.
     * Free-threaded builds: only if o is owned by this thread with one local
     * reference and no shared ones (CPython's own uniqueness test); reading
     * another thread's counts could be stale, so those say "not unique". */
    static inline int gc_obj_unique(PyObject *o) {
    #ifdef Py_GIL_DISABLED
        return _Py_IsOwnedByCurrentThread(o) && o->ob_ref_local == 1
            && _Py_atomic_load_ssize_relaxed(&o->ob_ref_shared) == 0;
    #else
        return Py_REFCNT(o) == 1;
    #endif
    }
    static inline PyTypeObject *gc_obj_type(PyObject *o) { return Py_TYPE(o); }
    """
    bint gc_obj_unique(PyObject *o) noexcept nogil
    PyTypeObject *gc_obj_type(PyObject *o) noexcept nogil


cdef inline void mu_lock(gc_mutex *mu) noexcept:
    """Requires GIL (waits with it released, as timer_lock)."""
    if not gc_mutex_trylock(mu):
        with nogil:
            gc_mutex_lock_slow(mu)


cdef class Timer:
    """Go's time.Timer: after d seconds, sends time.monotonic() on .c (a
    channel of capacity 1), or runs fn in its own goroutine (after_func).

    Go 1.23's rules: once stop() or reset() returns, no value from before
    it is received from .c (one already buffered is discarded, a firing in
    progress is dropped); and a timer that nothing but the heap can reach
    (neither the Timer nor its channel referenced, no fn) is collectable."""
    # t.when, t.heap_index: timerlock. t.seq changes under both mu and
    # timerlock (stop/reset): run_timers reads it under timerlock, a firing
    # under mu. `pending`: under mu. Lock order: mu, then timerlock or the
    # channel's lock (never both at once: timerlock comes after channel locks).
    cdef gc_timer t
    cdef gc_mutex mu        # orders stop()/reset() against a firing of this timer
    cdef bint pending       # armed, and its value not yet delivered
    cdef readonly Chan c
    cdef object fn

    def __cinit__(self, *args, **kwargs):
        self.t.heap_index = -1          # not queued, even if __init__ never runs
        self.t.kind = TK_PYOBJ
        self.t.arg = <void *>self

    def __init__(self, d, fn=None):
        cdef int64_t ns = duration_ns(d, "Timer()")
        if fn is not None and not callable(fn):
            raise TypeError("after_func(d, fn): fn must be callable")
        self.fn = fn
        self.c = Chan(1)
        runtime_ensure_started()
        timer_queue(self, ns, 0, False)

    def stop(self):
        """Prevent the timer from firing. True if it was pending (stopped
        here: queued, firing, or fired with its value not yet received -
        that value is discarded), False if its value was received or it had
        been stopped already."""
        cdef bint was, removed
        mu_lock(&self.mu)
        timer_lock()
        removed = timer_del_locked(&self.t)
        self.t.seq += 1                 # a firing already popped is stale
        timer_unlock()
        was = self.pending
        self.pending = False
        try:
            if self.fn is None and self.c is not None and self.c.try_recv() is not None:
                was = True
        finally:
            gc_mutex_unlock(&self.mu)
            if removed:
                Py_DECREF(self)
                gc_dbg_add(GC_DBG_TIMER_REFS, -1)
        return was

    def reset(self, d):
        """Fire after d seconds from now instead. True if it was pending
        (as stop()); a value from before is discarded."""
        return timer_queue(self, duration_ns(d, "Timer.reset()"), 0, True)

    def _fire(self, uint32_t seq):
        """Called by the M that popped this timer, seq being t.seq then."""
        cdef object fn
        mu_lock(&self.mu)
        try:
            if self.t.seq != seq or not self.pending:
                return                  # a stop() or reset() came first
            if self.t.period == 0:
                self.pending = False
            fn = self.fn
            if fn is None:
                self.c.try_send(_now())
        finally:
            gc_mutex_unlock(&self.mu)
        if fn is not None:
            from gocore._sched import go
            go(fn)


cdef bint timer_queue(Timer self, int64_t ns, int64_t period, bint drain) except -1:
    """(Re)queue with a new deadline; return whether the timer was pending
    (queued, or fired with its value not yet received). drain: discard a
    value already in .c (reset). (A function, not a cdef method: no vtable
    in Timer objects.)"""
    cdef bint was, removed
    cdef int r
    if self.c is None:
        raise TypeError(f"{type(self).__name__}.__init__() was not called")
    # The heap's reference is taken before the timer is queued: once
    # timerlock is released an M may fire it and drop that reference.
    Py_INCREF(self)
    mu_lock(&self.mu)
    timer_lock()
    removed = self.t.heap_index >= 0    # the heap holds a reference already
    self.t.seq += 1                     # a firing already popped is stale
    self.t.period = period
    r = timer_modify_locked(&self.t, deadline_after(ns))
    timer_unlock()
    was = self.pending
    self.pending = r >= 0
    try:
        # under mu: the new deadline's firing cannot slip in before the drain
        if drain and self.fn is None and self.c.try_recv() is not None:
            was = True
    finally:
        gc_mutex_unlock(&self.mu)
        if r < 0:
            Py_DECREF(self)             # unused
        if removed:
            Py_DECREF(self)             # the heap held one already
            gc_dbg_add(GC_DBG_TIMER_REFS, -1)
    if r < 0:
        raise MemoryError()
    gc_dbg_add(GC_DBG_TIMER_REFS, 1)
    if not removed and self.fn is None:
        timer_sweep(timer_unreachable)  # one more timer: maybe drop the dead
    return was


cdef int timer_unreachable(gc_timer *t) noexcept:
    """timer_sweep's predicate; timerlock and the GIL are held. Dead: a
    plain Timer or Ticker with no fn whose only reference is the heap's and
    whose channel's only reference is the Timer's. Nobody can receive its
    value or stop it, so dropping it is invisible (Go 1.23 collects it).
    Subclasses are left alone (their _fire may do more)."""
    cdef PyObject *o
    cdef PyTypeObject *tp
    if t.kind != TK_PYOBJ:
        return 0
    o = <PyObject *>t.arg
    tp = gc_obj_type(o)
    if tp != <PyTypeObject *>Timer and tp != <PyTypeObject *>Ticker:
        return 0
    if not gc_obj_unique(o):
        return 0
    if (<Timer>o).fn is not None:
        return 0
    return gc_obj_unique(<PyObject *>(<Timer>o).c)


cdef class Ticker(Timer):
    """Go's time.Ticker: sends time.monotonic() on .c every d seconds; a slow
    receiver misses ticks (the channel holds one) rather than queueing them."""

    def __init__(self, d):
        cdef int64_t ns = duration_ns(d, "Ticker()")
        if ns <= 0:
            raise ValueError("Ticker(d) needs d > 0 (non-positive interval for Ticker)")
        self.c = Chan(1)
        runtime_ensure_started()
        timer_queue(self, ns, ns, False)

    def stop(self):
        """Stop the ticks; a tick not yet received is discarded. Returns
        None, as Go's Ticker.Stop."""
        Timer.stop(self)

    def reset(self, d):
        """Tick every d seconds from now on; a tick not yet received is
        discarded."""
        cdef int64_t ns = duration_ns(d, "Ticker.reset()")
        if ns <= 0:
            raise ValueError("Ticker.reset(d) needs d > 0 (non-positive interval for Ticker)")
        timer_queue(self, ns, ns, True)


def after(d):
    """A channel that receives time.monotonic() once, after d seconds."""
    return Timer(d).c


def tick(d):
    """A channel that receives time.monotonic() every d seconds (d > 0)."""
    return Ticker(d).c


def after_func(d, fn):
    """Run fn in its own goroutine after d seconds; returns the Timer."""
    if not callable(fn):
        raise TypeError("after_func(d, fn): fn must be callable")
    return Timer(d, fn)
