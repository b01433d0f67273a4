# gocore/_sched_fork.pxi - os.fork(): the parent takes the runtime's locks
# around the fork; the child forgets the runtime. `include`d by _sched.pyx.

# ---------------------------------------------------------------- fork
#
# os.fork() copies one thread: the child has no Ms, no sysmon and none of
# the parent's goroutines can run there. DESIGN: the child starts with no
# runtime, and go()/run() work in it (multiprocessing's fork start method,
# pre-fork servers). Around the fork() call itself the parent holds
# timerlock, sched.lock and allglock (in the lock order; their holders never
# wait for the GIL), so the child inherits consistent structures: C
# handlers registered with pthread_atfork take them inside fork() and
# release them (parent) or reset them (child) as soon as it returns. The
# child forgets the runtime without running any goroutine code:
# the parent's Gs, Ms and timers are leaked, not closed (closing would run
# their finally blocks a second time, in the child). Every parent G still
# listed is marked claimed (park_claim = 1), so that a channel operation in
# the child that finds one of their waiters skips it instead of readying a
# goroutine of the parent. Known gaps: a channel lock, or a plain thread's
# waiter, of a thread the child does not have; and a child forked inside a
# goroutine runs on that goroutine's frames: it must end with os._exit()
# (as multiprocessing's children do), not return into the parent's runtime.
# Rejected: os.register_at_fork's before/after_in_parent hooks for the
# locks. They bracket more than fork(): CPython 3.12 issues its
# "multi-threaded fork" DeprecationWarning between fork() and the
# after_in_parent hooks, and writing it to stderr drops the GIL; an M then
# took the GIL and waited for sched.lock, which the forking thread held
# while it waited for the GIL (a hang of the parent in 1 of ~50 forks from
# a sync goroutine; 3.13 warns after the hooks). The waits for the locks
# hold the GIL (fork is called with it): safe, since no holder waits for it.

cdef extern from "<pthread.h>" nogil:
    int pthread_atfork(void (*prepare)() noexcept nogil, void (*parent)() noexcept nogil,
                       void (*child)() noexcept nogil)


cdef void fork_prepare() noexcept nogil:
    gc_mutex_lock(&timerlock)
    gc_mutex_lock(&sched.lock)
    gc_mutex_lock(&allglock)


cdef void fork_parent() noexcept nogil:
    gc_mutex_unlock(&allglock)
    gc_mutex_unlock(&sched.lock)
    gc_mutex_unlock(&timerlock)


cdef void fork_child() noexcept nogil:
    # one thread here, this one: the parent's waiters for these locks are gone
    st_rel_u32(&allglock.key, 0)
    st_rel_u32(&sched.lock.key, 0)
    st_rel_u32(&timerlock.key, 0)


def _after_fork_child():
    global allgs_head, gc_tls_m, gc_tls_g, _main_g, _main_result, _panic, _start_lock
    global bg_handover, run_owner, norphans, nthreadparked, threadparkseq, inspect_gate
    global deadlock_holdoff, deadlock_backoff, timer_kick, _thread_gs
    cdef PyObject *p
    cdef gc_m *mp
    # the parent's goroutines: never to run here (their references leak)
    p = allgs_head
    while p != NULL:
        st_rel_u32(&(<G>p).park_claim, 1)
        p = (<G>p).allnext
    allgs_head = NULL
    # the parent's timers: dropped unfired (references leak, as above)
    while timers_pop_due(&timers, GC_NEVER) != NULL:
        pass
    timers.next_when = GC_NEVER
    timer_kick = 0
    st_rel_i32(&bubble_on, 0)    # a synctest bubble ends with its runtime
    # its Ms do not exist here; one of them may be this very thread
    mp = sched.allm
    while mp != NULL:
        mp.uncounted = 1
        st_rel_i32(&mp.goexit, GOEXIT_ORPHANED)
        mp = mp.alllink
    if sched.m0 != NULL:
        sched.m0.uncounted = 1
    while gqueue_get(&sched.gq) != NULL:
        pass
    sched.allm = NULL
    sched.midle = NULL
    sched.nmidle = 0
    sched.mcount = 0
    sched.m0 = NULL
    sched.timer_m = NULL
    sched.nmspinning = 0
    sched.nmblocked = 0
    sched.ngoroutines = 0
    sched.stopping = 0
    sched.sigpending = 0
    sched.sysmon_running = 0
    sched.sysmon_wait = 0
    note_clear(&sched.sysmon_note)
    sched.gen += 1                   # anything left of the parent's Ms is a straggler
    st_rel_i32(&sched.running, 0)
    maing.g = NULL
    nthreadparked = 0
    threadparkseq = 0
    inspect_gate = 0
    deadlock_holdoff = deadlock_backoff = 0
    bg_handover = 0
    run_owner = 0
    norphans = 0
    if GOCORE_DEBUG:
        memset(gc_dbg_store, 0, GC_DBG_N * sizeof(int64_t))
    gc_tls_m = NULL                  # this thread is no M and runs no goroutine here
    gc_tls_g = NULL
    _main_g = None
    _main_result = None
    _panic = None
    _start_lock = threading.RLock()
    _thread_gs = threading.local()   # this thread may be the child's main thread now
    gc_sigchain_end()                # run()'s signal handlers, if forked inside it


if pthread_atfork(fork_prepare, fork_parent, fork_child) != 0:
    raise ImportError("gocore: pthread_atfork failed")
os.register_at_fork(after_in_child=_after_fork_child)
