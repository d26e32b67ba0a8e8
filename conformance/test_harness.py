"""The harness's own pieces, checked without an engine."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from conformance.apiversion import APIVersion, negotiated
from conformance.cli import CliDialect
from conformance.daemon import DaemonSettings, DaemonStartError, PydockerdProcess
from conformance.proxy import RecordingProxy


def test_api_version_order_and_neighbours() -> None:
    assert APIVersion.parse("1.9") < APIVersion.parse("1.24") < APIVersion.parse("1.50")
    assert str(APIVersion.parse("1.24").previous()) == "1.23"
    assert str(APIVersion.parse("1.50").next()) == "1.51"
    assert negotiated("1.41", "1.50") == "1.41"
    assert negotiated("1.52", "1.50") == "1.50"


def test_cli_dialect_from_the_cli_version() -> None:
    old, new = CliDialect.parse("20.10.24+dfsg1"), CliDialect.parse("28.2.2")
    assert old.version == (20, 10) and old.legacy and not old.has_json_format
    assert new.version == (28, 2) and not new.legacy and new.has_json_format
    assert old.not_found("No such image: x:latest", "image", "x") == "Error: No such image: x"
    assert new.not_found("No such image: x:latest", "image", "x") == "Error response from daemon: No such image: x:latest"
    assert (old.host_port("::", "32768"), new.host_port("::", "32768")) == (":::32768", "[::]:32768")
    assert new.host_port("0.0.0.0", "1") == old.host_port("0.0.0.0", "1") == "0.0.0.0:1"


def _settings(tmp_path: Path, code: str, **kw: float) -> DaemonSettings:
    return DaemonSettings(command=[sys.executable, "-c", code], base_dir=str(tmp_path), **kw)  # type: ignore[arg-type]


def test_daemon_that_exits_early_reports_its_log(tmp_path: Path) -> None:
    daemon = PydockerdProcess(_settings(tmp_path, "import sys; print('boom: bad flag'); sys.exit(3)"))
    with pytest.raises(DaemonStartError) as err:
        daemon.start()
    assert "exited with code 3" in str(err.value)
    assert "boom: bad flag" in str(err.value)
    assert "--data-root" in str(err.value)


def test_daemon_that_never_answers_is_killed(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('stuck', flush=True); time.sleep(60)"
    daemon = PydockerdProcess(_settings(tmp_path, code, start_timeout=1.0, stop_timeout=0.5))
    started = time.monotonic()
    with pytest.raises(DaemonStartError) as err:
        daemon.start()
    assert time.monotonic() - started < 10
    assert "not ready after 1.0s" in str(err.value) and "stuck" in str(err.value)
    assert not daemon.alive()


def test_proxy_records_pipelined_request_lines(tmp_path: Path) -> None:
    proxy = RecordingProxy("unix:///nonexistent.sock", tmp_path / "p.sock")
    rest, framing = proxy._consume(
        b"HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /v1.50/x HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
        b"GET /v1.50/version HTTP/1.1\r\n"
    )
    assert framing and rest == b"GET /v1.50/version HTTP/1.1\r\n"
    assert proxy.request_lines() == ["HEAD /_ping", "POST /v1.50/x"]
    _, framing = proxy._consume(b"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n")
    assert not framing
