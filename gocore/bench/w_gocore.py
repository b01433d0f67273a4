"""B1..B11 on gocore: goroutines, Chan, select, WaitGroup, Mutex.

These are the reference implementations: each is the Go program of the
workload written with gocore's API (DESIGN.md §1).  Timing runs inside the
main goroutine, so the runtime's start and stop are not measured (the same
holds for every peer).
"""

from gocore import Chan, Mutex, WaitGroup, go, gomaxprocs, run, select

try:
    from . import common as C
except ImportError:  # run by the runner as a script, outside the package
    import common as C

now_ns = C.now_ns


def setup(runtime, procs):
    if procs:
        gomaxprocs(procs)


# B1 spawn ------------------------------------------------------------------

async def _b1_worker(i, out, wg):
    out[i] = 1
    wg.done()


def b1(n):
    async def main():
        out = bytearray(n)
        wg = WaitGroup()
        t0 = now_ns()
        wg.add(n)
        for i in range(n):
            go(_b1_worker, i, out, wg)
        await wg.wait()
        dt = now_ns() - t0
        C.check(out.count(1) == n, "every goroutine ran", out.count(1), n)
        return dt / n
    return run(main)


# B2 pingpong ---------------------------------------------------------------

async def _b2_ponger(ping, pong, n):
    for _ in range(n):
        v = await ping.recv()
        await pong.send(v + 1)


