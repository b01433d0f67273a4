"""A TLS echo server with a goroutine per connection (gocore.net TLS).

The TCP echo server of examples/echo_server.py with TLS on top: each
accepted Conn is wrapped by `net.tls_server(conn, context)`, and the handler
stays straight-line code.  TLS runs over memory buffers (ssl.MemoryBIO):
the ciphertext goes through the Conn's own reads and writes, so a goroutine
waiting for a TLS record parks on the netpoller and holds no thread.

    python examples/tls_echo.py --cert cert.pem --key key.pem [--addr 127.0.0.1:7443]
        serve until Ctrl-C; try it with
        `openssl s_client -connect 127.0.0.1:7443 -CAfile cert.pem`
    python examples/tls_echo.py --selftest
        make a CA and a certificate for "localhost" now (trustme if
        installed, else the openssl command), serve on a free port, run
        clients that verify the certificate and the hostname, check every
        byte, show that a wrong hostname is refused, and exit

gocore differences: Go's tls.Server(conn, config) is `net.tls_server(conn,
context)` with an ssl.SSLContext; the handshake runs on the first read or
write (or `await tc.handshake()`); a failed verification raises
ssl.SSLCertVerificationError.
"""
import argparse
import os
import ssl
import subprocess
import sys
import tempfile

from gocore import WaitGroup, go, net, run


async def handle(c: net.Conn, ctx: ssl.SSLContext) -> None:
    async with net.tls_server(c, ctx) as tc:        # close() sends close_notify
        try:
            while data := await tc.read(65536):     # the first read handshakes
                await tc.write(data)
        except (ssl.SSLError, ConnectionError):
            pass                                    # a client that failed verification, or reset


async def serve(ln: net.Listener, ctx: ssl.SSLContext) -> None:
    while True:
        try:
            c = await ln.accept()
        except net.ErrClosed:
            return
        go(handle, c, ctx)


async def main(addr: str, ctx: ssl.SSLContext) -> None:
    ln = net.listen("tcp", addr)
    print("listening on", ln.addr, "(TLS)", flush=True)
    try:
        await serve(ln, ctx)
    finally:
        ln.close()


# ---- --selftest ----------------------------------------------------------------

CLIENTS = 10
ROUNDS = 20


def make_certs(workdir: str) -> tuple[str, str, str]:
    """(ca.pem, cert.pem, key.pem) for "localhost", made now."""
    ca_pem, cert_pem, key_pem = (os.path.join(workdir, n) for n in ("ca.pem", "cert.pem", "key.pem"))
    try:
        import trustme
    except ImportError:
        trustme = None
    if trustme is not None:
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        ca.cert_pem.write_to_path(ca_pem)
        leaf.cert_chain_pems[0].write_to_path(cert_pem)
        leaf.private_key_pem.write_to_path(key_pem)
        return ca_pem, cert_pem, key_pem
    # A self-signed certificate is its own CA.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key_pem, "-out", cert_pem],
                   check=True, capture_output=True)
    return cert_pem, cert_pem, key_pem


async def client(addr: tuple, ctx: ssl.SSLContext, k: int, wg: WaitGroup, failures: list) -> None:
    try:
        c = await net.dial("tcp", addr)
        async with net.tls_client(c, ctx, server_hostname="localhost") as tc:
            for i in range(ROUNDS):
                msg = bytes([(k + i) % 251]) * (1 + (k * 997 + i * 131) % 40000)
                await tc.write(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = await tc.read(65536)
                    if not chunk:
                        raise EOFError("server closed early")
                    got += chunk
                if got != msg:
                    raise AssertionError(f"client {k} round {i}: echo differs")
    except Exception as e:
        failures.append(f"client {k}: {e!r}")
    finally:
        wg.done()


async def selftest(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    ln = net.listen("tcp", "127.0.0.1:0")
    print("listening on 127.0.0.1 (a free port), TLS")
    go(serve, ln, server_ctx)
    failures: list = []
    wg = WaitGroup()
    wg.add(CLIENTS)
    for k in range(CLIENTS):
        go(client, ln.addr, client_ctx, k, wg, failures)
    await wg.wait()
    print(f"{CLIENTS} TLS clients x {ROUNDS} messages of 1..40000 bytes: "
          + ("every byte echoed" if not failures else f"FAILED: {failures}"))

    # The certificate says "localhost": a client expecting another name refuses it.
    c = await net.dial("tcp", ln.addr)
    async with net.tls_client(c, client_ctx, server_hostname="example.com") as tc:
        try:
            await tc.handshake()
            refused = False
        except ssl.SSLCertVerificationError:
            refused = True
    print(f"a client expecting example.com refused the certificate: {refused}")
    ln.close()
    if failures or not refused:
        sys.exit(1)


def contexts(cert: str, key: str, ca: str | None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=ca)
    return server_ctx, client_ctx


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", default="127.0.0.1:7443", help="host:port to listen on")
    ap.add_argument("--cert", help="PEM certificate chain")
    ap.add_argument("--key", help="PEM private key")
    ap.add_argument("--selftest", action="store_true",
                    help="make certificates, serve, run verifying clients, exit")
    a = ap.parse_args()
    try:
        if a.selftest:
            with tempfile.TemporaryDirectory() as d:
                ca_pem, cert_pem, key_pem = make_certs(d)
                run(selftest, *contexts(cert_pem, key_pem, ca_pem))
        else:
            if not (a.cert and a.key):
                ap.error("serving needs --cert and --key (or try --selftest)")
            run(main, a.addr, contexts(a.cert, a.key, None)[0])
    except KeyboardInterrupt:
        pass
