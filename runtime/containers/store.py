"""Container records on disk and the in-memory index used for lookups.

Layout (dockerd's): ``<data-root>/containers/<id>/config.v2.json`` (record and state) and
``hostconfig.json``, written atomically. Lookup order is dockerd's ``GetContainer``: full
ID, then exact name (with or without '/'), then unique ID prefix.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime.containers.codec import from_jsonable, to_jsonable
from runtime.containers.model import (
    ID_RE, Container, ContainerConfig, HostConfig, MountPoint, RwLayer,
)
from runtime.containers.state import State
from runtime.errors import Conflict, ContainerNotFound, InvalidParameter
from runtime.statefile import ensure_private_dir, read_json, write_json_atomic
from runtime.storage.trash import TRASH

log = logging.getLogger(__name__)

CONFIG_FILE = "config.v2.json"
HOSTCONFIG_FILE = "hostconfig.json"
#: a removed container's directory, renamed so that it can be deleted in the background
REMOVING_PREFIX = ".removing-"


class AmbiguousPrefix(InvalidParameter):
    def __init__(self, prefix: str) -> None:
        super().__init__(f"multiple IDs found with provided prefix: {prefix}")


class NameConflict(Conflict):
    def __init__(self, name: str, owner: str) -> None:
        super().__init__(
            f'Conflict. The container name "{name}" is already in use by container "{owner}". '
            "You have to remove (or rename) that container to be able to reuse that name."
        )


class ContainerStore:
    """Index of containers by ID and name, backed by one directory per container."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_id: dict[str, Container] = {}
        self._names: dict[str, str] = {}

    # names ---------------------------------------------------------------------------

    def reserve_name(self, name: str, container_id: str) -> None:
        """Claim ``name`` (canonical, with '/') for ``container_id`` or raise a conflict."""
        owner = self._names.get(name)
        if owner is not None and owner != container_id:
            raise NameConflict(name, owner)
        self._names[name] = container_id

    def release_name(self, name: str) -> None:
        self._names.pop(name, None)

    def name_in_use(self, name: str) -> bool:
        return name in self._names

    # records -------------------------------------------------------------------------

    def directory(self, container_id: str) -> Path:
        return self.root / container_id

    def add(self, container: Container) -> None:
        self.reserve_name(container.name, container.id)
        self._by_id[container.id] = container

    def remove(self, container: Container) -> None:
        """Forget ``container`` and delete its directory."""
        self._by_id.pop(container.id, None)
        if self._names.get(container.name) == container.id:
            del self._names[container.name]
        doomed = self.root / f"{REMOVING_PREFIX}{container.id}"
        try:
            os.rename(container.root, doomed)
        except FileNotFoundError:
            return
        except OSError:
            shutil.rmtree(container.root, ignore_errors=True)
            return
        TRASH.discard(doomed)  # load() sweeps what a crash left

    def save(self, container: Container, host_config: bool = False) -> None:
        """Persist the record (and, when it changed, the host config) atomically.

        The host config only changes at create (and update), so state transitions write
        one file: each atomic write costs two fsyncs.
        """
        ensure_private_dir(container.root)
        if host_config or not (container.root / HOSTCONFIG_FILE).exists():
            write_json_atomic(container.root / HOSTCONFIG_FILE,
                              to_jsonable(container.host_config), mode=0o644)
        # every state transition rewrites it: no directory fsync (see runtime.statefile)
        write_json_atomic(container.root / CONFIG_FILE, _record_to_json(container),
                          sync_dir=False)

    def load(self) -> list[Container]:
        """Read every container directory under the root into the index."""
        ensure_private_dir(self.root)
        loaded: list[Container] = []
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(REMOVING_PREFIX):
                TRASH.discard(entry)
                continue
            if not ID_RE.match(entry.name) or not (entry / CONFIG_FILE).exists():
                continue
            try:
                container = _record_from_json(
                    entry, read_json(entry / CONFIG_FILE), read_json(entry / HOSTCONFIG_FILE)
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable container %s: %s", entry.name, exc)
                continue
            self.add(container)
            loaded.append(container)
        return loaded

    # lookups -------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        """Resolve a full ID, a name (with or without '/') or a unique ID prefix."""
        if not ref:
            raise InvalidParameter('invalid name or ID supplied: ""')
        container = self._by_id.get(ref)
        if container is not None:
            return container
        owner = self._names.get(ref if ref.startswith("/") else "/" + ref)
        if owner is not None and owner in self._by_id:
            return self._by_id[owner]
        matches = [cid for cid in self._by_id if cid.startswith(ref)]
        if len(matches) > 1:
            raise AmbiguousPrefix(ref)
        if matches:
            return self._by_id[matches[0]]
        raise ContainerNotFound(ref)

    def find(self, ref: str) -> Container | None:
        try:
            return self.get(ref)
        except (ContainerNotFound, InvalidParameter):
            return None

    def __iter__(self) -> Iterator[Container]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)


def _record_to_json(c: Container) -> dict[str, Any]:
    return {
        "id": c.id, "name": c.name, "created_ns": c.created_ns, "path": c.path,
        "args": list(c.args), "config": to_jsonable(c.config), "image_id": c.image_id,
        "state": c.state.to_json(), "restart_count": c.restart_count, "driver": c.driver,
        "platform": c.platform, "rw_layer": to_jsonable(c.rw_layer),
        "mount_points": to_jsonable(c.mount_points), "exec_ids": [],
        "endpoints_config": c.endpoints_config,
        "has_been_started": c.has_been_started,
        "has_been_manually_stopped": c.has_been_manually_stopped,
    }


def _record_from_json(root: Path, d: dict[str, Any], hc: dict[str, Any]) -> Container:
    rw = d.get("rw_layer")
    return Container(
        id=d["id"], name=d["name"], created_ns=int(d["created_ns"]), path=d["path"],
        args=tuple(d["args"]), config=from_jsonable(ContainerConfig, d["config"]),
        host_config=from_jsonable(HostConfig, hc), image_id=d["image_id"], root=root,
        state=State.from_json(d.get("state", {})), restart_count=int(d.get("restart_count", 0)),
        driver=d.get("driver", "overlay2"), platform=d.get("platform", "linux"),
        rw_layer=from_jsonable(RwLayer, rw) if rw else None,
        mount_points=tuple(from_jsonable(MountPoint, m) for m in d.get("mount_points", [])),
        endpoints_config=dict(d.get("endpoints_config") or {}),
        has_been_started=bool(d.get("has_been_started", False)),
        has_been_manually_stopped=bool(d.get("has_been_manually_stopped", False)),
    )


__all__ = ["ContainerStore", "AmbiguousPrefix", "NameConflict", "CONFIG_FILE", "HOSTCONFIG_FILE"]
