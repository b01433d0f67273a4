"""gocore.testing (issue 7): goroutine leak checks for users' tests, as Go's
goleak - the plain functions, and the pytest plugin run on small test
files by pytester in a subprocess (a leaking test starts the background
runtime, which one process cannot undo).

The plugin is registered by the `pytest11` entry point of an installed
gocore; the subprocesses here load it with `-p gocore.testing` and plugin
autoloading off, so that they work the same from a source tree.
"""
import re
import time
from pathlib import Path

import pytest

import gocore
import gocore.testing

from conftest import FREE_THREADED
from gocore import Chan, go, sleep
from gocore.testing import GoroutineLeakError, check_no_leaks, check_no_leaks_async, snapshot

pytest_plugins = ["pytester"]

GOCORE_PARENT = str(Path(gocore.__file__).resolve().parent.parent)


async def leaky_worker(c):
    await c.recv()


async def other_worker(c):
    await c.recv()


async def short_worker(d):
    await sleep(d)


# ---------------------------------------------------------------- plain functions

@pytest.mark.timeout(30)
def test_check_in_main_finds_the_leak_then_passes(rt):
    """Inside run(): main itself is never a leak; a parked goroutine is,
    with its dump in the error; once it can end, the check waits for it."""
    async def main():
        c = Chan()
        go(leaky_worker, c)
        with pytest.raises(GoroutineLeakError) as info:
            await check_no_leaks_async(timeout=0.05)
        c.close()
        await check_no_leaks_async(timeout=10)
        return info.value

    err = rt.run(main)
    assert len(err.goroutines) == 1
    assert err.dump.startswith(f"goroutine {err.goroutines[0]} [chan receive]:\n  leaky_worker(...)\n")
    assert str(err).startswith("1 goroutine leaked (still alive after waiting 0.05s for it to end):\n\n")
    assert err.dump in str(err)
    assert isinstance(err, AssertionError)      # a test failure to any runner


@pytest.mark.timeout(30)
def test_check_from_a_sync_goroutine(rt):
    """check_no_leaks() blocks: fine in a sync goroutine (here main)."""
    def main():
        c = Chan()
        go(leaky_worker, c)
        with pytest.raises(GoroutineLeakError, match=r"leaky_worker"):
            check_no_leaks(timeout=0.05)
        c.close()
        check_no_leaks(timeout=10)

    rt.run(main)


@pytest.mark.timeout(30)
def test_grace_period_waits_for_goroutines_ending(rt):
    async def main():
        go(short_worker, 0.2)
        t0 = time.monotonic()
        await check_no_leaks_async(timeout=10)
        return time.monotonic() - t0

    assert 0.1 < rt.run(main) < 5


@pytest.mark.timeout(30)
def test_baseline_and_ignore(rt):
    """Goroutines in the baseline, or running an ignored function (by
    qualified name, by module.name, or the function itself), do not count."""
    async def main():
        c = Chan()
        go(other_worker, c)
        await sleep(0.01)
        base = snapshot()
        go(leaky_worker, c)
        go(leaky_worker, c)
        await sleep(0.01)
        with pytest.raises(GoroutineLeakError) as info:
            await check_no_leaks_async(timeout=0.01, baseline=base)
        found = info.value
        for ignore in (["leaky_worker"], [f"{__name__}.leaky_worker"], [leaky_worker],
                       "leaky_worker", leaky_worker):
            await check_no_leaks_async(timeout=0.01, baseline=base, ignore=ignore)
        with pytest.raises(GoroutineLeakError):
            await check_no_leaks_async(timeout=0.01, baseline=base, ignore=["leaky", other_worker])
        c.close()
        return found, base

    found, base = rt.run(main)
    assert len(found.goroutines) == 2 and not set(found.goroutines) & base
    assert found.dump.count("leaky_worker(...)") == 2 and "other_worker" not in found.dump


