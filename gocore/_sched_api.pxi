# gocore/_sched_api.pxi - the public functions of the scheduler (go,
# gosched, num_goroutine, gomaxprocs, set_max_threads, set_panic_hook) and
# inspection: the counters behind stats(), the goroutine snapshot behind
# dump_goroutines() with its inspection gate, and gocore.aio's hooks.
# `include`d by _sched.pyx. run() itself is in _sched_run.pxi.
#
# Everything here takes a snapshot or hands work to the other files; it
# owns only go()'s method definition and inspect_gate (atomic; see there).

# ---------------------------------------------------------------- public API

cdef object go_impl(object fn, tuple args, dict kwargs):
    """go(): start a goroutine (see the docstring of gocore.go). args and
    kwargs are None when empty."""
    cdef G gp
    cdef gc_m *mp
    cdef gc_p *pp
    cdef int queued
    mp = gc_tls_m
    if mp != NULL and ld_acq_i32(&mp.goexit) == GOEXIT_ORPHANED:
        raise GoroutineExit()    # check_goexit(), inline: a sync G that outlived its run()
    if PyCoro_CheckExact(fn):
        if args is not None or kwargs is not None:
            raise TypeError("go(coroutine) takes no extra arguments")
        gp = newg(G_ASYNC, None, None, None)
        gp.coro = fn
    elif is_async_function(fn):
        gp = newg(G_ASYNC, fn, args, kwargs)
    elif callable(fn):
        gp = newg(G_SYNC, fn, args if args is not None else (), kwargs if kwargs is not None else {})
    else:
        raise TypeError(f"go() needs an async def function, a coroutine or a callable, "
                        f"got {type(fn).__name__}")
    while True:
        if not ld_acq_i32(&sched.running):
            with _start_lock:
                if not ld_acq_i32(&sched.running):
                    runtime_start(0)
        fetch_add_i64(&sched.ngoroutines, 1)
        if _main_g is None:
            fence_seq_cst()      # Dekker with runtime_handover(): our count, then its flag
        if not ld_acq_i32(&bg_handover) or gc_tls_m != NULL:
            break
        # run() is deciding whether to stop the idle background runtime
        # (it found no goroutine): do not count in it; wait for run() to
        # have started its own runtime, and join that one
        fetch_add_i64(&sched.ngoroutines, -1)
        with _start_lock:
            pass
    if record_created:
        record_creation(gp)
    allgs_add(gp)
    Py_INCREF(gp)                        # the run queue's reference
    mp = gc_tls_m
    pp = own_p(mp)
    if pp != NULL:
        queued = runq_put(pp, <void *>gp, 1, &sched.lock, &sched.gq)
        pown_release(mp, pp)
        if queued and not GC_GIL_BUILD:
            wakep()
    else:
        gc_mutex_lock(&sched.lock)
        globrunq_put(<void *>gp)
        gc_mutex_unlock(&sched.lock)
        wakep()
    return None


cdef extern from *:
    """
    /* go()'s caller: the innermost Python frame's code object (a new
       reference; None if no Python frame runs) and instruction byte offset.
       PyEval_GetFrame may materialise the frame object (once per frame
       activation, owned by the interpreter frame); we keep only the code. */
    static PyObject *gc_caller_code(int32_t *lasti) {
        PyFrameObject *f = PyEval_GetFrame();
        if (f == NULL) {
            *lasti = -1;
            Py_RETURN_NONE;
        }
        *lasti = PyFrame_GetLasti(f);
        return (PyObject *)PyFrame_GetCode(f);
    }
    static int gc_code_line(PyObject *code, int32_t lasti) {
        return lasti < 0 ? -1 : PyCode_Addr2Line((PyCodeObject *)code, lasti);
    }
    """
    PyObject *gc_caller_code(int32_t *lasti)      # a new reference, never NULL
    int gc_code_line(object code, int32_t lasti)


# GOCORE_CREATED_BY=0 (read once, at import): go() records no creation
# site, and dumps print no `created by` lines (docs/debugging.md).
cdef bint record_created = os.environ.get("GOCORE_CREATED_BY", "1").strip() != "0"


cdef inline void record_creation(G gp) noexcept:
    """Requires GIL; gp not yet shared. Go's gopc/parentGoid: where go()
    was called (see G.created_code) and by which goroutine."""
    cdef int32_t lasti = -1
    cdef PyObject *code = gc_caller_code(&lasti)
    gp.created_code = <object>code       # (its own reference)
    Py_DECREF(<object>code)
    gp.created_lasti = lasti
    gp.created_by = (<G>gc_tls_g).goid if gc_tls_g != NULL else 0


cdef object creation_site(G gp):
    """(function's qualified name, file, line, creating goroutine id) of
    gp's go() call, or None if none was recorded (main, a thread's G)."""
    code = gp.created_code
    if code is None:
        return None
    line = gc_code_line(code, gp.created_lasti)
    return (getattr(code, "co_qualname", code.co_name), code.co_filename,
            line if line >= 0 else None, gp.created_by)


