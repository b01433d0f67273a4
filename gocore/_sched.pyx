# cython: language_level=3, freethreading_compatible=True
# gocore/_sched.pyx - the M:P:G scheduler (Go's proc.go): go, run, gosched,
# findrunnable, work stealing, wakep/startm/stopm, gopark/goready, the P
# hand-off of blocking calls, deadlock detection and run()'s teardown.
# Structures, invariants and the lock order: _sched.pxd and csrc/.
#
# One extension, one file per mechanism, `include`d below (as uvloop's
# loop.pyx includes its .pxi files): calls between them stay plain C calls.
#   _sched_g.pxi         G objects, allgs, the running G, gopark/goready
#   _sched_exec.pxi      running a G one step (coroutine or sync function), goexit
#   _sched_proc.pxi      Ps and Ms: idle lists, wakep/startm/stopm, the hand-off
#                        of blocking calls, findrunnable and stealing, the M loop
#   _sched_timers.pxi    the timer heap, run_timers, timer kicks
#   _sched_sysmon.pxi    the monitor thread: retaking Ps stuck in one G
#   _sched_deadlock.pxi  checkdead and the main goroutine's retry/suspect path
#   _sched_run.pxi       run(), runtime start/teardown, panics, sync goroutines
#                        that outlive run(), the background runtime's hand-over
#   _sched_fork.pxi      os.fork(): the child starts with no runtime
#   _sched_api.pxi       go(), gosched(), gomaxprocs() and the other public
#                        functions; stats and goroutine inspection
#   _sched_debug.pxi     debug builds' balance counters
#   _netpoll.pxi         the network poller's scheduler side

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XDECREF
from cpython.pystate cimport PyThreadState_Get
from libc.stdint cimport uint32_t, int32_t, int64_t
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memset

from gocore._includes.atomic cimport *
from gocore._includes.futex cimport *
from gocore._includes.clock cimport nanotime, nanotime_coarse, gc_sleep_us
from gocore._includes.config cimport gc_throw, GOCORE_RUNQ_CAP
from gocore._includes.config cimport (GOCORE_DEBUG, gc_assert_msg, gc_dbg_add, gc_dbg_ctr,
                                      GC_DBG_N, GC_DBG_G_OBJECTS, GC_DBG_CHAN_WAITERS,
                                      GC_DBG_SYNC_WAITERS, GC_DBG_TIMER_REFS)
from gocore._includes.runq cimport *
from gocore._includes.schedc cimport *
from gocore._includes.timer cimport *
from gocore._includes.pytype cimport gc_internal_type
from gocore._includes.signal cimport *
from gocore._includes.pyapi cimport (PySendResult, PYGEN_RETURN, PYGEN_ERROR, PYGEN_NEXT,
                                     PyIter_Send, PyCoro_CheckExact, PyErr_CheckSignals,
                                     PyThread_start_new_thread, PyThread_get_thread_ident,
                                     PyMethodDef, METH_FASTCALL, METH_KEYWORDS,
                                     PyCFunction_NewEx, PyTuple_New, PyTuple_SET_ITEM,
                                     gc_pyfunc_is_async, gc_error_set)

import os
import signal
import sys
import threading
# signal.getsignal's C core: ~20 ns a signal, where signal.valid_signals()
# and the enum-converting signal.getsignal() cost ~80 us per run()
from _signal import getsignal as raw_getsignal

# ---------------------------------------------------------------- shared state
#
# The state every mechanism file reads. A mechanism's own state is declared
# at the top of its file, with its protocol.

cdef extern from "gocore_schedstate.h":
    # per thread: the M this thread is (NULL for plain threads) and the G it
    # runs now (borrowed); only their own thread reads or writes them
    gc_m *gc_tls_m
    PyObject *gc_tls_g
    # the one scheduler, reached through `sched`: each field of gc_sched says
    # whether sched.lock guards it or it is atomic (csrc/gocore_sched.h)
    gc_sched gc_sched_
    void *TIMERS_DUE            # findrunnable: "timers are due", never a G
    int64_t gc_dbg_store[]      # debug builds: the counters' storage (_sched_debug.pxi)
    void gc_g_install_dealloc_hook(object type, int (*counted)(PyObject *) noexcept)

cdef gc_sched *sched = &gc_sched_

WAIT_REASONS = {
    W_NONE: "running", W_CHAN_RECV: "chan receive", W_CHAN_SEND: "chan send",
    W_SELECT: "select", W_SELECT_NO_CASES: "select (no cases)",
    W_CHAN_NIL: "chan receive (nil chan)", W_SLEEP: "sleep",
    W_MUTEX: "sync.Mutex.Lock", W_RWMUTEX_R: "sync.RWMutex.RLock",
    W_RWMUTEX_W: "sync.RWMutex.Lock", W_WAITGROUP: "sync.WaitGroup.Wait",
    W_ONCE: "sync.Once.Do", W_SEMAPHORE: "semacquire", W_SYNC_COND: "sync.Cond.Wait",
    W_CHAN_NIL_SEND: "chan send (nil chan)", W_IO_READ: "IO wait", W_IO_WRITE: "IO wait",
    W_SYNCTEST_WAIT: "synctest.Wait",
}


class DeadlockError(RuntimeError):
    """All goroutines are asleep: the waiting call can never complete.
    `.dump` is the dump_goroutines() text taken where it was raised (the
    goroutines found asleep); a note shows it in tracebacks, as Go prints
    the goroutines at a deadlock. `.goroutines` is the same as data: a list
    of dicts, dump_goroutines(format="json")'s records."""

    def __init__(self, *args):
        RuntimeError.__init__(self, *args)
        from gocore._debug import attach_deadlock_dump   # lazy: _debug imports this module
        attach_deadlock_dump(self)


class GoroutineExit(BaseException):
    """Raised inside a sync goroutine blocked in gocore when run() ends, so
    that its finally blocks run (the analogue of closing a coroutine); and
    by every gocore call of a sync goroutine that outlived its run() (see
    "sync goroutines that outlive run()"). Do not swallow it."""


cdef class _ParkSentinel:
    def __repr__(self):
        return "<gocore park>"

cdef object PARK = _ParkSentinel()
cdef PyObject *PARK_PTR = <PyObject *>PARK
gc_internal_type(_ParkSentinel)     # PARK is the only one (csrc/gocore_pytype.h)

cdef object park_sentinel():
    return PARK

def get_park_sentinel():
    return PARK

# The outcome of run() (_sched_run.pxi). Requires GIL for all of them; on
# free-threaded builds _panic's first write is under _panic_lock (Ms may
# panic at once), and run() reads _main_result and _panic only after
# teardown has stopped every M.
cdef object _main_result = None     # set by the main G's goexit
cdef object _panic = None           # the first exception escaping a goroutine
cdef G _main_g = None               # run()'s main goroutine; None outside run()
cdef object _panic_hook = None      # set_panic_hook's hook (outside run())
cdef object _panic_lock = threading.Lock()   # _panic's first write; one-time lazy imports


# ---------------------------------------------------------------- the mechanisms

include "_sched_g.pxi"
include "_sched_exec.pxi"
include "_sched_proc.pxi"
include "_sched_timers.pxi"
include "_sched_sysmon.pxi"
include "_sched_deadlock.pxi"
include "_sched_run.pxi"
include "_sched_fork.pxi"
include "_sched_api.pxi"
include "_sched_debug.pxi"

# ---------------------------------------------------------------- the network poller

include "_netpoll.pxi"
include "_aiowait.pxi"        # asyncio tasks wait in gocore operations (G_AIO pseudo-Gs)
