# cython: language_level=3
# cython: freethreading_compatible=True
# gocore/_atomic.pyx - Go's sync/atomic types (atomic.Int64, atomic.Bool,
# atomic.Value) on C11 atomics. Public face: gocore/atomic.py.
#
# Why not a Python-level lock: `counter += 1` on a plain int is a
# read-modify-write of three bytecodes; on a GIL build a thread switch
# between them loses an update only rarely, on free-threaded CPython at
# gomaxprocs >= 2 it loses updates all the time. Int64 and Bool keep their
# word in the object and touch it only through csrc/gocore_atomic.h, so
# they are correct with or without the GIL and never block.
#
# Memory ordering (Go's sync/atomic is sequentially consistent; we give the
# orderings that Go programs rely on, named at each call):
#   load   ld_acq   - sees everything written before the store it reads
#   store  st_rel   - publishes everything written before it
#   add, swap, compare_and_swap: acq_rel read-modify-writes
# On x86-64 each of these is one plain instruction (mov, lock xadd,
# xchg, lock cmpxchg); an acq_rel RMW is also a full barrier there.
#
# Value holds a Python reference, which cannot be swapped by a bare
# atomic pointer exchange: a loader would have to incref the object after
# reading the pointer, racing with a storer that drops the last reference
# (a use-after-free). Rejected: hazard pointers / epoch reclamation (too
# much machinery for a rarely hot type). Chosen: a gc_mutex around the
# pointer. Under the lock we only read the field and take new references;
# the reference that a store/swap replaces is moved into a local and
# released after the unlock, so no destructor (which might call back into
# this Value) ever runs under the lock - gc_mutex's rule.

cimport cython
from libc.stdint cimport uint32_t, int64_t, uint64_t

from gocore._includes.atomic cimport (ld_acq_i64, st_rel_i64, fetch_add_i64, cas_i64,
                                      ld_acq_u32, st_rel_u32, xchg_u32, cas_u32)
from gocore._includes.futex cimport gc_mutex, gc_mutex_lock, gc_mutex_unlock

# xchg_i64 is defined in gocore_atomic.h but not (yet) declared in
# _includes/atomic.pxd; declare it here until it is.
cdef extern from "gocore_atomic.h" nogil:
    int64_t xchg_i64(int64_t *p, int64_t v)


cdef int64_t as_int64(object v, str where) except? -1:
    """A Python int in int64 range, else TypeError/OverflowError naming the
    call. bool is refused: Int64.add(True) is a bug that Go would not
    compile."""
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{where}: expected int, got {type(v).__name__}")
    if v < -9223372036854775808 or v > 9223372036854775807:
        raise OverflowError(f"{where}: {v} is out of int64 range")
    return <int64_t>v


cdef uint32_t as_bool(object v, str where) except 2:
    if v is True:
        return 1
    if v is False:
        return 0
    raise TypeError(f"{where}: expected bool, got {type(v).__name__}")


@cython.final
cdef class Int64:
    """Go's atomic.Int64: an int64 updated atomically, safe from any
    goroutine or thread, with or without the GIL.

        n = Int64()          # zero value 0, like Go's
        n.add(1)             # -> the new value (Go's Add)
        n.load(); n.store(5)
        n.swap(7)            # -> the old value
        n.compare_and_swap(7, 8)  # -> True if it was 7 and is now 8

    Arithmetic wraps around like Go's int64: Int64(2**63 - 1).add(1) gives
    -2**63. Arguments must be ints in int64 range (TypeError for anything
    else, bool included; OverflowError outside the range)."""

    cdef int64_t v   # only through gocore_atomic.h (any thread)

    def __init__(self, value=0):
        st_rel_i64(&self.v, as_int64(value, "Int64()"))

    def load(self):
        """The current value (acquire load)."""
        return ld_acq_i64(&self.v)

    def store(self, value):
        """Set the value (release store)."""
        st_rel_i64(&self.v, as_int64(value, "Int64.store"))

    def add(self, delta):
        """Add delta atomically and return the new value, wrapping around
        on int64 overflow like Go (atomic.AddInt64)."""
        cdef int64_t d = as_int64(delta, "Int64.add")
        cdef int64_t old = fetch_add_i64(&self.v, d)   # acq_rel; C11 atomic add wraps
        return <int64_t>(<uint64_t>old + <uint64_t>d)  # same wrap, no signed overflow UB

    def swap(self, new):
        """Store new and return the old value."""
        return xchg_i64(&self.v, as_int64(new, "Int64.swap"))   # acq_rel

    def compare_and_swap(self, old, new):
        """If the value is old, set it to new and return True; else False."""
        cdef int64_t o = as_int64(old, "Int64.compare_and_swap")
        cdef int64_t n = as_int64(new, "Int64.compare_and_swap")
        return cas_i64(&self.v, o, n)   # acq_rel on success, acquire on failure

    def __repr__(self):
        return f"Int64({ld_acq_i64(&self.v)})"

    def __reduce__(self):
        return (Int64, (ld_acq_i64(&self.v),))


