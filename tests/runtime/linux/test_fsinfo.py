"""Filesystem facts for DriverStatus, checked against coreutils' stat -f and real mounts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runtime.linux.fsinfo import (
    FS_NAMES, UNKNOWN_FS, backing_filesystem, fs_magic, overlay_parameter, supports_d_type,
)
from runtime.storage.status import overlay2_status


def stat_magic(path: Path) -> int:
    return int(subprocess.run(["stat", "-f", "-c", "%t", str(path)], capture_output=True,
                              text=True, check=True).stdout, 16)


@pytest.mark.parametrize("where", ["tmp", "/dev/shm", "/proc", "/"])
def test_magic_and_name_match_statfs(where: str, tmp_path: Path) -> None:
    path = tmp_path if where == "tmp" else Path(where)
    assert fs_magic(path) == stat_magic(path)
    assert backing_filesystem(path) == FS_NAMES.get(stat_magic(path), UNKNOWN_FS)


def test_names_of_known_mounts() -> None:
    assert backing_filesystem(Path("/dev/shm")) == "tmpfs"
    assert backing_filesystem(Path("/proc")) == UNKNOWN_FS  # procfs: not a backing fs moby names


def test_missing_path_raises() -> None:
    with pytest.raises(FileNotFoundError):
        fs_magic(Path("/no/such/dir"))


@pytest.mark.parametrize("where", ["tmp", "/dev/shm"])
def test_d_type_probe_reads_the_entry_type_and_cleans_up(where: str, tmp_path: Path) -> None:
    path = tmp_path if where == "tmp" else Path(where)
    before = set(os.listdir(path))
    assert supports_d_type(path) is True  # ext4, xfs, tmpfs, overlayfs all fill d_type
    assert set(os.listdir(path)) == before


def test_overlay_parameters_read_from_sysfs(tmp_path: Path) -> None:
    params = tmp_path / "module/overlay/parameters"
    params.mkdir(parents=True)
    (params / "metacopy").write_text("Y\n")
    (params / "redirect_dir").write_text("N\n")
    assert overlay_parameter("metacopy", tmp_path) is True
    assert overlay_parameter("redirect_dir", tmp_path) is False
    assert overlay_parameter("index", tmp_path) is False  # absent: an older kernel, off
    assert overlay_parameter("metacopy", tmp_path / "none") is False


def test_overlay2_status_rows(tmp_path: Path) -> None:
    rows = dict(overlay2_status(tmp_path))
    assert list(rows) == ["Backing Filesystem", "Supports d_type", "Using metacopy",
                          "Native Overlay Diff", "userxattr"]
    assert rows["Backing Filesystem"] == FS_NAMES.get(stat_magic(tmp_path), UNKNOWN_FS)
    metacopy = overlay_parameter("metacopy")
    assert rows["Using metacopy"] == str(metacopy).lower()
    assert rows["Native Overlay Diff"] == str(
        not metacopy and not overlay_parameter("redirect_dir")).lower()
