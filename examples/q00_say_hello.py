"""Goroutine কিভাবে তৈরি করবেন? (How to create a goroutine) - the guide's intro program.

Go:  go sayHello(1); go sayHello(2); time.Sleep(1 * time.Second)

gocore differences:
- `go sayHello(1)` is `go(say_hello, 1)`; `say_hello` is an `async def`
  (a lightweight goroutine) and `time.Sleep` inside it is `await sleep(...)`.
  A plain `time.sleep` would hold the worker thread (see q01).
- `func main()` is `run(main)`: when main returns, goroutines still alive are
  closed, as Go's program exit ends them.
- As in Go, which goroutine prints first in each round is not fixed.
"""
import sys

from gocore import go, run, sleep


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


async def say_hello(num: int) -> None:
    for i in range(3):
        println("Hello from goroutine", num, "iteration", i)
        await sleep(0.1)  # time.Sleep(100 * time.Millisecond)


async def main() -> None:
    go(say_hello, 1)  # one goroutine
    go(say_hello, 2)  # another goroutine

    await sleep(1.0)  # wait for the goroutines to finish their work
    println("Main function ends")


if __name__ == "__main__":
    run(main)
