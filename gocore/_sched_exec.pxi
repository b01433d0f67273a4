# gocore/_sched_exec.pxi - running a goroutine: one step of an ASYNC G's
# coroutine (PyIter_Send), a SYNC G's whole function, and a G's end
# (goexit): coroutines closed from outside, awaits of foreign awaitables.
# `include`d by _sched.pyx.
#
# Owns: the M-loop side of parking - execute() stores G_WAITING only after
# the coroutine yielded PARK, and only then calls the G's unlockf, so no
# waker can ready a G that is still running; and the queue reference the M
# took from a run queue, which execute() holds while the G runs and hands
# on (to the parked state, the global queue of a gosched, or goexit).
# Invariants: gc_tls_g names the G whose Python code the thread runs (set
# around each step here, and by teardown while it closes a coroutine as its
# G); a G reaching goexit is G_RUNNING and leaves allgs and ngoroutines
# exactly once.

cdef inline void execute(gc_m *mp, void *gptr) noexcept:
    """Requires GIL; mp owns gptr's queue reference. Runs the G one step."""
    global gc_tls_g
    cdef G gp = <G>gptr
    cdef PyObject *result = NULL
    cdef PySendResult r
    Py_DECREF(gp)                      # the local `gp` now holds the queue reference
    # runnable (off every queue now), or a sync G that turned async on this M
    if GOCORE_DEBUG:
        gc_assert_msg(ld_acq_i32(&gp.status) == G_RUNNABLE
                      or (ld_acq_i32(&gp.status) == G_RUNNING and mp.curg == gptr),
                      b"execute: G is neither runnable nor this M's G turning async")
    st_rel_i32(&gp.status, G_RUNNING)
    pass_inspect_gate()
    mp.curg = gptr
    gc_tls_g = <PyObject *>gp
    if gp.kind == G_ASYNC:
        if gp.coro is None and start_coroutine(gp) < 0:
            gc_tls_g = NULL
            mp.curg = NULL
            goexit(gp, None, fetch_exception())
            return
        r = PyIter_Send(gp.coro, None, &result)
        gc_tls_g = NULL
        mp.curg = NULL
        if r == PYGEN_NEXT:
            if result == PARK_PTR:
                Py_DECREF(PARK)
                if gp.parkmode == PARK_YIELD:
                    gp.parkmode = PARK_WAIT
                    st_rel_i32(&gp.status, G_RUNNABLE)     # on a run queue from here on (_sched.pxd)
                    Py_INCREF(gp)          # the global queue's reference
                    gc_mutex_lock(&sched.lock)
                    globrunq_put(gptr)
                    gc_mutex_unlock(&sched.lock)
                    if mp.p == NULL:
                        wakep()            # sysmon took our P: we may not be the one to run it
                    return
                Py_INCREF(gp)              # the parked state's reference
                gc_assert_msg(ld_acq_i32(&gp.status) == G_RUNNING,
                              b"execute: a parking G was not running")
                mp.nparks += 1
                st_rel_i32(&gp.status, G_WAITING)
                if gp.unlockf != NULL:
                    gp.unlockf(gp.unlockarg)
                return
            foreign_yield(gp, <object>result)
            Py_DECREF(<object>result)
            return
        if r == PYGEN_RETURN:
            goexit(gp, <object>result, None)
            Py_DECREF(<object>result)
        else:
            exc = fetch_exception()
            if coro_closed_outside(exc, gp.coro):
                exc = None           # its coroutine was closed from outside: it ended cleanly
            goexit(gp, None, exc)
        return
    run_sync(mp, gp)


# ---------------------------------------------------------------- coroutines closed from outside
#
# A goroutine's coroutine object may be in the program's hands (go(coro)):
# coro.close() or coro.throw() from another goroutine or thread, while the
# goroutine is parked, finishes the coroutine behind the scheduler's back.
# The rule (issue 14 item 17): the goroutine ends cleanly. gocore's
# awaitables report it from their close()/throw() (the coroutine delegates
# both to the awaitable it is suspended on): goroutine_closed_outside()
# claims the parked G, as a waker would, so that nobody readies it, and
# ends it (gone from num_goroutine() and the dump). If a waker won the G
# first, or the coroutine was closed before it ever ran, the G is on a run
# queue: resuming it fails with CPython's "cannot reuse already awaited
# coroutine", raised before any frame runs (no traceback), and execute()
# ends the G without a panic. The exception given to throw() goes on into
# the coroutine, as the caller asked; if the coroutine catches it and goes
# on, it runs on the caller's thread, no longer a goroutine.