cdef object go_fastcall(PyObject *self, PyObject **args, Py_ssize_t nargs, PyObject *kwnames):
    """go's C entry point (METH_FASTCALL | METH_KEYWORDS): the common
    go(fn, x) call builds no kwargs dict and no args tuple beyond fn's."""
    cdef tuple rest = None
    cdef dict kw = None
    cdef Py_ssize_t i, nkw
    if nargs < 1:
        raise TypeError("go() needs a function to run: go(fn, *args, **kwargs)")
    if nargs > 1:
        rest = PyTuple_New(nargs - 1)
        for i in range(1, nargs):
            Py_INCREF(<object>args[i])
            PyTuple_SET_ITEM(rest, i - 1, <object>args[i])
    if kwnames != NULL:
        nkw = len(<object>kwnames)
        if nkw:
            kw = {}
            for i in range(nkw):
                kw[(<object>kwnames)[i]] = <object>args[nargs + i]
    return go_impl(<object>args[0], rest, kw)


cdef PyMethodDef go_def
go_def.ml_name = "go"
go_def.ml_meth = <void *>go_fastcall
go_def.ml_flags = METH_FASTCALL | METH_KEYWORDS
go_def.ml_doc = (b"go(fn, *args, **kwargs)\n--\n\n"
                 b"Start a goroutine and return None, as Go's go statement. fn is an\n"
                 b"async def function (a lightweight goroutine, resumed by any worker\n"
                 b"thread), a coroutine object, or a plain callable (a sync goroutine,\n"
                 b"run on a worker thread; when it blocks in gocore its processor is\n"
                 b"handed to another thread).")
go = PyCFunction_NewEx(&go_def, None, __name__)


# A native (interpreted) coroutine that awaits any awaitable: go(ch.send, v)
# and other callables returning a gocore awaitable run through it. Built with
# exec because a Cython `async def` is not a native coroutine.
_ns = {}
exec("async def await_it(aw):\n    return await aw\n", _ns)
cdef object _await_it = _ns["await_it"]
del _ns

cdef object _iscoroutinefunction = None

cdef object _isgenfunction = None

cdef int reject_generator_function(object fn, str who, int kind) except -1:
    """go()/run() on a generator function would call it, get a generator
    that nothing iterates, and silently do nothing: refuse it."""
    what = "an async generator function" if kind == 3 else "a generator function"
    raise TypeError(f"{who}() needs an async def function, a coroutine or a plain function; "
                    f"{fn!r} is {what} (calling it only builds a generator, which never runs)")

cdef bint is_async_function(object fn, str who="go") except -1:
    """1 for an async def function (or a callable that inspect calls one),
    0 for another callable; raises TypeError for a generator or async
    generator function."""
    global _iscoroutinefunction, _isgenfunction
    cdef int r = gc_pyfunc_is_async(fn)
    if r >= 2:
        reject_generator_function(fn, who, r)
    if r >= 0:
        return r
    if not callable(fn):
        return 0
    g = _isgenfunction
    if g is None:
        with _panic_lock:               # one import, even on a free-threaded build
            if _isgenfunction is None:
                import inspect
                _isgenfunction = (inspect.isgeneratorfunction, inspect.isasyncgenfunction)
            g = _isgenfunction
    if g[1](fn):
        reject_generator_function(fn, who, 3)
    if g[0](fn):
        reject_generator_function(fn, who, 2)
    f = _iscoroutinefunction
    if f is None:
        with _panic_lock:               # one import, even on a free-threaded build
            if _iscoroutinefunction is None:
                import inspect
                _iscoroutinefunction = inspect.iscoroutinefunction
            f = _iscoroutinefunction
    return f(fn)


cdef class _Gosched:
    """await gosched(): the G goes to the global queue and others run."""
    cdef bint yielded

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        cdef G gp
        if self.yielded:
            raise StopIteration
        gp = getg_or_none()
        if gp is None or gp.kind != G_ASYNC:
            raise StopIteration         # a thread: nothing to yield to
        self.yielded = True
        gp.parkmode = PARK_YIELD
        return PARK


def gosched():
    """Yield the processor (Go's runtime.Gosched): `await gosched()`."""
    return _Gosched.__new__(_Gosched)

gc_internal_type(_Gosched)          # only gosched() builds them


def num_goroutine():
    """Live goroutines, including main."""
    cdef int64_t n = ld_acq_i64(&sched.ngoroutines)
    if _main_g is None:
        n += 1          # the main thread
    return n

# ---------------------------------------------------------------- settings

def gomaxprocs(n=None):
    """Return the number of processors (Ps); with n >= 1, set it and return
    the previous value. gomaxprocs(0), as Go's GOMAXPROCS(0), only returns it.
    A new value applies from the next start of the runtime (the next run(),
    or the next background start)."""
    global _gomaxprocs
    if _gomaxprocs == 0:
        _gomaxprocs = default_procs()
    cdef int32_t old = _gomaxprocs
    if ld_acq_i32(&sched.running):
        old = sched.nprocs
    if n is None:
        return old
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"gomaxprocs(n) needs an int, got {type(n).__name__}")
    if n == 0:
        return old                   # a query, as Go's GOMAXPROCS(0)
    if n < 1 or n > 4096:
        raise ValueError(f"gomaxprocs(n) needs 1 <= n <= 4096 (or 0 to query), got {n}")
    _gomaxprocs = n
    return old


