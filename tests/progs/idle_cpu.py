"""Idle waits must sleep, not spin; due timers must fire. argv[1]:
  holdoff-run      - deadlock detection backs off once (a plain thread was
                     running), then run(main) with main in sleep(1);
  holdoff-blocking - the same, then the main thread in after(1).blocking_recv();
  stuck-p          - gomaxprocs 1, a sync goroutine looping on time.sleep
                     holds the only P, main in sleep(0.05).
Prints "wall <s> cpu <s>" for the wait."""
import sys
import threading
import time

import gocore
from gocore import Chan, after, go, run, sleep

mode = sys.argv[1]


def back_off_deadlock_detection():
    c = Chan()

    def late_sender():
        time.sleep(0.3)
        c.blocking_send(1)

    threading.Thread(target=late_sender).start()
    c.blocking_recv()     # all goroutines asleep, but a plain thread runs: holdoff
    time.sleep(0.3)       # the holdoff (at most 100 ms) is over


def measure(wait):
    c0, w0 = time.process_time(), time.monotonic()
    wait()
    print(f"wall {time.monotonic() - w0:.2f} cpu {time.process_time() - c0:.2f}", flush=True)


if mode == "holdoff-run":
    back_off_deadlock_detection()

    async def main():
        await sleep(1)

    measure(lambda: run(main))
elif mode == "holdoff-blocking":
    back_off_deadlock_detection()
    measure(lambda: after(1).blocking_recv())
elif mode == "stuck-p":
    gocore.gomaxprocs(1)
    stop = threading.Event()

    def hog():
        while not stop.is_set():
            time.sleep(0.005)

    async def main():
        go(hog)
        await sleep(0.01)              # hog now holds the only P
        measure_start = (time.process_time(), time.monotonic())
        await sleep(0.05)              # a timer that needs a P to fire
        c0, w0 = measure_start
        print(f"wall {time.monotonic() - w0:.2f} cpu {time.process_time() - c0:.2f}", flush=True)
        stop.set()

    try:
        run(main)
    finally:
        stop.set()
