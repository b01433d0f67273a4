"""B1..B11 on OS threads (threading + queue), the baseline Python offers.

Equivalents of Go's primitives, and why:
- goroutine      -> threading.Thread (one OS thread each).
- unbuffered Chan -> queue.Queue(maxsize=1); the standard library has no
  rendezvous channel (put() returns once the value is queued).
- buffered Chan  -> queue.Queue(maxsize=cap).
- close(ch)      -> a None sentinel after the last item (one per receiver
  when several share the queue).
- select         -> none: one forwarder thread per source queue copies
  (index, value) into one merged queue.
- WaitGroup      -> a counter under a Lock plus an Event (class below).
- Mutex          -> threading.Lock.

Scaled-down sizes (LIMITS): an OS thread costs tens of microseconds to start
(more as the number of live threads grows) and a stack of its own, and a
Linux box allows some 30,000 of them (kernel.pid_max), so B1, B5 and B8
cannot run 100,000 (or 1,111,111) threads.
They run at the size in LIMITS; B1 and B8 report the same per-unit figure,
and B5 (seconds) is extrapolated linearly to the full size.  The runner
marks such cells.
"""

import queue
import threading

try:
    from . import common as C
except ImportError:  # run by the runner as a script, outside the package
    import common as C

now_ns = C.now_ns
Queue = queue.Queue

LIMITS = {
    "full": {"B1": dict(n=20_000), "B5": dict(leaves=10_000), "B8": dict(n=5_000)},
    "quick": {"B5": dict(leaves=1_000), "B8": dict(n=1_000)},
}


def setup(runtime, procs):
    pass


def spawn(fn, *args, daemon=False):
    t = threading.Thread(target=fn, args=args, daemon=daemon)
    t.start()
    return t


class WaitGroup:
    """Go's WaitGroup for threads: a counter under a lock, and an Event."""

    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()
        self.event = threading.Event()

    def add(self, k):
        with self.lock:
            self.n += k

    def done(self):
        with self.lock:
            self.n -= 1
            if self.n == 0:
                self.event.set()

    def wait(self):
        self.event.wait()


# B1 spawn ------------------------------------------------------------------

def _b1_worker(i, out, wg):
    out[i] = 1
    wg.done()


def b1(n):
    out = bytearray(n)
    wg = WaitGroup()
    t0 = now_ns()
    wg.add(n)
    for i in range(n):
        spawn(_b1_worker, i, out, wg)
    wg.wait()
    dt = now_ns() - t0
    C.check(out.count(1) == n, "every thread ran", out.count(1), n)
    return dt / n


# B2 pingpong ---------------------------------------------------------------

def _b2_ponger(ping, pong, n):
    for _ in range(n):
        v = ping.get()
        pong.put(v + 1)


