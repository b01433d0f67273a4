"""Failure paths run as subprocesses (tests/progs/): panics outside run()
(exit status 2), Ctrl-C, deadlock of the main thread without run(), the
runtime started in the background by go(), and sync goroutines that block
while main returns (a hang there must fail one test, not stop the run)."""
import signal
import subprocess
import time

import pytest

from conftest import popen_prog, run_prog


@pytest.mark.timeout(30)
def test_panic_outside_run_exits_2():
    """DESIGN §1 (Go: an unrecovered panic prints the goroutine and exits
    with status 2): an exception escaping a goroutine started without run()
    is printed with its goroutine id and traceback; the process exits 2."""
    r = run_prog("panic_norun.py")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "not reached" not in r.stdout
    assert "panic: goroutine" in r.stderr
    assert "ValueError: boom outside run" in r.stderr
    assert "failing_function" in r.stderr and "Traceback" in r.stderr


@pytest.mark.timeout(30)
def test_panic_hook_overrides_exit():
    """set_panic_hook(hook): hook(exc, goroutine_id) replaces print-and-exit."""
    r = run_prog("panic_norun.py", "hook")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hook saw ValueError boom outside run True"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["busy", "idle", "sleeping"])
@pytest.mark.parametrize("procs", [1, 2])
def test_ctrl_c_stops_run(mode, procs):
    """Issues 2 and 7: SIGINT during run() ends it quickly with
    KeyboardInterrupt after closing the goroutines (their finally blocks
    print) - with main busy, with every M idle (all goroutines parked,
    waiting on a plain thread), and with every goroutine asleep in sleep()
    (an M waiting for the earliest timer). Bound: 1 s from the signal to
    process exit (measured: 7-15 ms)."""
    p = popen_prog("sigint.py", mode, procs)
    try:
        assert p.stdout.readline().strip() == "READY"
        time.sleep(0.2)                  # let every M go idle
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert elapsed < 1.0, f"exit took {elapsed:.2f}s after SIGINT"
    assert p.returncode == -signal.SIGINT, (p.returncode, err)
    assert "Traceback" in err and err.rstrip().endswith("KeyboardInterrupt")
    assert sorted(out.split()) == sorted(" ".join(f"finally parked {i}" for i in range(3)).split())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["alone", "parked"])
def test_deadlock_main_thread_without_run(mode):
    """DESIGN §1: the main thread blocked in blocking_recv with no goroutine
    able to make progress (none at all, or all parked) gets DeadlockError."""
    r = run_prog("deadlock_norun.py", mode, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "DeadlockError: all goroutines are asleep - deadlock!"


@pytest.mark.timeout(30)
def test_deadlock_uncaught_in_run_exits_with_traceback():
    """An uncaught DeadlockError ends the program like any exception: a
    traceback naming it and exit status 1."""
    r = run_prog("deadlock_norun.py", "uncaught", timeout=20)
    assert r.returncode == 1
    assert "DeadlockError: all goroutines are asleep - deadlock!" in r.stderr


@pytest.mark.timeout(30)
def test_threads_and_goroutines_without_run():
    """DESIGN §1: without run(), the first go() starts the runtime in the
    background; threads and goroutines exchange values both ways
    (blocking_send/recv/select, `for v in ch`, sync goroutines), and the
    process exits when the main thread ends although a goroutine is parked."""
    r = run_prog("threads_norun.py", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "doubled True",
        "select [(0, 'a'), (1, 'b')]",
        "sync 45",
        "exiting with goroutines parked True",
    ]


def _run_or_hang(*args):
    try:
        return run_prog("sync_on_m0.py", *args, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("the program hung (see docs/testing.md, known runtime bugs)")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 2])
def test_leftover_sync_goroutine_closed(procs):
    """DESIGN §1: when main returns, a sync goroutine parked in a blocking
    call wakes with GoroutineExit (its finally runs) and run() returns."""
    r = _run_or_hang("leftover", procs)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["finally sync", "returned 1"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("procs", [1, 2])
def test_sync_goroutine_server(procs):
    """A sync goroutine serving main over channels (`for v in req`,
    blocking_send) keeps working whichever M runs it, 20 runs in a row."""
    r = _run_or_hang("server", procs)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "returned 1"