def set_max_threads(n):
    """Set the bound on the number of OS threads (Ms) gocore may create and
    return the previous one (Go's debug.SetMaxThreads; default 10,000). A
    blocking call that needs a new thread past the bound ends the run with
    RuntimeError, as Go's runtime does, rather than hang."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_max_threads() needs an int, got {type(n).__name__}")
    if n < 1 or n > 1000000:
        raise ValueError(f"set_max_threads({n}): the bound must be in 1..1,000,000")
    gc_mutex_lock(&sched.lock)
    prev = sched.maxmcount if sched.maxmcount != 0 else 10000
    sched.maxmcount = n
    gc_mutex_unlock(&sched.lock)
    return prev


def set_panic_hook(hook):
    """Set what happens when an exception escapes a goroutine outside run():
    hook(exc, goroutine_id). None restores the default (print, exit 2)."""
    global _panic_hook
    if hook is not None and not callable(hook):
        raise TypeError("panic hook must be callable or None")
    _panic_hook = hook


# ---------------------------------------------------------------- the inspection gate
#
# The inspection gate (free-threaded builds). dump_goroutines() reads the
# frames of parked and runnable goroutines from its own thread; with no GIL
# such a goroutine could start running meanwhile and change those frames
# under the reader (a crash inside CPython's frame code). Protocol: a reader
# raises inspect_gate (a count: readers may overlap), fences, then reads
# each G's status. A G it finds G_RUNNING it shows without a stack (Go:
# "goroutine running on other thread; stack unavailable"); any other it may
# walk, because whoever resumes a G - execute() for an async G, the woken
# thread in gopark for a thread or sync G - stores G_RUNNING, fences, and
# then waits, detached, while the gate is up. One side or the other sees
# the other's store. On GIL builds nobody raises the gate: a goroutine
# runs only while the walker has dropped the GIL, and CPython keeps frames
# consistent across GIL switches.
cdef int32_t inspect_gate = 0

cdef void wait_inspect_gate() noexcept nogil:
    cdef uint32_t v
    while True:
        v = <uint32_t>ld_acq_i32(&inspect_gate)
        if v == 0:
            return
        futex_wait(<uint32_t *>&inspect_gate, v, -1)

cdef inline void pass_inspect_gate() noexcept:
    """Requires an attached thread (GIL). The G has just been marked
    G_RUNNING by or for the caller, which is about to run its Python code."""
    if not GC_GIL_BUILD:
        fence_seq_cst()
        if ld_acq_i32(&inspect_gate) != 0:
            with nogil:
                wait_inspect_gate()


def _inspect_begin():
    """Raise the inspection gate (see above); _inspect_end() lowers it."""
    if not GC_GIL_BUILD:
        fetch_add_i32(&inspect_gate, 1)
        fence_seq_cst()


def _inspect_end():
    if not GC_GIL_BUILD:
        if fetch_add_i32(&inspect_gate, -1) == 1:
            futex_wake(<uint32_t *>&inspect_gate, 0x7fffffff)


# ---------------------------------------------------------------- introspection hooks

def _sched_counters():
    """Counters for tests and stats(): a dict (racy snapshot)."""
    cdef int64_t mparks = 0
    cdef gc_m *mp
    gc_mutex_lock(&sched.lock)
    mp = sched.allm
    while mp != NULL:
        mparks += mp.nparks
        mp = mp.alllink
    if sched.m0 != NULL:
        mparks += sched.m0.nparks
    gc_mutex_unlock(&sched.lock)
    return {
        "goroutines": ld_acq_i64(&sched.ngoroutines),
        "ms": sched.mcount,
        "ms_idle": sched.nmidle,
        "ms_spinning": ld_acq_i32(&sched.nmspinning),
        "ms_blocked": ld_acq_i32(&sched.nmblocked),
        "ps": sched.nprocs,
        "ps_idle": ld_acq_i32(&sched.npidle),
        "steals": ld_rlx_i64(&sched.nsteals),
        "parks": ld_rlx_i64(&sched.nparks) + mparks,
        "retakes": ld_rlx_i64(&sched.nretakes),
        "handoffs": ld_rlx_i64(&sched.nhandoffs),
        "goroutines_created": ld_rlx_i64(&sched.goidgen),
        "timers": ld_acq_i32(&timers.len),
        "global_runq": ld_rlx_u32(&sched.gq.size),
        "running": ld_acq_i32(&sched.running),
        "runq_cap": GOCORE_RUNQ_CAP,
    }


def _current_goid():
    """The running goroutine's id, or 0 on a plain thread (tests)."""
    if gc_tls_g == NULL:
        return 0
    return (<G>gc_tls_g).goid


def _current_m():
    """The running M's id (-1 for M0), or None on a plain thread (tests)."""
    if gc_tls_m == NULL:
        return None
    return gc_tls_m.id


def _debug_plain_threads():
    return plain_threads_running(), ld_acq_i32(&nthreadparked)


