"""Content digests (``sha256:<64 hex>``) and layer chain IDs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from runtime.errors import InvalidParameter

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_HEX_RE = re.compile(r"^[a-f0-9]{64}$")


def validate(value: str) -> str:
    """Return ``value`` if it is a canonical sha256 digest, else raise InvalidParameter."""
    if not _DIGEST_RE.match(value):
        if value.startswith("sha256:") and _HEX_RE.match(value[7:].lower()) is None:
            raise InvalidParameter(f"invalid checksum digest length: {value}")
        raise InvalidParameter(f"invalid digest format: {value}")
    return value


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    return digest.partition(":")[2]


def chain_id(parent_chain_id: str | None, diff_id: str) -> str:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    if parent_chain_id is None:
        return diff_id
    return sha256_of(f"{parent_chain_id} {diff_id}".encode())


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """Chain IDs of every prefix of ``diff_ids`` (bottom layer first)."""
    out: list[str] = []
    parent: str | None = None
    for diff_id in diff_ids:
        parent = chain_id(parent, diff_id)
        out.append(parent)
    return out
