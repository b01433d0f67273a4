"""B1..B11 on trio.

Equivalents of Go's primitives, and why:
- goroutine      -> a task started in a nursery.  trio has no unstructured
  spawn: every task belongs to a nursery, and a nursery block waits for all
  its tasks, so the nursery is also trio's WaitGroup where one is needed.
- unbuffered Chan -> trio.open_memory_channel(0): a real rendezvous channel.
- buffered Chan  -> trio.open_memory_channel(cap).
- close(ch)      -> closing the send side (`async with send_channel`);
  receivers' `async for` ends, as Go's range does.  Several senders close
  via clone() (B7).
- select         -> none in trio: one forwarder task per source channel
  copies (index, value) into one merged channel that the consumer reads.
- Mutex          -> trio.Lock (its acquire is always a scheduling checkpoint).
- B9 (GIL-releasing work) -> trio.to_thread.run_sync, trio's way to run
  blocking work concurrently.
"""

import trio

try:
    from . import common as C
except ImportError:  # run by the runner as a script, outside the package
    import common as C

now_ns = C.now_ns
channel = trio.open_memory_channel


def setup(runtime, procs):
    pass


class Started:
    """Counts tasks that reached a point; `wait()` returns when all have."""

    def __init__(self, n):
        self.n = n
        self.event = trio.Event()

    def done(self):
        self.n -= 1
        if self.n == 0:
            self.event.set()

    async def wait(self):
        if self.n:
            await self.event.wait()


# B1 spawn ------------------------------------------------------------------

async def _b1_worker(i, out):
    out[i] = 1


def b1(n):
    async def main():
        out = bytearray(n)
        t0 = now_ns()
        async with trio.open_nursery() as nursery:  # the WaitGroup
            spawn = nursery.start_soon
            for i in range(n):
                spawn(_b1_worker, i, out)
        dt = now_ns() - t0
        C.check(out.count(1) == n, "every task ran", out.count(1), n)
        return dt / n
    return trio.run(main)


# B2 pingpong ---------------------------------------------------------------

async def _b2_ponger(ping_r, pong_s, n):
    for _ in range(n):
        v = await ping_r.receive()
        await pong_s.send(v + 1)


