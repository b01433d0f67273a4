"""14. How does context help manage goroutines?

Go:  ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
     defer cancel()
     select { case <-time.After(2 * time.Second): ...completed; case <-ctx.Done(): ...canceled: ctx.Err() }

gocore differences:
- Go's context package is `gocore.context`: `context.with_timeout(
  context.background(), d)` returns `(ctx, cancel)`; `ctx.done()` is a
  `Chan` closed on cancellation, usable in `select`; `ctx.err()` is None, a
  `context.Canceled` or a `context.DeadlineExceeded` instance (exceptions,
  whose text is Go's: "context deadline exceeded").
- `defer cancel()` is `try/finally: cancel()`.
- Durations are scaled down ten times (work 0.2 s, timeout 0.1 s, main
  waits 0.3 s). The three tasks report in any order, as in Go.
"""
import sys

from gocore import after, context, go, run, select, sleep


def println(*args: object) -> None:
    """Go's fmt.Println: one write per line. print() writes the text and the
    newline separately, so lines of goroutines running on different worker
    threads could interleave."""
    sys.stdout.write(" ".join(map(str, args)) + "\n")


async def long_running_task(ctx: context.Context, id: int) -> None:
    i, _ = await select(after(0.2).recv, ctx.done().recv)
    if i == 0:  # simulate work
        println(f"Task {id} completed")
    else:
        println(f"Task {id} canceled: {ctx.err()}")


async def main() -> None:
    ctx, cancel = context.with_timeout(context.background(), 0.1)
    try:
        for i in range(1, 4):
            go(long_running_task, ctx, i)
        await sleep(0.3)  # wait to see results
    finally:
        cancel()  # defer cancel()


if __name__ == "__main__":
    run(main)
