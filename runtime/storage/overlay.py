"""The overlayfs layer store (see :mod:`runtime.storage.snapshots` for the contract).

Layout under ``<data-root>/overlay2/``::

    layers/<chain-hex>/diff/            the unpacked layer (an overlay lowerdir)
    layers/<chain-hex>/layer.json       {"chain_id", "diff_id", "parent", "size", "tar_size", "link"}
    layers/<chain-hex>/tar-split.*      what is needed to rebuild the exact layer tar
    layers/<chain-hex>/stash/           content the layer's own tar overwrote (rare)
    l/<LINK>  -> ../layers/<chain-hex>/diff     26-character names keep lowerdir short
    mounts/<key>/{diff,work,merged}     writable layers (upper, overlay workdir, mountpoint)
    mounts/<key>/mount.json             {"parent": <chain id> | null}
    empty/                              lowerdir for writable layers without a parent
    tmp/                                staging; a layer appears in layers/ only complete

Writable layers are described for mounting by :func:`stack_mount`, the one place a layer
stack's mount options are assembled (container rootfs, ``docker cp``, copy-up and builds
alike): absolute layer paths while the options fit in one page, the store's short ``l/``
links beyond that, relative to the store root (``LayerMount.chdir``) for the deepest.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.archive.extract import ExtractOptions, WhiteoutMode, extract_chunks
from runtime.archive.errors import DigestMismatch
from runtime.archive.tarsplit import TarSplitRecorder, reassemble
from runtime.errors import Conflict, NotFound, SystemError_
from runtime.statefile import ensure_private_dir, read_json, write_json_atomic
from runtime.storage.digest import chain_id as make_chain_id
from runtime.storage.digest import hex_of
from runtime.spec.model import LayerMount
from runtime.storage.snapshots import Layer, LayerNotFound, is_mounted, unmount
from runtime.storage.trash import TRASH
from runtime.archive.rootfd import discard_path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MAX_DEPTH = 128


def _link_name(chain_id: str) -> str:
    digest = hashlib.sha256(chain_id.encode()).digest()
    return base64.b32encode(digest).decode()[:26]


def overlay_options(lowerdirs: Sequence[str], upperdir: str, workdir: str,
                    fs_options: Sequence[str] = ()) -> tuple[str, ...]:
    """The options of an overlay mount, in the order dockerd writes them."""
    return ("lowerdir=" + ":".join(lowerdirs), f"upperdir={upperdir}", f"workdir={workdir}",
            *fs_options)


def _fits(options: Sequence[str]) -> bool:
    return len(",".join(options)) < PAGE_SIZE


def _store_links(lowerdirs: Sequence[str]) -> tuple[Path, list[str]] | None:
    """(store root, link names) when every dir is ``<root>/layers/<hex>/diff`` of one
    store and that store's ``l/<link>`` points at it; None otherwise."""
    roots: set[Path] = set()
    links: list[str] = []
    for d in lowerdirs:
        diff = Path(d)
        layer = diff.parent
        if diff.name != "diff" or layer.parent.name != "layers" or not diff.is_absolute():
            return None
        root = layer.parent.parent
        link = _link_name("sha256:" + layer.name)
        try:
            if os.readlink(root / "l" / link) != f"../layers/{layer.name}/diff":
                return None
        except OSError:
            return None
        roots.add(root)
        links.append(link)
    if len(roots) != 1:
        return None
    return roots.pop(), links


@functools.cache
def fs_options() -> tuple[str, ...]:
    """Overlay options this host takes beyond the directories (probed once)."""
    # "index=off": as dockerd, so lower dirs can be shared by many mounts safely
    if os.path.exists("/sys/module/overlay/parameters/index"):
        return ("index=off",)
    return ()


