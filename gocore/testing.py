"""Goroutine leak checks for tests (the idea of Go's goleak), with a pytest
plugin.

A goroutine *leaks* from a test when it is still alive after the test
function has returned: not one that was alive when the test started (the
baseline), not the main goroutine, not the caller, and still there after a
grace period in which it may finish (goroutines told to stop by a closed
channel or a cancelled context need a moment). Leaks matter for the
runtime that the first go() outside run() starts in the background: it
lives as long as the process. Inside run(), the goroutines still alive when
main returns are closed by run() itself (as a Go program's exit ends
them), so they never outlive the test; to check that main leaves nothing
behind, `await check_no_leaks_async()` at the end of main.

pytest (the plugin is registered by gocore's `pytest11` entry point and
does nothing unless a test opts in)::

    @pytest.mark.gocore_leakcheck                 # this test
    def test_worker(): ...

    @pytest.mark.gocore_leakcheck(timeout=2.0, ignore=["mymod.pool_worker"])
    def test_pool(): ...

    @pytest.mark.gocore_leakcheck(mode="reachable")   # no grace period: fail at
    def test_fast(): ...                              # once on a provable leak

    def test_other(gocore_leakcheck):             # the fixture: same check;
        gocore_leakcheck.ignore.append(helper)    # its settings can change
        ...

    # every test (pytest.ini, or [tool.pytest.ini_options] in pyproject.toml)
    gocore_leakcheck = true
    gocore_leakcheck_timeout = 1.0
    gocore_leakcheck_mode = reachable              # or grace (the default)

A leaking test fails, with the Go-style dump of each leaked goroutine.
Two modes: "grace" (the default) waits up to the timeout for the test's
goroutines to end and fails on any still alive; "reachable" fails as soon
as find_leaks() proves some of them leaked (parked where nothing alive can
wake them) and leaves alone those that something can still wake: it
waits only while some are still running or runnable (not parked yet,
up to the timeout), never for parked ones to end.
The baseline is taken after the test's fixtures are set up and the check
runs as soon as the test function returns (before fixture teardown, as
goleak's deferred VerifyNone does); a test that already failed is not
checked. `@pytest.mark.gocore_leakcheck(enabled=False)` exempts a test
when the ini option turns the check on for all.

Other test runners::

    baseline = gocore.testing.snapshot()
    ...                                            # the test
    gocore.testing.check_no_leaks(baseline=baseline)   # GoroutineLeakError
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Any, Union

from gocore import _debug, _sched
from gocore._leaks import find_leaks, format_leaks
from gocore._synctest import now, synctest, wait, wait_blocking   # the fake-clock bubble

__all__ = ["GoroutineLeakError", "snapshot", "check_no_leaks", "check_no_leaks_async",
           "LeakCheck", "DEFAULT_TIMEOUT", "find_leaks", "format_leaks", "LEAKCHECK_MODES",
           "synctest", "now", "wait", "wait_blocking"]

DEFAULT_TIMEOUT = 1.0   # seconds a test's goroutines get to finish

# the plugin's modes: wait for the test's goroutines to end (grace), or fail at
# once on those find_leaks() proves leaked (reachable)
LEAKCHECK_MODES = ("grace", "reachable")

IgnoreItem = Union[str, Callable[..., Any]]


class GoroutineLeakError(AssertionError):
    """Goroutines were left alive. `.goroutines` holds their ids and
    `.dump` their Go-style dump (also in the message)."""

    def __init__(self, message: str, goroutines: tuple[int, ...] = (), dump: str = ""):
        super().__init__(message)
        self.goroutines = goroutines
        self.dump = dump


def snapshot() -> frozenset[int]:
    """The ids of the goroutines alive now: a baseline for check_no_leaks."""
    return frozenset(info[0] for info in _sched._goroutine_info() if info[2] != "dead")


def _check_args(timeout: object, ignore: object, baseline: object
                ) -> tuple[float, tuple[IgnoreItem, ...], frozenset[int]]:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
    if not timeout >= 0:
        raise ValueError(f"timeout must be >= 0, got {timeout}")
    if isinstance(ignore, str) or callable(ignore):
        ignore = (ignore,)          # one item given alone
    if not isinstance(ignore, Iterable):
        raise TypeError(f"ignore must be a list of function names or functions, "
                        f"got {type(ignore).__name__}")
    items = tuple(ignore)
    for item in items:
        if not isinstance(item, str) and getattr(item, "__code__", None) is None:
            raise TypeError(f"ignore: {item!r} is neither a function name (str) nor a "
                            f"Python function")
    if baseline is None:
        base: frozenset[int] = frozenset()
    elif isinstance(baseline, Iterable):
        base = frozenset(baseline)
    else:
        raise TypeError(f"baseline must be a collection of goroutine ids (from "
                        f"snapshot()), got {type(baseline).__name__}")
    return float(timeout), items, base


def _names(code, module: str | None) -> tuple[str, ...]:
    qual = getattr(code, "co_qualname", code.co_name)
    return (qual, f"{module}.{qual}") if module else (qual,)


def _matches(g: _debug.GoroutineRecord, item: IgnoreItem) -> bool:
    """Whether the goroutine's stack (or its function, if not started) has
    the function item: a Python function, or a name - its qualified name
    (`Worker.run`, `main.<locals>.leaky`) or that prefixed by its module
    (`mypkg.workers.Worker.run`)."""
    codes = [(f.code, f.module) for f in g.frames]
    fn_code = getattr(g.fn, "__code__", None)
    if fn_code is not None:
        codes.append((fn_code, getattr(g.fn, "__module__", None)))
    if isinstance(item, str):
        return any(item in _names(code, module) for code, module in codes)
    target = item.__code__
    return any(code is target for code, _ in codes)


def _suspects(baseline: frozenset[int]) -> list[int]:
    """Ids of the goroutines that would leak if the check ended now."""
    return [goid for (goid, _kind, status, _r, _w, _c, _f, is_main, _i, is_current)
            in _sched._goroutine_info()
            if status != "dead" and not is_main and not is_current and goid not in baseline]


def _leaked(baseline: frozenset[int], ignore: tuple[IgnoreItem, ...]
            ) -> list[_debug.GoroutineRecord]:
    suspects = _suspects(baseline)
    if not suspects:
        return []
    gs = _debug.goroutines(only=set(suspects))
    return [g for g in gs if not any(_matches(g, item) for item in ignore)]


def _raise_leaked(leaked: list[_debug.GoroutineRecord], timeout: float) -> None:
    dump = _debug.format_goroutines(leaked)
    n = len(leaked)
    raise GoroutineLeakError(
        f"{n} goroutine{'s' if n != 1 else ''} leaked (still alive after waiting "
        f"{timeout:g}s for {'them' if n != 1 else 'it'} to end):\n\n{dump}",
        tuple(g.goid for g in leaked), dump)


def _on_async_goroutine() -> bool:
    return any(info[9] and info[1] == "async" for info in _sched._goroutine_info())


def check_no_leaks(timeout: float = DEFAULT_TIMEOUT, *,
                   ignore: Iterable[IgnoreItem] | IgnoreItem = (),
                   baseline: Collection[int] | None = None) -> None:
    """Raise GoroutineLeakError if goroutines other than the main one, the
    caller, those in baseline (see snapshot()) and those running one of
    the ignored functions (names or functions; see the module doc) are
    still alive after waiting up to timeout seconds for them to end.

    Blocks the calling thread: call it from a test, a plain thread or a
    sync goroutine; in an async goroutine use check_no_leaks_async()."""
    timeout_s, items, base = _check_args(timeout, ignore, baseline)
    if _on_async_goroutine():
        raise RuntimeError("check_no_leaks() would block a lightweight goroutine's worker "
                           "thread: use `await gocore.testing.check_no_leaks_async()` there")
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        leaked = _leaked(base, items)
        if not leaked:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            _raise_leaked(leaked, timeout_s)
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


async def check_no_leaks_async(timeout: float = DEFAULT_TIMEOUT, *,
                               ignore: Iterable[IgnoreItem] | IgnoreItem = (),
                               baseline: Collection[int] | None = None) -> None:
    """check_no_leaks() for a lightweight (async def) goroutine, for
    instance at the end of main inside run(): it waits with gocore's
    sleep, so the goroutines it waits for can run meanwhile."""
    from gocore import sleep     # (gocore is fully imported by the time this runs)

    timeout_s, items, base = _check_args(timeout, ignore, baseline)
    if not _on_async_goroutine():
        raise RuntimeError("check_no_leaks_async() must be awaited in an async gocore "
                           "goroutine; elsewhere call gocore.testing.check_no_leaks()")
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        leaked = _leaked(base, items)
        if not leaked:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            _raise_leaked(leaked, timeout_s)
        await sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


class LeakCheck:
    """One test's leak check settings (what the gocore_leakcheck fixture
    returns; a test may change them before it returns)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, ignore: Iterable[IgnoreItem] = (),
                 enabled: bool = True, mode: str = "grace"):
        self.timeout = timeout
        self.ignore: list[IgnoreItem] = list(ignore)
        self.enabled = enabled
        self.mode = _check_mode(mode)
        self.baseline: frozenset[int] | None = None   # set when the test starts

    def __repr__(self) -> str:
        return (f"LeakCheck(timeout={self.timeout!r}, ignore={self.ignore!r}, "
                f"enabled={self.enabled!r}, mode={self.mode!r})")