def b2(n):
    async def main():
        ping, pong = Chan(), Chan()
        total = 0
        t0 = now_ns()
        go(_b2_ponger, ping, pong, n)
        for i in range(n):
            await ping.send(i)
            total += await pong.recv()
        dt = now_ns() - t0
        C.check(total == n * (n + 1) // 2, "sum of replies", total, n * (n + 1) // 2)
        return dt / n
    return run(main)


# B3 buffered ---------------------------------------------------------------

async def _b3_producer(ch, n):
    for i in range(n):
        await ch.send(i)
    ch.close()


def b3(n, cap):
    async def main():
        ch = Chan(cap)
        total = count = 0
        t0 = now_ns()
        go(_b3_producer, ch, n)
        async for v in ch:
            total += v
            count += 1
        dt = now_ns() - t0
        C.check(count == n and total == n * (n - 1) // 2, "items received", (count, total),
                (n, n * (n - 1) // 2))
        return dt / n
    return run(main)


# B4 select -----------------------------------------------------------------

async def _b4_producer(ch, lo, hi):
    for v in range(lo, hi):
        await ch.send(v)


def b4(n, producers):
    per = n // producers

    async def main():
        chans = [Chan() for _ in range(producers)]
        cases = [c.recv for c in chans]
        counts = [0] * producers
        total = 0
        t0 = now_ns()
        for k, c in enumerate(chans):
            go(_b4_producer, c, k * per, (k + 1) * per)
        for _ in range(per * producers):
            i, v = await select(*cases)
            counts[i] += 1
            total += v
        dt = now_ns() - t0
        m = per * producers
        C.check(counts == [per] * producers, "items per channel", counts, [per] * producers)
        C.check(total == m * (m - 1) // 2, "sum of items", total, m * (m - 1) // 2)
        return dt / m
    return run(main)


# B5 skynet -----------------------------------------------------------------

async def _skynet(c, num, size, div):
    if size == 1:
        await c.send(num)
        return
    rc = Chan()
    sub = size // div
    for i in range(div):
        go(_skynet, rc, num + i * sub, sub, div)
    total = 0
    for _ in range(div):
        total += await rc.recv()
    await c.send(total)


def b5(leaves, div):
    C.check_skynet_size(leaves, div)

    async def main():
        c = Chan()
        t0 = now_ns()
        go(_skynet, c, 0, leaves, div)
        total = await c.recv()
        dt = now_ns() - t0
        C.check(total == C.skynet_sum(leaves), "skynet sum", total, C.skynet_sum(leaves))
        return dt / 1e9
    return run(main)


# B6 sieve ------------------------------------------------------------------

async def _generate(ch):
    i = 2
    while True:
        await ch.send(i)
        i += 1


async def _filter(src, dst, prime):
    while True:
        i = await src.recv()
        if i % prime:
            await dst.send(i)


def b6(primes):
    async def main():
        found = []
        t0 = now_ns()
        ch = Chan()
        go(_generate, ch)
        for _ in range(primes):
            p = await ch.recv()
            found.append(p)
            ch1 = Chan()
            go(_filter, ch, ch1, p)
            ch = ch1
        dt = now_ns() - t0
        C.check(found == C.first_primes(primes), "primes found")
        return dt / 1e9
    # The generator and filters are still blocked when main returns; run()
    # closes them, as a Go program exits with them blocked.
    return run(main)


# B7 worker pool ------------------------------------------------------------

async def _b7_producer(jobs, n):
    for i in range(n):
        await jobs.send(i)
    jobs.close()


async def _b7_worker(jobs, results, wg):
    async for j in jobs:
        await results.send(j * 2)
    wg.done()


async def _b7_closer(wg, results):
    await wg.wait()
    results.close()


def b7(jobs, workers, cap):
    async def main():
        jch, rch = Chan(cap), Chan(cap)
        wg = WaitGroup()
        total = count = 0
        t0 = now_ns()
        wg.add(workers)
        for _ in range(workers):
            go(_b7_worker, jch, rch, wg)
        go(_b7_producer, jch, jobs)
        go(_b7_closer, wg, rch)
        async for r in rch:
            total += r
            count += 1
        dt = now_ns() - t0
        C.check(count == jobs and total == jobs * (jobs - 1), "results", (count, total),
                (jobs, jobs * (jobs - 1)))
        return dt / jobs
    return run(main)


# B8 memory -----------------------------------------------------------------

async def _b8_parked(ch, i, out, started, finished):
    started.done()
    out[i] = await ch.recv()
    finished.done()


def b8(n):
    async def main():
        import gc
        chans = [None] * n
        out = [0] * n
        started, finished = WaitGroup(), WaitGroup()
        gc.collect()
        rss0 = C.rss_bytes()
        started.add(n)
        finished.add(n)
        for i in range(n):
            ch = chans[i] = Chan()
            go(_b8_parked, ch, i, out, started, finished)
        await started.wait()
        rss1 = C.rss_bytes()
        # Release them: each receives its index, then exits.
        for i, ch in enumerate(chans):
            await ch.send(i)
        await finished.wait()
        C.check(sum(out) == n * (n - 1) // 2, "values received after release",
                sum(out), n * (n - 1) // 2)
        return (rss1 - rss0) / n
    return run(main)


# B9 parallel ---------------------------------------------------------------

def _b9_hasher(data, rounds, out, i, wg):
    # A sync goroutine (plain function): hashlib releases the GIL, so with
    # gomaxprocs > 1 several of these hash at once.
    out[i] = C.hash_rounds(data, rounds)
    wg.done()


def b9(goroutines, mib, rounds):
    data = C.hash_payload(mib)
    serial, digest = C.serial_hash_seconds(data, goroutines, rounds)

    async def main():
        out = [None] * goroutines
        wg = WaitGroup()
        t0 = now_ns()
        wg.add(goroutines)
        for i in range(goroutines):
            go(_b9_hasher, data, rounds, out, i, wg)
        await wg.wait()
        dt = now_ns() - t0
        C.check(out == [digest] * goroutines, "digests")
        return dt / 1e9
    return serial / run(main)


# B10 mutex -----------------------------------------------------------------

async def _b10_locker(m, iters, box, wg):
    for _ in range(iters):
        await m.lock()
        box[0] += 1
        m.unlock()
    wg.done()


def b10(goroutines, iters):
    async def main():
        m = Mutex()
        wg = WaitGroup()
        box = [0]
        t0 = now_ns()
        wg.add(goroutines)
        for _ in range(goroutines):
            go(_b10_locker, m, iters, box, wg)
        await wg.wait()
        dt = now_ns() - t0
        C.check(box[0] == goroutines * iters, "counter", box[0], goroutines * iters)
        return dt / (goroutines * iters)
    return run(main)


# B11 pure-Python CPU work ----------------------------------------------------

async def _b11_summer(n, out, i, wg):
    out[i] = C.cpu_sum(n)       # never yields: on a free-threaded build another M runs the rest
    wg.done()


def b11(goroutines, n):
    async def main():
        out = [None] * goroutines
        wg = WaitGroup()
        t0 = now_ns()
        wg.add(goroutines)
        for i in range(goroutines):
            go(_b11_summer, n, out, i, wg)
        await wg.wait()
        dt = now_ns() - t0
        C.check_cpu_sums(out, goroutines, n)
        return dt / 1e9
    return run(main)


WORKLOADS = {"B1": b1, "B2": b2, "B3": b3, "B4": b4, "B5": b5,
             "B6": b6, "B7": b7, "B8": b8, "B9": b9, "B10": b10, "B11": b11}
