"""The client half of test_net_stress's 10,000-connection test, in its own
process (both ends in one would need the whole 20,000-fd limit).
argv: port n. Opens n connections to 127.0.0.1:port (at most 500 dials in
flight, so the listen backlog never overflows), checks an echo on each,
holds them all open until every one has echoed, then closes them all.
Prints "ok <n>" or raises."""
import resource
import sys

import gocore
from gocore import Chan, WaitGroup, go, net

port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main():
    conns = []
    slots = Chan(500)
    wg = WaitGroup()

    async def one(i):
        try:
            c = await net.dial("tcp", ("127.0.0.1", port), timeout=30)
            msg = b"%08d" % i
            await c.write(msg)
            got = b""
            while len(got) < len(msg):
                d = await c.read(64)
                assert d, "EOF before the echo"
                got += d
            assert got == msg, (got, msg)
            conns.append(c)
        finally:
            await slots.recv()
            wg.done()
    for i in range(n):
        await slots.send(None)
        wg.add(1)
        go(one, i)
    await wg.wait()
    assert len(conns) == n
    for c in conns:
        c.close()
    return len(conns)

gocore.gomaxprocs(1)
print("ok", gocore.run(main), flush=True)
