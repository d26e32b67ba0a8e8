"""Adapters from the engine's image service and layer store to the container service's ports."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from runtime.containers.model import RwLayer
from runtime.containers.ports import ImageRef
from runtime.images.model import Image
from runtime.images.service import ImageService
from runtime.storage.overlay import RWLayerNotFound


class ImageBackendAdapter:
    """``ImageBackend`` on top of ``runtime.images.ImageService``."""

    def __init__(self, images: ImageService) -> None:
        self.service = images

    def get(self, ref: str) -> Image:
        return self.service.get(ref)

    def image_config(self, image: ImageRef) -> Mapping[str, Any]:
        return _image(image).runtime_config

    def repo_tags(self, image: ImageRef) -> tuple[str, ...]:
        return tuple(_image(image).repo_tags)

    async def commit(self, parent_id: str, diff_dir: str, config: Mapping[str, Any],
                     repo_tag: str | None, comment: str, author: str,
                     container_id: str = "") -> str:
        parent = self.service.get(parent_id) if parent_id else None
        image = await self.service.commit(parent, Path(diff_dir), config, repo_tag, comment,
                                          author, container_id=container_id)
        return image.id

    def set_usage_checker(self, users: Callable[[str], list[str]],
                          running: Callable[[str], list[str]]) -> None:
        self.service.set_usage_checker(users, running)


class ImageRwLayers:
    """``RwLayerStore`` on the image service's overlay layer store (key = container ID)."""

    def __init__(self, images: ImageService) -> None:
        self.service = images

    def prepare(self, container_id: str, image: ImageRef) -> RwLayer:
        """The writable layer, with the upper and work dirs of the store's mount description.

        ``lowerdirs`` are the image's layer diff dirs (inspect's GraphDriver shows them);
        ``runtime.storage.overlay.stack_mount`` turns them back into the store's mount
        description of this layer (``runtime.containers.spec.rootfs_spec``)."""
        mount = self.service.prepare_rootfs(container_id, _image(image))
        options = {key: value for key, _, value in (o.partition("=") for o in mount.options)}
        lowerdirs = tuple(str(p) for p in self.service.rootfs_lowerdirs(_image(image)))
        return RwLayer(options["upperdir"], options["workdir"], lowerdirs, container_id)

    def remove(self, container_id: str) -> None:
        try:
            self.service.layers.remove(container_id)
        except RWLayerNotFound:
            pass

    def size(self, container_id: str) -> int:
        try:
            upper = self.service.layers.upper_dir(container_id)
        except RWLayerNotFound:
            return 0
        total = 0
        for root, dirs, files in os.walk(upper):
            for name in files + dirs:
                try:
                    st = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                if not os.path.isdir(os.path.join(root, name)) or os.path.islink(
                        os.path.join(root, name)):
                    total += st.st_size
        return total


def _image(image: ImageRef) -> Image:
    """What ``ImageBackendAdapter.get`` returned (the ports see only an ``ImageRef``)."""
    if not isinstance(image, Image):
        raise TypeError(f"not an image of the image service: {image!r}")
    return image


__all__ = ["ImageBackendAdapter", "ImageRwLayers"]
