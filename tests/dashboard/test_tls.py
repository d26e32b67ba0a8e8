"""Beyond loopback the dashboard needs TLS, and browsers a client certificate signed by the CA."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from dashboard.server import TLSFiles, start_dashboard

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=test CA", cwd=tmp_path)
    (tmp_path / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (tmp_path / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=tmp_path)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=tmp_path)
    return tmp_path


async def _status_line(port: int, ctx: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    writer.write(b"GET /api/containers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await writer.drain()
    line = await reader.readline()
    writer.close()
    return line


async def test_tls_listener_requires_a_client_certificate(pki: Path, tmp_path: Path) -> None:
    files = TLSFiles(cert=str(pki / "server.pem"), key=str(pki / "server.key"), ca=str(pki / "ca.pem"))
    dashboard = await start_dashboard("unix:///nonexistent.sock", "127.0.0.1:0", tmp_path / "tok", files)
    try:
        assert dashboard.url.startswith("https://127.0.0.1:")
        port = int(dashboard.url.split(":")[2].split("/")[0])
        with_cert = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with_cert.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
        # through TLS, the token is still needed
        assert (await _status_line(port, with_cert)).startswith(b"HTTP/1.1 401")
        without_cert = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionResetError, asyncio.IncompleteReadError)):
            line = await _status_line(port, without_cert)
            if not line:  # TLS 1.3: the refusal arrives after the handshake, as a closed stream
                raise ConnectionResetError("closed without an answer")
    finally:
        await dashboard.stop()
