"""A program that hangs, for goroutine dumps. argv[1]:
  run      - inside run(): main parked on a channel nobody sends on, a sync
             goroutine in time.sleep (so this is no deadlock);
  norun    - without run(): a goroutine parked on a channel, the main thread
             in blocking_select with a pending timer (no deadlock either);
  deadlock - without run(): a goroutine parked, the main thread receiving
             on a channel nobody has: prints the DeadlockError's dump.
In run and norun, gocore.debug.dump_on_signal() is installed and "ready" is
printed once everything is parked; the test sends SIGUSR1, then kills it."""
import sys
import time

import gocore
import gocore.debug
from gocore import Chan, after, blocking_select, go


async def stuck_receiver(c):
    await c.recv()


def stuck_sleeper():
    time.sleep(60)


mode = sys.argv[1]
if mode == "run":
    gocore.debug.dump_on_signal()

    async def main():
        go(stuck_sleeper)
        await gocore.sleep(0.05)
        print("ready", flush=True)
        await Chan().recv()

    gocore.run(main)
elif mode == "norun":
    gocore.debug.dump_on_signal()
    go(stuck_receiver, Chan())
    time.sleep(0.05)
    print("ready", flush=True)
    blocking_select(Chan().recv, after(60).recv)
elif mode == "deadlock":
    go(stuck_receiver, Chan())
    time.sleep(0.05)
    try:
        Chan().blocking_recv()
    except gocore.DeadlockError as e:
        print(e.dump, end="")
