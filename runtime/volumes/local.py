"""The ``local`` volume driver: dockerd's on-disk layout and its driver options.

Layout under ``<data-root>/volumes/`` (as dockerd's, so tools that look for
``/var/lib/docker/volumes/<name>/_data`` find the data)::

    <name>/_data          the volume's content (0755), bind-mounted into containers
    <name>/volume.json    {"Name", "Driver", "Labels", "Options", "CreatedAt" (ns)}
    .removing-<name>-*    a volume being deleted (renamed first, so a crash never
                          resurrects half of it); cleaned at start
    .mnt-*                scratch mount points of copy-up; unmounted and removed at start

Driver options follow dockerd's local driver: ``type``, ``device``, ``o`` (mount(8)-style
options, e.g. ``type=tmpfs,device=tmpfs,o=size=10m`` or ``type=none,device=/srv,o=bind``)
and ``size`` (a quota: refused, there is no quota support). A volume with ``type`` or
``device`` is mounted on its ``_data`` when the first container using it starts and
unmounted when the last one stops.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime.archive.rootfd import discard_path, remove_path
from runtime.errors import InvalidParameter, SystemError_
from runtime.linux import syscalls as S
from runtime.linux.mounts import parse_options
from runtime.storage.snapshots import is_mounted
from runtime.statefile import fsync_dir, write_json_atomic
from runtime.volumes.model import LOCAL_DRIVER, Volume

log = logging.getLogger(__name__)

DATA_DIR = "_data"
META_FILE = "volume.json"
REMOVING_PREFIX = ".removing-"
SCRATCH_PREFIX = ".mnt-"  # temporary mount points (copy-up's view of a container rootfs)

VALID_OPTIONS = ("type", "o", "device", "size")
# option -> the options it needs, checked in this order (dockerd's map order is random)
MANDATORY_OPTIONS = (("device", ("type",)), ("type", ("device",)), ("o", ("device", "type")))

_RAM_RE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP]?)[iI]?[bB]?$")
_RAM_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes`` (binary multiples, optional ``b``/``ib`` suffix)."""
    match = _RAM_RE.match(text)
    if match is None:
        raise InvalidParameter(f"invalid size: '{text}'")
    return int(float(match.group(1)) * _RAM_UNITS[match.group(2).lower()])


def validate_options(options: Mapping[str, str] | None) -> None:
    """dockerd's local driver checks (texts included)."""
    if not options:
        return
    for key in options:
        if key not in VALID_OPTIONS:
            raise InvalidParameter(f'invalid option: "{key}"')
    if "size" in options and ram_in_bytes(options["size"]) > 0:
        raise InvalidParameter("quota size requested but no quota support")
    for key, required in MANDATORY_OPTIONS:
        if key in options:
            for needed in required:
                if needed not in options:
                    raise InvalidParameter(f'missing required option: "{needed}"')


def needs_mount(options: Mapping[str, str] | None) -> bool:
    return bool(options) and bool(options.get("device") or options.get("type"))  # type: ignore[union-attr]


def _go_strerror(err: OSError) -> str:
    text = os.strerror(err.errno) if err.errno else str(err)
    return text[:1].lower() + text[1:]


@dataclass(slots=True)
class LocalVolume:
    """A volume of this driver with its runtime-only mount state."""

    volume: Volume
    root: Path
    active: int = 0
    mounted: bool = False

    @property
    def data(self) -> Path:
        return self.root / DATA_DIR


