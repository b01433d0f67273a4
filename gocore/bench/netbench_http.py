"""python -m gocore.bench --net --tests E1T,E2,E2W,E3: TLS echo and HTTP.

E1T TLS echo: the E1 closed loop over TLS 1.3 (1 KiB, 10 connections by
default) against gocore's TLSConn and asyncio/uvloop's ssl= servers
(gocore/bench/tls_*.py).  The compiled echo client speaks no TLS, so the
load generator is gocore/bench/tls_client.go (Go's crypto/tls, built here
with `go build`, GOMAXPROCS=1, pinned to the client CPU); its CPU use is
reported to show it is not the bottleneck.
E2 HTTP/1.1 keep-alive hello world: `wrk -t1 -c CONNS --latency`.
E2W E2 with WORK_US (50) microseconds of pure-Python work per request in
every Python server; with --ft-python also on a free-threaded interpreter
(gocore at gomaxprocs 1 and 2 there: the scaling figure).  E2W's servers
are not pinned (a second processor can only help with a second core; on a
2-CPU machine they share the load generator's).
E3 a new connection per request: `ab -c CONNS -t SECONDS` (HTTP/1.0,
no keep-alive; the server closes each connection after its response).

Every Python server uses the same parser (gocore/bench/http_common.py:
httptools, else a minimal one, said in the output).  Go's peer is net/http
(gocore/bench/http_server.go) at GOMAXPROCS=1.  One fresh server process
per repetition, pinned to the server CPU, the load generator to the other;
medians of --reps; requests/s, p99, and the CPU the server and the load
generator used.  Missing tools are reported with what to install, never
installed.  Standard library only.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

if __package__:
    from . import netbench as NB
else:
    import netbench as NB

HTTP_TESTS = ("E1T", "E2", "E2W", "E3")
HTTP_SERVERS = ["gocore", "asyncio-proto", "asyncio-streams", "uvloop-proto", "uvloop-streams",
                "gevent", "trio", "go"]
TLS_SERVERS = ["gocore", "uvloop-proto", "uvloop-streams", "asyncio-proto", "asyncio-streams"]
# E2W on a free-threaded interpreter: the servers that can run there.
FT_SERVERS = ["gocore", "asyncio-proto", "asyncio-streams"]

# Issue 17's bars, gocore at gomaxprocs 1 unless said.
E2_TARGETS = [("uvloop-proto", 1.0), ("uvloop-streams", 1.5), ("go", 1.5)]
E2W_FT_SCALING = 1.6

SCALES = {
    "full": dict(conns=100, ab_conns=10, warmup=1.0, duration=5.0, tls_size=1024, tls_conns=10),
    "quick": dict(conns=10, ab_conns=4, warmup=0.0, duration=1.0, tls_size=1024, tls_conns=4),
}


class Col:
    def __init__(self, server, procs=0, python=None, tag=""):
        self.server, self.procs, self.python, self.tag = server, procs, python, tag
        base = f"gocore-{procs}" if server == "gocore" else server
        self.label = base + (f" [{tag}]" if tag else "")


def add_args(ap):
    """Options of these tests (netbench's parser)."""
    ap.add_argument("--http-conns", type=int, help="E2/E2W wrk connections (default 100)")
    ap.add_argument("--ab-conns", type=int, help="E3 ab concurrency (default 10)")
    ap.add_argument("--http-duration", type=float, help="E1T/E2/E2W/E3 seconds measured (default 5)")
    ap.add_argument("--work-us", type=float, default=50.0,
                    help="E2W pure-Python work per request, microseconds (default: %(default)s)")
    ap.add_argument("--ft-python", metavar="PYTHON",
                    help="E2W also on this free-threaded interpreter (gocore installed in it), "
                         "e.g. a venv's python3.13t")


# --- processes ---------------------------------------------------------------------

class Server:
    """One fresh server process (HTTP or TLS echo), pinned, listening."""

    def __init__(self, ctx, col, kind, env_extra=None, every_cpu=False):
        if col.server == "go":
            cmd = [ctx.go_http, f"{NB.HOST}:0"]
            env = dict(os.environ, GOMAXPROCS="1")
        else:
            cmd = [col.python or sys.executable, NB.SERVE, col.server, "--host", NB.HOST,
                   "--kind", kind]
            if col.procs:
                cmd += ["--gomaxprocs", str(col.procs)]
            if kind == "tls":
                cmd += ["--cert", ctx.cert, "--key", ctx.key]
            env = dict(os.environ)
            env.pop("GOCORE_MAXPROCS", None)
            env.update(env_extra or {})
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errfile, env=env,
                                     cwd=NB.BENCH_DIR,
                                     preexec_fn=None if every_cpu else NB.pinner(ctx.server_cpu))
        self.pid = self.proc.pid
        try:
            line = NB.LineReader(self.proc).readline(60, f"{col.label} server start")
            if not line.startswith("@@LISTEN "):
                raise NB.RunError(f"{col.label} server printed {line!r}")
            self.port = int(line.split()[1])
        except BaseException:
            self.stop()
            raise

    def stderr_tail(self):
        self.errfile.seek(0)
        return self.errfile.read().decode(errors="replace")[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def _measure(ctx, srv, cmd, timeout):
    """Run the load generator pinned to the client CPU; -> (stdout, wall,
    load generator CPU share, server CPU share)."""
    cpu0 = NB.cpu_seconds(srv.pid)
    ru0 = os.times()
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=NB.pinner(ctx.client_cpu))
    except subprocess.TimeoutExpired:
        raise NB.RunError(f"{os.path.basename(cmd[0])} timed out after {timeout:.0f} s") from None
    wall = time.monotonic() - t0
    ru1 = os.times()
    if srv.proc.poll() is not None:
        raise NB.RunError(f"server exited ({srv.proc.returncode}): {srv.stderr_tail()}")
    server_cpu = (NB.cpu_seconds(srv.pid) - cpu0) / wall
    gen_cpu = ((ru1.children_user - ru0.children_user)
               + (ru1.children_system - ru0.children_system)) / wall
    if p.returncode != 0:
        raise NB.RunError(f"{os.path.basename(cmd[0])} exited {p.returncode}: "
                          f"{(p.stderr or p.stdout).strip()[-1500:]}\nserver stderr: {srv.stderr_tail()}")
    return p.stdout, wall, gen_cpu, server_cpu


