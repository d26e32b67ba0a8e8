"""Platforms: ``--platform`` parsing and the choice of a manifest list / OCI index entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import InvalidParameter, NotFound
from runtime.images import config as imgconfig


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def host(cls) -> Platform:
        os_name, arch, variant = imgconfig.host_platform()
        return cls(os_name, arch, variant)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os[/arch[/variant]]`` as ``--platform`` takes it; a missing part is the host's."""
        host = cls.host()
        parts = [p.strip().lower() for p in text.split("/")]
        if not text.strip() or len(parts) > 3 or any(not p for p in parts):
            raise InvalidParameter(f'"{text}": unknown operating system or architecture: invalid argument')
        arch = parts[1] if len(parts) > 1 else host.architecture
        arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(arch, arch)
        return cls(parts[0], arch, parts[2] if len(parts) > 2 else "")

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, os_name: str, architecture: str, variant: str = "") -> bool:
        if os_name != self.os or architecture != self.architecture:
            return False
        return not self.variant or not variant or variant == self.variant


def select_manifest(index: Mapping[str, Any], platform: Platform) -> Mapping[str, Any]:
    """The descriptor of a manifest list / OCI index entry for ``platform``: an entry with
    the exact variant first, then one without a variant, then any variant. Attestation
    manifests (``unknown/unknown``) never match."""
    entries = [d for d in index.get("manifests") or [] if isinstance(d, Mapping) and isinstance(d.get("digest"), str)]
    best: tuple[int, Mapping[str, Any]] | None = None
    for desc in entries:
        plat = desc.get("platform")
        if not isinstance(plat, Mapping):
            continue
        os_name, arch, variant = str(plat.get("os", "")), str(plat.get("architecture", "")), str(plat.get("variant", ""))
        if not platform.matches(os_name, arch, variant):
            continue
        rank = 0 if variant == platform.variant else 1 if not variant else 2
        if best is None or rank < best[0]:
            best = (rank, desc)
    if best is None:
        raise NotFound(f"no matching manifest for {platform} in the manifest list entries")
    return best[1]