def b2(n):
    ping, pong = Queue(1), Queue(1)
    total = 0
    t0 = now_ns()
    t = spawn(_b2_ponger, ping, pong, n)
    for i in range(n):
        ping.put(i)
        total += pong.get()
    dt = now_ns() - t0
    t.join()
    C.check(total == n * (n + 1) // 2, "sum of replies", total, n * (n + 1) // 2)
    return dt / n


# B3 buffered ---------------------------------------------------------------

def _b3_producer(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)  # close


def b3(n, cap):
    q = Queue(cap)
    total = count = 0
    t0 = now_ns()
    t = spawn(_b3_producer, q, n)
    while True:
        v = q.get()
        if v is None:
            break
        total += v
        count += 1
    dt = now_ns() - t0
    t.join()
    C.check(count == n and total == n * (n - 1) // 2, "items received", (count, total),
            (n, n * (n - 1) // 2))
    return dt / n


# B4 select (forwarders) ----------------------------------------------------

def _b4_producer(q, lo, hi):
    for v in range(lo, hi):
        q.put(v)
    q.put(None)  # close


def _b4_forwarder(k, src, merged):
    # Stands in for select: copies one source into the merged queue.
    while True:
        v = src.get()
        if v is None:
            return
        merged.put((k, v))


def b4(n, producers):
    per = n // producers
    merged = Queue(1)
    counts = [0] * producers
    total = 0
    t0 = now_ns()
    threads = []
    for k in range(producers):
        src = Queue(1)
        threads.append(spawn(_b4_forwarder, k, src, merged))
        threads.append(spawn(_b4_producer, src, k * per, (k + 1) * per))
    for _ in range(per * producers):
        i, v = merged.get()
        counts[i] += 1
        total += v
    dt = now_ns() - t0
    for t in threads:
        t.join()
    m = per * producers
    C.check(counts == [per] * producers, "items per source", counts, [per] * producers)
    C.check(total == m * (m - 1) // 2, "sum of items", total, m * (m - 1) // 2)
    return dt / m


# B5 skynet -----------------------------------------------------------------

def _skynet(out, num, size, div):
    if size == 1:
        out.put(num)
        return
    rc = Queue(1)
    sub = size // div
    for i in range(div):
        spawn(_skynet, rc, num + i * sub, sub, div)
    total = 0
    for _ in range(div):
        total += rc.get()
    out.put(total)


def b5(leaves, div):
    C.check_skynet_size(leaves, div)
    q = Queue(1)
    t0 = now_ns()
    spawn(_skynet, q, 0, leaves, div)
    total = q.get()
    dt = now_ns() - t0
    C.check(total == C.skynet_sum(leaves), "skynet sum", total, C.skynet_sum(leaves))
    return dt / 1e9


# B6 sieve ------------------------------------------------------------------

def _generate(q):
    i = 2
    while True:
        q.put(i)
        i += 1


def _filter(src, dst, prime):
    while True:
        i = src.get()
        if i % prime:
            dst.put(i)


def b6(primes):
    found = []
    t0 = now_ns()
    q = Queue(1)
    # Daemon threads: the chain stays blocked at the end, as in Go, and
    # threads cannot be cancelled; they end with this (one-shot) process.
    spawn(_generate, q, daemon=True)
    for _ in range(primes):
        p = q.get()
        found.append(p)
        q1 = Queue(1)
        spawn(_filter, q, q1, p, daemon=True)
        q = q1
    dt = now_ns() - t0
    C.check(found == C.first_primes(primes), "primes found")
    return dt / 1e9


# B7 worker pool ------------------------------------------------------------

def _b7_producer(jobs, n, workers):
    for i in range(n):
        jobs.put(i)
    for _ in range(workers):  # close: one sentinel per worker
        jobs.put(None)


def _b7_worker(jobs, results, wg):
    while True:
        j = jobs.get()
        if j is None:
            break
        results.put(j * 2)
    wg.done()


def _b7_closer(wg, results):
    wg.wait()
    results.put(None)  # close


def b7(jobs, workers, cap):
    jq, rq = Queue(cap), Queue(cap)
    wg = WaitGroup()
    total = count = 0
    t0 = now_ns()
    wg.add(workers)
    threads = [spawn(_b7_worker, jq, rq, wg) for _ in range(workers)]
    threads.append(spawn(_b7_producer, jq, jobs, workers))
    threads.append(spawn(_b7_closer, wg, rq))
    while True:
        r = rq.get()
        if r is None:
            break
        total += r
        count += 1
    dt = now_ns() - t0
    for t in threads:
        t.join()
    C.check(count == jobs and total == jobs * (jobs - 1), "results", (count, total),
            (jobs, jobs * (jobs - 1)))
    return dt / jobs


# B8 memory -----------------------------------------------------------------

def _b8_parked(q, i, out, started):
    started.done()
    out[i] = q.get()


def b8(n):
    import gc
    queues = [None] * n
    threads = [None] * n
    out = [0] * n
    started = WaitGroup()
    gc.collect()
    rss0 = C.rss_bytes()
    started.add(n)
    for i in range(n):
        q = queues[i] = Queue(1)
        threads[i] = spawn(_b8_parked, q, i, out, started)
    started.wait()
    rss1 = C.rss_bytes()
    for i, q in enumerate(queues):
        q.put(i)
    for t in threads:
        t.join()
    C.check(sum(out) == n * (n - 1) // 2, "values received after release",
            sum(out), n * (n - 1) // 2)
    return (rss1 - rss0) / n


# B9 parallel ---------------------------------------------------------------

def _b9_hasher(data, rounds, out, i):
    out[i] = C.hash_rounds(data, rounds)


def b9(goroutines, mib, rounds):
    data = C.hash_payload(mib)
    serial, digest = C.serial_hash_seconds(data, goroutines, rounds)
    out = [None] * goroutines
    t0 = now_ns()
    threads = [spawn(_b9_hasher, data, rounds, out, i) for i in range(goroutines)]
    for t in threads:
        t.join()
    dt = now_ns() - t0
    C.check(out == [digest] * goroutines, "digests")
    return serial / (dt / 1e9)


# B10 mutex -----------------------------------------------------------------

def _b10_locker(lock, iters, box, wg):
    for _ in range(iters):
        lock.acquire()
        box[0] += 1
        lock.release()
    wg.done()


def b10(goroutines, iters):
    lock = threading.Lock()
    wg = WaitGroup()
    box = [0]
    t0 = now_ns()
    wg.add(goroutines)
    for _ in range(goroutines):
        spawn(_b10_locker, lock, iters, box, wg)
    wg.wait()
    dt = now_ns() - t0
    C.check(box[0] == goroutines * iters, "counter", box[0], goroutines * iters)
    return dt / (goroutines * iters)


# B11 pure-Python CPU work ----------------------------------------------------

def _b11_summer(n, out, i):
    out[i] = C.cpu_sum(n)


def b11(goroutines, n):
    out = [None] * goroutines
    t0 = now_ns()
    threads = [spawn(_b11_summer, n, out, i) for i in range(goroutines)]
    for t in threads:
        t.join()
    dt = now_ns() - t0
    C.check_cpu_sums(out, goroutines, n)
    return dt / 1e9


WORKLOADS = {"B1": b1, "B2": b2, "B3": b3, "B4": b4, "B5": b5,
             "B6": b6, "B7": b7, "B8": b8, "B9": b9, "B10": b10, "B11": b11}