def _goroutine_info(bint extra=False):
    """Requires GIL. A snapshot for dump_goroutines(): one tuple per live G
    (goid, kind, status, wait reason, seconds waiting, coroutine or None,
    function or None, is_main, thread ident or 0, is the calling G); with
    extra, three more items: the creation site (creation_site()), the
    object it waits on (G.waiting; None unless waiting) and the G. Call it with the
    inspection gate up (_inspect_begin): a goroutine seen waiting then
    cannot resume, so its waiting object stays what it parked on."""
    cdef G gp
    cdef int32_t wr
    cdef int64_t now = nanotime()
    out = []
    for gp in _all_goroutines():
        st = ld_acq_i32(&gp.status)
        kind = ("async", "sync", "thread")[gp.kind]
        status = {G_RUNNABLE: "runnable", G_RUNNING: "running", G_WAITING: "waiting",
                  G_DEAD: "dead", G_IDLE: "idle"}.get(st, "?")
        wr = ld_rlx_i32(&gp.waitreason)
        reason = WAIT_REASONS.get(wr, "?") if st == G_WAITING else status
        if st == G_WAITING and (wr == W_IO_READ or wr == W_IO_WRITE):
            reason = (f"IO wait, fd {getattr(gp.waiting, 'fd', -1)}, "
                      f"{'read' if wr == W_IO_READ else 'write'}")
        if st == G_RUNNING and gp.kind == G_SYNC and gc_tls_g != <PyObject *>gp:
            reason = "running (sync goroutine; may be in a call outside the runtime: syscall)"
        waited = (nanotime_coarse() - gp.waitsince_ns) / 1e9 if st == G_WAITING else 0.0
        t = (gp.goid, kind, status, reason, waited, gp.coro, gp.fn, bool(gp.is_main),
             gp.thread_ident, gc_tls_g == <PyObject *>gp)
        if extra:
            t += (creation_site(gp), gp.waiting if st == G_WAITING else None, gp)
        out.append(t)
    out.sort(key=lambda t: t[0])
    return out


# ---------------------------------------------------------------- metrics()

cdef enum:
    MS_RUNNING = 0      # async goroutines running on an M
    MS_SYSCALL          # sync goroutines running on their threads (maybe outside the runtime)
    MS_RUNNABLE
    MS_IDLE


def metrics():
    """Runtime metrics, cheap enough to read every second (a racy snapshot;
    docs/debugging.md, "Metrics"). The counters are stats()'s (the same
    relaxed atomics; parks and unparks are summed over the Ms under
    sched.lock, as stats() does). Goroutines by state take one walk of the
    allgs list under allglock (only go() and a goroutine's exit take it:
    neither the run queues nor parking wait for it), reading each G's
    status (atomic) and wait reason (written before the G is published as
    waiting); at 10,000 goroutines it holds the lock for tens of
    microseconds. Per-P run-queue lengths (ring plus runnext; the first 64
    Ps): runq_len (atomic head/tail) and runnext (atomic) of each P under
    sched.lock, which also keeps allp from being resized."""
    cdef int64_t by_state[4]
    cdef int64_t by_reason[32]     # by WaitReason (fewer than 32)
    cdef int64_t nwaiting = 0, unparks = 0
    cdef uint32_t lens[64]      # the first 64 Ps' run queues
    cdef int32_t st, r, i, nprocs
    cdef PyObject *p
    cdef gc_m *mp
    memset(by_state, 0, sizeof(by_state))
    memset(by_reason, 0, sizeof(by_reason))
    # (casts only under the lock: a typed G variable would take and drop
    # references, which no gc_mutex holder does)
    gc_mutex_lock(&allglock)
    p = allgs_head
    while p != NULL:
        st = ld_acq_i32(&(<G>p).status)
        if st == G_WAITING:
            r = ld_rlx_i32(&(<G>p).waitreason)
            by_reason[r if 0 <= r < 32 else 0] += 1
            nwaiting += 1
        elif st == G_RUNNING:
            by_state[MS_SYSCALL if (<G>p).kind == G_SYNC else MS_RUNNING] += 1
        elif st == G_RUNNABLE:
            by_state[MS_RUNNABLE] += 1
        elif st == G_IDLE:
            by_state[MS_IDLE] += 1
        p = (<G>p).allnext
    gc_mutex_unlock(&allglock)
    runqs = []
    gc_mutex_lock(&sched.lock)
    nprocs = sched.nprocs if ld_acq_i32(&sched.running) and sched.allp != NULL else 0
    for i in range(min(nprocs, 64)):
        lens[i] = runq_len(&sched.allp[i]) + (ld_acq_ptr(&sched.allp[i].runnext) != NULL)
    mp = sched.allm
    while mp != NULL:
        unparks += ld_rlx_i64(&mp.nunparks)
        mp = mp.alllink
    if sched.m0 != NULL:
        unparks += ld_rlx_i64(&sched.m0.nunparks)
    gc_mutex_unlock(&sched.lock)
    for i in range(min(nprocs, 64)):
        runqs.append(lens[i])
    c = _sched_counters()
    io = _netpoll_stats()["io_waiters"]
    waiting = {
        "chan": by_reason[<int>W_CHAN_RECV] + by_reason[<int>W_CHAN_SEND] + by_reason[<int>W_CHAN_NIL]
                + by_reason[<int>W_CHAN_NIL_SEND],
        "select": by_reason[<int>W_SELECT] + by_reason[<int>W_SELECT_NO_CASES],
        "sync": by_reason[<int>W_MUTEX] + by_reason[<int>W_RWMUTEX_R] + by_reason[<int>W_RWMUTEX_W]
                + by_reason[<int>W_WAITGROUP] + by_reason[<int>W_ONCE] + by_reason[<int>W_SEMAPHORE]
                + by_reason[<int>W_SYNC_COND],
        "sleep": by_reason[<int>W_SLEEP],
        "io": by_reason[<int>W_IO_READ] + by_reason[<int>W_IO_WRITE],
    }
    waiting["other"] = nwaiting - sum(waiting.values())
    return {
        "goroutines": {
            "total": num_goroutine(),
            "running": by_state[MS_RUNNING],
            "syscall": by_state[MS_SYSCALL],
            "runnable": by_state[MS_RUNNABLE] + by_state[MS_IDLE],
            "waiting": nwaiting,
            "waiting_by_reason": waiting,
        },
        "goroutines_created": c["goroutines_created"],
        "procs": c["ps"],
        "procs_idle": c["ps_idle"],
        "runq": runqs,
        "global_runq": c["global_runq"],
        "steals": c["steals"],
        "parks": c["parks"],
        "unparks": unparks + ld_rlx_i64(&sched.nunparks),
        "handoffs": c["handoffs"],
        "retakes": c["retakes"],
        "threads": c["ms"],
        "threads_idle": c["ms_idle"],
        "threads_spinning": c["ms_spinning"],
        "threads_blocked": c["ms_blocked"],
        "timers": c["timers"],
        "io_waiters": io,
        "aio_pending": ld_acq_i32(&aio_pending),
    }


