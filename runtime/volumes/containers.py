"""Volumes of containers: what the container service calls at create, start, exit and
removal (dockerd's registerMountPoints, createContainerVolumesOS/populateVolumes,
setupMounts, UnmountVolumes and removeMountPoints).

At create, in dockerd's order: mount points of ``--volumes-from`` containers, ``-v`` entries
that name a volume (created when missing), ``--mount type=volume``, then one anonymous
volume per ``Config.Volumes`` destination (the image's ``VOLUME``s) that nothing else
mounts; finally every new, empty volume that allows it gets the image's content at its
mount point (copy-up). The container holds a reference on each volume until it is removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from runtime.containers.model import Container, HostConfig, MountPoint
from runtime.errors import Conflict, EngineError, InvalidParameter, NotFound, SystemError_
from runtime.linux.syscalls import Syscalls
from runtime.spec.model import LayerMount
from runtime.storage.overlay import stack_mount
from runtime.volumes.copyup import check_not_file, populate, rootfs_view
from runtime.volumes.local import needs_mount
from runtime.volumes.model import Volume
from runtime.containers.mountspec import (
    VolumeSpec, is_volume_bind, parse_volume_bind, parse_volume_mount, parse_volumes_from,
    read_write,
)
from runtime.volumes.service import VolumeService

log = logging.getLogger(__name__)

VOLUME = "volume"
# dockerd shows "z" (SELinux shared label) for local volumes given without a mode
DEFAULT_LOCAL_MODE = "z"


@dataclass(frozen=True, slots=True)
class _CopyJob:
    destination: str
    volume: Volume
    check_file: bool  # an image VOLUME: refuse a non-directory at the destination


def volume_specs(host: HostConfig) -> list[VolumeSpec]:
    """The volumes a container's own ``Binds`` and ``Mounts`` ask for (parsed, in order)."""
    specs: list[VolumeSpec] = []
    for raw in host.binds or ():
        if is_volume_bind(raw):
            specs.append(parse_volume_bind(raw, host.volume_driver))
    for req in host.mounts or ():
        if req.type != VOLUME:
            continue
        others = tuple(name for name, value in (("BindOptions", req.bind_options),
                                                 ("TmpfsOptions", req.tmpfs_options),
                                                 ("ImageOptions", req.image_options))
                       if value is not None)
        specs.append(parse_volume_mount(req.target, req.source, req.read_only,
                                        req.volume_options, others))
    return specs


