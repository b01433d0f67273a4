"""Sync goroutines (plain functions under go()) that block inside run().
argv[1]:
  leftover - a sync goroutine parked in blocking_recv when main returns:
             its finally must run and run() must return;
  server   - a sync goroutine serving requests from main over channels."""
import sys

import gocore
from gocore import Chan, go, gosched, run

mode = sys.argv[1]
gocore.gomaxprocs(int(sys.argv[2]))
if mode == "leftover":
    def sync_parked(started, c):
        try:
            started.close()
            c.blocking_recv()
        finally:
            print("finally sync", flush=True)

    async def main():
        started = Chan()
        go(sync_parked, started, Chan())
        await started.recv()            # it runs (on another M: M0 lends its P)
        for _ in range(100):
            await gosched()
    run(main)
    print("returned", gocore.num_goroutine(), flush=True)
else:
    async def main():
        req, resp = Chan(), Chan()

        def server():
            for v in req:
                resp.blocking_send(v + 1)
            resp.close()

        go(server)
        out = []
        for i in range(300):
            await req.send(i)
            out.append(await resp.recv())
        req.close()
        assert await resp.recv_ok() == (None, False)
        return out
    for _ in range(20):
        assert run(main) == list(range(1, 301))
    print("returned", gocore.num_goroutine(), flush=True)
