"""15. What are common pitfalls when using goroutines and channels? - 5. Incorrect Channel Buffer Size

Go:  ch := make(chan int, 1000) // may hide producer/consumer imbalance
     Solution: start unbuffered, buffer only when needed, monitor channel usage.

gocore differences:
- `make(chan int, 1000)` is `Chan(1000)`; Go's `len(ch)`/`cap(ch)` for
  monitoring are `len(ch)` and `ch.cap`.
- The fragment is made a whole program: a producer sends 100 items before
  any consumer exists. With a 1000-slot buffer it "succeeds" and the
  backlog hides in the buffer; with an unbuffered channel the producer
  cannot get ahead of its consumer, which shows the imbalance at once.
"""
from gocore import Chan, after, go, run, select


async def produce(ch: Chan[int], n: int) -> int:
    """Send up to n items, giving up after 0.05 s without a receiver."""
    for i in range(n):
        k, _ = await select((ch.send, i), after(0.05).recv)
        if k == 1:
            return i
    return n


async def main() -> None:
    big: Chan[int] = Chan(1000)
    sent = await produce(big, 100)
    print(f"Chan(1000): producer sent {sent} items with no consumer; "
          f"backlog len={len(big)} cap={big.cap}")

    unbuffered: Chan[int] = Chan()
    sent = await produce(unbuffered, 100)
    print(f"Chan(): producer sent {sent} items with no consumer - the imbalance shows")

    async def consumer() -> None:
        async for _ in unbuffered:
            pass

    go(consumer)
    sent = await produce(unbuffered, 100)
    unbuffered.close()
    print(f"Chan() with a consumer: producer sent {sent} items")


if __name__ == "__main__":
    run(main)
