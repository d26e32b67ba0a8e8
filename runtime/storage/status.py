"""``docker info``'s ``DriverStatus`` for the overlay2 layer store, measured once per data
root as dockerd's driver does at start (see :mod:`runtime.linux.fsinfo`)."""

from __future__ import annotations

import functools
from pathlib import Path

from runtime.linux.fsinfo import backing_filesystem, overlay_parameter, supports_d_type


@functools.cache
def overlay2_status(data_root: Path) -> tuple[tuple[str, str], ...]:
    """dockerd's rows, in its order. Our overlay mounts pass no ``metacopy``,
    ``redirect_dir`` or ``userxattr`` option, so the first two are the overlay module's
    defaults and userxattr is off. A diff read from the upper directory (native diff) is
    exact only while neither redirect_dir nor metacopy is on; dockerd reports the same
    condition (it probes it with a test mount)."""
    metacopy = overlay_parameter("metacopy")
    return (
        ("Backing Filesystem", backing_filesystem(data_root)),
        ("Supports d_type", _bool(supports_d_type(data_root))),
        ("Using metacopy", _bool(metacopy)),
        ("Native Overlay Diff", _bool(not metacopy and not overlay_parameter("redirect_dir"))),
        ("userxattr", "false"),
    )


def _bool(value: bool) -> str:
    return "true" if value else "false"


__all__ = ["overlay2_status"]
