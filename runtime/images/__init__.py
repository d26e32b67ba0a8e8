"""Images: references, the image store, and the ImageService behind the image endpoints.

On-disk layout: ``<data-root>/image/`` (configs, metadata, references; see
``runtime.images.store``) and ``<data-root>/overlay2/`` (layers; see
``runtime.storage.overlay``).
"""

from runtime.images.model import DeleteItem, HistoryItem, Image, ImageSummary, Progress, PruneReport
from runtime.images.reference import InvalidReference, Reference, parse_normalized_named
from runtime.images.service import ImageDeleteConflict, ImageService
from runtime.images.store import ImageStore

__all__ = [
    "DeleteItem",
    "HistoryItem",
    "Image",
    "ImageDeleteConflict",
    "ImageService",
    "ImageStore",
    "ImageSummary",
    "InvalidReference",
    "Progress",
    "PruneReport",
    "Reference",
    "parse_normalized_named",
]