cdef int goroutine_closed_outside(PyObject *g) except -1:
    """Requires GIL. An awaitable's close()/throw(), g its borrowed G (or
    NULL if it never parked). Teardown closes coroutines as the G itself
    (gc_tls_g is g): nothing to do then."""
    cdef G gp
    if g == NULL or g == gc_tls_g:
        return 0
    gp = <G>g
    if gp.kind != G_ASYNC or ld_acq_i32(&gp.status) != G_WAITING:
        return 0
    if not cas_u32(&gp.park_claim, 0, 1):
        return 0                 # readied meanwhile: execute() ends it
    gp.waiting = None
    st_rel_i32(&gp.status, G_RUNNING)   # goexit's precondition; it runs nowhere
    goexit(gp, None, None)
    Py_DECREF(gp)                # the parked state's reference
    return 0


cdef bint coro_closed_outside(object exc, object coro) noexcept:
    """Requires GIL. Is exc CPython's refusal to resume the finished
    coroutine coro (raised before any of its frames ran: its traceback
    never passes through coro's code, as one it raised itself would)?"""
    if type(exc) is not RuntimeError or str(exc) != "cannot reuse already awaited coroutine":
        return 0
    try:
        code = coro.cr_code
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is code:
                return 0
            tb = tb.tb_next
    except BaseException:
        return 0
    return 1


cdef object thrown_exception(object typ, object val, object tb):
    """Requires GIL. The exception of a throw(typ[, val[, tb]]) call, for
    an awaitable's throw() to raise on into its coroutine."""
    if isinstance(typ, BaseException):
        exc = typ
    elif val is None:
        exc = typ()
    elif isinstance(val, BaseException):
        exc = val
    else:
        exc = typ(val)
    if tb is not None:
        exc = exc.with_traceback(tb)
    return exc


cdef int start_coroutine(G gp) except -1:
    """Requires GIL. First run of an ASYNC G: call its function. fn stays
    set for the G's life and coro is set once, never replaced while the G
    lives: dump_goroutines() reads them from other threads, which on a
    free-threaded build must never see an object released under them.
    args and kwargs (read by this G alone) go at once: the frame has them
    now (B8: 80 bytes less per parked goroutine)."""
    fn = gp.fn
    if gp.has_kwargs:
        coro = fn(*gp.args[0], **gp.args[1])
    elif gp.args is not None:
        coro = fn(*gp.args)
    else:
        coro = fn()
    gp.args = None
    if not PyCoro_CheckExact(coro):
        if hasattr(coro, "__await__") and hasattr(coro, "send"):
            gp.coro = coro          # a Cython or other compiled coroutine
            return 0
        raise TypeError(f"go(): {fn!r} was taken for an async function but returned "
                        f"{type(coro).__name__}, not a coroutine")
    gp.coro = coro
    return 0


