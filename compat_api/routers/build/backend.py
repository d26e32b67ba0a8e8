"""``builder.backend.BuildRuntime`` on the engine's services (images, containers, layers).

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
import base64
import binascii
import contextlib
import json
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from builder.backend import (
    BuildOutput, CacheCandidate, CommitRequest, ConfigDoc, CreatedContainer, HostOptions, ImageInfo, OutputFn,
)
from builder.context import resolve_in_scope
from compat_api.appkeys import ENGINE
from compat_api.convert.containers import config_from_wire
from runtime.archive.rootfd import DIR_FLAGS, RootFD
from runtime.containers.attach import AttachOptions
from runtime.containers.model import HostConfig, LogConfig, Ulimit, new_id
from runtime.containers.service import ContainerService, CreateRequest
from runtime.containers.state import WaitCondition
from runtime.engine import Engine
from runtime.errors import NotFound, NotImplementedFeature, SystemError_
from runtime.images.auth import AuthConfig
from runtime.images.model import Image, Progress
from runtime.images.reference import parse_normalized_named
from runtime.images.service import ImageService
from runtime.linux.syscalls import LinuxSyscalls
from runtime.statefile import ensure_private_dir
from runtime.storage.snapshots import is_mounted, perform_mount, unmount

log = logging.getLogger(__name__)

BUILDER_DIR = "builder"
OPAQUE_XATTR = "trusted.overlay.opaque"
# mount targets the container runtime creates when an image lacks them; dockerd keeps
# them in an init layer below the container's, so they never reach a committed layer
_MOUNT_TARGET_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv")
_MOUNT_TARGET_DIRS = ("dev/pts", "dev/shm", "dev/mqueue", "dev", "proc", "sys", "etc")


@dataclass(slots=True)
class MountedLayer:
    """A writable layer of the overlay store, mounted at ``root``."""

    key: str
    root: Path
    upper: Path
    lowerdirs: tuple[str, ...] = ()
    mounted: bool = True


@dataclass(slots=True)
class _Virtual:
    """A step "container" on scratch: only a writable layer on nothing."""

    layer: MountedLayer
    extra: dict[str, Any] = field(default_factory=dict)


class EngineBuildRuntime:
    """See module docs. One instance per build."""

    def __init__(self, images: ImageService, containers: ContainerService, data_root: Path,
                 auth_configs: Mapping[str, AuthConfig] | None = None, platform: str = "") -> None:
        self.images = images
        self.containers = containers
        self.data_root = data_root
        self.auth_configs = dict(auth_configs or {})
        self.platform = platform
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
            self._virtual[virtual_id] = _Virtual(layer, {"Cmd": list(config.get("Cmd") or [])})
            return CreatedContainer(virtual_id)
        request = CreateRequest(config=config_from_wire(config), host_config=_host_config(host))
        result = await self.containers.create(request)
        return CreatedContainer(result.id, tuple(result.warnings))

    async def run_container(self, container_id: str, output: OutputFn) -> tuple[int, str]:
        virtual = self._virtual.get(container_id)
        if virtual is not None:
            # the first step on scratch: an empty filesystem has nothing to execute
            argv0 = str((virtual.extra.get("Cmd") or ["/bin/sh"])[0])
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
        layers = self.images.layers
        mount = layers.mounts(container_id)
        target = layers.merged_dir(container_id)

        def work() -> None:
            perform_mount(mount, target, LinuxSyscalls())
            try:
                _mkdir_in_root(target, path)
            finally:
                unmount(target)

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
        await asyncio.to_thread(_prune_mount_targets, upper, container.rw_layer.lowerdirs)
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
        layers = self.images.layers
        image = self.images.get(image_id) if image_id else None
        key = "build-" + new_id()

        def work() -> MountedLayer:
            mount = layers.prepare(key, image.chain_id if image is not None else None)
            target = layers.merged_dir(key)
            lowerdirs = tuple(str(p) for p in self.images.rootfs_lowerdirs(image)) if image is not None else ()
            try:
                perform_mount(mount, target, LinuxSyscalls())
            except BaseException:
                layers.remove(key)
                raise
            return MountedLayer(key, target, layers.upper_dir(key), lowerdirs)

        return await asyncio.to_thread(work)

    async def commit_layer(self, layer: Any, parent_id: str, request: CommitRequest, container_id: str = "") -> str:
        assert isinstance(layer, MountedLayer)
        await asyncio.to_thread(_unmount_layer, layer)
        parent: Image | None = self.images.get(parent_id) if parent_id else None
        image = await self.images.commit(
            parent, layer.upper, request.config, None, author=request.author,
            created_by=_created_by(request.container_config), container_id=container_id,
            container_config=request.container_config,
        )
        return image.id

    async def release_layer(self, layer: Any) -> None:
        assert isinstance(layer, MountedLayer)
        layers = self.images.layers

        def work() -> None:
            _unmount_layer(layer)
            try:
                layers.remove(layer.key)
            except NotFound:
                pass

        await asyncio.to_thread(work)


def _unmount_layer(layer: MountedLayer) -> None:
    if layer.mounted:
        if is_mounted(layer.root):
            unmount(layer.root)
        layer.mounted = False


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


def _lstat_below(root: str, rel: str) -> os.stat_result | None:
    """``lstat`` of ``root/rel`` without following any symlink on the way; None when it
    does not exist, and the symlink's own stat when a component is one."""
    current = root
    st: os.stat_result | None = None
    for comp in rel.split("/"):
        current = os.path.join(current, comp)
        try:
            st = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return st
    return st


