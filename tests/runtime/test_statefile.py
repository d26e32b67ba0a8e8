from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runtime.statefile import ensure_private_dir, read_json, write_json_atomic


def test_write_then_read(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_json_atomic(target, {"a": [1, 2]})
    assert read_json(target) == {"a": [1, 2]}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_failed_write_keeps_old_content_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"v": object()})
    assert read_json(target) == {"v": 1}
    assert os.listdir(tmp_path) == ["state.json"]


def test_private_dir_is_0700(tmp_path: Path) -> None:
    d = ensure_private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
