"""EMFILE on accept: the listener backs off (5 ms doubling to 1 s) instead
of spinning, logs nothing, keeps serving existing connections and accepts
the rest once fds are free. Prints a JSON line of measurements."""
import json
import os
import resource
import socket
import sys
import time

import gocore
from gocore import Chan, go, net, sleep

N = 30
ln = net.listen("tcp", "127.0.0.1:0")
clients = [socket.create_connection(ln.addr) for _ in range(N)]
nopen = len(os.listdir("/proc/self/fd"))
# room for 5 accepted conns (+ the fd listdir uses, + the runtime's eventfd and epoll are open already)
resource.setrlimit(resource.RLIMIT_NOFILE, (nopen + 5, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


async def main():
    accepted = []
    got = Chan(N)

    async def acceptor():
        while True:
            try:
                c = await ln.accept()
            except net.ErrClosed:
                return
            accepted.append(c)
            await got.send(c)

    async def echo(c):
        # main closes every accepted conn at the end: a read parked then
        # ends with ErrClosed, as Go's Read returns net.ErrClosed
        try:
            while d := await c.read():
                await c.write(d)
        except net.ErrClosed:
            pass
    go(acceptor)
    first = []
    for _ in range(4):
        c = await got.recv()
        first.append(c)
        go(echo, c)
    await sleep(0.05)
    n_before = len(accepted)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    # out of fds now: existing connections keep being served meanwhile
    served = 0
    for i in range(len(first)):
        clients[i].sendall(b"ping")
        served += clients[i].recv(10) == b"ping"
    await sleep(1.0)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    tries = ln.emfile_count
    # free fds: the accept loop resumes and takes the rest
    resource.setrlimit(resource.RLIMIT_NOFILE, (nopen + N + 20, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    deadline = time.monotonic() + 10
    while len(accepted) < N and time.monotonic() < deadline:
        await sleep(0.05)
    out = {"n_before": n_before, "served": served, "cpu": cpu, "wall": wall,
           "emfile_tries": tries, "accepted": len(accepted)}
    for c in accepted:
        c.close()
    ln.close()
    return out

gocore.gomaxprocs(1)
print(json.dumps(gocore.run(main)), flush=True)
for c in clients:
    c.close()
