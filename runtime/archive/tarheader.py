"""Tar headers: decoding of ustar/GNU/PAX blocks and encoding of deterministic headers.

Names and link targets are kept as ``str`` decoded with ``surrogateescape`` so that any
byte sequence (Linux file names are bytes) round-trips through :func:`os.fsencode`.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from types import MappingProxyType
from collections.abc import Mapping

from runtime.archive.errors import MalformedArchive

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)

# type flags
REG = b"0"
AREG = b"\x00"
LNK = b"1"
SYM = b"2"
CHR = b"3"
BLK = b"4"
DIR = b"5"
FIFO = b"6"
CONT = b"7"
PAX = b"x"
PAX_GLOBAL = b"g"
GNU_LONGNAME = b"L"
GNU_LONGLINK = b"K"
GNU_SPARSE = b"S"

XATTR_PREFIX = "SCHILY.xattr."


def _fsdecode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _fsencode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One archive member, after PAX/GNU extension headers were applied."""

    name: str
    type: bytes
    size: int = 0
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    atime_ns: int | None = None
    linkname: str = ""
    uname: str = ""
    gname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def is_regular(self) -> bool:
        return self.type in (REG, AREG, CONT)

    @property
    def is_dir(self) -> bool:
        return self.type == DIR


def _nul_terminated(raw: bytes) -> bytes:
    end = raw.find(b"\x00")
    return raw if end < 0 else raw[:end]


def parse_number(raw: bytes) -> int:
    """Octal (space/NUL padded) or GNU base-256 numeric field."""
    if raw and raw[0] & 0x80:
        # base-256: big-endian two's complement with the marker bit (0x80) set
        negative = bool(raw[0] & 0x40)
        value = int.from_bytes(bytes([raw[0] & 0x7F]) + raw[1:], "big")
        if negative:
            value -= 1 << (len(raw) * 8 - 1)
        return value
    text = raw.replace(b"\x00", b" ").strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError as exc:
        raise MalformedArchive("archive/tar: invalid tar header") from exc


def checksum_ok(block: bytes) -> bool:
    stored = parse_number(block[148:156])
    unsigned = sum(block[:148]) + 256 + sum(block[156:])
    if stored == unsigned:
        return True
    signed = sum(b - 256 if b > 127 else b for b in block[:148]) + 256
    signed += sum(b - 256 if b > 127 else b for b in block[156:])
    return stored == signed


@dataclass(slots=True)
class RawHeader:
    """The fields of one 512-byte header block, before extensions are applied."""

    name: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    type: bytes
    linkname: bytes
    uname: bytes
    gname: bytes
    devmajor: int
    devminor: int
    atime: int | None


def parse_block(block: bytes) -> RawHeader:
    if not checksum_ok(block):
        raise MalformedArchive("archive/tar: invalid tar header")
    magic = block[257:263]
    name = _nul_terminated(block[0:100])
    atime: int | None = None
    if magic == b"ustar\x00":
        if block[508:512] == b"tar\x00":  # star format: shorter prefix, then atime/ctime
            prefix = _nul_terminated(block[345:476])
        else:
            prefix = _nul_terminated(block[345:500])
        if prefix:
            name = prefix + b"/" + name
    elif magic == b"ustar ":  # GNU: atime/ctime in place of the prefix
        if block[345] != 0:
            atime = parse_number(block[345:357])
    typeflag = block[156:157]
    return RawHeader(
        name=name,
        mode=parse_number(block[100:108]),
        uid=parse_number(block[108:116]),
        gid=parse_number(block[116:124]),
        size=parse_number(block[124:136]),
        mtime=parse_number(block[136:148]),
        type=typeflag,
        linkname=_nul_terminated(block[157:257]),
        uname=_nul_terminated(block[265:297]),
        gname=_nul_terminated(block[297:329]),
        devmajor=parse_number(block[329:337]) if typeflag in (CHR, BLK) else 0,
        devminor=parse_number(block[337:345]) if typeflag in (CHR, BLK) else 0,
        atime=atime,
    )


