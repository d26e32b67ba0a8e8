"""``docker commit`` (``POST /commit``): an image from the container's writable layer, the
container frozen meanwhile (``--pause``, the default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.containers import freeze
from runtime.containers.context import ContainerContext
from runtime.containers.imageconfig import merge_image_config
from runtime.containers.model import ContainerConfig
from runtime.errors import Conflict, SystemError_


@dataclass(frozen=True, slots=True)
class CommitOptions:
    repo: str = ""
    tag: str = ""
    comment: str = ""
    author: str = ""
    config: ContainerConfig | None = None
    pause: bool = True


async def commit(ctx: ContainerContext, ref: str, options: CommitOptions) -> str:
    """The new image's ID."""
    container = ctx.get(ref)
    if container.rw_layer is None:
        raise Conflict(f"container {container.id} has no writable layer")
    config = container.config
    if options.config is not None:
        config = _merge_commit_config(options.config, config)
    repo_tag = None
    if options.repo:
        repo_tag = f"{options.repo}:{options.tag or 'latest'}"
    image_config = commit_image_config(config)
    # dockerd freezes a running container while its layer is read (commit --pause)
    pause = (options.pause and container.state.running and not container.state.paused
             and ctx.cgroups is not None)
    if pause:
        try:
            await freeze.pause(ctx, container.id)
        except (SystemError_, Conflict):
            exiting = ctx.live_of(container).exit_task
            if container.state.running and (exiting is None or exiting.done()):
                raise
            # it exited or is exiting meanwhile (its cgroup released while the freeze was
            # on the way): its layer no longer changes
            pause = False
    try:
        image_id = await ctx.images.commit(container.image_id, container.rw_layer.upperdir,
                                           image_config, repo_tag, options.comment,
                                           options.author, container.id)
        attributes = {"comment": options.comment, "imageID": image_id,
                      "imageRef": repo_tag or ""}
        ctx.event(container, "commit", **attributes)
    finally:
        if pause and container.state.paused and container.state.running:
            await freeze.unpause(ctx, container.id)
    return image_id


def _merge_commit_config(given: ContainerConfig, current: ContainerConfig) -> ContainerConfig:
    """dockerd's commit merge: the request's config, unset fields from the container's."""
    image_like: dict[str, Any] = {
        "User": current.user, "Env": list(current.env or []), "Cmd": current.cmd,
        "Entrypoint": current.entrypoint, "WorkingDir": current.working_dir,
        "Labels": dict(current.labels or {}), "StopSignal": current.stop_signal,
        "ExposedPorts": {p: {} for p in current.exposed_ports or ()},
        "Volumes": {v: {} for v in current.volumes or ()},
    }
    return merge_image_config(given, image_like)


def commit_image_config(config: ContainerConfig) -> dict[str, Any]:
    """The image ``config`` section (Docker keys) for a committed container; unset keys
    are left out."""
    health = config.healthcheck
    full: dict[str, Any] = {
        "Hostname": "", "Domainname": "", "User": config.user,
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "ExposedPorts": {p: {} for p in config.exposed_ports} if config.exposed_ports else None,
        "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": list(config.env) if config.env is not None else None,
        "Cmd": list(config.cmd) if config.cmd is not None else None,
        "Healthcheck": {
            "Test": list(health.test or []), "Interval": health.interval,
            "Timeout": health.timeout, "Retries": health.retries,
            "StartPeriod": health.start_period, "StartInterval": health.start_interval,
        } if health is not None else None,
        "Image": "", "Volumes": {v: {} for v in config.volumes} if config.volumes else None,
        "WorkingDir": config.working_dir,
        "Entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
        "OnBuild": list(config.on_build) if config.on_build is not None else None,
        "Labels": dict(config.labels) if config.labels else None,
        "StopSignal": config.stop_signal or None,
        "Shell": list(config.shell) if config.shell else None,
        "ArgsEscaped": config.args_escaped or None,
    }
    return {k: v for k, v in full.items() if v is not None}


__all__ = ["CommitOptions", "commit", "commit_image_config"]
