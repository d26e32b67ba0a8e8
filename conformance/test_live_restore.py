"""``--live-restore`` (pydockerd only: the test starts and SIGTERMs a daemon of its own).

A clean stop leaves running containers running; the next start re-adopts them: they are
listed as running, exec works, their log keeps the old lines and gets new ones, their
published ports answer again, ``stop`` records their exit code, and a container that
exited while the daemon was away is shown with its exit code.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import docker
import pytest

from conformance.conftest import Engine

pytestmark = pytest.mark.timeout(120)

COUNTER = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done"
# SIGTERM ends it with 3, so the recorded exit code comes from the process, not a SIGKILL
WEB = "mkdir -p /www && echo hello > /www/index.html && trap 'exit 3' TERM; httpd -f -p 8000 -h /www & wait"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int) -> bytes:
    deadline = time.monotonic() + 5
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as resp:
                return bytes(resp.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _counts(api: docker.APIClient, cid: str) -> list[int]:
    return [int(line) for line in api.logs(cid, stderr=False).decode().split()]


def test_containers_survive_a_clean_stop(engine: Engine, busybox_tar: Path) -> None:
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own to stop")
    from conformance.daemon import DaemonSettings, PydockerdProcess, process_alive, free_test_bridge

    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = free_test_bridge()
    settings.extra_args = [*settings.extra_args, "--live-restore"]
    daemon = PydockerdProcess(settings)
    daemon.start()
    try:
        api = docker.APIClient(base_url=daemon.host, version="auto")
        assert api.info()["LiveRestoreEnabled"] is True
        with open(busybox_tar, "rb") as f:
            api.import_image_from_data(f.read(), repository="busybox", tag="latest", changes=['CMD ["sh"]'])
        counter = api.create_container("busybox:latest", ["sh", "-c", COUNTER])["Id"]
        port = _free_port()
        web = api.create_container(
            "busybox:latest", ["sh", "-c", WEB], ports=[8000],
            host_config=api.create_host_config(port_bindings={8000: ("127.0.0.1", port)}))["Id"]
        brief = api.create_container("busybox:latest", ["sh", "-c", "sleep 2; exit 7"])["Id"]
        for cid in (counter, web, brief):
            api.start(cid)
        assert _get(port) == b"hello\n"
        pids = {cid: api.inspect_container(cid)["State"]["Pid"] for cid in (counter, web)}
        time.sleep(0.5)
        before = _counts(api, counter)
        assert before

        assert daemon.stop() == 0  # SIGTERM
        assert all(process_alive(pid) for pid in pids.values())
        time.sleep(2.5)  # `brief` exits while no daemon runs
        assert all(process_alive(pid) for pid in pids.values())

        daemon.start()
        api = docker.APIClient(base_url=daemon.host, version="auto")
        running = {c["Id"] for c in api.containers()}
        assert running == {counter, web}
        for cid, pid in pids.items():
            state = api.inspect_container(cid)["State"]
            assert state["Running"] and state["Pid"] == pid
        assert api.inspect_container(brief)["State"]["ExitCode"] == 7
        run = api.exec_create(counter, ["echo", "exec-ok"])["Id"]
        assert api.exec_start(run) == b"exec-ok\n"
        assert api.port(web, 8000) == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        assert _get(port) == b"hello\n"
        time.sleep(0.5)
        after = _counts(api, counter)
        # old lines kept, none lost while away (the pipe held them), new ones appended
        assert after[: len(before)] == before
        assert after == list(range(1, len(after) + 1))
        assert len(after) > len(before) + 10

        api.stop(web, timeout=5)
        api.stop(counter, timeout=1)
        assert api.inspect_container(web)["State"]["ExitCode"] == 3
        assert api.inspect_container(counter)["State"]["ExitCode"] == 137
        assert not any(process_alive(pid) for pid in pids.values())
        assert api.containers() == []
    finally:
        daemon.stop()
        daemon.remove_dirs()
        subprocess.run(["ip", "link", "del", settings.bridge], capture_output=True)


def test_without_live_restore_a_clean_stop_stops_containers(engine: Engine, busybox_tar: Path) -> None:
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own to stop")
    from conformance.daemon import DaemonSettings, PydockerdProcess, free_test_bridge, process_alive

    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = free_test_bridge()
    daemon = PydockerdProcess(settings)
    daemon.start()
    try:
        api = docker.APIClient(base_url=daemon.host, version="auto")
        assert api.info()["LiveRestoreEnabled"] is False
        with open(busybox_tar, "rb") as f:
            api.import_image_from_data(f.read(), repository="busybox", tag="latest", changes=['CMD ["sh"]'])
        cid = api.create_container("busybox:latest", ["sh", "-c", "trap 'exit 3' TERM; sleep 300 & wait"])["Id"]
        api.start(cid)
        pid = api.inspect_container(cid)["State"]["Pid"]
        assert daemon.stop() == 0
        assert not process_alive(pid)
        daemon.start()
        api = docker.APIClient(base_url=daemon.host, version="auto")
        state = api.inspect_container(cid)["State"]
        assert not state["Running"] and state["ExitCode"] == 3
    finally:
        daemon.stop()
        daemon.remove_dirs()
        subprocess.run(["ip", "link", "del", settings.bridge], capture_output=True)
