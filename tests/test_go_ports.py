"""Ideas from Go's own channel tests (test/chan/*.go, runtime/chan_test.go),
rewritten for gocore: one test per idea, each docstring names the Go file."""
import itertools
from fractions import Fraction
from math import factorial

import pytest

from gocore import Chan, default, go, gosched, select


def primes_upto_count(n):
    out, k = [], 2
    while len(out) < n:
        if all(k % p for p in out):
            out.append(k)
        k += 1
    return out


@pytest.mark.timeout(30)
def test_prime_sieve(rt):
    """Go's test/chan/sieve1.go: a daisy chain of filter goroutines, one per
    prime, connected by unbuffered channels; the first 100 primes."""
    async def generate(ch):
        for i in itertools.count(2):
            await ch.send(i)

    async def filt(src, dst, prime):
        while True:
            i = await src.recv()
            if i % prime:
                await dst.send(i)

    async def main():
        ch = Chan()
        go(generate, ch)
        primes = []
        for _ in range(100):
            prime = await ch.recv()
            primes.append(prime)
            ch1 = Chan()
            go(filt, ch, ch1, prime)
            ch = ch1
        return primes

    assert rt.run(main) == primes_upto_count(100)


# ---------------------------------------------------------------- power series

SPLIT_AHEAD = 32


async def split(src, outs):
    """Copy one stream to several consumers, each at its own pace; the
    fastest may run at most SPLIT_AHEAD values ahead (Go's powser1 is
    demand-driven; this bound keeps a feedback loop from racing on)."""
    queues = [[] for _ in outs]
    while True:
        cases, who = [], []
        for k, q in enumerate(queues):
            if q:
                cases.append((outs[k].send, q[0]))
                who.append(k)
        if any(not q for q in queues) and max(map(len, queues)) < SPLIT_AHEAD:
            cases.append(src.recv)
            who.append(-1)
        i, v = await select(*cases)
        k = who[i]
        if k < 0:
            for q in queues:
                q.append(v)
        else:
            queues[k].pop(0)


def tee(src, n=2):
    outs = [Chan() for _ in range(n)]
    go(split, src, outs)
    return outs


async def _integ(c0, src, dst):
    await dst.send(c0)
    for n in itertools.count(1):
        await dst.send((await src.recv()) / n)


def integ(c0, src):
    """c0 + the integral of src."""
    dst = Chan()
    go(_integ, Fraction(c0), src, dst)
    return dst


async def _cmul(k, src, dst):
    while True:
        await dst.send(k * (await src.recv()))


def cmul(k, src):
    dst = Chan()
    go(_cmul, Fraction(k), src, dst)
    return dst


async def _add(a, b, dst):
    while True:
        await dst.send((await a.recv()) + (await b.recv()))


def add(a, b):
    dst = Chan()
    go(_add, a, b, dst)
    return dst


async def _mul(a, b, dst):
    fa, fb = [], []
    while True:
        fa.append(await a.recv())
        fb.append(await b.recv())
        n = len(fa) - 1
        await dst.send(sum(fa[k] * fb[n - k] for k in range(n + 1)))


def mul(a, b):
    dst = Chan()
    go(_mul, a, b, dst)
    return dst


def xscale(src, k):
    """f(x) -> f(k x)."""
    dst = Chan()

    async def run():
        for n in itertools.count():
            await dst.send((await src.recv()) * Fraction(k) ** n)

    go(run)
    return dst


def exp_series():
    """E = 1 + integral(E): a feedback loop through split."""
    fb = Chan()
    e = integ(1, fb)
    out, back = tee(e)
    go(_forward, back, fb)
    return out


async def _forward(src, dst):
    while True:
        await dst.send(await src.recv())


def sin_cos():
    """sin = integral(cos), cos = 1 - integral(sin): two feedback loops."""
    sin_fb, cos_fb = Chan(), Chan()
    s = integ(0, cos_fb)
    c = integ(1, cmul(-1, sin_fb))
    s_out, s_back = tee(s)
    c_out, c_back = tee(c)
    go(_forward, s_back, sin_fb)
    go(_forward, c_back, cos_fb)
    return s_out, c_out


async def take(src, n):
    return [await src.recv() for _ in range(n)]


N_COEF = 12


@pytest.mark.timeout(30)
def test_power_series_exp(rt):
    """Go's test/chan/powser1.go idea (gocore's own code): exp as the fixed point of
    E = 1 + integral(E) computed by a network of goroutines; coefficients
    1/n! exactly (Fractions); exp(x)*exp(x) == exp(2x)."""
    async def main():
        e1 = await take(exp_series(), N_COEF)
        sq = await take(mul(exp_series(), exp_series()), N_COEF)
        e2 = await take(xscale(exp_series(), 2), N_COEF)
        return e1, sq, e2

    e1, sq, e2 = rt.run(main)
    assert e1 == [Fraction(1, factorial(n)) for n in range(N_COEF)]
    assert sq == e2 == [Fraction(2 ** n, factorial(n)) for n in range(N_COEF)]


