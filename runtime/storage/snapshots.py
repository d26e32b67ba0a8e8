"""The layer store contract: read-only image layers plus writable container layers.

How images and containers use it, step by step (the store returns *descriptions* of
mounts, :class:`~runtime.spec.model.LayerMount`; ``runtime.linux.mounts.mount_layer``
performs them, in the container's init or through :func:`perform_mount` in the daemon):

1. Unpack an image's first layer::

       base = store.register(tar_chunks, parent=None)          # Layer(chain_id=diff_id, ...)

   Each layer is unpacked once, into a snapshot keyed by its **chain ID**
   (``ChainID(L0) = DiffID(L0)``, ``ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))``),
   so two images sharing a base share its snapshot. Registering an existing chain ID
   returns the existing layer.

2. The next layer names its parent::

       top = store.register(next_tar, parent=base.chain_id)

3. A container gets a writable layer on top of the image's top layer::

       mount = store.prepare(container_id, parent=top.chain_id)
       perform_mount(mount, rootfs, syscalls)   # overlay: lowerdir=top:...:base, upperdir, workdir

4. ``docker commit`` archives the writable layer's upper directory
   (:meth:`LayerStore.upper_dir`) and registers the result as a new layer.

5. :meth:`LayerStore.remove` deletes a writable layer; :meth:`LayerStore.gc` deletes read-only
   layers that no image (``keep``) and no writable layer needs any more.

Layers are immutable once registered. :meth:`LayerStore.tar_stream` gives back the exact
bytes that were registered (``sha256`` of them is the diff ID), which ``docker save`` needs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from runtime.errors import NotFound, SystemError_
from runtime.linux.mounts import mount_layer_in_thread
from runtime.linux.syscalls import Syscalls
from runtime.spec.model import LayerMount


#: the store's mount descriptions (plain data that crosses to the container's init)
Mount = LayerMount


@dataclass(frozen=True, slots=True)
class Layer:
    """A registered, read-only layer."""

    chain_id: str
    diff_id: str
    parent: str | None  # chain ID of the layer below, None for a base layer
    size: int  # bytes of this layer's own content, counted as dockerd does
    diff_dir: Path  # the unpacked tree (an overlay lowerdir)
    tar_size: int = 0  # bytes of the layer tar (what tar_stream yields)


class LayerNotFound(NotFound):
    def __init__(self, chain_id: str) -> None:
        super().__init__(f"layer does not exist: {chain_id}")


class LayerStore(Protocol):
    def register(
        self, tar_chunks: Iterable[bytes], parent: str | None, expected_diff_id: str | None = None
    ) -> Layer:
        """Unpack an uncompressed layer tar on top of ``parent`` (a chain ID).

        With ``expected_diff_id`` the stream must hash to it, else ``DigestMismatch`` is
        raised and nothing is kept."""

    def get(self, chain_id: str) -> Layer:
        """Raises :class:`LayerNotFound`."""

    def exists(self, chain_id: str) -> bool: ...

    def layers(self) -> list[Layer]: ...

    def lowerdirs(self, chain_id: str) -> list[Path]:
        """Diff directories of ``chain_id`` and its ancestors, top layer first."""

    def tar_stream(self, chain_id: str) -> Iterator[bytes]:
        """The layer's original tar bytes, verified against its diff ID while streaming."""

    def prepare(self, key: str, parent: str | None) -> LayerMount:
        """Create the writable layer ``key`` on ``parent`` and return its overlay mount.
        Raises Conflict if ``key`` exists."""

    def mounts(self, key: str) -> LayerMount:
        """The overlay mount of an existing writable layer."""

    def upper_dir(self, key: str) -> Path: ...

    def merged_dir(self, key: str) -> Path:
        """A directory reserved as the mount point of ``key`` (created by prepare)."""

    def writable_layers(self) -> dict[str, str | None]:
        """Writable layer key -> parent chain ID."""

    def remove(self, key: str) -> None:
        """Delete writable layer ``key`` (unmounting it first if still mounted)."""

    def gc(self, keep: Iterable[str]) -> list[Layer]:
        """Delete every read-only layer that is neither in ``keep`` (chain IDs; their
        ancestors are kept too) nor below a writable layer. Returns what was deleted."""


# ---- performing mounts (the only code that mounts) --------------------------------------


def perform_mount(mount: LayerMount, target: Path, sc: Syscalls) -> None:
    """Mount ``mount`` on ``target`` from the daemon, through the syscall seam
    (``runtime.linux.mounts.mount_layer_in_thread``: a ``chdir`` never moves the daemon's
    own working directory). Raises ``SystemError_``."""
    try:
        mount_layer_in_thread(sc, mount, str(target))
    except OSError as exc:
        raise SystemError_(f"error mounting {mount.type} on {target}: {exc.strerror or exc}") from exc


def unmount(target: Path, detach: bool = False) -> None:
    args = ["umount", *(["-l"] if detach else []), str(target)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0 and is_mounted(target):
        raise SystemError_(f"error unmounting {target}: {proc.stderr.strip()}")


def is_mounted(target: Path) -> bool:
    wanted = os.path.realpath(target)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split(" ", 5)
            if len(fields) > 4 and _unescape(fields[4]) == wanted:
                return True
    return False


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \\ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) + 0 and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
