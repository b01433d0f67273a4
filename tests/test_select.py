"""select: Go's rules - a uniformly random choice among ready cases,
`default` when none is ready, blocking until one is, send cases, the same
channel twice, losers dequeued, and blocking_select for threads."""
import threading

import pytest

import gocore
from gocore import Chan, blocking_select, default, go, nilchan, select

from conftest import settle, wait_until
from gocore._testhooks import wait_blocked


@pytest.mark.timeout(30)
def test_select_fairness_four_ready_cases(rt):
    """Go: among ready cases one is chosen uniformly at random. With 4
    always-ready channels over 4000 selects, Pearson's chi-square (3 degrees
    of freedom) must stay below 30 (p ~ 1e-6); a choice biased to the first
    ready case, or to any fixed order, scores in the thousands."""
    n, k = 4000, 4

    async def main():
        cs = [Chan(1) for _ in range(k)]
        for i, c in enumerate(cs):
            await c.send(i)
        counts = [0] * k
        for _ in range(n):
            i, v = await select(*(c.recv for c in cs))
            assert v == i
            counts[i] += 1
            await cs[i].send(i)            # keep every case ready
        return counts

    counts = rt.run(main)
    expected = n / k
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < 30, f"select is biased: {counts} (chi2={chi2:.1f})"


@pytest.mark.timeout(30)
def test_select_fairness_send_cases(rt):
    """The same uniform choice among ready send cases (buffered channels
    with room)."""
    n, k = 4000, 4

    async def main():
        cs = [Chan(1) for _ in range(k)]
        counts = [0] * k
        for _ in range(n):
            i, v = await select(*((c.send, j) for j, c in enumerate(cs)))
            assert v is None
            counts[i] += 1
            assert await cs[i].recv() == i
        return counts

    counts = rt.run(main)
    chi2 = sum((c - n / k) ** 2 / (n / k) for c in counts)
    assert chi2 < 30, f"select is biased: {counts} (chi2={chi2:.1f})"


@pytest.mark.timeout(20)
def test_select_default_when_nothing_ready(rt):
    """Go: `select { ... default: }` never blocks: default's index is
    returned when no case is ready, a ready case wins over default."""
    async def main():
        a, b = Chan(), Chan(1)
        assert await select(a.recv, b.recv_ok, default) == (2, None)
        assert await select(default, (a.send, 1)) == (0, None)
        await b.send("x")
        assert await select(a.recv, b.recv_ok, default) == (1, ("x", True))
        assert await select((b.send, "y"), default) == (0, None)
        assert await select((b.send, "z"), default) == (1, None)   # full
        assert await b.recv() == "y"

    rt.run(main)


@pytest.mark.timeout(20)
def test_select_default_alone(rt):
    """DESIGN §1: select(default) alone is valid and returns at once."""
    async def main():
        assert await select(default) == (0, None)
        assert blocking_select(default) == (0, None)

    rt.run(main)


@pytest.mark.timeout(20)
def test_select_blocks_until_a_case_is_ready(rt):
    """Go: without default, select blocks until one case can proceed and
    returns that case's index and value."""
    async def main():
        a, b, c = Chan(), Chan(), Chan()
        got = []

        async def selector():
            got.append(await select(a.recv, b.recv_ok, (c.send, "out")))

        go(selector)
        await wait_blocked(b, recv=1)
        assert got == []
        await b.send("in")
        await wait_until(lambda: got)
        assert got == [(1, ("in", True))]
        got.clear()
        go(selector)
        assert await c.recv() == "out"
        await wait_until(lambda: got)
        assert got == [(2, None)]

    rt.run(main)


@pytest.mark.timeout(20)
def test_select_losers_are_dequeued(rt):
    """Go's selectgo pass 3: once one case fires, the waiters on the other
    cases are removed - a later send on another channel must not be taken
    by the finished select (try_send finds no receiver)."""
    async def main():
        a, b = Chan(), Chan()
        got = []

        async def selector():
            got.append(await select(a.recv, b.recv))

        go(selector)
        await wait_blocked(a, recv=1)
        await a.send(1)
        await wait_until(lambda: got)
        assert got == [(0, 1)]
        await settle(10)
        assert b.try_send(2) is False, "a stale select waiter took a value"
        assert a.try_send(3) is False

    rt.run(main)


