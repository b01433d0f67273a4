"""5. What are channels, and how do they facilitate concurrency?

Go:  func producer(ch chan<- int) { for ... { ch <- i; time.Sleep(...) }; close(ch) }
     for v := range ch { fmt.Println("Received:", v) }

gocore differences:
- Python has no send-only/receive-only channel types (`chan<- int`); the
  annotation `Chan[int]` documents the element type only.
- `close(ch)` is `ch.close()`; `for v := range ch` is `async for v in ch`
  (from a plain thread: `for v in ch`). The loop ends when the channel is
  closed and drained, as in Go.
"""
from gocore import Chan, go, run, sleep


async def producer(ch: Chan[int]) -> None:  # Go: ch chan<- int
    for i in range(1, 6):
        await ch.send(i)
        await sleep(0.1)
    ch.close()


async def main() -> None:
    ch: Chan[int] = Chan()
    go(producer, ch)
    async for v in ch:  # for v := range ch
        print("Received:", v)


if __name__ == "__main__":
    run(main)
