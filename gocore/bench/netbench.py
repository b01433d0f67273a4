"""python -m gocore.bench --net: echo servers under one compiled client (E1, E4).

E1 echo: closed-loop echo of SIZE-byte messages over CONNS connections;
requests per second and latency percentiles, measured by the client.
E4 idle: connections opened in steps and held idle; the server's RSS per
connection at each step (and a least-squares line through them, to show the
growth is linear and to extrapolate to 100,000), and the latency of a
trickle of requests among the idle connections.

Servers (DESIGN.md §5): gocore (a goroutine per connection, one column per
gomaxprocs), asyncio and uvloop (streams and Protocols), gevent, trio, a
thread per connection, and Go's net (GOMAXPROCS=1).  Each server is
gocore/bench/echo_*.py run by _serve.py as a script (or echo_server.go built
with `go build`), one fresh process per repetition.  The client is
echo_client.c, built here with `cc -O2`; server and client are pinned to
different CPUs.  What is missing (a peer not installed, no `go`, no `cc`)
is reported, never installed.

Uses the standard library only.
"""

import argparse
import json
import math
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

if __package__:
    from .common import cpu_name
else:
    from common import cpu_name

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SERVE = os.path.join(BENCH_DIR, "_serve.py")
HOST = "127.0.0.1"

PY_SERVERS = ["gocore", "asyncio-streams", "asyncio-proto", "uvloop-streams",
              "uvloop-proto", "gevent", "trio", "threads"]
SERVERS = PY_SERVERS + ["go"]
# What to install for a server that cannot be imported.
INSTALL_HINT = {"uvloop-streams": "uvloop", "uvloop-proto": "uvloop",
                "gevent": "gevent", "trio": "trio"}

# Issue 16's bars at gomaxprocs 1: (peer, minimum ratio gocore-1 / peer) for
# E1 1 KiB at 10 connections.
E1_TARGETS = [("uvloop-proto", 1.0), ("uvloop-streams", 1.3), ("go", 0.8)]
E4_TRICKLE_P99_MS = 10.0
E4_PER_CLIENT = 5000        # connections per client process (each has its own fd limit)
E4_SETTLE = 0.5             # seconds between the last round trip of a step and reading RSS
EXTRAPOLATE_TO = 100_000

SCALES = {
    "full": dict(sizes=[1024, 16384], conns=[10, 100, 1000], warmup=1.0, duration=2.0,
                 steps=["2500", "5000", "10000", "max"], trickle_at=["10000", "max"],
                 trickle_rate=200.0, trickle_seconds=3.0),
    "quick": dict(sizes=[1024], conns=[10], warmup=0.1, duration=0.3,
                  steps=["100", "200"], trickle_at=["200"],
                  trickle_rate=200.0, trickle_seconds=0.3),
}


class Column:
    """One server configuration: a server, and for gocore a gomaxprocs."""

    def __init__(self, server, procs=0):
        self.server = server
        self.procs = procs
        self.label = f"gocore-{procs}" if server == "gocore" else server


