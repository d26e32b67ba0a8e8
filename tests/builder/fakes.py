"""An in-memory ``BuildRuntime`` and a recording ``BuildOutput`` for builder tests.

Images are config documents plus a file map; writable layers are real temporary
directories (so the COPY code runs on a real filesystem); containers "run" by calling a
script the test supplies.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.backend import (
    CacheCandidate, CommitRequest, ConfigDoc, CreatedContainer, HostOptions, ImageInfo, OutputFn,
)
from runtime.errors import ImageNotFound, NotFound
from runtime.images.model import Progress

Script = Callable[[Mapping[str, Any]], tuple[int, list[tuple[str, bytes]], dict[str, bytes]]]


@dataclass
class FakeImage:
    id: str
    config: dict[str, Any]
    parent: str = ""
    container_config: dict[str, Any] | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    created_ns: int = 0
    author: str = ""
    container: str = ""
    empty_layer: bool = True


@dataclass
class FakeContainer:
    id: str
    config: dict[str, Any]
    host: HostOptions
    workdirs: list[str] = field(default_factory=list)
    changes: dict[str, bytes] = field(default_factory=dict)


@dataclass
class FakeLayer:
    root: Path
    parent: str


class FakeRuntime:
    def __init__(self, scratch: Path, script: Script | None = None) -> None:
        self.images: dict[str, FakeImage] = {}
        self.tags: dict[str, str] = {}
        self.containers: dict[str, FakeContainer] = {}
        self.removed: list[str] = []
        self.created: list[str] = []
        self.started: list[str] = []
        self.script = script or (lambda config: (0, [], {}))
        self._scratch = scratch
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self.layers_open = 0
        self.registry: dict[str, dict[str, Any]] = {}  # pullable reference -> image config
        self.pulls: list[str] = []

    # -- helpers for tests ------------------------------------------------------------------

    def add_image(self, name: str, config: Mapping[str, Any], files: Mapping[str, bytes] | None = None) -> str:
        image_id = self._new_image(FakeImage("", dict(config), files=dict(files or {})))
        self.tags[name] = image_id
        return image_id

    def _new_image(self, image: FakeImage) -> str:
        digest = hashlib.sha256(f"{next(self._ids)}".encode()).hexdigest()
        image.id = "sha256:" + digest
        image.created_ns = next(self._clock)
        self.images[image.id] = image
        return image.id

    # -- BuildRuntime -----------------------------------------------------------------------

    def get_image(self, ref: str) -> ImageInfo:
        image_id = self.tags.get(ref) or self.tags.get(ref + ":latest") or ref
        image = self.images.get(image_id)
        if image is None:
            raise ImageNotFound(ref if ":" in ref else ref + ":latest")
        return ImageInfo(image.id, image.config, "linux", "amd64")

    def cache_candidates(self, parent_id: str) -> Sequence[CacheCandidate]:
        return [CacheCandidate(i.id, i.container_config or {}, i.created_ns, "linux", "amd64")
                for i in self.images.values() if i.parent == parent_id and i.container_config is not None]

    def image_lineage(self, ref: str) -> tuple[str, ...]:
        lineage: list[str] = []
        image_id = self.get_image(ref).id
        while image_id:
            lineage.append(image_id)
            image_id = self.images[image_id].parent
        return tuple(lineage)

    def scratch_dir(self) -> Path:
        return self._scratch

    async def create_container(self, config: ConfigDoc, host: HostOptions) -> CreatedContainer:
        container_id = hashlib.sha256(f"c{next(self._ids)}".encode()).hexdigest()
        self.containers[container_id] = FakeContainer(container_id, dict(config), host)
        self.created.append(container_id)
        return CreatedContainer(container_id)

    async def run_container(self, container_id: str, output: OutputFn) -> tuple[int, str]:
        container = self.containers[container_id]
        self.started.append(container_id)
        code, chunks, changes = self.script(container.config)
        for stream, data in chunks:
            await output(stream, data)
        container.changes.update(changes)
        return code, ""

    async def make_workdir(self, container_id: str, path: str) -> None:
        self.containers[container_id].workdirs.append(path)

    async def commit_container(self, container_id: str, request: CommitRequest) -> str:
        container = self.containers[container_id]
        parent = self.images.get(str(container.config.get("Image") or ""))
        files = dict(parent.files) if parent else {}
        files.update(container.changes)
        for path in container.workdirs:
            files.setdefault(path.strip("/") + "/", b"")
        image = FakeImage("", dict(request.config), parent=parent.id if parent else "",
                          container_config=dict(request.container_config), files=files,
                          author=request.author, container=container_id,
                          empty_layer=not container.changes and not container.workdirs)
        return self._new_image(image)

    async def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id)
        self.removed.append(container_id)

    async def open_layer(self, image_id: str) -> FakeLayer:
        root = Path(tempfile.mkdtemp(dir=self._scratch, prefix="layer-"))
        image = self.images.get(image_id)
        for path, data in (image.files if image else {}).items():
            target = root / path
            if path.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self.layers_open += 1
        return FakeLayer(root, image_id)

    async def commit_layer(self, layer: Any, parent_id: str, request: CommitRequest) -> str:
        files: dict[str, bytes] = {}
        for dirpath, dirnames, filenames in os.walk(layer.root):
            rel_dir = os.path.relpath(dirpath, layer.root)
            for name in dirnames:
                files[os.path.normpath(os.path.join(rel_dir, name)) + "/"] = b""
            for name in filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(rel_dir, name))
                files[rel] = b"->" + os.readlink(full).encode() if os.path.islink(full) else open(full, "rb").read()
        image = FakeImage("", dict(request.config), parent=parent_id,
                          container_config=dict(request.container_config), files=files,
                          author=request.author, empty_layer=False)
        return self._new_image(image)

    async def release_layer(self, layer: Any) -> None:
        shutil.rmtree(layer.root, ignore_errors=True)
        self.layers_open -= 1

    async def tag(self, image_id: str, reference: str) -> None:
        self.tags[reference] = image_id

    async def pull_image(self, reference: str, output: Any) -> ImageInfo:
        name = reference if ":" in reference else reference + ":latest"
        self.pulls.append(name)
        await output.progress(Progress(status=f"Pulling from library/{name.split(':')[0]}", id=name.split(":")[1]))
        if name not in self.registry:
            raise NotFound(f"pull access denied for {name.split(':')[0]}, repository does not exist")
        await output.progress(Progress(status="Downloading", id="abc", current=5, total=10))
        self.add_image(name, self.registry[name])
        return self.get_image(name)

    # -- inspection -------------------------------------------------------------------------

    def history(self, image_id: str) -> list[str]:
        """``created_by`` of each build step, newest first (as ``docker history``)."""
        out = []
        current = self.images.get(image_id)
        while current is not None and current.container_config is not None:
            out.append(" ".join(current.container_config.get("Cmd") or []))
            current = self.images.get(current.parent)
        return out


class RecordingOutput:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def stdout(self, text: str) -> None:
        self.events.append(("stdout", text))

    async def stderr(self, text: str) -> None:
        self.events.append(("stderr", text))

    async def aux(self, value: Mapping[str, Any]) -> None:
        self.events.append(("aux", dict(value)))

    async def progress(self, record: Progress) -> None:
        self.events.append(("progress", record))

    @property
    def text(self) -> str:
        return "".join(v for k, v in self.events if k in ("stdout", "stderr"))

    @property
    def auxes(self) -> list[dict[str, Any]]:
        return [v for k, v in self.events if k == "aux"]


__all__ = ["FakeRuntime", "FakeImage", "FakeContainer", "FakeLayer", "RecordingOutput", "Script"]