class ContainerVolumes:
    """The container service's view of the volume service."""

    def __init__(self, service: VolumeService) -> None:
        self.service = service
        self._mounted: dict[str, list[str]] = {}  # container ID -> volumes mounted for it

    # --- daemon start -----------------------------------------------------------------

    def restore(self, containers: Iterable[Container]) -> None:
        """Register the references of existing containers (and the mounts of running
        ones), so volumes in use stay protected across daemon restarts."""
        for container in containers:
            names = [m.name for m in container.mount_points if m.type == VOLUME and m.name]
            for name in names:
                try:
                    self.service.acquire(name, container.id)
                except NotFound:
                    log.warning("container %s uses volume %s, which no longer exists",
                                container.id[:12], name)
            if container.state.running:
                mounted = []
                for name in names:
                    local = self.service.driver.get(name)
                    if local is None:
                        continue
                    if needs_mount(local.volume.options):
                        local.active += 1
                        local.mounted = True
                    mounted.append(name)
                self._mounted[container.id] = mounted

    # --- create -----------------------------------------------------------------------

    async def prepare(self, container: Container, bind_points: Sequence[MountPoint],
                      lookup: Callable[[str], Container]) -> tuple[MountPoint, ...]:
        """Every mount point of a new container: ``bind_points`` (its binds and tmpfs
        mounts) plus its volumes, created, referenced and populated. On failure nothing
        stays referenced and anonymous volumes made here are removed."""
        host = container.host_config
        cid = container.id
        specs = volume_specs(host)  # parse everything before creating anything
        inherited = [(parse_volumes_from(spec), spec) for spec in host.volumes_from or ()]
        points: dict[str, MountPoint] = {p.destination: p for p in bind_points}
        explicit = set(points) | set(host.tmpfs or {})
        created: list[str] = []
        jobs: list[_CopyJob] = []
        try:
            for (ref, mode), _spec in inherited:
                try:
                    other = lookup(ref)
                except NotFound as exc:
                    raise InvalidParameter(str(exc)) from None
                for m in other.mount_points:
                    if m.destination in points:
                        continue  # the container's own binds win
                    if m.type == VOLUME and m.name:
                        self.service.acquire(m.name, cid)
                    points[m.destination] = replace(m, rw=m.rw and read_write(mode), mode="")
            for spec in specs:
                if spec.destination in explicit:
                    raise InvalidParameter(f"Duplicate mount point: {spec.destination}")
                explicit.add(spec.destination)
                previous = points.get(spec.destination)
                volume = self.service.create(spec.name, spec.driver, spec.driver_opts,
                                             spec.labels, reference=cid)
                if not spec.name:
                    created.append(volume.name)
                if previous is not None and previous.type == VOLUME and previous.name:
                    self._drop(cid, previous.name, points, spec.destination)
                points[spec.destination] = MountPoint(
                    VOLUME, volume.mountpoint, spec.destination, spec.mode or DEFAULT_LOCAL_MODE,
                    spec.rw, "", volume.name, volume.driver)
                if spec.copy_data:
                    jobs.append(_CopyJob(spec.destination, volume, False))
            for raw in container.config.volumes or ():
                destination = posixpath.normpath(raw)
                if destination in points or destination in (host.tmpfs or {}):
                    continue
                volume = self.service.create("", host.volume_driver, reference=cid)
                created.append(volume.name)
                points[destination] = MountPoint(VOLUME, volume.mountpoint, destination, "",
                                                 True, "", volume.name, volume.driver)
                jobs.append(_CopyJob(destination, volume, True))
            await self._copy_up(container, jobs)
        except BaseException:
            for m in points.values():
                if m.type == VOLUME and m.name:
                    self.service.release(m.name, cid)
            for name in created:
                try:
                    self.service.remove(name)
                except EngineError as exc:
                    log.warning("removing volume %s of a failed create: %s", name, exc)
            raise
        return tuple(points.values())

    def _drop(self, cid: str, name: str, points: dict[str, MountPoint], replaced: str) -> None:
        still_used = any(m.name == name for d, m in points.items() if d != replaced)
        if not still_used:
            self.service.release(name, cid)

    async def _copy_up(self, container: Container, jobs: list[_CopyJob]) -> None:
        layer = container.rw_layer
        if layer is None:
            return
        todo = [job for job in jobs if job.check_file or _is_empty(job.volume.mountpoint)]
        if not todo:
            return
        mounted: list[str] = []
        try:
            for job in todo:
                self.service.driver.mount(job.volume.name)
                mounted.append(job.volume.name)
            mount = stack_mount(layer.lowerdirs, layer.upperdir, layer.workdir)
            try:
                await asyncio.to_thread(_copy_jobs, self.service.driver.syscalls, mount,
                                        self.service.root, todo)
            except OSError as exc:
                raise SystemError_(f"failed to populate volume: {exc}") from exc
        finally:
            for name in mounted:
                try:
                    self.service.driver.unmount(name)
                except EngineError as exc:
                    log.warning("unmounting volume %s after copy-up: %s", name, exc)

    # --- start / exit -----------------------------------------------------------------

    def mount(self, container: Container) -> None:
        """Before the container's process starts: mount its volumes (events ``mount``)."""
        names: list[str] = []
        try:
            for m in container.mount_points:
                if m.type == VOLUME and m.name:
                    self.service.mount(m.name, container.id, m.destination, m.rw, m.propagation)
                    names.append(m.name)
        except BaseException:
            for name in names:
                self.service.unmount(name, container.id)
            raise
        self._mounted[container.id] = names

    def unmount(self, container: Container) -> None:
        """After the container's process is gone (events ``unmount``)."""
        for name in self._mounted.pop(container.id, []):
            self.service.unmount(name, container.id)

    # --- removal ----------------------------------------------------------------------

    def release(self, container: Container, remove_anonymous: bool = False) -> None:
        """The container is removed: drop its references; with ``remove_anonymous``
        (``docker rm -v``, ``--rm``) also delete its anonymous volumes no one else uses.
        Volumes the container's own config names are always kept."""
        self.unmount(container)
        volumes = [m.name for m in container.mount_points if m.type == VOLUME and m.name]
        for name in volumes:
            self.service.release(name, container.id)
        if not remove_anonymous:
            return
        try:
            named = {s.name for s in volume_specs(container.host_config) if s.name}
        except EngineError:
            named = set()
        for name in dict.fromkeys(volumes):
            if name in named:
                continue
            try:
                if not self.service.get(name).anonymous:
                    continue
                self.service.remove(name)
            except (Conflict, NotFound):
                continue  # used by another container, or already gone
            except EngineError as exc:
                log.warning("removing volume %s of container %s: %s", name,
                            container.id[:12], exc)


def _is_empty(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _copy_jobs(sc: Syscalls, mount: LayerMount, scratch: Path, jobs: list[_CopyJob]) -> None:
    with rootfs_view(sc, mount, scratch) as root_fd:
        for job in jobs:
            if job.check_file:
                check_not_file(sc, root_fd, job.destination, "")
        for job in jobs:
            populate(sc, root_fd, job.destination, job.volume.mountpoint)


__all__ = ["ContainerVolumes", "volume_specs"]
