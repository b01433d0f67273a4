"""Micro-benchmarks of gocore's hot paths (pytest-benchmark).

Run against the installed package, from outside the source tree:

    cd /tmp && pytest /path/to/gocore/bench/test_micro.py

Each benchmark times one whole `run()` of a batch of OPS operations and
checks the batch's result, so the figure per call includes one runtime
start and stop; divide by OPS (recorded in extra_info) for a per-op cost.
Every benchmark runs with gomaxprocs 1 and 2.
"""

import os

import pytest

import gocore
from gocore import Chan, Mutex, WaitGroup, go, gomaxprocs, run, select

OPS = 10_000

_src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.dirname(os.path.dirname(os.path.abspath(gocore.__file__))) == _src:
    pytest.fail(f"gocore is imported from the source tree ({gocore.__file__}): install the "
                "wheel and run pytest from another directory (see bench/README.md)",
                pytrace=False)


@pytest.fixture(params=[1, 2], ids=lambda p: f"gomaxprocs{p}")
def procs(request):
    old = gomaxprocs()
    gomaxprocs(request.param)
    yield request.param
    gomaxprocs(old)


def bench(benchmark, main):
    benchmark.extra_info["ops"] = OPS
    return benchmark(run, main)


# spawn: go() of a goroutine that signals a WaitGroup ---------------------------

async def _signal(wg):
    wg.done()


async def spawn_batch():
    wg = WaitGroup()
    wg.add(OPS)
    for _ in range(OPS):
        go(_signal, wg)
    await wg.wait()
    return OPS


def test_spawn(benchmark, procs):
    assert bench(benchmark, spawn_batch) == OPS


# channel fast path: send and receive on a buffered channel that never blocks --

async def buffered_batch():
    ch = Chan(OPS)
    for i in range(OPS):
        await ch.send(i)
    total = 0
    for _ in range(OPS):
        total += await ch.recv()
    return total


def test_chan_buffered_fast_path(benchmark, procs):
    assert bench(benchmark, buffered_batch) == OPS * (OPS - 1) // 2


# park/ready round trip: ping-pong over two unbuffered channels ----------------

async def _pong(ping, pong):
    for _ in range(OPS):
        await pong.send(await ping.recv() + 1)


async def pingpong_batch():
    ping, pong = Chan(), Chan()
    go(_pong, ping, pong)
    total = 0
    for i in range(OPS):
        await ping.send(i)
        total += await pong.recv()
    return total


def test_park_ready_pingpong(benchmark, procs):
    assert bench(benchmark, pingpong_batch) == OPS * (OPS + 1) // 2


# select with 1 and 4 ready receive cases ----------------------------------------

def select_batch(ncases):
    async def main():
        chans = [Chan(OPS) for _ in range(ncases)]
        for i in range(OPS):
            assert chans[i % ncases].try_send(i)
        cases = [c.recv for c in chans]
        counts = [0] * ncases
        total = 0
        for _ in range(OPS):
            k, v = await select(*cases)
            counts[k] += 1
            total += v
        return total, counts
    return main


@pytest.mark.parametrize("ncases", [1, 4])
def test_select(benchmark, procs, ncases):
    total, counts = bench(benchmark, select_batch(ncases))
    assert total == OPS * (OPS - 1) // 2
    assert counts == [OPS // ncases] * ncases


# WaitGroup add/done ---------------------------------------------------------------

async def waitgroup_batch():
    wg = WaitGroup()
    for _ in range(OPS):
        wg.add(1)
        wg.done()
    await wg.wait()  # the counter is zero: returns at once
    return OPS


def test_waitgroup_add_done(benchmark, procs):
    assert bench(benchmark, waitgroup_batch) == OPS


# Mutex uncontended lock/unlock ----------------------------------------------------

async def mutex_batch():
    m = Mutex()
    n = 0
    for _ in range(OPS):
        await m.lock()
        n += 1
        m.unlock()
    assert m.try_lock()  # left unlocked
    m.unlock()
    return n


def test_mutex_uncontended(benchmark, procs):
    assert bench(benchmark, mutex_batch) == OPS