def stack_mount(lowerdirs: Sequence[str], upperdir: str, workdir: str,
                options: Sequence[str] | None = None) -> LayerMount:
    """The mount of a writable layer (``upperdir``, ``workdir``) on read-only layers
    (``lowerdirs``, top first): the one place a layer stack's mount is described, for the
    container's rootfs (carried to its init), ``docker cp``, volume copy-up and the
    builder's layers alike. ``options``: the overlay fs options (default :func:`fs_options`).

    No lowerdirs: a bind mount of ``upperdir``. Otherwise an overlay mount naming the
    lowerdirs as given while all options fit in one page (4096 bytes); beyond that, when
    they are layers of one store, by that store's ``l/`` links (26 characters): absolute,
    or relative to the store root, which is then the mount's ``chdir`` (about 140 layers;
    dockerd caps images at 128). Paths this function cannot vouch for stay as given.
    """
    if not lowerdirs:
        return LayerMount("bind", upperdir, ("rbind",))
    extra = tuple(fs_options() if options is None else options)
    given = overlay_options(lowerdirs, upperdir, workdir, extra)
    if _fits(given):
        return LayerMount("overlay", "overlay", given)
    located = _store_links(lowerdirs)
    if located is None:
        return LayerMount("overlay", "overlay", given)
    root, links = located
    absolute = overlay_options([str(root / "l" / link) for link in links], upperdir, workdir, extra)
    if _fits(absolute):
        return LayerMount("overlay", "overlay", absolute)
    relative = overlay_options([f"l/{link}" for link in links], upperdir, workdir, extra)
    if not _fits(relative):
        raise SystemError_(f"too many layers to mount ({len(links)})")
    return LayerMount("overlay", "overlay", relative, chdir=str(root))


class RWLayerNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"writable layer does not exist: {key}")



def _mounted_here(merged: Path, parent: Path) -> bool:
    """Cheap pre-check for :func:`is_mounted` (which reads all of mountinfo): a mount on
    ``merged`` (an overlay, or anything else) shows as another device than its parent."""
    try:
        return os.stat(merged).st_dev != os.stat(parent).st_dev
    except FileNotFoundError:
        return False


@dataclass(frozen=True, slots=True)
class StagedLayer:
    """An unpacked layer tar waiting to be registered (see :meth:`OverlayLayerStore.stage`)."""

    path: Path  # the staging directory (``diff/`` and the tar-split record)
    diff_id: str
    size: int
    tar_size: int