def stats():
    """Runtime counters (a racy snapshot; cheap to read, never slows the
    runtime down): goroutines created and alive, parks, steals, hand-offs
    of Ps by blocking calls, retakes by sysmon, Ms and Ps, pending timers."""
    c = _sched_counters()
    return {
        "goroutines_created": c["goroutines_created"],
        "goroutines_alive": num_goroutine(),
        "parks": c["parks"],
        "steals": c["steals"],
        "handoffs": c["handoffs"],
        "retakes": c["retakes"],
        "threads_m": c["ms"],
        "threads_idle": c["ms_idle"],
        "procs": c["ps"],
        "procs_idle": c["ps_idle"],
        "timers": c["timers"],
        "global_runq": c["global_runq"],
    }


# ---------------------------------------------------------------- gocore.aio hooks

def _aio_pending_add(int32_t delta):
    """gocore.aio: an asyncio call starts (+1) or has woken its caller (-1).
    Returns the new count (0 reads it)."""
    return fetch_add_i32(&aio_pending, delta) + delta


def _aio_set_thread(int64_t ident):
    """gocore.aio: its loop thread's ident (0 when it stops)."""
    st_rel_i64(&aio_thread, ident)


def _on_async_g():
    """Inside a lightweight goroutine? (blocking_* calls refuse to run there.)"""
    return on_async_g()


# ---------------------------------------------------------------- find_leaks' scan
#
# gocore.testing.find_leaks() (gocore/_leaks.py; Go 1.26's goroutineleak
# profile): which parked goroutines can nothing alive ever wake? A mark pass
# over the object graph from what can still act - running and runnable
# goroutines (coroutine, function, arguments), the frames of threads that
# are not parked sync goroutines (on run()'s own thread only the goroutine's
# frames above run()), module globals (sys.modules), Python signal handlers,
# and pending timers (the heap's Timer/Ticker objects: their channels and
# callbacks). A goroutine parked in sleep or on I/O counts as running (its
# timer or the poller wakes it), as does one whose wait this scan cannot
# name. Any other parked goroutine is a candidate: it becomes a root once an
# object it waits on (a channel of its operation or select, its Mutex,
# WaitGroup...), or its coroutine object (close() ends it), is marked; the
# candidates never reached are leaked. The runtime's own bookkeeping (allgs,
# run queues, waiter queues, G.waiting) is invisible to the traversal: G and
# the operation objects are no_gc types, so a parked G's reference to what it
# waits on is its own, never a root. An operation object reached from a live
# object (an asyncio task awaiting ch.send(), a runnable coroutine's stack)
# is opened with its _waits_on(), which names the channels and values it
# hides from the GC.
#
# Consistency: the snapshot of G states, the timer heap, the thread stacks
# and the traversal happen in one stretch that holds the GIL and runs no
# Python code (C calls only: tp_traverse, PyFrame_*, the ops' C methods;
# the cyclic GC, whose finalizers could run Python code, is paused first),
# so no other thread runs meanwhile and a reference cannot move behind the
# mark. sys._current_frames() comes next: its audit event, the one place a
# Python hook may run, fires before it takes its snapshot. Free-threaded
# builds with the GIL disabled have no such stretch: find_leaks refuses.
# The visited set and work stacks are C (addresses, borrowed: nothing is
# freed while the stretch lasts; temporaries are kept alive in `keep`).

