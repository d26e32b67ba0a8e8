"""dockerd's breakout refusals on the PUT /archive stream."""

from __future__ import annotations

import io
import tarfile

import pytest

from runtime.archive.errors import ArchiveError
from runtime.containers.targuard import guarded

PREFIX = "Error processing tar file(exit status 1): "


def _tar(*members: tuple[str, str, str], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                t.addfile(info, io.BytesIO(value.encode()))
                continue
            info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
            info.linkname = value
            t.addfile(info)
    return buf.getvalue()


def _run(data: bytes, dest: str, size: int) -> bytes:
    return b"".join(guarded([data[i:i + size] for i in range(0, len(data), size)], dest))


@pytest.mark.parametrize("size", [1, 7, 512, 100000])
def test_harmless_archives_pass_unchanged(size: int) -> None:
    data = _tar(("a/b", "file", "x"), ("/abs", "file", "y"), ("l", "sym", "/etc"),
                ("rel", "sym", "a/b"), ("h", "link", "a/b"), ("long/" + "n" * 200, "file", "z"))
    assert _run(data, "/dest", size) == data


@pytest.mark.parametrize(("members", "message"), [
    ((("../../x", "file", "x"),), '"../../x" is outside of "/dest"'),
    ((("a/../../x", "file", "x"),), '"../x" is outside of "/dest"'),
    ((("l", "sym", "../../etc"),), 'invalid symlink "/dest/l" -> "../../etc"'),
    ((("h", "link", "../etc/passwd"),), 'invalid hardlink "/etc/passwd" -> "../etc/passwd"'),
    ((("ok", "file", "1"), ("../" * 3 + "p" * 150, "file", "x")), "is outside of"),
])
@pytest.mark.parametrize("size", [1, 513, 100000])
def test_breakouts_are_refused_before_the_member_is_handed_on(
        members: tuple[tuple[str, str, str], ...], message: str, size: int) -> None:
    data = _tar(*members)
    seen = bytearray()
    with pytest.raises(ArchiveError) as caught:
        for chunk in guarded([data[i:i + size] for i in range(0, len(data), size)], "/dest"):
            seen += chunk
    assert str(caught.value).startswith(PREFIX) and message in str(caught.value)
    # the chunk that completes the bad header never reached the extractor
    bad_name = members[-1][0].encode()[:50]
    assert bad_name not in bytes(seen) or len(seen) < len(data)


def test_gnu_long_names_are_checked() -> None:
    data = _tar(("../" + "q" * 120, "file", "x"), fmt=tarfile.GNU_FORMAT)
    with pytest.raises(ArchiveError, match="is outside of"):
        _run(data, "/dest", 64)


def test_everything_is_allowed_at_the_root() -> None:
    data = _tar(("l", "sym", "../../etc"), ("h", "link", "/etc/passwd"))
    assert _run(data, "/", 100) == data


def test_malformed_input_is_left_to_the_extractor() -> None:
    assert _run(b"x" * 1500, "/dest", 100) == b"x" * 1500
