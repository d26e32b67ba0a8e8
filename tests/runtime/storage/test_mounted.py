"""Writable layers mounted in the daemon (builds): the store's description, mounted
through the syscall seam; nothing left behind when the mount fails."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from runtime.errors import SystemError_
from runtime.linux.syscalls_fake import RecordingSyscalls
from runtime.storage.mounted import LayerMounts, MountedLayer
from runtime.storage.overlay import OverlayLayerStore
from tests.runtime.storage.layer_suite import BASE


@pytest.fixture
def store(tmp_path: Path) -> OverlayLayerStore:
    return OverlayLayerStore(tmp_path / "overlay2")


def test_open_mounts_the_stores_description(store: OverlayLayerStore) -> None:
    base = store.register([BASE], None)
    sc = RecordingSyscalls()
    layer = LayerMounts(store, sc).open("build-1", base.chain_id)
    assert layer == MountedLayer("build-1", store.merged_dir("build-1"), store.upper_dir("build-1"))
    mount = store.mounts("build-1")
    assert sc.calls == [("mount", ("overlay", str(layer.root), "overlay", 0, mount.data))]
    LayerMounts(store, sc).release(layer)  # not mounted (a fake kernel): only removed
    assert store.writable_layers() == {}


def test_a_failed_mount_leaves_no_layer(store: OverlayLayerStore) -> None:
    sc = RecordingSyscalls(fail={"mount": [errno.EINVAL]})
    with pytest.raises(SystemError_, match="error mounting overlay"):
        LayerMounts(store, sc).open("build-2", None)
    assert store.writable_layers() == {}


def test_an_existing_layer_is_mounted_for_the_block_only(store: OverlayLayerStore) -> None:
    store.prepare("c1", None)
    sc = RecordingSyscalls()
    with LayerMounts(store, sc).mounted("c1") as root:
        assert root == store.merged_dir("c1") and len(sc.of("mount")) == 1