class OverlayLayerStore:
    def __init__(self, root: Path) -> None:
        self.root = ensure_private_dir(root)
        self.layers_dir = self.root / "layers"
        self.links_dir = self.root / "l"
        self.mounts_dir = self.root / "mounts"
        self.tmp_dir = self.root / "tmp"
        self.empty_dir = self.root / "empty"
        for d in (self.layers_dir, self.links_dir, self.mounts_dir, self.tmp_dir, self.empty_dir):
            d.mkdir(exist_ok=True)
        os.chmod(self.empty_dir, 0o755)
        for stale in self.tmp_dir.iterdir():
            discard_path(stale)
        self._lock = threading.RLock()
        self._layers: dict[str, Layer] = {}
        self._links: dict[str, str] = {}
        for entry in self.layers_dir.iterdir():
            meta = entry / "layer.json"
            if not meta.is_file():
                discard_path(entry)
                continue
            doc = read_json(meta)
            self._layers[doc["chain_id"]] = Layer(
                chain_id=doc["chain_id"],
                diff_id=doc["diff_id"],
                parent=doc["parent"],
                size=int(doc["size"]),
                diff_dir=entry / "diff",
                tar_size=int(doc.get("tar_size", 0)),
            )
            self._links[doc["chain_id"]] = doc["link"]

    # -- read-only layers ------------------------------------------------------------------

    def _layer_dir(self, chain_id: str) -> Path:
        return self.layers_dir / hex_of(chain_id)

    def register(
        self, tar_chunks: Iterable[bytes], parent: str | None, expected_diff_id: str | None = None
    ) -> Layer:
        if parent is not None:
            self._check_parent(parent)
        staged = self.stage(tar_chunks)
        try:
            return self.commit_staged(staged, parent, expected_diff_id)
        finally:
            self.discard_staged(staged)

    def _check_parent(self, parent: str) -> None:
        self.get(parent)
        if self._depth(parent) >= MAX_DEPTH:
            raise SystemError_(f"max depth exceeded ({MAX_DEPTH} layers)")

    def stage(self, tar_chunks: Iterable[bytes]) -> StagedLayer:
        """Unpack a layer tar into a staging directory (with its tar-split record and diff
        ID), not yet a layer: :meth:`commit_staged` makes it one, :meth:`discard_staged`
        removes it. A layer's content does not depend on its parent, so ``docker load``
        stages layers as the archive streams by, before its manifest says where they go."""
        stage = self.tmp_dir / uuid.uuid4().hex
        (stage / "diff").mkdir(parents=True)
        try:
            os.chmod(stage / "diff", 0o755)
            with TarSplitRecorder(stage / "tar-split.log", stage / "tar-split.files", stage / "stash") as rec:
                result = extract_chunks(
                    tar_chunks, stage / "diff", ExtractOptions(whiteouts=WhiteoutMode.OVERLAY), rec
                )
        except BaseException:
            discard_path(stage)
            raise
        return StagedLayer(stage, result.digest, result.size, result.tar_size)

    def commit_staged(self, staged: StagedLayer, parent: str | None, expected_diff_id: str | None = None) -> Layer:
        """Register ``staged`` on top of ``parent`` (checking its diff ID); the layer that
        already has this chain ID if there is one (``staged`` then stays to discard)."""
        if parent is not None:
            self._check_parent(parent)
        if expected_diff_id is not None and staged.diff_id != expected_diff_id:
            raise DigestMismatch(f"layer digest mismatch: expected {expected_diff_id}, got {staged.diff_id}")
        chain = make_chain_id(parent, staged.diff_id)
        link = _link_name(chain)
        layer_doc = {
            "chain_id": chain,
            "diff_id": staged.diff_id,
            "parent": parent,
            "size": staged.size,
            "tar_size": staged.tar_size,
            "link": link,
        }
        write_json_atomic(staged.path / "layer.json", layer_doc)
        with self._lock:
            existing = self._layers.get(chain)
            if existing is not None:
                return existing
            final = self._layer_dir(chain)
            os.rename(staged.path, final)
            link_path = self.links_dir / link
            if link_path.is_symlink():
                link_path.unlink()
            os.symlink(f"../layers/{hex_of(chain)}/diff", link_path)
            layer = Layer(chain, staged.diff_id, parent, staged.size, final / "diff", staged.tar_size)
            self._layers[chain] = layer
            self._links[chain] = link
            return layer

    def discard_staged(self, staged: StagedLayer) -> None:
        """Remove a staged layer that was not committed (no-op after a commit)."""
        if staged.path.exists():
            discard_path(staged.path)

    def _depth(self, chain_id: str) -> int:
        depth = 0
        current: str | None = chain_id
        while current is not None:
            depth += 1
            current = self.get(current).parent
        return depth

    def get(self, chain_id: str) -> Layer:
        layer = self._layers.get(chain_id)
        if layer is None:
            raise LayerNotFound(chain_id)
        return layer

    def exists(self, chain_id: str) -> bool:
        return chain_id in self._layers

    def layers(self) -> list[Layer]:
        return list(self._layers.values())

    def chain(self, chain_id: str | None) -> list[Layer]:
        """``chain_id`` and its ancestors, top first."""
        out: list[Layer] = []
        current = chain_id
        while current is not None:
            layer = self.get(current)
            out.append(layer)
            current = layer.parent
        return out

    def lowerdirs(self, chain_id: str) -> list[Path]:
        return [layer.diff_dir for layer in self.chain(chain_id)]

    def tar_stream(self, chain_id: str) -> Iterator[bytes]:
        layer = self.get(chain_id)
        d = self._layer_dir(chain_id)
        return reassemble(
            d / "tar-split.log", d / "tar-split.files", layer.diff_dir, d / "stash", layer.diff_id
        )

    # -- writable layers -------------------------------------------------------------------

    def _mount_dir(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise NotFound(f"invalid writable layer key: {key!r}")
        return self.mounts_dir / key

    def prepare(self, key: str, parent: str | None) -> LayerMount:
        if parent is not None:
            self.get(parent)
        d = self._mount_dir(key)
        with self._lock:
            try:
                d.mkdir()
            except FileExistsError:
                raise Conflict(f"writable layer {key} already exists") from None
            try:
                for sub, mode in (("diff", 0o755), ("work", 0o700), ("merged", 0o700)):
                    (d / sub).mkdir()
                    os.chmod(d / sub, mode)
                write_json_atomic(d / "mount.json", {"parent": parent})
            except BaseException:
                discard_path(d)
                raise
        return self._mount_for(d, parent)

    def _mount_for(self, d: Path, parent: str | None) -> LayerMount:
        lowerdirs = [str(p) for p in self.lowerdirs(parent)] if parent else [str(self.empty_dir)]
        return stack_mount(lowerdirs, str(d / "diff"), str(d / "work"))

    def mounts(self, key: str) -> LayerMount:
        d = self._mount_dir(key)
        try:
            doc = read_json(d / "mount.json")
        except FileNotFoundError:
            raise RWLayerNotFound(key) from None
        return self._mount_for(d, doc["parent"])

    def upper_dir(self, key: str) -> Path:
        d = self._mount_dir(key)
        if not (d / "mount.json").is_file():
            raise RWLayerNotFound(key)
        return d / "diff"

    def merged_dir(self, key: str) -> Path:
        return self.upper_dir(key).parent / "merged"

    def writable_layers(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for d in self.mounts_dir.iterdir():
            try:
                out[d.name] = read_json(d / "mount.json")["parent"]
            except (FileNotFoundError, ValueError):
                continue
        return out

    def remove(self, key: str) -> None:
        d = self._mount_dir(key)
        if not d.exists():
            raise RWLayerNotFound(key)
        merged = d / "merged"
        if _mounted_here(merged, d) and is_mounted(merged):
            unmount(merged, detach=True)
        with self._lock:
            # rename first so a half-deleted layer is never mistaken for a live one
            doomed = self.tmp_dir / f"rm-{uuid.uuid4().hex}"
            os.rename(d, doomed)
        TRASH.discard(doomed)  # the tmp dir is swept at start should the daemon die first

    def gc(self, keep: Iterable[str]) -> list[Layer]:
        with self._lock:
            needed: set[str] = set()
            roots = [c for c in keep if c in self._layers]
            roots += [p for p in self.writable_layers().values() if p is not None]
            for chain in roots:
                current: str | None = chain
                while current is not None and current not in needed:
                    needed.add(current)
                    current = self._layers[current].parent if current in self._layers else None
            removed = [layer for chain, layer in self._layers.items() if chain not in needed]
            for layer in removed:
                del self._layers[layer.chain_id]
                link = self._links.pop(layer.chain_id, None)
                if link is not None:
                    try:
                        (self.links_dir / link).unlink()
                    except FileNotFoundError:
                        pass
                doomed = self.tmp_dir / f"rm-{uuid.uuid4().hex}"
                os.rename(self._layer_dir(layer.chain_id), doomed)
        for path in self.tmp_dir.glob("rm-*"):
            discard_path(path)
        return removed

    def used_size(self) -> int:
        return sum(layer.size for layer in self._layers.values())

    def chain_size(self, chain_id: str | None) -> int:
        return sum(layer.size for layer in self.chain(chain_id))

