"""Model-based tests: hypothesis state machines drive random interleavings of
channel operations (send, recv, recv_ok, close, select with and without
`default`, try_send, try_recv, `for v in ch`) on buffered, unbuffered and nil
channels, and check every result against a small pure-Python model of Go's
rules.

How a machine runs. The whole hypothesis run of one machine happens inside
one `gocore.run()` whose main goroutine is a plain function (a sync
goroutine): hypothesis calls the rules from there. Operations that the model
says can complete at once are made by main itself (`try_*`, `blocking_*`,
`blocking_select`). An operation that must block is made by a new goroutine
(lightweight `async def`, or a sync goroutine using the `blocking_*` API):
main waits until that goroutine is parked on its channel(s) and the model
records it as a waiter, in arrival order. When a later step completes or
wakes waiters, main waits for their reports (a channel) and checks that
exactly the waiters the model names woke, each with what Go gives it.

Waiting is by synchronisation, never by sleeping for a guessed time: a
waiter's completion is a report on a channel; "parked" (which no event
signals) is polled by a prober goroutine over the runtime's goroutine table
(gocore._sched._goroutine_info) that reports on a channel. Every wait is
bounded (WAIT_S) and fails with a goroutine dump; a waiter that parks when
the model says it proceeds, or the reverse, fails at once.

Two runs per machine: gomaxprocs 1 and 2 (the `rt` fixture).
"""
import functools
import itertools
import os
import time
from collections import deque

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule, run_state_machine_as_test)

import gocore
from gocore import Chan, ChanClosedError, Timer, blocking_select, default, go, nilchan, select
from gocore import _sched     # _current_goid / _goroutine_info: to see that a waiter has parked

EXAMPLES = int(os.environ.get("GOCORE_MODEL_EXAMPLES", "500"))   # CI: 500 per machine
WAIT_S = 3.0             # bound of every wait for a goroutine (a failure, never a normal path)
MAX_PENDING = 6          # blocked waiters alive at once
MAX_PENDING_SYNC = 2     # of which sync goroutines (each holds an OS thread while blocked)

SEND, RECV, RECV_OK = "send", "recv", "recv_ok"
CLOSED = ("raise", "ChanClosedError")     # outcome: the operation raised ChanClosedError

MACHINE_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=20,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def same(a, b):
    """Strict equality for results: (1, True) must not equal (1, 1)."""
    return repr(a) == repr(b)


# ---------------------------------------------------------------- the model

class ModelChan:
    """Go's hchan, in Python: the buffer (FIFO), the closed flag and the two
    wait queues of (waiter, case index), in arrival order."""

    def __init__(self, name, cap, nil=False):
        self.name = name
        self.cap = cap
        self.nil = nil
        self.real = nilchan if nil else Chan(cap)
        self.buf = deque()
        self.closed = False
        self.recvq = []
        self.sendq = []

    def __repr__(self):
        return self.name


class Case:
    """One channel operation: a select case, or a plain send/recv/recv_ok."""

    def __init__(self, chan, kind, value=None):
        self.chan = chan
        self.kind = kind
        self.value = value

    @property
    def is_send(self):
        return self.kind == SEND

    def ready(self):
        """Go: could this operation proceed now? (A send on a closed channel
        counts: it proceeds by panicking.) nil channels are never ready."""
        c = self.chan
        if c.nil:
            return False
        if self.is_send:
            return c.closed or bool(c.recvq) or len(c.buf) < c.cap
        return bool(c.sendq) or bool(c.buf) or c.closed

    def panics(self):
        return self.is_send and not self.chan.nil and self.chan.closed

    def shape(self, value, ok):
        """What the operation returns for a received (value, ok)."""
        if self.kind == RECV:
            return value
        if self.kind == RECV_OK:
            return (value, ok)
        return None

    def real_case(self):
        ch = self.chan.real
        if self.is_send:
            return (ch.send, self.value)
        return ch.recv if self.kind == RECV else ch.recv_ok

    def __repr__(self):
        if self.is_send:
            return f"{self.chan}<-{self.value!r}"
        return f"<-{self.chan}" + (",ok" if self.kind == RECV_OK else "")


