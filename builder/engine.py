"""``builder.backend.BuildRuntime`` on the engine's services (images, containers, layers).

The compat_api build router constructs one per build (:func:`engine_build_runtime`) and
hands it to :func:`builder.builder.build_from_reader`; the work below the builder is the
runtime's: mounting layers (``runtime.storage.mounted``) and pruning what the container
runtime left in a step's upper directory (``runtime.containers.mounttargets``).

Build containers are ordinary containers (``docker ps -a`` shows them while a step runs),
created, attached, started, waited for and committed through the container service, as
dockerd's builder does through its daemon. ``COPY``/``ADD`` layers are writable layers of
the image service's overlay store, mounted for the copy and committed as one layer.

Steps on ``FROM scratch`` have no image to create a container from; their metadata steps
commit from a writable layer on nothing instead (dockerd creates an imageless container).
Base images that are not present are pulled with the image service, using the
credentials the client sent in ``X-Registry-Config``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.backend import (
    BuildOutput, CacheCandidate, CommitRequest, ConfigDoc, CreatedContainer, HostOptions, ImageInfo, OutputFn,
    WritableLayer,
)
from builder.context import resolve_in_scope
from runtime.archive.rootfd import DIR_FLAGS, RootFD
from runtime.containers.attach import AttachOptions
from runtime.containers.model import ContainerConfig, HostConfig, LogConfig, Ulimit, new_id
from runtime.containers.mounttargets import prune_mount_targets
from runtime.containers.service import ContainerService, CreateRequest
from runtime.containers.state import WaitCondition
from runtime.errors import NotFound, SystemError_
from runtime.images.auth import AuthConfig
from runtime.images.model import Image, Progress
from runtime.images.reference import parse_normalized_named
from runtime.images.service import ImageService
from runtime.statefile import ensure_private_dir
from runtime.storage.mounted import LayerMounts, MountedLayer

BUILDER_DIR = "builder"
#: ``container.Config`` JSON -> the runtime's ContainerConfig (the API's own decoder)
ConfigDecoder = Callable[[ConfigDoc], ContainerConfig]


@dataclass(frozen=True, slots=True)
class _Virtual:
    """A step "container" on scratch: only a writable layer on nothing."""

    layer: MountedLayer
    cmd: tuple[str, ...] = ()


class EngineBuildRuntime:
    """See module docs. One instance per build."""

    def __init__(self, images: ImageService, containers: ContainerService, data_root: Path,
                 decode_config: ConfigDecoder, auth_configs: Mapping[str, AuthConfig] | None = None,
                 platform: str = "", layer_mounts: LayerMounts | None = None) -> None:
        self.images = images
        self.containers = containers
        self.data_root = data_root
        self.decode_config = decode_config
        self.auth_configs = dict(auth_configs or {})
        self.platform = platform
        self.layers = layer_mounts if layer_mounts is not None else LayerMounts(images.layers)
        self._virtual: dict[str, _Virtual] = {}

    # -- images -----------------------------------------------------------------------------

    def get_image(self, ref: str) -> ImageInfo:
        image = self.images.get(ref)
        return _image_info(image)

    def cache_candidates(self, parent_id: str) -> Sequence[CacheCandidate]:
        out: list[CacheCandidate] = []
        store = self.images.store
        for child in store.children(parent_id):
            try:
                image = store.get(child)
            except NotFound:
                continue
            container_config = image.config.get("container_config")
            if not isinstance(container_config, Mapping):
                continue
            out.append(CacheCandidate(child, container_config, image.created_ns,
                                      str(image.config.get("os") or ""), str(image.config.get("architecture") or "")))
        return out

    def image_lineage(self, ref: str) -> tuple[str, ...]:
        image_id = self.images.get(ref).id
        lineage: list[str] = []
        while image_id and image_id not in lineage:
            lineage.append(image_id)
            image_id = self.images.store.parent(image_id)
        return tuple(lineage)

    def scratch_dir(self) -> Path:
        return ensure_private_dir(self.data_root / BUILDER_DIR)

    async def tag(self, image_id: str, reference: str) -> None:
        ref = parse_normalized_named(reference).with_default_tag()
        await self.images.tag(image_id, ref.familiar_name, ref.tag or "latest")

    async def pull_image(self, reference: str, output: BuildOutput) -> ImageInfo:
        ref = parse_normalized_named(reference)
        if ref.digest is None:
            ref = ref.with_default_tag()
        queue: asyncio.Queue[Progress | None] = asyncio.Queue()

        async def pump() -> None:
            while (record := await queue.get()) is not None:
                await output.progress(record)

        pumping = asyncio.ensure_future(pump())
        try:
            await self.images.pull(ref, resolve_auth(self.auth_configs, ref.domain), queue.put_nowait,
                                   platform=self.platform)
        finally:
            queue.put_nowait(None)
            await pumping
        return self.get_image(ref.familiar)

    # -- containers -------------------------------------------------------------------------

    async def create_container(self, config: ConfigDoc, host: HostOptions) -> CreatedContainer:
        if not config.get("Image"):
            virtual_id = new_id()
            layer = await self.open_layer("")
            self._virtual[virtual_id] = _Virtual(layer, tuple(str(c) for c in config.get("Cmd") or ()))
            return CreatedContainer(virtual_id)
        request = CreateRequest(config=self.decode_config(config), host_config=_host_config(host))
        result = await self.containers.create(request)
        return CreatedContainer(result.id, tuple(result.warnings))

    async def run_container(self, container_id: str, output: OutputFn) -> tuple[int, str]:
        virtual = self._virtual.get(container_id)
        if virtual is not None:
            # the first step on scratch: an empty filesystem has nothing to execute
            argv0 = (virtual.cmd or ("/bin/sh",))[0]
            raise SystemError_(f'failed to create task for container: exec: "{argv0}": stat {argv0}: '
                               "no such file or directory: the image has no files yet (FROM scratch)")
        service = self.containers
        attachment = service.attach(container_id, AttachOptions(stream=True, stdout=True, stderr=True))
        try:
            await service.start(container_id)
            async for stream, data in attachment.output():
                await output(stream, data)
            status = await service.wait(container_id, WaitCondition.NOT_RUNNING)
        except BaseException:
            # a failed output (client gone) or a cancelled build must not leave it running
            with contextlib.suppress(Exception):
                await service.remove(container_id, force=True)
            raise
        finally:
            attachment.close()
        return status.exit_code, status.error

    async def make_workdir(self, container_id: str, path: str) -> None:
        virtual = self._virtual.get(container_id)
        if virtual is not None:
            await asyncio.to_thread(_mkdir_in_root, virtual.layer.root, path)
            return

        def work() -> None:
            with self.layers.mounted(container_id) as root:
                _mkdir_in_root(root, path)

        await asyncio.to_thread(work)

    async def commit_container(self, container_id: str, request: CommitRequest) -> str:
        virtual = self._virtual.get(container_id)
        if virtual is not None:
            return await self.commit_layer(virtual.layer, "", request, container_id=container_id)
        container = self.containers.get(container_id)
        if container.rw_layer is None:
            raise SystemError_(f"container {container_id} has no writable layer")
        parent = self.images.get(container.image_id)
        upper = Path(container.rw_layer.upperdir)
        await asyncio.to_thread(prune_mount_targets, upper, container.rw_layer.lowerdirs)
        image = await self.images.commit(
            parent, upper, request.config, None, author=request.author,
            created_by=_created_by(request.container_config), container_id=container_id,
            container_config=request.container_config,
        )
        return image.id

    async def remove_container(self, container_id: str) -> None:
        virtual = self._virtual.pop(container_id, None)
        if virtual is not None:
            await self.release_layer(virtual.layer)
            return
        await self.containers.remove(container_id, force=True, volumes=True)

    # -- writable layers --------------------------------------------------------------------

    async def open_layer(self, image_id: str) -> MountedLayer:
        image = self.images.get(image_id) if image_id else None
        parent = image.chain_id if image is not None else None
        return await asyncio.to_thread(self.layers.open, "build-" + new_id(), parent)

    async def commit_layer(self, layer: WritableLayer, parent_id: str, request: CommitRequest,
                           container_id: str = "") -> str:
        mounted = _mounted(layer)
        await asyncio.to_thread(self.layers.unmount, mounted)
        parent: Image | None = self.images.get(parent_id) if parent_id else None
        image = await self.images.commit(
            parent, mounted.upper, request.config, None, author=request.author,
            created_by=_created_by(request.container_config), container_id=container_id,
            container_config=request.container_config,
        )
        return image.id

    async def release_layer(self, layer: WritableLayer) -> None:
        await asyncio.to_thread(self.layers.release, _mounted(layer))


def _mounted(layer: WritableLayer) -> MountedLayer:
    if not isinstance(layer, MountedLayer):
        raise TypeError(f"not a layer of this build runtime: {layer!r}")
    return layer


def _image_info(image: Image) -> ImageInfo:
    config = image.config
    return ImageInfo(id=image.id, config=dict(image.runtime_config), os=str(config.get("os") or "linux"),
                     architecture=str(config.get("architecture") or ""), variant=str(config.get("variant") or ""))


def _created_by(container_config: ConfigDoc) -> str:
    return " ".join(str(c) for c in container_config.get("Cmd") or ())


def _host_config(host: HostOptions) -> HostConfig:
    network = host.network_mode
    if network in ("", "default"):
        network = "bridge"  # dockerd's builder never passes "default" to create
    ulimits = tuple(Ulimit(str(u.get("Name", "")), int(u.get("Soft", 0)), int(u.get("Hard", 0)))
                    for u in host.ulimits)
    return HostConfig(
        network_mode=network, log_config=LogConfig("none"), shm_size=host.shm_size,
        memory=host.memory, memory_swap=host.memory_swap, cpu_shares=host.cpu_shares,
        cpu_period=host.cpu_period, cpu_quota=host.cpu_quota, cpuset_cpus=host.cpuset_cpus,
        cpuset_mems=host.cpuset_mems, cgroup_parent=host.cgroup_parent,
        extra_hosts=tuple(host.extra_hosts) or None, ulimits=ulimits or None,
    )


def _mkdir_in_root(root: Path, path: str) -> None:
    """``mkdir -p path`` below ``root``, symlinks resolved inside it first (dockerd's
    ``SetupWorkingDirectory``: new directories 0755, owned by root)."""
    real = resolve_in_scope(root, path)
    fd = os.open(root, DIR_FLAGS)
    resolver = RootFD(fd)
    old = os.umask(0o022)
    try:
        resolver.dir(real, create=True, mode=0o755)
    except NotADirectoryError:
        raise SystemError_(f"mkdir {path}: not a directory") from None
    finally:
        os.umask(old)
        resolver.close()
        os.close(fd)


_DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def _hostname(key: str) -> str:
    key = key.removeprefix("https://").removeprefix("http://")
    return key.split("/", 1)[0]


def resolve_auth(configs: Mapping[str, AuthConfig], domain: str) -> AuthConfig:
    """The credentials for registry ``domain`` (dockerd's ``ResolveAuthConfig``: keys may
    be URLs; Docker Hub is known under several names)."""
    hub = domain in _DOCKER_HUB_HOSTS
    for key, auth in configs.items():
        host = _hostname(key)
        if host == domain or (hub and host in _DOCKER_HUB_HOSTS):
            return auth
    return AuthConfig()


__all__ = ["EngineBuildRuntime", "ConfigDecoder", "resolve_auth"]
