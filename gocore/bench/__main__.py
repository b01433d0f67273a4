"""python -m gocore.bench: compare gocore with asyncio, uvloop, trio, gevent
and threads on workloads B1..B11 (DESIGN.md §4).  `--net` runs the network
benchmarks E1, E4, E1T, E2, E2W and E3 instead (gocore/bench/netbench.py;
`--net --help`); `--plot FILE.png --json RUN.json` draws runs as a chart.

Every repetition of every (runtime, workload) pair runs in a fresh Python
process (gocore/bench/_one.py, started as a script so that a peer never
imports gocore).  The table shows the median of the repetitions and their
spread.  A failed self-check or a crash makes the exit status non-zero.

Uses the standard library only.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from . import common as C
from .common import cpu_name

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ONE = os.path.join(BENCH_DIR, "_one.py")
RUNTIMES = ["gocore", "asyncio", "uvloop", "trio", "gevent", "threads"]
PEERS = RUNTIMES[1:]


class Column:
    """One column of the table: a runtime, and for gocore a gomaxprocs."""

    def __init__(self, runtime, procs=0):
        self.runtime = runtime
        self.procs = procs
        # Go's benchmark names end in -GOMAXPROCS; only gocore has one.
        self.label = f"{runtime}-{procs}" if procs else runtime


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="python -m gocore.bench",
        description="Benchmark gocore against asyncio, uvloop, trio, gevent and threads "
                    "(--net: the network benchmarks E1 and E4, see --net --help).")
    ap.add_argument("--workloads", default=",".join(C.WORKLOADS),
                    help="comma-separated workload ids (default: all, B1..B11)")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES),
                    help="comma-separated runtimes (default: %(default)s)")
    ap.add_argument("--gomaxprocs", default="1,2",
                    help="gocore columns, one per value (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=None,
                    help="repetitions per cell, each in a fresh process (default 5; 1 with --quick)")
    ap.add_argument("--cell-time", type=float, default=20.0, metavar="SECONDS",
                    help="stop repeating a cell once its runs have taken this long, even "
                         "before --reps runs (at least one run; default: %(default)s; "
                         "0 = always --reps runs)")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes for a smoke run; timings are not meaningful")
    ap.add_argument("--go-format", action="store_true",
                    help="also print every run in Go's benchmark format, for benchstat")
    ap.add_argument("--json", metavar="FILE", help="write every run's result to FILE")
    ap.add_argument("--timeout", type=float, default=180.0,
                    help="seconds before one run counts as hung (default: %(default)s)")
    a = ap.parse_args(argv)
    a.scale = "quick" if a.quick else "full"
    if a.reps is None:
        a.reps = 1 if a.quick else 5
    a.workloads = [w.strip().upper() for w in a.workloads.split(",") if w.strip()]
    a.runtimes = [r.strip().lower() for r in a.runtimes.split(",") if r.strip()]
    bad = [w for w in a.workloads if w not in C.WORKLOADS] + \
          [r for r in a.runtimes if r not in RUNTIMES]
    if bad:
        ap.error(f"unknown workload or runtime: {', '.join(bad)}")
    try:
        a.gomaxprocs = [int(p) for p in a.gomaxprocs.split(",") if p.strip()]
    except ValueError:
        ap.error("--gomaxprocs takes integers, e.g. 1,2")
    if a.reps < 1 or any(p < 1 for p in a.gomaxprocs):
        ap.error("--reps and --gomaxprocs values must be at least 1")
    return a


def run_one(col, workload, scale, timeout):
    """Run one repetition in a fresh process; return (result dict, error text)."""
    cmd = [sys.executable, ONE, col.runtime, workload, "--scale", scale]
    if col.procs:
        cmd += ["--gomaxprocs", str(col.procs)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           cwd=BENCH_DIR)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s (hung, or a worker crashed)"
    for line in reversed(p.stdout.splitlines()):
        if p.returncode == 0 and line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT "):]), None
    err = (p.stderr.strip() or p.stdout.strip() or "no output")[-3000:]
    return None, f"exit status {p.returncode}\n{err}"


def probe(runtime, timeout):
    """Import a runtime the way _one.py does; return (info dict, error text)."""
    cmd = [sys.executable, ONE, runtime, "probe"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=BENCH_DIR)
    except subprocess.TimeoutExpired:
        return None, "import timed out"
    for line in p.stdout.splitlines():
        if p.returncode == 0 and line.startswith("@@PROBE "):
            return json.loads(line[len("@@PROBE "):]), None
    lines = (p.stderr.strip() or "unknown error").splitlines()
    return None, lines[-1]


# --- formatting ---------------------------------------------------------------

def fmt(v, unit):
    if unit == "speedup":
        return f"{v:.2f}x"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def summarize(values):
    """Median, and the spread as half the min-max range relative to the median."""
    med = statistics.median(values)
    half = (max(values) - min(values)) / 2
    return med, (half / abs(med) * 100 if med else 0.0)


def print_table(args, columns, cells, failed, notes):
    peer_cols = [c for c in columns if c.runtime != "gocore"]
    go_cols = [c for c in columns if c.runtime == "gocore"]
    with_ratio = bool(peer_cols and go_cols)
    head = ["workload", "unit"] + [c.label for c in columns]
    if with_ratio:
        head.append("gocore/best peer")
    rows = []
    for w in args.workloads:
        name, unit, higher, _ = C.WORKLOADS[w]
        row = [name, unit]
        meds = {}
        for c in columns:
            key = (c.label, w)
            if key in failed:
                row.append("FAILED")
            elif key in cells:
                values = [r["metric"] for r in cells[key]]
                med, spread = summarize(values)
                meds[c.label] = med
                mark = "*" if cells[key][0].get("note") else ""
                runs = f" (n={len(values)})" if len(values) < args.reps else ""
                spread = f" ±{spread:.0f}%" if len(values) > 1 else ""
                row.append(f"{fmt(med, unit)}{mark}{spread}{runs}")
            else:
                row.append("-")
        if with_ratio:
            pick = max if higher else min
            g = [meds[c.label] for c in go_cols if c.label in meds]
            p = [(meds[c.label], c.label) for c in peer_cols if c.label in meds]
            if g and p:
                best_peer, who = pick(p)
                row.append(f"{pick(g) / best_peer:.2f} vs {who}")
            else:
                row.append("-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]

    def line(cells):  # the two label columns flush left, figures flush right
        return "  ".join(x.ljust(wd) if i < 2 else x.rjust(wd)
                         for i, (x, wd) in enumerate(zip(cells, widths)))
    print(line(head))
    print(line(["-" * wd for wd in widths]))
    for r in rows:
        print(line(r))
    print()
    print(f"Cells: median of {args.reps} run(s), each in a fresh process (n=k: only k runs, "
          f"as they took over {args.cell_time:g} s);\n"
          "  ±: half the min-max range, relative to the median.")
    if go_cols:
        print("gocore-N: gocore with gomaxprocs(N).")
    if with_ratio:
        print("gocore/best peer: the best gocore column divided by the best peer of the row; "
              "below 1 gocore wins (B9 speedup: above 1 gocore wins).")
    for n in notes:
        print(n)


def print_go_format(args, columns, cells):
    print()
    print(f"goos: {sys.platform}")
    print(f"goarch: {platform.machine()}")
    print("pkg: gocore/bench")
    print(f"cpu: {cpu_name()}")
    for w in args.workloads:
        name, unit, _, _ = C.WORKLOADS[w]
        for c in columns:
            for r in cells.get((c.label, w), []):
                v, u = r["metric"], unit
                if unit == "s":  # one op is one whole run, as a Go benchmark reports it
                    v, u = v * 1e9, "ns/op"
                num = f"{v:.0f}" if u == "ns/op" and v >= 1000 else f"{v:.4g}"
                print(f"Benchmark{name}/{c.label} 1 {num} {u}")


def main(argv=None):
    if "--plot" in (sys.argv[1:] if argv is None else argv):
        # Draw earlier runs (--json files) as a chart: gocore/bench/plot.py.
        from . import plot
        return plot.main(argv)
    if "--net" in (sys.argv[1:] if argv is None else argv):
        # The network benchmarks (E1, E4) have their own runner and options.
        from . import netbench
        return netbench.main(argv)
    args = parse_args(argv)
    t_start = time.monotonic()

    # Which runtimes can run here?  Probe each in a fresh process.
    info, skipped = {}, []
    for rt in args.runtimes:
        got, err = probe(rt, 60)
        if got is None:
            skipped.append(f"skipped {rt}: not importable ({err})")
        else:
            info[rt] = got
    for s in skipped:
        print(s, file=sys.stderr)
    if skipped:
        print("  (pip install 'gocore[bench]' installs the peers)", file=sys.stderr)

    columns = []
    for rt in args.runtimes:
        if rt in info:
            if rt == "gocore":
                columns += [Column(rt, p) for p in args.gomaxprocs]
            else:
                columns.append(Column(rt))
    if not columns:
        print("nothing to run", file=sys.stderr)
        return 2

    warn = []
    if "gocore" in info and info["gocore"].get("source_tree"):
        warn.append(f"WARNING: gocore is imported from a source tree ({info['gocore']['path']});"
                    " results must come from the installed wheel.")
    for w in warn:
        print(w, file=sys.stderr)

    print(f"# gocore benchmarks: scale={args.scale}, reps={args.reps}")
    print(f"# python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.machine()}, {cpu_name()}, {os.cpu_count()} logical CPUs")
    versions = [f"{rt} {info[rt]['version']}" for rt in args.runtimes
                if rt in info and rt not in ("asyncio", "threads")]
    if versions:
        print("# " + ", ".join(versions))
    sys.stdout.flush()

    cells, failed, raw, spent = {}, {}, [], {}
    for w in args.workloads:
        for rep in range(args.reps):
            for c in columns:
                key = (c.label, w)
                if key in failed:
                    continue
                if args.cell_time and spent.get(key, 0.0) >= args.cell_time:
                    continue  # enough time spent on this cell: keep its runs so far
                t0 = time.monotonic()
                res, err = run_one(c, w, args.scale, args.timeout)
                took = time.monotonic() - t0
                spent[key] = spent.get(key, 0.0) + took
                if res is None:
                    failed[key] = err
                    print(f"[{w} {rep + 1}/{args.reps}] {c.label}: FAILED ({took:.1f} s)",
                          file=sys.stderr)
                    continue
                cells.setdefault(key, []).append(res)
                raw.append(dict(res, column=c.label, rep=rep))
                print(f"[{w} {rep + 1}/{args.reps}] {c.label}: "
                      f"{fmt(res['metric'], res['unit'])} {res['unit']} ({took:.1f} s)",
                      file=sys.stderr)

    notes = []
    for (label, w), rs in sorted(cells.items()):
        if rs[0].get("note"):
            notes.append(f"* {label} {w}: {rs[0]['note']}.")
    print()
    print_table(args, columns, cells, failed, notes + skipped + warn)
    if args.go_format:
        print_go_format(args, columns, cells)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"scale": args.scale, "reps": args.reps, "python": platform.python_version(),
                       "cpu": cpu_name(), "cpus": os.cpu_count(), "versions": info,
                       "runs": raw, "failed": {f"{k[0]} {k[1]}": v for k, v in failed.items()}},
                      f, indent=1)
    print(f"\n# total {time.monotonic() - t_start:.0f} s")
    if failed:
        print(file=sys.stderr)
        for (label, w), err in failed.items():
            print(f"=== {w} on {label} FAILED: {err}\n", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