def b2(n):
    async def main():
        ping_s, ping_r = channel(0)
        pong_s, pong_r = channel(0)
        total = 0
        async with trio.open_nursery() as nursery:
            t0 = now_ns()
            nursery.start_soon(_b2_ponger, ping_r, pong_s, n)
            for i in range(n):
                await ping_s.send(i)
                total += await pong_r.receive()
            dt = now_ns() - t0
        C.check(total == n * (n + 1) // 2, "sum of replies", total, n * (n + 1) // 2)
        return dt / n
    return trio.run(main)


# B3 buffered ---------------------------------------------------------------

async def _b3_producer(send, n):
    async with send:  # closes it at the end
        for i in range(n):
            await send.send(i)


def b3(n, cap):
    async def main():
        send, recv = channel(cap)
        total = count = 0
        async with trio.open_nursery() as nursery:
            t0 = now_ns()
            nursery.start_soon(_b3_producer, send, n)
            async for v in recv:
                total += v
                count += 1
            dt = now_ns() - t0
        C.check(count == n and total == n * (n - 1) // 2, "items received", (count, total),
                (n, n * (n - 1) // 2))
        return dt / n
    return trio.run(main)


# B4 select (forwarders) ----------------------------------------------------

async def _b4_producer(send, lo, hi):
    async with send:
        for v in range(lo, hi):
            await send.send(v)


async def _b4_forwarder(k, recv, merged):
    # Stands in for select: copies one source into the merged channel.
    async for v in recv:
        await merged.send((k, v))


def b4(n, producers):
    per = n // producers

    async def main():
        merged_s, merged_r = channel(0)
        counts = [0] * producers
        total = 0
        async with trio.open_nursery() as nursery:
            t0 = now_ns()
            for k in range(producers):
                send, recv = channel(0)
                nursery.start_soon(_b4_forwarder, k, recv, merged_s)
                nursery.start_soon(_b4_producer, send, k * per, (k + 1) * per)
            for _ in range(per * producers):
                i, v = await merged_r.receive()
                counts[i] += 1
                total += v
            dt = now_ns() - t0
        m = per * producers
        C.check(counts == [per] * producers, "items per source", counts, [per] * producers)
        C.check(total == m * (m - 1) // 2, "sum of items", total, m * (m - 1) // 2)
        return dt / m
    return trio.run(main)


# B5 skynet -----------------------------------------------------------------

async def _skynet(out, num, size, div):
    if size == 1:
        await out.send(num)
        return
    send, recv = channel(0)
    sub = size // div
    total = 0
    async with trio.open_nursery() as nursery:
        for i in range(div):
            nursery.start_soon(_skynet, send, num + i * sub, sub, div)
        for _ in range(div):
            total += await recv.receive()
    await out.send(total)


def b5(leaves, div):
    C.check_skynet_size(leaves, div)

    async def main():
        send, recv = channel(0)
        async with trio.open_nursery() as nursery:
            t0 = now_ns()
            nursery.start_soon(_skynet, send, 0, leaves, div)
            total = await recv.receive()
            dt = now_ns() - t0
        C.check(total == C.skynet_sum(leaves), "skynet sum", total, C.skynet_sum(leaves))
        return dt / 1e9
    return trio.run(main)


# B6 sieve ------------------------------------------------------------------

async def _generate(send):
    i = 2
    while True:
        await send.send(i)
        i += 1


async def _filter(recv, send, prime):
    async for i in recv:
        if i % prime:
            await send.send(i)


def b6(primes):
    async def main():
        found = []
        async with trio.open_nursery() as nursery:
            t0 = now_ns()
            send, recv = channel(0)
            nursery.start_soon(_generate, send)
            for _ in range(primes):
                p = await recv.receive()
                found.append(p)
                send1, recv1 = channel(0)
                nursery.start_soon(_filter, recv, send1, p)
                recv = recv1
            dt = now_ns() - t0
            nursery.cancel_scope.cancel()  # the chain is still blocked, as in Go: stop it
        C.check(found == C.first_primes(primes), "primes found")
        return dt / 1e9
    return trio.run(main)


# B7 worker pool ------------------------------------------------------------

async def _b7_producer(jobs_s, n):
    async with jobs_s:
        for i in range(n):
            await jobs_s.send(i)


async def _b7_worker(jobs_r, results_s):
    async with results_s:  # this worker's clone; the last one closes results
        async for j in jobs_r:
            await results_s.send(j * 2)


def b7(jobs, workers, cap):
    async def main():
        jobs_s, jobs_r = channel(cap)
        results_s, results_r = channel(cap)
        total = count = 0
        async with trio.open_nursery() as nursery:
            t0 = now_ns()
            async with results_s:
                for _ in range(workers):
                    nursery.start_soon(_b7_worker, jobs_r, results_s.clone())
            nursery.start_soon(_b7_producer, jobs_s, jobs)
            async for r in results_r:
                total += r
                count += 1
            dt = now_ns() - t0
        C.check(count == jobs and total == jobs * (jobs - 1), "results", (count, total),
                (jobs, jobs * (jobs - 1)))
        return dt / jobs
    return trio.run(main)


# B8 memory -----------------------------------------------------------------

async def _b8_parked(recv, i, out, started):
    started.done()
    out[i] = await recv.receive()


def b8(n):
    async def main():
        import gc
        senders = [None] * n
        out = [0] * n
        gc.collect()
        rss0 = C.rss_bytes()
        started = Started(n)
        async with trio.open_nursery() as nursery:  # waits for the release
            for i in range(n):
                senders[i], recv = channel(0)
                nursery.start_soon(_b8_parked, recv, i, out, started)
            await started.wait()
            rss1 = C.rss_bytes()
            for i, send in enumerate(senders):
                await send.send(i)
        C.check(sum(out) == n * (n - 1) // 2, "values received after release",
                sum(out), n * (n - 1) // 2)
        return (rss1 - rss0) / n
    return trio.run(main)


# B9 parallel ---------------------------------------------------------------

async def _b9_hasher(data, rounds, out, i):
    out[i] = await trio.to_thread.run_sync(C.hash_rounds, data, rounds)


def b9(goroutines, mib, rounds):
    data = C.hash_payload(mib)
    serial, digest = C.serial_hash_seconds(data, goroutines, rounds)

    async def main():
        out = [None] * goroutines
        t0 = now_ns()
        async with trio.open_nursery() as nursery:
            for i in range(goroutines):
                nursery.start_soon(_b9_hasher, data, rounds, out, i)
        dt = now_ns() - t0
        C.check(out == [digest] * goroutines, "digests")
        return dt / 1e9
    return serial / trio.run(main)


# B10 mutex -----------------------------------------------------------------

async def _b10_locker(lock, iters, box):
    for _ in range(iters):
        await lock.acquire()
        box[0] += 1
        lock.release()


def b10(goroutines, iters):
    async def main():
        lock = trio.Lock()
        box = [0]
        t0 = now_ns()
        async with trio.open_nursery() as nursery:  # the WaitGroup
            for _ in range(goroutines):
                nursery.start_soon(_b10_locker, lock, iters, box)
        dt = now_ns() - t0
        C.check(box[0] == goroutines * iters, "counter", box[0], goroutines * iters)
        return dt / (goroutines * iters)
    return trio.run(main)


# B11 pure-Python CPU work ----------------------------------------------------

async def _b11_summer(n, out, i):
    out[i] = C.cpu_sum(n)


def b11(goroutines, n):
    async def main():
        out = [None] * goroutines
        t0 = now_ns()
        async with trio.open_nursery() as nursery:
            for i in range(goroutines):
                nursery.start_soon(_b11_summer, n, out, i)
        dt = now_ns() - t0
        C.check_cpu_sums(out, goroutines, n)
        return dt / 1e9
    return trio.run(main)


WORKLOADS = {"B1": b1, "B2": b2, "B3": b3, "B4": b4, "B5": b5,
             "B6": b6, "B7": b7, "B8": b8, "B9": b9, "B10": b10, "B11": b11}
