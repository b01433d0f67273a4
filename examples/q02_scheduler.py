"""2. How does the Go scheduler work with goroutines?

Go:  fmt.Println("GOMAXPROCS:", runtime.GOMAXPROCS(0))
     for i := 0; i < 10; i++ { go func(id int) { for { fmt.Printf(...) } }(i) }
     select {} // keep main alive

gocore differences:
- `runtime.GOMAXPROCS(0)` is `gomaxprocs()` (set it with `gomaxprocs(n)` or
  the GOCORE_MAXPROCS environment variable). gocore has Go's G, M and P:
  each P has a local run queue and `runnext`; idle Ms steal half of another
  P's queue.
- Go preempts a goroutine in a tight `for {}` loop (asynchronous preemption
  since Go 1.14). A lightweight gocore goroutine is a coroutine and switches
  only at an `await`, so the busy loop yields with `await gosched()`
  (Go's `runtime.Gosched()`). A loop without any `await` would keep its P.
- Go's program never ends (`select {}` blocks forever; gocore's spelling is
  `await nilchan.recv()`). To be runnable, this one stops after 0.2 s: main
  returns and `run()` closes the 10 goroutines, as Go does at exit. Each
  goroutine prints its first 2 iterations and then counts silently, so the
  output stays short; the summary shows that every goroutine got CPU time.
"""
import sys

from gocore import go, gomaxprocs, gosched, num_goroutine, run, sleep


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


counts = [0] * 10


async def spin(id: int) -> None:
    while True:
        if counts[id] < 2:
            println(f"Goroutine {id} running")
        counts[id] += 1
        await gosched()  # a lightweight goroutine yields only at an await


async def main() -> None:
    println("GOMAXPROCS:", gomaxprocs())  # number of Ps
    for i in range(10):
        go(spin, i)
    await sleep(0.2)  # Go: select {} - here, stop after 0.2 s
    println("goroutines alive:", num_goroutine())
    println("every goroutine ran:", all(c > 0 for c in counts))


if __name__ == "__main__":
    run(main)
