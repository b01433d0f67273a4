/* gocore_schedstate.h - the state of the _sched extension, defined here
 * (static) and included by gocore/_sched.pyx alone: the one `sched`, the
 * per-thread M and G, the TIMERS_DUE marker and the debug counters' store.
 * The other modules reach all of it through _sched's C API (gocore/_sched.pxd).
 */
#ifndef GOCORE_SCHEDSTATE_H
#define GOCORE_SCHEDSTATE_H

#include <Python.h>
#include <stdint.h>

#include "gocore_config.h"
#include "gocore_sched.h"

/* Per thread: the M this thread is (NULL for plain threads) and the G it
 * runs now (borrowed). Only the owning thread reads or writes them. */
#define GC_TLS __thread __attribute__((tls_model("initial-exec")))
static GC_TLS gc_m *gc_tls_m;
static GC_TLS PyObject *gc_tls_g;

static gc_sched gc_sched_;          /* `sched` in the Cython code */

/* findrunnable's answer "no G, but timers are due": an address that is no
 * G's. */
static char gc_timers_due_marker;
#define TIMERS_DUE ((void *)&gc_timers_due_marker)

/* Debug builds: the counters every module updates (gocore_config.h; the
 * other modules point their gc_dbg_ctr here at import). G objects are
 * counted as freed in a tp_dealloc wrapper installed at import, so release
 * builds keep Cython's own dealloc. */
static int64_t gc_dbg_store[GC_DBG_N];
static destructor gc_g_dealloc_orig;
static int (*gc_g_counted)(PyObject *);
static void gc_g_dealloc_hook(PyObject *o) {
    if (gc_g_counted(o)) gc_dbg_add(GC_DBG_G_OBJECTS, -1);
    gc_g_dealloc_orig(o);
}
static void gc_g_install_dealloc_hook(PyObject *type, int (*counted)(PyObject *)) {
    gc_g_counted = counted;
    gc_g_dealloc_orig = ((PyTypeObject *)type)->tp_dealloc;
    ((PyTypeObject *)type)->tp_dealloc = gc_g_dealloc_hook;
}

#endif
