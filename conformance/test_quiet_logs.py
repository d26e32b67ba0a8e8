"""A client that goes away is normal: ``docker run --rm``, and ``logs -f``, ``events``,
``attach`` and ``exec`` killed mid-stream leave no ERROR and no traceback in the daemon log
(pydockerd-only: it reads pydockerd's own log)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from conformance.cli import DockerCLI
from conformance.conftest import Engine
from conformance.containerkit import Box
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def _killed_mid_stream(cli: DockerCLI, *args: str, expect: bytes = b"") -> None:
    """Run ``docker *args``, wait for its first output (or a moment), then SIGKILL it."""
    proc = subprocess.Popen([cli.binary, *args], env=cli.env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        if expect:
            seen = b""
            while expect not in seen:
                chunk = proc.stdout.read1(4096)
                assert chunk, f"docker {' '.join(args)} ended before printing {expect!r}"
                seen += chunk
        else:
            time.sleep(1.0)  # the request is in flight; nothing to read yet
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def test_clients_that_go_away_leave_no_errors(engine: Engine, box: Box) -> None:
    if engine.daemon is None:
        pytest.skip("reads pydockerd's own log")
    since = engine.daemon.log_size()
    for _ in range(5):
        proc = box.run("--rm", box.image, "echo", "hi")
        assert (proc.returncode, proc.stdout) == (0, "hi\n"), proc.stderr
    ticker = box.run_d(box.image, "sh", "-c", "while true; do echo tick; sleep 0.1; done")
    _killed_mid_stream(box.cli, "logs", "-f", ticker, expect=b"tick")
    _killed_mid_stream(box.cli, "attach", "--no-stdin", ticker, expect=b"tick")
    _killed_mid_stream(box.cli, "exec", ticker, "sh", "-c", "while true; do echo ex; sleep 0.1; done",
                       expect=b"ex")
    _killed_mid_stream(box.cli, "events")
    _killed_mid_stream(box.cli, "wait", ticker)
    _killed_mid_stream(box.cli, "stats", ticker)
    # a request after the hang-ups is served, and what was logged meanwhile is quiet
    assert box.state(ticker)["Running"] is True
    box.ok("kill", ticker)
    time.sleep(0.5)  # the daemon notices the last hang-ups
    log = engine.daemon.log_text(since)
    noisy = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert not noisy, "\n".join(noisy[:20])
