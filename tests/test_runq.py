"""The local run queue (csrc/gocore_runq.h) on bare Ps, through
gocore._testhooks: the ring compiled at 4 slots whatever the build, on Ps
that are not part of the running scheduler (Go's export_test.go runqput /
runqget / runqsteal on `new(p)`).

Sequential tests pin the ring's rules (FIFO, runnext, overflow of half the
ring to the global queue, a thief takes half rounded up from the head,
runnext only when the ring is empty and asked); the concurrent ones run an
owner and several thieves on real threads without the GIL and check that
every G comes out exactly once (Go's RunSchedLocalQueueStealTest and
tokio's steal tests, as ideas)."""
import random

import pytest

from gocore import _testhooks as hooks

CAP = hooks.BARE_RUNQ_CAP


def drain(ps, p):
    out = []
    while (g := ps.get(p)) is not None:
        out.append(g)
    return out


def drain_global(ps, p):
    """Everything on the global queue, via P p's ring, in the order it comes out."""
    out = []
    while (g := ps.global_get(p)) is not None:
        out.append(g)
        out.extend(drain(ps, p))
    return out


def test_bare_ring_has_4_slots():
    assert CAP == 4


@pytest.mark.timeout(10)
def test_ring_is_fifo():
    ps = hooks.Procs(1, 16)
    for g in range(CAP):
        assert ps.put(0, g) is True
    assert ps.ring(0) == list(range(CAP))
    assert ps.runq_len(0) == CAP and not ps.empty(0)
    assert drain(ps, 0) == list(range(CAP))
    assert ps.empty(0) and ps.get(0) is None and ps.queued() == []


@pytest.mark.timeout(10)
def test_runnext_runs_first_and_the_old_one_goes_to_the_tail():
    ps = hooks.Procs(1, 16)
    assert ps.put(0, 7, next=True) is False        # the ring itself is still empty
    assert ps.runnext(0) == 7 and ps.ring(0) == [] and not ps.empty(0)
    ps.put(0, 0)
    ps.put(0, 8, next=True)                        # 7 leaves runnext for the tail
    assert ps.runnext(0) == 8 and ps.ring(0) == [0, 7]
    assert drain(ps, 0) == [8, 0, 7]
    assert ps.empty(0) and ps.runnext(0) is None


