"""``docker import``, ``save`` and ``load`` for :class:`~runtime.images.service.ImageService`."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from runtime.archive.compression import Readable, decompressed_chunks
from runtime.errors import InvalidParameter
from runtime.images import config as imgconfig
from runtime.images.load import load_archive
from runtime.images.model import Image, Progress
from runtime.images.reference import Reference, repo_tag_reference
from runtime.images.save import SavePlan, plan_save
from runtime.images.servicebase import ByteSource, ProgressFn, ServiceBase
from runtime.images.streams import BlockingReader, iterate_in_thread


class TransferOps(ServiceBase):
    async def import_image(
        self,
        source: ByteSource,
        repo: str = "",
        tag: str = "",
        message: str = "",
        config: Mapping[str, Any] | None = None,
        src: str = "-",
    ) -> Image:
        """``docker import``: one layer from a (possibly compressed) rootfs tar. ``config`` is
        the image's ``container.Config`` (``--change`` applied by ``builder.changes``)."""
        ref = repo_tag_reference(repo, tag)  # validated before the body is read, as dockerd
        runtime_config = dict(config or {})
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
