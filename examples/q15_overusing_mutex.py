"""15. What are common pitfalls when using goroutines and channels? - 4. Overusing Mutexes

Go:  var mu sync.Mutex; var data int
     go func() { mu.Lock(); data++; mu.Unlock() }()
     Solution: prefer channels for communication and coordination.

gocore differences:
- `mu.Lock() ... mu.Unlock()` is `async with mu:`. The guide's fragment is
  made a whole program: 10 goroutines update `data` under a Mutex (joined
  with a WaitGroup), then the same with a goroutine that owns `data` and
  receives increments on a channel (no lock, no shared variable).
"""
from gocore import Chan, Mutex, WaitGroup, go, run

N = 10


async def with_mutex() -> int:
    mu = Mutex()
    data = 0
    wg = WaitGroup()

    async def bump() -> None:
        nonlocal data
        async with mu:  # mu.Lock(); data++; mu.Unlock()
            data += 1

    for _ in range(N):
        wg.go(bump)
    await wg.wait()
    return data


async def with_channel() -> int:
    incr: Chan[int] = Chan()
    result: Chan[int] = Chan()

    async def owner() -> None:  # the only goroutine that touches data
        data = 0
        async for d in incr:
            data += d
        await result.send(data)

    go(owner)
    async def send_one() -> None:
        await incr.send(1)

    wg = WaitGroup()
    for _ in range(N):
        wg.go(send_one)
    await wg.wait()
    incr.close()
    return await result.recv()


async def main() -> None:
    print("data (mutex):  ", await with_mutex())
    print("data (channel):", await with_channel())


if __name__ == "__main__":
    run(main)
