"""Deadlock detection with gocore.aio calls pending (run as a subprocess:
a broken detector hangs). argv[1]:
  progress - main waits on a channel a goroutine fills after a 0.3 s
             aio.call: no DeadlockError, prints the value;
  dead     - the same, then main waits again on a channel nobody fills,
             with the aio loop still running and idle: DeadlockError;
  dead_sync - as dead, but the call is a sync goroutine's blocking_call."""
import asyncio
import sys

import gocore
from gocore import Chan, DeadlockError, aio, go

mode = sys.argv[1]


async def slow(v):
    await asyncio.sleep(0.3)
    return v


async def caller(ch):
    await ch.send(await aio.call(slow, 42))


def sync_caller(ch):
    ch.blocking_send(aio.blocking_call(slow, 42))


async def main():
    ch = Chan()
    go(sync_caller if mode == "dead_sync" else caller, ch)
    print("got", await ch.recv(), flush=True)
    if mode in ("dead", "dead_sync"):
        try:
            await Chan().recv()
        except DeadlockError as e:
            print("DeadlockError:", e, flush=True)


gocore.run(main)
print("end", flush=True)
