"""Issue 14 item 5: a sync goroutine still inside foreign code (time.sleep)
when run() returns. After run(): num_goroutine() is 1 at once, its next
gocore call raises GoroutineExit, and what it raises goes to
sys.unraisablehook with its goroutine id - not to the next run(), and it
does not end the process (exit status 0, not the panic hook's 2). argv[1]:
gomaxprocs."""
import sys
import time

import gocore
from gocore import Chan, go, run

gocore.gomaxprocs(int(sys.argv[1]))
hooked = []
sys.unraisablehook = lambda u: hooked.append((u.err_msg, type(u.exc_value).__name__))
c = Chan(10)
events = []


def worker():
    try:
        time.sleep(0.3)
        c.blocking_send(1)               # after run() returned: GoroutineExit
        events.append("sent after run")
    except BaseException as e:
        events.append(type(e).__name__)
    raise ValueError("raised after run() returned")


async def main():
    go(worker)
    await gocore.sleep(0.05)


run(main)
print("after run", gocore.num_goroutine(), flush=True)


async def slow():
    await gocore.sleep(0.6)              # the orphan raises meanwhile
    return "second run ok"


print(run(slow), flush=True)
time.sleep(0.1)
print("events", events, flush=True)
print("hooked", hooked, flush=True)
