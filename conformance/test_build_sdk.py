"""docker-py's build API against the classic builder: ``images.build`` finds the image from
the ``Successfully built`` line, ``APIClient.build`` streams the JSON messages, and
failures become ``BuildError`` with the daemon's message.

Checked against dockerd 20.10 and run against pydockerd; every test removes the images its
builds tagged (with their intermediate parents).
"""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from conformance.imagetools import remove_repo, unique_repo


@pytest.fixture
def repo(api_client: docker.APIClient, busybox_image: str) -> Iterator[str]:
    name = unique_repo("conf-sdkbuild")
    yield name
    remove_repo(api_client, name)


def context_dir(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, content in (files or {}).items():
        (ctx / name).write_text(content)
    return ctx


def test_images_build_returns_the_image(client: docker.DockerClient, repo: str, tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex
    ctx = context_dir(tmp_path, f"FROM busybox:latest\nCOPY hello.txt /\nRUN echo {nonce}\nCMD [\"cat\", \"/hello.txt\"]\n",
                      {"hello.txt": "hi from build\n"})
    image, logs = client.images.build(path=str(ctx), tag=f"{repo}:v1", rm=True)
    entries = list(logs)
    streams = "".join(e.get("stream", "") for e in entries)
    assert f"{nonce}\n" in streams and "Successfully built " + image.short_id[7:] in streams
    assert f"Successfully tagged {repo}:v1" in streams
    aux = [e["aux"] for e in entries if "aux" in e]
    assert aux == [{"ID": image.id}]
    assert f"{repo}:v1" in image.tags
    assert image.attrs["Config"]["Cmd"] == ["cat", "/hello.txt"]
    assert client.containers.run(image.id, remove=True) == b"hi from build\n"


def test_build_options(client: docker.DockerClient, repo: str, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path, "FROM busybox:latest AS first\nARG WHO\nLABEL who=$WHO\n"
                                "FROM first AS second\nLABEL stage=second\n")
    image, _ = client.images.build(path=str(ctx), tag=f"{repo}:opts", buildargs={"WHO": "sdk"},
                                   labels={"extra": "yes"}, target="first", nocache=True, rm=True)
    assert image.labels == {"who": "sdk", "extra": "yes"}


def test_fileobj_build_streams_json(api_client: docker.APIClient, repo: str) -> None:
    dockerfile = io.BytesIO(f"FROM busybox:latest\nRUN echo streamed-{uuid.uuid4().hex[:8]}\n".encode())
    messages = list(api_client.build(fileobj=dockerfile, tag=f"{repo}:stream", decode=True, rm=True))
    assert all(isinstance(m, dict) for m in messages)
    assert messages[0] == {"stream": "Step 1/2 : FROM busybox:latest"}
    assert any(m.get("stream", "").startswith("streamed-") for m in messages)
    assert messages[-1] == {"stream": f"Successfully tagged {repo}:stream\n"}


def test_custom_gzip_context(client: docker.DockerClient, repo: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("Dockerfile", b"FROM busybox:latest\nCOPY data /data\n"), ("data", b"gz")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    image, _ = client.images.build(fileobj=buf, custom_context=True, encoding="gzip", tag=f"{repo}:gz", rm=True)
    container = client.containers.create(image.id, ["true"])
    try:
        stream, _ = container.get_archive("/data")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile("data")
            assert member is not None and member.read() == b"gz"
    finally:
        container.remove(force=True)


def test_quiet_build(api_client: docker.APIClient, repo: str, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path, f"FROM busybox:latest\nLABEL q={uuid.uuid4().hex}\n")
    messages = list(api_client.build(path=str(ctx), tag=f"{repo}:q", quiet=True, decode=True, rm=True))
    image_id = api_client.inspect_image(f"{repo}:q")["Id"]
    assert messages == [{"stream": image_id + "\n"}]


def test_build_error(client: docker.DockerClient, repo: str, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path, "FROM busybox:latest\nRUN echo failing-step && exit 7\n")
    with pytest.raises(docker.errors.BuildError) as info:
        client.images.build(path=str(ctx), tag=f"{repo}:fail", forcerm=True, nocache=True)
    assert info.value.msg == "The command '/bin/sh -c echo failing-step && exit 7' returned a non-zero code: 7"
    log: list[dict[str, Any]] = list(info.value.build_log)
    assert {"stream": "failing-step\n"} in log
    assert log[-1]["errorDetail"] == {"code": 7, "message": info.value.msg}


def test_parse_error_is_an_api_error(client: docker.DockerClient, repo: str, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path, "FROM busybox:latest\nNOPE x\n")
    with pytest.raises(docker.errors.APIError) as info:
        client.images.build(path=str(ctx), tag=f"{repo}:bad")
    assert info.value.status_code == 400
    assert info.value.explanation == "dockerfile parse error line 2: unknown instruction: NOPE"


def test_prune_build_cache_on_pydockerd(api_client: docker.APIClient, engine_kind: str) -> None:
    if engine_kind != "pydockerd":
        pytest.skip("prunes the engine's whole build cache")  # never on a shared engine
    assert api_client.prune_builds() == {"CachesDeleted": None, "SpaceReclaimed": 0}


def test_build_cache_from_limits_reuse_to_the_given_images(
    api_client: docker.APIClient, repo: str, tmp_path: Path
) -> None:
    """``cache_from``: steps are reused only from the named images (and their parents)."""
    nonce = uuid.uuid4().hex
    dockerfile = f"FROM busybox:latest\nENV NONCE={nonce}\nRUN touch /baz\nRUN touch /bax\n"
    ctx = context_dir(tmp_path, dockerfile)

    def cached_steps(tag: str, cache_from: list[str]) -> int:
        out = api_client.build(path=str(ctx), tag=f"{repo}:{tag}", cache_from=cache_from, rm=True, decode=True)
        return sum(" ---> Using cache" in chunk.get("stream", "") for chunk in out)

    assert cached_steps("one", []) == 0
    assert cached_steps("two", [f"{repo}:one"]) == 3
    assert cached_steps("three", [unique_repo("conf-nosuchtag")]) == 0
