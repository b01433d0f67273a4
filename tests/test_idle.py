"""Idle Ms sleep, and due timers fire (found while testing goroutine dumps:
a test hung at 100% CPU, deaf to pytest-timeout's SIGALRM).

- After deadlock detection backed off once (a plain thread was running),
  the stale back-off deadline made every later idle wait a busy spin.
- With gomaxprocs 1 and the only P held by a sync goroutine inside foreign
  calls (time.sleep in a loop), a due timer never fired: sysmon did not
  count due timers as work waiting for that P, and the idle M spun.
Each case runs in a fresh process (the back-off state is process-wide).
"""
import re

import pytest

from conftest import run_prog


def wait_stats(mode):
    r = run_prog("idle_cpu.py", mode, timeout=30)
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"wall ([\d.]+) cpu ([\d.]+)", r.stdout.strip())
    assert m, r.stdout
    return float(m.group(1)), float(m.group(2))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["holdoff-run", "holdoff-blocking"])
def test_idle_wait_after_deadlock_backoff_does_not_spin(mode):
    wall, cpu = wait_stats(mode)
    assert 0.9 < wall < 5
    assert cpu < 0.3, f"{cpu:.2f}s of CPU in a {wall:.2f}s idle wait"


@pytest.mark.timeout(60)
def test_timer_fires_while_the_only_p_is_stuck_in_a_sync_goroutine():
    wall, cpu = wait_stats("stuck-p")
    assert wall < 2, f"sleep(0.05) took {wall:.2f}s"
    assert cpu < 0.5
