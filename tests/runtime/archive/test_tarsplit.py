from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from runtime.archive.errors import DigestMismatch
from runtime.archive.extract import extract_chunks
from runtime.archive.tarsplit import TarSplitRecorder, reassemble
from tests.runtime.archive.tarbuild import build, dir_, hard, reg, sym


def unpack_and_rebuild(tmp_path: Path, data: bytes, chunk: int = 777) -> tuple[bytes, str, Path]:
    layer = tmp_path / "layer"
    (layer / "diff").mkdir(parents=True)
    with TarSplitRecorder(layer / "log", layer / "files", layer / "stash") as rec:
        result = extract_chunks((data[i : i + chunk] for i in range(0, len(data), chunk)), layer / "diff", recorder=rec)
    out = b"".join(reassemble(layer / "log", layer / "files", layer / "diff", layer / "stash", result.digest))
    return out, result.digest, layer


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_exact_bytes_come_back(tmp_path: Path, fmt: int) -> None:
    members = [dir_("a"), reg("a/big", bytes(range(256)) * 5000), reg("a/empty", b""), sym("a/s", "big"),
               hard("a/h", "a/big"), reg("a/.wh.gone"), reg("zz" * 60 if fmt != tarfile.USTAR_FORMAT else "zz")]
    data = build(members, fmt) + bytes(10240 - len(build(members, fmt)) % 10240)  # GNU tar record padding
    out, digest, _ = unpack_and_rebuild(tmp_path, data)
    assert out == data
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_overwritten_and_whited_out_content_is_stashed(tmp_path: Path) -> None:
    data = build([dir_("d"), reg("d/f", b"first"), reg("d/f", b"second"), reg("d/g", b"gee"),
                  reg("d"), reg("x", b"ex"), reg(".wh.x")])
    out, _, layer = unpack_and_rebuild(tmp_path, data)
    assert out == data
    assert (layer / "diff" / "d").read_bytes() == b"x"  # the final tree is what the archive says
    assert sorted(p.name for p in (layer / "diff").iterdir()) == ["d", "x"]


def test_changed_content_is_detected(tmp_path: Path) -> None:
    data = build([reg("f", b"hello world")])
    _, digest, layer = unpack_and_rebuild(tmp_path, data)
    (layer / "diff" / "f").write_bytes(b"HELLO WORLD")
    with pytest.raises(DigestMismatch):
        b"".join(reassemble(layer / "log", layer / "files", layer / "diff", layer / "stash", digest))
    (layer / "diff" / "f").write_bytes(b"short")
    with pytest.raises(DigestMismatch):
        b"".join(reassemble(layer / "log", layer / "files", layer / "diff", layer / "stash", digest))
