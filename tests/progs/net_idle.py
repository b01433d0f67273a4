"""An idle runtime with an idle listener (a goroutine parked in accept,
another in read) uses no CPU: the M blocks in epoll_wait. Prints
"wall <s> cpu <s>" for a 1 s wait."""
import resource
import time

import gocore
from gocore import go, net, sleep


async def main():
    ln = net.listen("tcp", "127.0.0.1:0")
    c = await net.dial("tcp", ln.addr)
    s = await ln.accept()

    async def acc():
        try:
            await ln.accept()
        except net.ErrClosed:
            pass

    async def rd():
        try:
            await s.read()
        except net.ErrClosed:
            pass
    go(acc)
    go(rd)
    await sleep(0.05)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await sleep(1.0)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    for x in (c, s, ln):
        x.close()
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

gocore.gomaxprocs(2)
wall, cpu = gocore.run(main)
print(f"wall {wall:.3f} cpu {cpu:.3f}")
