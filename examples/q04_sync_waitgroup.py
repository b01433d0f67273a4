"""4. How do you synchronize goroutines in Go? - 2. sync.WaitGroup

Go:  wg.Add(1); go worker(i, &wg)  ...  defer wg.Done()  ...  wg.Wait()

gocore differences:
- `var wg sync.WaitGroup` is `wg = WaitGroup()`; pass it as is (no `&wg`).
- `defer wg.Done()` is `try: ... finally: wg.done()`. Go 1.25's
  `wg.Go(f)` is `wg.go(f, *args)`, which does the add/done for you.
- `wg.Wait()` is `await wg.wait()` (or `wg.blocking_wait()` from a thread).
- The workers finish in any order, as in Go.
"""
import sys

from gocore import WaitGroup, go, run


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


async def worker(id: int, wg: WaitGroup) -> None:
    try:
        println(f"Worker {id} done")
    finally:
        wg.done()  # defer wg.Done()


async def main() -> None:
    wg = WaitGroup()
    for i in range(1, 4):
        wg.add(1)
        go(worker, i, wg)
    await wg.wait()
    println("All workers done")


if __name__ == "__main__":
    run(main)
