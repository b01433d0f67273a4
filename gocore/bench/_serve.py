"""Run one echo server of the network benchmarks until killed.

    python path/to/gocore/bench/_serve.py SERVER [--host H] [--port P] [--gomaxprocs N]
        [--kind echo|http|tls] [--cert PEM --key PEM]

SERVER is one of `SERVERS` below; --kind picks the echo servers (E1, E4),
the HTTP servers (E2, E3: HTTP_SERVERS) or the TLS echo servers (E1T:
TLS_SERVERS, with --cert and --key).  Prints `@@LISTEN <port>` once the server
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

HTTP_SERVERS = {
    "gocore": "http_gocore",
    "asyncio-streams": "http_asyncio",
    "asyncio-proto": "http_asyncio",
    "uvloop-streams": "http_asyncio",
    "uvloop-proto": "http_asyncio",
    "gevent": "http_gevent",
    "trio": "http_trio",
}
TLS_SERVERS = {
    "gocore": "tls_gocore",
    "asyncio-streams": "tls_asyncio",
    "asyncio-proto": "tls_asyncio",
    "uvloop-streams": "tls_asyncio",
    "uvloop-proto": "tls_asyncio",
}
KINDS = {"echo": SERVERS, "http": HTTP_SERVERS, "tls": TLS_SERVERS}


def load(server, kind="echo"):
    name = KINDS[kind][server]
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
    ap.add_argument("--kind", choices=sorted(KINDS), default="echo")
    ap.add_argument("--cert", help="--kind tls: PEM certificate")
    ap.add_argument("--key", help="--kind tls: PEM private key")
    ap.add_argument("--probe", action="store_true",
                    help="only import the server's runtime and print its version")
    a = ap.parse_args(argv)
    if a.server not in KINDS[a.kind]:
        ap.error(f"no {a.kind} server {a.server!r}")
    mod = load(a.server, a.kind)
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
        if a.kind == "http":
            import http_common
            print("@@PARSER " + http_common.PARSER, flush=True)
        print("@@PROBE " + json.dumps({"version": version}), flush=True)
        return
    raise_nofile()
    kw = {}
    if a.kind == "tls":
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        kw["ctx"] = ctx
    if a.server == "gocore":
        mod.serve(a.server, a.host, a.port, ready, a.gomaxprocs, **kw)
    else:
        mod.serve(a.server, a.host, a.port, ready, **kw)


if __name__ == "__main__":
    main()
