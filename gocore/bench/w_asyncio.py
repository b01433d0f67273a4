"""B1..B11 on asyncio (and on uvloop: the same code on uvloop's event loop).

Equivalents of Go's primitives, and why:
- goroutine      -> asyncio Task (loop.create_task).
- unbuffered Chan -> asyncio.Queue(maxsize=1).  asyncio has no rendezvous
  channel: put() returns as soon as the value is queued, not when a receiver
  has taken it, so this is slightly *less* synchronisation than Go's.
- buffered Chan  -> asyncio.Queue(maxsize=cap).
- close(ch)      -> a None sentinel put after the last item (one per
  receiver when several receivers share the queue); asyncio.Queue has no close.
- select         -> none in asyncio: one forwarder task per source queue
  copies (index, value) into one merged queue that the consumer reads.
- WaitGroup      -> a counter plus an asyncio.Event (class below).
- Mutex          -> asyncio.Lock.
- B9 (GIL-releasing work) -> asyncio.to_thread, asyncio's way to run
  blocking work concurrently (the default thread pool executor).
"""

import asyncio
import sys

try:
    from . import common as C
except ImportError:  # run by the runner as a script, outside the package
    import common as C

now_ns = C.now_ns
Queue = asyncio.Queue
_loop_factory = None


def setup(runtime, procs):
    """For runtime "uvloop", run every workload on uvloop's event loop."""
    global _loop_factory
    if runtime == "uvloop":
        import uvloop
        if sys.version_info >= (3, 11):
            _loop_factory = uvloop.new_event_loop
        else:  # asyncio.Runner is 3.11+: install uvloop's loop policy instead
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _run(main):
    if _loop_factory is not None:
        with asyncio.Runner(loop_factory=_loop_factory) as runner:
            return runner.run(main())
    return asyncio.run(main())


class WaitGroup:
    """Go's WaitGroup for asyncio, which has none: a counter and an Event."""

    __slots__ = ("n", "event")

    def __init__(self):
        self.n = 0
        self.event = asyncio.Event()

    def add(self, k):
        self.n += k

    def done(self):
        self.n -= 1
        if self.n == 0:
            self.event.set()

    async def wait(self):
        if self.n:
            await self.event.wait()


# B1 spawn ------------------------------------------------------------------

async def _b1_worker(i, out, wg):
    out[i] = 1
    wg.done()


def b1(n):
    async def main():
        spawn = asyncio.get_running_loop().create_task
        out = bytearray(n)
        wg = WaitGroup()
        t0 = now_ns()
        wg.add(n)
        for i in range(n):
            spawn(_b1_worker(i, out, wg))
        await wg.wait()
        dt = now_ns() - t0
        C.check(out.count(1) == n, "every task ran", out.count(1), n)
        return dt / n
    return _run(main)


# B2 pingpong ---------------------------------------------------------------

async def _b2_ponger(ping, pong, n):
    for _ in range(n):
        v = await ping.get()
        await pong.put(v + 1)


