# gocore/_sched_run.pxi - the runtime's life: runtime_start/procresize,
# run() and its main goroutine, the background runtime's hand-over to a
# later run(), panics (record_panic, stop_the_world), sync goroutines that
# outlive run(), and teardown. `include`d by _sched.pyx.
#
# Owns: _gomaxprocs and the P array; _start_lock, bg_handover and run_owner
# (one run() at a time); with _sched.pyx's globals, _main_g, _main_result
# and _panic (GIL). Invariant (DESIGN's lifecycle rule): when run() returns,
# every goroutine of that run is over - closed, or orphaned if it is a sync
# goroutine stuck in foreign code - and no M of that run touches the next
# one (sched.gen moves on; an M of an older generation exits).

# ---------------------------------------------------------------- panics

cdef void record_panic(object exc, G gp) noexcept:
    """Requires GIL. An exception escaped a goroutine: like a Go panic it
    ends the program - run() re-raises it; without run() the panic hook
    (default: print it and exit with status 2) handles it."""
    global _panic
    if type(exc) is RuntimeError and str(exc) == "no running event loop":
        # asyncio code run in a goroutine fails before it yields to us
        try:
            exc.add_note(f"(gocore goroutines do not run in an asyncio event loop; "
                         f"{_ASYNC_BRIDGE})")
        except Exception:
            pass
    if gp is not None and not gp.is_main and isinstance(exc, BaseException):
        try:
            exc.add_note(f"(raised in goroutine {gp.goid})")
        except Exception:
            pass
    if _main_g is None:
        # no run(): the background runtime
        hook = _panic_hook if _panic_hook is not None else default_panic_hook
        try:
            hook(exc, gp.goid if gp is not None else 0)
        except BaseException:
            pass
        return
    with _panic_lock:                    # Ms may panic at once on free-threaded builds
        if _panic is None:
            _panic = exc
    stop_the_world()


def default_panic_hook(exc, goid):
    import traceback
    sys.stderr.write(f"panic: goroutine {goid}: uncaught exception\n")
    traceback.print_exception(exc)
    sys.stderr.flush()
    os._exit(2)



cdef void stop_the_world() noexcept:
    """Any thread. Ask every M to leave its loop (run() is ending)."""
    cdef gc_m *mp
    st_rel_i32(&sched.stopping, 1)
    sysmon_stop()
    netpoll_stop_break()     # an M blocked in epoll_wait is on no idle list
    gc_mutex_lock(&sched.lock)
    mp = sched.midle
    while mp != NULL:
        sched.midle = mp.schedlink
        mp.in_midle = 0
        mp.nextp = NULL
        sched.nmidle -= 1
        note_wakeup(&mp.park)
        mp = sched.midle
    gc_mutex_unlock(&sched.lock)


# ---------------------------------------------------------------- sync goroutines that outlive run()
#
# DESIGN's lifecycle rule: when run() returns, every goroutine of that run
# is over. A sync goroutine parked in gocore is woken with GoroutineExit
# (teardown, below); one inside foreign code (time.sleep, a socket call)
# cannot be interrupted, so teardown *orphans* it: it leaves allgs and
# ngoroutines (num_goroutine() and the dump no longer show it), its M leaves
# sched.mcount (deadlock detection of the next run must not count it as
# running) and its M's goexit word says ORPHANED. From then on every gocore
# call of that goroutine raises GoroutineExit (check_goexit at the entry of
# the blocking_* calls and go(); goexit_self_claim where it would park), and
# what the function finally raises goes to sys.unraisablehook with its
# goroutine id (run_sync) - never to a later run(), never to the panic hook
# that ends the process.
#
# The M's goexit word (gocore_sched.h) is the only state shared between
# teardown and the goroutine's thread: teardown writes it under sched.lock
# (atomic store); the thread reads it atomically, and moves CLOSING ->
# IGNORED by CAS, and at the end of its function decides under sched.lock
# whether it was orphaned (then teardown has already removed it from allgs)
# or exits normally (EXITING: teardown then waits for its goexit instead).
# Rejected: killing the thread (no safe way in CPython), and leaving the
# goroutine counted until its call returns (the next run() saw it as running
# and its exception as its own).

