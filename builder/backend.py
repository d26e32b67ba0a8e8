"""What the builder needs from the engine: the ``BuildRuntime`` seam.

The classic builder drives the daemon's own operations (moby's ``builder.Backend``):
look up images, create a container per step, run it with its output streamed into the
build, make the ``WORKDIR`` in it, commit it as the step's image, and remove it. ``COPY``
and ``ADD`` work on a writable layer mounted on the current image (no container), which
is then committed as one layer, as dockerd's ``performCopy`` + ``exportImage`` do.

Configs cross this seam as Docker's JSON (``container.Config`` documents) because that is
what image configs store; :class:`builder.state.RunConfig` converts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runtime.images.model import Progress

ConfigDoc = Mapping[str, Any]
OutputFn = Callable[[str, bytes], Awaitable[None]]  # (stream "stdout"/"stderr", data)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """A local image as a build base. ``id`` is "" for ``FROM scratch``."""

    id: str
    config: ConfigDoc = field(default_factory=dict)  # the runtime config section
    os: str = "linux"
    architecture: str = ""
    variant: str = ""


@dataclass(frozen=True, slots=True)
class CacheCandidate:
    """A child image of the step's parent that may be reused (``---> Using cache``)."""

    id: str
    container_config: ConfigDoc
    created_ns: int
    os: str = "linux"
    architecture: str = ""


@dataclass(frozen=True, slots=True)
class HostOptions:
    """Host settings of every build container (from the ``/build`` query)."""

    network_mode: str = ""
    extra_hosts: tuple[str, ...] = ()
    shm_size: int = 0
    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    cgroup_parent: str = ""
    ulimits: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class CreatedContainer:
    id: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommitRequest:
    """A build step's image: ``config`` is the new image's runtime config,
    ``container_config`` the step's (its ``Cmd`` becomes the history's ``created_by``)."""

    config: ConfigDoc
    container_config: ConfigDoc
    author: str = ""


class WritableLayer(Protocol):
    """A writable layer mounted at ``root`` (the image's files, changes recorded)."""

    @property
    def root(self) -> Path: ...


class BuildRuntime(Protocol):
    """The engine operations a build uses. Lookups raise ``runtime.errors.NotFound``
    categories with Docker's texts; everything else raises engine error categories."""

    def get_image(self, ref: str) -> ImageInfo:
        """A local image by reference or ID (no pulling: this daemon has no registry)."""

    def cache_candidates(self, parent_id: str) -> Sequence[CacheCandidate]:
        """Locally built children of ``parent_id`` (none for "")."""

    def image_lineage(self, ref: str) -> tuple[str, ...]:
        """IDs of a local image and of its parents, nearest first (``--cache-from``)."""

    def scratch_dir(self) -> Path:
        """A private directory for build contexts (may be shared by concurrent builds)."""

    async def create_container(self, config: ConfigDoc, host: HostOptions) -> CreatedContainer:
        """Create (not start) a container from ``config`` (its ``Image`` is the base)."""

    async def run_container(self, container_id: str, output: OutputFn) -> tuple[int, str]:
        """Start the container, pass its stdout/stderr to ``output`` as it comes, and wait
        for it to exit: (exit code, error text)."""

    async def make_workdir(self, container_id: str, path: str) -> None:
        """Create directory ``path`` (and parents) in the container's filesystem."""

    async def commit_container(self, container_id: str, request: CommitRequest) -> str:
        """The container's changes as a new image on top of its image; returns its ID."""

    async def remove_container(self, container_id: str) -> None:
        """Remove the container and its writable layer (no error if already gone)."""

    async def open_layer(self, image_id: str) -> WritableLayer:
        """A writable layer on ``image_id`` ("" for an empty one), mounted."""

    async def commit_layer(self, layer: WritableLayer, parent_id: str, request: CommitRequest) -> str:
        """The layer's changes as a new image on ``parent_id``; returns its ID."""

    async def release_layer(self, layer: WritableLayer) -> None:
        """Unmount and delete the layer (committed or not)."""

    async def tag(self, image_id: str, reference: str) -> None:
        """Point ``reference`` (``name:tag``, normalized) at the image."""

    async def pull_image(self, reference: str, output: BuildOutput) -> ImageInfo:
        """Pull ``reference`` from its registry, reporting progress to ``output`` (dockerd
        pulls a base image it does not have, and every one with ``--pull``)."""


class BuildOutput(Protocol):
    """Where build output goes: the ``stream``/``aux`` lines of the ``/build`` answer."""

    async def stdout(self, text: str) -> None: ...

    async def stderr(self, text: str) -> None: ...

    async def aux(self, value: Mapping[str, Any]) -> None: ...

    async def progress(self, record: Progress) -> None:
        """A pull progress record (``Pulling from ...``, per-layer bars)."""


__all__ = ["ConfigDoc", "OutputFn", "ImageInfo", "CacheCandidate", "HostOptions",
           "CreatedContainer", "CommitRequest", "WritableLayer", "BuildRuntime", "BuildOutput"]