def b2(n):
    async def main():
        ping, pong = Queue(1), Queue(1)
        total = 0
        t0 = now_ns()
        task = asyncio.create_task(_b2_ponger(ping, pong, n))
        for i in range(n):
            await ping.put(i)
            total += await pong.get()
        dt = now_ns() - t0
        await task
        C.check(total == n * (n + 1) // 2, "sum of replies", total, n * (n + 1) // 2)
        return dt / n
    return _run(main)


# B3 buffered ---------------------------------------------------------------

async def _b3_producer(q, n):
    for i in range(n):
        await q.put(i)
    await q.put(None)  # close


def b3(n, cap):
    async def main():
        q = Queue(cap)
        total = count = 0
        t0 = now_ns()
        task = asyncio.create_task(_b3_producer(q, n))
        while True:
            v = await q.get()
            if v is None:
                break
            total += v
            count += 1
        dt = now_ns() - t0
        await task
        C.check(count == n and total == n * (n - 1) // 2, "items received", (count, total),
                (n, n * (n - 1) // 2))
        return dt / n
    return _run(main)


# B4 select (forwarders) ----------------------------------------------------

async def _b4_producer(q, lo, hi):
    for v in range(lo, hi):
        await q.put(v)
    await q.put(None)  # close


async def _b4_forwarder(k, src, merged):
    # Stands in for select: copies one source into the merged queue.
    while True:
        v = await src.get()
        if v is None:
            return
        await merged.put((k, v))


def b4(n, producers):
    per = n // producers

    async def main():
        spawn = asyncio.create_task
        merged = Queue(1)
        counts = [0] * producers
        total = 0
        t0 = now_ns()
        tasks = []
        for k in range(producers):
            src = Queue(1)
            tasks.append(spawn(_b4_forwarder(k, src, merged)))
            tasks.append(spawn(_b4_producer(src, k * per, (k + 1) * per)))
        for _ in range(per * producers):
            i, v = await merged.get()
            counts[i] += 1
            total += v
        dt = now_ns() - t0
        await asyncio.gather(*tasks)
        m = per * producers
        C.check(counts == [per] * producers, "items per source", counts, [per] * producers)
        C.check(total == m * (m - 1) // 2, "sum of items", total, m * (m - 1) // 2)
        return dt / m
    return _run(main)


# B5 skynet -----------------------------------------------------------------

async def _skynet(out, num, size, div):
    if size == 1:
        await out.put(num)
        return
    rc = Queue(1)
    sub = size // div
    spawn = asyncio.get_running_loop().create_task
    for i in range(div):
        spawn(_skynet(rc, num + i * sub, sub, div))
    total = 0
    for _ in range(div):
        total += await rc.get()
    await out.put(total)


def b5(leaves, div):
    C.check_skynet_size(leaves, div)

    async def main():
        q = Queue(1)
        t0 = now_ns()
        asyncio.create_task(_skynet(q, 0, leaves, div))
        total = await q.get()
        dt = now_ns() - t0
        C.check(total == C.skynet_sum(leaves), "skynet sum", total, C.skynet_sum(leaves))
        return dt / 1e9
    return _run(main)


# B6 sieve ------------------------------------------------------------------

async def _generate(q):
    i = 2
    while True:
        await q.put(i)
        i += 1


async def _filter(src, dst, prime):
    while True:
        i = await src.get()
        if i % prime:
            await dst.put(i)


def b6(primes):
    async def main():
        spawn = asyncio.create_task
        found = []
        tasks = []
        t0 = now_ns()
        q = Queue(1)
        tasks.append(spawn(_generate(q)))
        for _ in range(primes):
            p = await q.get()
            found.append(p)
            q1 = Queue(1)
            tasks.append(spawn(_filter(q, q1, p)))
            q = q1
        dt = now_ns() - t0
        for t in tasks:  # still blocked, as in Go; stop them
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        C.check(found == C.first_primes(primes), "primes found")
        return dt / 1e9
    return _run(main)


# B7 worker pool ------------------------------------------------------------

async def _b7_producer(jobs, n, workers):
    for i in range(n):
        await jobs.put(i)
    for _ in range(workers):  # close: one sentinel per worker
        await jobs.put(None)


async def _b7_worker(jobs, results, wg):
    while True:
        j = await jobs.get()
        if j is None:
            break
        await results.put(j * 2)
    wg.done()


async def _b7_closer(wg, results):
    await wg.wait()
    await results.put(None)  # close


def b7(jobs, workers, cap):
    async def main():
        spawn = asyncio.create_task
        jq, rq = Queue(cap), Queue(cap)
        wg = WaitGroup()
        total = count = 0
        t0 = now_ns()
        wg.add(workers)
        tasks = [spawn(_b7_worker(jq, rq, wg)) for _ in range(workers)]
        tasks.append(spawn(_b7_producer(jq, jobs, workers)))
        tasks.append(spawn(_b7_closer(wg, rq)))
        while True:
            r = await rq.get()
            if r is None:
                break
            total += r
            count += 1
        dt = now_ns() - t0
        await asyncio.gather(*tasks)
        C.check(count == jobs and total == jobs * (jobs - 1), "results", (count, total),
                (jobs, jobs * (jobs - 1)))
        return dt / jobs
    return _run(main)


# B8 memory -----------------------------------------------------------------

async def _b8_parked(q, i, out, started, finished):
    started.done()
    out[i] = await q.get()
    finished.done()


def b8(n):
    async def main():
        import gc
        spawn = asyncio.get_running_loop().create_task
        queues = [None] * n
        out = [0] * n
        started, finished = WaitGroup(), WaitGroup()
        gc.collect()
        rss0 = C.rss_bytes()
        started.add(n)
        finished.add(n)
        # Each task is kept alive by its queue's waiter list once parked.
        for i in range(n):
            q = queues[i] = Queue(1)
            spawn(_b8_parked(q, i, out, started, finished))
        await started.wait()  # the last task parks in get() in the same step
        rss1 = C.rss_bytes()
        for i, q in enumerate(queues):
            await q.put(i)
        await finished.wait()
        C.check(sum(out) == n * (n - 1) // 2, "values received after release",
                sum(out), n * (n - 1) // 2)
        return (rss1 - rss0) / n
    return _run(main)


# B9 parallel ---------------------------------------------------------------

async def _b9_hasher(data, rounds, out, i):
    out[i] = await asyncio.to_thread(C.hash_rounds, data, rounds)


def b9(goroutines, mib, rounds):
    data = C.hash_payload(mib)
    serial, digest = C.serial_hash_seconds(data, goroutines, rounds)

    async def main():
        out = [None] * goroutines
        t0 = now_ns()
        await asyncio.gather(*(_b9_hasher(data, rounds, out, i) for i in range(goroutines)))
        dt = now_ns() - t0
        C.check(out == [digest] * goroutines, "digests")
        return dt / 1e9
    return serial / _run(main)


# B10 mutex -----------------------------------------------------------------

async def _b10_locker(lock, iters, box, wg):
    for _ in range(iters):
        await lock.acquire()
        box[0] += 1
        lock.release()
    wg.done()


def b10(goroutines, iters):
    async def main():
        lock = asyncio.Lock()
        wg = WaitGroup()
        box = [0]
        t0 = now_ns()
        wg.add(goroutines)
        for _ in range(goroutines):
            asyncio.create_task(_b10_locker(lock, iters, box, wg))
        await wg.wait()
        dt = now_ns() - t0
        C.check(box[0] == goroutines * iters, "counter", box[0], goroutines * iters)
        return dt / (goroutines * iters)
    return _run(main)


# B11 pure-Python CPU work ----------------------------------------------------

async def _b11_summer(n, out, i):
    out[i] = C.cpu_sum(n)


def b11(goroutines, n):
    async def main():
        out = [None] * goroutines
        t0 = now_ns()
        await asyncio.gather(*(_b11_summer(n, out, i) for i in range(goroutines)))
        dt = now_ns() - t0
        C.check_cpu_sums(out, goroutines, n)
        return dt / 1e9
    return _run(main)


WORKLOADS = {"B1": b1, "B2": b2, "B3": b3, "B4": b4, "B5": b5,
             "B6": b6, "B7": b7, "B8": b8, "B9": b9, "B10": b10, "B11": b11}
