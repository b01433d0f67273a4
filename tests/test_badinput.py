"""Bad input gets a clear exception at the call (DESIGN §1), never a
crash or a hang. Every message is pinned with match=."""
import re

import pytest

import gocore
from gocore import Chan, blocking_select, default, go, run, select

from conftest import run_prog


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fn, exc, msg", [
    (42, TypeError, "go() needs an async def function, a coroutine or a callable, got int"),
    ("x", TypeError, "go() needs an async def function, a coroutine or a callable, got str"),
    (None, TypeError, "got NoneType"),
])
def test_go_rejects_non_callables(fn, exc, msg):
    """Go's `go` takes a function call; go(42) / go("x") raise TypeError."""
    with pytest.raises(exc, match=re.escape(msg)):
        go(fn)
    assert gocore.num_goroutine() == 1


@pytest.mark.timeout(10)
def test_go_coroutine_with_args_rejected():
    """go(coroutine_object, extra) is ambiguous: TypeError."""
    async def f():
        pass

    coro = f()
    with pytest.raises(TypeError, match=re.escape("go(coroutine) takes no extra arguments")):
        go(coro, 1)
    coro.close()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("n, exc, msg", [
    (-3, ValueError, "gomaxprocs(n) needs 1 <= n <= 4096 (or 0 to query), got -3"),
    (4097, ValueError, "gomaxprocs(n) needs 1 <= n <= 4096 (or 0 to query), got 4097"),
    ("2", TypeError, "gomaxprocs(n) needs an int, got str"),
    (2.0, TypeError, "gomaxprocs(n) needs an int, got float"),
    (True, TypeError, "gomaxprocs(n) needs an int, got bool"),
])
def test_gomaxprocs_rejects_bad_values(n, exc, msg):
    """runtime.GOMAXPROCS needs a positive int (0 queries: see
    test_lifecycle_sched.py); the value is unchanged."""
    before = gocore.gomaxprocs()
    with pytest.raises(exc, match=re.escape(msg)):
        gocore.gomaxprocs(n)
    assert gocore.gomaxprocs() == before


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5"])
def test_gocore_maxprocs_env_invalid(value):
    """GOCORE_MAXPROCS must be a positive integer: an invalid value raises
    ValueError naming the variable (in a fresh process)."""
    r = run_prog("maxprocs_env.py", env={"GOCORE_MAXPROCS": value})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ValueError: GOCORE_MAXPROCS must be a positive integer, got {value!r}"


@pytest.mark.timeout(30)
def test_gocore_maxprocs_env_valid():
    """GOCORE_MAXPROCS=3 sets the default number of processors."""
    r = run_prog("maxprocs_env.py", env={"GOCORE_MAXPROCS": "3"})
    assert r.stdout.strip() == "3", r.stderr


@pytest.mark.timeout(10)
@pytest.mark.parametrize("size, exc, msg", [
    (-1, ValueError, "Chan(size) needs size >= 0, got -1"),
    ("3", TypeError, "Chan(size) needs an int, got str"),
    (True, TypeError, "Chan(size) needs an int, got bool"),
    (2.0, TypeError, "Chan(size) needs an int, got float"),
    (None, TypeError, "Chan(size) needs an int, got NoneType"),
])
def test_chan_rejects_bad_size(size, exc, msg):
    """make(chan T, n) needs n >= 0: Chan(-1) ValueError, a non-int size
    TypeError (bool is refused, though it is an int subclass)."""
    with pytest.raises(exc, match=re.escape(msg)):
        Chan(size)


@pytest.mark.timeout(10)
def test_select_needs_a_case():
    """select() with no cases: TypeError at the call (Go's empty select
    blocks forever; gocore refuses it - use `default` alone for a no-op)."""
    with pytest.raises(TypeError, match=re.escape("select() needs at least one case")):
        select()
    with pytest.raises(TypeError, match=re.escape("blocking_select() needs at least one case")):
        blocking_select()


def _cases():
    c = Chan()
    return [
        ("int", lambda: 42, "a case is ch.recv, ch.recv_ok, (ch.send, value) or default, got 42"),
        ("str", lambda: "recv", "a case is ch.recv, ch.recv_ok, (ch.send, value) or default, got 'recv'"),
        ("1-tuple", lambda: (c.send,), "a send case is (ch.send, value), got a 1-tuple"),
        ("3-tuple", lambda: (c.send, 1, 2), "a send case is (ch.send, value), got a 3-tuple"),
        ("bare send", lambda: c.send, "a send case is the tuple (ch.send, value), not ch.send alone"),
        ("(42, 1)", lambda: (42, 1), "a send case is (ch.send, value), got (42, ...)"),
        ("lambda", lambda: (lambda: None), "a case is ch.recv, ch.recv_ok, (ch.send, value) or default, got <function"),
        ("recv tuple", lambda: (c.recv, 1), "a send case is (ch.send, value), got (<"),
    ]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name, make, msg", _cases(), ids=[c[0] for c in _cases()])
def test_select_malformed_case(name, make, msg):
    """DESIGN §1: a malformed case raises TypeError at once - at the call
    of select()/blocking_select(), not at the await."""
    case = make()
    with pytest.raises(TypeError, match=re.escape(msg)):
        select(Chan().recv, case)
    with pytest.raises(TypeError, match=re.escape(msg)):
        blocking_select(case, default)


@pytest.mark.timeout(10)
def test_select_two_defaults():
    """Go allows one default per select."""
    with pytest.raises(TypeError, match="more than one default"):
        select(default, default)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fn, msg", [
    (42, "run() needs an async def function, a coroutine or a callable, got int"),
    ("main", "run() needs an async def function, a coroutine or a callable, got str"),
])
def test_run_rejects_non_callables(fn, msg):
    with pytest.raises(TypeError, match=re.escape(msg)):
        run(fn)


@pytest.mark.timeout(10)
def test_set_panic_hook_rejects_non_callable():
    with pytest.raises(TypeError, match="panic hook must be callable or None"):
        gocore.set_panic_hook(42)


@pytest.mark.timeout(10)
def test_await_outside_goroutine():
    """Awaiting a channel operation outside a gocore goroutine (e.g. from
    asyncio) would block forever: it raises RuntimeError instead."""
    async def f():
        await Chan().recv()

    coro = f()
    with pytest.raises(RuntimeError, match="outside"):
        coro.send(None)
    coro.close()
