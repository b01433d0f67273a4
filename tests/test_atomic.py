"""gocore.atomic: Go's sync/atomic types Int64, Bool and Value (issue 8).

Go rules checked: Add returns the new value, Swap the old one,
CompareAndSwap reports whether it stored; int64 arithmetic wraps around;
atomic.Value refuses nil and a change of concrete type. Differences from
Go: arguments are checked at run time (TypeError / OverflowError where Go
would not compile), and Value.compare_and_swap compares by identity.
"""
import pickle
import sys
import threading

import pytest

import gocore
from gocore import WaitGroup, go, run
from gocore.atomic import Bool, Int64, Value

I64_MAX = 2**63 - 1
I64_MIN = -2**63


# ---- Int64 ---------------------------------------------------------------

def test_int64_zero_value_and_initial():
    assert Int64().load() == 0
    assert Int64(-5).load() == -5
    assert repr(Int64(7)) == "Int64(7)"


def test_int64_ops():
    n = Int64()
    assert n.add(5) == 5          # the new value, like atomic.AddInt64
    assert n.add(-2) == 3
    n.store(10)
    assert n.load() == 10
    assert n.swap(20) == 10       # the old value
    assert n.load() == 20
    assert n.compare_and_swap(19, 30) is False
    assert n.load() == 20
    assert n.compare_and_swap(20, 30) is True
    assert n.load() == 30


def test_int64_wraps_like_go():
    """Go: int64 arithmetic wraps around (two's complement)."""
    n = Int64(I64_MAX)
    assert n.add(1) == I64_MIN
    assert n.add(-1) == I64_MAX
    n.store(I64_MIN)
    assert n.add(I64_MIN) == 0
    assert Int64(I64_MIN).load() == I64_MIN


@pytest.mark.parametrize("bad", [1.0, "1", None, True, [1], 1j])
def test_int64_rejects_non_int(bad):
    n = Int64()
    with pytest.raises(TypeError, match=r"Int64\.add: expected int, got"):
        n.add(bad)
    with pytest.raises(TypeError, match=r"Int64\.store: expected int"):
        n.store(bad)
    with pytest.raises(TypeError, match=r"Int64\.swap: expected int"):
        n.swap(bad)
    with pytest.raises(TypeError, match=r"Int64\.compare_and_swap: expected int"):
        n.compare_and_swap(0, bad)
    with pytest.raises(TypeError, match=r"Int64\(\): expected int"):
        Int64(bad)
    assert n.load() == 0


@pytest.mark.parametrize("big", [I64_MAX + 1, I64_MIN - 1, 2**100])
def test_int64_rejects_out_of_range(big):
    n = Int64(3)
    with pytest.raises(OverflowError, match="out of int64 range"):
        n.add(big)
    with pytest.raises(OverflowError, match="out of int64 range"):
        n.store(big)
    assert n.load() == 3


def test_int64_int_subclass_and_pickle():
    class MyInt(int):
        pass
    n = Int64(MyInt(4))
    assert n.add(MyInt(1)) == 5
    assert pickle.loads(pickle.dumps(n)).load() == 5


# ---- Bool ----------------------------------------------------------------

def test_bool_ops():
    b = Bool()
    assert b.load() is False
    b.store(True)
    assert b.load() is True
    assert b.swap(False) is True
    assert b.compare_and_swap(True, False) is False
    assert b.compare_and_swap(False, True) is True
    assert b.load() is True
    assert repr(b) == "Bool(True)"
    assert Bool(True).load() is True


@pytest.mark.parametrize("bad", [1, 0, None, "yes"])
def test_bool_rejects_non_bool(bad):
    b = Bool()
    with pytest.raises(TypeError, match=r"Bool\.store: expected bool"):
        b.store(bad)
    with pytest.raises(TypeError, match=r"Bool\.swap: expected bool"):
        b.swap(bad)
    with pytest.raises(TypeError, match=r"Bool\.compare_and_swap: expected bool"):
        b.compare_and_swap(bad, True)
    with pytest.raises(TypeError, match=r"Bool\(\): expected bool"):
        Bool(bad)


# ---- Value ---------------------------------------------------------------

def test_value_ops():
    v = Value()
    assert v.load() is None       # nothing stored yet
    a, b, c = [1], [2], [3]
    v.store(a)
    assert v.load() is a
    assert v.swap(b) is a
    assert v.compare_and_swap([2], c) is False   # equal but not identical
    assert v.compare_and_swap(b, c) is True
    assert v.load() is c
    assert repr(v) == "Value([3])"


def test_value_cas_from_empty():
    v = Value()
    x = object()
    assert v.compare_and_swap(None, x) is True
    assert v.load() is x
    assert v.compare_and_swap(None, object()) is False
    assert Value().swap(x) is None