class Waiter:
    """A goroutine that makes one operation (plain) or one select."""

    def __init__(self, wid, cases, plain, flavor):
        self.id = wid
        self.cases = cases
        self.plain = plain
        self.flavor = flavor          # "async" or "sync"
        # written by the goroutine
        self.goid = None
        self.outcome = None
        self.finished = False
        # written by main
        self.reported = False
        self.expected = None          # once the model completes it: acceptable outcomes

    def wrap(self, case_index, value):
        """The outcome the goroutine sees for a case that completed with value."""
        return ("ok", value) if self.plain else ("ok", (case_index, value))

    def __repr__(self):
        what = self.cases[0] if self.plain else f"select{self.cases}"
        return f"w{self.id}[{self.flavor} {what}]"


async def waiter_async(w, reports):
    """A lightweight goroutine making w's operation with `await`."""
    w.goid = _sched._current_goid()
    try:
        if w.plain:
            case = w.cases[0]
            ch = case.chan.real
            if case.is_send:
                res = await ch.send(case.value)
            elif case.kind == RECV:
                res = await ch.recv()
            else:
                res = await ch.recv_ok()
        else:
            res = await select(*(c.real_case() for c in w.cases))
        w.outcome = ("ok", res)
    except ChanClosedError:
        w.outcome = CLOSED
    except Exception as e:              # reported as a mismatch, never a panic of run()
        w.outcome = ("error", repr(e))
    w.finished = True
    await reports.send(w.id)


def waiter_sync(w, reports):
    """A sync goroutine making w's operation with the blocking_* API."""
    w.goid = _sched._current_goid()
    try:
        if w.plain:
            case = w.cases[0]
            ch = case.chan.real
            if case.is_send:
                res = ch.blocking_send(case.value)
            elif case.kind == RECV:
                res = ch.blocking_recv()
            else:
                res = ch.blocking_recv_ok()
        else:
            res = blocking_select(*(c.real_case() for c in w.cases))
        w.outcome = ("ok", res)
    except ChanClosedError:
        w.outcome = CLOSED
    except Exception as e:
        w.outcome = ("error", repr(e))
    w.finished = True
    reports.blocking_send(w.id)


PARK_REASONS = ("chan send", "chan receive", "select")


def is_parked(goid):
    for info in _sched._goroutine_info():
        if info[0] == goid:
            return info[2] == "waiting" and info[3] in PARK_REASONS
    return False


async def prober(pred, out):
    """Yield until pred() holds (or WAIT_S passes), then report on out.
    Mostly gosched; now and then a short timer wait leaves the processor
    idle (both the busy-P and the idle-P paths of a sync goroutine coming
    back from a blocking call get exercised)."""
    deadline = time.monotonic() + WAIT_S
    spins = 0
    while not pred():
        if time.monotonic() > deadline:
            await out.send(False)
            return
        spins += 1
        if spins % 16 == 0:
            await gocore.sleep(0.0002)
        else:
            await gocore.gosched()
    await out.send(True)


