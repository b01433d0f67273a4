"""A hung program that never calls gocore.debug itself: the dump handler
comes from the environment (GOCORE_DUMP_SIGNAL, GOCORE_DUMP_FILE,
GOCORE_DUMP_FORMAT, read when gocore is imported). Inside run(): main waits
on a WaitGroup, two goroutines wait on one channel, one sleeps. Prints "ready" once
they are parked; the test sends the signal, reads the file, kills it."""
import sys

import gocore
from gocore import Chan, WaitGroup, go
from gocore._testhooks import wait_parked


async def stuck_receiver(c):
    await c.recv()


async def sleeper():
    await gocore.sleep(3600)        # a pending timer: the program is not deadlocked


async def main():
    c = Chan(3)
    wg = WaitGroup()
    wg.add(1)
    go(stuck_receiver, c)  # created here
    go(stuck_receiver, c)
    go(sleeper)
    await wait_parked(2, fn=stuck_receiver)
    print("ready", flush=True)
    await wg.wait()


if __name__ == "__main__":
    gocore.run(main)
    sys.exit(1)