cdef int64_t norphans = 0        # atomic: orphaned G objects whose function still runs (debug balance)


cdef int check_goexit() except -1:
    """Requires GIL. At the entry of a gocore call from a thread: raise
    GoroutineExit if the calling sync goroutine's run() is over."""
    cdef gc_m *mp = gc_tls_m
    if mp != NULL and ld_acq_i32(&mp.goexit) == GOEXIT_ORPHANED:
        raise GoroutineExit()
    return 0


cdef bint goexit_self_claim(gc_m *mp, G gp) noexcept:
    """gopark_thread, gp (mp's sync G) just marked G_WAITING: if its run()
    is over, claim gp for itself (1: do not sleep; wake_flags is WAKE_CLOSE
    and gp is running again). The fence pairs with orphan_sync_g's: either
    we see its goexit store, or it sees us waiting and wakes us."""
    fence_seq_cst()
    if ld_acq_i32(&mp.goexit) == GOEXIT_NONE or ld_acq_i32(&mp.goexit) == GOEXIT_EXITING:
        return 0
    if not cas_u32(&gp.park_claim, 0, 1):
        return 0                 # teardown claimed us meanwhile: its goready is coming
    # a closing G that parks again swallowed its GoroutineExit: teardown
    # stops waiting for it (issue 14 item 21)
    cas_i32(&mp.goexit, GOEXIT_CLOSING, GOEXIT_IGNORED)
    gp.wake_flags = WAKE_CLOSE
    st_rel_i32(&gp.status, G_RUNNING)
    return 1


cdef gc_m *m_running_locked(G gp) noexcept nogil:
    """Caller holds sched.lock. The M whose loop runs sync G gp (its curg),
    or NULL."""
    cdef gc_m *mp = sched.allm
    while mp != NULL:
        if mp.curg == <void *>gp and not mp.exited:
            return mp
        mp = mp.alllink
    return NULL


cdef void set_goexit_closing(G gp) noexcept:
    """Requires GIL. teardown is waking sync G gp with GoroutineExit."""
    cdef gc_m *mp
    gc_mutex_lock(&sched.lock)
    mp = m_running_locked(gp)
    if mp != NULL and ld_acq_i32(&mp.goexit) == GOEXIT_NONE:
        st_rel_i32(&mp.goexit, GOEXIT_CLOSING)
    gc_mutex_unlock(&sched.lock)


cdef bint orphan_sync_g(G gp) noexcept:
    """Requires GIL; teardown, after the unwinding grace. gp is a sync G
    still alive (inside foreign code, or it swallowed GoroutineExit).
    Returns 1 if gp is orphaned now (gone from allgs and ngoroutines), 0 if
    it is finishing on its own (EXITING: its goexit is imminent)."""
    cdef gc_m *mp
    gc_mutex_lock(&sched.lock)
    mp = m_running_locked(gp)
    if mp == NULL or ld_acq_i32(&mp.goexit) == GOEXIT_EXITING:
        gc_mutex_unlock(&sched.lock)
        return 0
    st_rel_i32(&mp.goexit, GOEXIT_ORPHANED)
    if not mp.uncounted:
        mp.uncounted = 1
        sched.mcount -= 1
    gc_mutex_unlock(&sched.lock)
    fence_seq_cst()              # pairs with goexit_self_claim's
    if ld_acq_i32(&gp.status) == G_WAITING and cas_u32(&gp.park_claim, 0, 1):
        gp.wake_flags = WAKE_CLOSE
        goready(gp)
    fetch_add_i64(&norphans, 1)
    fetch_add_i64(&sched.ngoroutines, -1)
    allgs_remove(gp)
    return 1


