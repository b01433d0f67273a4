"""Timer benchmark: 100,000 goroutines each `await sleep(random 0-100 ms)`.

Run against the installed package, from outside the source tree:

    cd /tmp && python /path/to/gocore/bench/timers.py [--n 100000] [--max-ms 100] [--gomaxprocs 1]

Reports, for one run():
- how long after the latest deadline (each goroutine's start + its
  duration) the last goroutine woke (issue 4's bound: within 150 ms), and
  the median, 99th percentile and worst lateness of a wake-up;
- that no goroutine woke early (a self-check: the run fails if one did);
- the memory a sleeping goroutine's timer costs: RSS per goroutine with
  every goroutine asleep, next to RSS per goroutine with as many parked
  receiving on one shared channel instead, each in a fresh child process
  so that neither warms the other's heap; and the sizes behind the
  difference (the sleep awaitable embeds its gc_timer; the heap holds one
  pointer per timer).
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

import gocore
from gocore import Chan, WaitGroup, go, run, sleep


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def lateness(n, max_ms, procs):
    rng = random.Random(42)
    delays = [rng.uniform(0, max_ms / 1000) for _ in range(n)]
    deadline = [0.0] * n          # when each goroutine asked to be woken (monotonic)
    woke = [0.0] * n

    async def sleeper(i, wg):
        deadline[i] = time.monotonic() + delays[i]
        await sleep(delays[i])
        woke[i] = time.monotonic()
        wg.done()

    async def main():
        wg = WaitGroup()
        wg.add(n)
        t0 = time.monotonic()
        for i in range(n):
            go(sleeper, i, wg)
        spawned = time.monotonic() - t0
        await wg.wait()
        return spawned

    gocore.gomaxprocs(procs)
    spawned = run(main)
    late = [w - d for w, d in zip(woke, deadline)]
    early = [x for x in late if x < -1e-6]
    if early:
        raise SystemExit(f"self-check failed: {len(early)} goroutines woke early (worst {min(early) * 1e3:.2f} ms)")
    return {
        "after_longest_ms": (max(woke) - max(deadline)) * 1e3,
        "spawn_ms": spawned * 1e3,
        "late_median_ms": statistics.median(late) * 1e3,
        "late_p99_ms": sorted(late)[int(0.99 * n)] * 1e3,
        "late_max_ms": max(late) * 1e3,
    }


def parked_rss(n, mode):
    """Child process: RSS per goroutine with n goroutines parked (mode
    'sleep': in sleep(60); 'chan': receiving on one shared channel)."""
    async def on_timer(started):
        started.done()
        await sleep(60)

    async def on_chan(started, c):
        started.done()
        await c.recv()

    async def main():
        started = WaitGroup()
        started.add(n)
        c = Chan()
        base = rss_bytes()
        for _ in range(n):
            if mode == "sleep":
                go(on_timer, started)
            else:
                go(on_chan, started, c)
        await started.wait()
        return (rss_bytes() - base) / n

    gocore.gomaxprocs(1)
    return run(main)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--max-ms", type=float, default=100.0)
    ap.add_argument("--gomaxprocs", type=int, default=1)
    ap.add_argument("--child", choices=("sleep", "chan"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(parked_rss(a.n, a.child)))
        return
    r = lateness(a.n, a.max_ms, a.gomaxprocs)
    per = {}
    for mode in ("sleep", "chan"):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--n", str(a.n)],
                             capture_output=True, text=True, check=True)
        per[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"gocore {gocore.__file__}")
    print(f"{a.n:,} goroutines, sleep(random 0-{a.max_ms:g} ms), gomaxprocs {a.gomaxprocs}")
    print(f"  spawning them took        {r['spawn_ms']:8.1f} ms")
    print(f"  last wake-up after the latest deadline: {r['after_longest_ms']:.1f} ms")
    print(f"  lateness of a wake-up: median {r['late_median_ms']:.2f} ms, 99th percentile "
          f"{r['late_p99_ms']:.2f} ms, worst {r['late_max_ms']:.1f} ms; none early")
    from gocore import _chan, _time
    sleep_obj, op_obj = _time._Sleep.__basicsize__, _chan._ChanOp.__basicsize__
    print(f"  RSS per goroutine asleep in sleep(): {per['sleep']:.0f} B; parked receiving on a "
          f"shared channel: {per['chan']:.0f} B")
    print(f"  a timer is {sleep_obj} B of sleep awaitable (its gc_timer inside) + 8 B of heap "
          f"slot (x2 at most while the heap array grows), against {op_obj} B for a channel op")


if __name__ == "__main__":
    main()