cdef void run_sync(gc_m *mp, G gp) noexcept:
    """Requires GIL. Runs a SYNC G's function to completion on this M."""
    global gc_tls_g
    cdef object exc = None
    cdef object res = None
    gp.thread_ident = PyThread_get_thread_ident()
    try:
        if gp.has_kwargs:
            res = gp.fn(*gp.args[0], **gp.args[1])
        else:
            res = gp.fn(*gp.args)
    except BaseException as e:
        exc = e
    if not mp.is_m0 and sync_g_exiting(mp):
        gc_tls_g = NULL
        mp.curg = NULL
        orphan_exit(gp, res, exc)     # its run() is over (see orphan_sync_g)
        return
    if exc is None and res is not None and not PyCoro_CheckExact(res) and hasattr(type(res), "__await__"):
        res = _await_it(res)          # go(ch.send, v): a gocore awaitable, not a coroutine
    if exc is None and PyCoro_CheckExact(res):
        # a plain callable that returned a coroutine (go(lambda: worker(i)),
        # go(ch.send, v)): run it as a lightweight goroutine from here on
        gp.kind = G_ASYNC
        gp.coro = res
        st_rel_i32(&mp.goexit, GOEXIT_NONE)
        Py_INCREF(gp)
        execute(mp, <void *>gp)
        return
    gc_tls_g = NULL
    mp.curg = NULL
    if isinstance(exc, GoroutineExit):
        exc = None
    goexit(gp, res, exc)
    st_rel_i32(&mp.goexit, GOEXIT_NONE)     # the M's next G starts afresh


cdef object fetch_exception():
    """Requires GIL, an exception set: take it (with its traceback)."""
    try:
        gc_error_set()       # csrc/gocore_pyutil.h: -1, the error already set
    except BaseException as e:
        return e


_ASYNC_BRIDGE = ("to call asyncio code from a goroutine, use gocore.aio.call "
                 "(the asyncio bridge)")
# packages of other event loops: the awaitable a goroutine's chain reached
# in one of them is the one to name (asyncio.sleep(), not its inner yield)
_FOREIGN_LOOPS = frozenset(("asyncio", "trio", "anyio", "curio", "tornado", "twisted", "uvloop"))


def _foreign_awaitable(coro, what):
    """Name what a goroutine's coroutine awaited when it yielded `what` to
    the scheduler: walk the await chain (cr_await / gi_yieldfrom) from the
    goroutine's coroutine; name the outermost awaitable that belongs to
    another event loop's package, else the innermost one."""
    name = None
    o = getattr(coro, "cr_await", None)
    depth = 0
    while o is not None and depth < 1000:
        depth += 1
        frame = getattr(o, "cr_frame", None) or getattr(o, "gi_frame", None)
        if frame is not None:       # a suspended coroutine or generator
            mod = frame.f_globals.get("__name__", "")
            qual = getattr(o, "__qualname__", frame.f_code.co_name)
            name = f"{mod}.{qual}()" if mod else f"{qual}()"
            if mod.partition(".")[0] in _FOREIGN_LOOPS:
                return name
        else:
            name = repr(o)
        o = getattr(o, "cr_await", None) or getattr(o, "gi_yieldfrom", None)
    if name is None or (what is not None and name.startswith("<")):
        return repr(what)           # e.g. an asyncio Future, yielded by its __await__
    return name


cdef void foreign_yield(G gp, object what) noexcept:
    """An ASYNC G awaited something that is not gocore's (an asyncio future,
    a bare yield): that is a bug in the goroutine: it panics. The message
    names the awaitable (asyncio.sleep(0) yields a bare None) and the way
    to call asyncio code."""
    try:
        name = _foreign_awaitable(gp.coro, what)
    except Exception:
        name = repr(what)
    yielded = "" if name == repr(what) else f" (it yielded {what!r} to the scheduler)"
    err = TypeError(
        f"goroutine {gp.goid} awaited {name}, which is not a gocore awaitable"
        f"{yielded}; gocore goroutines can await only "
        "gocore operations (channels, select, sleep, sync primitives) and other "
        f"coroutines built on them; {_ASYNC_BRIDGE}")
    try:
        gp.coro.close()
    except BaseException:
        pass
    goexit(gp, None, err)


cdef void goexit(G gp, object result, object exc) noexcept:
    """Requires GIL; gp has finished (returned or raised)."""
    global _main_result
    gc_assert_msg(ld_acq_i32(&gp.status) == G_RUNNING,
                  b"goexit: G was not running")
    st_rel_i32(&gp.status, G_DEAD)       # its coroutine goes with the G itself (see start_coroutine)
    fetch_add_i64(&sched.ngoroutines, -1)
    allgs_remove(gp)
    if exc is not None:
        record_panic(exc, gp)
    elif gp.is_main:
        _main_result = result
        stop_the_world()
