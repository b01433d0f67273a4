"""B1..B11 on gevent (greenlets; no monkey-patching, gevent's own primitives).

Equivalents of Go's primitives, and why:
- goroutine      -> gevent.spawn (a Greenlet).
- unbuffered Chan -> gevent.queue.Channel: a real rendezvous channel.
- buffered Chan  -> gevent.queue.Queue(maxsize=cap).
- close(ch)      -> a None sentinel after the last item (one per receiver
  when several share the queue); gevent's queues have no close.
- select         -> none for queues in gevent: one forwarder greenlet per
  source channel copies (index, value) into one merged channel.
- WaitGroup      -> a counter plus a gevent.event.Event (class below).
- Mutex          -> gevent.lock.BoundedSemaphore(1) (what gevent's
  monkey-patched threading.Lock is; releasing it unlocked raises, as Go).
- B9 (GIL-releasing work) -> the hub's thread pool (threadpool.apply),
  gevent's way to run blocking work without blocking the loop.
"""

import os
import sys

import gevent
import gevent.event
import gevent.lock
import gevent.queue

try:
    from . import common as C
except ImportError:  # run by the runner as a script, outside the package
    import common as C

now_ns = C.now_ns
spawn = gevent.spawn
Channel = gevent.queue.Channel
Queue = gevent.queue.Queue


def setup(runtime, procs):
    # An exception escaping a greenlet is only printed by gevent, which
    # would leave the workload waiting forever: fail the run at once.
    hub = gevent.get_hub()
    report = hub.handle_error

    def handle_error(context, type_, value, tb):
        report(context, type_, value, tb)
        if not issubclass(type_, gevent.GreenletExit):
            sys.stderr.flush()
            os._exit(3)
    hub.handle_error = handle_error


class WaitGroup:
    """Go's WaitGroup for gevent: a counter and an Event."""

    __slots__ = ("n", "event")

    def __init__(self):
        self.n = 0
        self.event = gevent.event.Event()

    def add(self, k):
        self.n += k

    def done(self):
        self.n -= 1
        if self.n == 0:
            self.event.set()

    def wait(self):
        if self.n:
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
    C.check(out.count(1) == n, "every greenlet ran", out.count(1), n)
    return dt / n


# B2 pingpong ---------------------------------------------------------------

def _b2_ponger(ping, pong, n):
    for _ in range(n):
        v = ping.get()
        pong.put(v + 1)