@cython.final
cdef class Bool:
    """Go's atomic.Bool: load, store, swap (-> old), compare_and_swap
    (-> bool). Values must be True or False (TypeError otherwise)."""

    cdef uint32_t v   # 0 or 1, only through gocore_atomic.h (any thread)

    def __init__(self, value=False):
        st_rel_u32(&self.v, as_bool(value, "Bool()"))

    def load(self):
        return ld_acq_u32(&self.v) != 0

    def store(self, value):
        st_rel_u32(&self.v, as_bool(value, "Bool.store"))

    def swap(self, new):
        return xchg_u32(&self.v, as_bool(new, "Bool.swap")) != 0   # acq_rel

    def compare_and_swap(self, old, new):
        cdef uint32_t o = as_bool(old, "Bool.compare_and_swap")
        cdef uint32_t n = as_bool(new, "Bool.compare_and_swap")
        return cas_u32(&self.v, o, n)   # acq_rel

    def __repr__(self):
        return f"Bool({ld_acq_u32(&self.v) != 0})"

    def __reduce__(self):
        return (Bool, (ld_acq_u32(&self.v) != 0,))


@cython.final
cdef class Value:
    """Go's atomic.Value: holds one object, swapped atomically.

    load() is None until the first store. As in Go, storing None raises
    (a stored None would be indistinguishable from "never stored"), and
    every store must use the same type as the first one (TypeError, where
    Go panics). compare_and_swap(old, new) compares by identity (`is`):
    Go compares interface values with ==, which for pointers - what Go
    programs usually keep in a Value - is identity too."""

    cdef gc_mutex lock   # guards v and typ; held only for pointer moves and increfs
    cdef object v        # under lock; None = never stored
    cdef object typ      # under lock; type of the first stored value

    cdef inline int check_new(self, object new, str where) except -1:
        if new is None:
            raise TypeError(f"{where}: cannot store None (Go: store of nil value into Value)")
        return 0

    def load(self):
        """The stored object, or None if nothing was stored yet."""
        cdef object r
        gc_mutex_lock(&self.lock)
        r = self.v            # incref only
        gc_mutex_unlock(&self.lock)
        return r

    def store(self, new):
        """Store new (not None; same type as the first store)."""
        self.swap_impl(new, "Value.store")

    def swap(self, new):
        """Store new and return the previous object (None if none)."""
        return self.swap_impl(new, "Value.swap")

    cdef object swap_impl(self, object new, str where):
        cdef object old
        cdef bint bad_type = False
        self.check_new(new, where)
        gc_mutex_lock(&self.lock)
        if self.typ is not None and type(new) is not self.typ:
            bad_type = True
        else:
            if self.typ is None:
                self.typ = type(new)
            old = self.v      # our local reference keeps old alive past the unlock,
            self.v = new      # so this assignment's decref never frees it here
        gc_mutex_unlock(&self.lock)
        if bad_type:
            raise TypeError(f"{where}: inconsistently typed value: stored {self.typ.__name__}, "
                            f"got {type(new).__name__}")
        return old            # released by the caller, outside the lock

    def compare_and_swap(self, old, new):
        """If the stored object is old (identity; None means "nothing
        stored yet"), store new and return True; else return False."""
        cdef object prev = None
        cdef bint swapped = False
        cdef bint bad_type = False
        self.check_new(new, "Value.compare_and_swap")
        gc_mutex_lock(&self.lock)
        if self.typ is not None and type(new) is not self.typ:
            bad_type = True
        elif self.v is old:
            if self.typ is None:
                self.typ = type(new)
            prev = self.v     # keeps the replaced object alive past the unlock
            self.v = new
            swapped = True
        gc_mutex_unlock(&self.lock)
        if bad_type:
            raise TypeError(f"Value.compare_and_swap: inconsistently typed value: stored "
                            f"{self.typ.__name__}, got {type(new).__name__}")
        return swapped

    def __repr__(self):
        return f"Value({self.load()!r})"