cdef bint sync_g_exiting(gc_m *mp) noexcept:
    """Requires GIL; mp's sync G has returned or raised. 1 if it was orphaned
    (its run() is over and teardown removed it); otherwise marks it EXITING
    so that teardown waits for its goexit rather than orphaning it."""
    cdef bint orphaned
    gc_mutex_lock(&sched.lock)
    orphaned = ld_acq_i32(&mp.goexit) == GOEXIT_ORPHANED
    if not orphaned:
        st_rel_i32(&mp.goexit, GOEXIT_EXITING)
    gc_mutex_unlock(&sched.lock)
    return orphaned


cdef void orphan_exit(G gp, object res, object exc) noexcept:
    """Requires GIL. An orphaned sync G's function is over: report what it
    raised (other than GoroutineExit) to sys.unraisablehook."""
    st_rel_i32(&gp.status, G_DEAD)
    if PyCoro_CheckExact(res):
        try:
            res.close()
        except BaseException:
            pass
    if exc is not None and not isinstance(exc, GoroutineExit):
        try:
            sys.unraisablehook(make_unraisable(
                exc, gp, f"Exception ignored in goroutine {gp.goid}, which outlived its run()"))
        except BaseException:
            pass
    fetch_add_i64(&norphans, -1)


# ---------------------------------------------------------------- runtime start / stop

cdef int32_t _gomaxprocs = 0     # 0: not chosen yet

cdef int32_t default_procs() except -1:
    env = os.environ.get("GOCORE_MAXPROCS")
    if env is not None and env.strip() != "":
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"GOCORE_MAXPROCS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"GOCORE_MAXPROCS must be a positive integer, got {env!r}")
        return n
    return os.cpu_count() or 1



cdef gc_p *_allp_storage = NULL
cdef int32_t _allp_cap = 0

cdef int procresize(int32_t n) except -1:
    """Requires GIL; runtime stopped. Make n fresh idle Ps. P memory is never
    freed: an M left over from an earlier run (stuck in a sync goroutine)
    may still hold a pointer to its old P."""
    global _allp_storage, _allp_cap
    cdef int32_t i
    if n > _allp_cap:
        _allp_storage = <gc_p *>calloc(n, sizeof(gc_p))
        if _allp_storage == NULL:
            raise MemoryError()
        _allp_cap = n
    else:
        memset(_allp_storage, 0, n * sizeof(gc_p))
    # under the lock pidleput requires: a straggler M of an earlier run
    # (see above) may take it meanwhile, in exitsyscall
    gc_mutex_lock(&sched.lock)
    sched.allp = _allp_storage
    sched.nprocs = n
    sched.pidle = NULL
    sched.npidle = 0
    for i in range(n - 1, -1, -1):
        sched.allp[i].id = i
        pidleput(&sched.allp[i])
    gc_mutex_unlock(&sched.lock)
    return 0


cdef int runtime_start(bint with_m0) except -1:
    """Requires GIL; runtime stopped."""
    global deadlock_holdoff, deadlock_backoff
    if _gomaxprocs == 0:
        gomaxprocs()
    deadlock_holdoff = deadlock_backoff = 0      # the last run's backoff says nothing about this one
    sched.gen += 1
    sched.stopping = 0
    sched.sigpending = 0
    sched.nmspinning = 0
    sched.nmblocked = 0
    sched.midle = NULL
    sched.nmidle = 0
    if sched.maxmcount == 0:
        sched.maxmcount = 10000
    procresize(_gomaxprocs)
    sched.sysmon_running = 0
    st_rel_i32(&sched.running, 1)
    sysmon_start()
    return 0


cdef void runtime_ensure_started() except *:
    """Requires GIL. The first go() outside run() starts the runtime in the
    background: Ms are created on demand by wakep()."""
    if not ld_acq_i32(&sched.running):
        with _start_lock:
            if not ld_acq_i32(&sched.running):
                runtime_start(0)



# ---------------------------------------------------------------- run()

