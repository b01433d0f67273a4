"""7. How does `select` work with channels? - Example with Timeout

Go:  select {
     case msg := <-ch: fmt.Println("Received:", msg)
     case <-time.After(1 * time.Second): fmt.Println("Timeout")
     }

gocore differences:
- `time.After(d)` is `after(d)`, a channel that receives a
  `time.monotonic()` value after d seconds; use its `.recv` as a case.
  Timers live in gocore's scheduler (no thread per timer).
- Go's fragment is made a whole program: a reply in 0.05 s beats a 0.2 s
  timeout, then a reply in 0.5 s loses to it. (The late sender stays
  blocked and is closed when main returns, as Go's program exit would end it.)
"""
from gocore import Chan, after, go, run, select, sleep


async def reply_after(ch: Chan[str], d: float, msg: str) -> None:
    await sleep(d)
    await ch.send(msg)


async def wait_for(ch: Chan[str], timeout: float) -> None:
    i, msg = await select(ch.recv, after(timeout).recv)
    if i == 0:
        print("Received:", msg)
    else:
        print("Timeout")


async def main() -> None:
    fast: Chan[str] = Chan()
    go(reply_after, fast, 0.05, "fast reply")
    await wait_for(fast, 0.2)

    slow: Chan[str] = Chan()
    go(reply_after, slow, 0.5, "slow reply")
    await wait_for(slow, 0.2)


if __name__ == "__main__":
    run(main)
