# gocore/_sched_debug.pxi - debug builds (GOCORE_DEBUG=1): the balance
# counters of csrc/gocore_config.h, shared with the other modules, and the
# checks that they balance at quiescent points. `include`d by _sched.pyx.

# ---------------------------------------------------------------- debug builds
#
# GOCORE_DEBUG=1 builds count what the runtime takes and gives back (the
# counters of csrc/gocore_config.h) and check that they balance where the
# runtime is quiescent: at the end of run() and at interpreter exit. A
# counter that does not balance is a runtime bug (a leaked G reference, a
# waiter left linked into a queue after its operation ended - the next
# operation on that queue would touch freed or reused memory), so the check
# throws naming the counter. Release builds compile all of it out except
# the DEBUG constant and _debug_counters(), which returns {}.

DEBUG = bool(GOCORE_DEBUG)

# gc_dbg_store and the G dealloc hook: csrc/gocore_schedstate.h

cdef int64_t *dbg_counters() noexcept nogil:
    """The debug counters, for the other compiled modules (they point their
    gc_dbg_ctr here at import)."""
    return gc_dbg_store

cdef int g_counted(PyObject *o) noexcept:
    """tp_dealloc hook: was o counted in GC_DBG_G_OBJECTS (a goroutine, not
    a plain thread's THREAD G, nor an asyncio task's AIO G)? Reads a C
    field only: o's refcount is 0."""
    return (<G>o).kind != G_THREAD and (<G>o).kind != G_AIO

if GOCORE_DEBUG:
    gc_dbg_ctr = gc_dbg_store
    gc_g_install_dealloc_hook(G, g_counted)


cdef Py_ssize_t allgs_len() noexcept:
    cdef Py_ssize_t n = 0
    cdef PyObject *p
    gc_mutex_lock(&allglock)
    p = allgs_head
    while p != NULL:
        n += 1
        p = (<G>p).allnext
    gc_mutex_unlock(&allglock)
    return n


def _debug_counters():
    """Debug builds: the balance counters and what they are checked against
    (a racy snapshot). Release builds: {}."""
    if not GOCORE_DEBUG:
        return {}
    return {
        "g_objects": ld_acq_i64(&gc_dbg_store[GC_DBG_G_OBJECTS]),
        "chan_waiters": ld_acq_i64(&gc_dbg_store[GC_DBG_CHAN_WAITERS]),
        "sync_waiters": ld_acq_i64(&gc_dbg_store[GC_DBG_SYNC_WAITERS]),
        "timer_refs": ld_acq_i64(&gc_dbg_store[GC_DBG_TIMER_REFS]),
        "goroutines": ld_acq_i64(&sched.ngoroutines),
        "allgs": allgs_len(),
        "threads_parked": ld_acq_i32(&nthreadparked),
        "timers": ld_acq_i32(&timers.len),
        "running": ld_acq_i32(&sched.running),
    }


cdef str debug_imbalance():
    """Requires GIL. '' if the counters balance, else what does not."""
    cdef int32_t i, pyobj_timers
    cdef bint stopped
    c = _debug_counters()
    if c["goroutines"] != c["allgs"]:
        return (f"goroutines = {c['goroutines']} (live goroutines) but allgs lists "
                f"{c['allgs']}: a G was counted without being listed, or the reverse")
    stopped = not c["running"]
    if not stopped:
        return ""          # a background runtime runs: Gs, waiters and timers come and go
    if c["allgs"] == 0 and c["threads_parked"] == 0:
        # no goroutine and no plain thread waits: every waiter is unlinked
        if c["chan_waiters"] != 0:
            return (f"chan_waiters = {c['chan_waiters']} channel waiters (sudogs) still "
                    f"linked with no goroutine or thread waiting: a waiter outlived its "
                    f"operation in a channel's queue")
        if c["sync_waiters"] != 0:
            return (f"sync_waiters = {c['sync_waiters']} sync waiters still linked with "
                    f"no goroutine or thread waiting: a waiter outlived its operation "
                    f"in a Mutex/RWMutex/WaitGroup/Once/Semaphore queue")
    orphans = ld_acq_i64(&norphans)
    if c["g_objects"] != c["allgs"] + orphans:
        return (f"g_objects = {c['g_objects']} goroutine G objects alive, expected "
                f"{c['allgs']} (the goroutines still listed in allgs) + {orphans} orphaned "
                f"sync goroutines still running: a reference to a G leaked (or was dropped twice)")
    timer_lock()
    pyobj_timers = 0
    for i in range(timers.len):
        if timers.heap[i].kind == TK_PYOBJ:
            pyobj_timers += 1
    stopped = not ld_acq_i32(&sched.running)
    timer_unlock()
    if stopped and c["timer_refs"] != pyobj_timers:
        return (f"timer_refs = {c['timer_refs']} references held for queued "
                f"Timer/Ticker objects, but the heap holds {pyobj_timers}")
    if stopped:
        if sched.gq.size != 0:
            return f"global run queue holds {sched.gq.size} Gs with the runtime stopped"
        for i in range(sched.nprocs):
            if not runq_empty(&sched.allp[i]):
                return f"P {i}'s run queue is not empty with the runtime stopped"
    return ""


class DebugCheckError(BaseException):
    """Debug builds: the runtime's counters do not balance at the end of
    run() (a runtime bug). A BaseException, so that `except Exception` in
    the program cannot hide it."""


cdef int debug_check(str where, bint fatal) except -1:
    """Requires GIL. If the debug counters do not balance, raise
    DebugCheckError (the end of run(): the test that caused it fails) or,
    if fatal, throw (interpreter exit: nothing else would be noticed). A G
    that just finished on another M may still be on its way out: look again
    for up to a second before calling it a leak."""
    cdef int64_t deadline = nanotime() + 1000000000
    while True:
        msg = debug_imbalance()
        if not msg:
            return 0
        if nanotime() > deadline:
            break
        with nogil:
            gc_sleep_us(2000)
    msg = f"debug check at {where}: {msg}"
    if fatal:
        gc_throw(msg.encode())
    raise DebugCheckError(msg)


def _debug_check(where="a test"):
    """Debug builds: check the counters now (raises DebugCheckError); a
    no-op in release builds."""
    if GOCORE_DEBUG:
        debug_check(where, 0)


def _debug_exit_check():
    debug_check("interpreter exit", 1)

if GOCORE_DEBUG:
    import atexit
    atexit.register(_debug_exit_check)
