"""9. What is the purpose of `sync.WaitGroup`?

Go:  wg.Add(1); go worker(i, &wg)  // worker: defer wg.Done(); time.Sleep(time.Second)
     wg.Wait()

gocore differences:
- `WaitGroup()`; `wg.add(n)`, `wg.done()`, `await wg.wait()` (or
  `wg.blocking_wait()` from a plain thread). `defer wg.Done()` becomes
  `try/finally`. Go 1.25's `wg.Go(f)` is `wg.go(f, *args)` - shown for the
  second round below.
- A counter below zero raises ValueError at the call (Go panics).
- The workers' 1 s of work is scaled down to 0.2 s. They start and finish in
  any order, as in Go; all three start before any is done.
"""
import sys

from gocore import WaitGroup, go, run, sleep


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


async def worker(id: int, wg: WaitGroup) -> None:
    try:
        println(f"Worker {id} starting")
        await sleep(0.2)
        println(f"Worker {id} done")
    finally:
        wg.done()  # defer wg.Done()


async def main() -> None:
    wg = WaitGroup()
    for i in range(1, 4):
        wg.add(1)
        go(worker, i, wg)
    await wg.wait()
    println("All workers completed")

    # Go 1.25: wg.Go(func) - the WaitGroup does Add(1) and Done() itself.
    async def job(id: int) -> None:
        await sleep(0.01)

    for i in range(1, 4):
        wg.go(job, i)
    await wg.wait()
    println("wg.go: all jobs completed")

    try:
        wg.done()  # Done() without Add(): Go panics "negative WaitGroup counter"
    except ValueError as e:
        println("wg.done() without add():", type(e).__name__)


if __name__ == "__main__":
    run(main)