cdef extern from *:
    """
    typedef struct { uintptr_t *slot; size_t cap, n; } gc_ptrset;   /* open addressing, 0 = empty */

    static inline size_t gc_ptr_hash(uintptr_t p) {
        uint64_t h = (uint64_t)p;
        h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33;
        return (size_t)h;
    }
    static int gc_ptrset_grow(gc_ptrset *s) {
        size_t ncap = s->cap ? s->cap * 2 : 1024, i, j;
        uintptr_t *ns = (uintptr_t *)calloc(ncap, sizeof(uintptr_t));
        if (ns == NULL) return -1;
        for (i = 0; i < s->cap; i++) {
            uintptr_t v = s->slot[i];
            if (!v) continue;
            j = gc_ptr_hash(v) & (ncap - 1);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = v;
        }
        free(s->slot);
        s->slot = ns;
        s->cap = ncap;
        return 0;
    }
    /* 1: added, 0: already there, -1: out of memory */
    static int gc_ptrset_add(gc_ptrset *s, const void *p) {
        uintptr_t v = (uintptr_t)p;
        size_t m, j;
        if (2 * (s->n + 1) > s->cap && gc_ptrset_grow(s) < 0) return -1;
        m = s->cap - 1;
        j = gc_ptr_hash(v) & m;
        while (s->slot[j]) {
            if (s->slot[j] == v) return 0;
            j = (j + 1) & m;
        }
        s->slot[j] = v;
        s->n++;
        return 1;
    }
    static int gc_ptrset_has(const gc_ptrset *s, const void *p) {
        uintptr_t v = (uintptr_t)p;
        size_t m, j;
        if (s->cap == 0) return 0;
        m = s->cap - 1;
        j = gc_ptr_hash(v) & m;
        while (s->slot[j]) {
            if (s->slot[j] == v) return 1;
            j = (j + 1) & m;
        }
        return 0;
    }

    typedef struct { PyObject **a; size_t n, cap; } gc_objvec;    /* borrowed pointers */
    static int gc_objvec_push(gc_objvec *v, PyObject *o) {
        if (v->n == v->cap) {
            size_t ncap = v->cap ? v->cap * 2 : 256;
            PyObject **na = (PyObject **)realloc(v->a, ncap * sizeof(PyObject *));
            if (na == NULL) return -1;
            v->a = na;
            v->cap = ncap;
        }
        v->a[v->n++] = o;
        return 0;
    }

    /* One scan's state. seen: every marked GC object, and every marked object
     * in `waited`. waited: what candidates wait on (and their coroutines).
     * optypes: the operation types (no_gc) whose hidden references the scan
     * opens. stack: marked GC objects not traversed yet. hits: newly marked
     * objects of `waited`; ops: newly marked operation objects. */
    typedef struct {
        gc_ptrset seen, waited, optypes, rootg, rootcode;
        gc_objvec stack, hits, ops;
    } gc_leakscan;

    static void gc_leakscan_free(gc_leakscan *s) {
        free(s->seen.slot); free(s->waited.slot); free(s->optypes.slot);
        free(s->rootg.slot); free(s->rootcode.slot);
        free(s->stack.a); free(s->hits.a); free(s->ops.a);
        memset(s, 0, sizeof(*s));
    }

    /* -1: out of memory */
    static int gc_leak_mark(gc_leakscan *s, PyObject *o) {
        int r;
        if (o == NULL || o == Py_None) return 0;
        if (PyObject_IS_GC(o)) {
            r = gc_ptrset_add(&s->seen, o);
            if (r <= 0) return r;
            if (gc_objvec_push(&s->stack, o) < 0) return -1;
            if (gc_ptrset_has(&s->waited, o)) return gc_objvec_push(&s->hits, o);
            return 0;
        }
        if (gc_ptrset_has(&s->waited, o)) {
            r = gc_ptrset_add(&s->seen, o);
            if (r <= 0) return r;
            return gc_objvec_push(&s->hits, o);
        }
        if (s->optypes.n && gc_ptrset_has(&s->optypes, Py_TYPE(o))) {
            r = gc_ptrset_add(&s->seen, o);
            if (r <= 0) return r;
            return gc_objvec_push(&s->ops, o);
        }
        return 0;
    }
    static int gc_leak_visit(PyObject *o, void *arg) {
        return gc_leak_mark((gc_leakscan *)arg, o) < 0 ? -1 : 0;
    }
    /* Traverse until the stack is empty (what gc.get_referents does per
     * object, without its audit event and result list). -1: out of memory */
    static int gc_leak_drain(gc_leakscan *s) {
        while (s->stack.n > 0) {
            PyObject *o = s->stack.a[--s->stack.n];
            traverseproc t = Py_TYPE(o)->tp_traverse;
            if (t != NULL && t(o, gc_leak_visit, s) < 0) return -1;
        }
        return 0;
    }

    /* Mark what one thread's frames hold: each frame's local variables
     * (values) and globals. cut 0: every frame. cut 1/2 (run()'s thread):
     * only the frames down to the outermost one belonging to a running
     * goroutine (its coroutine in rootg, or its function's code in
     * rootcode): the frames below are run()'s caller, which cannot run
     * again before run() has ended every goroutine; with no such frame, 1
     * marks nothing (the thread is in the scheduler) and 2 everything.
     * New references go to keep (a list). -1: error set. */
    static int gc_leak_mark_thread(gc_leakscan *s, PyObject *top, int cut, PyObject *keep) {
        PyObject *f, *x, *k, *v;
        Py_ssize_t n = 0, i, j, last = -1, pos;
        if (top == NULL || !PyFrame_Check(top)) return 0;
        f = top;
        Py_INCREF(f);
        while (f != NULL) {                 /* innermost first; keep owns each frame */
            if (PyList_Append(keep, f) < 0) { Py_DECREF(f); return -1; }
            Py_DECREF(f);
            if (cut) {
                x = PyFrame_GetGenerator((PyFrameObject *)f);
                if (x != NULL) {
                    if (gc_ptrset_has(&s->rootg, x)) last = n;
                    Py_DECREF(x);           /* its G holds it */
                }
                x = (PyObject *)PyFrame_GetCode((PyFrameObject *)f);
                if (gc_ptrset_has(&s->rootcode, x)) last = n;
                Py_DECREF(x);
            }
            n++;
            f = (PyObject *)PyFrame_GetBack((PyFrameObject *)f);
        }
        if (!cut || (last < 0 && cut == 2)) last = n - 1;
        pos = PyList_GET_SIZE(keep) - n;
        for (i = 0; i <= last; i++) {
            f = PyList_GET_ITEM(keep, pos + i);
            x = PyFrame_GetGlobals((PyFrameObject *)f);
            if (x == NULL) return -1;
            if (PyList_Append(keep, x) < 0 || gc_leak_mark(s, x) < 0) { Py_DECREF(x); return -1; }
            Py_DECREF(x);
            x = PyFrame_GetLocals((PyFrameObject *)f);
            if (x == NULL) return -1;
            if (PyList_Append(keep, x) < 0) { Py_DECREF(x); return -1; }
            Py_DECREF(x);
            if (PyDict_CheckExact(x)) {       /* values only: the keys are names */
                j = 0;
                while (PyDict_Next(x, &j, &k, &v))
                    if (gc_leak_mark(s, v) < 0) return -1;
            } else if (strcmp(Py_TYPE(x)->tp_name, "FrameLocalsProxy") == 0) {
                /* 3.13+: a view of the frame's variables */
                PyObject *vals = PyMapping_Values(x);
                if (vals == NULL) return -1;
                if (PyList_Append(keep, vals) < 0) { Py_DECREF(vals); return -1; }
                Py_DECREF(vals);
                for (j = 0; j < PyList_GET_SIZE(vals); j++)
                    if (gc_leak_mark(s, PyList_GET_ITEM(vals, j)) < 0) return -1;
            } else if (gc_leak_mark(s, x) < 0) {
                return -1;                  /* another mapping (exec'd code): as a whole */
            }
        }
        return 0;
    }
    """
    ctypedef struct gc_objvec:
        PyObject **a
        size_t n
    ctypedef struct gc_ptrset:
        size_t n
    ctypedef struct gc_leakscan:
        gc_ptrset waited, optypes, rootg, rootcode
        gc_objvec hits, ops
    int gc_ptrset_add(gc_ptrset *s, const void *p) noexcept
    void gc_leakscan_free(gc_leakscan *s) noexcept
    int gc_leak_mark(gc_leakscan *s, PyObject *o) noexcept
    int gc_leak_drain(gc_leakscan *s) noexcept
    int gc_leak_mark_thread(gc_leakscan *s, PyObject *top, int cut, object keep) except -1
    int PyGC_Disable() noexcept
    int PyGC_Enable() noexcept
    bint PyFunction_Check(object o)
    bint PyMethod_Check(object o)
    PyObject *PyFunction_GET_CODE(object o)
    PyObject *PyMethod_GET_FUNCTION(object o)
    object PyLong_FromVoidPtr(void *p)


