"""15. What are common pitfalls when using goroutines and channels? - 1. Goroutine Leaks

Go:  ch := make(chan int)
     go func() { <-ch }()   // blocks forever if no sender
     Detection: runtime.NumGoroutine() or pprof

gocore differences:
- `runtime.NumGoroutine()` is `num_goroutine()` (main included, as in Go).
- pprof's goroutine profile is `dump_goroutines()`: a Go-style dump with
  each goroutine's id, its wait reason (`[chan receive]` here) and its
  Python stack - enough to find where the leaked goroutine is stuck.
- gocore's own tests fail any test that leaves a goroutine alive (a leak
  check in tests/conftest.py); this program does the same check by hand.
- When main returns, `run()` closes leaked goroutines (their `finally`
  blocks run), as a Go program's exit ends them; a long-running program
  would keep them forever, which is the leak.
"""
from gocore import Chan, context, go, num_goroutine, run, select, sleep, dump_goroutines


async def settle() -> None:
    await sleep(0.01)  # let the new goroutines run until they block


async def main() -> None:
    print("goroutines at start:", num_goroutine())

    # The leak: nobody ever sends on ch.
    ch: Chan[int] = Chan()

    async def leaky() -> None:
        await ch.recv()  # blocks forever if no sender

    go(leaky)
    await settle()
    n = num_goroutine()
    print("goroutines after the leak:", n)
    dump = dump_goroutines()
    leaked = [b for b in dump.split("\n\n") if "leaky" in b]
    print("leak check:", "LEAK" if n > 1 else "ok")
    print("the leaked goroutine in dump_goroutines():")
    print(leaked[0].strip())

    # Fix 1: close the channel - the receiver wakes up and returns.
    ch.close()
    await settle()
    print("after close(ch):", num_goroutine())

    # Fix 2: give the goroutine an exit path with a context.
    ctx, cancel = context.with_cancel(context.background())
    work: Chan[int] = Chan()

    async def worker() -> None:
        i, _ = await select(work.recv, ctx.done().recv)
        if i == 1:
            print("worker: stopped by", repr(ctx.err()))

    go(worker)
    await settle()
    print("with a worker waiting:", num_goroutine())
    cancel()
    await settle()
    print("after cancel():", num_goroutine())
    print("leak check:", "LEAK" if num_goroutine() > 1 else "ok")


if __name__ == "__main__":
    run(main)
