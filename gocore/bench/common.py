"""Shared definitions for the benchmark workloads B1..B11 (DESIGN.md §4).

Every runtime module (w_gocore, w_asyncio, w_trio, w_gevent, w_threading)
implements the same eleven workloads with the parameters defined here, checks
its own result with `check()`, and returns one float: the metric of the
workload in the unit given by `WORKLOADS`.

This module uses the standard library only and imports no runtime, so the
runner can import it without loading any of the runtimes it compares.
"""

import hashlib
import os
import platform
import sys
import time

now_ns = time.perf_counter_ns


class SelfCheckError(AssertionError):
    """A workload computed a wrong result: its timing must not be reported."""


def check(ok, what, got=None, want=None):
    """Raise SelfCheckError unless `ok`; `what` says which check failed."""
    if not ok:
        detail = "" if got is None and want is None else f": got {got!r}, want {want!r}"
        raise SelfCheckError(f"self-check failed: {what}{detail}")


# id -> (Go-style benchmark name, unit, higher_is_better, description)
WORKLOADS = {
    "B1": ("B1Spawn", "ns/op", False, "spawn goroutines that each signal a WaitGroup; ns per goroutine"),
    "B2": ("B2Pingpong", "ns/op", False, "two goroutines, two unbuffered channels; ns per round trip"),
    "B3": ("B3Buffered", "ns/op", False, "one producer, one consumer, channel cap 1024; ns per item"),
    "B4": ("B4Select", "ns/op", False, "4 producers on 4 channels, one consumer selecting; ns per item"),
    "B5": ("B5Skynet", "s", False, "10-ary tree of goroutines, 1,000,000 leaves, sum via channels; seconds"),
    "B6": ("B6Sieve", "s", False, "Go's concurrent prime sieve, first 1,000 primes; seconds"),
    "B7": ("B7Workerpool", "ns/op", False, "8 workers, jobs/results cap 100; ns per job"),
    "B8": ("B8Memory", "B/goroutine", False, "goroutines parked on their own unbuffered channel; RSS bytes each"),
    "B9": ("B9Parallel", "speedup", True, "8 goroutines hashing 16 MiB 4 times each (GIL released); speedup vs serial"),
    "B10": ("B10Mutex", "ns/op", False, "100 goroutines x 1,000 lock/unlock of one mutex; ns per lock"),
    "B11": ("B11CPU", "s", False, "8 goroutines summing integers in a pure-Python loop (parallel only without a GIL); seconds"),
}

# Parameters, identical for every runtime.  "quick" is the smoke-test scale
# (each workload well under a second or two on any runtime).
PARAMS = {
    "full": {
        "B1": dict(n=100_000),
        "B2": dict(n=100_000),
        "B3": dict(n=1_000_000, cap=1024),
        "B4": dict(n=200_000, producers=4),
        "B5": dict(leaves=1_000_000, div=10),
        "B6": dict(primes=1000),
        "B7": dict(jobs=200_000, workers=8, cap=100),
        "B8": dict(n=100_000),
        "B9": dict(goroutines=8, mib=16, rounds=4),
        "B10": dict(goroutines=100, iters=1000),
        "B11": dict(goroutines=8, n=2_000_000),
    },
    "quick": {
        "B1": dict(n=5_000),
        "B2": dict(n=5_000),
        "B3": dict(n=50_000, cap=1024),
        "B4": dict(n=20_000, producers=4),
        "B5": dict(leaves=10_000, div=10),
        "B6": dict(primes=100),
        "B7": dict(jobs=20_000, workers=8, cap=100),
        "B8": dict(n=5_000),
        "B9": dict(goroutines=8, mib=1, rounds=1),
        "B10": dict(goroutines=100, iters=100),
        "B11": dict(goroutines=8, n=20_000),
    },
}

# The parameter that sets a workload's size, for runtimes that must run a
# workload at a smaller size than the others (OS threads: see w_threading).
SIZE_KEY = {"B1": "n", "B2": "n", "B3": "n", "B4": "n", "B5": "leaves",
            "B6": "primes", "B7": "jobs", "B8": "n", "B9": "mib", "B10": "iters", "B11": "n"}


# --- helpers shared by the workloads ---------------------------------------

def rss_bytes():
    """Resident set size of this process now, in bytes.

    Linux: /proc/self/statm (current RSS).  Elsewhere: getrusage's peak RSS,
    which is the current RSS too as long as the process has only grown.
    """
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def first_primes(k):
    """The first k primes, computed sequentially (the sieve's expected answer)."""
    primes = []
    n = 2
    while len(primes) < k:
        if all(n % p for p in primes if p * p <= n):
            primes.append(n)
        n += 1
    return primes


def skynet_sum(leaves):
    """Sum of the numbers 0..leaves-1 held by skynet's leaves."""
    return leaves * (leaves - 1) // 2


def check_skynet_size(leaves, div):
    size = leaves
    while size > 1:
        check(size % div == 0, f"skynet leaves ({leaves}) must be a power of {div}")
        size //= div


def hash_payload(mib):
    """B9's input: `mib` MiB of deterministic bytes."""
    return bytes(range(256)) * (mib * 4096)


def hash_rounds(data, rounds):
    """B9's unit of work: SHA-256 of `data`, `rounds` times.

    hashlib releases the GIL while hashing buffers larger than 2 KiB, so
    several threads can run this in parallel.
    """
    digest = None
    for _ in range(rounds):
        digest = hashlib.sha256(data).digest()
    return digest


def serial_hash_seconds(data, goroutines, rounds):
    """Baseline for B9: the same hashing done serially on one thread.

    Returns (seconds, digest); B9's speedup is this time divided by the
    time the runtime takes to do the same work with `goroutines` goroutines.
    """
    hash_rounds(data, 1)  # warm up (page in the data, load the code)
    t0 = now_ns()
    digest = None
    for _ in range(goroutines):
        digest = hash_rounds(data, rounds)
    return (now_ns() - t0) / 1e9, digest


def cpu_sum(n):
    """B11's unit of work: 0 + 1 + ... + n-1 in a pure-Python loop. It holds
    the interpreter the whole time: on a GIL build nothing runs beside it,
    on a free-threaded build another thread can."""
    total = 0
    for i in range(n):
        total += i
    return total


def check_cpu_sums(out, goroutines, n):
    check(out == [n * (n - 1) // 2] * goroutines, "B11 sums")


def cpu_name():
    """The CPU model, for the header of every benchmark report."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
