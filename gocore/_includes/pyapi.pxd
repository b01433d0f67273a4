# CPython API declarations that Cython's cpython/*.pxd do not provide, shared
# by the compiled modules (one copy rather than one per .pyx), and the small
# helpers of csrc/gocore_pyutil.h.
from cpython.object cimport PyObject

cdef extern from "Python.h":
    # generators and coroutines
    ctypedef enum PySendResult:
        PYGEN_RETURN
        PYGEN_ERROR
        PYGEN_NEXT
    PySendResult PyIter_Send(object iter, object arg, PyObject **presult)
    ctypedef PySendResult (*sendfunc)(PyObject *, PyObject *, PyObject **)
    ctypedef struct PyAsyncMethods:
        sendfunc am_send
    ctypedef struct PyTypeObject:
        PyAsyncMethods *tp_as_async
    bint PyCoro_CheckExact(object o)
    # signals and threads
    int PyErr_CheckSignals() except -1
    ctypedef void (*thread_func)(void *) noexcept nogil
    unsigned long PyThread_start_new_thread(thread_func f, void *arg) nogil
    unsigned long PyThread_get_thread_ident()
    # a builtin function made from a C function (go's METH_FASTCALL entry)
    ctypedef struct PyMethodDef:
        const char *ml_name
        void *ml_meth
        int ml_flags
        const char *ml_doc
    int METH_FASTCALL
    int METH_KEYWORDS
    object PyCFunction_NewEx(PyMethodDef *ml, object self, object module)
    # tuples and bytes built in place
    tuple PyTuple_New(Py_ssize_t n)
    void PyTuple_SET_ITEM(object t, Py_ssize_t i, object o)
    int _PyBytes_Resize(PyObject **b, Py_ssize_t n) except -1

cdef extern from "gocore_pyutil.h":
    int gc_pyfunc_is_async(object fn)
    int gc_error_set() except -1