_UNIT = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def parse_wrk(out):
    """wrk --latency output -> rps, p50/p99 (us), errors."""
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not m:
        raise NB.RunError(f"no Requests/sec in wrk's output:\n{out}")
    res = {"rps": float(m.group(1))}
    for pct in ("50", "99"):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        res[f"p{pct}_us"] = float(m.group(1)) * _UNIT[m.group(2)] if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    return res


def parse_ab(out):
    m = re.search(r"Requests per second:\s*([\d.]+)", out)
    if not m:
        raise NB.RunError(f"no 'Requests per second' in ab's output:\n{out}")
    res = {"rps": float(m.group(1))}
    for pct in ("50", "99"):
        m = re.search(rf"^\s*{pct}%\s+(\d+)", out, re.M)
        res[f"p{pct}_us"] = float(m.group(1)) * 1000.0 if m else float("nan")  # ab: whole ms
    m = re.search(r"Complete requests:\s*(\d+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Failed requests:\s*(\d+)", out)
    res["failed"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx responses:\s*(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    return res


def run_http(ctx, col, test, args):
    env = {}
    if test == "E2W":
        env["GOCORE_BENCH_WORK_US"] = str(args.work_us)
        if ctx.e2w_minimal:
            env["GOCORE_BENCH_PARSER"] = "minimal"
    # E2W measures what a second processor buys: its servers may run on
    # every CPU (the load generator stays pinned to its own, which they share).
    srv = Server(ctx, col, "http", env, every_cpu=(test == "E2W"))
    try:
        url = f"http://{NB.HOST}:{srv.port}/"
        d = max(1, round(args.http_duration))      # wrk and ab take whole seconds
        w = round(args.http_warmup)
        if test == "E3":
            cmd = [ctx.ab, "-q", "-c", str(args.ab_conns), "-t", str(d), "-n", "10000000", url]
            if w:
                _measure(ctx, srv, [ctx.ab, "-q", "-c", str(args.ab_conns), "-n", "500", url], 60)
            out, wall, gen_cpu, server_cpu = _measure(ctx, srv, cmd, d + 60)
            res = parse_ab(out)
            if res["failed"] or res["non2xx"]:
                raise NB.RunError(f"ab: {res['failed']} failed, {res['non2xx']} non-2xx responses")
        else:
            base = [ctx.wrk, "-t1", "-c", str(args.http_conns), "--latency", "--timeout", "10s"]
            if w:
                _measure(ctx, srv, base + ["-d", f"{w}s", url], 60)
            out, wall, gen_cpu, server_cpu = _measure(ctx, srv, base + ["-d", f"{d}s", url], d + 60)
            res = parse_wrk(out)
            if res["non2xx"] or res["socket_errors"]:
                raise NB.RunError(f"wrk: {res['socket_errors']} socket errors, "
                                  f"{res['non2xx']} non-2xx responses")
        res.update(gen_cpu=gen_cpu, server_cpu=server_cpu)
        return res
    finally:
        srv.stop()


def run_tls(ctx, col, args):
    srv = Server(ctx, col, "tls")
    try:
        cmd = [ctx.tls_client, NB.HOST, str(srv.port), str(args.tls_conns), str(args.tls_size),
               f"{args.http_warmup:g}", f"{args.http_duration:g}", ctx.cert]
        out, wall, gen_cpu, server_cpu = _measure(ctx, srv, cmd, args.http_duration + 60)
        res = json.loads(out.strip().splitlines()[-1])
        res.update(gen_cpu=gen_cpu, server_cpu=server_cpu)
        return res
    finally:
        srv.stop()


# --- tools ---------------------------------------------------------------------------

def _go_build(src, out, workdir):
    go = shutil.which("go")
    if not go:
        return "no `go` on PATH (Debian: apt-get install golang-go)"
    env = dict(os.environ, GOPROXY="off", GOFLAGS="-mod=mod", GO111MODULE="auto")
    if "GOCACHE" not in env and not os.environ.get("HOME"):
        env["GOCACHE"] = os.path.join(workdir, "gocache")
    p = subprocess.run([go, "build", "-o", out, os.path.join(NB.BENCH_DIR, src)],
                       capture_output=True, text=True, cwd=workdir, env=env)
    return None if p.returncode == 0 else f"`go build {src}` failed: {p.stderr.strip()}"


def _make_cert(workdir):
    """A self-signed certificate for "localhost" (its own CA), made now."""
    openssl = shutil.which("openssl")
    if not openssl:
        return None, None, "no `openssl` command to make a certificate (Debian: apt-get install openssl)"
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    p = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, text=True)
    if p.returncode != 0:
        return None, None, f"openssl req failed: {p.stderr.strip()}"
    return cert, key, None


def _probe(python, server, kind):
    p = subprocess.run([python, NB.SERVE, server, "--probe", "--kind", kind], capture_output=True,
                       text=True, cwd=NB.BENCH_DIR, timeout=60)
    info, parser = None, None
    for line in p.stdout.splitlines():
        if line.startswith("@@PROBE ") and p.returncode == 0:
            info = json.loads(line[len("@@PROBE "):])
        elif line.startswith("@@PARSER "):
            parser = line[len("@@PARSER "):]
    if info is None:
        return None, ((p.stderr.strip() or "unknown error").splitlines() or ["?"])[-1]
    info["parser"] = parser
    return info, None


# --- output ----------------------------------------------------------------------------

def _cell(vals, fmt):
    return (fmt(NB.med(vals)) + NB.spread(vals)) if vals else "-"


def summary(args, tests, cols, cells, failed, notes):
    lines = []
    titles = {"E1T": f"E1T TLS echo: {args.tls_size} B messages, {args.tls_conns} connections "
                     "(load: Go crypto/tls client)",
              "E2": f"E2 HTTP/1.1 keep-alive hello world: wrk -t1 -c{args.http_conns}",
              "E2W": f"E2W: E2 with {args.work_us:g} us of pure-Python work per request",
              "E3": f"E3 a connection per request: ab -c{args.ab_conns} (HTTP/1.0, server closes)"}
    for t in tests:
        head = ["server", "requests/s", "p99", "server CPU", "req/s per server CPU-s",
                "load generator CPU"]
        rows = []
        for c in cols.get(t, []):
            key = (t, c.label)
            if key in failed:
                rows.append([c.label, "FAILED", "", "", "", ""])
                continue
            rs = cells.get(key, [])
            rows.append([c.label, _cell([r["rps"] for r in rs], NB.fmt_int),
                         _cell([r["p99_us"] / 1000 for r in rs], lambda v: f"{v:.2f} ms"),
                         _cell([r["server_cpu"] * 100 for r in rs], lambda v: f"{v:.0f}%"),
                         _cell([r["rps"] / r["server_cpu"] for r in rs if r["server_cpu"]], NB.fmt_int),
                         _cell([r["gen_cpu"] * 100 for r in rs], lambda v: f"{v:.0f}%")])
        lines += [titles[t] + " (medians)", NB.table(head, rows), ""]
    lines += targets(args, tests, cells)
    lines += notes
    lines.append("server CPU / load generator CPU: share of one core each used during the measured "
                 "run (the load generator near 100%: it, not the server, set the rate); req/s per "
                 "server CPU-s: the figure least moved by a busy machine.")
    return lines


def targets(args, tests, cells):
    def m(t, label, key="rps"):
        rs = cells.get((t, label), [])
        if key == "rps":
            return NB.med([r["rps"] for r in rs])
        return NB.med([r["rps"] / r["server_cpu"] for r in rs if r["server_cpu"]])
    out = ["Issue 17 targets:"]
    if args.scale == "quick":
        return out + ["  not evaluated at --quick scale", ""]
    if "E2" in tests:
        for key, what in (("rps", "requests/s"), ("cpu", "per server CPU-s")):
            g = m("E2", "gocore-1", key)
            for peer, bar in E2_TARGETS:
                p = m("E2", peer, key)
                out.append(f"  E2 gocore-1 vs {peer}, {what}: " + (f"{g / p:.2f}x (bar >= {bar}x): "
                           f"{'met' if g / p >= bar else 'NOT met'}" if g and p else "not measured"))
    if "E2W" in tests:
        for tag in ([""] + (["3.13t"] if args.ft_python else [])):
            sfx = f" [{tag}]" if tag else ""
            g1, g2 = m("E2W", "gocore-1" + sfx), m("E2W", "gocore-2" + sfx)
            out.append(f"  E2W{sfx} gocore-2 / gocore-1: " + (f"{g2 / g1:.2f}x" if g1 and g2 else "not measured")
                       + (f" (bar on 3.13t >= {E2W_FT_SCALING}x: {'met' if g1 and g2 and g2 / g1 >= E2W_FT_SCALING else 'NOT met'})"
                          if tag else ""))
    if "E1T" in tests:
        for key, what in (("rps", "requests/s"), ("cpu", "per server CPU-s")):
            g = m("E1T", "gocore-1", key)
            for peer in ("uvloop-proto", "uvloop-streams"):
                p = m("E1T", peer, key)
                out.append(f"  E1T TLS echo gocore-1 vs {peer}, {what}: " + (f"{g / p:.2f}x (bar >= 1.0x): "
                           f"{'met' if g / p >= 1.0 else 'NOT met'}" if g and p else "not measured"))
    return out + [""]


def report_runs(args, runs, settings):
    """Tables of an earlier run's --json (netbench --report)."""
    for k in ("http_conns", "ab_conns", "http_duration", "work_us", "tls_size", "tls_conns"):
        setattr(args, k, settings.get(k, getattr(args, k, None)))
    args.ft_python = any(r["column"].endswith("[3.13t]") for r in runs)
    tests, cols, cells = [], {}, {}
    for r in runs:
        t = r["test"]
        if t not in tests:
            tests.append(t)
        c = Col("x")
        c.label = r["column"]
        if c.label not in [x.label for x in cols.setdefault(t, [])]:
            cols[t].append(c)
        cells.setdefault((t, c.label), []).append(r)
    tests.sort(key=HTTP_TESTS.index)
    return summary(args, tests, cols, cells, {}, settings.get("notes", []))


# --- main -------------------------------------------------------------------------------

def run(args, tests):
    """Run the tests of this module; returns (exit status, raw runs)."""
    d = SCALES[args.scale]
    args.http_conns = args.http_conns or d["conns"]
    args.ab_conns = args.ab_conns or d["ab_conns"]
    args.http_duration = args.http_duration or d["duration"]
    args.http_warmup = d["warmup"]
    args.tls_size, args.tls_conns = d["tls_size"], d["tls_conns"]
    notes = []
    ctx = NB.Context()
    ctx.server_cpu, ctx.client_cpu, pin_note = NB.choose_cpus()
    workdir = tempfile.mkdtemp(prefix="gocore-httpbench.")
    ctx.wrk, ctx.ab = shutil.which("wrk"), shutil.which("ab")
    ctx.go_http = ctx.tls_client = None
    ctx.e2w_minimal = False
    try:
        if "E1T" in tests:
            ctx.cert, ctx.key, err = _make_cert(workdir)
            if err is None:
                exe = os.path.join(workdir, "tls_client")
                err = _go_build("tls_client.go", exe, workdir)
                ctx.tls_client = None if err else exe
            if err:
                notes.append(f"skipped E1T: {err}")
                tests = [t for t in tests if t != "E1T"]
        if any(t in tests for t in ("E2", "E2W")) and not ctx.wrk:
            notes.append("skipped E2/E2W: no `wrk` on PATH (Debian: apt-get install wrk)")
            tests = [t for t in tests if t not in ("E2", "E2W")]
        if "E3" in tests and not ctx.ab:
            notes.append("skipped E3: no `ab` on PATH (Debian: apt-get install apache2-utils)")
            tests = [t for t in tests if t != "E3"]
        if any(t in tests for t in ("E2", "E3")) and "go" in args.servers:
            exe = os.path.join(workdir, "http_server_go")
            err = _go_build("http_server.go", exe, workdir)
            if err:
                notes.append(f"skipped go (net/http): {err}")
            else:
                ctx.go_http = exe

        # Which servers can run, per kind and interpreter.
        cols, parsers, info = {}, {}, {}
        for t in tests:
            kind = "tls" if t == "E1T" else "http"
            names = TLS_SERVERS if t == "E1T" else HTTP_SERVERS
            interps = [(sys.executable, "")]
            if t == "E2W" and args.ft_python:
                interps.append((args.ft_python, "3.13t"))
            cl = []
            for python, tag in interps:
                for s in names:
                    if s not in args.servers:
                        continue
                    if tag and s not in FT_SERVERS:
                        continue
                    if s == "go":
                        if t in ("E2", "E3") and ctx.go_http:
                            cl.append(Col("go"))
                        continue
                    k = (python, s, kind)
                    if k not in info:
                        info[k] = _probe(python, s, kind)
                        got, err = info[k]
                        if got is None:
                            notes.append(f"skipped {s}{f' [{tag}]' if tag else ''} ({kind}): "
                                         f"not importable ({err})")
                        elif got.get("parser"):
                            parsers[(python, s)] = got["parser"]
                    if info[k][0] is None:
                        continue
                    if s == "gocore":
                        cl += [Col("gocore", p, python, tag) for p in args.gomaxprocs]
                    else:
                        cl.append(Col(s, 0, python, tag))
            cols[t] = cl
        if "E2W" in tests and args.ft_python:
            ft_parsers = {v for (py, s), v in parsers.items() if py == args.ft_python}
            if any(not v.startswith("httptools") for v in ft_parsers):
                ctx.e2w_minimal = True
                notes.append("E2W: httptools is not installed for the free-threaded interpreter, so "
                             "every server of E2W (both interpreters) uses the minimal parser")
        gil_parsers = {v for (py, s), v in parsers.items() if py == sys.executable}
        if gil_parsers:
            notes.append("parser in the Python servers of E2/E3: " + ", ".join(sorted(gil_parsers)))

        print(f"# gocore TLS/HTTP benchmarks: scale={args.scale}, reps={args.reps}; "
              + (pin_note or f"server on CPU {ctx.server_cpu}, load generator on CPU {ctx.client_cpu}"))
        sys.stdout.flush()
        cells, failed, raw = {}, {}, []
        for t in tests:
            for rep in range(args.reps):
                for c in cols[t]:
                    key = (t, c.label)
                    if key in failed:
                        continue
                    t0 = time.monotonic()
                    try:
                        res = run_tls(ctx, c, args) if t == "E1T" else run_http(ctx, c, t, args)
                    except NB.RunError as e:
                        failed[key] = str(e)
                        print(f"[{t} {rep + 1}/{args.reps}] {c.label}: FAILED", file=sys.stderr)
                        continue
                    cells.setdefault(key, []).append(res)
                    raw.append(dict(res, test=t, column=c.label, rep=rep))
                    print(f"[{t} {rep + 1}/{args.reps}] {c.label}: {res['rps']:,.0f} req/s, "
                          f"p99 {res['p99_us'] / 1000:.2f} ms, server CPU {res['server_cpu'] * 100:.0f}%, "
                          f"load generator CPU {res['gen_cpu'] * 100:.0f}% ({time.monotonic() - t0:.1f} s)",
                          file=sys.stderr)
        print()
        print("\n".join(summary(args, tests, cols, cells, failed, notes)))
        for k, err in failed.items():
            print(f"=== {k[0]} {k[1]} FAILED: {err}\n", file=sys.stderr)
        settings = {"http_conns": args.http_conns, "ab_conns": args.ab_conns,
                    "http_duration": args.http_duration, "work_us": args.work_us,
                    "tls_size": args.tls_size, "tls_conns": args.tls_conns,
                    "e2w_minimal_parser": ctx.e2w_minimal, "notes": notes}
        return (1 if failed else 0), raw, settings
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
