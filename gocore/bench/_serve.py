"""Run one echo server of the network benchmarks until killed.

    python path/to/gocore/bench/_serve.py SERVER [--host H] [--port P] [--gomaxprocs N]

SERVER is one of `SERVERS` below.  Prints `@@LISTEN <port>` once the server
accepts connections, then serves until the runner kills it.  Like _one.py it
is started as a script, one fresh process per run, so a peer never imports
gocore.  The soft RLIMIT_NOFILE is raised to the hard limit first (E4 holds
as many connections as that allows); Go's runtime does the same by itself.
"""

import argparse
import importlib
import resource
import sys

# server name -> module with serve(name, host, port, ready)
SERVERS = {
    "gocore": "echo_gocore",
    "asyncio-streams": "echo_asyncio",
    "asyncio-proto": "echo_asyncio",
    "uvloop-streams": "echo_asyncio",
    "uvloop-proto": "echo_asyncio",
    "gevent": "echo_gevent",
    "trio": "echo_trio",
    "threads": "echo_threads",
}


def load(server):
    name = SERVERS[server]
    if __package__:
        return importlib.import_module(f"{__package__}.{name}")
    return importlib.import_module(name)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def ready(port):
    print(f"@@LISTEN {port}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("server", choices=sorted(SERVERS))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--gomaxprocs", type=int, default=0)
    ap.add_argument("--probe", action="store_true",
                    help="only import the server's runtime and print its version")
    a = ap.parse_args(argv)
    mod = load(a.server)
    if a.probe:
        import json
        from importlib import metadata
        dist = a.server.split("-")[0]
        try:
            version = metadata.version(dist) if dist not in ("asyncio", "threads") else sys.version.split()[0]
        except metadata.PackageNotFoundError:
            version = "?"
        # Import what the server needs, so a missing peer fails the probe.
        needs = {"uvloop": "uvloop", "gevent": "gevent.server", "trio": "trio",
                 "gocore": "gocore.net"}
        if dist in needs:
            importlib.import_module(needs[dist])
        print("@@PROBE " + json.dumps({"version": version}), flush=True)
        return
    raise_nofile()
    if a.server == "gocore":
        mod.serve(a.server, a.host, a.port, ready, a.gomaxprocs)
    else:
        mod.serve(a.server, a.host, a.port, ready)


if __name__ == "__main__":
    main()