@pytest.mark.timeout(30)
def test_wrong_place_raises(rt):
    async def main():
        with pytest.raises(RuntimeError, match=r"await gocore.testing.check_no_leaks_async\(\)"):
            check_no_leaks()

    rt.run(main)
    with pytest.raises(RuntimeError, match=r"check_no_leaks_async\(\) must be awaited"):
        check_no_leaks_async().send(None)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"timeout": "1"}, TypeError, "timeout"), ({"timeout": True}, TypeError, "timeout"),
    ({"timeout": -1}, ValueError, "timeout"), ({"timeout": float("nan")}, ValueError, "timeout"),
    ({"ignore": 42}, TypeError, "ignore"), ({"ignore": [42]}, TypeError, "ignore"),
    ({"ignore": [print]}, TypeError, "ignore"), ({"baseline": 5}, TypeError, "baseline")])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        check_no_leaks(**kwargs)


def test_nothing_alive_outside_run():
    check_no_leaks(timeout=0)
    assert snapshot() == frozenset()


# ---------------------------------------------------------------- the pytest plugin

@pytest.fixture
def inner(pytester, monkeypatch):
    """Run pytest on pytester's files in a subprocess with gocore.testing;
    returns (result, text)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTHONPATH", GOCORE_PARENT)
    monkeypatch.delenv("GOCORE_MAXPROCS", raising=False)

    def run(*args):
        result = pytester.runpytest_subprocess("-p", "gocore.testing", "-p", "no:cacheprovider",
                                               *args, timeout=60)
        return result, result.stdout.str() + result.stderr.str()

    return run


LEAKY = """
import pytest, time
from gocore import Chan, go, sleep

async def leaky_worker(c):
    await c.recv()

async def brief_worker(d):
    await sleep(d)
"""


@pytest.mark.timeout(90)
def test_plugin_marker(pytester, inner):
    """@pytest.mark.gocore_leakcheck: a leaking test FAILS, naming the
    goroutine's function and wait reason; clean tests pass; a test that
    is not marked is left alone, leak or not; a failing test keeps its
    own failure."""
    pytester.makepyfile(test_marker=LEAKY + """
@pytest.mark.gocore_leakcheck
def test_in_run():             # first: run() needs the background runtime idle
    import gocore
    async def main():
        go(leaky_worker, Chan())   # closed by run() as main returns
    gocore.run(main)

@pytest.mark.gocore_leakcheck
def test_leaks():
    go(leaky_worker, Chan())

@pytest.mark.gocore_leakcheck
def test_clean():
    c = Chan()
    go(leaky_worker, c)
    c.close()                     # ends within the grace period

def test_unmarked_leak():
    go(leaky_worker, Chan())

@pytest.mark.gocore_leakcheck
def test_own_failure():
    go(leaky_worker, Chan())
    assert 1 == 2, "its own failure"

@pytest.mark.gocore_leakcheck(timeout=5.0)
def test_slow_but_ends():
    go(brief_worker, 0.3)

@pytest.mark.gocore_leakcheck(timeout=0.05)
def test_too_slow():
    go(brief_worker, 2.0)

@pytest.mark.gocore_leakcheck(ignore=["leaky_worker"])
def test_ignored():
    go(leaky_worker, Chan())
""")
    result, text = inner()
    result.assert_outcomes(passed=5, failed=3)
    result.stdout.fnmatch_lines([
        "*FAILED test_marker.py::test_leaks - Failed: 1 goroutine leaked*",
        "*FAILED test_marker.py::test_own_failure - AssertionError: its own failure*",
        "*FAILED test_marker.py::test_too_slow - Failed: 1 goroutine leaked*",
    ])
    leak_report = text.split("_ test_leaks _", 1)[1].split("_ test_own_failure _")[0]
    m = re.search(r"^goroutine \d+ \[chan receive\]:\n  leaky_worker\(\.\.\.\)\n"
                  r"        (\S+test_marker\.py):(\d+)$", leak_report, re.M)
    assert m, leak_report
    source = Path(m.group(1)).read_text().splitlines()
    assert source[int(m.group(2)) - 1].strip() == "await c.recv()"   # where it waits
    assert "Traceback" not in leak_report               # the dump says it all
    too_slow = text.split("_ test_too_slow _", 1)[1]
    assert "[sleep]:\n  brief_worker(...)" in too_slow
    assert "goroutine leaked" not in text.split("_ test_own_failure _", 1)[1].split("_ test_too_slow _")[0]


@pytest.mark.timeout(90)
def test_plugin_fixture_and_ini(pytester, inner):
    """The gocore_leakcheck fixture opts a test in (its LeakCheck may be
    changed by the test); `gocore_leakcheck = true` opts every test in,
    `enabled=False` opts one out; goroutines a fixture started before the
    test belong to the baseline."""
    pytester.makeini("""
