"""6. What is the difference between buffered and unbuffered channels? - Unbuffered

Go:  ch := make(chan string); go func() { ch <- "Hello" }(); fmt.Println(<-ch)

gocore differences: `make(chan string)` is `Chan()`. The unbuffered hand-off
is Go's: the send completes only once main has received the value.
"""
from gocore import Chan, go, run


async def main() -> None:
    ch: Chan[str] = Chan()

    async def send_hello() -> None:
        await ch.send("Hello")  # blocks until main receives

    go(send_hello)
    print(await ch.recv())  # blocks until the goroutine sends


if __name__ == "__main__":
    run(main)
