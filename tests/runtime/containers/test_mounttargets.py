"""Mount targets the runtime left in a stopped container's upper directory are pruned."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.containers.mounttargets import prune_mount_targets


def test_mount_placeholders_are_pruned(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("x")
    (lower / "proc").mkdir()
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.chmod(upper / "etc", os.stat(lower / "etc").st_mode & 0o7777)
    for name in ("hosts", "hostname", "resolv.conf"):
        (upper / "etc" / name).write_text("")
    (upper / "proc").mkdir()
    (upper / "dev").mkdir()
    (upper / "kept").write_text("real change")
    prune_mount_targets(upper, [str(lower)])
    assert sorted(os.listdir(upper)) == ["kept"]


def test_real_changes_are_kept(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_text("")  # truncated by the step: a change of an existing file
    (upper / "etc" / "hostname").write_text("written by the step")
    prune_mount_targets(upper, [str(lower)])
    assert sorted(os.listdir(upper / "etc")) == ["hostname", "hosts"]