cdef list leak_timer_owners():
    """Requires GIL. The owners (Timer/Ticker/after objects) of the heap's
    TK_PYOBJ timers, referenced. Copied under timerlock into a C array (no
    allocation of Python objects, no release under the lock); timerlock is
    waited for without releasing the GIL: its holders never wait for it."""
    cdef PyObject **snap = NULL
    cdef Py_ssize_t n = 0, i, cap
    cdef list out = []
    while True:
        cap = ld_acq_i32(&timers.len) + 16
        free(snap)
        snap = <PyObject **>malloc(cap * sizeof(PyObject *))
        if snap == NULL:
            raise MemoryError()
        gc_mutex_lock(&timerlock)
        if timers.len <= cap:
            for i in range(timers.len):
                if timers.heap[i].kind == TK_PYOBJ and timers.heap[i].arg != NULL:
                    Py_INCREF(<object>timers.heap[i].arg)
                    snap[n] = <PyObject *>timers.heap[i].arg
                    n += 1
            gc_mutex_unlock(&timerlock)
            break
        gc_mutex_unlock(&timerlock)
    for i in range(n):
        out.append(<object>snap[i])
        Py_DECREF(<object>snap[i])
    free(snap)
    return out


cdef int leak_mark(gc_leakscan *s, object o) except -1:
    if gc_leak_mark(s, <PyObject *>o) < 0:
        raise MemoryError()
    return 0


cdef int leak_activate(gc_leakscan *s, list cands, bytearray live, Py_ssize_t i,
                       dict frames, int64_t owner, list keep) except -1:
    """Candidate i can still be woken: mark what it holds (its roots tuple,
    and a sync goroutine's thread frames)."""
    if live[i]:
        return 0
    live[i] = 1
    for o in cands[i][2]:
        leak_mark(s, o)
    ident = cands[i][3]
    if ident:
        top = frames.get(ident)
        if top is not None:
            gc_leak_mark_thread(s, <PyObject *>top, 2 if ident == owner else 0, keep)
    return 0


