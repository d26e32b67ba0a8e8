"""The Engine: owns the daemon's services and satisfies the API routers' backend Protocols.

It is the composition point inside runtime; ``compat_api.__main__`` builds one with
:meth:`Engine.open` and hands it to the HTTP app.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.config import DaemonConfig
from runtime.events import EventBus
from runtime.statefile import ensure_private_dir, write_bytes_atomic
from runtime.system.host import HostFacts, read_host_facts

ENGINE_ID_FILE = "engine-id"


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """What ``GET /system/df`` reports, already in wire shape per object."""

    layers_size: int = 0
    images: tuple[dict[str, Any], ...] = ()
    containers: tuple[dict[str, Any], ...] = ()
    volumes: tuple[dict[str, Any], ...] = ()
    build_cache: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Inventory:
    """Object counts shown by ``GET /info``."""

    containers: int = 0
    running: int = 0
    paused: int = 0
    stopped: int = 0
    images: int = 0


def _load_or_create_engine_id(data_root: Path) -> str:
    path = data_root / ENGINE_ID_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    engine_id = str(uuid.uuid4())
    write_bytes_atomic(path, engine_id.encode() + b"\n")
    return engine_id


class Engine:
    def __init__(self, config: DaemonConfig, events: EventBus, engine_id: str) -> None:
        self.config = config
        self.events = events
        self.engine_id = engine_id
        self.started_at_ns = time.time_ns()
        self._host: HostFacts | None = None

    @classmethod
    async def open(cls, config: DaemonConfig) -> Engine:
        """Prepare the data and exec roots (0700) and start the engine's services."""
        ensure_private_dir(config.data_root)
        ensure_private_dir(config.exec_root)
        engine = cls(config, EventBus(), _load_or_create_engine_id(config.data_root))
        return engine

    async def close(self) -> None:
        """Stop the services; containers are left to the supervisor."""

    @property
    def host(self) -> HostFacts:
        if self._host is None:
            self._host = read_host_facts()
        return self._host

    def inventory(self) -> Inventory:
        return Inventory()

    def disk_usage(self) -> DiskUsage:
        return DiskUsage()
