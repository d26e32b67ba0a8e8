"""Storage: a digest-verified content store and the overlayfs layer store.

On-disk layout under the daemon's data root::

    <data-root>/image/content/blobs/sha256/<hex>   content store (image configs, manifests)
    <data-root>/overlay2/...                       layer store (see runtime.storage.overlay)
"""

from runtime.storage.content import (
    BlobNotFound,
    ContentStore,
    ContentWriter,
    DigestMismatchError,
    FileContentStore,
    Ingester,
    Manager,
    MemoryContentStore,
    Provider,
    put,
)
from runtime.storage.digest import chain_id, chain_ids, sha256_of
from runtime.storage.overlay import OverlayLayerStore, RWLayerNotFound
from runtime.storage.snapshots import (
    Layer,
    LayerNotFound,
    LayerStore,
    Mount,
    is_mounted,
    perform_mount,
    unmount,
)

__all__ = [
    "BlobNotFound",
    "ContentStore",
    "ContentWriter",
    "DigestMismatchError",
    "FileContentStore",
    "Ingester",
    "Layer",
    "LayerNotFound",
    "LayerStore",
    "Manager",
    "MemoryContentStore",
    "Mount",
    "OverlayLayerStore",
    "Provider",
    "RWLayerNotFound",
    "chain_id",
    "chain_ids",
    "is_mounted",
    "perform_mount",
    "put",
    "sha256_of",
    "unmount",
]
