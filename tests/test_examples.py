"""Every program of examples/ (the seed guide's Go programs on gocore) runs
as a subprocess of this interpreter, from outside the source tree, and
prints what it should: exactly where Go's output is deterministic, by
pattern where Go's order is not (issue 8).

Each example runs at gomaxprocs 1 and 2 (GOCORE_MAXPROCS), except the
memory measurement, which runs once.
"""
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
TIMEOUT = 30   # subprocess timeout; pytest-timeout below is the outer bound


def run_example(name, procs=None, timeout=TIMEOUT, args=()):
    env = dict(os.environ)
    env.pop("GOCORE_MAXPROCS", None)
    env.pop("PYTHONPATH", None)
    if procs is not None:
        env["GOCORE_MAXPROCS"] = str(procs)
    with tempfile.TemporaryDirectory() as cwd:  # outside the source tree
        return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                              text=True, env=env, cwd=cwd, timeout=timeout)


def ok(name, procs, args=(), timeout=TIMEOUT):
    p = run_example(name, procs, timeout, args)
    assert p.returncode == 0, f"{name} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert p.stderr == "", p.stderr
    return p.stdout.splitlines()


# ---- deterministic output: exact ------------------------------------------

EXACT = {
    "q04_sync_channel.py": ["Hello from goroutine!"],
    "q04_sync_mutex.py": [
        "Counter: 100",
        "two readers hold the RWMutex; a writer could lock: False",
        "readers gone; a writer could lock: True",
    ],
    "q05_channels.py": [f"Received: {i}" for i in range(1, 6)],
    "q06_unbuffered.py": ["Hello"],
    "q06_buffered.py": ["len 2, cap 2; a third send would block: True", "1", "2"],
    "q07_select.py": ["Received: from ch1", "Received: from ch2"],
    "q07_select_cases.py": [
        "no channel ready: default",
        "received 7 from ch1",
        "sent 42 to ch2",
        "ch3 gave None False (closed)",
    ],
    "q07_select_timeout.py": ["Received: fast reply", "Timeout"],
    "q13_closed_channel.py": [
        "1 True",
        "None False",
        "ChanClosedError: send on closed channel",
        "close of closed channel -> ChanClosedError: close of closed channel",
        "close of nil channel -> ChanClosedError: close of nil channel",
    ],
    "q13_nil_channel.py": ["Nil channel ignored", "merged sum: 520"],
    "q15_send_on_closed.py": [
        "ChanClosedError: send on closed channel",
        "try_send: ChanClosedError: send on closed channel",
        "consumer got: [1, 2, 3]",
    ],
    "q15_overusing_mutex.py": ["data (mutex):   10", "data (channel): 10"],
    "q15_buffer_size.py": [
        "Chan(1000): producer sent 100 items with no consumer; backlog len=100 cap=1000",
        "Chan(): producer sent 0 items with no consumer - the imbalance shows",
        "Chan() with a consumer: producer sent 100 items",
    ],
}

PROCS = [1, 2]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_output(name, procs):
    assert ok(name, procs) == EXACT[name]


# ---- nondeterministic order: patterns -------------------------------------

