"""``docker create`` (``POST /containers/create``): validate, merge the image's config, fill
dockerd's defaults, reserve the name, then the record, writable layer, volumes and /etc
files; all undone when a step fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from runtime.containers.context import ContainerContext
from runtime.containers.etcfiles import write_etc_files
from runtime.containers.imageconfig import command_line, merge_image_config
from runtime.containers.model import (
    Container, ContainerConfig, HostConfig, LogConfig, new_id, validate_name,
)
from runtime.containers.mountspec import is_volume_bind
from runtime.containers.names import generate_name
from runtime.containers.netview import sandbox_request
from runtime.containers.ports import ImageRef
from runtime.containers.spec import user_mounts
from runtime.containers.store import ContainerStore
from runtime.containers.validate import validate_host_config
from runtime.errors import InvalidParameter
from runtime.faults import fault_point
from runtime.signals import parse_signal


@dataclass(frozen=True, slots=True)
class CreateRequest:
    config: ContainerConfig
    host_config: HostConfig
    name: str = ""
    platform: str = ""
    endpoints: Mapping[str, Any] = field(default_factory=dict)  # NetworkingConfig.EndpointsConfig


@dataclass(frozen=True, slots=True)
class CreateResult:
    id: str
    warnings: tuple[str, ...] = ()


async def create(ctx: ContainerContext, request: CreateRequest) -> CreateResult:
    config, host = request.config, request.host_config
    if not config.image:
        raise InvalidParameter("No image specified")  # dockerd: config.Image is required
    validate_host_config(host)
    if config.stop_signal:
        parse_signal(config.stop_signal)  # dockerd's verifyContainerSettings
    if host.cgroup_parent and getattr(ctx.cgroups, "driver", "") == "systemd":
        from runtime.linux.cgroups_systemd import SLICE_ERROR
        from runtime.linux.systemd import valid_slice
        if not valid_slice(host.cgroup_parent):
            raise InvalidParameter(SLICE_ERROR)
    image = ctx.images.get(config.image)
    config = merge_image_config(config, ctx.images.image_config(image))
    argv = command_line(config)
    if not argv:
        raise InvalidParameter("No command specified")
    container_id = new_id()
    if not config.hostname:
        config = replace(config, hostname=container_id[:12])
    host = with_defaults(host, ctx.settings.cgroupns_mode)
    name = validate_name(request.name) if request.name else generate_unused_name(ctx.store)
    ctx.store.reserve_name(name, container_id)
    root = ctx.store.directory(container_id)
    volumes_prepared = False
    try:
        _, mount_points = user_mounts(host)
        root.mkdir(parents=True, exist_ok=False)
        os.chmod(root, 0o710)
        container = Container(
            id=container_id, name=name, created_ns=time.time_ns(), path=argv[0],
            args=tuple(argv[1:]), config=config, host_config=host,
            image_id=_image_id(image), root=root, mount_points=mount_points,
        )
        container.endpoints_config = {k: dict(v or {}) for k, v in request.endpoints.items()}
        warnings: list[str] = []
        if ctx.networking is not None:
            warnings = list(await ctx.networking.validate_sandbox(
                sandbox_request(ctx, container)))
        container.rw_layer = ctx.layers.prepare(container_id, image)
        if ctx.volumes is not None:
            container.mount_points = await ctx.volumes.prepare(container, mount_points, ctx.get)
            volumes_prepared = True
        elif any(is_volume_bind(b) for b in host.binds or ()) or any(
                m.type == "volume" for m in host.mounts or ()):
            raise InvalidParameter("volumes are not available in this engine")
        write_etc_files(container)
        fault_point("create.before-record")
        ctx.store.add(container)
        ctx.store.save(container, host_config=True)
        fault_point("create.after-record")
    except BaseException:
        if volumes_prepared and ctx.volumes is not None:
            ctx.volumes.release(container, remove_anonymous=True)
        ctx.store.release_name(name)
        with contextlib.suppress(Exception):
            ctx.layers.remove(container_id)
        shutil.rmtree(root, ignore_errors=True)
        raise
    ctx.event(container, "create")
    return CreateResult(container.id, tuple(warnings))


def generate_unused_name(store: ContainerStore) -> str:
    """A random ``adjective_surname`` name no container has (dockerd's retries, then a
    suffix)."""
    for attempt in range(20):
        name = "/" + generate_name(0 if attempt < 5 else attempt)
        if not store.name_in_use(name):
            return name
    return "/" + generate_name(99) + new_id()[:6]


def _image_id(image: ImageRef) -> str:
    return image.id if image.id.startswith("sha256:") else "sha256:" + image.id


def with_defaults(host: HostConfig, cgroupns_mode: str = "host") -> HostConfig:
    """dockerd fills these at create so inspect shows the effective values."""
    changes: dict[str, Any] = {}
    if not host.log_config.type:
        changes["log_config"] = LogConfig("json-file", dict(host.log_config.config))
    if not host.network_mode:
        changes["network_mode"] = "default"
    if not host.ipc_mode:
        changes["ipc_mode"] = "private"
    if not host.cgroupns_mode:
        changes["cgroupns_mode"] = cgroupns_mode
    if not host.shm_size:
        changes["shm_size"] = 64 * 1024 * 1024
    if not host.runtime:
        changes["runtime"] = "runc"
    if not host.restart_policy.name:
        changes["restart_policy"] = replace(host.restart_policy, name="no")
    if host.memory_swappiness is not None and host.memory_swappiness < 0:
        changes["memory_swappiness"] = None  # the CLI sends -1 for "unset"
    if host.memory > 0 and host.memory_swap == 0:
        changes["memory_swap"] = host.memory * 2  # dockerd's default: as much swap as memory
    if host.pids_limit is not None and host.pids_limit <= 0:
        changes["pids_limit"] = None  # <= 0 means unlimited
    if host.masked_paths is None and not host.privileged:
        from runtime.spec.defaults import default_masked_paths
        changes["masked_paths"] = default_masked_paths()
    if host.readonly_paths is None and not host.privileged:
        from runtime.spec.defaults import DEFAULT_READONLY_PATHS
        changes["readonly_paths"] = DEFAULT_READONLY_PATHS
    return replace(host, **changes)


__all__ = ["CreateRequest", "CreateResult", "create", "generate_unused_name", "with_defaults"]
