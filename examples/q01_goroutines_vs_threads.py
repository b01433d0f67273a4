"""1. What are goroutines, and how do they differ from threads?

Go:  go printNumbers()   // runs concurrently
     printNumbers()      // runs in main goroutine

gocore differences:
- A goroutine is `go(fn, *args)`. With an `async def` function it is a
  lightweight goroutine: a coroutine (a few hundred bytes, see
  q16_memory_100k.py) multiplexed by gocore's M:P:G scheduler onto a few OS
  threads, like Go's. With a plain function it is a *sync* goroutine that
  runs on a worker thread - closer to a thread, but still scheduled by gocore.
- Calling the function directly from main is `await print_numbers()`.
- Go preempts goroutines; a lightweight gocore goroutine gives up its thread
  only at an `await` (here `await sleep(...)`).
- The two sequences interleave; which `1` prints first is not fixed (as in Go).
"""
import sys

from gocore import go, run, sleep


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


async def print_numbers() -> None:
    for i in range(1, 6):
        println(i)
        await sleep(0.1)  # time.Sleep(100 * time.Millisecond)


async def main() -> None:
    go(print_numbers)      # runs concurrently
    await print_numbers()  # runs in the main goroutine
    await sleep(1.0)       # wait for the goroutine to finish


if __name__ == "__main__":
    run(main)
