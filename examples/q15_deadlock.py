"""15. What are common pitfalls when using goroutines and channels? - 2. Deadlocks

Go:  ch := make(chan int)
     ch <- 1 // blocks, no receiver
     -> fatal error: all goroutines are asleep - deadlock!  (+ goroutine dump, exit 2)

gocore differences:
- gocore detects the same condition (no goroutine runnable or running, no
  timer pending, main waiting) and raises `DeadlockError("all goroutines
  are asleep - deadlock!")` at the call where main waits. It is an
  exception, not a fatal error: the program may catch it and go on.
- Go prints every goroutine's stack; in gocore call `dump_goroutines()`
  (here in the `except` block, where it shows main and a forgotten
  goroutine waiting in `[chan receive]` on another channel).
- Fixes from the guide: a receiver, a buffered channel, or a timeout.
"""
from gocore import Chan, DeadlockError, after, go, run, select, sleep, dump_goroutines


async def main() -> None:
    other: Chan[int] = Chan()

    async def forgotten() -> None:
        await other.recv()  # also asleep: it does not help main

    go(forgotten)
    await sleep(0.01)

    ch: Chan[int] = Chan()
    try:
        await ch.send(1)  # blocks, no receiver
    except DeadlockError as e:
        print("fatal error:", e)
        print(dump_goroutines())

    # Fix 1: a buffered channel has room for the value.
    buf: Chan[int] = Chan(1)
    await buf.send(1)
    print("buffered send ok, received", await buf.recv())

    # Fix 2: a receiver.
    async def receiver() -> None:
        print("receiver got", await ch.recv())

    go(receiver)
    await ch.send(2)
    await sleep(0.01)

    # Fix 3: a timeout.
    i, _ = await select((ch.send, 3), after(0.05).recv)
    print("send with timeout:", "sent" if i == 0 else "timed out")
    other.close()


if __name__ == "__main__":
    run(main)
