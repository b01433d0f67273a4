"""12. How can you limit the number of concurrent goroutines?

Go:  sem := make(chan struct{}, maxConcurrency)
     for i := 1; i <= 5; i++ { wg.Add(1); sem <- struct{}{}; go task(i, sem, &wg) }
     // task: defer wg.Done(); defer func() { <-sem }(); time.Sleep(time.Second)

gocore differences:
- `chan struct{}` is a `Chan(n)` of None; `sem <- struct{}{}` is
  `await sem.send(None)` and `<-sem` is `await sem.recv()`.
- Go's two defers run last-in first-out: release the slot, then `wg.Done()`;
  nested `try/finally` blocks do the same.
- gocore also has Go's golang.org/x/sync/semaphore as `Semaphore(n)`
  (`async with sem:`), and `ErrGroup.set_limit(n)`. Technique 2, the worker
  pool, is q10_worker_pool.py.
- The tasks' 1 s is scaled down to 0.1 s. Tasks 1 and 2 start together,
  then 3 and 4, then 5 (in any order within a pair, as in Go). An atomic
  counter (gocore.atomic.Int64) checks that no more than 2 ever ran at once.
"""
import sys

from gocore import Chan, WaitGroup, go, run, sleep
from gocore.atomic import Int64


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


MAX_CONCURRENCY = 2
running = Int64()
peak = Int64()


async def task(id: int, sem: Chan[None], wg: WaitGroup) -> None:
    try:
        try:
            n = running.add(1)
            while (p := peak.load()) < n and not peak.compare_and_swap(p, n):
                pass
            println(f"Task {id} running")
            await sleep(0.1)
            running.add(-1)
        finally:
            await sem.recv()  # release semaphore
    finally:
        wg.done()


async def main() -> None:
    sem: Chan[None] = Chan(MAX_CONCURRENCY)
    wg = WaitGroup()

    for i in range(1, 6):
        wg.add(1)
        await sem.send(None)  # acquire semaphore
        go(task, i, sem, wg)
    await wg.wait()
    println("most tasks running at once:", peak.load())


if __name__ == "__main__":
    run(main)
