"""Issue 14 item 7: os.fork() gives a child with no runtime, where go()
and run() work. Mode argv[1]: "background" (the parent's background
runtime is alive, goroutines parked, at fork), "sync-goroutine" or
"async-main" (fork inside a goroutine of run()). The child prints what it saw and leaves with
os._exit; the parent prints the child's exit status."""
import os
import sys
import time

import gocore
from gocore import Chan, go, run


def child_work():
    out = []
    assert gocore.num_goroutine() == 1, gocore.num_goroutine()
    c = Chan()
    go(lambda: c.blocking_send("bg"))            # a fresh background runtime
    out.append(c.blocking_recv())

    async def main():
        d = Chan()

        async def worker(i):
            await d.send(i)
        for i in range(3):
            go(worker, i)
        return sorted([await d.recv() for _ in range(3)])
    out.append(run(main))
    print("child", out, gocore.num_goroutine(), flush=True)


def wait_child(pid):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r, status = os.waitpid(pid, os.WNOHANG)
        if r == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    return "hung"


def fork_and_check():
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            child_work()
            code = 0
        except BaseException as e:
            print("child failed:", repr(e), flush=True)
            code = 1
        os._exit(code)
    return wait_child(pid)


mode = sys.argv[1]
if mode == "background":
    parked = Chan()
    for _ in range(4):
        go(parked.recv)                           # parent goroutines, parked
    go(lambda: parked.blocking_recv())            # and a sync one
    time.sleep(0.05)
    print("parent", fork_and_check(), flush=True)
elif mode == "sync-goroutine":
    async def main():
        done = Chan(1)
        go(lambda: done.blocking_send(fork_and_check()))
        return await done.recv()
    print("parent", run(main), flush=True)
else:                                             # "async-main": in run()'s main goroutine
    async def main():
        go(Chan().recv)                           # a parked goroutine the child must not see
        return fork_and_check()
    print("parent", run(main), flush=True)
