"""Images move between the engine under test and a reference engine with the same image ID.

Runs only when a second engine is given (``CONFORMANCE_REFERENCE_HOST``, see the
``reference_host`` fixture). To check the tests themselves, point both variables at the same
dockerd through two different URLs (e.g. a symlink to its socket): every test removes the
image from the receiving side before loading, so it passes on one engine too.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from conformance.cli import DockerCLI
from conformance.imagetools import IMAGE_ID, remove_repo, diff_id, read_saved, unique_repo

pytestmark = pytest.mark.reference


@pytest.fixture
def reference_api(reference_host: str) -> Iterator[docker.APIClient]:
    c = docker.APIClient(base_url=reference_host, version="auto", timeout=60)
    yield c
    c.close()


@pytest.fixture
def repo(api_client: docker.APIClient, reference_api: docker.APIClient) -> Iterator[str]:
    """A fresh repository name, cleaned from both engines afterwards."""
    name = unique_repo("conf-interop")
    yield name
    for api in (api_client, reference_api):
        remove_repo(api, name)


def _import(cli: DockerCLI, tar: Path, ref: str) -> str:
    # the label makes the image (config) unique even if both URLs name one engine
    out = cli.ok("import", "-c", 'CMD ["sh"]', "-c", f"LABEL conformance.interop={uuid.uuid4().hex}",
                 "-c", "ENV PATH=/bin:/usr/bin", "-m", "interop", str(tar), ref)  # fmt: skip
    image_id = out.strip()
    assert IMAGE_ID.match(image_id), out
    return image_id


def _inspect(cli: DockerCLI, ref: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli.ok("image", "inspect", ref))[0]  # type: ignore[no-any-return]


def _absent(cli: DockerCLI, image_id: str) -> None:
    """Remove ``image_id`` from ``cli``'s engine if present, so a load must really create it."""
    cli("rmi", "-f", image_id)
    assert cli("image", "inspect", image_id).returncode == 1


def _move(src: DockerCLI, dst: DockerCLI, ref: str, image_id: str, archive: Path) -> None:
    src.ok("save", "-o", str(archive), ref)
    saved = read_saved(archive.read_bytes())
    assert saved.config_ids == [image_id]
    _absent(dst, image_id)
    out = dst.ok("load", "-i", str(archive))
    assert out.strip().splitlines()[-1] == f"Loaded image: {ref}"


def _same_image(a: dict, b: dict) -> None:  # type: ignore[type-arg]
    assert a["Id"] == b["Id"]
    assert a["RootFS"] == b["RootFS"]
    assert a["Config"]["Cmd"] == b["Config"]["Cmd"] == ["sh"]
    assert a["Config"]["Env"] == b["Config"]["Env"]
    assert a["Config"]["Labels"] == b["Config"]["Labels"]
    assert a["Comment"] == b["Comment"] == "interop"
    assert a["Created"] == b["Created"]
    assert a["Size"] == b["Size"]
    assert a["Os"] == b["Os"] and a["Architecture"] == b["Architecture"]


def test_saved_by_engine_loads_into_reference(
    docker_cli: DockerCLI, reference_cli: DockerCLI, busybox_tar: Path, repo: str, tmp_path: Path
) -> None:
    ref = f"{repo}:from-engine"
    image_id = _import(docker_cli, busybox_tar, ref)
    original = _inspect(docker_cli, ref)
    _move(docker_cli, reference_cli, ref, image_id, tmp_path / "engine.tar")
    loaded = _inspect(reference_cli, ref)
    _same_image(original, loaded)
    assert loaded["RootFS"]["Layers"] == [diff_id(busybox_tar.read_bytes())]
    assert reference_cli.ok("history", "--format", "{{.Comment}}", ref).strip() == "interop"


def test_saved_by_reference_loads_into_engine(
    docker_cli: DockerCLI, reference_cli: DockerCLI, busybox_tar: Path, repo: str, tmp_path: Path
) -> None:
    ref = f"{repo}:from-reference"
    image_id = _import(reference_cli, busybox_tar, ref)
    original = _inspect(reference_cli, ref)
    _move(reference_cli, docker_cli, ref, image_id, tmp_path / "reference.tar")
    loaded = _inspect(docker_cli, ref)
    _same_image(original, loaded)
    assert docker_cli.ok("history", "--format", "{{.Comment}}", ref).strip() == "interop"


def test_round_trip_through_both_engines_keeps_the_id(
    docker_cli: DockerCLI, reference_cli: DockerCLI, busybox_tar: Path, repo: str, tmp_path: Path
) -> None:
    """reference -> engine -> reference: what the engine saves of a loaded image is still the
    same image (same config bytes, same layer bytes)."""
    ref = f"{repo}:round"
    image_id = _import(reference_cli, busybox_tar, ref)
    original = _inspect(reference_cli, ref)
    _move(reference_cli, docker_cli, ref, image_id, tmp_path / "a.tar")
    _move(docker_cli, reference_cli, ref, image_id, tmp_path / "b.tar")
    _same_image(original, _inspect(reference_cli, ref))


def test_pipe_engine_save_into_reference_load(
    docker_cli: DockerCLI, reference_cli: DockerCLI, docker_binary: str, repo: str, busybox_tar: Path
) -> None:
    """``docker -H engine save x | docker -H reference load`` (and back), as users move images."""
    ref = f"{repo}:piped"
    image_id = _import(docker_cli, busybox_tar, ref)
    # Just created with a unique label: the reference has it only if both URLs name one engine,
    # and then it must not be removed (it is also the source).
    script = '"$1" -H "$2" save "$4" | "$1" -H "$3" load'
    proc = subprocess.run(
        ["sh", "-c", script, "sh", docker_binary, docker_cli.host, reference_cli.host, ref],
        capture_output=True, text=True, env=reference_cli.env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"Loaded image: {ref}"
    assert _inspect(reference_cli, ref)["Id"] == image_id
