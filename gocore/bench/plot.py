"""python -m gocore.bench --plot FILE.png --json RUN.json [--json RUN2.json ...]

Draws benchmark runs as one chart: a panel per workload (B1..B11 of
`python -m gocore.bench --json`, E1/E1T/E2/E2W/E3/E4 of `--net --json`),
in each a horizontal bar per column (the median of its repetitions, with
the min-max range as an error bar): gocore's columns first, then every
peer, then Go.  A panel whose values span more than 20x gets a log scale.
Lower is better for times and bytes, higher for requests/s and speedups;
each panel's title says which.

Needs matplotlib (pip install 'gocore[plot]'); without it, says so and
exits 2.
"""

import argparse
import json
import statistics
import sys

GOCORE = "#1f77b4"
GO = "#2ca02c"
PEER = "#9a9a9a"


def _color(label):
    if label.startswith("gocore"):
        return GOCORE
    if label == "go":
        return GO
    return PEER


def _order(label):
    return (0 if label.startswith("gocore") else 2 if label == "go" else 1, label)


def panels(data):
    """[(title, better, {column: [values]})] from one run's JSON."""
    out = {}

    def add(key, title, better, col, v):
        p = out.setdefault(key, (title, better, {}))
        p[2].setdefault(col, []).append(v)

    try:
        from . import common as C
        wl = C.WORKLOADS
    except ImportError:
        wl = {}
    for r in data.get("runs", []):
        col = r.get("column", "?")
        if "workload" in r:                              # B workloads
            w = r["workload"]
            name, unit, higher, _ = wl.get(w, (w, r.get("unit", ""), False, ""))
            add((0, int(w[1:]) if w[1:].isdigit() else 0, w), f"{w} {name[len(w):] or name} ({unit})",
                "higher" if higher else "lower", col, r["metric"])
            continue
        t = r.get("test")
        if t == "E1":
            add((1, r["size"], r["conns"]), f"E1 echo {r['size']} B, {r['conns']} conns (req/s)",
                "higher", col, r["rps"])
        elif t == "E4":
            for s in r.get("steps", []):
                add((5, s["n"] if s["step"] != "max" else 10**9, 0),
                    f"E4 RSS per idle conn @{s['step']} (bytes)", "lower", col, s["per_conn"])
        elif t in ("E1T", "E2", "E2W", "E3"):
            names = {"E1T": "E1T TLS echo", "E2": "E2 HTTP keep-alive", "E2W": "E2W HTTP + 50 us work",
                     "E3": "E3 HTTP conn per request"}
            add((2, ("E1T", "E2", "E2W", "E3").index(t), 0), f"{names[t]} (req/s)", "higher",
                col, r["rps"])
    return [out[k] for k in sorted(out)]


def draw(path, runs):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        print("--plot needs matplotlib: pip install 'gocore[plot]' (or pip install matplotlib)",
              file=sys.stderr)
        return 2
    ps = []
    for data in runs:
        ps += panels(data)
    if not ps:
        print("--plot: no runs in the given JSON", file=sys.stderr)
        return 2
    ncols = 3 if len(ps) > 4 else min(len(ps), 2)
    nrows = -(-len(ps) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 0.5 + 2.9 * nrows), squeeze=False)
    for ax, (title, better, cols) in zip(axes.flat, ps):
        labels = sorted(cols, key=_order)
        meds = [statistics.median(cols[lb]) for lb in labels]
        lo = [m - min(cols[lb]) for m, lb in zip(meds, labels)]
        hi = [max(cols[lb]) - m for m, lb in zip(meds, labels)]
        y = range(len(labels))
        ax.barh(y, meds, xerr=[lo, hi], color=[_color(lb) for lb in labels], capsize=2)
        ax.set_yticks(list(y))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        pos = [m for m in meds if m > 0]
        if pos and max(pos) / min(pos) > 20:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())   # decades only: no overlapping labels
        ax.set_title(f"{title}, {better} is better", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        for yi, m in zip(y, meds):
            ax.annotate(f"{m:,.0f}" if m >= 100 else f"{m:.3g}", (m, yi), xytext=(2, 0),
                        textcoords="offset points", va="center", fontsize=6)
    for ax in list(axes.flat)[len(ps):]:
        ax.axis("off")
    first = runs[0]
    fig.suptitle(f"gocore (blue) beside its peers (grey) and Go (green): python {first.get('python', '?')}, "
                 f"{first.get('cpus', '?')} CPUs, medians of {first.get('reps', '?')} runs", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path} ({len(ps)} panels)")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m gocore.bench --plot",
                                 description="Draw benchmark runs (--json files) as a chart.")
    ap.add_argument("--plot", metavar="FILE.png", required=True)
    ap.add_argument("--json", metavar="RUN.json", action="append", required=True,
                    help="a run of `python -m gocore.bench --json` or `--net --json` (repeatable)")
    a = ap.parse_args(argv)
    runs = []
    for p in a.json:
        with open(p) as f:
            runs.append(json.load(f))
    return draw(a.plot, runs)
