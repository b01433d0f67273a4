"""Issue 14 item 8: a plain thread calls go() in a loop while the main
thread calls run() argv[1] times: run() must never fail because the other
thread started the runtime in the background. Prints the failures and
how many of the thread's goroutines ran."""
import sys
import threading

import gocore
from gocore import go, run

gocore.gomaxprocs(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
n = int(sys.argv[1])
stop = threading.Event()
ran = [0]
lock = threading.Lock()


def job():
    with lock:
        ran[0] += 1


def spawner():
    while not stop.is_set():
        go(job)


async def main(i):
    return i


t = threading.Thread(target=spawner)
t.start()
fails = []
try:
    for i in range(n):
        try:
            assert run(main, i) == i
        except RuntimeError as e:
            fails.append(str(e))
finally:
    stop.set()
    t.join()
print("failures", len(fails), fails[:1], flush=True)
print("ran", ran[0] > 0, flush=True)
