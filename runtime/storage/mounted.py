"""Writable layers mounted in the daemon itself, for builds (``COPY``/``ADD`` layers,
``WORKDIR`` in a step's container): the layer store describes each mount,
:func:`~runtime.storage.snapshots.perform_mount` performs it through the syscall seam.

A mounted layer sits on the store's reserved mountpoint (``merged``, below the 0700 data
root); committing reads its upper directory, so it is unmounted first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import NotFound
from runtime.linux.syscalls import LinuxSyscalls, Syscalls
from runtime.storage.snapshots import LayerStore, is_mounted, perform_mount, unmount


@dataclass(frozen=True, slots=True)
class MountedLayer:
    """Writable layer ``key`` of the layer store, mounted at ``root``; ``upper`` holds its
    changes (what a commit archives)."""

    key: str
    root: Path
    upper: Path


class LayerMounts:
    """Mounts and unmounts writable layers of ``store`` (blocking: call from a worker
    thread)."""

    def __init__(self, store: LayerStore, syscalls: Syscalls | None = None) -> None:
        self.store = store
        self.sc: Syscalls = syscalls if syscalls is not None else LinuxSyscalls()

    def open(self, key: str, parent: str | None) -> MountedLayer:
        """A new writable layer ``key`` on layer ``parent`` (a chain ID; None: on nothing),
        mounted. Nothing is left behind when the mount fails."""
        mount = self.store.prepare(key, parent)
        target = self.store.merged_dir(key)
        try:
            perform_mount(mount, target, self.sc)
        except BaseException:
            self.store.remove(key)
            raise
        return MountedLayer(key, target, self.store.upper_dir(key))

    def unmount(self, layer: MountedLayer) -> None:
        """Unmount ``layer`` (no error when it is not mounted); the layer stays."""
        if is_mounted(layer.root):
            unmount(layer.root)

    def release(self, layer: MountedLayer) -> None:
        """Unmount ``layer`` and delete it (no error when already gone)."""
        self.unmount(layer)
        try:
            self.store.remove(layer.key)
        except NotFound:
            pass

    @contextlib.contextmanager
    def mounted(self, key: str) -> Iterator[Path]:
        """The existing writable layer ``key`` (a stopped container's) mounted on its
        reserved mountpoint while the block runs."""
        target = self.store.merged_dir(key)
        perform_mount(self.store.mounts(key), target, self.sc)
        try:
            yield target
        finally:
            unmount(target)


__all__ = ["LayerMounts", "MountedLayer"]
