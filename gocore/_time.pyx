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
# dropped by whoever removes it: stop(), reset() or the firing M), so an
# unreferenced running timer still fires, as in Go.

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF
from libc.stdint cimport int64_t
from libc.math cimport isnan

from gocore._includes.clock cimport nanotime
from gocore._includes.config cimport GOCORE_DEBUG, gc_dbg_add, gc_dbg_ctr, GC_DBG_TIMER_REFS
from gocore._includes.timer cimport gc_timer, TK_READY_G, TK_PYOBJ
from gocore._includes.pytype cimport gc_internal_type
from gocore._sched cimport (G, getg_or_none, gopark_async, check_wake, park_sentinel,
                            runtime_ensure_started, timer_lock, timer_add_locked,
                            timer_del_locked, timer_unlock, timer_unlock_cb, dbg_counters,
                            G_ASYNC, W_SLEEP, WAKE_NORMAL)
from gocore._chan cimport Chan

import time as _pytime

cdef object PARK = park_sentinel()

if GOCORE_DEBUG:
    gc_dbg_ctr = dbg_counters()     # count the heap's Timer references in _sched's counters
cdef object _monotonic = _pytime.monotonic

cdef int64_t MAX_NS = 9_000_000_000_000_000_000    # ~285 years: "never" without overflow


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
    cdef int64_t now = nanotime()
    if ns >= MAX_NS - now:
        return MAX_NS
    return now + ns


@cython.no_gc
@cython.freelist(32)
cdef class _Sleep:
    """The awaitable behind `await sleep(d)`."""
    cdef gc_timer t
    cdef int64_t ns
    cdef int state
    cdef G gp

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        cdef G gp
        if self.state == 0:
            if self.ns <= 0:
                raise StopIteration
            gp = getg_or_none()
            if gp is None or gp.kind != G_ASYNC:
                raise RuntimeError("await sleep() outside a gocore goroutine; "
                                   "plain threads and sync goroutines use time.sleep()")
            self.gp = gp
            self.t.kind = TK_READY_G
            self.t.arg = <void *>gp
            self.t.period = 0
            self.t.heap_index = -1
            timer_lock()
            self.t.when = deadline_after(self.ns)
            gp.park_claim = 0
            if timer_add_locked(&self.t) < 0:
                timer_unlock()
                raise MemoryError()
            gopark_async(gp, timer_unlock_cb, NULL, W_SLEEP, self)
            self.state = 1
            return PARK
        self.state = 2
        if self.gp.wake_flags != WAKE_NORMAL:
            self.cancel()
            check_wake(self.gp)
        self.gp = None
        raise StopIteration

    def _cancel(self):
        self.cancel()

    cdef void cancel(self):
        if self.state != 1 and self.state != 2:
            return
        timer_lock()
        timer_del_locked(&self.t)
        timer_unlock()


def sleep(d):
    """`await sleep(seconds)`: park this goroutine for at least d seconds.
    d <= 0 returns at once (as Go)."""
    cdef _Sleep s = _Sleep.__new__(_Sleep)
    s.ns = duration_ns(d, "sleep()")
    return s

gc_internal_type(_Sleep)        # built by sleep() alone (csrc/gocore_pytype.h)


cdef class Timer:
    """Go's time.Timer: after d seconds, sends time.monotonic() on .c (a
    channel of capacity 1), or runs fn in its own goroutine (after_func)."""
    cdef gc_timer t
    cdef readonly Chan c
    cdef object fn

    def __init__(self, d, fn=None):
        cdef int64_t ns = duration_ns(d, "Timer()")
        if fn is not None and not callable(fn):
            raise TypeError("after_func(d, fn): fn must be callable")
        self.fn = fn
        self.c = Chan(1)
        self.t.kind = TK_PYOBJ
        self.t.arg = <void *>self
        self.t.heap_index = -1
        self.t.period = 0
        runtime_ensure_started()
        self.queue(ns, 0)

    cdef bint queue(self, int64_t ns, int64_t period) except -1:
        """(Re)queue with a new deadline; return whether it was queued before."""
        cdef bint was
        if self.t.arg == NULL:      # Timer.__new__(Timer): __init__ never ran
            raise TypeError("Timer not initialised: make it with Timer(d), after_func() or Ticker(d)")
        # The heap's reference is taken before the timer is queued: once
        # timerlock is released an M may fire it and drop that reference.
        Py_INCREF(self)
        timer_lock()
        was = timer_del_locked(&self.t)
        self.t.when = deadline_after(ns)
        self.t.period = period
        if timer_add_locked(&self.t) < 0:
            timer_unlock()
            Py_DECREF(self)             # unused
            if was:
                Py_DECREF(self)         # the heap's, for the entry removed above
                gc_dbg_add(GC_DBG_TIMER_REFS, -1)
            raise MemoryError()
        timer_unlock()
        if was:
            Py_DECREF(self)             # the heap held one already
        else:
            gc_dbg_add(GC_DBG_TIMER_REFS, 1)
        return was

    def stop(self):
        """Prevent the timer from firing. True if it was pending (stopped
        here), False if it had already fired or been stopped."""
        cdef bint was
        if self.t.arg == NULL:      # never initialised (its heap_index is not -1): never queued
            return False
        timer_lock()
        was = timer_del_locked(&self.t)
        timer_unlock()
        if was:
            Py_DECREF(self)
            gc_dbg_add(GC_DBG_TIMER_REFS, -1)
        return was

    def reset(self, d):
        """Fire after d seconds from now instead. True if it was pending."""
        return self.queue(duration_ns(d, "Timer.reset()"), 0)

    def _fire(self):
        if self.fn is not None:
            from gocore._sched import go
            go(self.fn)
        else:
            self.c.try_send(_monotonic())


cdef class Ticker(Timer):
    """Go's time.Ticker: sends time.monotonic() on .c every d seconds; a slow
    receiver misses ticks (the channel holds one) rather than queueing them."""

    def __init__(self, d):
        cdef int64_t ns = duration_ns(d, "Ticker()")
        if ns <= 0:
            raise ValueError("Ticker(d) needs d > 0 (non-positive interval for Ticker)")
        self.c = Chan(1)
        self.t.kind = TK_PYOBJ
        self.t.arg = <void *>self
        self.t.heap_index = -1
        runtime_ensure_started()
        self.queue(ns, ns)

    def stop(self):
        """Stop the ticks. Returns None, as Go's Ticker.Stop."""
        Timer.stop(self)

    def reset(self, d):
        """Tick every d seconds from now on."""
        cdef int64_t ns = duration_ns(d, "Ticker.reset()")
        if ns <= 0:
            raise ValueError("Ticker.reset(d) needs d > 0 (non-positive interval for Ticker)")
        self.queue(ns, ns)


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
