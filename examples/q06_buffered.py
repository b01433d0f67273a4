"""6. What is the difference between buffered and unbuffered channels? - Buffered

Go:  ch := make(chan int, 2); ch <- 1; ch <- 2; // ch <- 3 would block

gocore differences:
- `make(chan int, 2)` is `Chan(2)`; `len(ch)` and `ch.cap` are Go's
  `len(ch)` and `cap(ch)`.
- Go's commented-out `ch <- 3` would deadlock main. gocore shows it without
  blocking: `ch.try_send(3)` (a `select` with `default`) returns False
  while the buffer is full. (An `await ch.send(3)` here would raise
  DeadlockError - see q15_deadlock.py.)
"""
from gocore import Chan, run


async def main() -> None:
    ch: Chan[int] = Chan(2)
    await ch.send(1)  # non-blocking: room in the buffer
    await ch.send(2)  # non-blocking
    print(f"len {len(ch)}, cap {ch.cap}; a third send would block:", not ch.try_send(3))
    print(await ch.recv())  # 1
    print(await ch.recv())  # 2


if __name__ == "__main__":
    run(main)
