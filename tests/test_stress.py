"""Stress: many producers and consumers across Ms; counts prove nothing
is lost or duplicated. Every test runs at gomaxprocs 1 and 2."""
import threading
from collections import Counter

import pytest

from gocore import Chan, go, select

from conftest import wait_until


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [0, 1, 64])
def test_many_producers_many_consumers(rt, size):
    """Go: no value is lost or delivered twice, and each consumer sees
    each producer's values in the order sent (FIFO per channel)."""
    n_prod, n_cons, per = 16, 16, 500

    async def producer(p, c):
        for k in range(per):
            await c.send((p, k))

    async def consumer(c, out):
        seen = []
        async for v in c:
            seen.append(v)
        await out.send(seen)

    async def main():
        c, out, done = Chan(size), Chan(), Chan()

        async def prod_and_signal(p):
            await producer(p, c)
            await done.send(None)

        for p in range(n_prod):
            go(prod_and_signal, p)
        for _ in range(n_cons):
            go(consumer, c, out)
        for _ in range(n_prod):
            await done.recv()
        c.close()
        return [await out.recv() for _ in range(n_cons)]

    for _ in range(3):
        per_consumer = rt.run(main)
        every = Counter(v for seen in per_consumer for v in seen)
        assert len(every) == n_prod * per and set(every.values()) == {1}
        for seen in per_consumer:
            for p in range(n_prod):
                ks = [k for q, k in seen if q == p]
                assert ks == sorted(ks), "a producer's values arrived out of order"


@pytest.mark.timeout(60)
def test_mixed_goroutines_threads_and_select(rt):
    """Async goroutines, sync goroutines and plain threads all producing
    into and consuming from shared channels (some via select): exact counts."""
    per = 300

    async def main():
        a, b = Chan(8), Chan()
        out = Chan(64)
        total = 4 * per

        async def aprod(base):
            for k in range(per):
                await select((a.send, base + k), (b.send, base + k))

        def sprod(base):
            for k in range(per):
                (a if k % 2 else b).blocking_send(base + k)

        async def acons():
            while True:
                i, v = await select(a.recv_ok, b.recv_ok)
                val, ok = v
                if not ok:
                    return
                await out.send(val)

        def tcons():
            for v in out_thread_src:
                out.blocking_send(v)

        out_thread_src = a  # the thread consumer also drains `a`
        go(aprod, 0)
        go(aprod, 10_000)
        go(sprod, 20_000)
        t_prod = threading.Thread(target=sprod, args=(30_000,))
        t_prod.start()
        for _ in range(4):
            go(acons)
        t_cons = threading.Thread(target=tcons)
        t_cons.start()
        got = [await out.recv() for _ in range(total)]
        t_prod.join(0)
        await wait_until(lambda: not t_prod.is_alive())
        a.close()
        b.close()
        await wait_until(lambda: not t_cons.is_alive())
        return got

    got = rt.run(main)
    expected = [base + k for base in (0, 10_000, 20_000, 30_000) for k in range(300)]
    assert sorted(got) == expected


@pytest.mark.timeout(60)
def test_fan_in_fan_out_pipeline(rt):
    """A three-stage pipeline with fan-out and fan-in over unbuffered
    channels: the sum of squares is exact."""
    n, workers = 5000, 8

    async def gen(c):
        for i in range(n):
            await c.send(i)
        c.close()

    async def square(inp, out, done):
        async for v in inp:
            await out.send(v * v)
        await done.send(None)

    async def main():
        src, sq, done = Chan(), Chan(), Chan()
        go(gen, src)
        for _ in range(workers):
            go(square, src, sq, done)

        async def closer():
            for _ in range(workers):
                await done.recv()
            sq.close()

        go(closer)
        return sum([v async for v in sq])

    assert rt.run(main) == sum(i * i for i in range(n))