@pytest.mark.timeout(30)
def test_power_series_sin_cos(rt):
    """powser1.go's trigonometric check: sin and cos from mutually recursive
    integrals; sin^2 + cos^2 == 1 (series 1, 0, 0, ...)."""
    async def main():
        s1, c1 = sin_cos()
        s_a, s_b = tee(s1)
        c_a, c_b = tee(c1)
        one = add(mul(s_a, s_b), mul(c_a, c_b))
        s2, c2 = sin_cos()
        return await take(one, N_COEF), await take(s2, N_COEF), await take(c2, N_COEF)

    one, s, c = rt.run(main)
    assert one == [Fraction(1)] + [Fraction(0)] * (N_COEF - 1)
    sign = lambda n: (-1) ** (n // 2)
    assert s == [Fraction(sign(n - 1), factorial(n)) if n % 2 else 0 for n in range(N_COEF)]
    assert c == [0 if n % 2 else Fraction(sign(n), factorial(n)) for n in range(N_COEF)]


@pytest.mark.timeout(30)
def test_daisy_chain(rt):
    """Go's test/chan/goroutines.go / the classic whispers: 10,000
    goroutines in a chain each add one to what they receive."""
    n = 10_000

    async def whisper(left, right):
        await left.send(1 + await right.recv())

    async def main():
        leftmost = Chan()
        left = leftmost
        for _ in range(n):
            right = Chan()
            go(whisper, left, right)
            left = right
        await right.send(0)
        return await leftmost.recv()

    assert rt.run(main) == n


@pytest.mark.timeout(30)
def test_fifo_sync_chain(rt):
    """Go's test/chan/fifo.go SynchFifo: goroutines each wait for their
    turn on a private channel, then pass the turn on; the order of the
    printed numbers is the start order."""
    n = 500

    async def worker(i, mine, nxt, out):
        await mine.recv()
        await out.send(i)
        await nxt.send(None)

    async def main():
        out = Chan(n)
        first = Chan()
        cur = first
        for i in range(n):
            nxt = Chan()
            go(worker, i, cur, nxt, out)
            cur = nxt
        await first.send(None)
        await cur.recv()
        return [await out.recv() for _ in range(n)]

    assert rt.run(main) == list(range(n))


@pytest.mark.timeout(30)
def test_nonblock(rt):
    """Go's test/chan/nonblock.go: non-blocking sends and receives (select
    with default) on unbuffered and buffered channels, against a goroutine
    doing the blocking side; every value arrives once and in order."""
    async def main():
        for size in (0, 1, 8):
            c = Chan(size)
            got = []

            async def receiver():
                for _ in range(100):
                    got.append(await c.recv())

            go(receiver)
            i = 0
            spins = 0
            while i < 100:
                k, _ = await select((c.send, i), default)
                if k == 0:
                    i += 1
                else:
                    spins += 1
                    await gosched()
            while len(got) < 100:
                await gosched()
            assert got == list(range(100))

            c = Chan(size)

            async def sender():
                for j in range(100):
                    await c.send(j)

            go(sender)
            recvd = []
            while len(recvd) < 100:
                k, v = await select(c.recv, default)
                if k == 0:
                    recvd.append(v)
                else:
                    await gosched()
            assert recvd == list(range(100))

    rt.run(main)


@pytest.mark.timeout(30)
def test_doubleselect(rt):
    """Go's test/chan/doubleselect.go: one sender selects over several
    channels, several receivers each drain one; no value is delivered on
    two channels (or twice)."""
    n = 2000

    async def sender(cs):
        for i in range(n):
            await select(*((c.send, i) for c in cs))
        for c in cs:
            c.close()

    async def recver(c, out):
        async for v in c:
            await out.send(v)
        await out.send(None)

    async def main():
        cs = [Chan() for _ in range(4)]
        out = Chan(16)
        go(sender, cs)
        for c in cs:
            go(recver, c, out)
        seen = []
        ends = 0
        while ends < len(cs):
            v = await out.recv()
            if v is None:
                ends += 1
            else:
                seen.append(v)
        return seen

    assert sorted(rt.run(main)) == list(range(n))


@pytest.mark.timeout(30)
def test_select_pingpong_chain(rt):
    """runtime/chan_test.go TestSelectStress idea: goroutines doing selects
    with send and receive cases on a ring of channels keep making progress
    (no lost wake-up): a token goes around the ring many times."""
    k, laps = 8, 200

    async def node(inp, outp, stop):
        while True:
            i, v = await select(inp.recv, stop.recv_ok)
            if i == 1:
                return
            await select((outp.send, v + 1), stop.recv_ok)

    async def main():
        cs = [Chan() for _ in range(k)]
        stop = Chan()
        for i in range(k - 1):
            go(node, cs[i], cs[i + 1], stop)
        v = 0
        for _ in range(laps):
            await cs[0].send(v)
            v = await cs[k - 1].recv()
        stop.close()
        return v

    assert rt.run(main) == laps * (k - 1)