def parse_pax(data: bytes) -> dict[str, bytes]:
    """PAX extended header records ``"%d %s=%s\\n"``; values stay bytes (xattrs are binary)."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding at the end of some writers' records
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise MalformedArchive("archive/tar: invalid tar header")
        try:
            length = int(data[pos:space])
        except ValueError as exc:
            raise MalformedArchive("archive/tar: invalid tar header") from exc
        record = data[space + 1 : pos + length]
        if length <= space - pos or pos + length > len(data) or not record.endswith(b"\n"):
            raise MalformedArchive("archive/tar: invalid tar header")
        key, eq, value = record[:-1].partition(b"=")
        if not eq:
            raise MalformedArchive("archive/tar: invalid tar header")
        records[_fsdecode(key)] = value
        pos += length
    return records


def _pax_time_ns(value: bytes) -> int:
    text = value.decode("ascii", "replace")
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    try:
        return sign * (int(whole or "0") * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0")))
    except ValueError as exc:
        raise MalformedArchive("archive/tar: invalid tar header") from exc


def _pax_int(value: bytes) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise MalformedArchive("archive/tar: invalid tar header") from exc


def build_entry(
    raw: RawHeader,
    pax: Mapping[str, bytes],
    long_name: bytes | None,
    long_link: bytes | None,
) -> TarEntry:
    """Apply GNU long name/link and PAX records (PAX wins) to a raw header."""
    name = long_name if long_name is not None else raw.name
    linkname = long_link if long_link is not None else raw.linkname
    size, uid, gid = raw.size, raw.uid, raw.gid
    mtime_ns = raw.mtime * 1_000_000_000
    atime_ns = raw.atime * 1_000_000_000 if raw.atime is not None else None
    uname, gname = raw.uname, raw.gname
    xattrs: dict[str, bytes] = {}
    for key, value in pax.items():
        if key == "path":
            name = value
        elif key == "linkpath":
            linkname = value
        elif key == "size":
            size = _pax_int(value)
        elif key == "uid":
            uid = _pax_int(value)
        elif key == "gid":
            gid = _pax_int(value)
        elif key == "mtime":
            mtime_ns = _pax_time_ns(value)
        elif key == "atime":
            atime_ns = _pax_time_ns(value)
        elif key == "uname":
            uname = value
        elif key == "gname":
            gname = value
        elif key.startswith(XATTR_PREFIX):
            xattrs[key[len(XATTR_PREFIX) :]] = value
        elif key.startswith("GNU.sparse."):
            raise MalformedArchive("unhandled tar header type: PAX sparse file")
    if size < 0:
        raise MalformedArchive("archive/tar: invalid tar header")
    typ = raw.type
    if typ == AREG and name.endswith(b"/"):
        typ = DIR  # pre-POSIX archives mark directories with a trailing slash only
    return TarEntry(
        name=_fsdecode(name),
        type=typ,
        size=size,
        mode=raw.mode & 0o7777,
        uid=uid,
        gid=gid,
        mtime_ns=mtime_ns,
        atime_ns=atime_ns,
        linkname=_fsdecode(linkname),
        uname=_fsdecode(uname),
        gname=_fsdecode(gname),
        devmajor=raw.devmajor,
        devminor=raw.devminor,
        xattrs=MappingProxyType(xattrs),
    )


# ---- encoding -----------------------------------------------------------------------------


def _octal(value: int, width: int) -> bytes | None:
    """``width``-byte octal field (digits then NUL), or None when it does not fit."""
    if value < 0:
        return None
    digits = b"%o" % value
    if len(digits) > width - 1:
        return None
    return digits.rjust(width - 1, b"0") + b"\x00"


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + _fsencode(key) + b"=" + value + b"\n"
    length = len(body) + len(str(len(body)))
    if len(str(length)) != len(str(len(body))):
        length += 1
    return str(length).encode() + body


def _split_ustar_name(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) for a ustar header, or None when the name cannot be represented."""
    if len(name) <= 100:
        return b"", name
    if len(name) > 256:
        return None
    cut = name.rfind(b"/", 0, 156)
    while cut > 0:
        if len(name) - cut - 1 <= 100 and cut <= 155:
            return name[:cut], name[cut + 1 :]
        cut = name.rfind(b"/", 0, cut)
    return None


