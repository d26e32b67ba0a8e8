"""Starting the dashboard: the listen address, TLS, the token file and the URL to open.

Used by ``pydockerd-dashboard`` and by ``pydockerd --dashboard ADDR``. As the daemon does for
its TCP socket, a listener beyond loopback is refused without TLS; with TLS, browsers must
present a client certificate signed by the given CA.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from dashboard.app import create_app
from dashboard.security import is_loopback, new_token, write_token

DEFAULT_LISTEN = "127.0.0.1:2380"


class ListenError(ValueError):
    """The listen address or the TLS options cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class TLSFiles:
    cert: str
    key: str
    ca: str


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ListenError(f"invalid dashboard address {text!r}: want HOST:PORT, e.g. {DEFAULT_LISTEN}")
        return cls(host=host.strip("[]"), port=int(port))

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


def tls_context(files: TLSFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=files.ca)
    ctx.load_cert_chain(files.cert, files.key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def check_listen(address: ListenAddress, tls: TLSFiles | None) -> None:
    if not address.loopback and tls is None:
        raise ListenError(
            f"refusing to serve the dashboard on {address.host}:{address.port} without TLS: it gives root "
            f"on this host to whoever reaches it; listen on 127.0.0.1, or give --tlscert, --tlskey and "
            f"--tlscacert (client certificates)")


@dataclass
class Dashboard:
    """A started dashboard; ``url`` carries the token (in the fragment, never sent to servers)."""

    runner: web.AppRunner
    url: str
    token_file: Path

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_dashboard(engine_host: str, listen: str, token_dir: Path,
                          tls: TLSFiles | None = None) -> Dashboard:
    """Check the address, create the token, serve; ListenError/OSError when it cannot."""
    address = ListenAddress.parse(listen)
    check_listen(address, tls)
    ssl_context = tls_context(tls) if tls is not None else None
    token = new_token()
    token_file = write_token(token_dir, token)
    app = create_app(engine_host, token, secure=tls is not None, loopback_only=address.loopback)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, address.host, address.port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    port = address.port
    if port == 0:  # an ephemeral port (tests): the one the kernel chose
        port = int(runner.addresses[0][1])
    scheme = "https" if tls is not None else "http"
    return Dashboard(runner=runner, url=f"{scheme}://{address.url_host()}:{port}/#token={token}", token_file=token_file)
