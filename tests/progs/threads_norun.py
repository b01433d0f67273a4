"""Threads <-> goroutines without run(): the first go() starts the runtime
in the background; the main thread and a plain thread use blocking_send,
blocking_recv, blocking_select and `for v in ch`; the process exits at the
end although a goroutine is still parked."""
import threading

import gocore
from gocore import Chan, blocking_select, go


async def doubler(inp, out):
    async for v in inp:
        await out.send(v * 2)
    out.close()


async def forever(c):
    await c.recv()


inp, out = Chan(), Chan(2)
go(doubler, inp, out)
go(forever, Chan())
results = []
t = threading.Thread(target=lambda: results.extend(out))
t.start()
for i in range(100):
    inp.blocking_send(i)
inp.close()
t.join()
print("doubled", results == [2 * i for i in range(100)])

a, b = Chan(), Chan()


async def sel_sender():
    await a.send("a")
    await b.send("b")


go(sel_sender)
got = [blocking_select(a.recv, b.recv) for _ in range(2)]
print("select", got)


def sync_g(c):
    c.blocking_send(sum(range(10)))


c = Chan()
go(sync_g, c)
print("sync", c.blocking_recv())
print("exiting with goroutines parked", gocore.num_goroutine() >= 2, flush=True)
