"""Lifecycle semantics as dockerd's: ``kill`` (SIGKILL) returns once the container has
stopped; a container waiting out its restart back-off is ``restarting`` and cannot be removed
without force; stop cancels the back-off. The docker-py peers are KillTest::test_kill,
ContainerCollectionTest::test_list and test_create_with_restart_policy."""

from __future__ import annotations

import time

import docker
import pytest

from conformance.cli import DockerCLI
from conformance.containerkit import QUICK, Box, unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def test_kill_then_rm_and_wait(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    assert box.ok("kill", name) == f"{name}\n"
    # kill returned after the exit was recorded: rm without force works, wait has the code
    state = box.state(name)
    assert (state["Running"], state["Status"], state["ExitCode"]) == (False, "exited", 137)
    assert box.ok("wait", name) == "137\n"
    assert box.ok("rm", name) == f"{name}\n"


def test_kill_with_a_signal_returns_at_once(box: Box) -> None:
    name = box.run_d(box.image, "sleep", "300")
    assert box.ok("kill", "-s", "CONT", name) == f"{name}\n"
    assert box.state(name)["Running"] is True


def test_sdk_kill_records_137(client: docker.DockerClient, tracker: ResourceTracker,
                              busybox_image: str) -> None:
    """docker-py KillTest::test_kill / ContainerCollectionTest::test_list: inspect and remove
    right after kill."""
    name = tracker.container(unique("kill"))
    c = client.containers.run(busybox_image, ["sleep", "300"], detach=True, name=name,
                              network_mode="none")
    c.kill()
    state = client.api.inspect_container(c.id)["State"]
    assert (state["Running"], state["ExitCode"]) == (False, 137)
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_sdk_always_container_cannot_be_removed_without_force(
        client: docker.DockerClient, tracker: ResourceTracker, busybox_image: str) -> None:
    """docker-py test_create_with_restart_policy: after its exit an ``always`` container is
    restarting (or running again), so rm without force is refused."""
    api = client.api
    name = tracker.container(unique("always"))
    cid = api.create_container(busybox_image, ["sleep", "1"], name=name, host_config=api.
                               create_host_config(restart_policy={"Name": "always"},
                                                  network_mode="none"))["Id"]
    api.start(cid)
    assert api.wait(cid, timeout=30)["StatusCode"] == 0
    with pytest.raises(docker.errors.APIError) as refused:
        api.remove_container(cid)
    assert refused.value.response.status_code == 409
    assert "stop the container before" in str(refused.value.explanation).lower()
    api.remove_container(cid, force=True)


def _restarting_name(box: Box) -> str:
    """An ``always`` container that fails at once, observed in its restart back-off after a
    few restarts (the back-off doubles from 100ms: after 6 restarts it waits 3s and more,
    so the checks that follow see it restarting)."""
    name = box.run_d("--restart", "always", box.image, "sh", "-c", "exit 3")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = box.inspect(name)
        if info["RestartCount"] >= 6 and info["State"]["Restarting"]:
            return name
        time.sleep(0.05)
    pytest.fail(f"{name} never seen restarting: {box.inspect(name)['State']}")


def test_restart_back_off_is_restarting(box: Box) -> None:
    name = _restarting_name(box)
    state = box.inspect(name)["State"]
    assert (state["Running"], state["Status"], state["Pid"], state["ExitCode"]) == (
        True, "restarting", 0, 3)
    statuses = box.ok("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}")
    assert statuses.startswith("Restarting (3) "), statuses
    proc = box.cli("rm", name, timeout=QUICK)
    assert proc.returncode == 1
    # 20.10: "You cannot remove a restarting container <id>. Stop the container before
    # attempting removal or force remove"; 28: '... container is restarting: stop the
    # container before removing or force remove' (or "running" if caught between runs)
    assert "stop the container before" in str(proc.stderr).lower(), proc.stderr
    assert box.ok("stop", name, timeout=30) == f"{name}\n"
    state = box.inspect(name)["State"]
    assert (state["Running"], state["Restarting"], state["Status"]) == (False, False, "exited")
    assert box.ok("rm", name) == f"{name}\n"


def test_force_rm_of_a_restarting_container(box: Box) -> None:
    name = _restarting_name(box)
    assert box.ok("rm", "-f", name, timeout=30) == f"{name}\n"
    assert box.cli("inspect", "--type", "container", name, timeout=QUICK).returncode == 1