# --- options --------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="python -m gocore.bench --net",
        description="Echo (E1) and idle-connection (E4) benchmarks: gocore.net against "
                    "asyncio, uvloop, gevent, trio, threads and Go, under one compiled client.")
    ap.add_argument("--net", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tests", default="E1,E4",
                    help="any of E1, E4 (echo, idle connections), E1T (TLS echo), E2 (HTTP "
                         "keep-alive), E2W (E2 with pure-Python work per request), E3 (a "
                         "connection per request) (default: %(default)s)")
    ap.add_argument("--servers", default=None,
                    help="comma-separated servers; one named here that cannot run is an error, "
                         "while the default list skips what is missing (default: "
                         + ",".join(SERVERS) + ")")
    ap.add_argument("--gomaxprocs", default="1,2",
                    help="gocore columns, one per value (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=None,
                    help="fresh server processes per cell; the median is shown (default 5; 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run (well under 30 s): E1 1 KiB at 10 connections and E4 with "
                         "200 connections, short runs; figures are not meaningful")
    ap.add_argument("--sizes", help="E1 message sizes in bytes (default 1024,16384)")
    ap.add_argument("--conns", help="E1 connection counts (default 10,100,1000)")
    ap.add_argument("--warmup", type=float, help="E1 seconds before counting (default 1)")
    ap.add_argument("--duration", type=float, help="E1 seconds counted (default 2)")
    ap.add_argument("--steps", help="E4 connection counts held in turn by one server, "
                                    "'max' = as many as its fd limit allows "
                                    "(default 2500,5000,10000,max)")
    ap.add_argument("--trickle-at", help="E4 steps with a trickle (default 10000,max)")
    ap.add_argument("--trickle-rate", type=float, help="E4 trickle requests per second (default 200)")
    ap.add_argument("--trickle-seconds", type=float, help="E4 trickle length (default 3)")
    ap.add_argument("--syscalls", action="store_true",
                    help="instead of E1/E4: count each server's system calls per echoed request "
                         "with strace -c -f (first --sizes and --conns value; default 1 KiB, 10)")
    ap.add_argument("--json", metavar="FILE", help="write every run's result to FILE")
    ap.add_argument("--report", metavar="FILE",
                    help="run nothing: print the tables of an earlier run's --json FILE")
    ap.add_argument("--markdown", action="store_true", help="with --report: markdown tables")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds before one run counts as hung (default: %(default)s)")
    _http().add_args(ap)
    a = ap.parse_args(argv)
    a.scale = "quick" if a.quick else "full"
    d = SCALES[a.scale]
    if a.reps is None:
        a.reps = 1 if a.quick else 5

    def ints(text, default, what):
        if text is None:
            return list(default)
        try:
            v = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            ap.error(f"{what} takes integers, e.g. 10,100")
        if not v or any(x < 1 for x in v):
            ap.error(f"{what} values must be at least 1")
        return v

    a.sizes = ints(a.sizes, d["sizes"], "--sizes")
    a.conns = ints(a.conns, d["conns"], "--conns")
    a.gomaxprocs = ints(a.gomaxprocs, [], "--gomaxprocs")
    for k in ("warmup", "duration", "trickle_rate", "trickle_seconds"):
        if getattr(a, k) is None:
            setattr(a, k, d[k])
        if getattr(a, k) < 0 or (k != "warmup" and getattr(a, k) == 0):
            ap.error(f"--{k.replace('_', '-')} must be positive")
    a.steps = [s.strip() for s in a.steps.split(",")] if a.steps else list(d["steps"])
    a.trickle_at = ([s.strip() for s in a.trickle_at.split(",")] if a.trickle_at
                    else list(d["trickle_at"]))
    for s in a.steps:
        if s != "max" and not (s.isdigit() and int(s) > 0):
            ap.error("--steps takes positive integers or 'max'")
    a.trickle_at = [s for s in a.trickle_at if s in a.steps]
    a.tests = [t.strip().upper() for t in a.tests.split(",") if t.strip()]
    a.servers_named = a.servers is not None
    a.servers = [s.strip().lower() for s in (a.servers or ",".join(SERVERS)).split(",") if s.strip()]
    bad = ([t for t in a.tests if t not in ("E1", "E4") + _http().HTTP_TESTS]
           + [s for s in a.servers if s not in SERVERS])
    if bad:
        ap.error(f"unknown test or server: {', '.join(bad)} (servers: {', '.join(SERVERS)})")
    if a.reps < 1:
        ap.error("--reps must be at least 1")
    return a


def _http():
    """The TLS and HTTP tests (netbench_http.py), imported when needed."""
    if __package__:
        from . import netbench_http
    else:
        import netbench_http
    return netbench_http


# --- processes --------------------------------------------------------------------

class LineReader:
    """Lines from a child's stdout pipe, with a deadline (select + os.read)."""

    def __init__(self, proc):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def readline(self, timeout, what):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunError(f"{what}: no answer within {timeout:.0f} s")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    raise RunError(f"{what}: exited (status {self.proc.wait()})")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


class RunError(Exception):
    """One run failed: its figures must not be reported."""


def pinner(cpu):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RunError(f"no {field} in /proc/{pid}/status")


def rss_bytes(pid):
    return proc_status(pid, "VmRSS") * 1024


