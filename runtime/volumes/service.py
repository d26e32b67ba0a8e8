"""The volume service: what ``/volumes`` and the container service use.

Names are unique across the engine (only the ``local`` driver exists). Containers hold
*references* on the volumes they mount, from create until removal (dockerd's refs):
a referenced volume cannot be removed, is not dangling and is never pruned. Mounting is
separate and counted by the driver (only volumes with a device need it).

Events (``Type: volume``): create, mount, unmount, destroy, and prune (no actor).
Errors carry dockerd's texts, wrapped like its ``OpErr``: ``create <name>: ...``,
``get <name>: no such volume``, ``remove <name>: volume is in use - [<ids>]``.
"""

from __future__ import annotations

import logging
import secrets
import time
import builtins
from collections.abc import Mapping
from pathlib import Path

from runtime.errors import (
    Conflict, EngineError, Forbidden, InvalidParameter, NotFound, NotImplementedFeature,
    NotModified, SystemError_, Unauthorized, Unavailable,
)
from runtime.events import EventBus
from runtime.filters import Filters
from runtime.linux import syscalls as S
from runtime.volumes.filters import list_predicate, prune_predicate
from runtime.volumes.local import LocalDriver, LocalVolume, directory_size, validate_options
from runtime.volumes.model import (
    ANONYMOUS_LABEL, LOCAL_DRIVER, PruneReport, Volume, VolumeUsage, validate_name,
)

log = logging.getLogger(__name__)

VOLUMES_DIR = "volumes"


_CATEGORIES = (NotFound, InvalidParameter, Conflict, NotModified, Forbidden, Unauthorized,
               Unavailable, NotImplementedFeature, SystemError_)


def _prefixed(prefix: str, exc: EngineError) -> EngineError:
    """The same error category with ``prefix`` before the message (dockerd's ``OpErr``)."""
    category = next((c for c in type(exc).__mro__ if c in _CATEGORIES), SystemError_)
    return category(f"{prefix}{exc}")


def _wrapped(op: str, name: str, exc: EngineError) -> EngineError:
    return _prefixed(f"{op} {name}: ", exc)


class NoSuchVolume(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"get {name}: no such volume")


