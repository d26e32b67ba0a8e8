"""``pydockerd-dashboard``: serve the dashboard for an engine (pydockerd or any dockerd)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from dashboard.server import DEFAULT_LISTEN, ListenError, TLSFiles, start_dashboard

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
DEFAULT_TOKEN_DIR = "/run/pydockerd/dashboard"  # under pydockerd's default exec root


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pydockerd-dashboard",
                                description="The pydockerd web dashboard, a client of the Docker Engine API.")
    p.add_argument("-H", "--host", default=os.environ.get("DOCKER_HOST", DEFAULT_ENGINE),
                   help=f"the engine: unix:///path or tcp://host:port (default $DOCKER_HOST or {DEFAULT_ENGINE})")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN})")
    p.add_argument("--token-dir", default=DEFAULT_TOKEN_DIR,
                   help=f"where the access token is written, 0600 (default {DEFAULT_TOKEN_DIR})")
    p.add_argument("--tlscert", help="TLS certificate (required beyond loopback)")
    p.add_argument("--tlskey", help="TLS key")
    p.add_argument("--tlscacert", help="CA that signs the browsers' client certificates")
    return p


async def _serve(args: argparse.Namespace) -> None:
    tls = None
    if args.tlscert or args.tlskey or args.tlscacert:
        if not (args.tlscert and args.tlskey and args.tlscacert):
            raise ListenError("TLS needs all of --tlscert, --tlskey and --tlscacert")
        tls = TLSFiles(cert=args.tlscert, key=args.tlskey, ca=args.tlscacert)
    dashboard = await start_dashboard(args.host, args.listen, Path(args.token_dir), tls)
    print(f"pydockerd dashboard for {args.host}: open {dashboard.url}", flush=True)
    print(f"(the token is also in {dashboard.token_file})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await dashboard.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args))
    except (ListenError, ValueError, OSError) as exc:
        print(f"pydockerd-dashboard: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