def _prune_mount_targets(upper: Path, lowerdirs: Sequence[str]) -> None:
    """Remove what only the runtime's mounts created in a stopped container's upper dir:
    empty placeholder files and directories the image does not have, and directories
    copied up just to hold them."""
    def in_image(rel: str) -> bool:
        return any(_lstat_below(lower, rel) is not None for lower in lowerdirs)

    for rel in _MOUNT_TARGET_FILES:
        path = upper / rel
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == 0 and not in_image(rel):
            os.unlink(path)
    for rel in _MOUNT_TARGET_DIRS:
        path = upper / rel
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISDIR(st.st_mode) or os.listdir(path) or _opaque(path):
            continue
        if not in_image(rel):
            os.rmdir(path)
            continue
        if _same_dir_metadata(st, lowerdirs, rel):
            os.rmdir(path)  # only copied up: the image's own directory shows through


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _same_dir_metadata(st: os.stat_result, lowerdirs: Sequence[str], rel: str) -> bool:
    for lower in lowerdirs:
        low = _lstat_below(lower, rel)
        if low is None:
            continue
        return (stat.S_ISDIR(low.st_mode) and low.st_mode == st.st_mode
                and low.st_uid == st.st_uid and low.st_gid == st.st_gid)
    return False


_DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def decode_auth_configs(header: str) -> dict[str, AuthConfig]:
    """``X-Registry-Config``: base64url JSON of ``{registry: AuthConfig}``. As dockerd,
    a value that does not decode means "no credentials"."""
    if not header:
        return {}
    try:
        padded = header.strip() + "=" * (-len(header.strip()) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    if not isinstance(doc, Mapping):
        return {}
    return {str(key): AuthConfig.from_json(value) for key, value in doc.items()}


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


def build_runtime(request: web.Request) -> EngineBuildRuntime:
    engine: Engine = request.app[ENGINE]
    if engine.images is None or engine.containers is None:
        raise NotImplementedFeature("building images is not available in this engine")
    return EngineBuildRuntime(engine.images, engine.containers, engine.config.data_root,
                              decode_auth_configs(request.headers.get("X-Registry-Config", "")),
                              request.query.get("platform", ""))


__all__ = ["EngineBuildRuntime", "MountedLayer", "build_runtime", "decode_auth_configs", "resolve_auth"]
