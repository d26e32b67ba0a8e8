"""What the container service needs from its neighbours, as narrow Protocols.

The engine wires the real services in (images, layer store, cgroups, process runtime);
tests pass fakes. Keeping the seams here means the service does not depend on how those
services are built, only on these few calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from runtime.containers.model import RwLayer
from runtime.spec.model import ContainerSpec


class ImageRef(Protocol):
    """The parts of an image the container service reads."""

    @property
    def id(self) -> str: ...


class ImageBackend(Protocol):
    def get(self, ref: str) -> Any:
        """Resolve a reference, ID or ID prefix; raises ImageNotFound("No such image: ...")."""
        ...

    def image_config(self, image: Any) -> Mapping[str, Any]:
        """The image's runtime config with Docker keys (Env, Cmd, Entrypoint, ...)."""
        ...

    def repo_tags(self, image: Any) -> tuple[str, ...]:
        ...

    async def commit(self, parent_id: str, diff_dir: str, config: Mapping[str, Any],
                     repo_tag: str | None, comment: str, author: str,
                     container_id: str = "") -> str:
        """Create an image from ``parent_id`` plus the layer in ``diff_dir``; returns its ID.
        ``container_id`` is recorded as the image's ``container`` (shown below API 1.45)."""
        ...

    def set_usage_checker(self, users: Callable[[str], list[str]],
                          running: Callable[[str], list[str]]) -> None:
        """``users(image_id)``: IDs of containers using the image; ``running``: the subset
        that is running (``rmi -f`` cannot override those)."""
        ...


class RwLayerStore(Protocol):
    def prepare(self, container_id: str, image: Any) -> RwLayer:
        """Create the container's writable layer on top of ``image``."""
        ...

    def remove(self, container_id: str) -> None:
        ...

    def size(self, container_id: str) -> int:
        """Bytes in the writable layer (SizeRw)."""
        ...


class CgroupBackend(Protocol):
    """Per-container cgroups (``runtime.linux.cgroups.CgroupManager`` satisfies this)."""

    version: str

    def create(self, container_id: str, resources: Any, parent: str = "") -> Any: ...

    def remove(self, handle: Any) -> None: ...

    def oom_killed(self, handle: Any) -> bool: ...


class NetworkSteps(Protocol):
    """Networking's steps in a start and an exit (``runtime.network.hooks.
    ContainerNetworkSteps``); the container service calls them in its fixed order."""

    async def prepare(self, spec: ContainerSpec) -> ContainerSpec:
        """Before the start: the spec to start (``pause_before_exec`` when a new network
        namespace must be set up; ``host`` networking writes its files here)."""
        ...

    async def attach(self, spec: ContainerSpec, pid: int) -> None:
        """While the paused init waits: set up its network namespace (raises StartFailed)."""
        ...

    async def detach(self, container_id: str, pid: int | None) -> None:
        """After the main process ``pid`` exited (or a start failed)."""
        ...


__all__ = ["ImageRef", "ImageBackend", "RwLayerStore", "CgroupBackend", "NetworkSteps"]
