"""os.fork() with gocore.aio's loop running and a call pending in the
parent: the child's aio.call starts a fresh loop and works."""
import asyncio
import os
import threading

import gocore
from gocore import aio

started = threading.Event()


async def forever():
    started.set()
    await asyncio.sleep(100)


threading.Thread(target=aio.blocking_call, args=(forever,), daemon=True).start()
started.wait(10)


async def add(a, b):
    await asyncio.sleep(0.01)
    return a + b


async def main():
    return await aio.call(add, 2, 3)


pid = os.fork()
if pid == 0:
    try:
        print("child", gocore.run(main), flush=True)
    finally:
        os._exit(0)
_, status = os.waitpid(pid, 0)
print("parent", gocore.run(main), os.waitstatus_to_exitcode(status), flush=True)