@pytest.mark.timeout(10)
def test_full_ring_moves_half_and_the_new_g_to_the_global_queue():
    ps = hooks.Procs(2, 16)
    for g in range(CAP):
        ps.put(0, g)
    assert ps.put(0, CAP) is True
    assert ps.ring(0) == list(range(CAP // 2, CAP))     # the newer half stays
    assert ps.global_len() == CAP // 2 + 1
    assert drain(ps, 0) == list(range(CAP // 2, CAP))
    # the older half, then the G that did not fit, in that order
    assert drain_global(ps, 1) == list(range(CAP // 2)) + [CAP]
    assert ps.global_len() == 0 and ps.queued() == []


@pytest.mark.timeout(10)
def test_runnext_put_on_a_full_ring_overflows():
    ps = hooks.Procs(1, 16)
    for g in range(CAP):
        ps.put(0, g)
    ps.put(0, 10, next=True)            # runnext was empty: the ring is untouched
    assert ps.global_len() == 0
    ps.put(0, 11, next=True)            # 10 goes to the full ring's tail: overflow
    assert ps.runnext(0) == 11
    assert ps.global_len() == CAP // 2 + 1
    out = drain(ps, 0) + drain_global(ps, 0)
    assert out[0] == 11
    assert sorted(out) == sorted(list(range(CAP)) + [10, 11])


@pytest.mark.timeout(10)
@pytest.mark.parametrize("n", range(CAP + 1))
def test_steal_takes_half_rounded_up_from_the_head(n):
    """Go's RunSchedLocalQueueStealTest, for each fill level: the thief
    gets ceil(n/2) Gs - the oldest ones - and nothing is lost or doubled."""
    ps = hooks.Procs(2, 16)
    for g in range(n):
        ps.put(0, g)
    first = ps.steal(1, 0)
    stolen = [] if first is None else [first] + drain(ps, 1)
    left = drain(ps, 0)
    assert len(stolen) == n - n // 2
    assert sorted(stolen) == list(range(len(stolen)))     # from the head
    assert left == list(range(len(stolen), n))
    assert ps.queued() == []


@pytest.mark.timeout(10)
def test_runnext_stolen_only_when_the_ring_is_empty_and_asked():
    ps = hooks.Procs(2, 16)
    ps.put(0, 5, next=True)
    assert ps.steal(1, 0, runnext=False) is None
    assert ps.runnext(0) == 5
    assert ps.steal(1, 0, runnext=True) == 5
    assert ps.empty(0) and ps.empty(1)
    ps.put(0, 1)
    ps.put(0, 2, next=True)
    assert ps.steal(1, 0, runnext=True) == 1          # the ring first; runnext stays
    assert ps.runnext(0) == 2
    assert drain(ps, 0) == [2]


@pytest.mark.timeout(10)
def test_global_get_moves_a_batch_into_the_ring():
    """globrunq_get: n = len/nprocs + 1, at most max and half the ring; the
    first returned, the rest on the P's ring, in the global queue's order.
    12 puts on one 4-slot P overflow three times, each time the ring's older
    half and the new G: [0 1 4] [2 3 7] [5 6 10], with 8 9 11 left."""
    assert CAP == 4
    ps = hooks.Procs(2, 64)
    for g in range(12):
        ps.put(0, g)
    assert ps.ring(0) == [8, 9, 11]
    assert ps.global_len() == 9
    drain(ps, 0)
    assert ps.global_get(1) == 0        # 9/2+1 = 5, capped at half the ring: 2
    assert ps.ring(1) == [1] and ps.global_len() == 7
    assert drain(ps, 1) == [1]
    assert ps.global_get(1, max=1) == 4 and ps.runq_len(1) == 0
    assert drain_global(ps, 1) == [2, 3, 7, 5, 6, 10]
    assert ps.queued() == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize("seed", range(20))
def test_random_operations_keep_every_g_exactly_once(seed):
    """Random puts (some with next), gets, steals and global takes on 3
    Ps, one thread: every G put comes out exactly once."""
    rnd = random.Random(seed)
    n = 300
    ps = hooks.Procs(3, n)
    out = []
    nxt = 0
    for _ in range(100 * n):            # bounded: a ring that loses a G must fail, not spin
        if nxt == n and not ps.queued():
            break
        op = rnd.random()
        p = rnd.randrange(3)
        if op < 0.45 and nxt < n:
            ps.put(p, nxt, next=rnd.random() < 0.2)
            nxt += 1
        elif op < 0.7:
            g = ps.get(p)
            if g is not None:
                out.append(g)
        elif op < 0.9:
            victim = rnd.choice([v for v in range(3) if v != p])
            out.extend(drain(ps, p))
            g = ps.steal(p, victim, runnext=rnd.random() < 0.5)
            if g is not None:
                out.append(g)
        else:
            g = ps.global_get(p, max=rnd.randrange(3))
            if g is not None:
                out.append(g)
    assert sorted(out) == list(range(n))
    assert ps.global_len() == 0 and all(ps.empty(p) for p in range(3))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("thieves", [1, 3])
def test_concurrent_stealing_every_g_exactly_once(thieves):
    """An owner puts 200,000 Gs on a 4-slot P (overflowing to the global
    queue) and takes some back while `thieves` threads steal from it and
    from each other and take from the global queue: each G comes out once."""
    n = 200_000
    for attempt in range(5):
        r = hooks.runq_stress(thieves=thieves, ngs=n, timeout=40.0 / 5)
        assert not r["timed_out"], r
        assert r["ok"], r
        assert r["owner_gets"] + r["thief_gets"] + r["steals"] + r["global_gets"] == n, r
        # every path was taken, so the run exercised what it claims to; on a
        # loaded machine one run can miss the global queue: run again
        if r["steals"] > 0 and r["global_gets"] > 0 and r["owner_gets"] > 0:
            break
    assert r["steals"] > 0 and r["global_gets"] > 0 and r["owner_gets"] > 0, r


@pytest.mark.timeout(60)
def test_concurrent_stealing_many_rounds():
    """Many short runs: the start and the end of a run, when the rings are
    nearly empty and thieves race for the last Gs, are where a steal that
    takes a G the owner also took would show."""
    for _ in range(200):
        r = hooks.runq_stress(thieves=3, ngs=64, timeout=20.0)
        assert r["ok"], r


@pytest.mark.timeout(60)
def test_runq_empty_never_wrong_under_a_concurrent_owner():
    """Go's RunSchedLocalQueueEmptyTest idea: a P that holds a G all along,
    its owner moving Gs between runnext and the ring, never looks empty to
    another thread (an M that finds every P "empty" parks while work waits)."""
    spurious, errors = hooks.runq_empty_stress(100_000)
    assert errors == 0
    assert spurious == 0, f"runq_empty said empty {spurious} times while the P held a G"


def test_bad_input():
    with pytest.raises(ValueError):
        hooks.Procs(0)
    with pytest.raises(ValueError):
        hooks.Procs(2, 0)
    ps = hooks.Procs(2, 4)
    with pytest.raises(IndexError):
        ps.put(2, 0)
    with pytest.raises(ValueError):
        ps.put(0, 4)
    ps.put(0, 1)
    with pytest.raises(ValueError, match="already on a run queue"):
        ps.put(1, 1)
    with pytest.raises(ValueError, match="itself"):
        ps.steal(0, 0)
    ps.put(1, 2)
    with pytest.raises(ValueError, match="empty ring"):
        ps.steal(1, 0)
    with pytest.raises(ValueError):
        ps.global_get(0, max=-1)
    with pytest.raises(ValueError):
        hooks.runq_stress(thieves=0)
    with pytest.raises(ValueError):
        hooks.runq_stress(ngs=0)
    with pytest.raises(ValueError):
        hooks.runq_stress(timeout=0)
    with pytest.raises(ValueError):
        hooks.runq_empty_stress(0)
