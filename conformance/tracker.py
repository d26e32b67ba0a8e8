"""Removes what a test created, so tests stay independent (docker-py's BaseIntegrationTest idea).

Cleanup is best effort: an endpoint the engine does not implement yet, or an object the test
already removed, must not turn a passing test into an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import docker
import docker.errors

log = logging.getLogger(__name__)


@dataclass
class ResourceTracker:
    api: docker.APIClient
    containers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def container(self, ident: str) -> str:
        self.containers.append(ident)
        return ident

    def image(self, ref: str) -> str:
        self.images.append(ref)
        return ref

    def network(self, ident: str) -> str:
        self.networks.append(ident)
        return ident

    def volume(self, name: str) -> str:
        self.volumes.append(name)
        return name

    def cleanup(self) -> list[str]:
        """Remove everything tracked (containers first, they pin the rest); returns failures."""
        failures: list[str] = []
        steps: tuple[tuple[list[str], Callable[[str], object]], ...] = (
            (self.containers, lambda c: self.api.remove_container(c, force=True, v=True)),
            (self.images, lambda i: self.api.remove_image(i, force=True)),
            (self.networks, lambda n: self.api.remove_network(n)),
            (self.volumes, lambda v: self.api.remove_volume(v, force=True)),
        )
        for items, remove in steps:
            for item in reversed(items):
                try:
                    remove(item)
                except docker.errors.NotFound:
                    pass
                except (docker.errors.APIError, OSError) as exc:
                    failures.append(f"{item}: {exc}")
                    log.warning("cleanup of %s failed: %s", item, exc)
            items.clear()
        return failures
