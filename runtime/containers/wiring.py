"""Building the container and exec services for the engine (one call from Engine.open)."""

from __future__ import annotations

from typing import Any

from runtime.config import DaemonConfig
from runtime.containers.adapters import ImageBackendAdapter, ImageRwLayers
from runtime.containers.execs import ExecService
from runtime.containers.health import attach as attach_health
from runtime.containers.service import ContainerService
from runtime.events import EventBus
from runtime.images.service import ImageService
from runtime.linux.cgroups import CgroupManager
from runtime.linux.cgroups_systemd import make_cgroup_manager
from runtime.process.contract import ProcessRuntime


async def open_container_services(
    config: DaemonConfig,
    events: EventBus,
    images: ImageService,
    runtime: ProcessRuntime,
    cgroups: CgroupManager | None = None,
    networking: Any = None,
    volumes: Any = None,
) -> tuple[ContainerService, ExecService]:
    """Create the services, reload containers from disk and reattach running ones.

    ``networking`` (a ``NetworkService``) is used for create-time validation, rename,
    NetworkSettings and the networking steps of starts and exits. ``volumes`` (``ContainerVolumes``) is set before the reload, so
    ``--rm`` containers that exited while the daemon was down release their volumes.
    """
    if cgroups is None:
        cgroups = make_cgroup_manager(config.cgroup_driver, config.cgroup_parent)
    containers = ContainerService(config.data_root, events, ImageBackendAdapter(images),
                                  ImageRwLayers(images), runtime, cgroups)
    if config.default_cgroupns_mode:
        containers.default_cgroupns_mode = config.default_cgroupns_mode
    if networking is not None:
        containers.set_networking(networking)
    if volumes is not None:
        containers.set_volumes(volumes)
    containers.default_init, containers.init_path = config.init, config.init_path
    execs = ExecService(containers)
    attach_health(containers, execs)
    await containers.load()
    return containers, execs


__all__ = ["open_container_services"]