def _check_mode(mode: object) -> str:
    if mode not in LEAKCHECK_MODES:
        raise ValueError(f"leak check mode must be one of {', '.join(map(repr, LEAKCHECK_MODES))}, "
                         f"got {mode!r}")
    return mode  # type: ignore[return-value]


def _provable_leaks(baseline: frozenset[int], ignore: tuple[IgnoreItem, ...]
                    ) -> list[_debug.GoroutineRecord]:
    """The "reachable" mode: what find_leaks() proves leaked, but for the
    baseline's goroutines, main, the caller and the ignored ones."""
    return [g for g in find_leaks()
            if g.goid not in baseline and not g.is_main and not g.is_current
            and not any(_matches(g, item) for item in ignore)]


def _unsettled(baseline: frozenset[int]) -> bool:
    """Is one of the goroutines that would be checked still runnable or
    running (not parked yet: nothing can be proved about it)?"""
    return any(status in ("runnable", "running")
               for (goid, _kind, status, _r, _w, _c, _f, is_main, _i, is_current)
               in _sched._goroutine_info()
               if not is_main and not is_current and goid not in baseline)


def _settled_provable_leaks(timeout: float, baseline: frozenset[int],
                            ignore: tuple[IgnoreItem, ...]) -> list[_debug.GoroutineRecord]:
    """The "reachable" mode's check: the provable leaks as soon as there
    are any; [] once the test's goroutines have all parked or ended
    without one (or after timeout seconds, some still running). A
    goroutine that has not parked yet is runnable, so live: waiting for the
    goroutines to settle is what lets `go(worker, Chan())` just before
    the test returns be caught."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        settled = not _unsettled(baseline)      # before the scan: it must see them parked
        leaked = _provable_leaks(baseline, ignore)
        if leaked or settled:
            return leaked
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def _raise_provable(leaked: list[_debug.GoroutineRecord]) -> None:
    dump = format_leaks(leaked)
    n = len(leaked)
    raise GoroutineLeakError(
        f"{n} goroutine{'s' if n != 1 else ''} leaked (parked where nothing alive can "
        f"wake {'them' if n != 1 else 'it'}; found by reachability):\n\n{dump}",
        tuple(g.goid for g in leaked), dump)


# ---------------------------------------------------------------- pytest plugin

try:
    import pytest
except ImportError:     # another test runner: the functions above still work
    pytest = None       # type: ignore[assignment]

if pytest is not None:
    _LEAKCHECK = pytest.StashKey[LeakCheck]()        # per test item
    _INI_TIMEOUT = pytest.StashKey[float]()          # per session, checked at configure
    _INI_MODE = pytest.StashKey[str]()               # per session, checked at configure
    _MARKER = "gocore_leakcheck"

    def pytest_addoption(parser: pytest.Parser) -> None:
        parser.addini("gocore_leakcheck", type="bool", default=False,
                      help="gocore: fail every test that leaves goroutines alive")
        parser.addini("gocore_leakcheck_timeout", default=str(DEFAULT_TIMEOUT),
                      help="gocore: seconds a test's goroutines get to end before "
                           "they count as leaked (default 1.0)")
        parser.addini("gocore_leakcheck_mode", default="grace",
                      help="gocore: 'grace' (wait for the test's goroutines to end) or "
                           "'reachable' (fail at once on goroutines nothing alive can wake)")

    def pytest_configure(config: pytest.Config) -> None:
        config.addinivalue_line(
            "markers",
            f"{_MARKER}(timeout=None, ignore=(), enabled=True, mode='grace'): fail the "
            "test if goroutines it started are still alive after it (mode='grace'), or at "
            "once if nothing alive can wake them (mode='reachable') (gocore.testing)")
        raw = config.getini("gocore_leakcheck_timeout")
        try:
            timeout = float(raw)
        except ValueError:
            timeout = -1.0
        if not timeout >= 0:
            raise pytest.UsageError(
                f"gocore_leakcheck_timeout must be a number of seconds >= 0, got {raw!r}")
        config.stash[_INI_TIMEOUT] = timeout
        mode = config.getini("gocore_leakcheck_mode").strip()
        if mode not in LEAKCHECK_MODES:
            raise pytest.UsageError(f"gocore_leakcheck_mode must be 'grace' or 'reachable', "
                                    f"got {mode!r}")
        config.stash[_INI_MODE] = mode

    def _leakcheck(item: pytest.Item) -> LeakCheck:
        """item's settings, made once from the ini options and the marker."""
        lc = item.stash.get(_LEAKCHECK, None)
        if lc is not None:
            return lc
        config = item.config
        lc = LeakCheck(config.stash[_INI_TIMEOUT], enabled=bool(config.getini("gocore_leakcheck")),
                       mode=config.stash[_INI_MODE])
        marker = item.get_closest_marker(_MARKER)
        if marker is not None:
            if marker.args:
                raise TypeError(f"@pytest.mark.{_MARKER} takes keyword arguments only "
                                f"(timeout=, ignore=, enabled=, mode=), got {marker.args!r}")
            unknown = set(marker.kwargs) - {"timeout", "ignore", "enabled", "mode"}
            if unknown:
                raise TypeError(f"@pytest.mark.{_MARKER}: unknown argument(s) "
                                f"{', '.join(sorted(unknown))}")
            lc.enabled = bool(marker.kwargs.get("enabled", True))
            if marker.kwargs.get("timeout") is not None:
                lc.timeout = marker.kwargs["timeout"]
            if "mode" in marker.kwargs:
                lc.mode = _check_mode(marker.kwargs["mode"])
            lc.ignore.extend(_check_args(lc.timeout, marker.kwargs.get("ignore", ()), None)[1])
        item.stash[_LEAKCHECK] = lc
        return lc

    @pytest.fixture
    def gocore_leakcheck(request: pytest.FixtureRequest) -> LeakCheck:
        """Fail this test if goroutines it started are still alive after it
        returns; the returned LeakCheck's timeout, ignore and enabled may
        be changed during the test."""
        lc = _leakcheck(request.node)
        lc.enabled = True
        return lc

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_setup(item: pytest.Item) -> None:
        # trylast: after the fixtures are set up, so that goroutines they
        # started belong to the baseline
        if (item.get_closest_marker(_MARKER) is None
                and _MARKER not in getattr(item, "fixturenames", ())
                and not item.config.getini("gocore_leakcheck")):
            return          # not opted in: leave the test alone
        lc = _leakcheck(item)
        if lc.enabled:
            lc.baseline = snapshot()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_call(item: pytest.Item) -> None:
        # trylast: after the test function returned (if it raised, this
        # hook is not reached and the test's own failure stands)
        lc = item.stash.get(_LEAKCHECK, None)
        if lc is None or not lc.enabled or lc.baseline is None:
            return
        try:
            if _check_mode(lc.mode) == "reachable":
                leaked = _settled_provable_leaks(_check_args(lc.timeout, (), None)[0], lc.baseline,
                                                 _check_args(0, lc.ignore, None)[1])
                if leaked:
                    _raise_provable(leaked)
            else:
                check_no_leaks(lc.timeout, ignore=lc.ignore, baseline=lc.baseline)
            return
        except GoroutineLeakError as e:
            message = str(e)
        pytest.fail(message, pytrace=False)     # the dump says it all: no traceback
