"""8. What is a race condition, and how can you detect and prevent it in Go?

Go:  var counter int; func increment() { counter++ }   // 1000 goroutines: "Likely not 1000"
     fixes: sync.Mutex, a channel that owns the data, sync/atomic (atomic.AddInt64)

gocore differences:
- There is no race detector (`go run -race`): Python cannot instrument
  memory accesses. Prevent races by design - a Mutex, a goroutine that owns
  the data (channels), or gocore.atomic - all shown below.
- `counter += 1` is a read, an add and a write (three bytecodes), so it is
  racy in Python too. Whether updates are really lost depends on the build:
  * free-threaded CPython (3.13t+) with gomaxprocs >= 2 runs goroutines in
    parallel on several worker threads: updates are lost, as in Go;
  * on a GIL build only one thread runs Python at a time and a thread switch
    lands between the read and the write only rarely: the racy count is
    usually right - which makes the bug *harder* to see, not absent.
  The program therefore reports what happened and, on a GIL build, says why
  no loss may show; it never relies on the loss.
- To give the race a chance, each of the 1000 goroutines increments 100
  times (Go's single `counter++` per goroutine loses updates in Go because
  goroutines run truly in parallel; 100,000 increments make that visible on
  a free-threaded build too).
- `atomic.AddInt64(&counter, 1)` is `counter.add(1)` on a
  `gocore.atomic.Int64` (C11 atomics: correct with or without the GIL).
"""
import sys

from gocore import Chan, Mutex, WaitGroup, go, gomaxprocs, run
from gocore.atomic import Int64

GOROUTINES = 1000
PER_GOROUTINE = 100
WANT = GOROUTINES * PER_GOROUTINE


def gil_enabled() -> bool:
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return True if is_gil_enabled is None else is_gil_enabled()


# --- the race: counter++ from many goroutines --------------------------------
counter = 0


def increment() -> None:
    global counter
    counter += 1  # read, increment, write (not atomic)


async def racy() -> int:
    wg = WaitGroup()
    for _ in range(GOROUTINES):
        async def body() -> None:
            for _ in range(PER_GOROUTINE):
                increment()
        wg.go(body)
    await wg.wait()
    return counter


# --- fix 1: sync.Mutex --------------------------------------------------------
mu = Mutex()
locked_counter = 0


async def increment_locked() -> None:
    global locked_counter
    async with mu:  # mu.Lock(); counter++; mu.Unlock()
        locked_counter += 1


async def with_mutex() -> int:
    wg = WaitGroup()
    for _ in range(GOROUTINES):
        async def body() -> None:
            for _ in range(PER_GOROUTINE):
                await increment_locked()
        wg.go(body)
    await wg.wait()
    return locked_counter


# --- fix 2: a goroutine owns the data and sends the result --------------------
async def with_channel() -> int:
    ch: Chan[int] = Chan()

    async def owner() -> None:
        total = 0
        for _ in range(WANT):
            total += 1
        await ch.send(total)

    go(owner)
    return await ch.recv()


# --- fix 3: sync/atomic -------------------------------------------------------
atomic_counter = Int64()


async def with_atomic() -> int:
    wg = WaitGroup()
    for _ in range(GOROUTINES):
        async def body() -> None:
            for _ in range(PER_GOROUTINE):
                atomic_counter.add(1)  # atomic.AddInt64(&counter, 1)
        wg.go(body)
    await wg.wait()
    return atomic_counter.load()


async def main() -> None:
    n = await racy()
    print(f"Counter (racy):  {n} of {WANT}, lost {WANT - n}")
    if gil_enabled():
        print("note: GIL build - one thread runs Python at a time, so the racy counter "
              "rarely loses updates here; on free-threaded CPython with gomaxprocs >= 2 it does")
    elif gomaxprocs() < 2:
        print("note: gomaxprocs is 1 - goroutines do not run in parallel; set GOCORE_MAXPROCS=2")
    else:
        print("note: free-threaded build, gomaxprocs", gomaxprocs(),
              "- goroutines run in parallel and counter += 1 can lose updates")
    print(f"Counter (mutex):   {await with_mutex()}")
    print(f"Counter (channel): {await with_channel()}")
    print(f"Counter (atomic):  {await with_atomic()}")


if __name__ == "__main__":
    run(main)
