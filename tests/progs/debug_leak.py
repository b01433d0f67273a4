"""Debug builds (GOCORE_DEBUG=1): the balance checks fail loudly. The
program keeps references to goroutine G objects (through the runtime's
private _all_goroutines) past the end of run():
  1. run() raises DebugCheckError naming the counter (g_objects);
  2. the references are still held at interpreter exit: the exit check
     aborts the process with "gocore: fatal error: debug check at
     interpreter exit: g_objects = ..." on stderr."""
import gocore
from gocore import _sched, go, run

held = []


async def child(c):
    await c.recv()


async def main():
    c = gocore.Chan()
    go(child, c)
    for _ in range(10):
        await gocore.gosched()
    held.extend(g for g in _sched._all_goroutines() if not g.is_main)
    await c.send(None)


try:
    run(main)
except _sched.DebugCheckError as e:
    print("DebugCheckError:", e, flush=True)
else:
    print("no error", flush=True)
