"""13. What is the difference between `close` and `nil` channels? - Closed channel

Go:  go func() { ch <- 1; close(ch) }()
     v, ok := <-ch   // 1 true
     v, ok = <-ch    // 0 false
     // ch <- 2      // panic: send on closed channel

gocore differences:
- `v, ok := <-ch` is `v, ok = await ch.recv_ok()`. Channels are untyped,
  so a closed, drained channel gives None where Go gives the zero value
  (`0` for `chan int`): `None False`.
- Go's panics are exceptions: sending on a closed channel, and closing a
  closed (or nil) channel, raise `ChanClosedError`, which the program may
  catch - shown for the send Go leaves commented out, and for a double close.
"""
from gocore import Chan, ChanClosedError, go, nilchan, run


async def main() -> None:
    ch: Chan[int] = Chan()

    async def send_and_close() -> None:
        await ch.send(1)
        ch.close()

    go(send_and_close)
    v, ok = await ch.recv_ok()
    print(v, ok)  # 1 True
    v, ok = await ch.recv_ok()
    print(v, ok)  # None False (Go: 0 false)

    try:
        await ch.send(2)  # Go: panic: send on closed channel
    except ChanClosedError as e:
        print("ChanClosedError:", e)
    for c, what in ((ch, "closed"), (nilchan, "nil")):
        try:
            c.close()  # Go: panic: close of closed channel / close of nil channel
        except ChanClosedError as e:
            print(f"close of {what} channel -> ChanClosedError: {e}")


if __name__ == "__main__":
    run(main)
