"""7. How does `select` work with channels? - Syntax (every kind of case)

Go:  select {
     case v := <-ch1:      // receive
     case ch2 <- x:        // send
     case v, ok := <-ch3:  // receive with closed check
     default:              // nothing ready
     }

gocore differences:
- Cases are values: `ch1.recv`, `(ch2.send, x)`, `ch3.recv_ok` and the
  `default` sentinel. `i, v = await select(...)` gives the index of the case
  that fired and its value: the value for `recv`, `(value, ok)` for
  `recv_ok`, None for a send or `default`.
- As in Go, when several cases are ready one is picked at random; this
  program makes exactly one case ready at a time so its output is fixed.
"""
from gocore import Chan, default, run, select


async def once(ch1: Chan[int], ch2: Chan[int], ch3: Chan[int], x: int) -> None:
    i, v = await select(ch1.recv, (ch2.send, x), ch3.recv_ok, default)
    if i == 0:
        print("received", v, "from ch1")
    elif i == 1:
        print("sent", x, "to ch2")
    elif i == 2:
        value, ok = v
        print("ch3 gave", value, ok, "(closed)" if not ok else "")
    else:
        print("no channel ready: default")


async def main() -> None:
    ch1: Chan[int] = Chan(1)
    ch2: Chan[int] = Chan()   # unbuffered, nobody receives: never ready
    ch3: Chan[int] = Chan()

    await once(ch1, ch2, ch3, 42)          # nothing ready
    await ch1.send(7)
    await once(ch1, ch2, ch3, 42)          # ch1 has a value
    ch2 = Chan(1)                          # now a send has room
    await once(ch1, ch2, ch3, 42)
    ch2 = Chan()
    ch3.close()
    await once(ch1, ch2, ch3, 42)          # a closed channel is always ready


if __name__ == "__main__":
    run(main)