def b2(n):
    ping, pong = Channel(), Channel()
    total = 0
    t0 = now_ns()
    g = spawn(_b2_ponger, ping, pong, n)
    for i in range(n):
        ping.put(i)
        total += pong.get()
    dt = now_ns() - t0
    g.join()
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
    g = spawn(_b3_producer, q, n)
    while True:
        v = q.get()
        if v is None:
            break
        total += v
        count += 1
    dt = now_ns() - t0
    g.join()
    C.check(count == n and total == n * (n - 1) // 2, "items received", (count, total),
            (n, n * (n - 1) // 2))
    return dt / n


# B4 select (forwarders) ----------------------------------------------------

def _b4_producer(ch, lo, hi):
    for v in range(lo, hi):
        ch.put(v)
    ch.put(None)  # close


def _b4_forwarder(k, src, merged):
    # Stands in for select: copies one source into the merged channel.
    while True:
        v = src.get()
        if v is None:
            return
        merged.put((k, v))


def b4(n, producers):
    per = n // producers
    merged = Channel()
    counts = [0] * producers
    total = 0
    t0 = now_ns()
    greenlets = []
    for k in range(producers):
        src = Channel()
        greenlets.append(spawn(_b4_forwarder, k, src, merged))
        greenlets.append(spawn(_b4_producer, src, k * per, (k + 1) * per))
    for _ in range(per * producers):
        i, v = merged.get()
        counts[i] += 1
        total += v
    dt = now_ns() - t0
    gevent.joinall(greenlets, raise_error=True)
    m = per * producers
    C.check(counts == [per] * producers, "items per source", counts, [per] * producers)
    C.check(total == m * (m - 1) // 2, "sum of items", total, m * (m - 1) // 2)
    return dt / m


# B5 skynet -----------------------------------------------------------------

def _skynet(out, num, size, div):
    if size == 1:
        out.put(num)
        return
    rc = Channel()
    sub = size // div
    for i in range(div):
        spawn(_skynet, rc, num + i * sub, sub, div)
    total = 0
    for _ in range(div):
        total += rc.get()
    out.put(total)


def b5(leaves, div):
    C.check_skynet_size(leaves, div)
    c = Channel()
    t0 = now_ns()
    spawn(_skynet, c, 0, leaves, div)
    total = c.get()
    dt = now_ns() - t0
    C.check(total == C.skynet_sum(leaves), "skynet sum", total, C.skynet_sum(leaves))
    return dt / 1e9


# B6 sieve ------------------------------------------------------------------

def _generate(ch):
    i = 2
    while True:
        ch.put(i)
        i += 1


def _filter(src, dst, prime):
    while True:
        i = src.get()
        if i % prime:
            dst.put(i)


def b6(primes):
    found = []
    greenlets = []
    t0 = now_ns()
    ch = Channel()
    greenlets.append(spawn(_generate, ch))
    for _ in range(primes):
        p = ch.get()
        found.append(p)
        ch1 = Channel()
        greenlets.append(spawn(_filter, ch, ch1, p))
        ch = ch1
    dt = now_ns() - t0
    gevent.killall(greenlets)  # still blocked, as in Go: stop them
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
    greenlets = [spawn(_b7_worker, jq, rq, wg) for _ in range(workers)]
    greenlets.append(spawn(_b7_producer, jq, jobs, workers))
    greenlets.append(spawn(_b7_closer, wg, rq))
    while True:
        r = rq.get()
        if r is None:
            break
        total += r
        count += 1
    dt = now_ns() - t0
    gevent.joinall(greenlets, raise_error=True)
    C.check(count == jobs and total == jobs * (jobs - 1), "results", (count, total),
            (jobs, jobs * (jobs - 1)))
    return dt / jobs


# B8 memory -----------------------------------------------------------------

def _b8_parked(ch, i, out, started, finished):
    started.done()
    out[i] = ch.get()
    finished.done()


def b8(n):
    import gc
    gevent.sleep(0)  # start the hub before the baseline
    chans = [None] * n
    out = [0] * n
    started, finished = WaitGroup(), WaitGroup()
    gc.collect()
    rss0 = C.rss_bytes()
    started.add(n)
    finished.add(n)
    for i in range(n):
        ch = chans[i] = Channel()
        spawn(_b8_parked, ch, i, out, started, finished)
    started.wait()
    rss1 = C.rss_bytes()
    for i, ch in enumerate(chans):
        ch.put(i)
    finished.wait()
    C.check(sum(out) == n * (n - 1) // 2, "values received after release",
            sum(out), n * (n - 1) // 2)
    return (rss1 - rss0) / n


# B9 parallel ---------------------------------------------------------------

def _b9_hasher(pool, data, rounds, out, i):
    out[i] = pool.apply(C.hash_rounds, (data, rounds))


def b9(goroutines, mib, rounds):
    data = C.hash_payload(mib)
    serial, digest = C.serial_hash_seconds(data, goroutines, rounds)
    pool = gevent.get_hub().threadpool
    out = [None] * goroutines
    t0 = now_ns()
    gevent.joinall([spawn(_b9_hasher, pool, data, rounds, out, i) for i in range(goroutines)],
                   raise_error=True)
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
    lock = gevent.lock.BoundedSemaphore(1)
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
    gevent.joinall([spawn(_b11_summer, n, out, i) for i in range(goroutines)], raise_error=True)
    dt = now_ns() - t0
    C.check_cpu_sums(out, goroutines, n)
    return dt / 1e9


WORKLOADS = {"B1": b1, "B2": b2, "B3": b3, "B4": b4, "B5": b5,
             "B6": b6, "B7": b7, "B8": b8, "B9": b9, "B10": b10, "B11": b11}