def _leak_scan(tuple direct_types, tuple op_types):
    """find_leaks()' scan (see above): a list of (goid, is_main, wait
    reason) for the goroutines nothing alive can wake, by goid.
    direct_types: the classes a thread's wait names directly (Chan and the
    sync primitives); op_types: the operation objects (_ChanOp, _Select,
    _SyncOp), whose _waits_on() returns (what it waits on, what it holds
    hidden from the GC), or None if it cannot tell."""
    cdef gc_leakscan s
    cdef G gp
    cdef int gc_was
    cdef int32_t st, r
    cdef int64_t owner
    cdef Py_ssize_t i, j, nhits
    cdef PyObject *code
    cdef list cands = []            # (goid, is_main, roots, sync thread ident, reason)
    cdef list keep = []             # temporaries, alive until the scan ends
    cdef list livenow = []
    cdef dict waiters = {}          # address of a waited-on object -> candidate indices
    cdef bytearray live
    if not GC_GIL_BUILD and not sys._is_gil_enabled():
        raise RuntimeError("find_leaks() needs the GIL to take a consistent snapshot of the "
                           "object graph; on a free-threaded build run with PYTHON_GIL=1")
    if not ld_acq_i32(&sched.running):
        return []
    # from here to the end: GIL held, no Python code (see above); the GC
    # paused first, so that no collection runs finalizers while
    # sys._current_frames() builds its snapshot
    gc_was = PyGC_Disable()
    memset(&s, 0, sizeof(s))
    try:
        frames = sys._current_frames()
        for t in op_types:
            if gc_ptrset_add(&s.optypes, <PyObject *>t) < 0:
                raise MemoryError()
        owners = leak_timer_owners()
        gs = _all_goroutines()
        owner = ld_acq_i64(&run_owner)
        sync_threads = set()
        for gp in gs:
            if gp.kind != G_ASYNC and gp.kind != G_SYNC:
                continue
            st = ld_acq_i32(&gp.status)
            if st == G_DEAD or st == G_IDLE:
                continue
            roots = [gp.coro, gp.fn, gp.args]     # args holds the kwargs too (has_kwargs)
            waits = None            # None: live (runs, or will: a timer, the poller, unknown)
            r = gp.waitreason
            if st == G_WAITING:
                if r == W_CHAN_NIL or r == W_CHAN_NIL_SEND or r == W_SELECT_NO_CASES:
                    waits = ()      # nothing can ever wake it
                elif r != W_SLEEP and r != W_IO_READ and r != W_IO_WRITE and r != W_NONE:
                    w = gp.waiting
                    if isinstance(w, direct_types):
                        waits = (w,)            # a thread's wait: the channel or primitive itself
                    elif isinstance(w, op_types):
                        t = w._waits_on()
                        if t is not None and len(t[0]) > 0:    # (none named: unknown, live)
                            waits = t[0]
                            roots.extend(t[1])
            else:
                r = W_NONE
            ident = gp.thread_ident if gp.kind == G_SYNC else 0
            if ident:
                sync_threads.add(ident)
            if st == G_RUNNING:
                # where its frames start on its thread (for run()'s thread's cut)
                if gp.coro is not None and gc_ptrset_add(&s.rootg, <PyObject *>gp.coro) < 0:
                    raise MemoryError()
                fn = gp.fn
                if fn is not None and PyMethod_Check(fn):
                    fn = <object>PyMethod_GET_FUNCTION(fn)
                if fn is not None and PyFunction_Check(fn):
                    code = PyFunction_GET_CODE(fn)
                    if gc_ptrset_add(&s.rootcode, code) < 0:
                        raise MemoryError()
            i = len(cands)
            cands.append((gp.goid, gp.is_main, tuple(roots), ident, r))
            if waits is None:
                livenow.append(i)
                continue
            # reached, any of these makes it wakeable (its coroutine: close() ends it)
            for o in tuple(waits) + (gp.coro,):
                if o is None:
                    continue
                k = PyLong_FromVoidPtr(<void *><PyObject *>o)
                if k in waiters:
                    waiters[k].append(i)
                else:
                    waiters[k] = [i]
                    if gc_ptrset_add(&s.waited, <PyObject *>o) < 0:
                        raise MemoryError()
        live = bytearray(len(cands))
        # the roots
        leak_mark(&s, sys.modules)
        for o in owners:
            leak_mark(&s, o)
        for signum in range(1, signal.NSIG):
            try:
                h = raw_getsignal(signum)
            except (ValueError, OSError):
                continue
            leak_mark(&s, h)
        for ident, top in frames.items():
            if ident not in sync_threads:        # a sync goroutine's thread: with its G
                gc_leak_mark_thread(&s, <PyObject *>top, 1 if ident == owner else 0, keep)
        for i in livenow:
            leak_activate(&s, cands, live, i, frames, owner, keep)
        # the fixpoint: traverse; a waited-on object reached wakes its waiters
        while True:
            if gc_leak_drain(&s) < 0:
                raise MemoryError()
            if s.hits.n == 0 and s.ops.n == 0:
                break
            while s.ops.n > 0:
                s.ops.n -= 1
                t = (<object>s.ops.a[s.ops.n])._waits_on()
                if t is not None:
                    for o in t[0]:
                        leak_mark(&s, o)
                    for o in t[1]:
                        leak_mark(&s, o)
            while s.hits.n > 0:
                s.hits.n -= 1
                k = PyLong_FromVoidPtr(<void *>s.hits.a[s.hits.n])
                for i in waiters.pop(k, ()):
                    leak_activate(&s, cands, live, i, frames, owner, keep)
        out = []
        for i in range(len(cands)):
            if not live[i]:
                out.append((cands[i][0], cands[i][1], WAIT_REASONS.get(cands[i][4], "?")))
        out.sort()
        return out
    finally:
        gc_leakscan_free(&s)
        if gc_was:
            PyGC_Enable()
