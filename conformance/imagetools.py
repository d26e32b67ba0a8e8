"""Small helpers shared by the image conformance tests (test_images_*.py).

Image tests run against shared engines (a reference dockerd other people use too), so every
name a test makes is unique (``conf-img-<hex>``) and every destructive command is scoped: prune
runs with a per-test ``label=`` filter, never over the whole engine.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors

FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z
IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


#: bytes of content in a default :func:`tiny_layer` ("3.6kB" in the CLI's units)
TINY_SIZE = 3600


def unique_repo(prefix: str = "conf-img") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def tiny_layer(content: bytes | None = None, name: str = "hello") -> bytes:
    """A one-file rootfs tar whose content (hence diff ID and layer) is unique by default."""
    data = content if content is not None else (uuid.uuid4().hex * 113)[:TINY_SIZE].encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = FIXED_MTIME
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def layer_size(layer: bytes) -> int:
    """dockerd's size of a layer: regular file bytes plus symlink target lengths."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = tar.getmembers()
    return sum(m.size for m in members if m.isfile()) + sum(len(m.linkname) for m in members if m.issym())


def diff_id(layer: bytes) -> str:
    return "sha256:" + hashlib.sha256(layer).hexdigest()


@dataclass(frozen=True, slots=True)
class SavedArchive:
    """What ``docker save`` wrote: the docker-archive part every engine writes."""

    manifest: list[dict[str, object]]
    repositories: dict[str, dict[str, str]] | None
    names: list[str]
    configs: dict[str, bytes] = field(default_factory=dict)

    @property
    def config_ids(self) -> list[str]:
        return ["sha256:" + hashlib.sha256(c).hexdigest() for c in self.configs.values()]


def read_saved(data: bytes) -> SavedArchive:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        repositories = None
        if "repositories" in names:
            repositories = json.load(tar.extractfile("repositories"))  # type: ignore[arg-type]
        configs = {
            str(m["Config"]): tar.extractfile(str(m["Config"])).read()  # type: ignore[union-attr]
            for m in manifest
        }
    return SavedArchive(manifest, repositories, names, configs)


def json_stream(body: bytes) -> list[dict[str, Any]]:
    """The messages of a JSON progress stream (one object per line)."""
    out = []
    for line in body.decode(errors="replace").splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


def remove_quietly(api: docker.APIClient, refs: Iterator[str] | list[str]) -> None:
    for ref in refs:
        try:
            api.remove_image(ref, force=True)
        except (docker.errors.APIError, OSError):
            pass


def remove_repo(api: docker.APIClient, repo: str) -> None:
    """Force-remove every image tagged into ``repo`` (best effort, for fixture teardown)."""
    for _ in range(2):  # a second pass catches images a first removal only untagged
        try:
            images = api.images(name=repo)
        except (docker.errors.APIError, OSError):
            return  # e.g. the engine cannot list images yet
        for img in images:
            try:
                api.remove_image(img["Id"], force=True)
            except (docker.errors.APIError, OSError):
                pass
