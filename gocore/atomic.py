"""Go's sync/atomic for gocore: ``Int64``, ``Bool`` and ``Value``.

    from gocore.atomic import Int64

    ops = Int64()
    ops.add(1)            # atomic.AddInt64(&ops, 1) / ops.Add(1); returns the new value
    ops.load()            # ops.Load()

Implemented with C11 atomics in the compiled ``gocore._atomic``, so they
are correct from any goroutine or thread on GIL builds and on
free-threaded CPython alike, and never block. ``Int64`` wraps around on
overflow like Go's int64. ``Value`` compares by identity in
``compare_and_swap`` and refuses ``None`` and a change of type, as Go's
``atomic.Value`` does.
"""

from gocore._atomic import Bool, Int64, Value

__all__ = ["Int64", "Bool", "Value"]
