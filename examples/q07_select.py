"""7. How does `select` work with channels?

Go:  select { case msg1 := <-ch1: ... case msg2 := <-ch2: ... }   // in a loop, twice

gocore differences:
- `select` is a function: `i, v = await select(ch1.recv, ch2.recv)`
  returns the index of the case that fired and its value; dispatch on `i`.
  (The case forms are shown in q07_select_cases.py.)
- Go's 1 s and 2 s sleeps are scaled down to 0.1 s and 0.2 s to keep the
  example fast; the order (ch1, then ch2) is the same.
"""
from gocore import Chan, go, run, select, sleep


async def main() -> None:
    ch1: Chan[str] = Chan()
    ch2: Chan[str] = Chan()

    async def one() -> None:
        await sleep(0.1)
        await ch1.send("from ch1")

    async def two() -> None:
        await sleep(0.2)
        await ch2.send("from ch2")

    go(one)
    go(two)

    for _ in range(2):
        i, msg = await select(ch1.recv, ch2.recv)
        if i == 0:
            print("Received:", msg)
        elif i == 1:
            print("Received:", msg)


if __name__ == "__main__":
    run(main)