[pytest]
gocore_leakcheck = true
gocore_leakcheck_timeout = 0.2
""")
    pytester.makepyfile(test_fixture=LEAKY + """
@pytest.fixture
def server():
    c = Chan()
    go(leaky_worker, c)          # before the test: baseline
    yield
    c.close()

def test_ini_leak():
    go(leaky_worker, Chan())

@pytest.mark.gocore_leakcheck(enabled=False)
def test_opted_out():
    go(leaky_worker, Chan())

def test_fixture_goroutines_are_baseline(server):
    pass

def test_fixture_leak(gocore_leakcheck):
    assert gocore_leakcheck.timeout == 0.2 and gocore_leakcheck.enabled
    go(leaky_worker, Chan())

def test_fixture_ignore(gocore_leakcheck):
    gocore_leakcheck.ignore.append(leaky_worker)
    go(leaky_worker, Chan())

def test_fixture_disable(gocore_leakcheck):
    gocore_leakcheck.enabled = False
    go(leaky_worker, Chan())

def test_timeout_from_ini():
    go(brief_worker, 0.05)       # ends within gocore_leakcheck_timeout
""")
    result, text = inner()
    result.assert_outcomes(passed=5, failed=2)
    result.stdout.fnmatch_lines([
        "*FAILED test_fixture.py::test_ini_leak - Failed: 1 goroutine leaked*",
        "*FAILED test_fixture.py::test_fixture_leak - Failed: 1 goroutine leaked*",
    ])
    assert "waiting 0.2s" in text


@pytest.mark.timeout(90)
def test_plugin_inert_unless_asked(pytester, inner):
    """Without marker, fixture or ini option nothing is checked, and the
    plugin's marker and ini options are declared (no warnings)."""
    pytester.makepyfile(test_plain=LEAKY + """
def test_leak_unchecked():
    go(leaky_worker, Chan())
""")
    result, text = inner("-W", "error::pytest.PytestUnknownMarkWarning", "--strict-markers",
                         "--strict-config")
    result.assert_outcomes(passed=1)
    result, text = inner("--markers")
    assert "@pytest.mark.gocore_leakcheck(timeout=None, ignore=(), enabled=True, mode='grace')" in text


REACHABLE = LEAKY + """
HELD = []

async def select_worker(a, b):
    from gocore import select
    await select(a.recv, b.recv)

@pytest.mark.gocore_leakcheck(mode="reachable")
def test_forgotten():             # (not parked yet as it returns: the check waits for that)
    go(leaky_worker, Chan())
    go(select_worker, Chan(), Chan())

@pytest.mark.gocore_leakcheck(mode="reachable")
def test_held():                  # a global can still close it: not provable
    HELD.append(Chan())
    go(leaky_worker, HELD[-1])

@pytest.mark.gocore_leakcheck(mode="reachable", timeout=30)
def test_sleeper():               # will wake: not a leak, and no waiting for it
    go(brief_worker, 30.0)

@pytest.mark.gocore_leakcheck(mode="reachable", ignore=[leaky_worker])
def test_ignored():
    go(leaky_worker, Chan())

def test_grace_default(gocore_leakcheck):
    assert gocore_leakcheck.mode == "grace"
"""


NEEDS_GIL = pytest.mark.skipif(
    FREE_THREADED, reason="find_leaks() refuses to run with the GIL disabled (no consistent snapshot)")