def test_value_rejects_none_and_type_change():
    """Go: Store(nil) and a store of an inconsistent type panic."""
    v = Value()
    with pytest.raises(TypeError, match=r"Value\.store: cannot store None"):
        v.store(None)
    with pytest.raises(TypeError, match=r"Value\.compare_and_swap: cannot store None"):
        v.compare_and_swap(None, None)
    v.store("a")
    with pytest.raises(TypeError, match=r"Value\.store: inconsistently typed value: stored str, got int"):
        v.store(1)
    with pytest.raises(TypeError, match=r"Value\.swap: inconsistently typed"):
        v.swap(1)
    with pytest.raises(TypeError, match=r"Value\.compare_and_swap: inconsistently typed"):
        v.compare_and_swap("a", 1)
    assert v.load() == "a"


def test_value_releases_references():
    v = Value()
    x = object()
    base = sys.getrefcount(x)
    v.store(x)
    assert sys.getrefcount(x) == base + 1
    for _ in range(100):
        assert v.load() is x
    v.store(object())
    assert sys.getrefcount(x) == base


def test_value_destructor_may_use_the_value():
    """The replaced object is released after the internal lock: its
    destructor may call back into the same Value without deadlocking."""
    v = Value()
    seen = []

    class Probe:
        def __del__(self):
            seen.append(v.load())

    v.store(Probe())
    v.store(Probe())   # the first Probe dies here and loads the Value
    assert len(seen) == 1 and isinstance(seen[0], Probe)


def test_value_cycle_is_collected():
    import gc
    import weakref

    class Node:
        pass
    n = Node()
    n.v = Value()
    n.v.store(n)
    r = weakref.ref(n)
    del n
    gc.collect()
    assert r() is None


def test_types_are_final():
    for t in (Int64, Bool, Value):
        with pytest.raises(TypeError):
            class Sub(t):  # noqa: F841
                pass


# ---- concurrency ---------------------------------------------------------

@pytest.mark.timeout(60)
def test_int64_add_concurrently_exact():
    """Lightweight goroutines, sync goroutines (gomaxprocs 2) and plain
    threads add at the same time: no update is lost."""
    n = Int64()
    flag = Bool()
    PER = 20_000
    ASYNC_G, SYNC_G, THREADS = 8, 4, 4

    async def async_adder():
        for i in range(PER):
            n.add(1)
            if i % 1000 == 0:
                await gocore.gosched()

    def sync_adder():
        for _ in range(PER):
            n.add(1)

    def thread_adder():
        for _ in range(PER):
            n.add(1)
        flag.store(True)

    threads = [threading.Thread(target=thread_adder) for _ in range(THREADS)]

    async def main():
        wg = WaitGroup()
        for t in threads:
            t.start()
        for _ in range(ASYNC_G):
            wg.go(async_adder)
        for _ in range(SYNC_G):
            wg.go(sync_adder)
        await wg.wait()

    gocore.gomaxprocs(2)
    run(main)
    for t in threads:
        t.join()
    assert n.load() == PER * (ASYNC_G + SYNC_G + THREADS)
    assert flag.load() is True


@pytest.mark.timeout(60)
def test_int64_cas_loop_concurrently_exact():
    """A CAS loop (Go's classic lock-free update) from goroutines and
    threads: every increment lands exactly once."""
    n = Int64()
    PER = 5_000

    def cas_inc():
        for _ in range(PER):
            while True:
                old = n.load()
                if n.compare_and_swap(old, old + 1):
                    break

    async def async_cas_inc():
        cas_inc()

    threads = [threading.Thread(target=cas_inc) for _ in range(3)]

    async def main():
        wg = WaitGroup()
        for t in threads:
            t.start()
        for _ in range(3):
            wg.go(cas_inc)
            wg.go(async_cas_inc)
        await wg.wait()

    gocore.gomaxprocs(2)
    run(main)
    for t in threads:
        t.join()
    assert n.load() == PER * 9


@pytest.mark.timeout(60)
def test_value_swap_concurrently_conserves_objects():
    """Each goroutine/thread swaps in its own tokens; every token is seen
    exactly once as a swap result or left in the Value at the end."""
    v = Value()
    PER = 3_000
    results = []
    lock = threading.Lock()

    def swapper(k):
        got = []
        for i in range(PER):
            old = v.swap((k, i))
            if old is not None:
                got.append(old)
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=swapper, args=(100 + k,)) for k in range(3)]

    async def main():
        wg = WaitGroup()
        for t in threads:
            t.start()
        for k in range(3):
            wg.go(swapper, k)
        await wg.wait()

    gocore.gomaxprocs(2)
    run(main)
    for t in threads:
        t.join()
    results.append(v.load())
    assert len(results) == 6 * PER
    assert len(set(results)) == 6 * PER
