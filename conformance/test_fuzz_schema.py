"""Schema fuzzing of the Engine API with schemathesis, bounded in time.

Two runs against daemons of their own (pydockerd only: they need a TCP listener):

* the spec's own examples, in the host's network namespace: the host's interfaces and
  their addresses are the same afterwards (the examples name ``docker0``, bind host paths,
  create bridges);
* generated requests (the fuzzing phase), with the daemon in a network namespace of its
  own that has only loopback, so nothing a generated request asks for can reach any other
  machine.

A 5xx other than dockerd's deliberate 501/503 is a defect (conformance/fuzz_hooks.py).
Operations that reach registries or stream without end are left out. Settings:
``CONFORMANCE_FUZZ_SECONDS`` (fuzzing budget, default 90), ``CONFORMANCE_FUZZ_SEED``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.conftest import Engine
from conformance.daemon import DaemonSettings, PydockerdProcess
from conformance.spec import SPEC_PATH
from conformance.test_networks_ownership import host_interfaces

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(not SPEC_PATH.exists(), reason="the Engine API spec is not in the repository"),
    pytest.mark.skipif(shutil.which("st") is None, reason="schemathesis is not installed"),
]

# Reach registries or other hosts (pull, push, login, search, remote builds), stream until
# the client leaves, or take bodies schemathesis cannot generate (tar archives).
EXCLUDED_OPERATIONS = (
    "ImageCreate", "ImagePush", "SystemAuth", "DistributionInspect", "ImageBuild", "ImageSearch",
    "Session", "SystemEvents", "ContainerAttach", "ContainerAttachWebsocket", "ExecStart",
    "ImageLoad", "PutContainerArchive", "ContainerStats", "ContainerLogs", "ContainerWait",
)
EXCLUDED_TAGS = ("Swarm", "Node", "Service", "Task", "Secret", "Config", "Plugin")
API_PORT = 23750


@pytest.fixture
def fuzz_daemon(engine: Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PydockerdProcess]:
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own with a TCP listener")
    private = request.param == "private-netns"
    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = "pydtz" + os.urandom(2).hex(), "10.213.188.1/24"
    settings.log_level = "info"
    settings.extra_args = [*settings.extra_args, "-H", f"tcp://127.0.0.1:{_port(private)}"]
    if private:
        # a namespace with only loopback (up): generated requests reach nothing else
        settings.command = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
                            sys.executable, "-m", "compat_api"]
    daemon = PydockerdProcess(settings)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        daemon.remove_dirs()
        if not private:
            subprocess.run(["ip", "link", "del", settings.bridge], capture_output=True)


def _port(private: bool) -> int:
    if private:
        return API_PORT
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api_url(daemon: PydockerdProcess) -> str:
    tcp = next(a for a in daemon.argv() if a.startswith("tcp://"))
    return tcp.replace("tcp://", "http://") + "/v1.50"


def run_schemathesis(daemon: PydockerdProcess, phases: str, seconds: int, report: Path,
                     enter_netns: bool) -> subprocess.CompletedProcess[str]:
    argv = [
        "st", "run", str(SPEC_PATH), "--url", _api_url(daemon), "--phases", phases,
        "--checks", "no_internal_error", "--max-time", str(seconds), "--request-timeout", "30",
        "--continue-on-failure", "--no-color", "--seed", os.environ.get("CONFORMANCE_FUZZ_SEED", "20261207"),
        "--generation-database", "none", "--report", "junit", "--report-junit-path", str(report),
    ]
    for op in EXCLUDED_OPERATIONS:
        argv += ["--exclude-operation-id", op]
    for tag in EXCLUDED_TAGS:
        argv += ["--exclude-tag", tag]
    if enter_netns:
        assert daemon.proc is not None
        argv = ["nsenter", "-t", str(daemon.proc.pid), "-n", *argv]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "conformance.fuzz_hooks", "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds + 300)


def defects(report: Path) -> list[str]:
    """Failed or errored test cases of a schemathesis junit report."""
    root = ET.parse(report).getroot()
    found = []
    for case in root.iter("testcase"):
        for bad in (*case.findall("failure"), *case.findall("error")):
            found.append(f"{case.get('name')}: {(bad.get('message') or bad.text or '').strip()[:400]}")
    return found


@pytest.mark.parametrize("fuzz_daemon", ["host-netns"], indirect=True)
def test_spec_examples_answer_without_500_and_leave_host_interfaces_alone(
    fuzz_daemon: PydockerdProcess, tmp_path: Path
) -> None:
    before = host_interfaces()
    proc = run_schemathesis(fuzz_daemon, "examples", 120, tmp_path / "junit.xml", enter_netns=False)
    assert (tmp_path / "junit.xml").exists(), proc.stdout[-3000:] + proc.stderr[-2000:]
    assert fuzz_daemon.alive(), fuzz_daemon.log_tail()
    assert defects(tmp_path / "junit.xml") == [], proc.stdout[-4000:]
    fuzz_daemon.stop()  # a clean stop gives back whatever the examples made it claim
    assert host_interfaces() == before


@pytest.mark.parametrize("fuzz_daemon", ["private-netns"], indirect=True)
def test_generated_requests_answer_without_500(fuzz_daemon: PydockerdProcess, tmp_path: Path) -> None:
    seconds = int(os.environ.get("CONFORMANCE_FUZZ_SECONDS", "90"))
    proc = run_schemathesis(fuzz_daemon, "examples,fuzzing", seconds, tmp_path / "junit.xml", enter_netns=True)
    assert (tmp_path / "junit.xml").exists(), proc.stdout[-3000:] + proc.stderr[-2000:]
    assert fuzz_daemon.alive(), fuzz_daemon.log_tail()
    assert defects(tmp_path / "junit.xml") == [], proc.stdout[-6000:]
