from __future__ import annotations

import io
import tarfile

import pytest

from runtime.archive import tarheader as th
from runtime.archive.reader import TarReader


def roundtrip(entry: th.TarEntry, data: bytes = b"") -> tuple[th.TarEntry, tarfile.TarInfo]:
    blob = th.encode_header(entry) + data + bytes(-len(data) % 512) + bytes(1024)
    reader = TarReader([blob])
    got = reader.next()
    assert got is not None
    info = tarfile.open(fileobj=io.BytesIO(blob)).next()
    assert info is not None
    return got, info


def test_plain_ustar_fields() -> None:
    e = th.TarEntry(name="etc/passwd", type=th.REG, size=3, mode=0o2755, uid=7, gid=8, mtime_ns=1_600_000_000 * 10**9)
    got, info = roundtrip(e, b"abc")
    assert got == e
    assert (info.name, info.mode, info.uid, info.gid, info.mtime, info.size) == ("etc/passwd", 0o2755, 7, 8, 1_600_000_000, 3)
    assert len(th.encode_header(e)) == 512  # no PAX header when everything fits


def test_pax_for_long_names_big_ids_fractions_xattrs_and_utf8() -> None:
    e = th.TarEntry(
        name="dir/" + "ü" * 150, type=th.SYM, linkname="t" * 300, uid=1 << 30, gid=5, mode=0o777,
        mtime_ns=1_600_000_000_123_000_000, xattrs={"security.capability": b"\x01\x00\xff"},
    )
    got, info = roundtrip(e)
    assert got.name == e.name and got.linkname == e.linkname and got.uid == e.uid
    assert got.mtime_ns == e.mtime_ns and dict(got.xattrs) == dict(e.xattrs)
    assert info.name == e.name and info.linkname == e.linkname and info.uid == 1 << 30


def test_non_utf8_names_round_trip() -> None:
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    got, _ = roundtrip(th.TarEntry(name=name, type=th.REG))
    assert got.name == name


def test_gnu_base256_and_longlink() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo("x" * 120)
        ti.type, ti.linkname, ti.uid = tarfile.SYMTYPE, "y" * 200, 1 << 40
        tf.addfile(ti)
    got = TarReader([buf.getvalue()]).next()
    assert got is not None and got.name == "x" * 120 and got.linkname == "y" * 200 and got.uid == 1 << 40


def test_parse_number_rejects_garbage() -> None:
    from runtime.archive.errors import MalformedArchive

    assert th.parse_number(b"0000644\x00") == 0o644
    assert th.parse_number(b"\x00" * 8) == 0
    with pytest.raises(MalformedArchive):
        th.parse_number(b"12z\x00")
