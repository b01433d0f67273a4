# Extern declarations for csrc/gocore_pytype.h: internal types refuse
# construction from Python (see the header).

from cpython.object cimport PyObject

cdef extern from "gocore_pytype.h":
    void gc_internal_type(object t)     # module init only, after its last `T()` call
    void gc_warn_unawaited(const char *what) noexcept   # from a tp_dealloc (Requires GIL)
    PyObject *gc_awaited_again(const char *what) noexcept            # sets RuntimeError, returns NULL
    int gc_parked_elsewhere(const char *what, long long goid) noexcept   # sets RuntimeError, returns -1
    bint gc_mark_awaited(bint *flag) noexcept nogil         # 1: first await of the object
