"""Run one workload once on one runtime and print its result as JSON.

    python path/to/gocore/bench/_one.py RUNTIME WORKLOAD [--scale full|quick]
                                        [--gomaxprocs N]
    python path/to/gocore/bench/_one.py RUNTIME probe

(`probe` only imports the runtime and prints its version, for the runner.)

The runner (python -m gocore.bench) starts this file as a script, one fresh
process per repetition, so that a peer's numbers are never affected by
importing gocore (or another peer) and every run starts from the same
memory state.  `python -m gocore.bench._one ...` works too.

The last line of output is `@@RESULT {json}`.  A failed self-check or any
other error exits non-zero with the traceback on stderr.
"""

import argparse
import gc
import importlib
import json
import os
import platform
import sys
import threading
from importlib import metadata

try:
    from . import common as C
except ImportError:  # run as a script
    import common as C

# runtime name -> module implementing the workloads for it
MODULES = {
    "gocore": "w_gocore",
    "asyncio": "w_asyncio",
    "uvloop": "w_asyncio",
    "trio": "w_trio",
    "gevent": "w_gevent",
    "threads": "w_threading",
}


def load(runtime):
    name = MODULES[runtime]
    if __package__:
        return importlib.import_module(f"{__package__}.{name}")
    return importlib.import_module(name)


def probe(runtime):
    """Import the runtime as a run would, and describe it (for the runner)."""
    load(runtime).setup(runtime, 0)
    info = {"version": platform.python_version()}
    if runtime in ("gocore", "uvloop", "trio", "gevent"):
        m = sys.modules[runtime]
        try:
            info["version"] = metadata.version(runtime)
        except metadata.PackageNotFoundError:
            info["version"] = getattr(m, "__version__", "?")
        info["path"] = os.path.dirname(os.path.abspath(m.__file__))
        if runtime == "gocore":
            # Results must come from the installed wheel, not a checkout.
            root = os.path.dirname(info["path"])
            info["source_tree"] = any(os.path.exists(os.path.join(root, f))
                                      for f in ("setup.py", "pyproject.toml"))
    print("@@PROBE " + json.dumps(info), flush=True)


def _die_on_thread_error(args):
    # An exception escaping a worker thread would otherwise leave the
    # workload waiting forever; fail the run at once instead.
    sys.__excepthook__(args.exc_type, args.exc_value, args.exc_traceback)
    sys.stderr.flush()
    os._exit(3)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runtime", choices=sorted(MODULES))
    ap.add_argument("workload", choices=list(C.WORKLOADS) + ["probe"])
    ap.add_argument("--scale", choices=list(C.PARAMS), default="full")
    ap.add_argument("--gomaxprocs", type=int, default=0)
    a = ap.parse_args(argv)

    if a.workload == "probe":
        return probe(a.runtime)
    threading.excepthook = _die_on_thread_error
    mod = load(a.runtime)
    mod.setup(a.runtime, a.gomaxprocs)

    params = dict(C.PARAMS[a.scale][a.workload])
    note = None
    limit = getattr(mod, "LIMITS", {}).get(a.scale, {}).get(a.workload)
    if limit:
        key = C.SIZE_KEY[a.workload]
        full = params[key]
        params.update(limit)
        note = f"{key}={params[key]:,} instead of {full:,}"

    gc.collect()
    metric = float(mod.WORKLOADS[a.workload](**params))
    unit = C.WORKLOADS[a.workload][1]
    if note and unit == "s":
        # A run time, not a per-unit figure: extrapolate linearly to full size.
        key = C.SIZE_KEY[a.workload]
        metric *= C.PARAMS[a.scale][a.workload][key] / params[key]
        note += ", time extrapolated linearly"
    result = {"runtime": a.runtime, "workload": a.workload, "scale": a.scale,
              "gomaxprocs": a.gomaxprocs, "metric": metric, "unit": unit,
              "params": params, "note": note}
    print("@@RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
