"""fork: a child gets a fresh poller (the parent's epoll instance is not
shared), inherited listeners work in it, and the parent's poller still
works after the fork. Prints "ok" or raises."""
import os
import socket
import sys

import gocore
from gocore import go, net

ln = net.listen("tcp", "127.0.0.1:0")


async def echo_one(ln):
    c = await ln.accept()
    d = await c.read()
    await c.write(d.upper())
    c.close()
    return gocore._sched._netpoll_stats()["epoll_fd"]


# the parent uses its poller before forking
with socket.create_connection(ln.addr) as s:
    s.sendall(b"parent-before")
    assert gocore.run(echo_one, ln) >= 0
    assert s.recv(100) == b"PARENT-BEFORE"

r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    try:
        st = gocore._sched._netpoll_stats()
        assert st["epoll_fd"] == -1, st          # fresh: created on first use
        gocore.run(echo_one, ln)
        os.write(w, b"ok")
        os._exit(0)
    except BaseException as e:
        os.write(w, repr(e).encode())
        os._exit(1)
os.close(w)
with socket.create_connection(ln.addr) as s:
    s.sendall(b"child")
    assert s.recv(100) == b"CHILD"
msg = os.read(r, 1000)
_, status = os.waitpid(pid, 0)
assert msg == b"ok" and status == 0, (msg, status)
# the parent's poller still works
with socket.create_connection(ln.addr) as s:
    s.sendall(b"parent-after")
    gocore.run(echo_one, ln)
    assert s.recv(100) == b"PARENT-AFTER"
ln.close()
print("ok")
