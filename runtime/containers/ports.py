"""What the container service needs from its neighbours, as narrow Protocols.

The engine wires the real services in (images, layer store, cgroups, process runtime);
tests pass fakes. Keeping the seams here means the service does not depend on how those
services are built, only on these few calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from runtime.containers.model import Container, MountPoint, RwLayer
from runtime.linux.cgroups import CgroupHandle, Resources
from runtime.network.contract import SandboxRequest
from runtime.spec.model import ContainerSpec


class ImageRef(Protocol):
    """The parts of an image the container service reads."""

    @property
    def id(self) -> str: ...


class ImageBackend(Protocol):
    def get(self, ref: str) -> ImageRef:
        """Resolve a reference, ID or ID prefix; raises ImageNotFound("No such image: ...")."""
        ...

    def image_config(self, image: ImageRef) -> Mapping[str, Any]:
        """The image's runtime config with Docker keys (Env, Cmd, Entrypoint, ...)."""
        ...

    def repo_tags(self, image: ImageRef) -> tuple[str, ...]:
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
    def prepare(self, container_id: str, image: ImageRef) -> RwLayer:
        """Create the container's writable layer on top of ``image``."""
        ...

    def remove(self, container_id: str) -> None:
        ...

    def size(self, container_id: str) -> int:
        """Bytes in the writable layer (SizeRw)."""
        ...


class CgroupBackend(Protocol):
    """Per-container cgroups (``runtime.linux.cgroups.CgroupManager`` satisfies this).

    Optional, used where a backend has them (``CgroupManager`` has all): ``driver``,
    ``started(handle)``, ``handle_for(container_id, parent)``, ``kill_all(handle)``,
    ``freeze(handle, frozen)``, ``controller_dir(handle, name)``."""

    version: str

    def create(self, container_id: str, resources: Resources,
               parent: str = "") -> CgroupHandle: ...

    def remove(self, handle: CgroupHandle) -> None: ...

    def oom_killed(self, handle: CgroupHandle) -> bool: ...


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


class ContainerNetworking(Protocol):
    """What containers ask of the network service (``runtime.network.service.
    NetworkService`` satisfies this): create-time checks, NetworkSettings, rename."""

    async def validate_sandbox(self, request: SandboxRequest) -> list[str]:
        """Refuse a container whose networking cannot work; the warnings otherwise."""
        ...

    def settings(self, container_id: str) -> Mapping[str, Any] | None:
        """``NetworkSettings`` of a running container's sandbox (None: it has none)."""
        ...

    def inactive_settings(self, request: SandboxRequest) -> Mapping[str, Any]:
        """``NetworkSettings`` of a container that is not running."""
        ...

    async def rename_container(self, container_id: str, new_name: str) -> None:
        ...


class VolumeMounts(Protocol):
    """Volumes as containers use them (``runtime.volumes.containers.ContainerVolumes``)."""

    def restore(self, containers: Iterable[Container]) -> None:
        """Register the references of containers loaded from disk."""
        ...

    async def prepare(self, container: Container, bind_points: Sequence[MountPoint],
                      lookup: Callable[[str], Container]) -> tuple[MountPoint, ...]:
        """At create: every mount point (volumes created, referenced and populated)."""
        ...

    def mount(self, container: Container) -> None: ...

    def unmount(self, container: Container) -> None: ...

    def release(self, container: Container, remove_anonymous: bool = False) -> None:
        """At removal: drop the container's references (anonymous volumes removed)."""
        ...


class HealthHooks(Protocol):
    """Healthchecks follow the main process (``runtime.containers.health.HealthMonitors``)."""

    def container_started(self, container: Container) -> None: ...

    def container_stopped(self, container: Container) -> None: ...


__all__ = ["ImageRef", "ImageBackend", "RwLayerStore", "CgroupBackend", "NetworkSteps",
           "ContainerNetworking", "VolumeMounts", "HealthHooks"]