@pytest.mark.timeout(20)
def test_select_same_channel_twice(rt):
    """DESIGN §1: several cases of one select may name the same channel;
    the select works, and which case fires is random (both fire over many
    tries)."""
    async def main():
        c = Chan(1)
        seen = set()
        for i in range(200):
            await c.send(i)
            idx, v = await select(c.recv, c.recv)
            assert v == i
            seen.add(idx)
        # a blocked select with the same channel twice, woken by one send
        got = []

        async def sel():
            got.append(await select(c.recv, c.recv_ok))

        go(sel)
        await wait_blocked(c, recv=1)
        await c.send("w")
        await wait_until(lambda: got)
        return seen, got

    seen, got = rt.run(main)
    assert seen == {0, 1}
    assert got in ([(0, "w")], [(1, ("w", True))])


@pytest.mark.timeout(20)
def test_select_send_and_recv_same_channel(rt):
    """A select that both sends to and receives from one buffered channel
    takes whichever is possible: send when empty, receive when full."""
    async def main():
        c = Chan(1)
        assert await select(c.recv, (c.send, "s")) == (1, None)
        assert await select(c.recv, (c.send, "t")) == (0, "s")

    rt.run(main)


@pytest.mark.timeout(20)
def test_select_recv_ok_on_closed(rt):
    """Go: a closed channel is always ready in select, giving (zero, false)."""
    async def main():
        a, b = Chan(), Chan()
        got = []

        async def sel():
            got.append(await select(a.recv_ok, b.recv_ok))

        go(sel)
        await wait_blocked(b, recv=1)
        b.close()
        await wait_until(lambda: got)
        return got

    assert rt.run(main) == [(1, (None, False))]


@pytest.mark.timeout(20)
def test_blocked_select_send_case_raises_when_closed(rt):
    """Go: a select parked on a send case panics if that channel is closed."""
    async def main():
        a = Chan()
        got = []

        async def sel():
            try:
                await select((a.send, 1), nilchan.recv)
            except gocore.ChanClosedError as e:
                got.append(str(e))

        go(sel)
        await wait_blocked(a, send=1)
        a.close()
        await wait_until(lambda: got)
        return got

    assert rt.run(main) == ["send on closed channel"]


@pytest.mark.timeout(20)
def test_select_only_nil_cases_and_default(rt):
    """Go: nil-channel cases are never ready, so default is taken."""
    async def main():
        return await select(nilchan.recv, (nilchan.send, 1), default)

    assert rt.run(main) == (2, None)


@pytest.mark.timeout(30)
def test_blocking_select_from_threads(rt):
    """blocking_select parks a plain thread until a goroutine makes a case
    ready; several threads selecting on shared channels each get distinct
    values (no value delivered twice)."""
    n_threads, per = 3, 50

    async def main():
        a, b = Chan(), Chan()
        results = []
        lock = threading.Lock()

        def th():
            mine = []
            for _ in range(per):
                i, v = blocking_select(a.recv, b.recv)
                mine.append(v)
            with lock:
                results.extend(mine)

        ts = [threading.Thread(target=th) for _ in range(n_threads)]
        for t in ts:
            t.start()
        for i in range(n_threads * per):
            await select((a.send, i), (b.send, i))
        await wait_until(lambda: not any(t.is_alive() for t in ts))
        return results

    assert sorted(rt.run(main)) == list(range(n_threads * per))


@pytest.mark.timeout(30)
def test_many_selectors_many_senders(rt):
    """Many goroutines selecting over the same channels while many send:
    every value is received exactly once (one waker wins each select)."""
    n_sel, n_send, per = 20, 10, 100

    async def main():
        cs = [Chan() for _ in range(3)]
        out = Chan(n_send * per)
        stop = Chan()

        async def selector():
            while True:
                i, v = await select(cs[0].recv, cs[1].recv, cs[2].recv, stop.recv_ok)
                if i == 3:
                    return
                await out.send(v)

        async def sender(s):
            for k in range(per):
                await cs[k % 3].send((s, k))

        for _ in range(n_sel):
            go(selector)
        for s in range(n_send):
            go(sender, s)
        got = [await out.recv() for _ in range(n_send * per)]
        stop.close()
        return got

    got = rt.run(main)
    assert sorted(got) == sorted((s, k) for s in range(n_send) for k in range(per))