cdef chain_signal(int signum):
    if gc_sigchain_add(signum) < 0:
        raise OSError(f"gocore: cannot chain the handler of signal {signum}")


def _signal_handler_installed(signum):
    """Main thread, after signal.signal(signum, ...): inside run(), have the
    handler wake an idle main thread too (a no-op outside run())."""
    chain_signal(signum)


def run(fn, *args, **kwargs):
    """Run fn as the main goroutine on this thread until it returns; return
    its result. An exception escaping any goroutine is re-raised here. When
    main returns, the remaining goroutines are closed and the Ms stop."""
    global _main_g, _main_result, _panic, gc_tls_m
    cdef G gp
    cdef gc_m *m0 = NULL
    cdef gc_p *pp
    cdef int64_t me = <int64_t>PyThread_get_thread_ident()
    if gc_tls_g != NULL or gc_tls_m != NULL or ld_acq_i64(&run_owner) == me:
        check_goexit()
        raise RuntimeError("gocore.run() is already running: run() cannot be nested")
    if PyCoro_CheckExact(fn):
        if args or kwargs:
            raise TypeError("run(coroutine) takes no extra arguments")
        gp = newg(G_ASYNC, None, None, None)
        gp.coro = fn
    elif is_async_function(fn, "run"):
        gp = newg(G_ASYNC, fn, args, kwargs if kwargs else None)
    elif callable(fn):
        gp = newg(G_SYNC, fn, args, kwargs)
    else:
        raise TypeError(f"run() needs an async def function, a coroutine or a callable, "
                        f"got {type(fn).__name__}")
    gp.is_main = True
    # One run() at a time in a process: the first caller owns it.
    if not cas_i64(&run_owner, 0, me):
        raise RuntimeError("gocore.run() is already running in another thread; a process "
                           "runs one run() at a time (start goroutines with go() instead)")
    try:
        m0 = <gc_m *>calloc(1, sizeof(gc_m))
        if m0 == NULL:
            raise MemoryError()
        with _start_lock:
            adopt = runtime_handover()
            bubble_start(adopt)          # synctest(): this run is a bubble (_sched_deadlock.pxi)
            if not adopt:
                runtime_start(1)
            _main_g = gp
            st_rel_i32(&bg_handover, 0)
    except BaseException:
        st_rel_i32(&bg_handover, 0)
        st_rel_i64(&run_owner, 0)
        free(m0)
        raise
    _main_result = None
    _panic = None
    m0.is_m0 = 1
    m0.gen = sched.gen
    m0.fastrand = 0x2545F491
    m0.id = -1
    sched.m0 = m0
    set_maing(gp)
    gc_mutex_lock(&sched.lock)
    sched.mcount += 1                    # M0 counts as a running M
    gc_mutex_unlock(&sched.lock)
    fetch_add_i64(&sched.ngoroutines, 1)
    allgs_add(gp)
    is_main_thread = threading.current_thread() is threading.main_thread()
    if is_main_thread:
        gc_sigchain_begin(&sched.sigpending, &m0.park)
        for signum in range(1, signal.NSIG):
            if callable(raw_getsignal(signum)):     # a Python handler
                chain_signal(signum)
    gc_tls_m = m0
    set_tstate(m0, <void *>PyThreadState_Get())
    try:
        try:
            pp = m0_getp(m0)
            if pp != NULL:
                acquirep(m0, pp)
                Py_INCREF(gp)
                runq_put(m0.p, <void *>gp, 1, &sched.lock, &sched.gq)
                schedule(m0)
        except BaseException as e:      # SIGINT's KeyboardInterrupt
            if _panic is None:
                _panic = e
        finally:
            gc_tls_m = NULL
            set_tstate(m0, NULL)         # m0 is freed below; sysmon looks only under sched.lock
            teardown(m0)
            if is_main_thread:
                gc_sigchain_end()
        if _panic is not None:
            exc = _panic
            _panic = None
            raise exc
        res = _main_result
        _main_result = None
        return res
    finally:
        _main_g = None
        st_rel_i64(&run_owner, 0)
        free(m0)
        if GOCORE_DEBUG:
            gp = None                    # the main G is done with: only leaks remain
            debug_check("the end of run()", 0)