def checked_step(fn):
    """Mark the machine broken when a step fails, so that teardown only
    cleans up instead of asserting on a diverged model."""
    @functools.wraps(fn)
    def step(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except BaseException:
            self.broken = True
            raise
    return step


# strategies
CHAN_PICK = st.integers(0, 7)                     # 7: nilchan; else an index modulo the channels
# sometimes send None: recv_ok must tell it from a closed channel
SEND_NONE = st.sampled_from((False, False, False, True))
KIND = st.sampled_from((SEND, RECV, RECV_OK))
FLAVOR = st.sampled_from(("async", "async", "sync"))


class ChannelWorld(RuleBasedStateMachine):
    """The model, the waiter bookkeeping and the rules shared by both
    machines (subclasses pick the channels in an @initialize rule)."""

    def __init__(self):
        super().__init__()
        self.chans = []
        self.nil = ModelChan("nil", 0, nil=True)
        self.values = itertools.count(1)
        self.names = itertools.count(1)
        self.waiter_ids = itertools.count(1)
        self.waiters = {}               # id -> Waiter, every waiter of this example
        self.reports = Chan(256)        # waiters send their id here when done
        self.probe = Chan(1)
        self.broken = False

    # ---- helpers: picking

    def pick(self, i):
        return self.nil if i == 7 else self.chans[i % len(self.chans)]

    def new_value(self, none):
        return None if none else next(self.values)

    def pending(self):
        return [w for w in self.waiters.values() if w.expected is None]

    def room_for(self, flavor):
        p = self.pending()
        return len(p) < MAX_PENDING and (flavor != "sync" or
                                         sum(w.flavor == "sync" for w in p) < MAX_PENDING_SYNC)

    # ---- the model's transitions

    def wake_first(self, ch, queue, outcome_of):
        """Go: a waker serves the first waiter of the queue. outcome_of(case)
        gives that waiter's result for its case on ch; a select with several
        cases on ch may fire any of them. The waiter leaves every queue."""
        w, _ = queue[0]
        direction_send = queue is ch.sendq
        w.expected = []
        for i, c in enumerate(w.cases):
            if c.chan is ch and c.is_send == direction_send:
                out = outcome_of(c)
                w.expected.append(w.wrap(i, out[1]) if out[0] == "ok" else out)
        for m in self.chans:
            m.recvq = [e for e in m.recvq if e[0] is not w]
            m.sendq = [e for e in m.sendq if e[0] is not w]
        return w

    def complete(self, case):
        """Apply a ready, non-panicking case; return what it yields. The
        waiters it wakes get their expected outcome."""
        ch = case.chan
        if case.is_send:
            if ch.recvq:     # Go: hand the value straight to the first receiver
                self.wake_first(ch, ch.recvq, lambda c: ("ok", c.shape(case.value, True)))
            else:
                ch.buf.append(case.value)
            return None
        if ch.sendq:
            w, i = ch.sendq[0]
            moved = w.cases[i].value
            self.wake_first(ch, ch.sendq, lambda c: ("ok", None))
            if ch.cap == 0:  # unbuffered: take the sender's value
                return case.shape(moved, True)
            # full buffer: take its head; the sender's value joins the tail
            v = ch.buf.popleft()
            ch.buf.append(moved)
            return case.shape(v, True)
        if ch.buf:
            return case.shape(ch.buf.popleft(), True)
        assert ch.closed
        return case.shape(None, False)   # closed and drained

    def check_choice(self, cases, outcome):
        """cases: the select's cases (None stands for `default`); outcome:
        what the select gave, ("ok", (index, value)) or CLOSED. Go: a ready
        case is chosen (any of them), default only when none is ready, and a
        chosen send case on a closed channel panics. Applies the choice."""
        ready = [i for i, c in enumerate(cases) if c is not None and c.ready()]
        if outcome == CLOSED:
            assert any(cases[i].panics() for i in ready), \
                f"ChanClosedError from {cases}, but no send case on a closed channel"
            return
        assert outcome[0] == "ok" and isinstance(outcome[1], tuple) and len(outcome[1]) == 2, \
            f"select over {cases} gave {outcome}"
        i, v = outcome[1]
        assert 0 <= i < len(cases), f"select over {cases} gave index {i}"
        if cases[i] is None:
            assert not ready, f"default chosen although cases {ready} of {cases} are ready"
            assert v is None
            return
        assert i in ready, f"case {i} ({cases[i]}) fired but was not ready; ready: {ready}"
        assert not cases[i].panics(), f"{cases[i]} completed on a closed channel"
        want = self.complete(cases[i])
        assert same(v, want), f"{cases[i]} gave {v!r}, the model says {want!r}"

    def close_model(self, ch):
        """Go's closechan: every receiver wakes with the zero value and
        ok=False (receivers first), then every sender panics."""
        ch.closed = True
        while ch.recvq:
            self.wake_first(ch, ch.recvq, lambda c: ("ok", c.shape(None, False)))
        while ch.sendq:
            self.wake_first(ch, ch.sendq, lambda c: CLOSED)

    # ---- waiting for goroutines

    def wait_probe(self, pred, what):
        go(prober(pred, self.probe))
        if not self.probe.blocking_recv():
            raise AssertionError(f"{what} not reached in {WAIT_S}s\n{gocore.dump_goroutines()}")

    def collect_reports(self, need, early_ok=False):
        """Block until every waiter in need has reported (bounded). A report
        from a waiter the model still counts as blocked fails at once,
        unless early_ok (a spawned operation's own effects are not known
        to the model before its report)."""
        while any(not w.reported for w in need):
            r = self.reports.try_recv()
            if r is None:
                timer = Timer(WAIT_S)
                i, wid = blocking_select(self.reports.recv, timer.c.recv)
                timer.stop()
                if i == 1:
                    late = [w for w in need if not w.reported]
                    raise AssertionError(f"waiters {late} did not finish in {WAIT_S}s\n"
                                         f"{gocore.dump_goroutines()}")
            else:
                wid = r[0]
            w = self.waiters[wid]
            w.reported = True
            assert early_ok or w.expected is not None, \
                f"{w} finished with {w.outcome} although the model says it still waits"

    def settle_woken(self):
        """Wait for every waiter the model has completed; check each saw
        what Go gives it, and that no pending waiter woke."""
        done = [w for w in self.waiters.values() if w.expected is not None]
        self.collect_reports(done)
        for w in done:
            assert any(same(w.outcome, e) for e in w.expected), \
                f"{w} got {w.outcome}, the model expects one of {w.expected}"
        while (r := self.reports.try_recv()) is not None:
            self.waiters[r[0]].reported = True
        woke = [w for w in self.pending() if w.reported or w.finished]
        assert not woke, f"{woke} finished although the model says they still wait"
        for w in done:                   # forget finished waiters
            del self.waiters[w.id]

    def spawn(self, cases, plain, flavor):
        """Start a goroutine for the operation. If the model says it can
        proceed, check its outcome; else wait until it parks and enqueue it
        (Go: waiters are served in arrival order)."""
        w = Waiter(next(self.waiter_ids), cases, plain, flavor)
        self.waiters[w.id] = w
        if flavor == "async":
            go(waiter_async(w, self.reports))
        else:
            go(waiter_sync, w, self.reports)
        # Either way, first wait until it has finished or parked: one that
        # parks when the model says it proceeds (or the reverse) fails here
        self.wait_probe(lambda: w.finished or (w.goid is not None and is_parked(w.goid)),
                        f"{w} finished or parked")
        if any(c.ready() for c in cases):
            assert w.finished, f"{w} blocked although the model says it proceeds"
            self.collect_reports([w], early_ok=True)
            outcome = w.outcome
            if plain and outcome[0] == "ok":
                outcome = ("ok", (0, outcome[1]))
            w.expected = [w.outcome]      # its own outcome, checked here
            self.check_choice(cases, outcome)
        else:
            assert not w.finished, f"{w} completed ({w.outcome}) but the model says it blocks"
            for i, c in enumerate(cases):
                if not c.chan.nil:
                    (c.chan.sendq if c.is_send else c.chan.recvq).append((w, i))
        self.settle_woken()

    # ---- rules shared by both machines

    @rule(pick=CHAN_PICK, none=SEND_NONE)
    @checked_step
    def try_send(self, pick, none):
        """Go: `select { case ch <- v: default: }`; try_send additionally
        raises on a closed channel."""
        ch, v = self.pick(pick), self.new_value(none)
        case = Case(ch, SEND, v)
        try:
            sent = ch.real.try_send(v)
        except ChanClosedError:
            assert case.panics(), f"try_send on {ch} raised ChanClosedError"
            return
        assert not case.panics(), f"try_send on closed {ch} returned {sent}"
        assert sent is case.ready(), f"try_send on {ch} gave {sent}"
        if sent:
            self.complete(case)
        self.settle_woken()

    @rule(pick=CHAN_PICK)
    @checked_step
    def try_recv(self, pick):
        """Go: `select { case v, ok := <-ch: default: }`: None when nothing
        is ready, (value, True), or (None, False) once closed and drained."""
        ch = self.pick(pick)
        case = Case(ch, RECV_OK)
        got = ch.real.try_recv()
        if not case.ready():
            assert got is None, f"try_recv on {ch} gave {got!r}; nothing is ready"
            return
        want = self.complete(case)
        assert same(got, want), f"try_recv on {ch} gave {got!r}, the model says {want!r}"
        self.settle_woken()

    @rule(pick=CHAN_PICK)
    @checked_step
    def close(self, pick):
        """Go: closing a nil or closed channel panics; closing wakes every
        waiter (receivers get (None, False), senders panic)."""
        ch = self.pick(pick)
        try:
            ch.real.close()
        except ChanClosedError:
            assert ch.nil or ch.closed, f"close of open {ch} raised"
            return
        assert not (ch.nil or ch.closed), \
            f"close of {'nil' if ch.nil else 'closed'} {ch} did not raise"
        self.close_model(ch)
        self.settle_woken()

    @rule(pick=CHAN_PICK, kind=KIND, none=SEND_NONE)
    @checked_step
    def from_main(self, pick, kind, none):
        """main's own blocking_send/recv/recv_ok, on a channel where the
        model says it completes at once (main never parks here)."""
        for k in range(len(self.chans)):
            ch = self.chans[(pick + k) % len(self.chans)]
            case = Case(ch, kind, self.new_value(none) if kind == SEND else None)
            if case.ready():
                break
        else:
            return
        try:
            if kind == SEND:
                got = ch.real.blocking_send(case.value)
            elif kind == RECV:
                got = ch.real.blocking_recv()
            else:
                got = ch.real.blocking_recv_ok()
            outcome = ("ok", (0, got))
        except ChanClosedError:
            outcome = CLOSED
        self.check_choice([case], outcome)
        self.settle_woken()

    @precondition(lambda self: any(c.closed for c in self.chans))
    @rule(pick=st.integers(0, 7))
    @checked_step
    def range_closed(self, pick):
        """Go's `for v := range ch` on a closed channel: the buffered values
        in order, then the loop ends."""
        closed = [c for c in self.chans if c.closed]
        ch = closed[pick % len(closed)]
        got = list(ch.real)
        want = list(ch.buf)
        ch.buf.clear()
        assert same(got, want), f"for v in {ch} gave {got!r}, the model says {want!r}"

    @precondition(lambda self: any(c.closed for c in self.chans))
    @rule(pick=st.integers(0, 7), cap=st.integers(0, 3))
    @checked_step
    def renew(self, pick, cap):
        """Swap a closed channel (no waiter is left on it) for a new one, so
        that a close early in a run does not leave only closed channels."""
        closed = [i for i, c in enumerate(self.chans) if c.closed]
        i = closed[pick % len(closed)]
        self.chans[i] = ModelChan(f"c{next(self.names)}(cap={cap})", cap)

    @rule(pick=CHAN_PICK, kind=KIND, flavor=FLAVOR, none=SEND_NONE)
    @checked_step
    def spawn_op(self, pick, kind, flavor, none):
        """A goroutine sends or receives on a channel (a real one: on nilchan
        it would block for ever)."""
        if not self.room_for(flavor):
            return
        ch = self.chans[pick % len(self.chans)]
        self.spawn([Case(ch, kind, self.new_value(none) if kind == SEND else None)],
                   plain=True, flavor=flavor)

    # ---- invariants and teardown

    @invariant()
    @checked_step
    def lengths_match(self):
        """len(ch), ch.cap and ch.closed agree with the model after every step."""
        for ch in self.chans:
            real = (len(ch.real), ch.real.cap, ch.real.closed)
            model = (len(ch.buf), ch.cap, ch.closed)
            assert real == model, f"{ch}: len/cap/closed {real}, model {model}"
        assert (len(nilchan), nilchan.cap) == (0, 0)

    def teardown(self):
        """Close every open channel (each pending waiter must wake as Go's
        close says), then no goroutine may be left: main and the prober."""
        if self.broken:
            # the step's failure is what hypothesis reports: only release the
            # waiters (close wakes them all) and let them finish
            for ch in self.chans:
                try:
                    ch.real.close()
                except ChanClosedError:
                    pass
            try:
                self.collect_reports(list(self.waiters.values()))
            except AssertionError:
                pass
            return
        for ch in self.chans:
            if not ch.closed:
                ch.real.close()
                self.close_model(ch)
        self.settle_woken()
        assert not self.waiters, f"waiters left: {list(self.waiters.values())}"
        self.wait_probe(lambda: gocore.num_goroutine() == 2,
                        "num_goroutine() back to main + prober")


class ChannelMachine(ChannelWorld):
    """One channel (unbuffered or buffered, capacity 0..3) and nilchan:
    long FIFO chains of blocked senders and receivers, close with waiters,
    buffer + waiting senders, try_* and main's blocking calls."""

    @initialize(cap=st.integers(0, 3))
    def make_channel(self, cap):
        self.chans = [ModelChan(f"c{next(self.names)}(cap={cap})", cap)]


CASE = st.tuples(CHAN_PICK, KIND, SEND_NONE)


class SelectMachine(ChannelWorld):
    """Two or three channels of random capacity and nilchan: select from
    main with and without default, blocked selects in goroutines (one send
    case per channel in those, so the value a waker takes is determined),
    and the plain operations that fire or close them."""

    @initialize(caps=st.lists(st.integers(0, 2), min_size=2, max_size=3))
    def make_channels(self, caps):
        self.chans = [ModelChan(f"c{next(self.names)}(cap={c})", c) for c in caps]

    def build(self, spec):
        return [Case(self.pick(p), kind, self.new_value(none) if kind == SEND else None)
                for p, kind, none in spec]

    @rule(spec=st.lists(CASE, min_size=1, max_size=4), default_at=st.integers(0, 4),
          with_default=st.booleans())
    @checked_step
    def select_from_main(self, spec, default_at, with_default):
        """blocking_select from main: with default it never blocks; without,
        it is made only when the model says some case is ready."""
        cases = self.build(spec)
        if not with_default and not any(c.ready() for c in cases):
            with_default = True          # main would block for ever
        if with_default:
            cases.insert(min(default_at, len(cases)), None)
        real = [default if c is None else c.real_case() for c in cases]
        try:
            outcome = ("ok", blocking_select(*real))
        except ChanClosedError:
            outcome = CLOSED
        self.check_choice(cases, outcome)
        self.settle_woken()

    @rule(spec=st.lists(CASE, min_size=1, max_size=4), flavor=FLAVOR)
    @checked_step
    def spawn_select(self, spec, flavor):
        """A goroutine selects (no default): it proceeds at once or waits on
        every case's channel until one fires or a close wakes it."""
        if not self.room_for(flavor):
            return
        cases, sending_on = [], set()
        for c in self.build(spec):
            if c.is_send and not c.chan.nil:
                if id(c.chan) in sending_on:
                    continue                 # one send case per channel (see the class doc)
                sending_on.add(id(c.chan))
            cases.append(c)
        if all(c.chan.nil for c in cases):
            cases.append(Case(self.chans[0], RECV))   # a select on nil channels only never wakes
        self.spawn(cases, plain=False, flavor=flavor)


def run_machine(rt, machine):
    """All of the machine's examples (and any shrinking) inside one run()
    whose main goroutine is hypothesis itself; afterwards nothing is left."""
    saved = gocore.gomaxprocs()
    try:
        rt.run(run_state_machine_as_test, machine, settings=MACHINE_SETTINGS)
    finally:
        gocore.gomaxprocs(saved)
    assert gocore.num_goroutine() == 1


@pytest.mark.timeout(120)
def test_channel_machine(rt):
    """Send/recv/close/try_* and blocked waiters on one channel at a time."""
    run_machine(rt, ChannelMachine)


@pytest.mark.timeout(120)
def test_select_machine(rt):
    """select with and without default, and blocked selects, over 2-3
    channels and nilchan."""
    run_machine(rt, SelectMachine)
