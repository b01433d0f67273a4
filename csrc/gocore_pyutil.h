/* gocore_pyutil.h - small CPython helpers of the scheduler module: what kind
 * of function go()/run() were given, and handing Cython an error that a C
 * call has already set. Requires the GIL.
 */
#ifndef GOCORE_PYUTIL_H
#define GOCORE_PYUTIL_H

#include <Python.h>

/* 1: a Python function whose code is an async def (CO_COROUTINE),
 * 2: a generator function, 3: an async generator function, 0: another
 * Python function, -1: not a plain Python function. */
static inline int gc_pyfunc_is_async(PyObject *fn) {
    if (!PyFunction_Check(fn)) return -1;
    PyCodeObject *co = (PyCodeObject *)PyFunction_GET_CODE(fn);
    if (co->co_flags & CO_COROUTINE) return 1;
    if (co->co_flags & CO_ASYNC_GENERATOR) return 3;
    if (co->co_flags & CO_GENERATOR) return 2;
    return 0;
}

/* The error is already set: declared `except -1` in Cython, so that the
 * caller's try/except catches it with its traceback. */
static inline int gc_error_set(void) { return -1; }

#endif