# ---------------------------------------------------------------- run() and the background runtime
#
# Without run(), the first go() starts the runtime "in the background" (its
# Ms run goroutines while the calling thread uses blocking_* calls). A later
# run() (from any thread) hands over as follows, so that it never fails
# because of it (issue 14 item 8):
#   * a background runtime with no goroutine left is stopped and run()
#     starts a fresh one (gomaxprocs set meanwhile applies);
#   * one with goroutines alive is adopted: run()'s thread joins it as M0
#     and its goroutines become goroutines of this run - like goroutines a
#     plain thread starts with go() during run() - so they are closed when
#     run() returns, and a later go() starts a new background runtime.
# The decision and the start happen under _start_lock. go() counts its
# goroutine (ngoroutines, seq_cst) before it looks at bg_handover, and run()
# raises bg_handover before it looks at ngoroutines: either run() sees the
# goroutine (and adopts), or go() sees the hand-over and waits on
# _start_lock, then joins run()'s runtime. Only Ms (a timer's after_func)
# do not wait: run() is waiting for them to leave their loops.
# run_owner (a thread id, CAS from 0) admits one run() at a time: a second
# thread gets "already running in another thread", a goroutine "nested".

cdef object _start_lock = threading.RLock()   # runtime start/stop decisions (see above)
cdef int32_t bg_handover = 0     # atomic: run() is deciding about the background runtime
cdef int64_t run_owner = 0       # atomic: thread id of the thread inside run(), or 0


cdef bint runtime_handover() except -1:
    """Requires GIL; caller holds _start_lock and owns run_owner. 1 if run()
    adopts the background runtime, 0 if run() must start one (none runs, or
    the idle background one was stopped here). Leaves bg_handover raised
    for the caller to lower once its runtime is up."""
    if not ld_acq_i32(&sched.running):
        return 0
    st_rel_i32(&bg_handover, 1)
    fence_seq_cst()              # pairs with go()'s fetch_add on ngoroutines
    if ld_acq_i64(&sched.ngoroutines) == 0:
        teardown(NULL)
        return 0
    return 1


cdef gc_p *m0_getp(gc_m *m0) except? NULL:
    """Requires GIL. A P for M0 (NULL: the runtime is stopping). A fresh
    runtime has every P idle; an adopted one may have none idle (its
    goroutines keep them busy): then M0 queues a token on the global queue,
    as a sync goroutine back from a blocking call does (exitsyscall_park),
    and sleeps until the M that takes the token hands over its P
    (startlockedm). The token is a bare G (kind SYNC, started, lockedm =
    m0) in no other list. M0 withdraws it (xchg lockedm to NULL; the
    scheduler then drops it) to run signal handlers or when the runtime
    stops."""
    cdef gc_p *pp
    cdef G tok
    cdef uint32_t k
    while True:
        gc_mutex_lock(&sched.lock)
        pp = pidleget()
        if pp != NULL or ld_acq_i32(&sched.stopping):
            gc_mutex_unlock(&sched.lock)
            return pp
        gc_mutex_unlock(&sched.lock)
        tok = G.__new__(G)
        tok.kind = G_SYNC
        tok.thread_ident = PyThread_get_thread_ident()
        st_rlx_i32(&tok.status, G_RUNNABLE)   # published by the global queue's lock
        gc_dbg_add(GC_DBG_G_OBJECTS, 1)     # down in its tp_dealloc
        note_clear(&m0.park)
        m0.nextp = NULL
        tok.lockedm = <void *>m0
        Py_INCREF(tok)                      # the global queue's reference
        gc_mutex_lock(&sched.lock)
        globrunq_put(<void *>tok)
        gc_mutex_unlock(&sched.lock)
        while True:
            with nogil:
                k = note_sleep_deadline(&m0.park, nanotime() + 10000000)
            if k != 1 and (k == 2 or ld_acq_i32(&sched.stopping) or ld_acq_i32(&sched.sigpending)):
                if xchg_ptr(&tok.lockedm, NULL) != NULL:
                    break                   # withdrawn: run the handlers, then try again
                with nogil:
                    note_sleep(&m0.park)    # taken: the hand-over is under way
                k = 1
            if k == 1:
                note_clear(&m0.park)
                pp = m0.nextp
                m0.nextp = NULL
                return pp
        st_rel_i32(&sched.sigpending, 0)
        PyErr_CheckSignals()



