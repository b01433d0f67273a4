"""3. What is the purpose of the `go` keyword in Go?

Go:  go sayHello() // launch goroutine
     fmt.Println("Hello from main!")
     time.Sleep(100 * time.Millisecond)

gocore differences:
- `go sayHello()` is `go(say_hello)`. Like Go's `go`, it returns at once
  (returning None) and the new goroutine runs later, on some P.
- `go(fn, *args)` evaluates the arguments at the call, as Go does; the
  coroutine itself is created when the goroutine first runs.
- Usually "Hello from main!" prints first, but - as in Go - that is not
  guaranteed.
"""
import sys

from gocore import go, run, sleep


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


async def say_hello() -> None:
    println("Hello from goroutine!")


async def main() -> None:
    go(say_hello)  # launch goroutine
    println("Hello from main!")
    await sleep(0.1)  # allow the goroutine to run (use WaitGroup/channels in real code)


if __name__ == "__main__":
    run(main)
