"""Starting the dashboard: listen addresses, the loopback rule, the token file."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.server import ListenAddress, ListenError, start_dashboard

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("text, host, port", [
    ("127.0.0.1:2380", "127.0.0.1", 2380), ("[::1]:2380", "::1", 2380), ("localhost:1", "localhost", 1)])
def test_listen_address_parse(text: str, host: str, port: int) -> None:
    addr = ListenAddress.parse(text)
    assert (addr.host, addr.port, addr.loopback) == (host, port, True)


@pytest.mark.parametrize("text", ["2380", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"])
def test_listen_address_refuses(text: str) -> None:
    with pytest.raises(ListenError):
        ListenAddress.parse(text)


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", "192.0.2.1:2380"])
async def test_non_loopback_without_tls_is_refused(listen: str, tmp_path: Path) -> None:
    with pytest.raises(ListenError, match="without TLS"):
        await start_dashboard("unix:///nonexistent.sock", listen, tmp_path)
    assert not (tmp_path / "dashboard.token").exists()


async def test_token_file_is_private_and_in_the_url(tmp_path: Path) -> None:
    dashboard = await start_dashboard("unix:///nonexistent.sock", "127.0.0.1:0", tmp_path / "exec")
    try:
        mode = dashboard.token_file.stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
        token = dashboard.token_file.read_text().strip()
        assert len(token) >= 40
        assert dashboard.url.startswith("http://127.0.0.1:") and dashboard.url.endswith(f"/#token={token}")
    finally:
        await dashboard.stop()


def test_cli_refuses_a_public_listener_without_tls(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "dashboard", "--listen", "0.0.0.0:2380", "--token-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 1
    assert "refusing to serve the dashboard on 0.0.0.0:2380 without TLS" in proc.stderr
