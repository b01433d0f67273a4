"""gocore demo: Go's concurrent prime sieve, a worker pool with select and
a timeout, and 100,000 goroutines - on the installed compiled package.

    python examples/demo.py
"""
import hashlib
import time

import gocore
from gocore import Chan, after, go, run, select


async def generate(ch: Chan[int]) -> None:
    i = 2
    while True:
        await ch.send(i)
        i += 1


async def filter_(src: Chan[int], dst: Chan[int], prime: int) -> None:
    async for i in src:
        if i % prime != 0:
            await dst.send(i)


async def sieve(n: int) -> list[int]:
    """Go's concurrent prime sieve: a chain of goroutines, one per prime."""
    ch: Chan[int] = Chan()
    go(generate, ch)
    primes = []
    for _ in range(n):
        prime = await ch.recv()
        primes.append(prime)
        ch1: Chan[int] = Chan()
        go(filter_, ch, ch1, prime)
        ch = ch1
    return primes


def hash_job(data: bytes, out: Chan) -> None:
    """A plain function: a sync goroutine on a worker thread."""
    out.blocking_send(hashlib.sha256(data).hexdigest()[:12])


async def main() -> None:
    t = time.perf_counter()
    primes = await sieve(300)
    print(f"sieve: first 300 primes, last {primes[-1]}, {time.perf_counter() - t:.3f} s "
          f"({gocore.num_goroutine()} goroutines alive)")

    results = Chan()
    for i in range(4):
        go(hash_job, bytes([i]) * 1_000_000, results)
    got = []
    timeout = after(5.0)
    while len(got) < 4:
        i, v = await select(results.recv, timeout.recv)
        if i == 1:
            raise TimeoutError("workers took too long")
        got.append(v)
    print(f"worker pool: {len(got)} hashes, e.g. {got[0]}")

    n = 100_000
    done = Chan(n)
    t = time.perf_counter()

    async def worker(k: int) -> None:
        await done.send(k)

    for k in range(n):
        go(worker, k)
    total = 0
    for _ in range(n):
        total += await done.recv()
    assert total == n * (n - 1) // 2
    dt = time.perf_counter() - t
    print(f"{n:,} goroutines spawned, run and joined in {dt:.3f} s ({dt / n * 1e9:.0f} ns each)")


if __name__ == "__main__":
    run(main)
