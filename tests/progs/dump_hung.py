"""A program that hangs, for goroutine dumps. argv[1]:
  run      - inside run(): main parked on a channel nobody sends on, a sync
             goroutine in time.sleep (so this is no deadlock);
  norun    - without run(): a goroutine parked on a channel, the main thread
             in blocking_select with a pending timer (no deadlock either);
  deadlock - without run(): a goroutine parked, the main thread receiving
             on a channel nobody has: prints the DeadlockError's dump.
  interrupt-run, interrupt-norun - the run and norun situations with a
             SIGUSR1 handler that raises; a thread sends SIGUSR1 after
             0.2 s: prints how long the wait lasted before it was cut short
             (the program waits 5 s otherwise) and that the channel still
             works.
In run and norun, gocore.debug.dump_on_signal() is installed and "ready" is
printed once everything is parked; the test sends SIGUSR1, then kills it."""
import os
import signal
import sys
import threading
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
elif mode.startswith("interrupt-"):
    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    def poke():
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, handler)
    c = Chan()

    def short_sleeper():
        time.sleep(5)

    async def sender():
        await c.send("still works")

    async def wait_in_run():
        go(short_sleeper)                 # running: no deadlock, M0 may idle
        await c.recv()

    t0 = time.monotonic()
    threading.Thread(target=poke, daemon=True).start()
    try:
        if mode == "interrupt-run":
            gocore.run(wait_in_run)
        else:
            blocking_select(c.recv, after(5).recv)
    except Interrupted:
        print(f"interrupted after {time.monotonic() - t0:.1f}s", flush=True)
    if mode == "interrupt-norun":
        go(sender)
        print(c.blocking_recv(), flush=True)
elif mode == "deadlock":
    go(stuck_receiver, Chan())
    time.sleep(0.05)
    try:
        Chan().blocking_recv()
    except gocore.DeadlockError as e:
        print(e.dump, end="")
