"""os.fork() from sync goroutines while other goroutines keep Ms starting and
parking, every fork warning (run with -W always::DeprecationWarning):
CPython 3.12 writes its multi-threaded-fork warning between fork() and the
after_in_parent hooks, with the GIL dropped for the write. The parent must
not hang there (it did when gocore held sched.lock across those hooks).
Prints "forks N" (children that exited 0) and "ok"."""
import os
import sys

import gocore
from gocore import Chan, WaitGroup, go, run

N_FORKERS, FORKS_EACH = int(sys.argv[1]), int(sys.argv[2])


def forker(wg, out):
    ok = 0
    for _ in range(FORKS_EACH):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        ok += os.waitstatus_to_exitcode(status) == 0
    out.blocking_send(ok)
    wg.done()


async def churn(stop):
    # wake-ups across Ms: new Ms start (set_tstate takes sched.lock) and park
    c = Chan()

    async def echo():
        while (v := await c.recv()) is not None:
            pass
    while not stop:
        go(echo)
        for i in range(20):
            await c.send(i)
        await c.send(None)


async def main():
    wg = WaitGroup()
    out = Chan(N_FORKERS)
    stop = []
    for _ in range(2):
        go(churn, stop)
    wg.add(N_FORKERS)
    for _ in range(N_FORKERS):
        go(forker, wg, out)
    await wg.wait()
    stop.append(1)
    return sum([await out.recv() for _ in range(N_FORKERS)])


gocore.gomaxprocs(2)
print("forks", run(main), flush=True)
print("ok", flush=True)
