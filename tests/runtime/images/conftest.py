from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from runtime.events import EventBus
from runtime.images.service import ImageService
from tests.runtime.archive.tarbuild import build, dir_, reg, sym


def rootfs_tar(marker: bytes = b"v1") -> bytes:
    return build([
        dir_("bin"), reg("bin/busybox", b"\x7fELF" + marker, mode=0o755), sym("bin/sh", "busybox"),
        dir_("etc"), reg("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        dir_("tmp", mode=0o1777),
    ])


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def service(tmp_path: Path, bus: EventBus) -> ImageService:
    return ImageService(tmp_path / "data", bus)


def actions(bus: EventBus) -> list[tuple[str, str]]:
    return [(e.action, e.attributes.get("name", "")) for e in bus.history()]
