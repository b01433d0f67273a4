"""Interpreter exit with gocore.aio calls pending: a goroutine of the
background runtime (go() without run()) and a daemon plain thread wait in
calls; the exit stops the loop, the tasks' finally blocks run, and nothing
panics or hangs."""
import asyncio
import threading
import time

from gocore import aio, go

started = threading.Semaphore(0)


async def forever(who):
    started.release()
    try:
        await asyncio.sleep(100)
    finally:
        print("finally", who, flush=True)


async def goroutine():
    await aio.call(forever, "goroutine")


def thread():
    aio.blocking_call(forever, "thread")      # never returns: the exit stops the loop


go(goroutine)
threading.Thread(target=thread, daemon=True).start()
for _ in range(2):
    started.acquire(timeout=10)
time.sleep(0.05)
print("exiting", flush=True)
