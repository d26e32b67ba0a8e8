"""``pydockerd --dashboard ADDR``: the daemon serves the dashboard as a client of its own socket."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from compat_api.__main__ import _start_dashboard
from compat_api.daemon.options import DaemonOptions, OptionsError, parse_options


def _options(tmp_path: Path, *extra: str) -> DaemonOptions:
    (tmp_path / "daemon.json").write_text("{}")
    return parse_options(["--config-file", str(tmp_path / "daemon.json"), "--exec-root", str(tmp_path / "exec"),
                          "-H", "tcp://127.0.0.1:2375", "-H", f"unix://{tmp_path}/d.sock", *extra])


async def test_dashboard_fronts_the_daemons_unix_socket(tmp_path: Path) -> None:
    dashboard = await _start_dashboard(_options(tmp_path, "--dashboard", "127.0.0.1:0"))
    try:
        assert dashboard.token_file == tmp_path / "exec" / "dashboard.token"
        assert stat.S_IMODE(dashboard.token_file.stat().st_mode) == 0o600
        assert dashboard.url.endswith("#token=" + dashboard.token_file.read_text().strip())
        app = dashboard.runner.app
        from dashboard.appkeys import ENGINE

        assert app[ENGINE].host == f"unix://{tmp_path}/d.sock"
    finally:
        await dashboard.stop()


async def test_dashboard_beyond_loopback_without_tls_stops_the_daemon(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="without TLS"):
        await _start_dashboard(_options(tmp_path, "--dashboard", "0.0.0.0:2380"))