def _ustar_block(
    name: bytes,
    prefix: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    typeflag: bytes,
    linkname: bytes,
    uname: bytes,
    gname: bytes,
    devmajor: int,
    devminor: int,
) -> bytes:
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = _octal(mode, 8) or b"0000000\x00"
    block[108:116] = _octal(uid, 8) or b"0000000\x00"
    block[116:124] = _octal(gid, 8) or b"0000000\x00"
    block[124:136] = _octal(size, 12) or b"00000000000\x00"
    block[136:148] = _octal(mtime, 12) or b"00000000000\x00"
    block[148:156] = b"        "
    block[156:157] = typeflag
    block[157 : 157 + len(linkname)] = linkname
    block[257:263] = b"ustar\x00"
    block[263:265] = b"00"
    block[265 : 265 + len(uname)] = uname
    block[297 : 297 + len(gname)] = gname
    block[329:337] = _octal(devmajor, 8) or b"0000000\x00"
    block[337:345] = _octal(devminor, 8) or b"0000000\x00"
    block[345 : 345 + len(prefix)] = prefix
    chksum = sum(block)
    block[148:155] = b"%06o\x00" % chksum
    return bytes(block)


def encode_header(entry: TarEntry) -> bytes:
    """Header block(s) for ``entry``: plain ustar when every field fits, else a PAX
    extended header first (as Go's archive/tar does with ``FormatPAX``). Deterministic:
    only whole-second mtimes and no atime/ctime unless given."""
    name = _fsencode(entry.name)
    linkname = _fsencode(entry.linkname)
    uname = _fsencode(entry.uname)
    gname = _fsencode(entry.gname)
    mtime_s, mtime_frac = divmod(entry.mtime_ns, 1_000_000_000)
    pax: list[tuple[str, bytes]] = []
    split = _split_ustar_name(name)
    if split is None or any(b > 127 for b in name):
        pax.append(("path", name))
        split = (b"", name[:100])
    if len(linkname) > 100 or any(b > 127 for b in linkname):
        pax.append(("linkpath", linkname))
        linkname = linkname[:100]
    if _octal(entry.size, 12) is None:
        pax.append(("size", str(entry.size).encode()))
    if _octal(entry.uid, 8) is None:
        pax.append(("uid", str(entry.uid).encode()))
    if _octal(entry.gid, 8) is None:
        pax.append(("gid", str(entry.gid).encode()))
    if mtime_frac or _octal(entry.mtime_ns // 1_000_000_000, 12) is None:
        text = str(mtime_s) if not mtime_frac else f"{mtime_s}.{mtime_frac:09d}".rstrip("0")
        pax.append(("mtime", text.encode()))
    if len(uname) > 32 or any(b > 127 for b in uname):
        pax.append(("uname", uname))
        uname = b""
    if len(gname) > 32 or any(b > 127 for b in gname):
        pax.append(("gname", gname))
        gname = b""
    for key in sorted(entry.xattrs):
        pax.append((XATTR_PREFIX + key, entry.xattrs[key]))
    out = b""
    if pax:
        records = b"".join(_pax_record(k, v) for k, v in sorted(pax))
        pax_name = b"PaxHeaders.0/" + split[1][:80]
        out = _ustar_block(
            pax_name[:100], b"", 0, 0, 0, len(records), 0, PAX, b"", b"", b"", 0, 0
        )
        out += records + bytes(-len(records) % BLOCK)
    prefix, short = split
    out += _ustar_block(
        short,
        prefix,
        entry.mode & 0o7777,
        max(entry.uid, 0) if _octal(entry.uid, 8) else 0,
        max(entry.gid, 0) if _octal(entry.gid, 8) else 0,
        entry.size if _octal(entry.size, 12) else 0,
        mtime_s if _octal(mtime_s, 12) else 0,
        entry.type,
        linkname,
        uname,
        gname,
        entry.devmajor,
        entry.devminor,
    )
    return out


def mode_type(mode: int) -> bytes | None:
    """Tar type flag for an ``st_mode`` (None for sockets, which tar cannot hold)."""
    if stat.S_ISREG(mode):
        return REG
    if stat.S_ISDIR(mode):
        return DIR
    if stat.S_ISLNK(mode):
        return SYM
    if stat.S_ISCHR(mode):
        return CHR
    if stat.S_ISBLK(mode):
        return BLK
    if stat.S_ISFIFO(mode):
        return FIFO
    return None
