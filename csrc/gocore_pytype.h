/* gocore_pytype.h - internal extension types that only gocore may build.
 *
 * uvloop's rule: the awaitables, waiter records and other helper classes
 * behind the public API refuse construction from Python with TypeError.
 * An object built by `T()` or `T.__new__(T)` skips the set-up gocore does
 * when it makes one, and stepping it (`next(op)`) could read unset C fields.
 *
 * gc_internal_type(T) runs once at module init, after the module made any
 * instance it needs by calling the type: it replaces the type's tp_new slot
 * (reached by `T()`, `T.__new__(T)`, subclasses and unpickling) with one
 * that raises, and clears tp_vectorcall (Cython >= 3.1 may set it for
 * `T()`) so that calls fall back to tp_new. gocore itself keeps making
 * instances with Cython's `T.__new__(T)`, which calls the type's generated
 * C function directly, never through the slot. Module init is
 * single-threaded (the import lock), so no caller can see a half-done
 * update, also on free-threaded builds.
 */
#ifndef GOCORE_PYTYPE_H
#define GOCORE_PYTYPE_H

#include <Python.h>

static PyObject *gc_refuse_new(PyTypeObject *t, PyObject *args, PyObject *kwds) {
    (void)args; (void)kwds;
    PyErr_Format(PyExc_TypeError,
                 "cannot create '%.200s' instances: an internal gocore type, "
                 "made only by gocore's own calls", t->tp_name);
    return NULL;
}

static inline void gc_internal_type(PyObject *type) {
    PyTypeObject *t = (PyTypeObject *)type;
    t->tp_new = gc_refuse_new;
    t->tp_vectorcall = NULL;
    PyType_Modified(t);
}

/* An awaitable's tp_dealloc found it never awaited (a forgotten `await`):
 * warn as CPython does for an un-awaited coroutine. Requires the GIL; the
 * object being freed is not touched, and the exception being handled (a
 * dealloc may run while one propagates) is kept. */
static void gc_warn_unawaited(const char *what) {
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *saved = PyErr_GetRaisedException();
#else
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
#endif
    if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                         "gocore: %s was never awaited (a forgotten `await`?); it did nothing",
                         what) < 0)
        PyErr_WriteUnraisable(NULL);      /* warnings turned into errors */
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(saved);
#else
    PyErr_Restore(et, ev, tb);
#endif
}

/* `await op`: mark op awaited; 1 if this caller is the first. A plain
 * load and store under the GIL, which serialises am_await; a CAS on
 * free-threaded builds, where two threads may await one object at once
 * and exactly one of them may go on to step it. */
static inline int gc_mark_awaited(int *flag) {
#ifdef Py_GIL_DISABLED
    int expected = 0;
    return __atomic_compare_exchange_n(flag, &expected, 1, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
#else
    if (*flag)
        return 0;
    *flag = 1;
    return 1;
#endif
}

/* The errors of the awaitables' rules, raised from their C slots: kept out
 * of line so that the slots' fast paths stay leaf functions. Each sets the
 * exception and returns NULL. */
static PyObject *gc_awaited_again(const char *what) {
    PyErr_Format(PyExc_RuntimeError,
                 "gocore: %s was already awaited: a gocore awaitable is awaited once, "
                 "by one goroutine (call it again for another operation)", what);
    return NULL;
}

static int gc_parked_elsewhere(const char *what, long long goid) {
    PyErr_Format(PyExc_RuntimeError,
                 "gocore: %s is parked in goroutine %lld; only that goroutine resumes it",
                 what, goid);
    return -1;
}

#endif
