"""Ctrl-C during run(). argv[1]:
  busy  - goroutines parked on channels, main spinning on gosched();
  idle  - every goroutine (main too) parked, waiting for a plain thread
          that sleeps for long: every M idle.
  sleeping - every goroutine (main too) in `await sleep(60)`: every M idle,
          one of them waiting for the earliest timer.
Each goroutine prints "finally <name>" when closed. Prints READY once set up."""
import signal
import sys
import threading
import time

# A shell starts background jobs with SIGINT ignored, and Python then
# installs no handler of its own: put it back, as an interactive run has it.
signal.signal(signal.SIGINT, signal.default_int_handler)

import gocore
from gocore import Chan, go, gosched, run

mode = sys.argv[1]
procs = int(sys.argv[2]) if len(sys.argv) > 2 else 2


async def parked(i, c):
    try:
        if mode == "sleeping":
            await gocore.sleep(60)
        else:
            await c.recv()
    finally:
        print(f"finally parked {i}", flush=True)


async def main():
    c = Chan()
    for i in range(3):
        go(parked, i, c)
    for _ in range(100):
        await gosched()
    print("READY", flush=True)
    if mode == "busy":
        while True:
            await gosched()
    elif mode == "sleeping":
        await gocore.sleep(60)
    else:
        ext = Chan()
        threading.Thread(target=lambda: (time.sleep(60), ext.blocking_send(1)), daemon=True).start()
        await ext.recv()


gocore.gomaxprocs(procs)
run(main)
