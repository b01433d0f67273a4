"""4. How do you synchronize goroutines in Go? - 1. Channels

Go:  ch := make(chan string)
     go func() { ch <- "Hello from goroutine!" }()
     msg := <-ch

gocore differences:
- `make(chan string)` is `Chan()` (`Chan[str]` as an annotation); channels
  are not typed at run time.
- `ch <- v` is `await ch.send(v)` and `<-ch` is `await ch.recv()`. An
  unbuffered send completes only when the receiver has taken the value.
- Go's anonymous `go func() {...}()` is a nested `async def` passed to go().
"""
from gocore import Chan, go, run


async def main() -> None:
    ch: Chan[str] = Chan()

    async def sender() -> None:
        await ch.send("Hello from goroutine!")  # send

    go(sender)
    msg = await ch.recv()  # receive, blocks until data is sent
    print(msg)


if __name__ == "__main__":
    run(main)
