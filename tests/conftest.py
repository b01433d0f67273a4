"""Shared fixtures for gocore's tests.

- ``rt``: runs a semantics test at gomaxprocs 1, 2 and 4 (``rt.run(main, ...)``
  calls ``gocore.gomaxprocs(n)`` then ``gocore.run(main, ...)``); 4 is more
  Ps than this machine has cores, so Ps idle, spin and steal from each
  other. ``GOCORE_TEST_PROCS=1,2`` narrows the set (e.g. for a slow leg).
- ``wait_until(pred)``: yield until ``pred()`` holds. To wait for a
  goroutine to park, use ``gocore._testhooks.wait_blocked(ch, recv=n)`` /
  ``wait_parked(n, reason=..., fn=...)``: they observe the parking itself.
  ``settle()`` (yield n times) is left only where a test lets time pass
  with nothing to observe (to give a wrong wake-up the chance to happen).
- an autouse check that no goroutine is left alive once a test is over
  (``gocore.num_goroutine() == 1`` outside ``run()``).
- ``run_prog``: runs a program from ``tests/progs/`` in a subprocess (for
  exit statuses, panics outside ``run()``, Ctrl-C and the runtime started in
  the background by ``go()``, which cannot be undone inside one process).

The tests import the *installed* gocore: run them from outside the source
tree (see docs/testing.md).
"""
import os
import subprocess
import sys
import time

import pytest

import gocore

# the GIL is off: a free-threaded build, and not re-enabled (PYTHON_GIL=1)
FREE_THREADED = hasattr(sys, "_is_gil_enabled") and not sys._is_gil_enabled()

PROGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progs")

# Child interpreters the tests start (`python -c ...`, examples) must import
# the installed gocore too, not the source package of a checkout they may
# run in: PYTHONSAFEPATH (Python 3.11+, as -P) keeps cwd off their sys.path.
os.environ["PYTHONSAFEPATH"] = "1"

PROCS = tuple(int(n) for n in os.environ.get("GOCORE_TEST_PROCS", "1,2,4").split(","))


# Timeouts: pytest-timeout's default "signal" method. Its "thread" method
# would keep a helper thread alive during every test, and a live plain
# thread makes deadlock detection hold off (the thread might still send).
# gocore's parked main thread does run signal handlers, so SIGALRM works;
# programs that could hang in C run as subprocesses with their own timeout,
# and .ci/run bounds each pytest run with `timeout`.


class Runtime:
    """One scheduler configuration: ``rt.run(main, *args)``."""

    def __init__(self, procs):
        self.procs = procs

    def run(self, fn, *args, **kwargs):
        gocore.gomaxprocs(self.procs)
        return gocore.run(fn, *args, **kwargs)

    def __repr__(self):
        return f"Runtime(gomaxprocs={self.procs})"


@pytest.fixture(params=PROCS, ids=[f"procs{n}" for n in PROCS])
def rt(request):
    """Run the test's goroutines at gomaxprocs 1, 2 and 4."""
    return Runtime(request.param)


@pytest.fixture(autouse=True)
def no_goroutine_left():
    """After every test, in every test file: run() has returned and no
    goroutine is left alive (Go: when main returns, the program's goroutines
    are gone). A test that leaves one fails here, not some later test."""
    saved = gocore.gomaxprocs()
    yield
    try:
        deadline = time.monotonic() + 2.0
        n = gocore.num_goroutine()
        # sync goroutines stuck in a foreign call (time.sleep...) finish on
        # their own shortly after run() returns; give them a moment
        while n != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
            n = gocore.num_goroutine()
        assert n == 1, f"{n - 1} goroutine(s) left alive after the test"
    finally:
        gocore.gomaxprocs(saved)


async def wait_until(pred, timeout=10.0):
    """Inside a goroutine: yield (gosched) until pred() is true. Fails the
    test on timeout instead of hanging."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s: {pred}")
        await gocore.gosched()


async def settle(n=50):
    """Yield n times, letting time pass where nothing can be observed (a
    test that checks a goroutine stays parked, or that a finished select
    leaves no stale waiter). Not for waiting until a goroutine parks: see
    gocore._testhooks.wait_blocked / wait_parked."""
    for _ in range(n):
        await gocore.gosched()


def run_prog(name, *args, env=None, timeout=30, **kw):
    """Run tests/progs/<name> with this interpreter; return CompletedProcess."""
    e = dict(os.environ)
    e.pop("GOCORE_MAXPROCS", None)
    if env:
        e.update(env)
    return subprocess.run(
        [sys.executable, os.path.join(PROGS, name), *map(str, args)],
        capture_output=True, text=True, env=e, timeout=timeout, cwd=PROGS, **kw)


def popen_prog(name, *args, env=None):
    """Start tests/progs/<name> with pipes; the caller owns the process."""
    e = dict(os.environ)
    e.pop("GOCORE_MAXPROCS", None)
    if env:
        e.update(env)
    return subprocess.Popen(
        [sys.executable, os.path.join(PROGS, name), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e, cwd=PROGS)