cdef void teardown(gc_m *m0) except *:
    """Requires GIL. Stop every M, then close every goroutine still alive
    (their finally blocks run), and leave the runtime ready for a new run()."""
    cdef gc_m *mp
    cdef int32_t busy
    cdef G gp
    cdef void *q
    cdef int32_t i
    stop_the_world()
    netpoll_quiesce()        # no poll readies a G from here on
    set_maing(None)
    if m0 != NULL:
        m0.p = NULL
        gc_mutex_lock(&sched.lock)
        sched.mcount -= 1
        gc_mutex_unlock(&sched.lock)
    # Sync goroutines parked in gocore wake with GoroutineExit; their
    # finally blocks get up to 2 s to run before run() returns. One that
    # parks again has swallowed GoroutineExit (a bare except:): its park
    # raises it again at once and teardown stops waiting for it (its M's
    # goexit word moves CLOSING -> IGNORED); it is orphaned below.
    closing = []
    for gp in _all_goroutines():
        if gp.kind == G_SYNC and ld_acq_i32(&gp.status) == G_WAITING:
            set_goexit_closing(gp)
            if cas_u32(&gp.park_claim, 0, 1):
                gp.wake_flags = WAKE_CLOSE
                goready(gp)
                closing.append(gp)
        elif gp.kind == G_SYNC:
            # woken, but its thread waits for a P (exitsyscall_park): wake
            # it without one; its token left on a run queue is dropped below
            mp = <gc_m *>xchg_ptr(&gp.lockedm, NULL)
            if mp != NULL:
                if ld_acq_i32(&mp.goexit) == GOEXIT_NONE:
                    st_rel_i32(&mp.goexit, GOEXIT_CLOSING)
                gp.wake_flags = WAKE_CLOSE
                st_rel_i32(&gp.status, G_RUNNING)
                mp.nextp = NULL
                note_wakeup(&mp.park)
                closing.append(gp)
    cdef int64_t unwind_deadline = nanotime() + 2000000000
    while closing and nanotime() < unwind_deadline:
        closing = [gp for gp in closing
                   if ld_acq_i32(&gp.status) != G_DEAD and not goexit_ignored(gp)]
        if closing:
            with nogil:
                gc_sleep_us(500)
    # What is left of the sync goroutines (inside foreign code, or deaf to
    # GoroutineExit) is orphaned: run() does not wait for it (see
    # "sync goroutines that outlive run()"). One on its way out is waited
    # for briefly, so that its exception still reaches this run().
    unwind_deadline = nanotime() + 1000000000
    for gp in _all_goroutines():
        if gp.kind != G_SYNC or gp.is_main or gp.thread_ident == 0:
            continue             # not started: closed with the rest below
        while (ld_acq_i32(&gp.status) != G_DEAD and not orphan_sync_g(gp)
               and nanotime() < unwind_deadline):
            with nogil:
                gc_sleep_us(200)
    # Wait until the other Ms have left their loops; an M inside a sync
    # goroutine's foreign call (time.sleep, socket...) is not waited for: it
    # exits on its own when the call returns (its gen is old by then).
    while True:
        busy = 0
        gc_mutex_lock(&sched.lock)
        mp = sched.allm
        while mp != NULL:
            if not mp.exited and mp.gen == sched.gen and not (mp.curg != NULL and (<G>mp.curg).kind == G_SYNC):
                busy += 1
            mp = mp.alllink
        gc_mutex_unlock(&sched.lock)
        if busy == 0:
            break
        stop_the_world()
        with nogil:
            gc_sleep_us(200)
    # Take every queued G out of the run queues (their references are ours).
    held = drain_runqs()
    sched.gen += 1                       # orphan stragglers
    st_rel_i32(&sched.running, 0)
    sched.m0 = NULL
    # Close what is left: runnable and parked goroutines alike. Closing one
    # can ready another (a Mutex waiter's close gives the lock it was handed
    # to the next waiter; goready queues that G): drain again, so no closed
    # G is left queued for the next run() to execute a second time.
    for gp in _all_goroutines():
        close_goroutine(gp)
    for gp in drain_runqs():
        if ld_acq_i32(&gp.status) != G_DEAD:
            # not one of ours: a plain thread's go() queued it for the
            # next (background) start while we tore down - it stays queued
            Py_INCREF(gp)                # the global queue's reference
            gc_mutex_lock(&sched.lock)
            globrunq_put(<void *>gp)
            gc_mutex_unlock(&sched.lock)
    del held
    drop_timers()
    aio = sys.modules.get("gocore.aio")
    if aio is not None:
        aio._runtime_stopped()           # stop its asyncio loop (cancels what is left); never raises


