"""Bonus: Why are goroutines so praised compared to concurrency techniques of other languages?

The guide claims: "100,000 goroutines use ~200MB memory" (Go, ~2 KB each)
and that threads cost far more. This program measures instead of
repeating: on this machine and this Python, it starts

- 100,000 gocore goroutines, each parked on its own unbuffered channel
  (`await ch.recv()`, wait reason "chan receive");
- 100,000 asyncio tasks, each awaiting its own Future (asyncio's lightest
  "channel");
- 2,000 OS threads (started with `_thread`, what `threading.Thread` runs on), each blocked on its own Lock - and
  extrapolates the per-thread figure to 100,000, because that many threads
  would hit the system's thread limit (and the cost is linear);

each in a fresh subprocess, and prints the resident memory (RSS, from
/proc/self/statm before and after) per goroutine / task / thread.

gocore differences: a lightweight goroutine is a Python coroutine plus
gocore's G record, not a 2 KB Go stack; its size depends on the
coroutine's frame, so the figure below is for a small function. An OS
thread's 8 MB stack is virtual memory: RSS counts only the pages touched.
Linux only (/proc). Runs in about a second.
"""
import gc
import os
import subprocess
import sys
import time

N = 100_000
N_THREADS = 2_000
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    """Resident set size in bytes (/proc/self/statm: size resident ...)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def report(chan_bytes: int, g_bytes: int) -> None:
    """Child: print the two deltas and end this throwaway process at once
    (tearing down 100,000 objects would only add time)."""
    print(chan_bytes, g_bytes, flush=True)
    os._exit(0)


def child_gocore(n: int) -> tuple[int, int]:
    from gocore import Chan, go, run, sleep
    from gocore.atomic import Int64

    parked = Int64()

    async def parked_on(ch: Chan[int]) -> None:
        parked.add(1)
        await ch.recv()  # parks: [chan receive]

    async def main() -> None:
        gc.collect()
        before = rss()
        chans = [Chan() for _ in range(n)]
        gc.collect()
        mid = rss()
        for ch in chans:
            go(parked_on, ch)
        while parked.load() < n:
            await sleep(0.01)
        gc.collect()
        after = rss()
        report(mid - before, after - mid)  # exits at once, like the others

    run(main)
    raise AssertionError("unreachable: main reports and exits")


def child_asyncio(n: int) -> tuple[int, int]:
    import asyncio

    async def parked_on(fut: asyncio.Future) -> None:
        await fut

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gc.collect()
        before = rss()
        futs = [loop.create_future() for _ in range(n)]
        gc.collect()
        mid = rss()
        tasks = [asyncio.create_task(parked_on(f)) for f in futs]
        await asyncio.sleep(0)  # every task runs up to its await
        gc.collect()
        after = rss()
        report(mid - before, after - mid)  # exits: asyncio.run would cancel 100,000 tasks

    asyncio.run(main())
    raise AssertionError("unreachable: main reports and exits")


def child_threads(n: int) -> tuple[int, int]:
    import _thread
    import threading

    gc.collect()
    before = rss()
    locks = [threading.Lock() for _ in range(n)]
    for lk in locks:
        lk.acquire()
    gc.collect()
    mid = rss()
    started = threading.Semaphore(0)

    def parked_on(lk: threading.Lock) -> None:
        started.release()
        lk.acquire()  # blocks forever: the process ends with os._exit

    # _thread.start_new_thread: the same OS thread as threading.Thread,
    # without its per-thread start handshake (which makes starting
    # thousands of threads slow on a GIL build).
    for lk in locks:
        _thread.start_new_thread(parked_on, (lk,))
    for _ in locks:
        started.acquire()
    gc.collect()
    after = rss()
    return mid - before, after - mid


def measure(kind: str, n: int) -> tuple[int, int]:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", kind, str(n)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    a, b = out.split()
    return int(a), int(b)


def main() -> None:
    import platform
    import gocore

    print(f"RSS per parked goroutine / task / thread on this machine "
          f"(Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"gocore gomaxprocs {gocore.gomaxprocs()}; /proc/self/statm before and after)")
    t = time.perf_counter()
    rows = []
    for kind, n, label, chan_label in (
        ("gocore", N, "gocore goroutines", "channel"),
        ("asyncio", N, "asyncio tasks", "future"),
        ("threads", N_THREADS, "OS threads", "lock"),
    ):
        chan_bytes, g_bytes = measure(kind, n)
        per = (chan_bytes + g_bytes) / n
        rows.append((kind, per))
        line = (f"{label:18} {n:>7,} started: {(chan_bytes + g_bytes) / 2**20:7.1f} MiB, "
                f"{per:8,.0f} bytes each ({chan_label} {chan_bytes / n:,.0f} "
                f"+ {kind if kind != 'threads' else 'thread'} {g_bytes / n:,.0f})")
        if kind == "threads":
            line += f"; x {N:,} = {per * N / 2**30:.2f} GiB (extrapolated, linear)"
        print(line)
    per = dict(rows)
    print(f"per 100,000: gocore {per['gocore'] * N / 2**20:,.0f} MiB, "
          f"asyncio {per['asyncio'] * N / 2**20:,.0f} MiB, "
          f"threads {per['threads'] * N / 2**20:,.0f} MiB (extrapolated)")
    print(f"gocore vs asyncio: {per['gocore'] / per['asyncio']:.2f}x; "
          f"threads vs gocore: {per['threads'] / per['gocore']:.1f}x")
    print("the guide's claim for Go: ~2 KB per goroutine, ~200 MB per 100,000 (not measured here)")
    print(f"measured in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        kind, n = sys.argv[2], int(sys.argv[3])
        fn = {"gocore": child_gocore, "asyncio": child_asyncio, "threads": child_threads}[kind]
        report(*fn(n))
    else:
        main()