class VolumeService:
    def __init__(self, data_root: Path, events: EventBus,
                 syscalls: S.Syscalls | None = None) -> None:
        self.driver = LocalDriver(data_root / VOLUMES_DIR, syscalls or S.LinuxSyscalls())
        self.events = events
        self._refs: dict[str, dict[str, None]] = {}  # name -> container IDs (ordered set)

    @classmethod
    def open(cls, data_root: Path, events: EventBus,
             syscalls: S.Syscalls | None = None) -> VolumeService:
        """The service with the volumes found on disk (no references yet: the container
        service registers those when it is wired in)."""
        service = cls(data_root, events, syscalls)
        service.driver.load()
        return service

    @property
    def root(self) -> Path:
        return self.driver.root

    def _publish(self, action: str, name: str, **attributes: str) -> None:
        self.events.publish("volume", action, name, attributes)

    # --- create / get / list ----------------------------------------------------------

    def create(self, name: str = "", driver: str = "", driver_opts: Mapping[str, str] | None = None,
               labels: Mapping[str, str] | None = None, reference: str | None = None) -> Volume:
        """Create a volume, or return the existing one of that name unchanged (dockerd
        is idempotent here and ignores the new labels/options). Without a name, a 64-hex
        name is generated and the volume is labelled anonymous. ``reference`` (a container
        ID) is registered on the volume in the same step."""
        if not name:
            name = secrets.token_hex(32)
            labels = {**(labels or {}), ANONYMOUS_LABEL: ""}
        try:
            if driver and driver != LOCAL_DRIVER:
                raise NotFound(f"error looking up volume plugin {driver}: plugin "
                               f'"{driver}" not found')
            existing = self.driver.get(name)
            if existing is None:
                validate_name(name)
                validate_options(driver_opts)
                local = self.driver.create(name, driver_opts, labels, time.time_ns())
                self._publish("create", name, driver=LOCAL_DRIVER)
            else:
                local = existing
        except EngineError as exc:
            raise _wrapped("create", name, exc) from None
        except OSError as exc:
            raise _wrapped("create", name, _system(exc)) from exc
        if reference is not None:
            self.acquire(name, reference)
        return local.volume

    def get(self, name: str) -> Volume:
        local = self.driver.get(name)
        if local is None:
            raise NoSuchVolume(name)
        return local.volume

    def list(self, filters: Filters | None = None) -> list[Volume]:
        """Volumes matching the list ``filters`` (dockerd's names and semantics), by name."""
        keep = list_predicate(filters or Filters())
        return sorted((local.volume for local in self.driver
                       if keep(local.volume, self.is_referenced(local.volume.name))),
                      key=lambda v: v.name)

    def usage(self) -> builtins.list[VolumeUsage]:
        """``/system/df``: local volumes without driver options, with size and references
        (volumes with options hold no local data, dockerd leaves them out)."""
        out = []
        for local in self.driver:
            volume = local.volume
            if volume.options:
                continue
            try:
                size = directory_size(local.data)
            except OSError:
                size = -1
            out.append(VolumeUsage(volume, size, len(self._refs.get(volume.name, ()))))
        return sorted(out, key=lambda u: u.volume.name)

    # --- remove / prune ---------------------------------------------------------------

    def remove(self, name: str, force: bool = False) -> None:
        """Delete a volume and its data. In use -> Conflict (``force`` does not override
        that; it only makes a missing volume a success, as dockerd's purge-on-error)."""
        local = self.driver.get(name)
        if local is None:
            if force:
                return
            raise NoSuchVolume(name)
        refs = self._refs.get(name)
        if refs:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(refs)}]")
        self._remove(local, force)

    def _remove(self, local: LocalVolume, force: bool = False) -> None:
        name = local.volume.name
        try:
            self.driver.remove(name)
        except EngineError as exc:
            if not force:
                raise _wrapped("remove", name, exc) from None
            self.driver.volumes.pop(name, None)
        except OSError as exc:
            if not force:
                raise _wrapped("remove", name, _system(exc)) from exc
            self.driver.volumes.pop(name, None)
        self._refs.pop(name, None)
        self._publish("destroy", name, driver=LOCAL_DRIVER)

    def prune(self, filters: Filters | None = None) -> PruneReport:
        """Remove unreferenced local volumes without driver options that match ``filters``
        (only anonymous ones unless ``all=true``; the API adds that below 1.42)."""
        keep = prune_predicate(filters or Filters())
        deleted: list[str] = []
        reclaimed = 0
        for local in sorted(self.driver, key=lambda v: v.volume.name):
            volume = local.volume
            if not keep(volume, self.is_referenced(volume.name)):
                continue
            try:
                size = directory_size(local.data)
            except OSError as exc:
                log.warning("could not determine size of volume %s: %s", volume.name, exc)
                size = 0
            try:
                self._remove(local)
            except EngineError as exc:
                log.warning("prune: could not remove volume %s: %s", volume.name, exc)
                continue
            deleted.append(volume.name)
            reclaimed += size
        self.events.publish("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return PruneReport(tuple(deleted), reclaimed)

    # --- references and mounts (containers) -------------------------------------------

    def acquire(self, name: str, ref: str) -> None:
        if self.driver.get(name) is None:
            raise NoSuchVolume(name)
        self._refs.setdefault(name, {})[ref] = None

    def release(self, name: str, ref: str) -> None:
        refs = self._refs.get(name)
        if refs is not None:
            refs.pop(ref, None)
            if not refs:
                del self._refs[name]

    def references(self, name: str) -> tuple[str, ...]:
        return tuple(self._refs.get(name, ()))

    def is_referenced(self, name: str) -> bool:
        return bool(self._refs.get(name))

    def mount(self, name: str, container_id: str, destination: str, rw: bool,
              propagation: str = "") -> str:
        """Make the volume ready for a starting container; returns the host path to bind."""
        local = self.driver.get(name)
        if local is None:
            raise NoSuchVolume(name)
        try:
            path = self.driver.mount(name)
        except EngineError as exc:
            raise _prefixed(f"error while mounting volume '{local.data}': ", exc) from exc
        self._publish("mount", name, driver=LOCAL_DRIVER, container=container_id,
                      destination=destination, **{"read/write": "true" if rw else "false"},
                      propagation=propagation)
        return path

    def unmount(self, name: str, container_id: str) -> None:
        """The container stopped using the volume (unmounts the device after the last)."""
        if self.driver.get(name) is None:
            return
        try:
            self.driver.unmount(name)
        except EngineError as exc:
            log.warning("unmounting volume %s: %s", name, exc)
        self._publish("unmount", name, driver=LOCAL_DRIVER, container=container_id)


def _system(exc: OSError) -> EngineError:
    return SystemError_(str(exc))


__all__ = ["VolumeService", "NoSuchVolume", "VOLUMES_DIR"]