@dataclass
class LocalDriver:
    """Volumes on disk below ``root`` (``<data-root>/volumes``)."""

    root: Path
    syscalls: S.Syscalls = field(default_factory=S.LinuxSyscalls)
    volumes: dict[str, LocalVolume] = field(default_factory=dict)

    name = LOCAL_DRIVER

    # --- load ---------------------------------------------------------------------------

    def load(self) -> None:
        """Read every volume directory; remove leftovers of interrupted removals."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o701)
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.name.startswith("."):
                if entry.name.startswith(REMOVING_PREFIX):
                    self._unmount_leftover(Path(entry.path) / DATA_DIR)
                    discard_path(entry.path)
                elif entry.name.startswith(SCRATCH_PREFIX):
                    self._unmount_leftover(Path(entry.path))
                    if not _is_mountpoint(Path(entry.path)):
                        discard_path(entry.path)
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            loaded = self._read(Path(entry.path))
            if loaded is not None:
                self.volumes[loaded.volume.name] = loaded

    def _read(self, root: Path) -> LocalVolume | None:
        name = root.name
        try:
            with open(root / META_FILE, "rb") as f:
                meta = json.loads(f.read())
        except FileNotFoundError:
            meta = None
        except (OSError, ValueError) as exc:
            log.warning("volume %s: unreadable metadata (%s); keeping it without labels",
                        name, exc)
            meta = None
        data = root / DATA_DIR
        if meta is None and not data.is_dir():
            return None  # not a volume directory
        if meta is None:
            created = root.stat().st_ctime_ns
            volume = Volume(name, LOCAL_DRIVER, str(data), created)
        else:
            volume = Volume(
                name=name, driver=LOCAL_DRIVER, mountpoint=str(data),
                created_ns=int(meta.get("CreatedAt") or root.stat().st_ctime_ns),
                labels=_str_map(meta.get("Labels")), options=_str_map(meta.get("Options")),
            )
            data.mkdir(mode=0o755, exist_ok=True)
        local = LocalVolume(volume, root)
        # a volume left mounted (daemon killed): dockerd's restoreIfMounted
        local.mounted = needs_mount(volume.options) and _is_mountpoint(data)
        return local

    def _unmount_leftover(self, data: Path) -> None:
        if _is_mountpoint(data):
            try:
                self.syscalls.umount2(str(data), S.MNT_DETACH)
            except OSError as exc:
                log.warning("unmounting %s: %s", data, exc)

    # --- create / remove ----------------------------------------------------------------

    def create(self, name: str, options: Mapping[str, str] | None,
               labels: Mapping[str, str] | None, created_ns: int) -> LocalVolume:
        """A new volume (name and options already validated); the caller checks that
        ``name`` is free."""
        root = self.root / name
        data = root / DATA_DIR
        root.mkdir(mode=0o701)
        try:
            os.chmod(root, 0o701)
            data.mkdir(mode=0o755)
            os.chmod(data, 0o755)
            volume = Volume(name, LOCAL_DRIVER, str(data), created_ns,
                            labels=None if labels is None else dict(labels),
                            options=None if options is None else dict(options))
            write_json_atomic(root / META_FILE, {
                "Name": name, "Driver": LOCAL_DRIVER, "Labels": volume.labels,
                "Options": volume.options, "CreatedAt": created_ns,
            })
            fsync_dir(self.root)
        except BaseException:
            discard_path(root)
            raise
        local = LocalVolume(volume, root)
        self.volumes[name] = local
        return local

    def remove(self, name: str) -> None:
        local = self.volumes[name]
        if local.active > 0:
            raise SystemError_("volume has active mounts")
        if local.mounted:
            self._unmount(local)
        doomed = self.root / f"{REMOVING_PREFIX}{name}-{secrets.token_hex(4)}"
        try:
            os.rename(local.root, doomed)
        except FileNotFoundError:
            doomed = local.root  # already gone from disk: just forget it
        else:
            fsync_dir(self.root)
        del self.volumes[name]
        try:
            remove_path(doomed)
        except OSError as exc:
            # renamed away already: it is no longer a volume; the next start retries
            log.warning("removing data of volume %s: %s", name, exc)

    # --- mount --------------------------------------------------------------------------

    def mount(self, name: str) -> str:
        """The host path to bind into a container; mounts the volume's device first when
        it has one and this is the first active user."""
        local = self.volumes[name]
        if needs_mount(local.volume.options):
            if not local.mounted:
                self._mount(local)
                local.mounted = True
            local.active += 1
        return str(local.data)

    def unmount(self, name: str) -> None:
        local = self.volumes.get(name)
        if local is None or not needs_mount(local.volume.options):
            return
        if local.active > 0:
            local.active -= 1
        if local.active == 0 and local.mounted:
            self._unmount(local)

    def _mount(self, local: LocalVolume) -> None:
        options = local.volume.options or {}
        device = options.get("device", "")
        if not device:
            raise SystemError_("missing device in volume options")
        fstype = options.get("type") or None
        parsed = parse_options(tuple(o for o in options.get("o", "").split(",") if o))
        target = str(local.data)
        flags = parsed.flags
        try:
            self.syscalls.mount(device, target, fstype, flags, parsed.data or None)
            extra = flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT)
            if flags & S.MS_BIND and extra:
                self.syscalls.mount(None, target, None, S.MS_BIND | S.MS_REMOUNT | extra, None)
            if parsed.propagation:
                self.syscalls.mount(None, target, None, parsed.propagation, None)
        except OSError as exc:
            detail = f"mount {device}:{target}"
            if flags:
                detail += f", flags: 0x{flags:x}"
            if parsed.data:
                detail += f", data: {parsed.data}"
            raise SystemError_(f"failed to mount local volume: {detail}: "
                               f"{_go_strerror(exc)}") from exc

    def _unmount(self, local: LocalVolume) -> None:
        try:
            self.syscalls.umount2(str(local.data), 0)
        except OSError as exc:
            if exc.errno != errno.EINVAL and _is_mountpoint(local.data):
                raise SystemError_(f"unmount {local.data}: {_go_strerror(exc)}") from exc
        local.mounted = False

    # --- queries ------------------------------------------------------------------------

    def get(self, name: str) -> LocalVolume | None:
        return self.volumes.get(name)

    def __iter__(self) -> Iterator[LocalVolume]:
        return iter(list(self.volumes.values()))


def directory_size(path: str | os.PathLike[str]) -> int:
    """dockerd's ``directory.Size``: bytes of every non-directory entry, hard links once."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [os.fspath(path)]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
                continue
            if st.st_size == 0 or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def _is_mountpoint(path: Path) -> bool:
    try:
        return is_mounted(path)
    except OSError:
        return False


def _str_map(value: object) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        return None
    return {str(k): str(v) for k, v in value.items()}


__all__ = ["LocalDriver", "LocalVolume", "validate_options", "needs_mount", "ram_in_bytes",
           "directory_size", "DATA_DIR", "META_FILE"]
