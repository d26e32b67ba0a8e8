"""pydockerd.service + pydockerd.socket (scripts/install-service.sh): socket activation
through ``-H fd://``, ``Type=notify`` readiness, a clean restart. They take over
/run/docker.sock, so they run only in the throw-away guest of conformance/vm/run."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.conftest import Engine

REPO = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.environ.get("PYDOCKERD_VM_GUEST") != "1"
                       or not Path("/run/systemd/system").is_dir(),
                       reason="changes the host's systemd units: only in conformance/vm/run's guest"),
]


def _run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def _show(unit: str, prop: str) -> str:
    return _run("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()


@pytest.fixture
def installed(engine: Engine) -> Iterator[None]:
    if not engine.is_pydockerd:
        pytest.skip("installs pydockerd's own units")
    env = dict(os.environ, PYDOCKERD_FROM_CHECKOUT="1")
    proc = subprocess.run([str(REPO / "scripts/install-service.sh")], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield
    finally:
        _run(str(REPO / "scripts/install-service.sh"), "--remove")


def _docker_version(cli: str) -> subprocess.CompletedProcess[str]:
    return _run(cli, "-H", "unix:///run/docker.sock", "version", "--format",
                "{{.Server.Version}} {{.Server.Os}}")


def test_socket_activation_answers_and_restarts(installed: None, docker_binary: str) -> None:
    assert _show("pydockerd.socket", "ActiveState") == "active"
    assert _show("pydockerd.service", "ActiveState") == "inactive"  # not started yet
    first = _docker_version(docker_binary)
    assert first.returncode == 0 and first.stdout.split()[1] == "linux", first.stderr
    assert _show("pydockerd.service", "ActiveState") == "active"
    pid = _show("pydockerd.service", "MainPID")
    restart = _run("systemctl", "restart", "pydockerd.service")
    assert restart.returncode == 0, restart.stderr
    assert _show("pydockerd.service", "ActiveState") == "active"  # Type=notify: ready
    assert _show("pydockerd.service", "MainPID") not in ("0", pid)
    again = _docker_version(docker_binary)
    assert again.returncode == 0, again.stderr
    stop = _run("systemctl", "stop", "pydockerd.service")
    assert stop.returncode == 0 and _show("pydockerd.service", "Result") == "success"
