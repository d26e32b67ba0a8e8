"""Volumes through docker-py 7.1: volumes.create/get/list/prune, Volume.remove (force),
containers with ``volumes=`` and ``mounts=``, and the errors docker-py maps (NotFound,
APIError 409). Prune runs only with a unique label filter (the reference engine is shared).
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import docker
import docker.errors
import docker.types
import pytest

from conformance.apiversion import APIVersion
from conformance.conftest import Advertised, Engine
from conformance.containerkit import unique
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)


def test_volumes_create_get_list_remove(client: docker.DockerClient,
                                         tracker: ResourceTracker) -> None:
    name = tracker.volume(unique("sdkvol"))
    label = f"conf.sdk.{uuid.uuid4().hex[:8]}"
    vol = client.volumes.create(name, driver="local", labels={label: "1"})
    assert vol.name == name and vol.id == name
    assert vol.attrs["Driver"] == "local" and vol.attrs["Labels"] == {label: "1"}
    got = client.volumes.get(name)
    assert got.attrs == vol.attrs
    assert [v.name for v in client.volumes.list(filters={"label": f"{label}=1"})] == [name]
    assert [v.name for v in client.volumes.list(filters={"name": name})] == [name]
    assert client.volumes.list(filters={"label": f"{label}=2"}) == []
    again = client.volumes.create(name)
    assert again.attrs == vol.attrs
    vol.remove()
    with pytest.raises(docker.errors.NotFound) as missing:
        client.volumes.get(name)
    assert f"get {name}: no such volume" in str(missing.value.explanation)


def test_driver_opts_and_errors(client: docker.DockerClient, tracker: ResourceTracker) -> None:
    name = tracker.volume(unique("sdkvol"))
    vol = client.volumes.create(name, driver_opts={"type": "tmpfs", "device": "tmpfs",
                                                   "o": "size=1m"})
    assert vol.attrs["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    bad = tracker.volume(unique("sdkvol"))
    with pytest.raises(docker.errors.APIError) as err:
        client.volumes.create(bad, driver_opts={"nope": "1"})
    assert err.value.status_code == 400
    assert f'create {bad}: invalid option: "nope"' in str(err.value.explanation)


def test_container_volumes_and_in_use(client: docker.DockerClient, tracker: ResourceTracker,
                                      busybox_image: str) -> None:
    name = tracker.volume(unique("sdkvol"))
    vol = client.volumes.create(name)
    writer = client.containers.run(busybox_image, ["sh", "-c", "echo sdk > /data/f"],
                                   name=tracker.container(unique("sdk")), network_mode="none",
                                   volumes={name: {"bind": "/data", "mode": "rw"}}, detach=True)
    assert writer.wait(timeout=30)["StatusCode"] == 0
    mounts = writer.attrs["Mounts"] if writer.attrs.get("Mounts") else client.containers.get(
        writer.id).attrs["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [
        ("volume", name, "/data")]
    with pytest.raises(docker.errors.APIError) as err:
        vol.remove(force=True)
    assert err.value.status_code == 409
    assert f"remove {name}: volume is in use - [{writer.id}]" in str(err.value.explanation)
    out = client.containers.run(
        busybox_image, ["cat", "/v/f"], remove=True, network_mode="none",
        mounts=[docker.types.Mount("/v", name, type="volume", read_only=True)])
    assert out == b"sdk\n"
    writer.remove()
    vol.remove()


def test_volumes_prune(client: docker.DockerClient, tracker: ResourceTracker,
                       advertised: Advertised) -> None:
    label = f"conf.sdkprune.{uuid.uuid4().hex[:8]}"
    named = tracker.volume(unique("sdkvol"))
    client.volumes.create(named, labels={label: ""})
    anonymous = client.volumes.create(labels={label: ""})
    tracker.volume(anonymous.name)
    report = client.volumes.prune(filters={"label": label})
    if advertised.max >= APIVersion(1, 42):
        assert report == {"VolumesDeleted": [anonymous.name], "SpaceReclaimed": 0}
        report = client.volumes.prune(filters={"label": label, "all": "true"})
        assert report == {"VolumesDeleted": [named], "SpaceReclaimed": 0}
    else:
        assert sorted(report["VolumesDeleted"]) == sorted([named, anonymous.name])
    assert client.volumes.list(filters={"label": label}) == []


def test_references_and_mounts_survive_a_daemon_kill(engine: Engine, busybox_tar: Path) -> None:
    """pydockerd only: SIGKILL the daemon while a container uses volumes; once restarted the
    volumes are still in use (no removal), the running container keeps its tmpfs volume,
    which is unmounted when it stops."""
    if not engine.is_pydockerd:
        pytest.skip("needs a pydockerd of its own to kill")
    from conformance.daemon import DaemonSettings, PydockerdProcess, free_test_bridge

    settings = DaemonSettings.from_env()
    settings.bridge, settings.bip = free_test_bridge()
    daemon = PydockerdProcess(settings)
    daemon.start()
    try:
        api = docker.APIClient(base_url=daemon.host, version="auto")
        with open(busybox_tar, "rb") as f:
            api.import_image_from_data(f.read(), repository="busybox", tag="latest",
                                       changes=['CMD ["sh"]'])
        api.create_volume("kept", labels={"k": "v"})
        tmp = api.create_volume("tmp", driver_opts={"type": "tmpfs", "device": "tmpfs"})
        host_config = api.create_host_config(network_mode="none", binds=["kept:/kept", "tmp:/tmp"])
        cid = api.create_container("busybox:latest", ["sh", "-c", "echo alive > /tmp/x; sleep 300"],
                                   host_config=host_config)["Id"]
        api.start(cid)
        assert daemon.proc is not None
        daemon.proc.kill()  # SIGKILL: the daemon cleans up nothing
        daemon.proc.wait()
        daemon.start()
        api = docker.APIClient(base_url=daemon.host, version="auto")
        assert api.inspect_volume("kept")["Labels"] == {"k": "v"}
        for name in ("kept", "tmp"):
            with pytest.raises(docker.errors.APIError) as err:
                api.remove_volume(name)
            assert err.value.status_code == 409
        run = api.exec_create(cid, ["cat", "/tmp/x"])["Id"]
        assert api.exec_start(run) == b"alive\n"
        api.stop(cid, timeout=1)
        assert tmp["Mountpoint"] not in Path("/proc/self/mountinfo").read_text()
        api.remove_container(cid)
        api.remove_volume("kept")
        api.remove_volume("tmp")
        assert api.volumes()["Volumes"] == []
    finally:
        daemon.stop()
        daemon.remove_dirs()
        subprocess.run(["ip", "link", "del", settings.bridge], capture_output=True)
