"""Issue 14 item 10: deadlock detection when a sync goroutine blocks last,
after leaving foreign code (time.sleep), at gomaxprocs argv[1]. Mode
argv[2]: "run" (main awaits inside run()) or "norun" (the main thread in
blocking_recv() outside run()). Prints DEADLOCK when DeadlockError is raised."""
import sys
import time

import gocore
from gocore import Chan, DeadlockError, go, run

gocore.gomaxprocs(int(sys.argv[1]))
mode = sys.argv[2]
a, b = Chan(), Chan()


def blocker():
    time.sleep(0.2)          # foreign code: main parks first, while this runs
    b.blocking_recv()        # then this one blocks last, forever


async def main():
    go(blocker)
    await a.recv()


try:
    if mode == "run":
        run(main)
    else:
        go(blocker)
        a.blocking_recv()
except DeadlockError:
    print("DEADLOCK", flush=True)