def in_order(lines, pred_groups):
    """lines split into consecutive groups, each an unordered set."""
    i = 0
    for group in pred_groups:
        assert sorted(lines[i:i + len(group)]) == sorted(group), (lines, group)
        i += len(group)
    assert i == len(lines), lines


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q00_say_hello(procs):
    lines = ok("q00_say_hello.py", procs)
    # Go: both goroutines print each iteration ~100 ms apart, in either order
    in_order(lines, [[f"Hello from goroutine {n} iteration {i}" for n in (1, 2)] for i in range(3)]
             + [["Main function ends"]])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q01_goroutines_vs_threads(procs):
    lines = ok("q01_goroutines_vs_threads.py", procs)
    in_order(lines, [[str(i), str(i)] for i in range(1, 6)])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q02_scheduler(procs):
    lines = ok("q02_scheduler.py", procs)
    assert lines[0] == f"GOMAXPROCS: {procs}"
    assert Counter(lines[1:-2]) == Counter(f"Goroutine {i} running" for i in range(10) for _ in range(2))
    assert lines[-2:] == ["goroutines alive: 11", "every goroutine ran: True"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q03_go_keyword(procs):
    assert sorted(ok("q03_go_keyword.py", procs)) == ["Hello from goroutine!", "Hello from main!"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q04_sync_waitgroup(procs):
    lines = ok("q04_sync_waitgroup.py", procs)
    in_order(lines, [[f"Worker {i} done" for i in (1, 2, 3)], ["All workers done"]])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q08_race_condition(procs):
    lines = ok("q08_race_condition.py", procs)
    m = re.fullmatch(r"Counter \(racy\):  (\d+) of 100000, lost (\d+)", lines[0])
    assert m and int(m[1]) + int(m[2]) == 100000 and int(m[1]) <= 100000, lines[0]
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    if gil:
        assert lines[1].startswith("note: GIL build")
    elif procs < 2:
        assert lines[1].startswith("note: gomaxprocs is 1")
    else:
        assert lines[1].startswith("note: free-threaded build")
    # the fixes are exact on every build
    assert lines[2:] == ["Counter (mutex):   100000", "Counter (channel): 100000",
                         "Counter (atomic):  100000"]


@pytest.mark.timeout(120)
@pytest.mark.skipif(getattr(sys, "_is_gil_enabled", lambda: True)(),
                    reason="updates are lost only where goroutines run Python in parallel: "
                           "free-threaded CPython")
def test_q08_racy_counter_loses_updates_on_a_free_threaded_build():
    """Issue 8: with gomaxprocs 2 on free-threaded CPython the racy
    `counter += 1` of q08 really loses updates, as Go's does (seen in 4 of
    5 runs here, ~42% lost); a run may still get lucky, so up to 8 runs."""
    losses = []
    for _ in range(8):
        lines = ok("q08_race_condition.py", 2)
        m = re.fullmatch(r"Counter \(racy\):  (\d+) of 100000, lost (\d+)", lines[0])
        assert m, lines[0]
        losses.append(int(m[2]))
        if losses[-1] > 0:
            break
    assert losses[-1] > 0, f"no update lost in {len(losses)} runs: {losses}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q09_waitgroup(procs):
    lines = ok("q09_waitgroup.py", procs)
    in_order(lines, [[f"Worker {i} starting" for i in (1, 2, 3)],
                     [f"Worker {i} done" for i in (1, 2, 3)],
                     ["All workers completed"], ["wg.go: all jobs completed"],
                     ["wg.done() without add(): ValueError"]])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q10_worker_pool(procs):
    lines = ok("q10_worker_pool.py", procs)
    work = [re.fullmatch(r"Worker ([123]) processing job (\d)", ln) for ln in lines[:5]]
    assert all(work), lines
    assert sorted(int(m[2]) for m in work) == [1, 2, 3, 4, 5]  # each job exactly once
    assert sorted(lines[5:]) == sorted(f"Result: {2 * j}" for j in range(1, 6))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q11_panic_recover(procs):
    p = run_example("q11_panic_recover.py", procs)
    assert p.returncode == 2, (p.stdout, p.stderr)   # Go's exit status for a panic
    assert sorted(p.stdout.splitlines()) == ["Main continues",
                                             "Recovered from panic: Something went wrong"]
    assert re.fullmatch(r"panic: Unrecovered panic \(raised in goroutine \d+\)\n", p.stderr), p.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q12_limit_concurrency(procs):
    lines = ok("q12_limit_concurrency.py", procs)
    in_order(lines, [["Task 1 running", "Task 2 running"], ["Task 3 running", "Task 4 running"],
                     ["Task 5 running"], ["most tasks running at once: 2"]])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q14_context_timeout(procs):
    lines = ok("q14_context_timeout.py", procs)
    assert sorted(lines) == [f"Task {i} canceled: context deadline exceeded" for i in (1, 2, 3)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q15_goroutine_leak(procs):
    lines = ok("q15_goroutine_leak.py", procs)
    assert lines[:5] == ["goroutines at start: 1", "goroutines after the leak: 2", "leak check: LEAK",
                         "the leaked goroutine in dump_goroutines():",
                         "goroutine 2 [chan receive]:"]
    assert re.fullmatch(r"\s+main\.<locals>\.leaky\(\.\.\.\)", lines[5])
    assert re.fullmatch(r"\s+\S*q15_goroutine_leak\.py:\d+", lines[6])
    # where it was created, what it waits on (issue 19)
    assert re.fullmatch(r"  created by main in goroutine 1", lines[7])
    assert re.fullmatch(r"\s+\S*q15_goroutine_leak\.py:\d+", lines[8])
    assert re.fullmatch(r"  waiting on chan 0x[0-9a-f]+ \(len 0, cap 0\): "
                        r"0 other receivers, 0 other senders waiting", lines[9])
    assert lines[10:] == ["after close(ch): 1", "with a worker waiting: 2",
                         "worker: stopped by Canceled('context canceled')",
                         "after cancel(): 1", "leak check: ok"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_q15_deadlock(procs):
    out = "\n".join(ok("q15_deadlock.py", procs))
    assert out.startswith("fatal error: all goroutines are asleep - deadlock!\n"
                          "goroutine 1 [running]: (main)\n")
    assert re.search(r"^goroutine \d+ \[chan receive\]:\n\s+main\.<locals>\.forgotten\(\.\.\.\)$",
                     out, re.M), out
    assert out.endswith("buffered send ok, received 1\nreceiver got 2\nsend with timeout: timed out")


@pytest.mark.timeout(120)
def test_q16_memory_100k():
    lines = ok("q16_memory_100k.py", None)
    assert lines[0].startswith("RSS per parked goroutine / task / thread on this machine")
    num = r"[\d,]+"
    g = re.fullmatch(rf"gocore goroutines\s+100,000 started:\s+[\d.]+ MiB,\s+({num}) bytes each "
                     rf"\(channel {num} \+ gocore {num}\)", lines[1])
    a = re.fullmatch(rf"asyncio tasks\s+100,000 started:\s+[\d.]+ MiB,\s+({num}) bytes each "
                     rf"\(future {num} \+ asyncio {num}\)", lines[2])
    t = re.fullmatch(rf"OS threads\s+2,000 started:\s+[\d.]+ MiB,\s+({num}) bytes each "
                     rf"\(lock -?{num} \+ thread {num}\); x 100,000 = [\d.]+ GiB \(extrapolated, linear\)",
                     lines[3])
    assert g and a and t, lines
    per_g, per_t = (int(m[1].replace(",", "")) for m in (g, t))
    assert 0 < per_g < 8192, "a parked goroutine should take well under 8 KiB"
    assert per_t > per_g, "an OS thread should cost more than a goroutine"
    assert lines[-2].startswith("the guide's claim for Go")


# ---- network examples (gocore.net) ------------------------------------------

def _has_net():
    try:
        from gocore import net  # noqa: F401
    except ImportError:
        return False
    return True


needs_net = pytest.mark.skipif(not _has_net(), reason="gocore.net is not in this build")
NET_EXAMPLES = {"echo_server.py", "c100k.py"}
NET_EXAMPLES |= {"tls_echo.py"}
NET_EXAMPLES |= {"http_hello.py"}


@needs_net
@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_echo_server_selftest(procs):
    """The server of DESIGN §5 with its built-in client: 20 connections x 50
    messages of up to 8 KiB, every byte checked, and the idle timeout
    closing a silent client (not before its deadline)."""
    assert ok("echo_server.py", procs, args=["--selftest"]) == [
        "listening on 127.0.0.1 (a free port)",
        "20 clients x 50 messages of 1..8192 bytes: every byte echoed",
        "a silent client was closed by the server after its idle timeout: True",
    ]


@needs_net
@pytest.mark.timeout(120)
@pytest.mark.parametrize("conns", [2000, 10000])
def test_c100k_small(conns):
    """c100k at a small N (the full 100,000 needs an fd limit above the
    20,000 of CI machines, and a minute): the connections are held from
    client processes, a goroutine each, RSS per connection printed, a
    trickle served among them, and every handler returns once the clients
    hang up."""
    lines = ok("c100k.py", 1, args=["--conns", str(conns)], timeout=100)
    assert re.fullmatch(r"target [\d,]+ connections; RLIMIT_NOFILE soft [\d,]+ -> [\d,]+, hard [\d,]+",
                        lines[0]), lines
    held = re.fullmatch(r"holding ([\d,]+) connections, a goroutine each, from (\d+) client processes "
                        r"over 127\.0\.0\.2-127\.0\.0\.\d+ \(opened in [\d.]+ s\)", lines[1])
    assert held and int(held[1].replace(",", "")) == conns, lines
    assert int(held[2]) == -(-conns // 10000)
    rss = re.fullmatch(r"server RSS: [\d.]+ MiB before, [\d.]+ MiB with [\d,]+ connections: "
                       r"(-?[\d,]+) bytes per connection", lines[2])
    assert rss and 0 < int(rss[1].replace(",", "")) < 64 * 1024, lines
    assert re.fullmatch(r"x 100,000 connections = [\d,]+ MiB \(extrapolated, linear; --conns [\d,]+\)",
                        lines[3]), lines
    assert re.fullmatch(r"served \d+ requests among them: p50 [\d.]+ ms, p99 [\d.]+ ms", lines[4]), lines
    assert lines[5] == "clients hung up: every handler returned (0 left); client exit codes [0]", lines


@needs_net
@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_tls_echo_selftest(procs):
    """TLS echo with certificates made at run time (trustme, else the
    openssl command): 10 verifying clients x 20 messages, every byte
    checked, and a client expecting another hostname refused."""
    assert ok("tls_echo.py", procs, args=["--selftest"]) == [
        "listening on 127.0.0.1 (a free port), TLS",
        "10 TLS clients x 20 messages of 1..40000 bytes: every byte echoed",
        "a client expecting example.com refused the certificate: True",
    ]


@needs_net
@pytest.mark.timeout(60)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_http_hello_selftest(procs):
    """The HTTP/1.1 hello-world server with its built-in client: keep-alive
    requests (pipelined too), a connection per request, a request body,
    and a malformed request answered 400."""
    lines = ok("http_hello.py", procs, args=["--selftest"])
    assert lines[0] in ("parser: httptools", "parser: minimal (httptools is not installed)"), lines
    assert lines[1:] == [
        "listening on 127.0.0.1 (a free port)",
        "200 keep-alive requests on 4 connections (pipelined in pairs): all 200 Hello, World!",
        "50 requests with a new connection each: all 200 Hello, World!",
        "POST with a 10000-byte body: 200, echoed length 10000",
        "malformed request: 400, connection closed",
    ]


def test_every_example_is_tested():
    tested = set(EXACT) | {f"{n}.py" for n in (
        "q00_say_hello", "q01_goroutines_vs_threads", "q02_scheduler", "q03_go_keyword",
        "q04_sync_waitgroup", "q08_race_condition", "q09_waitgroup", "q10_worker_pool",
        "q11_panic_recover", "q12_limit_concurrency", "q14_context_timeout",
        "q15_goroutine_leak", "q15_deadlock", "q16_memory_100k")}
    present = {p.name for p in EXAMPLES.glob("q*.py")}
    assert present == tested
    assert NET_EXAMPLES <= {p.name for p in EXAMPLES.glob("*.py")}


def test_every_example_has_a_header():
    for p in EXAMPLES.glob("q*.py"):
        doc = p.read_text().split('"""')[1]
        assert "gocore differences" in doc or "gocore" in doc, p.name


def _importable(*mods):
    import importlib.util
    return all(importlib.util.find_spec(m) is not None for m in mods)


@pytest.mark.skipif(not _importable("aiohttp", "httpx"), reason="aiohttp and httpx not installed")
@pytest.mark.timeout(90)
@pytest.mark.parametrize("procs", PROCS, ids=[f"procs{n}" for n in PROCS])
def test_aio_bridge_selftest(procs):
    """issue 18 item 3: an aiohttp server whose handlers hand work to
    goroutines over a Chan and await the reply; the goroutines fetch from
    it with httpx through aio.call. 200 concurrent requests, each checked."""
    assert ok("aio_bridge.py", procs, args=["--selftest"], timeout=80) == [
        "selftest: ok (200 requests)"]