cdef list drain_runqs():
    """Requires GIL; no M runs. Empty the global queue and every P's ring;
    returns their Gs (the queues' references move to the list)."""
    cdef void *q
    cdef int32_t i
    held = []
    gc_mutex_lock(&sched.lock)
    while True:
        q = gqueue_get(&sched.gq)
        if q == NULL:
            break
        held.append(<object>q); Py_DECREF(<object>q)
    gc_mutex_unlock(&sched.lock)
    for i in range(sched.nprocs):
        while True:
            q = runq_get(&sched.allp[i])
            if q == NULL:
                break
            held.append(<object>q); Py_DECREF(<object>q)
    return held


cdef bint goexit_ignored(G gp) noexcept:
    """Requires GIL. Has sync G gp parked again after teardown woke it with
    GoroutineExit (it swallowed it)?"""
    cdef gc_m *mp
    cdef bint r
    gc_mutex_lock(&sched.lock)
    mp = m_running_locked(gp)
    r = mp != NULL and ld_acq_i32(&mp.goexit) == GOEXIT_IGNORED
    gc_mutex_unlock(&sched.lock)
    return r


cdef void close_goroutine(G gp) noexcept:
    """Requires GIL; runtime stopped. Run gp's finally blocks and drop it."""
    global gc_tls_g
    cdef int32_t st = ld_acq_i32(&gp.status)
    if st == G_DEAD:
        return
    if st == G_WAITING and gp.kind == G_ASYNC:
        if gp.waiting is not None:
            try:
                gp.waiting._cancel()
            except BaseException:
                pass
        Py_DECREF(gp)                  # the parked state's reference
    if gp.kind == G_ASYNC and gp.coro is not None:
        gc_tls_g = <PyObject *>gp
        try:
            gp.coro.close()
        except BaseException as e:
            sys.unraisablehook(make_unraisable(e, gp))
        gc_tls_g = NULL
    if gp.kind != G_SYNC or st != G_RUNNING:
        st_rel_i32(&gp.status, G_DEAD)
        gp.coro = None
        gp.waiting = None
        fetch_add_i64(&sched.ngoroutines, -1)
        allgs_remove(gp)


cdef object make_unraisable(object exc, G gp, str msg=None):
    class _U:
        pass
    u = _U()
    u.exc_type = type(exc)
    u.exc_value = exc
    u.exc_traceback = exc.__traceback__
    u.err_msg = msg if msg is not None else f"Exception ignored while closing goroutine {gp.goid}"
    u.object = None
    return u
