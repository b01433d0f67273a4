/* gocore_signal.h - signals and the scheduler's threads: Ms block
 * asynchronous signals so that the process' signals reach the main thread;
 * during run() a Python-handled signal's handler is chained so that it also
 * wakes M0 (the thread inside run()) wherever it waits.
 *
 * Only the _sched extension includes this header: its static state is
 * that module's own.
 */
#ifndef GOCORE_SIGNAL_H
#define GOCORE_SIGNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "gocore_atomic.h"
#include "gocore_futex.h"

/* Block every asynchronous signal in the calling thread, so that the process'
 * signals (SIGINT above all) are delivered to the main thread. */
static inline void gc_block_signals(void) {
    sigset_t set;
    sigfillset(&set);
    sigdelset(&set, SIGSEGV); sigdelset(&set, SIGBUS); sigdelset(&set, SIGFPE);
    sigdelset(&set, SIGILL); sigdelset(&set, SIGABRT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Signals with a Python handler during run(): our handler chains to the one
 * it replaced (CPython's, which trips Python's flag), then pokes M0 so that
 * it runs Python's handlers even if the signal came while it was between
 * waits (looking for work in C code) and would otherwise sleep on with the
 * handler pending. Python's handlers run on the main thread only, and the
 * other Ms block asynchronous signals, so nothing else would notice.
 *
 * Protocol: run() (main thread, GIL held) fills gc_sig_old[sig] before
 * sigaction installs gc_chain_handler, and restores it - unless Python
 * replaced ours meanwhile (signal.signal() during run) - before clearing
 * gc_sigpending_flag/gc_m0_note, which are set once per run() before the
 * first install. The handler only reads them. */
static struct sigaction gc_sig_old[NSIG];
static unsigned char gc_sig_chained[NSIG];
static int32_t *gc_sigpending_flag;
static gc_note *gc_m0_note;
/* Set once by the network poller (gocore/_netpoll.pxi): breaks an
 * epoll_wait that M0 may block in (an eventfd write: async-signal-safe). */
static void (*gc_sig_netbreak)(void);

static void gc_chain_handler(int sig, siginfo_t *info, void *ctx) {
    struct sigaction *old = &gc_sig_old[sig];
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) old->sa_sigaction(sig, info, ctx);
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
    }
    if (gc_sigpending_flag) st_rel_i32(gc_sigpending_flag, 1);
    fence_seq_cst();      /* pairs with stopm's: it sees the flag or our poke */
    if (gc_m0_note) note_poke(gc_m0_note);   /* M0 sees 2: poked, not handed a P */
    if (gc_sig_netbreak) gc_sig_netbreak();
}

static inline void gc_sigchain_begin(int32_t *flag, gc_note *m0note) {
    gc_sigpending_flag = flag;
    gc_m0_note = m0note;
}

/* Chain sig (which has a Python handler) for the rest of this run(). Returns
 * 1 if chained now, 0 if already chained or nothing to chain, -1 on error. */
static inline int gc_sigchain_add(int sig) {
    struct sigaction sa;
    if (sig <= 0 || sig >= NSIG || !gc_m0_note) return 0;
    if (gc_sig_chained[sig]) {
        if (sigaction(sig, NULL, &sa) != 0) return -1;
        if ((sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == gc_chain_handler)
            return 0;
        gc_sig_chained[sig] = 0;      /* Python replaced ours: chain the new one */
    }
    if (sigaction(sig, NULL, &gc_sig_old[sig]) != 0) return -1;
    if (!(gc_sig_old[sig].sa_flags & SA_SIGINFO) &&
        (gc_sig_old[sig].sa_handler == SIG_DFL || gc_sig_old[sig].sa_handler == SIG_IGN))
        return 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = gc_chain_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | (gc_sig_old[sig].sa_flags & SA_RESTART);
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0) return -1;
    gc_sig_chained[sig] = 1;
    return 1;
}

/* End of run(): put back every handler we replaced that is still ours. */
static inline void gc_sigchain_end(void) {
    struct sigaction cur;
    for (int sig = 1; sig < NSIG; sig++) {
        if (!gc_sig_chained[sig]) continue;
        gc_sig_chained[sig] = 0;
        if (sigaction(sig, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
                cur.sa_sigaction == gc_chain_handler)
            sigaction(sig, &gc_sig_old[sig], NULL);
    }
    gc_sigpending_flag = NULL;
    gc_m0_note = NULL;
}

#endif
