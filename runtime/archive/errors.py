"""Errors raised while reading, writing or unpacking tar archives."""

from __future__ import annotations

from runtime.errors import InvalidParameter, SystemError_


class ArchiveError(SystemError_):
    """Unpacking failed (I/O error, missing hardlink target, unsupported entry ...).

    The message follows dockerd's "Error processing tar file" wording so the client sees
    the same text for the same cause.
    """


class MalformedArchive(InvalidParameter):
    """The input is not a readable tar stream (bad header, checksum, truncated data)."""


class DigestMismatch(ArchiveError):
    """Reassembled or received bytes do not hash to the expected digest."""
