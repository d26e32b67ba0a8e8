"""The BuildRuntime on the engine's real image service (overlay layers; run as root)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from builder.backend import CommitRequest, HostOptions
from builder.engine import EngineBuildRuntime, _host_config, _mkdir_in_root, resolve_auth
from runtime.containers.model import ContainerConfig
from runtime.images.auth import AuthConfig
from runtime.events import EventBus
from runtime.images.service import ImageService
from runtime.storage.snapshots import is_mounted
from tests.runtime.images.conftest import rootfs_tar


@pytest.fixture
async def adapter(tmp_path: Path) -> EngineBuildRuntime:
    images = ImageService(tmp_path / "data", EventBus())
    await images.import_image(io.BytesIO(rootfs_tar()), repo="base", tag="1", config={"Cmd": ["sh"]})
    return EngineBuildRuntime(images, None, tmp_path / "data", _no_containers)  # type: ignore[arg-type]


def _no_containers(doc: object) -> ContainerConfig:
    raise AssertionError("these builds create no containers")


async def test_layer_commit_makes_a_build_step_image(adapter: EngineBuildRuntime) -> None:
    base = adapter.get_image("base:1")
    assert base.config["Cmd"] == ["sh"] and base.os == "linux"
    layer = await adapter.open_layer(base.id)
    assert is_mounted(layer.root) and (layer.root / "etc" / "passwd").is_file()  # the image's files
    (layer.root / "added").write_text("new")
    container_config = {"Cmd": ["/bin/sh", "-c", "#(nop) COPY file:abc in /added "], "Image": base.id}
    image_id = await adapter.commit_layer(layer, base.id, CommitRequest(
        config={"Cmd": ["sh"], "Image": base.id}, container_config=container_config, author="me"))
    await adapter.release_layer(layer)
    assert not layer.root.parent.exists()
    image = adapter.images.get(image_id)
    assert image.parent == base.id and len(image.diff_ids) == 2
    assert image.history[-1]["created_by"] == "/bin/sh -c #(nop) COPY file:abc in /added "
    assert image.history[-1].get("author") == "me" and "empty_layer" not in image.history[-1]
    assert image.config["container_config"]["Cmd"] == container_config["Cmd"]
    (candidate,) = adapter.cache_candidates(base.id)
    assert candidate.id == image_id and candidate.container_config["Cmd"] == container_config["Cmd"]
    await adapter.tag(image_id, "built")
    assert adapter.get_image("built:latest").id == image_id


async def test_empty_layer_commit_is_an_empty_layer(adapter: EngineBuildRuntime) -> None:
    base = adapter.get_image("base:1")
    layer = await adapter.open_layer(base.id)
    image_id = await adapter.commit_layer(layer, base.id, CommitRequest({"Cmd": ["x"]}, {"Cmd": ["#(nop) "]}))
    await adapter.release_layer(layer)
    image = adapter.images.get(image_id)
    assert len(image.diff_ids) == 1 and image.history[-1]["empty_layer"] is True


async def test_scratch_steps_use_a_layer_on_nothing(adapter: EngineBuildRuntime) -> None:
    created = await adapter.create_container({"Image": "", "Cmd": ["/bin/sh", "-c", "#(nop) ", "LABEL a=b"]},
                                             HostOptions())
    await adapter.make_workdir(created.id, "/w/x")
    image_id = await adapter.commit_container(created.id, CommitRequest(
        {"Labels": {"a": "b"}}, {"Cmd": ["/bin/sh", "-c", "#(nop) ", "LABEL a=b"]}))
    await adapter.remove_container(created.id)
    image = adapter.images.get(image_id)
    assert image.parent == "" and len(image.diff_ids) == 1 and image.labels == {"a": "b"}


def test_host_config_for_build_containers() -> None:
    host = _host_config(HostOptions(network_mode="", memory=64 << 20, extra_hosts=("h:1.2.3.4",),
                                    ulimits=({"Name": "nofile", "Soft": 10, "Hard": 20},)))
    assert host.network_mode == "bridge" and host.log_config.type == "none" and host.memory == 64 << 20
    assert host.extra_hosts == ("h:1.2.3.4",) and host.ulimits is not None and host.ulimits[0].hard == 20
    assert _host_config(HostOptions(network_mode="none")).network_mode == "none"


def test_workdir_creation_stays_in_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), root / "link")
    _mkdir_in_root(root, "/link/made/here")
    assert (root / str(outside).lstrip("/") / "made" / "here").is_dir()
    assert list(outside.iterdir()) == []


async def test_running_on_an_empty_scratch_fails_clearly(adapter: EngineBuildRuntime) -> None:
    created = await adapter.create_container({"Image": "", "Cmd": ["/bin/sh", "-c", "true"]}, HostOptions())

    async def output(stream: str, data: bytes) -> None:
        raise AssertionError("no output expected")

    with pytest.raises(Exception, match='exec: "/bin/sh": stat /bin/sh: no such file or directory'):
        await adapter.run_container(created.id, output)
    await adapter.remove_container(created.id)


def test_registry_credentials_for_a_pull() -> None:
    configs = {"https://index.docker.io/v1/": AuthConfig(username="hub", password="p1"),
               "127.0.0.1:5000": AuthConfig(username="local", password="p2")}
    assert resolve_auth(configs, "docker.io").credentials() == ("hub", "p1")
    assert resolve_auth(configs, "127.0.0.1:5000").credentials() == ("local", "p2")
    assert resolve_auth(configs, "example.com") == AuthConfig()
