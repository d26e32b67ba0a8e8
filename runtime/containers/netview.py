"""A container as the network service sees it: its sandbox request and NetworkSettings."""

from __future__ import annotations

from typing import Any

from runtime.containers.context import ContainerContext
from runtime.containers.model import Container
from runtime.network.contract import SandboxRequest
from runtime.network.hooks import sandbox_request_for


def sandbox_request(ctx: ContainerContext, container: Container) -> SandboxRequest:
    """``container``'s networking request (``--link`` targets resolved in the store)."""
    return sandbox_request_for(container, ctx.get)


def network_settings(ctx: ContainerContext, container: Container) -> dict[str, Any] | None:
    """``NetworkSettings`` from the network service (None without one)."""
    if ctx.networking is None:
        return None
    if container.state.running:
        live = ctx.networking.settings(container.id)
        if live is not None:
            return dict(live)
    return dict(ctx.networking.inactive_settings(sandbox_request(ctx, container)))


__all__ = ["sandbox_request", "network_settings"]