@NEEDS_GIL
@pytest.mark.timeout(90)
def test_plugin_reachable_mode(pytester, inner):
    """mode="reachable": a test fails at once, without waiting out its
    timeout, naming each goroutine nothing alive can wake (the dump's
    block: wait reason and where it waits); goroutines something can still
    wake (a global's channel, a sleeper) are not failures; `ignore` and
    the baseline apply as in the grace mode."""
    pytester.makepyfile(test_reach=REACHABLE)
    t0 = time.monotonic()
    result, text = inner()
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*FAILED test_reach.py::test_forgotten - Failed: 2 goroutines leaked*"])
    report = text.split("_ test_forgotten _", 1)[1].split("short test summary")[0]
    assert ("2 goroutines leaked (parked where nothing alive can wake them; found by "
            "reachability):\n\ngoroutine ") in report
    assert re.search(r"^goroutine \d+ \[chan receive\]:\n  leaky_worker\(\.\.\.\)\n"
                     r"        \S+test_reach\.py:\d+$", report, re.M), report
    assert re.search(r"^goroutine \d+ \[select\]:\n  select_worker\(\.\.\.\)\n", report, re.M)
    assert "Traceback" not in report
    assert time.monotonic() - t0 < 25       # test_sleeper's 30 s timeout was not waited out


@NEEDS_GIL
@pytest.mark.timeout(90)
def test_plugin_reachable_mode_from_ini(pytester, inner):
    pytester.makeini("""
[pytest]
gocore_leakcheck = true
gocore_leakcheck_mode = reachable
""")
    pytester.makepyfile(test_ini=LEAKY + """
def test_forgotten():
    go(leaky_worker, Chan())

@pytest.mark.gocore_leakcheck(mode="grace", timeout=0.05)
def test_grace_here():
    go(brief_worker, 2.0)
""")
    result, text = inner()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*FAILED test_ini.py::test_forgotten - Failed: 1 goroutine leaked*",
                                 "*FAILED test_ini.py::test_grace_here - Failed: 1 goroutine leaked*"])
    assert "1 goroutine leaked (parked where nothing alive can wake it; found by reachability)" in text
    assert "1 goroutine leaked (still alive after waiting 0.05s for it to end)" in text
    result, text = inner("-o", "gocore_leakcheck_mode=eventually")
    assert "gocore_leakcheck_mode must be 'grace' or 'reachable', got 'eventually'" in text
    assert result.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.timeout(90)
def test_plugin_bad_marker_and_ini(pytester, inner):
    pytester.makepyfile(test_bad=LEAKY + """
@pytest.mark.gocore_leakcheck(1.0)
def test_positional():
    pass

@pytest.mark.gocore_leakcheck(timout=1.0)
def test_misspelt():
    pass

@pytest.mark.gocore_leakcheck(ignore=[42])
def test_bad_ignore():
    pass

@pytest.mark.gocore_leakcheck(mode="fast")
def test_bad_mode():
    pass
""")
    result, text = inner()
    result.assert_outcomes(errors=4)
    assert "leak check mode must be one of 'grace', 'reachable', got 'fast'" in text
    assert "takes keyword arguments only" in text
    assert "unknown argument(s) timout" in text
    assert "neither a function name (str) nor a Python function" in text
    result, text = inner("-o", "gocore_leakcheck=true", "-o", "gocore_leakcheck_timeout=soon")
    assert "gocore_leakcheck_timeout must be a number of seconds >= 0, got 'soon'" in text
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_entry_point_declared():
    """pyproject.toml registers the plugin under pytest11; an installed
    gocore carries the entry point."""
    from importlib import metadata
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.exists():
        import tomllib
        data = tomllib.loads(pyproject.read_text())
        assert data["project"]["entry-points"]["pytest11"] == {"gocore": "gocore.testing"}
    try:
        dist = metadata.distribution("gocore")
    except metadata.PackageNotFoundError:
        return
    eps = [ep for ep in dist.entry_points if ep.group == "pytest11"]
    assert [(ep.name, ep.value) for ep in eps] == [("gocore", "gocore.testing")]


@pytest.mark.timeout(90)
def test_installed_plugin_loads_by_itself(pytester, monkeypatch):
    """With gocore installed, plain `pytest` has the plugin; with plugin
    autoloading off, `-p gocore` (the entry point's name) loads it."""
    from importlib import metadata
    try:
        metadata.distribution("gocore")
    except metadata.PackageNotFoundError:
        pytest.skip("gocore is not installed (source tree): no entry point to load")
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(test_auto=LEAKY + """
def test_leak(gocore_leakcheck):
    go(leaky_worker, Chan())
""")
    for autoload_off, args in ((False, ()), (True, ("-p", "gocore"))):
        if autoload_off:
            monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=60)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*1 goroutine leaked*"])
