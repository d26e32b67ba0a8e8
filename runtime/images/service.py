"""ImageService: the operations behind the image endpoints.

Cheap lookups (:meth:`ImageService.get`, :meth:`rootfs_lowerdirs`, :meth:`list_images` ...)
are plain methods: everything they read is in memory. Operations that touch disk
(import, load, commit, delete, prune, tag) are coroutines that run the blocking work in a
worker thread. Image events are published on the event loop, in the order dockerd emits
them, with dockerd's attributes (``name`` plus the image's labels).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from runtime.faults import fault_point
from runtime.archive.compression import Readable, decompressed_chunks
from runtime.archive.writer import tar_directory
from runtime.errors import Conflict, ImageNotFound, InvalidParameter, NotFound, SystemError_, Unavailable
from runtime.events import EventBus
from runtime.filters import Filters
from runtime.images import config as imgconfig
from runtime.images.changes import apply_changes
from runtime.images.model import (
    EMPTY_LAYER_DIFF_ID,
    DeleteItem,
    HistoryItem,
    Image,
    ImageSummary,
    Progress,
    PruneReport,
)
from runtime.images.reference import (
    InvalidReference,
    Reference,
    familiar_match,
    parse_normalized_named,
    repo_tag_reference,
)
from runtime.images.auth import AuthConfig
from runtime.images.blobindex import LayerBlobIndex, Stores
from runtime.images.distinspect import DistributionInfo, inspect_distribution
from runtime.images.platform import Platform
from runtime.images.pull import Puller, PullResult
from runtime.images.push import Pusher, PushResult
from runtime.images.endpoints import RegistryOptions
from runtime.images.registry import default_user_agent, login, new_session
from runtime.images.load import load_archive
from runtime.images.save import SavePlan, plan_save
from runtime.images.store import ImageStore, not_found_name
from runtime.images.streams import AsyncReadable, BlockingReader, iterate_in_thread
from runtime.statefile import ensure_private_dir
from runtime.storage.digest import chain_ids
from runtime.storage.overlay import OverlayLayerStore
from runtime.storage.snapshots import Mount
from runtime.timefmt import until_ns
from runtime.archive.rootfd import discard_path

UsageChecker = Callable[[str], list[str]]
ProgressFn = Callable[[Progress], None]
ByteSource = Readable | AsyncReadable

DEFAULT_ENGINE_VERSION = "28.2.2"
LIST_FILTERS = ("dangling", "label", "reference", "before", "since", "until")
PRUNE_FILTERS = ("dangling", "label", "label!", "until")


class ImageDeleteConflict(Conflict):
    def __init__(self, image_id: str, message: str, hard: bool, used: bool = False) -> None:
        self.hard = hard
        self.used = used
        force = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {image_id[7:19]} ({force}) - {message}")


def _short(id_: str) -> str:
    return id_.partition(":")[2][:12] if ":" in id_ else id_[:12]


class ImageService:
    """See module docs. ``layers`` is also the store for containers' writable layers."""

    def __init__(
        self,
        data_root: Path,
        events: EventBus,
        engine_version: str = DEFAULT_ENGINE_VERSION,
        layers: OverlayLayerStore | None = None,
    ) -> None:
        self.events = events
        self.engine_version = engine_version
        self.layers = layers if layers is not None else OverlayLayerStore(data_root / "overlay2")
        image_root = ensure_private_dir(data_root / "image")
        self.tmp_dir = ensure_private_dir(image_root / "tmp")
        for stale in self.tmp_dir.iterdir():  # spools of loads cut short by a crash
            discard_path(stale)
        self.store = ImageStore(image_root, size_of=self._chain_size)
        self._users: UsageChecker = lambda image_id: []
        self._running: UsageChecker | None = None
        self._lock = threading.RLock()
        # chain IDs registered by an operation that has not created its image yet:
        # layer GC must not collect them
        self._inflight: Counter[str] = Counter()
        # compressed layer blobs (pulled or pushed) and where they are: see runtime.images.blobindex
        self.blobs = LayerBlobIndex(image_root / "distribution.json", self.store.content)
        self.registries = RegistryOptions()

    # -- wiring ----------------------------------------------------------------------------

    def set_usage_checker(self, fn: UsageChecker, running: UsageChecker | None = None) -> None:
        """``fn(image_id)`` returns IDs of containers using the image; ``running`` (optional)
        the subset that is running, which makes a deletion conflict unforceable."""
        self._users = fn
        self._running = running

    def _chain_size(self, chain_id: str | None) -> int:
        try:
            return self.layers.chain_size(chain_id)
        except NotFound:
            return 0

    def _emit_on(self, loop: asyncio.AbstractEventLoop | None) -> Callable[[str, str, Mapping[str, str]], None]:
        def emit(action: str, actor: str, attributes: Mapping[str, str]) -> None:
            if loop is None:
                self.events.publish("image", action, actor, attributes)
            else:
                loop.call_soon_threadsafe(self.events.publish, "image", action, actor, dict(attributes))

        return emit

    def _image_event(self, emit: Callable[[str, str, Mapping[str, str]], None], image_id: str, name: str, action: str) -> None:
        attributes: dict[str, str] = {}
        if self.store.exists(image_id):
            attributes.update({k: str(v) for k, v in self.store.get(image_id).labels.items()})
        if name:
            attributes["name"] = name
        emit(action, image_id, attributes)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(fn, self._emit_on(loop), *args)

    # -- lookups ---------------------------------------------------------------------------

    def get(self, ref: str) -> Image:
        """The image ``ref`` names (ID, ID prefix, digest or reference). Raises
        ImageNotFound ("No such image: ...") or InvalidParameter for malformed references."""
        return self.store.get(self.store.resolve(ref))

    def rootfs_lowerdirs(self, image: Image) -> list[Path]:
        """Overlay lowerdirs for a container of ``image``, top layer first."""
        chain = image.chain_id
        return self.layers.lowerdirs(chain) if chain else []

    def prepare_rootfs(self, key: str, image: Image | None) -> Mount:
        """A writable layer ``key`` on top of ``image`` (None: empty rootfs)."""
        return self.layers.prepare(key, image.chain_id if image is not None else None)

    def graph_driver(self, image: Image) -> dict[str, Any]:
        """``GraphDriver`` of image inspect (overlay2: top layer is UpperDir)."""
        chain = image.chain_id
        if chain is None:
            return {"Name": "overlay2", "Data": None}
        dirs = self.layers.lowerdirs(chain)
        data = {"MergedDir": str(dirs[0].parent / "merged"), "UpperDir": str(dirs[0]), "WorkDir": str(dirs[0].parent / "work")}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(str(d) for d in dirs[1:])
        return {"Name": "overlay2", "Data": dict(sorted(data.items()))}

    def history(self, ref: str) -> list[HistoryItem]:
        image = self.get(ref)
        items: list[HistoryItem] = []
        diff_ids = image.diff_ids
        chains = chain_ids(diff_ids)
        layer_index = 0
        for h in image.history:
            size = 0
            if not h.get("empty_layer"):
                if layer_index >= len(diff_ids):
                    raise InvalidParameter("too many non-empty layers in History section")
                size = self._layer_size(chains[layer_index])
                layer_index += 1
            items.insert(
                0,
                HistoryItem(
                    id="<missing>",
                    created=_unix(h.get("created")),
                    created_by=str(h.get("created_by") or ""),
                    tags=(),
                    size=size,
                    comment=str(h.get("comment") or ""),
                ),
            )
        current: Image | None = image
        for i, item in enumerate(items):
            if current is None:
                break
            items[i] = HistoryItem(current.id, item.created, item.created_by, current.repo_tags, item.size, item.comment)
            current = self.store.get(current.parent) if current.parent and self.store.exists(current.parent) else None
        return items

    def _layer_size(self, chain: str) -> int:
        try:
            return self.layers.get(chain).size
        except NotFound:
            return 0

    def list_images(
        self,
        filters: Filters = Filters(),
        all: bool = False,
        shared_size: bool = False,
        container_count: bool = False,
    ) -> list[ImageSummary]:
        """``GET /images/json`` (dockerd's ``Images``), newest first."""
        filters.validate(LIST_FILTERS)
        dangling = filters.bool_value("dangling")
        dangling_only = dangling is True
        before = self._filter_image(filters, "before")
        since = self._filter_image(filters, "since")
        until_ns = _until(filters)
        selected = self.store.heads() if dangling_only else self.store.ids()
        chain_refs: dict[str, int] = {}
        if shared_size:
            for image_id in self.store.ids():
                for chain in chain_ids(self.store.get(image_id).diff_ids):
                    chain_refs[chain] = chain_refs.get(chain, 0) + 1
        out: list[ImageSummary] = []
        for image_id in selected:
            image = self.store.get(image_id)
            created = image.created_ns
            if before is not None and created >= before.created_ns:
                continue
            if since is not None and created <= since.created_ns:
                continue
            if until_ns and any(created > u for u in until_ns):
                continue
            if filters.has("label") and not filters.match_labels(image.labels):
                continue
            if filters.has("label!") and filters.match_labels(image.labels, "label!"):
                continue
            refs = self.store.references(image_id)
            if filters.has("reference"):
                refs = [r for r in refs if any(familiar_match(p, r) for p in filters.get("reference"))]
            tags = tuple(r.familiar for r in refs if r.tag is not None)
            digests = tuple(r.familiar for r in refs if r.digest is not None)
            if not tags and not digests:
                if all or not self.store.children(image_id):
                    if dangling is False:
                        continue
                    if filters.has("reference"):
                        continue
                else:
                    continue
            elif dangling_only and tags:
                continue
            shown = Image(
                id=image.id, config=image.config, repo_tags=tags, repo_digests=digests,
                created=image.created, size=image.size, parent=image.parent,
                last_tag_time=image.last_tag_time, raw_config=image.raw_config,
            )
            shared = -1
            if shared_size:
                shared = sum(
                    self._layer_size(c) for c in chain_ids(image.diff_ids) if chain_refs.get(c, 0) > 1
                )
            containers = len(self._users(image_id)) if container_count else -1
            out.append(ImageSummary(shown, containers, shared))
        out.sort(key=lambda s: s.image.created_ns, reverse=True)
        return out

    def _filter_image(self, filters: Filters, name: str) -> Image | None:
        values = filters.get(name)
        if not values:
            return None
        return self.get(values[-1])

    # -- import ----------------------------------------------------------------------------

    async def import_image(
        self,
        source: ByteSource,
        repo: str = "",
        tag: str = "",
        message: str = "",
        changes: Sequence[str] = (),
        src: str = "-",
    ) -> Image:
        """``docker import``: one layer from a (possibly compressed) rootfs tar."""
        ref = repo_tag_reference(repo, tag)  # validated before the body is read, as dockerd
        runtime_config = apply_changes({}, changes)
        comment = message or f"Imported from {src}"
        reader = self._blocking(source)
        try:
            image_id = await self._run(self._import_sync, reader, ref, runtime_config, comment)
        finally:
            if isinstance(reader, BlockingReader):
                reader.close()
        return self.store.get(image_id)

    def _blocking(self, source: ByteSource) -> Readable:
        if inspect.iscoroutinefunction(getattr(source, "read", None)):
            return BlockingReader(source, asyncio.get_running_loop())  # type: ignore[arg-type]
        return source  # type: ignore[return-value]

    def _import_sync(self, emit: Any, reader: Readable, ref: Reference | None, runtime_config: Mapping[str, Any], comment: str) -> str:
        _kind, chunks = decompressed_chunks(reader)
        layer = self.layers.register(chunks, None)
        self._pin(layer.chain_id)
        try:
            raw = imgconfig.encode(imgconfig.import_config(layer.diff_id, runtime_config, comment, self.engine_version))
            with self._lock:
                image_id, _ = self.store.create(raw)
                if ref is not None:
                    self._tag_sync(emit, image_id, ref)
                self._image_event(emit, image_id, image_id, "import")
        finally:
            self._unpin([layer.chain_id])
        return image_id

    # -- tag -------------------------------------------------------------------------------

    async def tag(self, source: str, repo: str, tag: str = "") -> Reference:
        """``POST /images/{name}/tag``."""
        ref = repo_tag_reference(repo, tag)  # dockerd's shared helper, same messages
        if ref is None:
            raise InvalidParameter("repository name must have at least one component")
        if ref.familiar_name == "sha256":
            raise InvalidParameter("refusing to create an ambiguous tag using digest algorithm as name")
        image = self.get(source)
        await self._run(self._tag_sync, image.id, ref)
        return ref

    def _tag_sync(self, emit: Any, image_id: str, ref: Reference) -> None:
        self.store.add_reference(ref, image_id)
        self._image_event(emit, image_id, ref.familiar, "tag")

    # -- commit ----------------------------------------------------------------------------

    async def commit(
        self,
        parent: Image | None,
        diff_dir: Path | None,
        config: Mapping[str, Any],
        repo_tag: str | None,
        comment: str = "",
        author: str = "",
        *,
        created_by: str = "",
        container_id: str = "",
        container_config: Mapping[str, Any] | None = None,
    ) -> Image:
        """A new image on ``parent``: its layer is ``diff_dir`` (an overlay upper dir,
        whiteouts converted) or, with ``diff_dir`` None, no layer (metadata-only, as the
        builder needs for ENV/CMD steps). ``config`` is the new runtime config."""
        ref = parse_normalized_named(repo_tag).with_default_tag() if repo_tag else None
        if ref is not None and ref.digest is not None:
            raise InvalidParameter("cannot commit to a digest reference")
        image_id = await self._run(
            self._commit_sync, parent, diff_dir, dict(config), ref, comment, author, created_by, container_id, container_config
        )
        return self.store.get(image_id)

    def commit_sync(self, parent: Image | None, diff_dir: Path | None, config: Mapping[str, Any],
                    repo_tag: str | None, comment: str = "", author: str = "", **kw: Any) -> Image:
        """Blocking :meth:`commit` for callers already in a worker thread (events are
        published directly, so only call it where the event bus may be used)."""
        ref = parse_normalized_named(repo_tag).with_default_tag() if repo_tag else None
        image_id = self._commit_sync(
            self._emit_on(None), parent, diff_dir, dict(config), ref, comment, author,
            kw.get("created_by", ""), kw.get("container_id", ""), kw.get("container_config"),
        )
        return self.store.get(image_id)

    def _commit_sync(
        self,
        emit: Any,
        parent: Image | None,
        diff_dir: Path | None,
        config: dict[str, Any],
        ref: Reference | None,
        comment: str,
        author: str,
        created_by: str,
        container_id: str,
        container_config: Mapping[str, Any] | None,
    ) -> str:
        parent_chain = parent.chain_id if parent is not None else None
        diff_id: str | None = None
        pinned: list[str] = []
        if diff_dir is not None:
            layer = self.layers.register(tar_directory(diff_dir), parent_chain)
            self._pin(layer.chain_id)
            pinned.append(layer.chain_id)
            diff_id = layer.diff_id
            fault_point("commit.after-layer")
            if diff_id == EMPTY_LAYER_DIFF_ID:
                diff_id = None  # nothing changed: no layer, as moby's NewChildImage
        try:
            return self._commit_image(emit, parent, diff_id, config, ref, comment, author, created_by, container_id, container_config)
        finally:
            self._unpin(pinned)
            self._gc_layers()

    def _commit_image(
        self,
        emit: Any,
        parent: Image | None,
        diff_id: str | None,
        config: dict[str, Any],
        ref: Reference | None,
        comment: str,
        author: str,
        created_by: str,
        container_id: str,
        container_config: Mapping[str, Any] | None,
    ) -> str:
        doc = imgconfig.child_config(
            parent.config if parent is not None else None,
            diff_id,
            config,
            comment=comment,
            author=author,
            created_by=created_by,
            docker_version=self.engine_version,
            container_id=container_id,
            container_config=container_config,
        )
        raw = imgconfig.encode(doc)
        with self._lock:
            image_id, _ = self.store.create(raw, parent=parent.id if parent is not None else "")
            if ref is not None:
                self._tag_sync(emit, image_id, ref)
        return image_id

    # -- delete ----------------------------------------------------------------------------

    async def delete(self, ref: str, force: bool = False, prune: bool = True) -> list[DeleteItem]:
        """``DELETE /images/{name}`` with dockerd's untag-versus-delete rules."""
        return list(await self._run(self._delete_sync, ref, force, prune))

    def _delete_sync(self, emit: Any, ref_text: str, force: bool, prune: bool) -> list[DeleteItem]:
        with self._lock:
            image_id = self.store.resolve(ref_text)
            records: list[DeleteItem] = []
            refs = self.store.references(image_id)
            removed_repo_ref = False
            if not _is_id_prefix(image_id, ref_text):
                parsed = parse_normalized_named(ref_text)
                if parsed.digest is None:
                    parsed = parsed.with_default_tag()
                if not force and _single_reference(refs):
                    users = self._users(image_id)
                    if users:
                        raise Conflict(
                            f'conflict: unable to remove repository reference "{ref_text}" (must force) - '
                            f"container {_short(users[0])} is using its referenced image {_short(image_id)}"
                        )
                if self.store.remove_reference(parsed) is None:
                    raise ImageNotFound(not_found_name(parsed))
                records.append(DeleteItem(untagged=parsed.familiar))
                self._image_event(emit, image_id, image_id, "untag")
                refs = self.store.references(image_id)
                if parsed.digest is None and not any(r.digest is None and r.name == parsed.name for r in refs):
                    remaining = []
                    for r in refs:
                        if r.digest is not None and r.name == parsed.name:
                            self.store.remove_reference(r)
                            records.append(DeleteItem(untagged=r.familiar))
                        else:
                            remaining.append(r)
                    refs = remaining
                if refs:
                    return records
                removed_repo_ref = True
            elif _single_reference(refs):
                self._check_conflict(image_id, force, soft_except_refs=True)
                for r in refs:
                    self.store.remove_reference(r)
                    records.append(DeleteItem(untagged=r.familiar))
                    self._image_event(emit, image_id, image_id, "untag")
            self._delete_helper(emit, image_id, records, force, prune, removed_repo_ref)
            return records

    def _check_conflict(self, image_id: str, force: bool, soft_except_refs: bool = False) -> None:
        if self.store.children(image_id):
            raise ImageDeleteConflict(image_id, "image has dependent child images", hard=True)
        running = self._running(image_id) if self._running is not None else []
        if running:
            raise ImageDeleteConflict(
                image_id, f"image is being used by running container {_short(running[0])}", hard=True, used=True
            )
        if force:
            return
        if not soft_except_refs and self.store.references(image_id):
            raise ImageDeleteConflict(image_id, "image is referenced in multiple repositories", hard=False)
        stopped = [c for c in self._users(image_id) if c not in running]
        if stopped:
            raise ImageDeleteConflict(
                image_id, f"image is being used by stopped container {_short(stopped[0])}", hard=False, used=True
            )

    def _delete_helper(
        self, emit: Any, image_id: str, records: list[DeleteItem], force: bool, prune: bool, quiet: bool
    ) -> None:
        try:
            self._check_conflict(image_id, force)
        except ImageDeleteConflict as conflict:
            is_dangling = not any(r.tag is not None for r in self.store.references(image_id))
            if quiet and (not is_dangling or conflict.used):
                return
            raise
        parent = self.store.parent(image_id)
        for r in self.store.references(image_id):
            self.store.remove_reference(r)
            records.append(DeleteItem(untagged=r.familiar))
            self._image_event(emit, image_id, image_id, "untag")
        self.store.delete(image_id)
        # after the deletion, as dockerd: the event carries no labels any more
        self._image_event(emit, image_id, image_id, "delete")
        records.append(DeleteItem(deleted=image_id))
        for layer in self._gc_layers():
            records.append(DeleteItem(deleted=layer))
        if prune and parent and self.store.exists(parent):
            self._delete_helper(emit, parent, records, False, True, True)

    def _pin(self, chain: str) -> None:
        with self._lock:
            self._inflight[chain] += 1

    def _unpin(self, chains: Sequence[str]) -> None:
        with self._lock:
            for chain in chains:
                self._inflight[chain] -= 1
                if self._inflight[chain] <= 0:
                    del self._inflight[chain]

    def _gc_layers(self) -> list[str]:
        keep: set[str] = set(self._inflight)
        for image_id in self.store.ids():
            chain = self.store.get(image_id).chain_id
            if chain is not None:
                keep.add(chain)
        removed = [layer.chain_id for layer in self.layers.gc(keep)]
        if removed:
            self.blobs.prune(layer.diff_id for layer in self.layers.layers())
        return removed

    # -- prune -----------------------------------------------------------------------------

    async def prune(self, filters: Filters = Filters()) -> PruneReport:
        """``POST /images/prune``: dangling images only unless ``dangling=false``."""
        return await self._run(self._prune_sync, filters)  # type: ignore[no-any-return]

    def _prune_sync(self, emit: Any, filters: Filters) -> PruneReport:
        filters.validate(PRUNE_FILTERS)
        dangling = filters.bool_value("dangling")
        dangling_only = dangling is not False
        until_ns = _until(filters)
        layer_sizes = {layer.chain_id: layer.size for layer in self.layers.layers()}
        deleted: list[DeleteItem] = []
        with self._lock:
            candidates = self.store.heads() if dangling_only else self.store.ids()
            for image_id in candidates:
                if not self.store.exists(image_id):
                    continue
                image = self.store.get(image_id)
                if until_ns and any(image.created_ns > u for u in until_ns):
                    continue
                if filters.has("label") and not filters.match_labels(image.labels):
                    continue
                if filters.has("label!") and filters.match_labels(image.labels, "label!"):
                    continue
                if self._users(image_id):
                    continue
                refs = self.store.references(image_id)
                try:
                    if refs:
                        if dangling_only and any(r.tag is not None for r in refs):
                            continue
                        for r in refs:
                            if self.store.lookup_reference(r) is None:
                                continue
                            deleted += self._delete_sync(emit, str(r), False, True)
                    else:
                        deleted += self._delete_sync(emit, image_id[7:], False, True)
                except (Conflict, NotFound):
                    continue
        reclaimed = sum(layer_sizes.get(d.deleted, 0) for d in deleted if d.deleted)
        emit("prune", "", {"reclaimed": str(reclaimed)})
        return PruneReport(tuple(deleted), reclaimed)

    # -- save / load -----------------------------------------------------------------------

    def plan_save(self, names: Sequence[str]) -> SavePlan:
        """Resolve ``names`` for ``docker save`` (raises before any output)."""
        if not names:
            raise InvalidParameter("no images specified")
        return plan_save(list(names), self.store, self.layers)

    async def save(self, names: Sequence[str]) -> AsyncIterator[bytes]:
        """The ``docker save`` tar stream. Name errors are raised by this await (before
        the first chunk); ``save`` events are published then, as dockerd does."""
        plan = await asyncio.to_thread(self.plan_save, names)
        for image_id in plan.image_ids:
            self._image_event(self._emit_on(None), image_id, image_id, "save")
        return iterate_in_thread(plan.chunks)

    def save_chunks(self, names: Sequence[str]) -> Iterator[bytes]:
        """Blocking variant of :meth:`save` (no events)."""
        return self.plan_save(names).chunks()

    async def load(self, source: ByteSource, quiet: bool = False, progress: Callable[[Progress], None] | None = None) -> list[str]:
        """``docker load`` (docker-archive or OCI layout); returns the loaded image IDs.

        ``progress`` receives records on the event loop: ``Loading layer`` bars (unless
        ``quiet``) and the ``Loaded image: ...`` lines."""
        loop = asyncio.get_running_loop()
        sink = progress or (lambda p: None)

        def emit_progress(p: Progress) -> None:
            loop.call_soon_threadsafe(sink, p)

        reader = self._blocking(source)
        try:
            return list(await self._run(self._load_sync, reader, quiet, emit_progress))
        finally:
            if isinstance(reader, BlockingReader):
                reader.close()

    def _load_sync(self, emit: Any, reader: Readable, quiet: bool, emit_progress: ProgressFn) -> list[str]:
        os_name, arch, _ = imgconfig.host_platform()
        pinned: list[str] = []

        def pin(chain: str) -> None:
            self._pin(chain)
            pinned.append(chain)

        try:
            return self._load_pinned(emit, reader, quiet, emit_progress, os_name, arch, pin)
        finally:
            self._unpin(pinned)

    def _load_pinned(self, emit: Any, reader: Readable, quiet: bool, emit_progress: ProgressFn,
                     os_name: str, arch: str, pin: Callable[[str], None]) -> list[str]:
        result = load_archive(
            reader,
            self.tmp_dir,
            self.store,
            self.layers,
            (os_name, arch),
            emit_progress,
            quiet,
            on_loaded=lambda image_id: self._image_event(emit, image_id, image_id, "load"),
            on_tag=lambda ref, image_id, previous: None,
            pin=pin,
        )
        return result.image_ids

    # -- registries: pull, push, login, distribution inspect ------------------------------

    def configure_registries(self, insecure: Sequence[str] = (), mirrors: Sequence[str] = ()) -> None:
        """The daemon's ``insecure-registries`` and ``registry-mirrors`` (InvalidParameter
        for a malformed entry). Loopback registries are insecure without configuration."""
        self.registries = RegistryOptions(tuple(insecure), tuple(mirrors))

    def _stores(self) -> Stores:
        return Stores(self.store, self.layers, self.blobs, self._lock, self._pin, self._unpin)

    def _distribution_event(self, action: str, ref: Reference) -> None:
        attributes: dict[str, str] = {}
        try:
            attributes.update({k: str(v) for k, v in self.get(ref.familiar).labels.items()})
        except (NotFound, InvalidParameter):
            pass
        attributes["name"] = ref.familiar_name
        self.events.publish("image", action, ref.familiar, attributes)

    async def pull(
        self, ref: Reference, auth: AuthConfig, progress: ProgressFn, *, all_tags: bool = False, platform: str = ""
    ) -> PullResult:
        """``docker pull``: ``ref`` with a tag or digest, or a bare name with ``all_tags``.
        ``progress`` gets dockerd's pull records on the loop; errors raised before the first
        record are the request's errors (404 for an unknown manifest)."""
        wanted = Platform.parse(platform) if platform else None
        await asyncio.to_thread(self.blobs.prune, [layer.diff_id for layer in self.layers.layers()])
        puller = Puller(self._stores(), self.registries, auth, progress, default_user_agent(self.engine_version), wanted)
        result = await puller.pull(ref, all_tags=all_tags)
        self._distribution_event("pull", ref if all_tags else ref.with_default_tag())
        return result

    async def push(self, ref: Reference, auth: AuthConfig, progress: ProgressFn) -> list[PushResult]:
        """``docker push`` of ``ref``'s tag, or of every tag of the repository."""
        pusher = Pusher(self._stores(), self.registries, auth, progress, default_user_agent(self.engine_version))
        results = await pusher.push(ref)
        for result in results:
            self._distribution_event("push", ref.trimmed().with_tag(result.tag))
        return results

    async def login(self, auth: AuthConfig) -> str:
        """``POST /auth``: check the credentials against the registry; returns the identity
        token it issued ("" for most registries)."""
        async with new_session() as session:
            return await login(session, self.registries, auth, default_user_agent(self.engine_version))

    async def inspect_distribution(self, ref: Reference, auth: AuthConfig) -> DistributionInfo:
        """``GET /distribution/{name}/json``."""
        return await inspect_distribution(self.registries, ref, auth, default_user_agent(self.engine_version))

    # -- search ----------------------------------------------------------------------------

    async def search(self, term: str, limit: int = 25) -> list[dict[str, Any]]:
        """``GET /images/search``: this daemon is not configured with any index registry
        and never contacts the network, so the answer is an immediate, clear error."""
        raise Unavailable(
            f'Get "https://index.docker.io/v1/search?q={term}&n={limit}": '
            "no registry index is reachable from this daemon (searching is not supported)"
        )

    # -- df --------------------------------------------------------------------------------

    def layers_size(self) -> int:
        return self.layers.used_size()


def _unix(created: Any) -> int:
    if not isinstance(created, str) or not created:
        return 0
    from runtime.images.model import _trim_fraction
    from runtime.timefmt import parse_rfc3339

    try:
        return parse_rfc3339(_trim_fraction(created)) // 1_000_000_000
    except ValueError:
        return 0


def _until(filters: Filters) -> list[int]:
    try:
        return [until_ns(v) for v in filters.get("until")]
    except ValueError as exc:
        raise SystemError_(str(exc)) from None  # a plain error in dockerd: 500


def _is_id_prefix(image_id: str, ref: str) -> bool:
    """dockerd's ``isImageIDPrefix``: ``ref`` is a prefix of the ID (with or without
    ``sha256:``)."""
    return image_id.startswith(ref) or image_id[7:].startswith(ref)


def _single_reference(refs: list[Reference]) -> bool:
    """At most one tag, and every reference in one repository (dockerd's
    ``isSingleReference``)."""
    tags = [r for r in refs if r.digest is None]
    if len(tags) > 1:
        return False
    names = {r.name for r in refs}
    return len(names) <= 1
