"""13. What is the difference between `close` and `nil` channels? - Nil channel

Go:  var ch chan int
     select { case v := <-ch: ...; default: fmt.Println("Nil channel ignored") }

gocore differences:
- Python has no zero value for a channel variable: Go's nil channel is the
  `nilchan` object. Send and receive on it block forever (deadlock
  detection applies), and in `select` its cases are never ready.
- The guide's use case "dynamically disable a channel in select" is shown
  too: merging two channels and replacing each one with `nilchan` once it
  is closed, so the loop stops selecting on it (Go: `a = nil`).
"""
from gocore import Chan, default, go, nilchan, run, select


async def producer(ch: Chan[int], values: range) -> None:
    for v in values:
        await ch.send(v)
    ch.close()


async def main() -> None:
    ch = nilchan  # var ch chan int
    i, v = await select(ch.recv, default)
    if i == 0:
        print(v)  # never executes
    else:
        print("Nil channel ignored")

    a: Chan[int] = Chan()
    b: Chan[int] = Chan()
    go(producer, a, range(0, 5))
    go(producer, b, range(100, 105))
    total = 0
    while a is not nilchan or b is not nilchan:
        i, (v, ok) = await select(a.recv_ok, b.recv_ok)
        if not ok:  # closed: disable this case, as Go sets the variable to nil
            if i == 0:
                a = nilchan
            else:
                b = nilchan
            continue
        total += v
    print("merged sum:", total)


if __name__ == "__main__":
    run(main)
