"""The main thread blocks in a blocking_* call without run(). argv[1]:
  alone    - no goroutine at all;
  parked   - goroutines exist but are all parked on channels;
  uncaught - run(main) where main deadlocks and does not catch it."""
import sys

import gocore
from gocore import Chan, DeadlockError, go

mode = sys.argv[1]
if mode == "uncaught":
    async def main():
        await Chan().recv()
    gocore.run(main)
    sys.exit(0)

if mode == "parked":
    async def waiter(c):
        await c.recv()
    for _ in range(3):
        go(waiter, Chan())
try:
    Chan().blocking_recv()
except DeadlockError as e:
    print("DeadlockError:", e, flush=True)
