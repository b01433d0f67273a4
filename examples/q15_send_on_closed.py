"""15. What are common pitfalls when using goroutines and channels? - 3. Sending to a Closed Channel

Go:  ch := make(chan int); close(ch); ch <- 1 // panic: send on closed channel

gocore differences:
- The panic is `ChanClosedError("send on closed channel")`, raised at the
  send. Uncaught in a goroutine it ends the program like a Go panic
  (`run()` re-raises it); caught, the program goes on.
- `ch.try_send(v)` (Go's select with default) raises it too: a
  non-blocking send does not make a closed channel safe.
- Prevention, as the guide says: the producer closes the channel and the
  consumers range over it (`async for`) - shown last.
"""
from gocore import Chan, ChanClosedError, go, run


async def main() -> None:
    ch: Chan[int] = Chan()
    ch.close()
    try:
        await ch.send(1)  # Go: panic
    except ChanClosedError as e:
        print("ChanClosedError:", e)
    try:
        ch.try_send(1)
    except ChanClosedError as e:
        print("try_send: ChanClosedError:", e)

    # Prevention: only the producer closes; the consumer ranges until closed.
    items: Chan[int] = Chan(3)

    async def producer() -> None:
        for i in range(1, 4):
            await items.send(i)
        items.close()  # the producer knows when there is no more

    go(producer)
    print("consumer got:", [v async for v in items])


if __name__ == "__main__":
    run(main)
