"""The daemon dies (SIGKILL) at each named step of create, start, rm, pull, commit and
build (the test-only switch ``PYDOCKERD_FAULT_AT``, runtime/faults.py), is started again,
and the invariants hold: every container is listed truthfully (running only with a live
process), every container is removable, the operation works when tried again, and once
everything is removed and the daemon stopped, nothing of the run is left on the host
(conformance/leaks.py)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
import urllib3

from conformance.conftest import Engine
from conformance.daemon import DaemonSettings, PydockerdProcess, process_alive
from conformance.leaks import RunWitness, leftovers
from conformance.registry import LocalRegistry, registry  # noqa: F401 - fixture
from runtime.faults import STEPS

pytestmark = pytest.mark.timeout(180)

NO_NET = {"network_mode": "none"}
# how docker-py reports a daemon that died mid-request (a streamed answer breaks off)
CONNECTION_LOST = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                   urllib3.exceptions.ProtocolError, docker.errors.APIError)


class Crashable:
    """One pydockerd (own bridge, directories) that a test crashes and starts again."""

    def __init__(self, busybox_tar: Path) -> None:
        self.settings = DaemonSettings.from_env()
        self.settings.bridge, self.settings.bip = "pydtf" + os.urandom(2).hex(), "10.213.183.1/24"
        self.settings.log_level = "info"
        self.daemon = PydockerdProcess(self.settings)
        self.busybox_tar = busybox_tar
        self.containers: set[str] = set()
        self.networks: set[str] = set()
        self.witness: RunWitness | None = None

    def start(self, fault: str = "") -> docker.APIClient:
        self.settings.env = {"PYDOCKERD_FAULT_AT": fault} if fault else {}
        self.daemon.start()
        self.witness = RunWitness(self.daemon.socket_path)
        self.witness.start()
        return docker.APIClient(base_url=self.daemon.host, version="auto", timeout=30)

    def crashed(self, timeout: float = 20.0) -> bool:
        assert self.daemon.proc is not None
        try:
            self.daemon.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        self._collect()
        return self.daemon.proc.returncode == -9

    def _collect(self) -> None:
        if self.witness is not None:
            self.witness.join(2)
            self.containers |= self.witness.containers
            self.networks |= self.witness.networks

    def stop_and_check(self) -> list[str]:
        self.daemon.stop()
        self._collect()
        merged = RunWitness(self.daemon.socket_path, self.containers, self.networks)
        return leftovers(merged, self.daemon.workdir, self.daemon.data_root, self.daemon.exec_root,
                         self.settings.bridge)

    def close(self) -> None:
        self.daemon.stop()
        self.daemon.remove_dirs()
        subprocess.run(["ip", "link", "del", self.settings.bridge], capture_output=True)


@pytest.fixture
def crashable(engine: Engine, busybox_tar: Path) -> Iterator[Crashable]:
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own to crash")
    c = Crashable(busybox_tar)
    yield c
    c.close()


def _import_busybox(api: docker.APIClient, busybox_tar: Path) -> None:
    api.import_image_from_data(busybox_tar.read_bytes(), repository="busybox", tag="latest",
                               changes=['CMD ["sh"]'])


def _build_context() -> bytes:
    dockerfile = b"FROM busybox:latest\nRUN echo one > /one\nRUN echo two > /two\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    return buf.getvalue()


def _operation(step: str, api: docker.APIClient, registry_address: str) -> Callable[[], Any]:
    """Set up what the step needs (with the daemon that will die) and return the call that
    reaches the step."""
    family = step.split(".")[0]
    if family == "create":
        return lambda: api.create_container("busybox:latest", ["sleep", "300"], host_config=api.create_host_config(**NO_NET))
    if family in ("start", "remove", "commit"):
        # a published port: the start goes through networking, the crash leaves rules behind
        host_config = api.create_host_config(port_bindings={80: None}) if family == "start" else \
            api.create_host_config(**NO_NET)
        cid = api.create_container("busybox:latest", ["sh", "-c", "echo x > /f; sleep 300"],
                                   host_config=host_config)["Id"]
        if family == "start":
            return lambda: api.start(cid)
        api.start(cid)
        if family == "remove":
            return lambda: api.remove_container(cid, force=True)
        time.sleep(0.3)  # the file is written
        return lambda: api.commit(cid, repository="crashed", tag="commit")
    if family == "pull":
        # an image with a layer of its own, pushed, then removed here: the pull downloads it
        repo = f"{registry_address}/crash-pull-{os.urandom(3).hex()}"
        cid = api.create_container("busybox:latest", ["sh", "-c", f"echo {os.urandom(8).hex()} > /unique"],
                                   host_config=api.create_host_config(**NO_NET))["Id"]
        api.start(cid)
        api.wait(cid, timeout=30)
        api.commit(cid, repository=repo, tag="latest")
        api.remove_container(cid)
        for line in api.push(repo, tag="latest", stream=True, decode=True):
            assert "error" not in line, line
        api.remove_image(f"{repo}:latest")
        return lambda: list(api.pull(repo, tag="latest", stream=True, decode=True))
    if family == "build":
        return lambda: list(api.build(fileobj=io.BytesIO(_build_context()), custom_context=True,
                                      tag="crashed:build", rm=True, decode=True))
    raise AssertionError(f"no operation for {step}")


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_each_step_leaves_a_truthful_engine(crashable: Crashable, registry: LocalRegistry, step: str) -> None:  # noqa: F811
    api = crashable.start(fault=step)
    _import_busybox(api, crashable.busybox_tar)
    operation = _operation(step, api, registry.address)
    with pytest.raises(CONNECTION_LOST):
        operation()
    assert crashable.crashed(), f"the daemon did not die at {step}\n{crashable.daemon.log_tail()}"

    api = crashable.start()
    # listed truthfully: running only with a live process
    for summary in api.containers(all=True):
        state = api.inspect_container(summary["Id"])["State"]
        if state["Running"]:
            assert process_alive(state["Pid"]), (step, state)
        crashable.containers.add(summary["Id"])
    # the operation works again, with a daemon that does not die
    again = _operation(step, api, registry.address)
    result = again()
    if step.startswith("build"):
        assert any("Successfully built" in str(line.get("stream", "")) for line in result), result
    assert api.images()  # the image store reads back
    # everything removable, then nothing of the run left on the host
    for summary in api.containers(all=True):
        crashable.containers.add(summary["Id"])
        api.remove_container(summary["Id"], force=True)
    for image in api.images():
        for tag in image.get("RepoTags") or ():
            if tag.startswith(("crashed:", f"{registry.address}/crash-pull")):
                api.remove_image(tag, force=True)
    assert api.containers(all=True) == []
    left = crashable.stop_and_check()
    assert left == [], f"after a crash at {step}:\n" + "\n".join(left)


def test_a_full_data_root_gives_clear_errors_and_recovers(engine: Engine, busybox_tar: Path, tmp_path: Path) -> None:
    """The data root on a small tmpfs, filled up: create, import and run fail with the
    kernel's "no space left on device" in the message, nothing half-written is left behind
    (a restart reads every record), and once space is back everything works again."""
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own on a small filesystem")
    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(root)], check=True)
    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = "pydtd" + os.urandom(2).hex(), "10.213.182.1/24"
    daemon = PydockerdProcess(settings)
    daemon.data_root = root / "data"
    filler = root / "filler"
    try:
        daemon.start()
        api = docker.APIClient(base_url=daemon.host, version="auto", timeout=60)
        _import_busybox(api, busybox_tar)
        before = api.create_container("busybox:latest", ["true"], host_config=api.create_host_config(**NO_NET))["Id"]
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        failures = []
        for attempt in (
            lambda: api.create_container("busybox:latest", ["true"], host_config=api.create_host_config(**NO_NET)),
            lambda: api.import_image_from_data(busybox_tar.read_bytes(), repository="full", tag="x"),
            lambda: api.start(before),
        ):
            with pytest.raises(docker.errors.APIError) as info:
                attempt()
            failures.append(str(info.value.explanation or info.value))
        assert all("no space left on device" in f.lower() for f in failures), failures
        assert daemon.alive()
        filler.unlink()
        # nothing half-written: a restart reads every record back
        daemon.stop()
        daemon.start()
        api = docker.APIClient(base_url=daemon.host, version="auto", timeout=60)
        assert {c["Id"] for c in api.containers(all=True)} >= {before}
        assert any("busybox:latest" in (i.get("RepoTags") or []) for i in api.images())
        cid = api.create_container("busybox:latest", ["echo", "back"], host_config=api.create_host_config(**NO_NET))["Id"]
        api.start(cid)
        assert api.wait(cid, timeout=30)["StatusCode"] == 0
        assert api.logs(cid) == b"back\n"
        api.start(before)
        assert api.wait(before, timeout=30)["StatusCode"] == 0
        for c in api.containers(all=True):
            api.remove_container(c["Id"], force=True)
    finally:
        daemon.stop()
        daemon.remove_dirs()
        subprocess.run(["umount", "-l", str(root)], capture_output=True)
        subprocess.run(["ip", "link", "del", settings.bridge], capture_output=True)


def _truthful_and_clean(crashable: Crashable, api: docker.APIClient) -> None:
    """Every container listed truthfully and removable; then nothing of the run left."""
    for summary in api.containers(all=True):
        state = api.inspect_container(summary["Id"])["State"]
        assert state["Running"] == process_alive(state["Pid"]) if state["Pid"] else not state["Running"], state
        crashable.containers.add(summary["Id"])
    for summary in api.containers(all=True):
        api.remove_container(summary["Id"], force=True, v=True)
    for volume in (api.volumes().get("Volumes") or []):
        api.remove_volume(volume["Name"])
    left = crashable.stop_and_check()
    assert left == [], "\n".join(left)


def test_kill_9_at_rest_then_restart(crashable: Crashable) -> None:
    """5 running (2 with --restart always, 1 with a named volume) and 2 created containers;
    SIGKILL; after the restart all 7 are listed in the right state, the volume's file is
    intact, exec/logs/stop work, and removing them leaves nothing (re-adopted cgroups too)."""
    api = crashable.start()
    _import_busybox(api, crashable.busybox_tar)
    running = []
    for i in range(5):
        host_config = api.create_host_config(
            restart_policy={"Name": "always"} if i < 2 else None,
            binds=["kept:/data"] if i == 2 else None, **NO_NET)
        cmd = ["sh", "-c", "echo hello > /data/f; echo started; sleep 300"] if i == 2 else ["sh", "-c", "echo started; sleep 300"]
        cid = api.create_container("busybox:latest", cmd, host_config=host_config)["Id"]
        api.start(cid)
        running.append(cid)
    created = [api.create_container("busybox:latest", ["true"], host_config=api.create_host_config(**NO_NET))["Id"]
               for _ in range(2)]
    time.sleep(0.5)
    assert crashable.daemon.proc is not None
    crashable.daemon.proc.kill()
    assert crashable.crashed()
    api = crashable.start()
    for cid in running:
        state = api.inspect_container(cid)["State"]
        assert state["Running"] and process_alive(state["Pid"]), state
        assert b"started" in api.logs(cid)
    for cid in created:
        assert api.inspect_container(cid)["State"]["Status"] == "created"
    exec_id = api.exec_create(running[2], ["cat", "/data/f"])["Id"]
    assert api.exec_start(exec_id) == b"hello\n"
    api.stop(running[3], timeout=1)
    assert api.inspect_container(running[3])["State"]["Running"] is False
    _truthful_and_clean(crashable, api)


def test_kill_9_in_the_middle_of_parallel_runs(crashable: Crashable) -> None:
    """SIGKILL 0.2 s into 10 parallel create+start: afterwards no container process runs
    unseen, each container is listed truthfully, and all are removable without leftovers."""
    import threading

    api = crashable.start()
    _import_busybox(api, crashable.busybox_tar)

    def run_one() -> None:
        client = docker.APIClient(base_url=crashable.daemon.host, version="auto", timeout=30)
        try:
            cid = client.create_container("busybox:latest", ["sleep", "300"],
                                          host_config=client.create_host_config(port_bindings={80: None}))["Id"]
            client.start(cid)
        except Exception:  # the daemon dies under it: expected
            pass

    threads = [threading.Thread(target=run_one) for _ in range(10)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    assert crashable.daemon.proc is not None
    crashable.daemon.proc.kill()
    assert crashable.crashed()
    for t in threads:
        t.join(30)
    api = crashable.start()
    _truthful_and_clean(crashable, api)
