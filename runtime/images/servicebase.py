"""The state every part of :class:`~runtime.images.service.ImageService` shares: stores,
pins of layers in flight, event emission and the worker-thread runner."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from runtime.archive.compression import Readable
from runtime.archive.rootfd import discard_path
from runtime.errors import NotFound
from runtime.events import EventBus
from runtime.images.blobindex import LayerBlobIndex
from runtime.images.endpoints import RegistryOptions
from runtime.images.model import Image, Progress
from runtime.images.reference import Reference
from runtime.images.store import ImageStore
from runtime.images.streams import AsyncReadable
from runtime.statefile import ensure_private_dir
from runtime.storage.overlay import OverlayLayerStore

UsageChecker = Callable[[str], list[str]]
ProgressFn = Callable[[Progress], None]
ByteSource = Readable | AsyncReadable

DEFAULT_ENGINE_VERSION = "28.2.2"


class ServiceBase:
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

    def get(self, ref: str) -> Image:
        """The image ``ref`` names (ID, ID prefix, digest or reference). Raises
        ImageNotFound ("No such image: ...") or InvalidParameter for malformed references."""
        return self.store.get(self.store.resolve(ref))

    def _tag_sync(self, emit: Any, image_id: str, ref: Reference) -> None:
        self.store.add_reference(ref, image_id)
        self._image_event(emit, image_id, ref.familiar, "tag")

    def _pin(self, chain: str) -> None:
        with self._lock:
            self._inflight[chain] += 1

    def _unpin(self, chains: Sequence[str]) -> None:
        with self._lock:
            for chain in chains:
                self._inflight[chain] -= 1
                if self._inflight[chain] <= 0:
                    del self._inflight[chain]
