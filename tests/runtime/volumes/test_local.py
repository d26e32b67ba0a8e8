"""The local driver on disk: dockerd's layout, metadata that survives a restart, crash-safe
removal, driver options (validation, real tmpfs and bind mounts, counted) and sizes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from runtime.errors import InvalidParameter, SystemError_
from runtime.storage.snapshots import is_mounted
from runtime.volumes.local import (
    LocalDriver, directory_size, needs_mount, ram_in_bytes, validate_options,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")


@pytest.fixture
def driver(tmp_path: Path) -> LocalDriver:
    d = LocalDriver(tmp_path / "volumes")
    d.load()
    return d


def test_layout_and_metadata_survive_reload(driver: LocalDriver, tmp_path: Path) -> None:
    local = driver.create("data", {"type": "tmpfs", "device": "tmpfs"}, {"a": "b"}, 123)
    root = tmp_path / "volumes" / "data"
    assert local.data == root / "_data" and local.volume.mountpoint == str(root / "_data")
    assert stat.S_IMODE(root.stat().st_mode) == 0o701
    assert stat.S_IMODE((root / "_data").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "volumes").stat().st_mode) == 0o701
    meta = json.loads((root / "volume.json").read_text())
    assert meta == {"Name": "data", "Driver": "local", "Labels": {"a": "b"},
                    "Options": {"type": "tmpfs", "device": "tmpfs"}, "CreatedAt": 123}
    driver.create("plain", None, None, 456)
    again = LocalDriver(tmp_path / "volumes")
    again.load()
    assert sorted(again.volumes) == ["data", "plain"]
    assert again.volumes["data"].volume == local.volume
    assert again.volumes["plain"].volume.labels is None


def test_load_skips_non_volumes_and_finishes_removals(tmp_path: Path) -> None:
    root = tmp_path / "volumes"
    (root / "legacy" / "_data").mkdir(parents=True)  # dockerd-style, no metadata
    (root / "junk").mkdir()
    (root / "file").write_text("x")
    (root / ".removing-old-1234" / "_data" / "deep").mkdir(parents=True)
    (root / ".mnt-0123").mkdir()
    (root / "broken" / "_data").mkdir(parents=True)
    (root / "broken" / "volume.json").write_text("{not json")
    driver = LocalDriver(root)
    driver.load()
    assert sorted(driver.volumes) == ["broken", "legacy"]
    assert driver.volumes["legacy"].volume.labels is None
    assert driver.volumes["legacy"].volume.created_ns > 0
    assert not (root / ".removing-old-1234").exists() and not (root / ".mnt-0123").exists()


def test_remove_renames_then_deletes(driver: LocalDriver, tmp_path: Path) -> None:
    local = driver.create("gone", None, None, 1)
    (local.data / "sub").mkdir()
    (local.data / "sub" / "f").write_text("x")
    os.symlink("/etc", local.data / "escape")  # never followed
    driver.remove("gone")
    assert "gone" not in driver.volumes
    assert os.listdir(tmp_path / "volumes") == []
    assert Path("/etc/passwd").exists()


def test_option_validation() -> None:
    validate_options(None)
    validate_options({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    validate_options({"size": "0"})
    cases = [({"foo": "1"}, 'invalid option: "foo"'),
             ({"type": "tmpfs"}, 'missing required option: "device"'),
             ({"device": "/x"}, 'missing required option: "type"'),
             ({"o": "bind"}, 'missing required option: "device"'),
             ({"size": "10m"}, "quota size requested but no quota support"),
             ({"size": "ten"}, "invalid size: 'ten'")]
    for options, message in cases:
        with pytest.raises(InvalidParameter) as err:
            validate_options(options)
        assert str(err.value) == message
    assert ram_in_bytes("1k") == 1024 and ram_in_bytes("2MiB") == 2 << 20
    assert needs_mount({"type": "tmpfs"}) and not needs_mount({"size": "0"})
    assert not needs_mount(None)


@needs_root
def test_tmpfs_volume_is_mounted_once_for_all_users(driver: LocalDriver) -> None:
    local = driver.create("tmp", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=700"},
                          None, 1)
    try:
        assert driver.mount("tmp") == str(local.data)
        assert is_mounted(local.data)
        assert stat.S_IMODE(local.data.stat().st_mode) == 0o700
        driver.mount("tmp")
        driver.unmount("tmp")
        assert is_mounted(local.data)  # one user left
        driver.unmount("tmp")
        assert not is_mounted(local.data)
        driver.unmount("tmp")  # extra unmounts are harmless
    finally:
        if is_mounted(local.data):
            os.system(f"umount -l {local.data}")


@needs_root
def test_bind_volume_and_mount_errors(driver: LocalDriver, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "h").write_text("host data")
    local = driver.create("bound", {"type": "none", "device": str(host), "o": "bind,ro"}, None, 1)
    try:
        driver.mount("bound")
        assert (local.data / "h").read_text() == "host data"
        with pytest.raises(OSError):
            (local.data / "new").write_text("x")
    finally:
        driver.unmount("bound")
    assert not is_mounted(local.data)
    driver.create("broken", {"type": "none", "device": str(tmp_path / "missing"), "o": "bind"},
                  None, 1)
    with pytest.raises(SystemError_) as err:
        driver.mount("broken")
    assert str(err.value).startswith(f"failed to mount local volume: mount {tmp_path}/missing:")
    assert str(err.value).endswith(", flags: 0x1000: no such file or directory")


@needs_root
def test_mounted_volume_is_unmounted_before_removal(driver: LocalDriver, tmp_path: Path) -> None:
    local = driver.create("tmp2", {"type": "tmpfs", "device": "tmpfs"}, None, 1)
    driver.mount("tmp2")
    with pytest.raises(SystemError_, match="volume has active mounts"):
        driver.remove("tmp2")
    driver.volumes["tmp2"].active = 0  # e.g. the last container went away uncounted
    driver.remove("tmp2")
    assert not is_mounted(local.data) and not local.root.exists()


def test_directory_size_counts_files_once(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"12345")
    os.link(tmp_path / "d" / "a", tmp_path / "d" / "hard")
    (tmp_path / "b").write_bytes(b"123")
    (tmp_path / "empty").write_bytes(b"")
    os.symlink("a-target", tmp_path / "link")  # counted by its own size, as dockerd
    assert directory_size(tmp_path) == 5 + 3 + len("a-target")
