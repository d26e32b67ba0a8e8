"""``docker update``: change a container's resources and restart policy, live.

dockerd's rules (``container.UpdateContainer``): a zero / empty field means "unchanged";
``--cpus`` and an explicit CPU period/quota exclude each other across updates; raising
``--memory`` above the swap limit already set needs ``--memory-swap`` in the same update.
The merged HostConfig is saved, and for a running (or paused) container written to its
cgroup at once; a stopped container gets it at its next start.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from runtime.containers.freeze import cgroup_handle
from runtime.containers.model import HostConfig
from runtime.containers.context import ContainerContext
from runtime.containers.lifecycle import resources
from runtime.containers.validate import validate_host_config
from runtime.errors import Conflict, SystemError_


def merge(current: HostConfig, update: HostConfig, container_id: str) -> HostConfig:
    """The HostConfig after ``update`` (raises Conflict as dockerd's UpdateContainer)."""

    def conflict(message: str) -> Conflict:
        return Conflict(f"Cannot update container {container_id}: {message}")

    if update.nano_cpus > 0 and current.cpu_period > 0:
        raise conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has "
                       "already been set")
    if update.nano_cpus > 0 and current.cpu_quota > 0:
        raise conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has "
                       "already been set")
    if update.cpu_period > 0 and current.nano_cpus > 0:
        raise conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has "
                       "already been set")
    if update.cpu_quota > 0 and current.nano_cpus > 0:
        raise conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has "
                       "already been set")
    changes: dict[str, object] = {}
    for name in ("blkio_weight", "cpu_shares", "nano_cpus", "cpu_period", "cpu_quota",
                 "cpuset_cpus", "cpuset_mems", "memory_reservation", "kernel_memory",
                 "cpu_realtime_period", "cpu_realtime_runtime"):
        value = getattr(update, name)
        if value:
            changes[name] = value
    if update.memory:
        if update.memory > current.memory_swap and update.memory_swap == 0:
            raise conflict("Memory limit should be smaller than already set memoryswap limit, "
                           "update the memoryswap at the same time")
        changes["memory"] = update.memory
    if update.memory_swap:
        changes["memory_swap"] = update.memory_swap
    if update.pids_limit is not None:
        changes["pids_limit"] = update.pids_limit if update.pids_limit > 0 else None
    policy = update.restart_policy
    if policy.name:
        if current.auto_remove and policy.name != "no":
            raise conflict("Restart policy cannot be updated because AutoRemove is enabled "
                           "for the container")
        changes["restart_policy"] = policy
    return replace(current, **changes)  # type: ignore[arg-type]


async def update(ctx: ContainerContext, ref: str, request: HostConfig) -> list[str]:
    """Apply ``request`` (only its resource fields and restart policy); returns warnings."""
    container = ctx.get(ref)
    validate_host_config(request, update=True)
    state = container.state
    if state.removal_in_progress or state.dead:
        raise SystemError_(f"Cannot update container {container.id}: container is marked for "
                           'removal and cannot be "update"')
    previous = container.host_config
    merged = merge(previous, request, container.id)
    container.host_config = merged
    if state.running and not state.restarting and ctx.cgroups is not None:
        try:
            handle = cgroup_handle(ctx, container)
            await asyncio.to_thread(ctx.cgroups.update, handle, resources(merged))  # type: ignore[attr-defined]
        except OSError as exc:
            container.host_config = previous
            raise SystemError_(f"Cannot update container {container.id}: {exc}") from exc
    ctx.store.save(container, host_config=True)
    ctx.event(container, "update")
    return []


__all__ = ["update", "merge"]
