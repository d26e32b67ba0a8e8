"""Build tar archives for tests, including hostile ones tarfile would refuse to write."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field


@dataclass
class Member:
    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: float = 1_000_000_000
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)


def build(members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for m in members:
            ti = tarfile.TarInfo(m.name)
            ti.type = m.type
            ti.linkname = m.linkname
            ti.mode = m.mode
            ti.uid, ti.gid = m.uid, m.gid
            ti.mtime = m.mtime
            ti.devmajor, ti.devminor = m.devmajor, m.devminor
            ti.pax_headers = dict(m.pax)
            if m.type == tarfile.REGTYPE:
                ti.size = len(m.data)
                tf.addfile(ti, io.BytesIO(m.data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def reg(name: str, data: bytes = b"x", **kw: object) -> Member:
    return Member(name, tarfile.REGTYPE, data, **kw)  # type: ignore[arg-type]


def dir_(name: str, **kw: object) -> Member:
    kw.setdefault("mode", 0o755)
    return Member(name, tarfile.DIRTYPE, **kw)  # type: ignore[arg-type]


def sym(name: str, target: str, **kw: object) -> Member:
    return Member(name, tarfile.SYMTYPE, linkname=target, mode=0o777, **kw)  # type: ignore[arg-type]


def hard(name: str, target: str, **kw: object) -> Member:
    return Member(name, tarfile.LNKTYPE, linkname=target, **kw)  # type: ignore[arg-type]