def cpu_seconds(pid):
    """User + system CPU time of a process and all its threads so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def nofile_hard(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                hard = line.split()[4]
                return None if hard == "unlimited" else int(hard)
    return None


class Server:
    """One fresh server process, pinned to the server CPU, listening."""

    def __init__(self, ctx, col):
        if col.server == "go":
            cmd = [ctx.go_server, f"{HOST}:0"]
            env = dict(os.environ, GOMAXPROCS="1")
        else:
            cmd = [sys.executable, SERVE, col.server, "--host", HOST]
            if col.procs:
                cmd += ["--gomaxprocs", str(col.procs)]
            env = dict(os.environ)
            env.pop("GOCORE_MAXPROCS", None)
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errfile,
                                     env=env, cwd=BENCH_DIR, preexec_fn=pinner(ctx.server_cpu))
        self.pid = self.proc.pid
        try:
            line = LineReader(self.proc).readline(60, f"{col.label} server start")
            if not line.startswith("@@LISTEN "):
                raise RunError(f"{col.label} server printed {line!r}")
            self.port = int(line.split()[1])
            self.ping()
        except BaseException:
            self.stop()
            raise

    def ping(self):
        """One echo round trip from here: the server works, and its accept
        and read paths are warm before any measurement."""
        with socket.create_connection((HOST, self.port), timeout=10) as s:
            msg = b"gocore-bench-ping" * 8
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        if got != msg:
            raise RunError("the server did not echo the ping")

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RunError(f"server exited with status {self.proc.returncode}")

    def stderr_tail(self):
        self.errfile.seek(0)
        return self.errfile.read().decode(errors="replace")[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


# --- E1 ---------------------------------------------------------------------------

def run_e1(ctx, col, size, conns, args):
    srv = Server(ctx, col)
    try:
        cmd = [ctx.client, "e1", HOST, str(srv.port), str(conns), str(size),
               str(args.warmup), str(args.duration), "2", "16"]
        cpu0 = cpu_seconds(srv.pid)
        ru0 = os.times()
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                           preexec_fn=pinner(ctx.client_cpu))
        wall = time.monotonic() - t0
        ru1 = os.times()
        srv.check_alive()
        server_cpu = cpu_seconds(srv.pid) - cpu0
        if p.returncode != 0:
            raise RunError(f"client: {p.stderr.strip() or p.stdout.strip()}\n"
                           f"server stderr: {srv.stderr_tail()}")
        res = json.loads(p.stdout.strip().splitlines()[-1])
        client_cpu = (ru1.children_user - ru0.children_user) + (ru1.children_system - ru0.children_system)
        res["client_cpu"] = client_cpu / wall       # fraction of one CPU
        res["server_cpu"] = server_cpu / wall
        # Requests per second of CPU the server got: on a shared machine the
        # server may not get its whole core, and this is the figure least
        # moved by that (the CPU share is averaged over the whole client run).
        res["rps_per_cpu"] = res["rps"] / res["server_cpu"] if res["server_cpu"] else 0.0
        return res
    except subprocess.TimeoutExpired:
        raise RunError(f"client timed out after {args.timeout:.0f} s") from None
    finally:
        srv.stop()


# --- system calls per request (strace -c -f) --------------------------------------------

def run_syscalls(ctx, col, size, conns, seconds):
    """Attach `strace -c -f` to a fresh server (after its start-up), run E1
    for `seconds` with no warm-up, detach, and return the server's system
    calls per echoed request.  strace slows the server a lot; the counts per
    request are still what its code does per message (epoll_wait batches a
    little differently when slower: with 10 connections, by at most 10)."""
    srv = Server(ctx, col)
    out = os.path.join(ctx.workdir, f"strace-{col.label}.txt")
    try:
        st = subprocess.Popen([ctx.strace, "-c", "-f", "-q", "-o", out, "-p", str(srv.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # attached to every thread by now
        if st.poll() is not None:
            raise RunError(f"strace failed: {st.stderr.read().decode(errors='replace').strip()}")
        p = subprocess.run([ctx.client, "e1", HOST, str(srv.port), str(conns), str(size), "0",
                            str(seconds), "2", "16"], capture_output=True, text=True,
                           timeout=seconds + 120, preexec_fn=pinner(ctx.client_cpu))
        st.send_signal(signal.SIGINT)
        st.wait(60)
        if p.returncode != 0:
            raise RunError(f"client: {p.stderr.strip()}")
        requests = json.loads(p.stdout.strip().splitlines()[-1])["requests"]
        calls = {}
        with open(out) as f:
            for line in f:
                t = line.split()
                if len(t) in (5, 6) and t[-1] != "total" and t[3].isdigit():
                    calls[t[-1]] = (int(t[3]), int(t[4]) if len(t) == 6 else 0)
        return {"requests": requests, "calls": calls}
    finally:
        srv.stop()


def syscalls_summary(results):
    labels = list(results)
    names = sorted({n for r in results.values() for n in r["calls"]},
                   key=lambda n: -max(r["calls"].get(n, (0, 0))[0] / max(r["requests"], 1)
                                      for r in results.values()))
    head = ["syscall"] + [f"{lb} calls/req" for lb in labels]
    rows = []
    for n in names:
        per = [results[lb]["calls"].get(n, (0, 0)) for lb in labels]
        if all(c / max(results[lb]["requests"], 1) < 0.001 for lb, (c, _) in zip(labels, per)):
            continue  # start-up or housekeeping noise
        rows.append([n] + [f"{c / max(results[lb]['requests'], 1):.3f}"
                           + (f" ({e / max(results[lb]['requests'], 1):.3f} err)" if e else "")
                           for lb, (c, e) in zip(labels, per)])
    rows.append(["total"] + [f"{sum(c for c, _ in results[lb]['calls'].values()) / max(results[lb]['requests'], 1):.3f}"
                             for lb in labels])
    rows.append(["requests"] + [fmt_int(results[lb]["requests"]) for lb in labels])
    return ["System calls per echoed request (strace -c -f attached after start-up; "
            "rows under 0.001/request left out)", table(head, rows), ""]


# --- E4 ---------------------------------------------------------------------------

class HoldClient:
    """One `echo_client hold` process: opens and holds connections on command."""

    def __init__(self, ctx, port, index):
        self.proc = subprocess.Popen(
            [ctx.client, "hold", HOST, str(port), str(2 + 8 * index), "8"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=pinner(ctx.client_cpu))
        self.reader = LineReader(self.proc)
        self.held = 0

    def send(self, line):
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise RunError(f"client died: {self.stderr()}") from None

    def answer(self, timeout, what):
        try:
            return self.reader.readline(timeout, what)
        except RunError as e:
            raise RunError(f"{e}; client stderr: {self.stderr()}") from None

    def stderr(self):
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace").strip()

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
                self.proc.wait(10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def percentile(sorted_values, p):
    """Nearest-rank percentile (as the client computes its own)."""
    if not sorted_values:
        return float("nan")
    k = max(1, min(len(sorted_values), math.ceil(p / 100 * len(sorted_values))))
    return sorted_values[k - 1]


def linear_fit(xs, ys):
    """Least squares y = a + b x; returns (a, b, r2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if n < 2 or sxx == 0:
        return my, float("nan"), float("nan")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    return a, b, (1 - ss_res / ss_tot) if ss_tot else 1.0


def max_conns(srv):
    """The most connections this server process can hold: its hard fd limit
    (soft was raised to it) minus the fds it holds before any connection,
    minus a margin of 8 for fds a runtime opens on the way (so that no
    server is measured while failing accept with EMFILE)."""
    hard = nofile_hard(srv.pid)
    if hard is None:
        hard = 1 << 20
    return hard - open_fds(srv.pid) - 8, hard


def run_e4(ctx, col, args):
    srv = Server(ctx, col)
    clients = []
    try:
        time.sleep(E4_SETTLE)
        base_rss = rss_bytes(srv.pid)
        base_fds = open_fds(srv.pid)
        nmax, hard = max_conns(srv)
        targets = []
        for s in args.steps:
            n = nmax if s == "max" else int(s)
            if n > nmax:
                n = nmax  # cannot hold more: the step becomes the limit
            if not targets or n > targets[-1][1]:
                targets.append((s, n))
        steps = []
        held = 0
        for name, n in targets:
            # Enough client processes for n, each below E4_PER_CLIENT.
            need = math.ceil(n / E4_PER_CLIENT)
            while len(clients) < need:
                clients.append(HoldClient(ctx, srv.port, len(clients)))
            add = n - held
            per = [add // len(clients) + (1 if i < add % len(clients) else 0)
                   for i in range(len(clients))]
            t0 = time.monotonic()
            for c, k in zip(clients, per):
                if k:
                    c.send(f"open {k}")
            for c, k in zip(clients, per):
                if k:
                    line = c.answer(args.timeout, f"opening {k} connections")
                    if not line.startswith("held "):
                        raise RunError(f"client said {line!r}")
                    c.held = int(line.split()[1])
            held = sum(c.held for c in clients)
            if held != n:
                raise RunError(f"held {held} connections, wanted {n}")
            open_s = time.monotonic() - t0
            time.sleep(E4_SETTLE)
            srv.check_alive()
            rss = rss_bytes(srv.pid)
            fds = open_fds(srv.pid)
            if fds - base_fds < n:
                raise RunError(f"the server holds {fds - base_fds} fds for {n} connections")
            step = {"step": name, "n": n, "rss": rss, "per_conn": (rss - base_rss) / n,
                    "open_s": open_s}
            if name in args.trickle_at:
                rate = args.trickle_rate / len(clients)
                for c in clients:
                    c.send(f"trickle {rate} {args.trickle_seconds}")
                lat = []
                for c in clients:
                    line = c.answer(args.trickle_seconds + 60, "trickle")
                    parts = line.split()
                    if parts[0] != "trickle":
                        raise RunError(f"client said {line!r}")
                    if int(parts[1]):
                        lat += [float(x) for x in parts[2].split(",")]
                lat.sort()
                if not lat:
                    raise RunError("the trickle completed no request")
                step.update(trickle_n=len(lat), trickle_p50_us=percentile(lat, 50),
                            trickle_p99_us=percentile(lat, 99), trickle_max_us=lat[-1])
                srv.check_alive()
            steps.append(step)
        a, b, r2 = linear_fit([s["n"] for s in steps], [s["rss"] for s in steps])
        return {"base_rss": base_rss, "base_fds": base_fds, "fd_hard_limit": hard,
                "nmax": nmax, "clients": len(clients), "steps": steps,
                "fit_intercept": a, "fit_slope": b, "fit_r2": r2,
                "extrapolated_rss": a + b * EXTRAPOLATE_TO}
    except RunError as e:
        raise RunError(f"{e}\nserver stderr: {srv.stderr_tail()}") from None
    finally:
        for c in clients:
            c.stop()
        srv.stop()


# --- tools and servers available ----------------------------------------------------

def build_tools(args, workdir):
    """Build the client (cc) and Go's server (go build); say what is missing."""
    notes = []
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return None, None, ["no C compiler (cc, gcc or clang) on PATH: the load generator "
                            "(gocore/bench/echo_client.c) cannot be built; install one "
                            "(Debian: apt-get install gcc)"]
    client = os.path.join(workdir, "echo_client")
    p = subprocess.run([cc, "-O2", "-o", client, os.path.join(BENCH_DIR, "echo_client.c")],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, None, [f"building echo_client.c with {cc} failed:\n{p.stderr}"]
    go_server = None
    if "go" in args.servers:
        go = shutil.which("go")
        if not go:
            notes.append("skipped go: no `go` on PATH (Debian: apt-get install golang-go)")
        else:
            env = dict(os.environ, GOPROXY="off", GOFLAGS="-mod=mod", GO111MODULE="auto")
            if "GOCACHE" not in env and not os.environ.get("HOME"):
                env["GOCACHE"] = os.path.join(workdir, "gocache")
            out = os.path.join(workdir, "echo_server_go")
            p = subprocess.run([go, "build", "-o", out, os.path.join(BENCH_DIR, "echo_server.go")],
                               capture_output=True, text=True, cwd=workdir, env=env)
            if p.returncode != 0:
                notes.append(f"skipped go: `go build echo_server.go` failed: {p.stderr.strip()}")
            else:
                go_server = out
                v = subprocess.run([go, "version"], capture_output=True, text=True).stdout.split()
                args.go_version = v[2] if len(v) > 2 else "?"
    return client, go_server, notes


def probe(server):
    p = subprocess.run([sys.executable, SERVE, server, "--probe"], capture_output=True,
                       text=True, cwd=BENCH_DIR, timeout=60)
    for line in p.stdout.splitlines():
        if p.returncode == 0 and line.startswith("@@PROBE "):
            return json.loads(line[len("@@PROBE "):]), None
    return None, ((p.stderr.strip() or "unknown error").splitlines() or ["?"])[-1]


class Context:
    pass


def choose_cpus():
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None, "no CPU pinning (sched_setaffinity unavailable)"
    if len(cpus) < 2:
        return None, None, "only one CPU available: server and client share it (not pinned)"
    return cpus[0], cpus[1], None


# --- output --------------------------------------------------------------------

def fmt_int(v):
    return f"{v:,.0f}"


def med(values):
    return statistics.median(values) if values else None


def spread(values):
    if len(values) < 2:
        return ""
    m = statistics.median(values)
    return f" ±{(max(values) - min(values)) / 2 / m * 100:.0f}%" if m else ""


MARKDOWN = False  # --markdown: tables as GitHub markdown (for bench/README.md)


def table(head, rows):
    if MARKDOWN:
        return "\n".join(["| " + " | ".join(map(str, head)) + " |",
                          "|" + "|".join("---" if i == 0 else "--:" for i in range(len(head))) + "|"]
                         + ["| " + " | ".join(map(str, r)) + " |" for r in rows])
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    out = ["  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                     for i, (x, w) in enumerate(zip(head, widths)))]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                             for i, (x, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def e1_summary(args, columns, e1):
    """E1 tables: requests/s and p99, one row per (size, conns)."""
    lines = []
    for metric, title in (("rps", "E1 echo: requests/s (median)"),
                          ("p99_us", "E1 echo: p99 latency in microseconds (median)"),
                          ("server_cpu", "E1 echo: CPU the server got, % of one core (median; "
                                         "below ~95%: the machine was busy or the server waited)"),
                          ("rps_per_cpu", "E1 echo: requests per second of server CPU (median)")):
        head = ["size/conns"] + [c.label for c in columns]
        rows = []
        for size in args.sizes:
            for conns in args.conns:
                row = [f"{size // 1024 if size % 1024 == 0 else size}{'K' if size % 1024 == 0 else 'B'}"
                       f"/{conns}"]
                for c in columns:
                    key = (c.label, size, conns)
                    if key in e1["failed"]:
                        row.append("FAILED")
                        continue
                    vals = [r[metric] * (100 if metric == "server_cpu" else 1)
                            for r in e1["cells"].get(key, [])]
                    row.append(f"{fmt_int(med(vals))}{spread(vals)}" if vals else "-")
                rows.append(row)
        lines += [title, table(head, rows), ""]
    # gocore / peer ratios, each gocore column against each peer.
    gcols = [c for c in columns if c.server == "gocore"]
    pcols = [c for c in columns if c.server != "gocore"]
    if gcols and pcols:
        head = ["requests/s ratio"] + [f"{g.label}/{p.label}" for g in gcols for p in pcols]
        rows = []
        for size in args.sizes:
            for conns in args.conns:
                row = [f"{size}B/{conns}"]
                for g in gcols:
                    gv = med([r["rps"] for r in e1["cells"].get((g.label, size, conns), [])])
                    for p in pcols:
                        pv = med([r["rps"] for r in e1["cells"].get((p.label, size, conns), [])])
                        row.append(f"{gv / pv:.2f}x" if gv and pv else "-")
                rows.append(row)
        lines += ["E1 gocore/peer ratios of requests/s (above 1: gocore serves more)",
                  table(head, rows), ""]
    hot = [f"{c.label} {size}B/{conns}: client {r['client_cpu'] * 100:.0f}% CPU"
           for (label, size, conns), rs in e1["cells"].items()
           for c in columns if c.label == label for r in rs[:1] if r["client_cpu"] > 0.9]
    if hot:
        lines.append("WARNING: the client was near 100% of its CPU (it may be the bottleneck): "
                     + "; ".join(hot))
    return lines


def e4_summary(args, columns, e4):
    lines = []
    step_names = []
    for c in columns:
        for r in e4["cells"].get(c.label, []):
            for s in r["steps"]:
                if s["step"] not in step_names:
                    step_names.append(s["step"])
    head = (["server"] + [f"B/conn @{s}" for s in step_names] + ["slope B/conn", "R^2",
            f"server RSS @{EXTRAPOLATE_TO // 1000}k (extrapolated)"]
            + [f"trickle p99 @{s}" for s in step_names if s in args.trickle_at])
    rows = []
    nmax_seen = set()
    for c in columns:
        if c.label in e4["failed"]:
            rows.append([c.label] + ["FAILED"] * (len(head) - 1))
            continue
        rs = e4["cells"].get(c.label, [])
        if not rs:
            continue
        row = [c.label]
        for name in step_names:
            vals = [s["per_conn"] for r in rs for s in r["steps"] if s["step"] == name]
            ns = {s["n"] for r in rs for s in r["steps"] if s["step"] == name}
            if name == "max":
                nmax_seen |= ns
            row.append(f"{fmt_int(med(vals))}{spread(vals)}" if vals else "-")
        row.append(fmt_int(med([r["fit_slope"] for r in rs])))
        row.append(f"{med([r['fit_r2'] for r in rs]):.4f}")
        row.append(f"{med([r['extrapolated_rss'] for r in rs]) / 2**20:,.0f} MiB")
        for name in step_names:
            if name in args.trickle_at:
                vals = [s["trickle_p99_us"] / 1000 for r in rs for s in r["steps"]
                        if s["step"] == name and "trickle_p99_us" in s]
                row.append(f"{med(vals):.2f} ms" if vals else "-")
        rows.append(row)
    lines += ["E4 idle connections: server RSS per connection (bytes, median), held in steps "
              "by one server process", table(head, rows)]
    if nmax_seen:
        lines.append(f"  'max' = the most the server's fd limit allows: N = {', '.join(map(fmt_int, sorted(nmax_seen)))}"
                     f" (hard RLIMIT_NOFILE {fmt_int(e4['hard'])}; 100,000 cannot be held here, "
                     "so that column is a linear extrapolation, not a measurement)")
    lines.append("  B/conn @N = (RSS with N held - RSS before any) / N; slope and R^2: least-squares "
                 "line through RSS at every step;")
    lines.append(f"  trickle: {args.trickle_rate:g} requests/s of 64 bytes for {args.trickle_seconds:g} s "
                 "on random idle connections, latency measured by the client.")
    lines.append("")
    return lines


def targets_summary(args, e1, e4):
    """Issue 16's bars at gomaxprocs 1: every cell, met or not."""
    lines = ["Issue 16 targets (gocore at gomaxprocs 1):"]
    g = "gocore-1"
    key = lambda label: (label, 1024, 10)
    gv = med([r["rps"] for r in e1["cells"].get(key(g), [])]) if e1 else None
    gc = med([r["rps_per_cpu"] for r in e1["cells"].get(key(g), [])]) if e1 else None
    for peer, bar in E1_TARGETS:
        pv = med([r["rps"] for r in e1["cells"].get(key(peer), [])]) if e1 else None
        pc = med([r["rps_per_cpu"] for r in e1["cells"].get(key(peer), [])]) if e1 else None
        if gv and pv:
            ratio = gv / pv
            lines.append(f"  E1 1 KiB @10 conns vs {peer}: {ratio:.2f}x requests/s (bar >= {bar}x): "
                         f"{'met' if ratio >= bar else 'NOT met'}; per second of server CPU "
                         f"{gc / pc:.2f}x: {'met' if gc / pc >= bar else 'NOT met'}")
        else:
            lines.append(f"  E1 1 KiB @10 conns vs {peer}: not measured")
    if e4:
        gr = e4["cells"].get(g, [])
        pr = e4["cells"].get("uvloop-proto", [])
        for name in ("10000", "max"):
            gvals = [s for r in gr for s in r["steps"] if s["step"] == name]
            pvals = [s for r in pr for s in r["steps"] if s["step"] == name]
            if gvals and pvals:
                gb, pb = med([s["per_conn"] for s in gvals]), med([s["per_conn"] for s in pvals])
                lines.append(f"  E4 RSS per idle conn @{name}: {gb:,.0f} B vs uvloop-proto "
                             f"{pb:,.0f} B (bar <=): {'met' if gb <= pb else 'NOT met'}")
            else:
                lines.append(f"  E4 RSS per idle conn @{name} vs uvloop-proto: not measured")
            tr = [s["trickle_p99_us"] / 1000 for s in gvals if "trickle_p99_us" in s]
            if tr:
                p99 = med(tr)
                lines.append(f"  E4 trickle p99 @{name}: {p99:.2f} ms (bar < {E4_TRICKLE_P99_MS:g} ms): "
                             f"{'met' if p99 < E4_TRICKLE_P99_MS else 'NOT met'}")
    return lines


def summary(args, columns, e1, e4):
    out = []
    if e1 is not None:
        out += e1_summary(args, columns, e1)
    if e4 is not None:
        out += e4_summary(args, columns, e4)
    if args.scale == "quick":
        out.append("Issue 16 targets: not evaluated at --quick scale (no 10,000-connection step, "
                   "timings not meaningful).")
    else:
        out += targets_summary(args, e1, e4)
    out.append("")
    out.append(f"Medians of {args.reps} fresh server process(es) per cell; ±: half the min-max "
               "range relative to the median.")
    if e1 is not None:
        out.append(f"E1: closed loop, {args.warmup:g} s warm-up then {args.duration:g} s counted; "
                   "every echoed byte checked by the client (echo_client.c).")
    out.append("gocore-N: gocore with gomaxprocs(N); go: Go's net at GOMAXPROCS=1; "
               "*-proto: asyncio Protocol servers, *-streams: start_server.")
    return out


def report(path, args):
    """Print the tables again from a --json file of an earlier run."""
    with open(path) as f:
        data = json.load(f)
    settings = data.get("settings", {})
    for k, v in settings.items():
        setattr(args, k, v)
    args.reps = data["reps"]
    args.scale = data.get("scale", "full")
    labels = []
    e1 = e4 = None
    sizes, conns = [], []
    http_runs = [r for r in data["runs"] if r["test"] in _http().HTTP_TESTS]
    for r in data["runs"]:
        if r["test"] in _http().HTTP_TESTS:
            continue
        if r["column"] not in labels:
            labels.append(r["column"])
        if r["test"] == "E1":
            r.setdefault("rps_per_cpu", r["rps"] / r["server_cpu"] if r["server_cpu"] else 0.0)
            e1 = e1 or {"cells": {}, "failed": {}}
            e1["cells"].setdefault((r["column"], r["size"], r["conns"]), []).append(r)
            sizes += [r["size"]] if r["size"] not in sizes else []
            conns += [r["conns"]] if r["conns"] not in conns else []
        else:
            e4 = e4 or {"cells": {}, "failed": {}, "hard": r["fd_hard_limit"]}
            e4["cells"].setdefault(r["column"], []).append(r)
            if "trickle_at" not in settings:
                args.trickle_at = sorted({s["step"] for s in r["steps"] if "trickle_p99_us" in s})
    args.sizes, args.conns = sorted(sizes), sorted(conns)
    columns = []
    for lb in labels:
        c = Column(lb)
        if lb.startswith("gocore-"):
            c = Column("gocore", int(lb.split("-")[1]))
        columns.append(c)
    print(f"# from {path}: python {data['python']}, {data['cpu']}, {data['cpus']} CPUs; "
          + ", ".join(f"{k} {v['version']}" for k, v in data.get("versions", {}).items())
          + (f", go {data['go']}" if data.get("go") else ""))
    if e1 is not None or e4 is not None:
        print("\n".join(summary(args, columns, e1, e4)))
    if http_runs:
        print("\n".join(_http().report_runs(args, http_runs, data.get("http_settings", {}))))
    for k, v in data.get("failed", {}).items():
        print(f"FAILED {k}: {v.splitlines()[0] if v else ''}")
    return 0


# --- main --------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    if args.report:
        global MARKDOWN
        MARKDOWN = args.markdown
        return report(args.report, args)
    http_tests = [t for t in args.tests if t in _http().HTTP_TESTS]
    args.tests = [t for t in args.tests if t not in http_tests]
    rc = 0
    if args.tests:
        rc = main_echo(args)
    if http_tests:
        rc2, raw, settings = _http().run(args, http_tests)
        rc = rc or rc2
        if args.json:
            data = {"scale": args.scale, "reps": args.reps, "python": platform.python_version(),
                    "cpu": cpu_name(), "cpus": os.cpu_count(), "runs": []}
            if args.tests and os.path.exists(args.json):
                with open(args.json) as f:
                    data = json.load(f)          # the E1/E4 part of this run
            data["runs"] += raw
            data["http_settings"] = settings
            with open(args.json, "w") as f:
                json.dump(data, f, indent=1)
    return rc


def main_echo(args):
    """E1 and E4."""
    t_start = time.monotonic()
    args.go_version = None
    skipped = []
    info = {}
    for s in args.servers:
        if s == "go":
            continue
        if s == "gocore" and not args.gomaxprocs:
            continue
        got, err = probe(s)
        if got is None:
            hint = INSTALL_HINT.get(s)
            skipped.append(f"skipped {s}: not importable ({err})"
                           + (f"; pip install {hint}" if hint else ""))
        else:
            info[s] = got
    if any(INSTALL_HINT.get(s) for s in args.servers if s not in info and s != "go"):
        skipped.append("  (pip install 'gocore[bench]' installs uvloop, gevent and trio)")

    workdir = tempfile.mkdtemp(prefix="gocore-netbench.")
    try:
        client, go_server, notes = build_tools(args, workdir)
        skipped += notes
        for s in skipped:
            print(s, file=sys.stderr)
        if client is None:
            return 2
        if args.servers_named and skipped:
            print("a server named in --servers cannot run (above)", file=sys.stderr)
            return 2
        ctx = Context()
        ctx.client, ctx.go_server = client, go_server
        ctx.workdir = workdir
        if args.syscalls:
            ctx.strace = shutil.which("strace")
            if not ctx.strace:
                print("--syscalls needs strace (Debian: apt-get install strace)", file=sys.stderr)
                return 2
        ctx.server_cpu, ctx.client_cpu, pin_note = choose_cpus()
        columns = []
        for s in args.servers:
            if s == "gocore" and s in info:
                columns += [Column(s, p) for p in args.gomaxprocs]
            elif s == "go" and go_server:
                columns.append(Column(s))
            elif s in info:
                columns.append(Column(s))
        if not columns:
            print("nothing to run", file=sys.stderr)
            return 2
        if "gocore" in info and _gocore_from_source_tree():
            print("WARNING: gocore is imported from a source tree; results must come from the "
                  "installed wheel.", file=sys.stderr)

        print(f"# gocore network benchmarks: scale={args.scale}, reps={args.reps}")
        print(f"# python {platform.python_version()}, {platform.system()} {platform.machine()}, "
              f"{cpu_name()}, {os.cpu_count()} logical CPUs; "
              + (pin_note or f"server on CPU {ctx.server_cpu}, client on CPU {ctx.client_cpu}"))
        versions = [f"{s} {info[s]['version']}" for s in ("gocore", "uvloop-proto", "gevent", "trio")
                    if s in info]
        if args.go_version:
            versions.append(f"go {args.go_version}")
        print("# " + ", ".join(v.replace("-proto", "") for v in versions))
        sys.stdout.flush()

        if args.syscalls:
            results = {}
            for c in columns:
                try:
                    results[c.label] = run_syscalls(ctx, c, args.sizes[0], args.conns[0],
                                                    max(args.duration, 3.0))
                except RunError as e:
                    print(f"{c.label}: FAILED: {e}", file=sys.stderr)
            print(f"E1 {args.sizes[0]} B, {args.conns[0]} connections")
            if results:
                print("\n".join(syscalls_summary(results)))
            return 0 if len(results) == len(columns) else 1

        raw = []
        e1 = {"cells": {}, "failed": {}} if "E1" in args.tests else None
        e4 = {"cells": {}, "failed": {}, "hard": None} if "E4" in args.tests else None
        if e1 is not None:
            for size in args.sizes:
                for conns in args.conns:
                    for rep in range(args.reps):
                        for c in columns:
                            key = (c.label, size, conns)
                            if key in e1["failed"]:
                                continue
                            t0 = time.monotonic()
                            try:
                                res = run_e1(ctx, c, size, conns, args)
                            except RunError as e:
                                e1["failed"][key] = str(e)
                                print(f"[E1 {size}B/{conns} {rep + 1}/{args.reps}] {c.label}: FAILED",
                                      file=sys.stderr)
                                continue
                            e1["cells"].setdefault(key, []).append(res)
                            raw.append(dict(res, test="E1", column=c.label, rep=rep))
                            print(f"[E1 {size}B/{conns} {rep + 1}/{args.reps}] {c.label}: "
                                  f"{res['rps']:,.0f} req/s, p99 {res['p99_us']:,.0f} us, client CPU "
                                  f"{res['client_cpu'] * 100:.0f}%, server CPU {res['server_cpu'] * 100:.0f}% "
                                  f"({time.monotonic() - t0:.1f} s)", file=sys.stderr)
        if e4 is not None:
            for rep in range(args.reps):
                for c in columns:
                    if c.label in e4["failed"]:
                        continue
                    t0 = time.monotonic()
                    try:
                        res = run_e4(ctx, c, args)
                    except RunError as e:
                        e4["failed"][c.label] = str(e)
                        print(f"[E4 {rep + 1}/{args.reps}] {c.label}: FAILED", file=sys.stderr)
                        continue
                    e4["hard"] = res["fd_hard_limit"]
                    e4["cells"].setdefault(c.label, []).append(res)
                    raw.append(dict(res, test="E4", column=c.label, rep=rep))
                    last = res["steps"][-1]
                    tr = [f"p99 {s['trickle_p99_us'] / 1000:.2f} ms @{s['n']:,}"
                          for s in res["steps"] if "trickle_p99_us" in s]
                    print(f"[E4 {rep + 1}/{args.reps}] {c.label}: "
                          + ", ".join(f"{s['per_conn']:,.0f} B/conn @{s['n']:,}" for s in res["steps"])
                          + (f"; trickle {', '.join(tr)}" if tr else "")
                          + f"; {last['n']:,} opened in {last['open_s']:.1f} s "
                          f"({time.monotonic() - t0:.1f} s)", file=sys.stderr)

        print()
        print("\n".join(summary(args, columns, e1, e4) + skipped))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"scale": args.scale, "reps": args.reps, "python": platform.python_version(),
                           "cpu": cpu_name(), "cpus": os.cpu_count(), "versions": info,
                           "go": args.go_version, "runs": raw,
                           "settings": {k: getattr(args, k) for k in (
                               "warmup", "duration", "trickle_rate", "trickle_seconds",
                               "trickle_at", "gomaxprocs")},
                           "failed": {**{f"E1 {k[0]} {k[1]}B/{k[2]}": v for k, v in (e1 or {}).get("failed", {}).items()},
                                      **{f"E4 {k}": v for k, v in (e4 or {}).get("failed", {}).items()}}},
                          f, indent=1)
        print(f"\n# total {time.monotonic() - t_start:.0f} s")
        failed = {**(e1 or {}).get("failed", {}), **(e4 or {}).get("failed", {})}
        if failed:
            print(file=sys.stderr)
            for k, err in failed.items():
                print(f"=== {k} FAILED: {err}\n", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _gocore_from_source_tree():
    p = subprocess.run([sys.executable, "-c", "import gocore, os; print(os.path.dirname(os.path.dirname(gocore.__file__)))"],
                       capture_output=True, text=True, cwd=BENCH_DIR)
    root = p.stdout.strip()
    return bool(root) and any(os.path.exists(os.path.join(root, f)) for f in ("setup.py", "pyproject.toml"))


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
